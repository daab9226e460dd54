"""Command line: ``python -m harness <command>``.

  build [--port-check]       build the virtual-board firmware (every variant the catalog uses), and the
                             host port's test app
  image info FILE            show an app image's header, version, checksum and hash
  image patch-version FILE VERSION -o OUT
                             rewrite the app version (checksum and hash fixed up)
  image corrupt FILE -o OUT [--flip OFFSET ...] [--truncate N]
                             damage an image on purpose (no checksum fix-up)
  board run --image FILE [--broker URL] [--device-id ID] [--flash FILE]
                             run a virtual ESP32 in the foreground until Ctrl-C
  push --broker URL --device ID IMAGE [--prefix devices] [--window 4] [--chunk 16384] [--qos 1] [--version V]
       [--no-verify] [--confirm-timeout S]
                             push an image to a device through the broker (docs/protocol.md, `push`)
  lab [--boards N | --target esp32 --port PORT ...] [--http-port 8765] [--bind 127.0.0.1] ...
                             broker, firmware server and boards, watched and updated from a page in the browser
  catalog [--write FILE | --check FILE]
                             the README's scenario table, made from tests_hil's docstrings and markers
  farm serve [--boards 2] [--name vb] [--host 127.0.0.1] [--exporter-config FILE] [--dir DIR]
                             virtual ESP32 boards on RFC2217 ports with a power switch, for a labgrid exporter
  farm builds DIR [--variant V ...]
                             idf.py-style build_esp32_<variant>/ directories of the virtual firmware, for
                             --app-path DIR when the gate runs over virtual boards
"""

from __future__ import annotations

import argparse
import faulthandler
import math
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness import project
from harness.formats import app_image
from harness.push import DEFAULT_CHUNK, DEFAULT_QOS, DEFAULT_WINDOW, TIMEOUT_S_MAX, TRANSFER_ID_MAX, check_transfer_id
from harness.virtual import firmware
from harness.virtual import flash as flash_timings

if TYPE_CHECKING:
    from harness.virtual.board import VirtualBoard
    from harness.virtual.bootloader import BootloaderConfig

VARIANTS = project.reference().variants


class CliError(Exception):
    """A mistake in what the command was given (a file that cannot be read, say): printed, exit status 2."""


def read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}") from None


def write_output(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror}") from None


def variant(text: str) -> str:
    """argparse type of a firmware variant's name."""
    if text not in VARIANTS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a variant; the variants are {', '.join(VARIANTS)}")
    return text


def offset(text: str) -> int:
    """argparse type of a byte offset: decimal, or 0x hexadecimal."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an offset (decimal, or hexadecimal as 0x1f); a file name "
                                         "goes before --flip, whose offsets run to the next option") from None


def transfer_id(text: str) -> str:
    """argparse type of a push's id: what the device takes (harness.push.check_transfer_id)."""
    try:
        check_transfer_id(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {TRANSFER_ID_MAX} characters, without /, + or #") from None
    return text


def topic_level(text: str) -> str:
    """argparse type of a device id: one level of its MQTT topics (<prefix>/<id>/cmd), as the firmware's
    esp-mqtt client can neither subscribe under nor publish to one with a wildcard, a / or a space."""
    if not text or any(c in text for c in "/+#") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: a device id is one topic level: not empty, without /, +, # "
                                         "or spaces")
    return text


PORT = (0, 65535)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: give a finite number of seconds")
    return value


def positive_seconds(text: str) -> float:
    """argparse type of a duration in seconds, more than 0."""
    value = _seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: give more than 0 seconds")
    return value


def nonnegative_seconds(text: str) -> float:
    """argparse type of a duration in seconds, 0 or more."""
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: give 0 or more seconds")
    return value


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse type of an integer from `low` to `high`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value
    return parse


def new_flash(path: Path) -> None:
    """A blank flash file with the reference partition table, or a CliError naming the path."""
    from harness.virtual.board import create_flash

    try:
        create_flash(path, project.reference().partitions_csv.read_text())
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror}") from None


