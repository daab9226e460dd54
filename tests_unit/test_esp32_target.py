"""The real-board path (--target esp32) without hardware.

- Flashing and the baseline restore, through esptool, against esp32-mock-bootloader's ROM protocol
  over socket://: the right files at the right offsets, otadata and nvs erased, ota_0 rewritten
  only when an update overwrote it.
- Whole sessions (pytest in a subprocess) against an emulated dev board on rfc2217:// (the mock's
  ROM protocol for download mode, the virtual board for the app, esp_rfc2217_server's reset
  handling): flashed once, otadata erased before every test, scenarios passing; a port that
  disappears stops the session cleanly.
- Selection: --collect-only shows what is deselected and why; no board is an error in < 10 s.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from esp32_mock_bootloader import mock_bootloader
from esptool.cmds import write_flash

from harness import targets
from harness.boards.esp32 import Esp32Board, LineAssembler, PortLostError
from harness.boards.esp32_bench import udp_source_address
from harness.boards.inventory import (
    BoardPool,
    BoardSpec,
    InventoryError,
    load_inventory,
    normalize_mac,
    specs_from_ports,
)
from harness.boards.power import CommandPower, UhubctlPower, parse_power
from harness.formats import app_image
from harness.formats.otadata import OtaEntry, OtaState
from harness.idf_build import FirmwareMissingError, IdfFirmware, load_build
from harness.masking import mask_secrets
from harness.targets import WifiCredentials
from harness.virtual import firmware as virtual_firmware
from tests_unit.esp32_emulator import Esp32Emulator, FlashOp, write_idf_build

ROOT = Path(__file__).resolve().parents[1]
BOOTLOADER, TABLE, OTADATA, NVS, OTA_0, OTA_1 = 0x1000, 0x8000, 0xF000, 0x9000, 0x20000, 0x1D0000
QUIET = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]


def _app(version: str = "1.0.0", size: int = 48_000) -> bytes:
    """A small ESP32 app image (chip id 0) with an app descriptor: enough for the flashing path."""
    image = app_image.build_virtual_image(os.urandom(size), version=version, project_name="hil_ota_agent")
    return app_image.set_chip_id(image, app_image.CHIP_ID_ESP32)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _blank(size: int) -> str:
    return _md5(b"\xff" * size)


# --- builds ---


def test_missing_build_names_the_idf_py_command(tmp_path: Path) -> None:
    with pytest.raises(FirmwareMissingError) as err:
        load_build(tmp_path / "device", "esp32", "default")
    assert "idf.py -B build_esp32_default -DSDKCONFIG=build_esp32_default/sdkconfig" in str(err.value)
    assert "set-target esp32 build" in str(err.value)
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "sdkconfig.ci.crash_on_boot").touch()
    with pytest.raises(FirmwareMissingError) as err:
        load_build(tmp_path / "device", "esp32", "crash_on_boot")
    assert "sdkconfig.ci.crash_on_boot" in str(err.value) and "build_esp32_crash_on_boot" in str(err.value)


def test_missing_build_command_uses_the_project_defaults(tmp_path: Path) -> None:
    own = tmp_path / "app" / "sdkconfig.defaults"
    with pytest.raises(FirmwareMissingError) as err:
        IdfFirmware(tmp_path / "app", "esp32", (own,)).build()
    assert f"-DSDKCONFIG_DEFAULTS={own} set-target esp32 build" in str(err.value)


def test_build_layout_and_versions_are_patched_images_of_one_build(tmp_path: Path) -> None:
    write_idf_build(tmp_path / "device", _app("1.0.0"))
    firmware = IdfFirmware(tmp_path / "device", "esp32")
    build = firmware.build()
    assert (build.bootloader.offset, build.partition_table.offset, build.ota_0.offset) == (BOOTLOADER, TABLE, OTA_0)
    assert (build.otadata.offset, build.otadata.size, build.nvs.offset) == (OTADATA, 0x2000, NVS)
    assert firmware.base_version == "1.0.0"
    v2 = firmware.image(version="2.0.0")
    assert app_image.read_descriptor(v2).version == "2.0.0"
    assert app_image.verify_image(v2, app_image.CHIP_ID_ESP32).length == len(build.image)


# --- flashing and restoring, against esp32-mock-bootloader ---


def _flash_md5(url: str, regions: list[tuple[int, int]]) -> list[str]:
    board = Esp32Board("check", url)
    try:
        with board.bootloader() as esp:
            return [esp.flash_md5sum(offset, size) for offset, size in regions]
    finally:
        board.close()


def _simulate_an_update(url: str, into_ota_0: bytes | None = None) -> None:
    """What an OTA leaves behind: a new image in a slot, otadata pointing at it, a record in nvs."""
    board = Esp32Board("ota", url)
    files = [(OTA_1, _app("2.0.0")), (OTADATA, OtaEntry.make(2, OtaState.VALID).pack()), (NVS, b"\x5a" * 0x1000)]
    if into_ota_0 is not None:
        files.append((OTA_0, into_ota_0))
    try:
        with board.bootloader() as esp:
            write_flash(esp, files, no_progress=True)
    finally:
        board.close()


def test_flash_once_then_restore_the_baseline_without_reflashing(tmp_path: Path) -> None:
    app = _app("1.0.0")
    build = load_build(write_idf_build(tmp_path / "device", app).parent, "esp32")
    with mock_bootloader(chip="esp32") as mock:
        url = mock.url()
        assert url.startswith("socket://")
        board = Esp32Board("mock", url)
        board.flash_build(build)
        board.close()
        bootloader, table = build.bootloader.data, build.partition_table.data
        assert _flash_md5(url, [(BOOTLOADER, len(bootloader)), (TABLE, len(table)), (OTA_0, len(app)),
                                (OTADATA, 0x2000), (NVS, 0x6000)]) == [
            _md5(bootloader), _md5(table), _md5(app), _blank(0x2000), _blank(0x6000)]

        # An update to ota_1: the restore erases otadata and nvs and leaves ota_0 alone.
        _simulate_an_update(url)
        assert _flash_md5(url, [(OTADATA, 0x2000)]) != [_blank(0x2000)]
        board = Esp32Board("mock", url, build=build)
        assert board.restore_flash() is False  # ota_0 still holds the baseline: not rewritten
        board.close()
        assert _flash_md5(url, [(OTADATA, 0x2000), (NVS, 0x6000), (OTA_0, len(app))]) == [
            _blank(0x2000), _blank(0x6000), _md5(app)]

        # A second update landed in ota_0 (v1 -> v2 -> v3): the restore writes the baseline back.
        _simulate_an_update(url, into_ota_0=_app("3.0.0"))
        board = Esp32Board("mock", url, build=build)
        assert board.restore_flash() is True
        board.close()
        assert _flash_md5(url, [(OTADATA, 0x2000), (NVS, 0x6000), (OTA_0, len(app))]) == [
            _blank(0x2000), _blank(0x6000), _md5(app)]


def test_a_port_that_does_not_exist_is_a_lost_board(tmp_path: Path) -> None:
    board = Esp32Board("gone", str(tmp_path / "ttyUSB9"))
    start = time.monotonic()
    with pytest.raises(PortLostError, match="cannot open serial port"):
        board.open()
    with pytest.raises(PortLostError):  # expect() does not wait out its timeout on a lost port
        board.expect("never", timeout=30)
    assert time.monotonic() - start < 2


# --- the console as a real UART shows it ---


def test_console_lines_prompt_echo_colours_and_secrets() -> None:
    lines: list[str] = []
    secrets = {"hunter22"}
    assembler = LineAssembler(lines.append, secrets)
    assembler.feed(b"\x1b[0;32mI (312) wifi_sta: got ip:10.0.0.7\x1b[0m\r\n\x1b[0;32mhil> \x1b[0m")
    assert lines == ["I (312) wifi_sta: got ip:10.0.0.7", "hil>"]
    assembler.feed(b"config set wifi_pass")  # the echo arrives in pieces
    assembler.feed(b"word hunter22\r\nOK wifi_password set; reboot to apply\r\nhil> ")
    assert lines[2:] == ["config set wifi_password ********", "OK wifi_password set; reboot to apply", "hil>"]
    assembler.feed("température\r\n".encode()[:3])
    assembler.feed("température\r\n".encode()[3:])
    assert lines[-1] == "température"
    assert mask_secrets("a hunter22 b", secrets) == "a ******** b"
    assert "hunter22" not in repr(WifiCredentials("lab", "hunter22"))


# --- inventory, pool, power ---


def test_inventory_in_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "boards.toml"
    toml.write_text('[[board]]\nname = "a"\nport = "/dev/ttyUSB0"\npower = "uhubctl:1-1.4:2"\n'
                    'capabilities = ["wifi"]\n\n[[board]]\nname = "b"\nserial_number = "0001"\ntarget = "esp32s3"\n'
                    '\n[[board]]\nname = "c"\nmac = "24-0A-C4-12-34-56"\n')
    a, b, c = load_inventory(toml)
    assert a.capabilities == {"wifi", "power_control"} and a.has_power
    assert (b.serial_number, b.target) == ("0001", "esp32s3")
    assert c.mac == "24:0a:c4:12:34:56"
    yaml = tmp_path / "boards.yaml"
    yaml.write_text("boards:\n  - name: x\n    port: rfc2217://lab:4000?ign_set_control\n")
    assert load_inventory(yaml)[0].port == "rfc2217://lab:4000?ign_set_control"
    toml.write_text('[[board]]\nname = "a"\nprot = "/dev/ttyUSB0"\n')
    with pytest.raises(InventoryError, match="unknown keys"):
        load_inventory(toml)


def test_port_globs_and_lists(tmp_path: Path) -> None:
    for name in ("ttyUSB0", "ttyUSB1"):
        (tmp_path / name).touch()
    specs = specs_from_ports(f"{tmp_path}/ttyUSB*|rfc2217://h:4000", "esp32")
    assert [s.port for s in specs] == [f"{tmp_path}/ttyUSB0", f"{tmp_path}/ttyUSB1", "rfc2217://h:4000"]


def test_pool_leases_all_boards_at_once_and_prefers_the_workers_own(tmp_path: Path) -> None:
    specs = [BoardSpec(name=f"b{i}", port=f"/dev/b{i}") for i in range(3)]
    worker1 = BoardPool(specs, worker_index=1, worker_count=3, lock_dir=tmp_path)
    worker0 = BoardPool(specs, worker_index=0, worker_count=3, lock_dir=tmp_path)
    mine = worker1.acquire(1)
    assert mine[0].spec.name == "b1"
    two = worker0.acquire(2, timeout=0)
    assert [lease.spec.name for lease in two] == ["b0", "b2"]
    with pytest.raises(Exception, match="stayed in use"):
        worker0.acquire(1, timeout=0)
    worker1.release(mine)
    assert worker0.acquire(1, timeout=0)[0].spec.name == "b1"


def test_power_specs(tmp_path: Path) -> None:
    assert parse_power("uhubctl:1-1.4:2") == UhubctlPower("1-1.4", "2")
    log = tmp_path / "relay.log"
    power = parse_power(f"command:sh -c 'echo {{action}} {{state}} >> {log}'")
    assert isinstance(power, CommandPower)
    power.off()
    power.on()
    assert log.read_text().split() == ["off", "0", "on", "1"]
    with pytest.raises(ValueError):
        parse_power("command:relay 3")


def test_udp_trick_gives_the_local_address_on_the_route() -> None:
    assert udp_source_address("127.0.0.1") == "127.0.0.1"


# --- whole sessions against an emulated board on rfc2217 ---


def _pytest(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """pytest on the given tests from the repository's root. A test file made in tmp_path goes with --rootdir
    tmp_path: the rootdir would otherwise be the common ancestor of the paths given (/tmp), and the session's
    timelines (ROOTDIR/build/timelines) would stay in /tmp/build."""
    return subprocess.run([sys.executable, "-m", "pytest", *QUIET, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def device_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """idf.py-style builds whose app is the firmware built for the virtual board."""
    device = tmp_path_factory.mktemp("idf") / "device"
    for variant in ("default", "selftest_fail", "crash_on_boot"):
        write_idf_build(device, virtual_firmware.build(variant).image, variant=variant)
    return device


SESSION_TESTS = '''
import pytest

def test_first(board, link):
    assert link.latest_status(board.device_id)["partition"] == "ota_0"

def test_update_then_next_test_is_back_on_the_baseline(board, link, fw_server, firmware):
    since = link.cursor()
    link.send(board.device_id, {"type": "ota", "id": "u1", "url": fw_server.add(firmware.image(version="2.0.0")).url})
    link.wait_ota(board.device_id, "u1", "succeeded", timeout=40, since=since, fail_on={"failed", "rejected"})

def test_last(board, link, firmware):
    status = link.latest_status(board.device_id)
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")
'''


def test_session_flashes_once_and_restores_the_baseline_before_every_test(tmp_path: Path, device_dir: Path) -> None:
    (tmp_path / "test_session.py").write_text(SESSION_TESTS)
    emulator = Esp32Emulator(tmp_path / "board")
    try:
        result = _pytest(str(tmp_path / "test_session.py"), "--rootdir", str(tmp_path), "--target", "esp32",
                         "--port", emulator.url,
                         "--app-path", str(device_dir), "--hil-wifi-ssid", "lab", "--hil-wifi-password", "hunter22",
                         "-v", "-rA")
    finally:
        emulator.close()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "3 passed" in output
    assert "hunter22" not in output  # typed on the console, echoed back, never printed
    app = (device_dir / "build_esp32_default" / "hil_ota_agent.bin").read_bytes()
    writes = [(op.offset, op.length, op.md5) for op in emulator.ops if op.kind == "write"]
    # Flashed once: bootloader, partition table and the app in ota_0. The update's own writes went
    # to ota_1 through the firmware, which the ROM protocol does not see.
    build = device_dir / "build_esp32_default"
    assert writes == [
        (BOOTLOADER, len((build / "bootloader/bootloader.bin").read_bytes()), _md5((build / "bootloader/bootloader.bin")
                                                                                   .read_bytes())),
        (TABLE, 0xC00, _md5((build / "partition_table/partition-table.bin").read_bytes())),
        (OTA_0, len(app), _md5(app)),
    ]
    erases = [op for op in emulator.ops if op.kind == "erase"]
    # otadata and nvs: with the flash (the session's first use of the board, to learn its address),
    # then before each of the three tests.
    assert erases == [FlashOp("erase", OTADATA, 0x2000), FlashOp("erase", NVS, 0x6000)] * 4


@pytest.mark.slow
def test_the_catalog_runs_on_the_real_board_path(tmp_path: Path, device_dir: Path) -> None:
    """A slice of the scenario catalog, unchanged, through esptool, RTS resets and the UART console."""
    emulator = Esp32Emulator(tmp_path / "board")
    try:
        result = _pytest("tests_hil/test_update_to_new_version.py", "tests_hil/test_rollback_when_selftest_fails.py",
                         "tests_hil/test_console_and_status.py", "--target", "esp32", "--port", emulator.url,
                         "--app-path", str(device_dir))
    finally:
        emulator.close()
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


def test_a_board_that_disappears_stops_the_session_cleanly(tmp_path: Path, device_dir: Path) -> None:
    (tmp_path / "test_session.py").write_text(SESSION_TESTS)
    # The board takes the session's flash (first test), then its server goes away before the
    # second test's restore.
    emulator = Esp32Emulator(tmp_path / "board", vanish_after_rom_sessions=1)
    start = time.monotonic()
    try:
        result = _pytest(str(tmp_path / "test_session.py"), "--rootdir", str(tmp_path), "--target", "esp32",
                         "--port", emulator.url,
                         "--app-path", str(device_dir), "--hil-host-ip", "127.0.0.1", timeout=120)
    finally:
        emulator.close()
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "real board lost" in output and emulator.url.split("?")[0] in output, output[-4000:]
    assert "1 passed" in output and "1 error" in output, output[-3000:]  # the third test never starts
    assert time.monotonic() - start < 90


# --- selection and the no-board error ---


def test_collect_only_shows_the_selection_and_the_reasons() -> None:
    result = _pytest("tests_hil", "--target", "esp32", "--collect-only", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "test_power_cut_at_flash_operations_of_an_ota[mosquitto]: needs the virtual board" in out
    assert "test_broadcast_updates_every_board: needs 2 boards at once" in out
    assert "tests_hil/test_update_to_new_version.py::test_update_to_new_version" in out
    assert "deselected" in out.splitlines()[-1]


def test_power_backend_keeps_power_scenarios_selected(tmp_path: Path) -> None:
    (tmp_path / "test_power.py").write_text("import pytest\n\n@pytest.mark.needs_power_control\n"
                                            "def test_cut(): pass\n")
    without = _pytest(str(tmp_path / "test_power.py"), "--target", "esp32", "--collect-only", "-q")
    assert "needs power control" in without.stdout
    with_power = _pytest(str(tmp_path / "test_power.py"), "--target", "esp32", "--collect-only", "-q",
                         "--port", "/dev/ttyUSB0", "--hil-power", "uhubctl:1-1:2")
    assert "deselected" not in with_power.stdout and "test_cut" in with_power.stdout


def test_no_board_is_a_clear_error_in_under_10_seconds(tmp_path: Path) -> None:
    start = time.monotonic()
    result = _pytest("tests_hil", "--target", "esp32", "--port", str(tmp_path / "ttyUSB0"))
    assert time.monotonic() - start < 10
    assert result.returncode == 4  # usage error: nothing ran, nothing fell back to the virtual board
    out = result.stdout + result.stderr
    assert "no board found at" in out and "--port /dev/ttyUSB0" in out and "rfc2217://" in out


def test_an_rfc2217_port_nobody_serves_is_no_board() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    result = _pytest("tests_hil", "--target", "esp32", "--port", f"rfc2217://127.0.0.1:{port}?ign_set_control")
    assert time.monotonic() - start < 10
    assert result.returncode == 4 and "no board found at rfc2217://127.0.0.1" in result.stdout + result.stderr


@pytest.mark.parametrize(("options", "named"), [
    (["--port", "/dev/ttyUSB0"], "--port"),
    (["--app-path", "examples/acme_sensor"], "--app-path"),
    (["--hil-wifi-ssid", "lab", "--hil-host-ip", "192.168.1.20"], "--hil-wifi-ssid, --hil-host-ip"),
    (["--hil-power", "uhubctl:1-1:2", "-p", "no:pytest_embedded"], "--hil-power"),
])
def test_real_board_options_with_the_virtual_target_are_a_usage_error(options: list[str], named: str) -> None:
    """Forgetting --target esp32 ran the catalog on the virtual board and passed, the board's options ignored:
    a green run that looked like one on the hardware (or, with --app-path, on another app)."""
    result = _pytest("tests_hil/test_versions.py", "--collect-only", "-q", *options)
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"{named}: for a real board, but the target is linux" in result.stderr, result.stderr
    assert "add --target esp32" in result.stderr


def test_target_option_without_pytest_embedded() -> None:
    """Without pytest-embedded the harness registers --target (default linux) and --port itself."""
    virtual = _pytest("tests_hil/test_versions.py", "-p", "no:pytest_embedded", "--collect-only", "-q")
    assert virtual.returncode == 0 and "deselected" not in virtual.stdout, virtual.stdout + virtual.stderr
    real = _pytest("tests_hil/test_versions.py", "-p", "no:pytest_embedded", "--target", "esp32", "--collect-only",
                   "-q")
    assert real.returncode == 0 and "needs 2 boards at once" in real.stdout, real.stdout + real.stderr


def test_a_session_without_a_dut_leaves_no_pytest_embedded_directory(tmp_path: Path) -> None:
    """pytest-embedded makes <root-logdir>/pytest-embedded/<date>/ in every session; the harness removes it
    when no dut wrote in it (each run and xdist worker left one behind in /tmp)."""
    logs = tmp_path / "logs"
    result = _pytest("tests_hil/test_versions.py::test_back_to_back_updates_alternate_slots", "--root-logdir",
                     str(logs), "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert logs.is_dir(), "pytest-embedded did not run: this test checks nothing"
    assert not (logs / "pytest-embedded").exists(), sorted(p.name for p in logs.rglob("*"))


def test_passwords_never_show_in_reprs() -> None:
    settings = WifiCredentials("lab", "hunter22").settings()
    assert settings["wifi_password"] == "hunter22" and "hunter22" not in repr(settings)


def test_missing_build_is_a_clear_error(tmp_path: Path) -> None:
    emulator_port = tmp_path / "ttyUSB0"
    emulator_port.touch()  # a port that exists; the build does not
    result = _pytest("tests_hil/test_versions.py", "--target", "esp32", "--port", str(emulator_port),
                     "--app-path", str(tmp_path / "device"))
    assert result.returncode == 4
    assert "idf.py -B build_esp32_default" in result.stdout + result.stderr


class _Options:
    """The part of pytest.Config the option readers use."""

    def __init__(self, **values: object) -> None:
        self.values = values

    def getoption(self, name: str, default: object = None) -> object:
        return self.values.get(name, default)


def test_boards_by_pytest_embedded_serial_numbers_and_macs() -> None:
    config = _Options(**{"--port-serial-number": "0001, 0002", "--port-mac": "24:0A:C4:12:34:56"})
    specs = targets._specs_by_identity(config, "esp32", None)  # type: ignore[arg-type]
    assert [(s.serial_number, s.mac) for s in specs] == [("0001", None), ("0002", None),
                                                          (None, normalize_mac("24:0a:c4:12:34:56"))]
    with pytest.raises(pytest.UsageError, match="--port-mac: MAC '24:0a' does not have 12 hex digits"):
        targets._specs_by_identity(_Options(**{"--port-mac": "24:0a"}), "esp32", None)  # type: ignore[arg-type]


def test_esptool_baud_from_the_option_then_espbaud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESPBAUD", raising=False)
    assert targets.esptool_baud(_Options()) == targets.DEFAULT_BAUD  # type: ignore[arg-type]
    monkeypatch.setenv("ESPBAUD", "921600")
    assert targets.esptool_baud(_Options()) == 921600  # type: ignore[arg-type]
    assert targets.esptool_baud(_Options(**{"--esptool-baud": 115200})) == 115200  # type: ignore[arg-type]
    monkeypatch.setenv("ESPBAUD", "fast")
    with pytest.raises(pytest.UsageError, match="ESPBAUD='fast'"):
        targets.esptool_baud(_Options())  # type: ignore[arg-type]


@pytest.mark.parametrize("embedded", [True, False], ids=["with_pytest_embedded", "without_it"])
def test_pytest_embedded_option_names_work_with_and_without_it(tmp_path: Path, embedded: bool) -> None:
    """--app-path and --build-dir choose the build (the error names the build dir given), --esptool-baud
    is accepted, whether pytest-embedded registered the options or the harness did."""
    port = tmp_path / "ttyUSB0"
    port.touch()
    plugin = [] if embedded else ["-p", "no:pytest_embedded"]
    result = _pytest("tests_hil/test_versions.py", *plugin, "--target", "esp32", "--port", str(port),
                     "--app-path", str(tmp_path / "app"), "--build-dir", "my_build", "--esptool-baud", "115200")
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"{tmp_path / 'app' / 'my_build' / 'flasher_args.json'} is missing" in result.stdout + result.stderr


def test_flash_timing_with_a_real_target_is_a_usage_error() -> None:
    """A real board's flash has its own timing: asking for the virtual board's chip timing there would be ignored."""
    result = _pytest("tests_hil/test_versions.py", "--collect-only", "-q", "--target", "esp32",
                     "--hil-flash-timing", "chip")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "--hil-flash-timing: for the virtual board, but the target is esp32" in result.stderr, result.stderr
