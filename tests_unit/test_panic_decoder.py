"""`Backtrace:` lines decoded to function, file and line (harness/panic_decoder.py), with the real
esp-idf-panic-decoder and addr2line: the host port's panic handler prints the call stack as a chip
does (device/port/linux/src/esp_system.c), the harness decodes it with the ELF of the build that ran,
and a failing test's report shows it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import panic_decoder
from harness.formats import app_image
from harness.idf_build import IdfFirmware
from harness.panic_decoder import Symbols, decode_console
from harness.virtual import firmware
from harness.virtual import host_abi as abi
from harness.virtual.flash import Flash
from tests_unit.esp32_emulator import write_idf_build

ROOT = Path(__file__).resolve().parents[1]
PORT_CHECK_C = ROOT / "device" / "port" / "linux" / "test" / "port_check.c"
APP_HOOKS_C = ROOT / "device" / "main" / "app_hooks.c"


@pytest.fixture(scope="module")
def port_check() -> Path:
    return firmware.build_port_check()


def _crash(port_check: Path, tmp_path: Path, command: str) -> list[str]:
    """What port_check prints when `command` crashes it (through the host port's panic handler)."""
    flash = tmp_path / "flash.bin"
    Flash.create(flash, (firmware.DEVICE_DIR / "partitions.csv").read_text()).close()
    result = subprocess.run(
        [str(port_check)], input=f"{command}\n", capture_output=True, text=True, errors="replace", timeout=10,
        check=False, env={abi.ENV_FLASH_FILE: str(flash), abi.ENV_APP_OFFSET: "0x20000"})
    assert result.returncode == abi.EXIT_PANIC, result.stdout[-2000:]
    return result.stdout.splitlines()


def _line_of(source: Path, statement: str, function: str) -> int:
    """The line number of the first line holding `statement` after `function`'s definition."""
    lines = source.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if f"{function}(" in line and not line.endswith(";"))
    return next(n for n, line in enumerate(lines[start:], start + 1) if statement in line)


def _locations(report: panic_decoder.BacktraceReport) -> list[tuple[str, str, str]]:
    """(function, file name, line) of every decoded frame, inlined ones included."""
    return [(loc.func, Path(loc.path).name, loc.line)
            for backtrace in report.backtraces for _, locations in backtrace.frames for loc in locations]


@pytest.mark.parametrize(("command", "function", "statement"), [
    ("abort", "app_main", "abort();"),
    ("segv", "app_main", "*(volatile int *)NULL = 1;"),  # the faulting instruction's own line
    ("abort_last", "abort_as_last_instruction", "abort();"),  # a return address past its function's end
])
def test_a_crash_of_the_host_port_decodes_to_the_line_that_crashed(
    port_check: Path, tmp_path: Path, command: str, function: str, statement: str,
) -> None:
    """The Backtrace line of an abort() or a bad pointer names the function of port_check at the line of
    the crash, then its callers: the PCs are the ELF's, and each points into its call (or at the fault)."""
    lines = _crash(port_check, tmp_path, command)
    assert sum(line.startswith("Backtrace: ") for line in lines) == 1, lines
    report = decode_console(lines, Symbols((port_check,), toolchain_prefix=""))
    assert report is not None and report.notes == [], report
    locations = _locations(report)
    crash = (function, "port_check.c", str(_line_of(PORT_CHECK_C, statement, function)))
    assert crash in locations, locations
    # the panic handler first (as on the chip), app_main's caller (the main task) further up
    assert locations[0][0] in ("write_backtrace", "host_panic_tail_and_exit"), locations
    assert ("main_task", "startup.c") in [location[:2] for location in locations[locations.index(crash):]]
    assert f"{function} at {PORT_CHECK_C}:{crash[2]}" in report.text()


def test_without_addr2line_nothing_is_decoded_and_the_report_says_which_once(
    port_check: Path, tmp_path: Path,
) -> None:
    lines = _crash(port_check, tmp_path, "abort") * 2  # two panics: one note
    prefix = str(tmp_path / "no-toolchain" / "xtensa-esp32-elf-")
    report = decode_console(lines, Symbols((port_check,), prefix, how_to_get_toolchain="install it"))
    assert report is not None and report.backtraces == []
    assert report.text() == f"not decoded: {prefix}addr2line is not on PATH (install it)"


def test_without_the_elf_nothing_is_decoded_and_the_report_says_so(port_check: Path, tmp_path: Path) -> None:
    lines = _crash(port_check, tmp_path, "abort")
    report = decode_console(lines, Symbols((tmp_path / "gone.elf",), ""))
    assert report is not None and report.backtraces == []
    assert report.text() == f"not decoded: the firmware's ELF file is missing ({tmp_path / 'gone.elf'})"


def test_a_console_without_a_backtrace_has_no_section() -> None:
    entries = [panic_decoder.Entry(0.1, "serial", "vb1", "I (10) main_task: Calling app_main()")]
    assert panic_decoder.report_sections(entries, Symbols((), "")) == []


# --- a real target: the toolchain of the chip, the ELF of the idf.py build ---


