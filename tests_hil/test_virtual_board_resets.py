"""The virtual board itself.

The virtual ESP32's resets, held to what a real ESP32 prints and reports.

Each way a chip restarts (power-on, EN pin, esp_restart, abort, a bad pointer, the task
watchdog, a power cut, nothing bootable) must give the ROM reset line, the panic or watchdog
lines and the esp_reset_reason() a real board gives, matched with the regexes real-board tests
use (harness/log_patterns.py). The crashes come from the host port's check app
(device/port/linux/test/port_check.c), which prints its reset reason at every boot, so these
tests drive an image that is not the reference firmware: virtual board only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import log_patterns as P
from harness.formats.app_image import build_virtual_image
from harness.virtual import firmware
from harness.virtual.board import VirtualBoard, create_flash

pytestmark = pytest.mark.virtual_only

CSV = (firmware.DEVICE_DIR / "partitions.csv").read_text()
RESET_REASON = r"port_check: reset reason (\d+)"
PROMPT = r"^port_check>$"
# esp_reset_reason_t
ESP_RST_POWERON, ESP_RST_SW, ESP_RST_PANIC, ESP_RST_TASK_WDT = 1, 3, 4, 6


@pytest.fixture(scope="module")
def check_image() -> bytes:
    exe = firmware.build_port_check()
    return build_virtual_image(exe.read_bytes(), version="0.0.1-check", project_name="port_check")


@pytest.fixture
def make_board(tmp_path: Path) -> Iterator[Callable[[bytes | None], VirtualBoard]]:
    boards: list[VirtualBoard] = []

    def make(image: bytes | None) -> VirtualBoard:
        workdir = tmp_path / f"board{len(boards)}"
        workdir.mkdir()
        create_flash(workdir / "flash.bin", CSV)
        board = VirtualBoard(f"check{len(boards)}", workdir / "flash.bin", workdir)
        boards.append(board)
        if image is not None:
            board.flash(image)
        board.power_on()
        return board

    yield make
    for board in boards:
        board.stop()


def next_boot(board: VirtualBoard) -> tuple[str, int]:
    """(ROM reset name, esp_reset_reason()) of the next boot, once its app is ready."""
    rst = board.expect(P.ROM_RESET, timeout=10).group(1)
    reason = int(board.expect(RESET_REASON, timeout=10).group(1))
    board.expect(PROMPT, timeout=5)
    return rst, reason


def test_power_on_boot_prints_what_a_real_esp32_prints(make_board, check_image: bytes) -> None:
    """A power-on boot prints the ROM and bootloader lines, the app version and ESP-IDF's log format,
    with the app's clock continuing from the bootloader's, as a real ESP32 does."""
    board = make_board(check_image)
    assert board.expect(P.ROM_RESET, timeout=10).group(1) == "POWERON_RESET"
    assert board.expect(P.BOOTLOADER_BANNER, timeout=5).group(1) == "v5.5.4"
    assert board.expect_loaded_app(timeout=5) == "ota_0"
    assert board.expect(P.APP_VERSION, timeout=5).group(1) == "0.0.1-check"
    board.expect(P.CALLING_APP_MAIN, timeout=5)
    assert int(board.expect(RESET_REASON, timeout=5).group(1)) == ESP_RST_POWERON

    log_lines = [(line, re.match(P.LOG_LINE, line)) for line in board.serial.tail(200)
                 if re.match(r"^[EWIDV] \(", line)]
    assert all(m for _, m in log_lines), [line for line, m in log_lines if not m]
    times = {m.group(3): int(m.group(2)) for _, m in log_lines if m}
    # the app's clock runs on from the bootloader's, as the chip's timer does
    assert times["cpu_start"] >= times["boot"] > 0, times


@pytest.mark.parametrize(("command", "expected_lines", "reason"), [
    ("restart", [], ESP_RST_SW),
    ("abort", [P.ABORT_CALLED, P.REBOOTING], ESP_RST_PANIC),
    ("segv", [P.GURU_MEDITATION, r"^Core  0 register dump:$", r"^Backtrace: ", P.REBOOTING], ESP_RST_PANIC),
    ("wdt 200 1", [P.TASK_WDT, P.TASK_WDT_TASK, r"task_wdt: Tasks currently running:", r"task_wdt: Aborting\.",
                   P.REBOOTING], ESP_RST_TASK_WDT),
], ids=["esp_restart", "abort", "sigsegv", "task_wdt"])
def test_software_resets_give_sw_cpu_reset_and_the_reason(
    make_board, check_image: bytes, command: str, expected_lines: list[str], reason: int
) -> None:
    """Each software reset (esp_restart, abort, a bad pointer, the task watchdog) prints the chip's
    panic/watchdog lines, `rst:0xc (SW_CPU_RESET)` and the matching `esp_reset_reason()`."""
    board = make_board(check_image)
    assert next_boot(board) == ("POWERON_RESET", ESP_RST_POWERON)
    board.write(command)
    for pattern in expected_lines:
        board.expect(pattern, timeout=5)
    # ROM: a CPU reset for all of them; the app tells them apart by the hint (esp_reset_reason)
    assert next_boot(board) == ("SW_CPU_RESET", reason)


def test_segv_names_the_exception_like_the_xtensa_panic_handler(make_board, check_image: bytes) -> None:
    """A bad pointer's `Guru Meditation Error` names the exception as the Xtensa panic handler does
    (`LoadProhibited`)."""
    board = make_board(check_image)
    next_boot(board)
    board.write("segv")
    assert board.expect(P.GURU_MEDITATION, timeout=5).group(1) == "LoadProhibited"


def test_a_task_watchdog_without_panic_only_prints_and_goes_on(make_board, check_image: bytes) -> None:
    """The task watchdog without panic warns and goes on: it fires again a period later, and the app
    still answers."""
    board = make_board(check_image)
    next_boot(board)
    board.write("wdt 200 0")
    board.expect(P.TASK_WDT, timeout=5)
    board.expect(P.TASK_WDT, timeout=5)  # it fires again a period later: the chip keeps running
    board.write("restart")  # and still answers
    assert next_boot(board) == ("SW_CPU_RESET", ESP_RST_SW)


def test_a_fed_task_watchdog_never_fires(make_board, check_image: bytes) -> None:
    """A task watchdog that is fed stays quiet."""
    board = make_board(check_image)
    next_boot(board)
    board.serial.skip_to_end()
    board.write("wdt_fed 200")
    board.expect(r"port_check: wdt fed and unsubscribed", timeout=5)
    assert not any(re.search(P.TASK_WDT, line) for line in board.serial.tail(50))


@pytest.mark.parametrize("how", ["reset", "power_cut"])
def test_en_pin_and_power_cut_are_power_on_resets(make_board, check_image: bytes, how: str) -> None:
    """EN pin and power cut are `POWERON_RESET` / `ESP_RST_POWERON`, as a classic ESP32 reports its EN
    pin."""
    board = make_board(check_image)
    next_boot(board)
    getattr(board, how)()
    assert next_boot(board) == ("POWERON_RESET", ESP_RST_POWERON)


def test_nothing_bootable_resets_in_a_loop_without_spinning(make_board) -> None:
    """A flash with no app loops on `No bootable app partitions` with pauses, and a power cut there still
    comes back as a power-on."""
    board = make_board(None)  # blank flash: a partition table and no app
    board.expect(P.NO_BOOTABLE_APP, timeout=10)
    assert board.expect(P.ROM_RESET, timeout=5).group(1) == "SW_RESET"  # bootloader_reset()
    board.expect(P.NO_BOOTABLE_APP, timeout=5)
    lines = [line for line in board.serial.lines if re.search(P.NO_BOOTABLE_APP, line.text)]
    assert len(lines) >= 2
    assert lines[1].t - lines[0].t >= 0.4, "the loop must pause between attempts, not spin"
    assert board.boot_count <= 3
    board.power_cut()  # power can be cut in the loop too: the next boot is a power-on
    rst = board.expect(P.ROM_RESET, timeout=5).group(1)
    if rst == "SW_RESET":  # the loop's own reset won the race with the cut; the cut still counts
        rst = board.expect(P.ROM_RESET, timeout=5).group(1)
    assert rst == "POWERON_RESET"
