"""`python -m harness board run`: a virtual board in the foreground, updated by mosquitto_pub."""

import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.broker import EmbeddedBroker
from harness.formats import app_image
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.virtual import firmware
from harness.virtual.efuse import Efuses
from tests_unit.cli_board import cli_board
from tests_unit.cli_lab import descendants

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")


def test_board_run_updates_itself_from_a_mosquitto_pub_command(tmp_path: Path) -> None:
    build = firmware.build()
    image = tmp_path / "v1.bin"
    image.write_bytes(build.image)
    with EmbeddedBroker() as broker, FirmwareServer() as server, DeviceLink(broker.url) as link:
        artifact = server.add(build.image_with_version("2.0.0"))
        with cli_board(image, broker.url, "cli1", tmp_path / "flash.bin") as board:
            link.wait_status("cli1", timeout=20, description="first status of the CLI board")
            since = link.cursor()
            command = json.dumps({"type": "ota", "id": "cli-ota", "url": artifact.url})
            subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
                            "-t", "devices/cli1/cmd", "-m", command], check=True, timeout=10)
            link.wait_ota("cli1", "cli-ota", "succeeded", timeout=30, since=since, fail_on={"failed", "rejected"})
            output = board.stop()
    assert board.proc.returncode == 0, output
    assert "app_init: App version:      2.0.0" in output
    assert "board stopped" in output


def _ends_within(pid: int, timeout: float) -> bool:
    """Waits for the process to end (its pidfd becomes readable), at most `timeout` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_the_firmware_dies_with_a_killed_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL leaves the harness no time to stop its board: the app process ends with it (the host port's
    parent-death signal) rather than running on as an orphan with its flash file and broker session."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the killed command cannot remove its work directory
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    with (EmbeddedBroker() as broker, DeviceLink(broker.url) as link,
          cli_board(image, broker.url, "cli2", tmp_path / "flash.bin") as board):
        link.wait_status("cli2", timeout=20, description="first status of the CLI board")
        apps = descendants(board.proc.pid)
        assert apps, "no firmware process under the CLI board"
        board.proc.kill()
        board.proc.wait(10)
        left = [pid for pid in apps if not _ends_within(pid, 5)]
    assert not left, f"firmware processes left running after the harness was killed: {left}"


def _board_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "board", "run", *args], check=False,
                          capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize(("case", "expected"), [
    ("broker_without_scheme", "--broker: broker URL '127.0.0.1:1883' must look like mqtt://host:port"),
    ("not_an_image", "is not a valid app image"),
    ("an_esp32_image", "not the virtual board's: flash it to a real ESP32 with esptool"),
    ("flash_not_a_flash", "is not a virtual board's flash (5000 bytes, not 4194304)"),
    ("flash_a_directory", "is a directory: give the flash file's path"),
])
def test_board_run_refuses_bad_input_before_it_boots(tmp_path: Path, case: str, expected: str) -> None:
    """Each mistake is one line naming the option and the fix, exit status 2, and nothing left in TMPDIR (the
    firmware would have refused the broker URL too, after a boot; before, a URL without mqtt:// was taken and
    the agent failed at every boot)."""
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(5000))
    esp32 = tmp_path / "esp32.bin"
    esp32.write_bytes(app_image.set_chip_id(firmware.build().image, app_image.CHIP_ID_ESP32))
    args = {
        "broker_without_scheme": ["--image", str(image), "--broker", "127.0.0.1:1883"],
        "not_an_image": ["--image", str(junk)],
        "an_esp32_image": ["--image", str(esp32)],
        "flash_not_a_flash": ["--image", str(image), "--flash", str(junk)],
        "flash_a_directory": ["--image", str(image), "--flash", str(tmp_path)],
    }[case]
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    ran = _board_run(*args, env={**os.environ, "TMPDIR": str(tmpdir)})
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert expected in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    assert not list(tmpdir.iterdir())


def test_board_run_leaves_only_the_flash_it_was_asked_to_keep(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped with Ctrl-C, the board's work directory (the app, its console files) goes; --flash stays."""
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the CLI board's, inherited
    with (EmbeddedBroker() as broker, DeviceLink(broker.url) as link,
          cli_board(image, broker.url, "cli3", tmp_path / "flash.bin") as board):
        link.wait_status("cli3", timeout=20, description="first status of the CLI board")
        assert [p.name[:10] for p in tmpdir.iterdir()] == ["hil-board-"]
        output = board.stop()
    assert board.proc.returncode == 0, output
    assert f"flash kept in {tmp_path / 'flash.bin'}, eFuses in {tmp_path / 'flash.bin.efuse'}" in output
    assert (tmp_path / "flash.bin").stat().st_size == 4 * 1024 * 1024
    assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())