def cmd_build(args: argparse.Namespace) -> int:
    for variant in args.variants or VARIANTS:
        try:
            build = firmware.build(variant)
        except firmware.FirmwareBuildError as err:
            print(f"{variant}: {err}", file=sys.stderr)
            return 1
        print(f"{variant}: {build.image_path} (version {build.version})")
    if args.port_check:
        try:
            print(f"port_check: {firmware.build_port_check()}")
        except firmware.FirmwareBuildError as err:
            print(f"port_check: {err}", file=sys.stderr)
            return 1
    return 0


def cmd_image_info(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    try:
        info = app_image.verify_image(data, None)
    except app_image.ImageError as err:
        print(f"{args.file}: not a valid app image ({err.reason}): {err}", file=sys.stderr)
        return 1
    chip = {app_image.CHIP_ID_ESP32: "esp32", app_image.CHIP_ID_VIRTUAL: "virtual"}.get(info.chip_id, str(info.chip_id))
    desc = info.descriptor
    print(f"file:      {args.file}")
    print(f"chip:      {chip} (id {info.chip_id:#06x})")
    print(f"length:    {info.length} bytes, {len(info.segments)} segments")
    if desc is not None:
        print(f"project:   {desc.project_name}")
        print(f"version:   {desc.version}")
        print(f"idf:       {desc.idf_ver}")
    print("checksum:  valid")
    print(f"sha256:    {info.sha256.hex() if info.sha256 else 'not appended'}")
    return 0


def cmd_image_patch_version(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    if not args.version:
        raise CliError("the new version is empty: give one, e.g. 2.0.0")
    try:
        app_image.verify_image(data, None)
    except app_image.ImageError as err:
        if not args.force:  # the fix-up would make a damaged image look valid (checksum and hash recomputed)
            print(f"{args.file}: not a valid app image ({err}); --force patches it anyway, and its checksum and hash "
                  "then come out valid", file=sys.stderr)
            return 1
    try:
        patched = app_image.patch_version(data, args.version)
    except (app_image.ImageError, ValueError) as err:
        print(f"{args.file}: cannot patch: {err}", file=sys.stderr)
        return 1
    write_output(args.output, patched)
    print(f"{args.output}: version {args.version}")
    return 0


def cmd_image_corrupt(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    bad = [o for o in args.flip if not 0 <= o < len(data)]
    if bad:
        print(f"{args.file}: offsets {bad} are outside the {len(data)}-byte image", file=sys.stderr)
        return 1
    if not args.flip and args.truncate is None:
        raise CliError("nothing to damage: give --flip OFFSET ... and/or --truncate N")
    if args.truncate is not None and not 0 <= args.truncate <= len(data):
        raise CliError(f"--truncate {args.truncate}: {args.file} has {len(data)} bytes; keep 0 to {len(data)}")
    data = app_image.corrupt(data, args.flip) if args.flip else data
    if args.truncate is not None:
        data = app_image.truncate(data, args.truncate)
    write_output(args.output, data)
    print(f"{args.output}: {len(data)} bytes")
    return 0


def cmd_board_run(args: argparse.Namespace) -> int:
    import shutil

    from harness.net import parse_mqtt_url

    if args.image is None and not (args.flash and Path(args.flash).exists()):
        print("board run: give --image FILE (an app image for the virtual board) or an existing --flash FILE",
              file=sys.stderr)
        return 2
    if args.broker is not None:
        try:
            parse_mqtt_url(args.broker)  # the firmware would refuse it too, after its boot
        except ValueError as err:
            raise CliError(f"--broker: {err}") from None
    image = read_input(args.image) if args.image is not None else None  # before anything is made on disk
    if image is not None:
        check_virtual_image(args.image, image)
    bootloader = bootloader_options(args)
    if args.flash and Path(args.flash).exists():
        check_flash_file(args.flash)
    elif args.flash:
        new_flash(Path(args.flash))  # before the work directory, which a failure here would leave behind
        efuse_file(args.flash).unlink(missing_ok=True)  # a new flash is a new chip: blank eFuses too
    workdir = Path(tempfile.mkdtemp(prefix="hil-board-"))
    try:
        return run_board(args, workdir, image, bootloader)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the app, its eFuses and console files; --flash stays


def efuse_file(flash: str) -> Path:
    """Where `board run --flash FILE` keeps the chip's eFuses (anti-rollback's secure version): FILE.efuse."""
    return Path(f"{flash}.efuse")


def bootloader_options(args: argparse.Namespace) -> tuple[BootloaderConfig, str]:
    """The options the board's bootloader is built with, as on a chip the bootloader comes from the project's
    sdkconfig: --sdkconfig, else the sdkconfig beside --image (where python -m harness build leaves it), else
    the reference build's (app rollback on, anti-rollback off); and the line that says which, since they
    decide what a boot does (an anti-rollback build burns the app's secure version into the eFuses)."""
    from harness.virtual.bootloader import BootloaderConfig

    sdkconfig = Path(args.sdkconfig) if args.sdkconfig else None
    beside_image = Path(args.image).parent / "sdkconfig" if args.image is not None else None
    if sdkconfig is None and beside_image is not None and beside_image.is_file():
        sdkconfig = beside_image
    if sdkconfig is None:
        config = BootloaderConfig()
        return config, (f"board run: bootloader with the reference build's options ({describe_bootloader(config)}); "
                        "--sdkconfig FILE for a build's own")
    try:
        text = sdkconfig.read_text(errors="replace")
        if "\nCONFIG_" not in f"\n{text}":
            raise ValueError("no CONFIG_ line")
        config = BootloaderConfig.from_sdkconfig(text)
    except OSError as err:
        raise CliError(f"--sdkconfig: cannot read {sdkconfig}: {err.strerror or err}") from None
    except ValueError as err:
        raise CliError(f"--sdkconfig {sdkconfig} is not an sdkconfig ({err}); give the one in the build's "
                       "directory") from None
    return config, f"board run: bootloader with the options of {sdkconfig} ({describe_bootloader(config)})"


def describe_bootloader(config: BootloaderConfig) -> str:
    def on(flag: bool) -> str:
        return "on" if flag else "off"

    return (f"app rollback {on(config.rollback)}, anti-rollback {on(config.anti_rollback)}"
            + (", signed apps" if config.signed_apps else ""))


def check_virtual_image(path: str, image: bytes) -> None:
    """A CliError unless `image` is an app image for the virtual board (as `python -m harness build` makes)."""
    try:
        info = app_image.verify_image(image, None)
        app_image.virtual_payload(image)
    except app_image.ImageError as err:
        raise CliError(f"--image {path} is not a valid app image ({err}); python -m harness build makes one") from None
    if info.chip_id != app_image.CHIP_ID_VIRTUAL:
        raise CliError(f"--image {path} is built for chip id {info.chip_id}, not the virtual board's: flash it to a "
                       "real ESP32 with esptool, or give an image from python -m harness build")


def check_flash_file(path: str) -> None:
    """A CliError unless the file at `path` is a virtual board's flash (4 MB, a valid partition table)."""
    from harness.virtual.flash import FLASH_SIZE, Flash, FlashError

    if Path(path).is_dir():
        raise CliError(f"--flash {path} is a directory: give the flash file's path")
    try:
        with Flash(Path(path)) as flash:
            if flash.size != FLASH_SIZE:
                raise ValueError(f"{flash.size} bytes, not {FLASH_SIZE}")
            flash.partitions()
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror}") from None
    except (ValueError, FlashError) as err:
        raise CliError(f"--flash {path} is not a virtual board's flash ({err}); give a new path to make one, or "
                       "delete it") from None


def forward_console(board: VirtualBoard) -> None:
    """Each line of stdin to the board's console, as a terminal on its UART would (until EOF)."""
    from harness.virtual.board import VirtualBoardError

    for line in sys.stdin:
        try:
            board.write(line.rstrip("\r\n"))
        except VirtualBoardError as err:  # between two boots: the line is lost, as on a chip
            print(f"board run: {err}", file=sys.stderr, flush=True)


def run_board(args: argparse.Namespace, workdir: Path, image: bytes | None,
              bootloader: tuple[BootloaderConfig, str]) -> int:
    """The board in the foreground until Ctrl-C or SIGTERM; its flash kept only where --flash put it."""
    from harness.provision import provision
    from harness.virtual.board import VirtualBoard

    flash = Path(args.flash) if args.flash else workdir / "flash.bin"
    if not flash.exists():
        new_flash(flash)
    board = VirtualBoard(args.device_id or "virtual", flash, workdir, on_line=lambda line: print(line.text, flush=True),
                         efuse_path=efuse_file(args.flash) if args.flash else None)
    board.bootloader_config, said = bootloader
    board.flash_timing = flash_timings.TIMINGS[args.flash_timing]
    print(said, file=sys.stderr, flush=True)
    if image is not None:
        board.flash(image)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    board.power_on()
    try:
        settings = {k: v for k, v in (("device_id", args.device_id), ("broker_url", args.broker)) if v}
        if settings:
            try:
                provision(board, settings)
            except (AssertionError, ValueError) as err:  # the console refused a setting, or it cannot be typed
                raise CliError(f"provisioning failed: {err}") from None
        threading.Thread(target=forward_console, args=(board,), name="stdin-console", daemon=True).start()
        stop.wait()
    finally:
        board.stop()
        print("board stopped" + (f"; flash kept in {flash}, eFuses in {efuse_file(args.flash)}" if args.flash else ""),
              file=sys.stderr)
    return 0


def cmd_farm_serve(args: argparse.Namespace) -> int:
    from harness.farm import bench

    if args.first_port and args.first_port + args.boards - 1 > PORT[1]:
        raise CliError(f"--first-port {args.first_port} leaves no room for {args.boards} boards' ports (the last "
                       f"would be {args.first_port + args.boards - 1}); use at most {PORT[1] - args.boards + 1}, or 0")
    return bench.serve(args.boards, args.name, args.host, args.dir, args.exporter_config, args.first_port,
                       args.power_port, flash_timings.TIMINGS[args.flash_timing])


def cmd_farm_builds(args: argparse.Namespace) -> int:
    from harness.farm.virtual_builds import write_virtual_builds
    from harness.virtual.firmware import FirmwareBuildError

    try:
        builds = write_virtual_builds(Path(args.dir), args.variant or None)
    except FirmwareBuildError as err:
        print(f"farm builds: {err}", file=sys.stderr)
        return 1
    for build in builds:
        print(build)
    return 0


def cmd_lab(args: argparse.Namespace) -> int:
    import os

    from harness.live import lab
    from harness.live.server import port_taken_message
    from harness.net import PortInUseError

    config = lab.LabConfig(
        boards=args.boards, target=args.target, ports=args.port, bind=args.bind, port=args.http_port,
        broker=args.broker, variant=args.variant, throttle_bps=args.throttle, host_ip=args.host_ip,
        wifi_ssid=args.wifi_ssid or os.environ.get("HIL_WIFI_SSID"),
        wifi_password=args.wifi_password or os.environ.get("HIL_WIFI_PASSWORD"),
        device_timeout_s=args.device_timeout)
    if args.target == "linux" and args.port:
        print("lab: --port is a real board's serial port; add --target esp32 (virtual boards need none)",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    try:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        lab.run(config, stop)
    except KeyboardInterrupt:
        pass
    except PortInUseError:
        print(f"lab: {port_taken_message('--http-port', args.bind, args.http_port)}", file=sys.stderr)
        return 2
    except lab.LabError as err:
        print(f"lab: {err}", file=sys.stderr)
        return 2
    print("lab stopped", file=sys.stderr)
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from harness import catalog

    return catalog.command(write=args.write, check=args.check)


def cmd_push(args: argparse.Namespace) -> int:
    from harness import push_cli

    return push_cli.run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description="OTA HIL harness tools.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="build the virtual-board firmware variants",
                       description="Builds each variant's firmware for the virtual board into "
                                   "build/virtual/<variant>/ and prints its app image's path and version.")
    b.add_argument("variants", nargs="*", type=variant, metavar="VARIANT",
                   help=f"variants to build (default: all of {', '.join(VARIANTS)})")
    b.add_argument("--port-check", action="store_true",
                   help="also build the host port's own test app (device/port/linux/test), which the unit tests "
                        "and the catalog's reset scenarios run: built here, no test waits for it")
    b.set_defaults(func=cmd_build)
    image = sub.add_parser("image", help="inspect or modify ESP app images (ESP32 or virtual)")
    image_sub = image.add_subparsers(dest="image_command", required=True, metavar="COMMAND")
    info = image_sub.add_parser("info", help="verify an image and show its version")
    info.add_argument("file", help="the app image (.bin)")
    info.set_defaults(func=cmd_image_info)
    patch = image_sub.add_parser(
        "patch-version", help="rewrite the version in the app descriptor",
        description="Writes a copy of the image with another version in its app descriptor (esp_app_desc_t), the "
                    "checksum and appended SHA-256 recomputed: how to make the v2 of a test from a build. A "
                    "signed image's signature no longer matches.")
    patch.add_argument("file", help="the app image to copy")
    patch.add_argument("version", help="new version, at most 31 characters")
    patch.add_argument("-o", "--output", required=True, help="where to write the patched image")
    patch.add_argument("--force", action="store_true",
                       help="patch an image that does not verify (its checksum and hash come out valid)")
    patch.set_defaults(func=cmd_image_patch_version)
    corrupt = image_sub.add_parser("corrupt", help="damage an image on purpose (for negative tests)")
    corrupt.add_argument("file", help="the app image to copy, damaged")
    corrupt.add_argument("-o", "--output", required=True, help="where to write the damaged image")
    corrupt.add_argument("--flip", type=offset, nargs="*", default=[], metavar="OFFSET",
                         help="invert the byte at each offset (decimal or 0x hex)")
    corrupt.add_argument("--truncate", type=int, metavar="N", help="keep only the first N bytes")
    corrupt.set_defaults(func=cmd_image_corrupt)
    board = sub.add_parser("board", help="virtual ESP32 boards")
    board_sub = board.add_subparsers(dest="board_command", required=True, metavar="COMMAND")
    run = board_sub.add_parser(
        "run", help="run a virtual board in the foreground until Ctrl-C, printing its serial console",
        description="Boots a virtual ESP32 from a flash file (new, or --flash to keep one between runs), "
                    "flashes --image into ota_0 if given, and provisions device_id and broker_url over the "
                    "console. Lines typed here go to the board's console (config show, status, reboot, "
                    "help). Publish commands to devices/<id>/cmd, e.g. with mosquitto_pub.")
    run.add_argument("--image", help="app image for the virtual board (python -m harness build makes one)")
    run.add_argument("--broker", help="MQTT broker URL, e.g. mqtt://127.0.0.1:1883 (default: the one kept in --flash; "
                                      "a new board without one boots without MQTT, saying broker_url is not set)")
    run.add_argument("--device-id", type=topic_level,
                     help="device id in the MQTT topics (default: derived from the MAC)")
    run.add_argument("--flash", help="flash file to use and keep (created if missing), its eFuses beside it in "
                                     "FLASH.efuse")
    run.add_argument("--sdkconfig", help="the sdkconfig the board's bootloader is built with: its app rollback "
                                         "and anti-rollback options (default: the sdkconfig beside --image, as "
                                         "python -m harness build leaves it, else the reference build's)")
    run.add_argument("--flash-timing", choices=sorted(flash_timings.TIMINGS), default="none",
                     help=flash_timings.TIMINGS_HELP)
    run.set_defaults(func=cmd_board_run)
    push = sub.add_parser(
        "push", help="push an image to a device through the MQTT broker, in acknowledged chunks",
        description="Sends a push command to <prefix>/<device>/cmd, then the image in --chunk byte chunks with at "
                    "most --window in flight, following the device's acknowledgements; exits 0 once the device "
                    "says rebooting (with --confirm-timeout: once the new firmware confirms itself), non-zero "
                    "with the device's reason on any failure.")
    push.add_argument("image", help="the app image to install")
    push.add_argument("--broker", required=True, help="MQTT broker URL, e.g. mqtt://127.0.0.1:1883")
    push.add_argument("--device", required=True, type=topic_level, help="the device id of its topics")
    push.add_argument("--prefix", default="devices", help="the topic prefix (default: devices)")
    push.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                      help=f"chunks in flight, 1..16, window x chunk at most 65536 (default: {DEFAULT_WINDOW})")
    push.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                      help=f"bytes per chunk, 512..16384 (default: {DEFAULT_CHUNK})")
    push.add_argument("--qos", type=int, choices=(0, 1), default=DEFAULT_QOS,
                      help=f"QoS of the chunks (default: {DEFAULT_QOS})")
    push.add_argument("--version", help="the version the image should carry, echoed in the device's reports")
    push.add_argument("--id", default="", type=transfer_id,
                      help="the transfer id: at most 47 characters, no /, + or # (default: push-<random>)")
    push.add_argument("--force", action="store_true", help="install even if the version is not newer")
    push.add_argument("--no-verify", action="store_true",
                      help="send the image without checking it first (by default a damaged image, or one whose "
                           "version is not --version, is refused here, before anything is sent): to test the "
                           "device's own checks")
    push.add_argument("--timeout", type=int_in(1, TIMEOUT_S_MAX), default=300,
                      help=f"the device's deadline for the whole transfer, 1 to {TIMEOUT_S_MAX} s (default: 300); "
                           "the command waits 15 s past it for the device's last word")
    push.add_argument("--confirm-timeout", type=nonnegative_seconds, default=0.0, metavar="S",
                      help="after the reboot, wait up to S seconds for the new firmware's self-test: exit 0 once it "
                           "confirms itself (succeeded), 1 if it is rolled back or says nothing (default: 0, exit "
                           "at the reboot)")
    push.set_defaults(func=cmd_push)
    add_lab_parser(sub)
    cat = sub.add_parser(
        "catalog", help="print the README's scenario catalog table, made from tests_hil",
        description="Collects tests_hil with pytest (--collect-only) and prints the scenario catalog as a "
                    "markdown table: one row per test function, with the ID and the first paragraph of its "
                    "docstring, its parametrize ids, and the targets its markers allow; grouped by file under "
                    "the first line of the file's docstring. Every scenario needs a docstring.")
    where = cat.add_mutually_exclusive_group()
    where.add_argument("--write", metavar="FILE", help="replace the table between the catalog:start and "
                       "catalog:end marker comments in FILE (README.md) instead of printing it")
    where.add_argument("--check", metavar="FILE", help="exit 1 if the table in FILE differs from the generated one")
    cat.set_defaults(func=cmd_catalog)
    farm = sub.add_parser("farm", help="a labgrid board farm: virtual boards exported like USB ones")
    farm_sub = farm.add_subparsers(dest="farm_command", required=True, metavar="COMMAND")
    serve = farm_sub.add_parser(
        "serve", help="run virtual ESP32 boards behind RFC2217 ports until Ctrl-C, for labgrid-exporter",
        description="Each board is a virtual ESP32 behind its own RFC2217 port (esptool flashes it, RTS/DTR reset "
                    "it, as a USB board shared with esp_rfc2217_server), with a power switch over HTTP. "
                    "--exporter-config writes the labgrid exporter configuration that publishes them "
                    "(docs/runner-setup.md, 'A board farm with labgrid').")
    serve.add_argument("--boards", type=int_in(1, 1000), default=2, metavar="N", help="how many boards (default: 2)")
    serve.add_argument("--name", default="vb", help="board names are NAME-1, NAME-2, ... (default: vb)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address the ports listen on and the exporter publishes (default: 127.0.0.1)")
    serve.add_argument("--first-port", type=int_in(*PORT), default=0, metavar="PORT",
                       help="RFC2217 port of the first board, the others following (default: any free ports)")
    serve.add_argument("--power-port", type=int_in(*PORT), default=0, metavar="PORT",
                       help="port of the power switch (default: any free)")
    serve.add_argument("--exporter-config", metavar="FILE", help="write labgrid-exporter's YAML for the boards")
    serve.add_argument("--dir", help="where the boards' flash files go, kept (default: a new temporary "
                       "directory, removed when the bench stops)")
    serve.add_argument("--flash-timing", choices=sorted(flash_timings.TIMINGS), default="chip",
                       help="the boards' flash: chip (an ESP32's write and erase rates, the default: they stand for "
                            "USB boards) or none (no time: faster, for trying the farm out)")
    serve.set_defaults(func=cmd_farm_serve)
    builds = farm_sub.add_parser(
        "builds", help="write idf.py-style builds of the virtual firmware, to flash virtual boards over RFC2217",
        description="Writes DIR/build_esp32_<variant>/ (flasher_args.json, bootloader, partition table, and the "
                    "virtual build of the variant as the app), for pytest --target esp32 --app-path DIR over a "
                    "farm's virtual boards.")
    builds.add_argument("dir", help="the directory to pass as --app-path")
    builds.add_argument("--variant", action="append", type=variant,
                        help=f"a variant (repeatable; default: all of {', '.join(VARIANTS)})")
    builds.set_defaults(func=cmd_farm_builds)
    return p