def test_toolchain_prefix_follows_the_chip_architecture() -> None:
    assert panic_decoder.toolchain_prefix_of("esp32") == "xtensa-esp32-elf-"
    assert panic_decoder.toolchain_prefix_of("esp32s3") == "xtensa-esp32s3-elf-"
    assert panic_decoder.toolchain_prefix_of("esp32c3") == "riscv32-esp-elf-"


def test_rom_elf_is_used_when_esp_rom_elf_dir_has_one_revision_of_the_chip(tmp_path: Path) -> None:
    (tmp_path / "esp32c3_rev3_rom.elf").touch()
    assert panic_decoder.rom_elf_of("esp32c3", str(tmp_path)) == tmp_path / "esp32c3_rev3_rom.elf"
    (tmp_path / "esp32_rev0_rom.elf").touch()
    (tmp_path / "esp32_rev300_rom.elf").touch()
    assert panic_decoder.rom_elf_of("esp32", str(tmp_path)) is None  # which revision: not told
    assert panic_decoder.rom_elf_of("esp32", "") is None


def _esp32_app() -> bytes:
    image = app_image.build_virtual_image(os.urandom(4096), version="1.0.0", project_name="hil_ota_agent")
    return app_image.set_chip_id(image, app_image.CHIP_ID_ESP32)


def test_a_real_targets_backtrace_is_decoded_with_its_toolchain_and_the_builds_elf(
    port_check: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--target esp32: xtensa-esp32-elf-addr2line from PATH and <build>/hil_ota_agent.elf (here Debian's
    addr2line under that name and the host port's ELF, so that there is something to decode)."""
    build_dir = write_idf_build(tmp_path / "device", _esp32_app())
    shutil.copy(port_check, build_dir / "hil_ota_agent.elf")
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    (toolchain / "xtensa-esp32-elf-addr2line").symlink_to(shutil.which("addr2line") or "/usr/bin/addr2line")
    monkeypatch.setenv("PATH", f"{toolchain}{os.pathsep}{os.environ['PATH']}")
    source = IdfFirmware(tmp_path / "device", "esp32")
    source.build()
    symbols = source.panic_symbols()
    assert (symbols.toolchain_prefix, symbols.elfs) == ("xtensa-esp32-elf-", (build_dir / "hil_ota_agent.elf",))
    report = decode_console(_crash(port_check, tmp_path, "abort"), symbols)
    assert report is not None
    assert ("app_main", "port_check.c", str(_line_of(PORT_CHECK_C, "abort();", "app_main"))) in _locations(report)


def test_a_builds_project_description_names_its_elf_and_toolchain(tmp_path: Path) -> None:
    """idf.py's project_description.json wins over the names derived from the app binary and the target."""
    build_dir = write_idf_build(tmp_path / "device", _esp32_app())
    (build_dir / "project_description.json").write_text(
        '{"app_elf": "acme_sensor.elf", "monitor_toolchain_prefix": "xtensa-esp32-elf-custom-"}')
    source = IdfFirmware(tmp_path / "device", "esp32")
    source.build()
    symbols = source.panic_symbols()
    assert (symbols.toolchain_prefix, symbols.elfs) == ("xtensa-esp32-elf-custom-", (build_dir / "acme_sensor.elf",))


# --- through pytest: a failing scenario's report ---

CRASHING_SCENARIO = """
from harness import log_patterns as P


def test_fails_after_the_new_firmware_crashed(ota, board, fw_server, firmware):
    ota.start_until_reboot("c1", fw_server.add(firmware.image("crash_on_boot", version="2.0.0")).url)
    board.expect(P.ABORT_CALLED, timeout=10)
    board.expect(P.REBOOTING, timeout=5)
    raise AssertionError("failing on purpose, after the crash")
"""


def test_a_failing_scenarios_report_decodes_the_boards_backtrace(tmp_path: Path) -> None:
    """The crash_on_boot variant's self-test calls abort(): the failure report has a "decoded backtrace"
    section that names selftest() at that line, decoded with that variant's ELF (the session built the
    default one too, whose code differs)."""
    (tmp_path / "test_crashing.py").write_text(CRASHING_SCENARIO)
    # --rootdir: the firmware builds of this checkout (build/virtual), not new ones in tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT),
         "--hil-timeline-dir", str(tmp_path / "timelines"), str(tmp_path / "test_crashing.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)
    out = result.stdout
    assert result.returncode == 1, out[-4000:]
    assert "AssertionError: failing on purpose, after the crash" in out, out[-4000:]
    section = re.search(r"^-+ decoded backtrace \((\S+)\) -+$\n(.*?)(?=^[-=]+ |\Z)", out, re.MULTILINE | re.DOTALL)
    assert section is not None, out[-4000:]
    text = section.group(2)
    assert f"decoded with {ROOT / 'build' / 'virtual' / 'crash_on_boot' / firmware.HOST_TARGET}" in text, text
    assert f"selftest at {APP_HOOKS_C}:{_line_of(APP_HOOKS_C, 'abort();', 'selftest')}" in text, text