def test_board_run_keeps_the_efuses_beside_the_flash(tmp_path: Path) -> None:
    """With --flash the chip is kept between runs, its eFuses too (anti-rollback's secure version is burnt
    there, never cleared); a new flash file is a new chip, with blank eFuses."""
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    flash = tmp_path / "flash.bin"
    efuses = Efuses(tmp_path / "flash.bin.efuse")

    def run_once() -> None:
        with EmbeddedBroker() as broker, DeviceLink(broker.url) as link, \
                cli_board(image, broker.url, "cli-efuse", flash) as board:
            link.wait_status("cli-efuse", timeout=20, description="first status of the CLI board")
            assert board.stop() and board.proc.returncode == 0, board.output

    run_once()
    assert efuses.path.exists() and efuses.secure_version_field() == 0
    efuses.burn_secure_version_bits(0b11)  # as an app with secure_version 2 would, once confirmed
    run_once()
    assert efuses.secure_version_field() == 0b11, "the kept chip's eFuses were blanked"
    flash.unlink()
    run_once()
    assert efuses.secure_version_field() == 0, "a new flash file kept an old chip's eFuses"


ANTI_ROLLBACK_CHECK = "boot: Enabled a check secure version of app for anti rollback"


def test_board_run_boots_with_the_bootloader_of_the_image_s_build(tmp_path: Path) -> None:
    """A chip's bootloader is built from the project's sdkconfig: an image of the anti_rollback build, given
    where python -m harness build left it, boots with anti-rollback (the eFuses take its secure version);
    --sdkconfig names another build's options, and an image without an sdkconfig beside it boots with the
    reference build's. Each run says which on stderr."""
    build = firmware.build("anti_rollback")
    assert build.bootloader.anti_rollback and build.image_path.with_name("sdkconfig").is_file()
    secure_version = app_image.read_descriptor(build.image).secure_version
    assert secure_version >= 1, "the anti_rollback build's app should carry a secure version"
    copied = tmp_path / "copied.bin"
    copied.write_bytes(build.image)
    default_sdkconfig = firmware.build().image_path.with_name("sdkconfig")

    def run(image: Path, name: str, *options: str) -> tuple[str, int]:
        flash = tmp_path / f"{name}.bin"
        with EmbeddedBroker() as broker, DeviceLink(broker.url) as link, \
                cli_board(image, broker.url, name, flash, *options) as board:
            link.wait_status(name, timeout=20, description=f"first status of the CLI board {name}")
            output = board.stop()
        assert board.proc.returncode == 0, output
        return output, Efuses(tmp_path / f"{name}.bin.efuse").secure_version_field()

    output, efuse = run(build.image_path, "cli-ar")
    assert f"bootloader with the options of {build.image_path.with_name('sdkconfig')} (app rollback on, " \
           "anti-rollback on)" in output
    assert ANTI_ROLLBACK_CHECK in output and efuse == (1 << secure_version) - 1, (efuse, output)

    output, efuse = run(build.image_path, "cli-ar-default", "--sdkconfig", str(default_sdkconfig))
    assert "anti-rollback off" in output and ANTI_ROLLBACK_CHECK not in output and efuse == 0, output

    output, efuse = run(copied, "cli-ar-copied")
    assert "bootloader with the reference build's options (app rollback on, anti-rollback off); --sdkconfig " \
           "FILE for a build's own" in output
    assert ANTI_ROLLBACK_CHECK not in output and efuse == 0, output


def test_board_run_refuses_a_file_that_is_not_an_sdkconfig(tmp_path: Path) -> None:
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    junk = tmp_path / "junk.txt"
    junk.write_text("not a config\n")
    not_one = f"--sdkconfig {junk} is not an sdkconfig (no CONFIG_ line); give the one in the build's directory"
    for sdkconfig, expected in ((junk, not_one), (tmp_path / "missing", "--sdkconfig: cannot read")):
        ran = _board_run("--image", str(image), "--sdkconfig", str(sdkconfig), "--flash", str(tmp_path / "f.bin"))
        assert ran.returncode == 2 and expected in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
        assert not (tmp_path / "f.bin").exists(), "a refused run made its flash file"


def test_board_run_forwards_typed_lines_to_the_console(tmp_path: Path) -> None:
    """Without --broker the firmware asks for `config set broker_url ...` on its console: what is typed on the
    command's stdin reaches it, and the answers come back on stdout."""
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "board", "run", "--image", str(image)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()

    def wait_line(pattern: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no output line matched {pattern!r} within {timeout} s")

    try:
        wait_line(r"broker_url is not set")
        assert proc.stdin is not None
        proc.stdin.write("config get selftest_timeout_s\n")
        proc.stdin.flush()
        assert re.match(r"^selftest_timeout_s=\d+$", wait_line(r"selftest_timeout_s="))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    assert proc.returncode == 0