def add_lab_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from harness.live.server import DEFAULT_PORT

    lab = sub.add_parser(
        "lab", help="a bench of boards with a live page in the browser: versions, progress, consoles, updates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Starts an MQTT broker, the firmware server and the boards (N virtual boards, or real ESP32 "
                    "boards on --port), and serves a page on http://BIND:HTTP_PORT/: one row per board (id, "
                    "version, slot, ota_state, online, last outcome, reset reason) with a progress bar during "
                    "an update; a board's serial console and MQTT transcript on click; upload an image (or "
                    "use a built variant at a version), update one board, a selection or all, run a staged "
                    "rollout (harness.fleet), cancel. Changes are pushed to the page as they happen "
                    "(server-sent events). Secrets are masked. Ctrl-C stops everything.",
        epilog="examples:\n"
               "  python -m harness lab                               3 virtual boards, http://127.0.0.1:8765/\n"
               "  python -m harness lab --boards 10 --throttle 200000  slower downloads, to watch the bars\n"
               "  python -m harness lab --target esp32 --port /dev/ttyUSB0 --port /dev/ttyUSB1 \\\n"
               "      --host-ip 192.168.1.20 --wifi-ssid lab   real boards running the firmware under test")
    lab.add_argument("--boards", type=int, default=3, metavar="N",
                     help="virtual boards to start (default: 3; ignored with --target esp32)")
    lab.add_argument("--variant", default=project.DEFAULT_VARIANT, choices=VARIANTS,
                     help="the firmware variant the virtual boards run (default: %(default)s)")
    lab.add_argument("--http-port", type=int_in(*PORT), default=DEFAULT_PORT, metavar="PORT",
                     help="the page's port (default: %(default)s; 0 picks a free one, printed at start)")
    lab.add_argument("--bind", default="127.0.0.1", metavar="ADDRESS",
                     help="the page's address (default: 127.0.0.1, this machine only: whoever reaches the page "
                          "can update the boards; 0.0.0.0 for every interface)")
    lab.add_argument("--broker", choices=("embedded", "mosquitto"), default="embedded",
                     help="the MQTT broker: the embedded amqtt broker, or a mosquitto subprocess (default: "
                          "%(default)s)")
    lab.add_argument("--throttle", type=int_in(1, 2**31 - 1), metavar="BYTES_PER_S",
                     help="serve every image at most this fast (the firmware server's FaultPlan throttle_bps), "
                          "so an update takes long enough to watch (default: full speed)")
    lab.add_argument("--device-timeout", type=positive_seconds, default=120.0, metavar="S",
                     help="a staged rollout's deadline per device, in seconds (default: %(default)s)")
    real = lab.add_argument_group("real boards")
    real.add_argument("--target", choices=("linux", "esp32"), default="linux",
                      help="linux: virtual boards (default); esp32: the boards on --port, already flashed with "
                           "the firmware under test (idf.py flash), provisioned by the lab")
    real.add_argument("--port", action="append", default=[], metavar="PORT",
                      help="a real board's serial port (/dev/ttyUSB0, rfc2217://host:port); once per board")
    real.add_argument("--host-ip", metavar="ADDRESS",
                      help="this machine's address on the boards' network: the broker and firmware server "
                           "listen on 0.0.0.0 and are advertised there (needed with --target esp32)")
    real.add_argument("--wifi-ssid", metavar="SSID", help="the Wi-Fi network for the real boards (or $HIL_WIFI_SSID)")
    real.add_argument("--wifi-password", metavar="PASSWORD",
                      help="its password (or $HIL_WIFI_PASSWORD); masked on the page and in every log")
    lab.set_defaults(func=cmd_lab)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Ctrl-C (SIGINT) stops every command, as --help says, even when it was started in the background by a
    # script or CI job: the shell then starts it with SIGINT ignored, Python keeps that, and a lab or board
    # interrupted before it installs its own handler would never stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # `kill -USR1 <pid>` prints every thread's stack: what a lab or board that does not stop is waiting on
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        return args.func(args)
    except CliError as err:
        print(f"{command_name(args)}: {err}", file=sys.stderr)
        return 2


def command_name(args: argparse.Namespace) -> str:
    """The command as typed: "image info", "board run", "push"."""
    return " ".join(filter(None, (args.command, getattr(args, f"{args.command}_command", None))))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a Ctrl-C no command was waiting for (before it started, or once it had ended)
        sys.exit(130)
