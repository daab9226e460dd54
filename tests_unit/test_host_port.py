"""The host port's flash and task watchdog, at the C level: device/port/linux/test/port_check.c
runs the port's esp_partition and esp_task_wdt directly (no board, no bootloader) on a flash
file, and we read what it prints and the flash-operation counters it shares."""

from __future__ import annotations

import re
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from harness.virtual import firmware
from harness.virtual import host_abi as abi
from harness.virtual.flash import Flash

CSV = (firmware.DEVICE_DIR / "partitions.csv").read_text()
NVS = 0x9000


@pytest.fixture(scope="module")
def port_check() -> Path:
    return firmware.build_port_check()


def _run(exe: Path, tmp_path: Path, commands: str, timeout: float = 10.0,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    flash = tmp_path / "flash.bin"
    if not flash.exists():
        Flash.create(flash, CSV).close()
    return subprocess.run(
        [str(exe)], input=commands, capture_output=True, text=True, errors="replace", timeout=timeout, check=False,
        env={abi.ENV_FLASH_FILE: str(flash), abi.ENV_APP_OFFSET: "0x20000", **(env or {})},
    )


def test_esp_partition_has_nor_semantics_and_partition_linux_error_codes(port_check: Path, tmp_path: Path) -> None:
    out = _run(port_check, tmp_path, "nor\n").stdout
    results = dict(re.findall(r"^(\w+)=(\S+)$", out, re.MULTILINE))
    assert results == {
        "erase": "ESP_OK",
        "erased": "ffffffff",
        "write": "ESP_OK",
        "write_clearing_bits": "ESP_OK",
        "after": "30030055",  # f00faa55 AND 30030055: bits only cleared
        "write_unerased": "ESP_ERR_FLASH_OP_FAIL",  # CONFIG_ESP_PARTITION_ERASE_CHECK
        "erase_unaligned_offset": "ESP_ERR_INVALID_ARG",
        "erase_unaligned_size": "ESP_ERR_INVALID_SIZE",
        "erase_offset_outside": "ESP_ERR_INVALID_ARG",
        "erase_past_end": "ESP_ERR_INVALID_SIZE",
        "write_offset_outside": "ESP_ERR_INVALID_ARG",
        "write_past_end": "ESP_ERR_INVALID_SIZE",
        "read_past_end": "ESP_ERR_INVALID_SIZE",
        "erase_again": "ESP_OK",
        "erased_again": "ffffffff",
    }, out
    assert "W (" in out and "esp_partition: invalid flash operation detected" in out


def test_esp_ota_write_with_offset_writes_out_of_order_with_esp_idf_s_return_codes(port_check: Path,
                                                                                     tmp_path: Path) -> None:
    """v5.5.5's esp_ota_write_with_offset(): chunks land where they are told, in any order, with no magic-byte
    check; a NULL buffer or an unknown handle is ESP_ERR_INVALID_ARG, the rest is esp_partition_write()'s."""
    out = _run(port_check, tmp_path, "ota_offset\n").stdout
    results = dict(re.findall(r"^(\w+)=(\S+)$", out, re.MULTILINE))
    assert results == {
        "begin": "ESP_OK",
        "write_2": "ESP_OK",
        "write_0": "ESP_OK",  # its first byte is 0x10, not 0xE9: not checked (esp_ota_write would refuse it)
        "write_1": "ESP_OK",
        "readback": "ok",
        "null_data": "ESP_ERR_INVALID_ARG",
        "bad_handle": "ESP_ERR_INVALID_ARG",
        "past_end": "ESP_ERR_INVALID_SIZE",
        "unerased": "ESP_ERR_FLASH_OP_FAIL",  # bits set again over written bytes: no erase is done for it
        "abort": "ESP_OK",
        "after_abort": "ESP_ERR_INVALID_ARG",
    }, out
    assert "OTA handle not found" in out


def test_esp_ota_write_with_offset_asserts_the_slot_was_erased(port_check: Path, tmp_path: Path) -> None:
    """After esp_ota_begin(OTA_WITH_SEQUENTIAL_WRITES) nothing is erased ahead: ESP-IDF's assert aborts."""
    run = _run(port_check, tmp_path, "ota_offset_sequential\n")
    assert "begin=ESP_OK" in run.stdout
    assert "must erase the partition before writing to it" in run.stdout + run.stderr
    assert "write_" not in run.stdout and run.returncode != 0


def test_power_is_lost_at_the_nth_flash_operation(port_check: Path, tmp_path: Path) -> None:
    control = tmp_path / "control.bin"
    control.write_bytes(bytes(4 * abi.FC_WORDS))
    env = {abi.ENV_FLASH_CONTROL: str(control), abi.ENV_POWER_CUT_AT: "4"}
    result = _run(port_check, tmp_path, "writes 10\n", env=env)
    assert result.returncode == abi.EXIT_POWER_CUT, result.stdout
    assert "writes done" not in result.stdout, "the app went on after the power cut"
    ops, writes, erases, cut_at, kind, addr, length, cut = struct.unpack(f"<{abi.FC_WORDS}I", control.read_bytes())
    assert (ops, writes, erases, cut_at, cut) == (4, 4, 0, 4, 1)
    assert (kind, addr, length) == (abi.FLASH_WRITE, NVS + 3 * 4, 4)  # the 4th 4-byte write into nvs
    with Flash(tmp_path / "flash.bin") as flash:
        # three writes happened; the fourth was torn at half its length (rounded to 0 words)
        assert flash.read(NVS, 16) == b"\x00" * 12 + b"\xff" * 4


def test_power_lost_inside_a_one_sector_erase_leaves_it_half_erased(port_check: Path, tmp_path: Path) -> None:
    with Flash.create(tmp_path / "flash.bin", CSV) as flash:
        flash.write(NVS, b"\x00" * 0x1000)
    control = tmp_path / "control.bin"
    control.write_bytes(bytes(4 * abi.FC_WORDS))
    env = {abi.ENV_FLASH_CONTROL: str(control), abi.ENV_POWER_CUT_AT: "1"}
    result = _run(port_check, tmp_path, "erase_sector\n", env=env)
    assert result.returncode == abi.EXIT_POWER_CUT, result.stdout
    with Flash(tmp_path / "flash.bin") as flash:
        assert flash.read(NVS, 0x1000) == b"\xff" * 0x800 + b"\x00" * 0x800


def test_without_a_cut_every_operation_is_counted(port_check: Path, tmp_path: Path) -> None:
    control = tmp_path / "control.bin"
    control.write_bytes(bytes(4 * abi.FC_WORDS))
    _run(port_check, tmp_path, "nor\nwrites 3\n", env={abi.ENV_FLASH_CONTROL: str(control)})
    ops, writes, erases, *_ = struct.unpack(f"<{abi.FC_WORDS}I", control.read_bytes())
    # nor: 3 successful erases + 3 writes reaching flash (write_unerased counts: it reached the chip)
    assert (writes, erases) == (3 + 3, 2)
    assert ops == writes + erases


def _flash_times(port_check: Path, tmp_path: Path, timing: str | None) -> tuple[float, float]:
    """Seconds port_check's flash_times took to erase 16 KB and to write it in 2 KB pieces, as the app timed them."""
    run = _run(port_check, tmp_path, "flash_times\n", env={abi.ENV_FLASH_TIMING: timing} if timing else None)
    assert "erase_16k=ESP_OK" in run.stdout, run.stdout + run.stderr
    times = re.search(r"flash_times erase_us=(\d+) write_us=(\d+)", run.stdout)
    assert times, run.stdout
    return int(times[1]) / 1e6, int(times[2]) / 1e6


def test_flash_timing_makes_erases_and_writes_last_their_length_at_its_rates(port_check: Path,
                                                                              tmp_path: Path) -> None:
    """HIL_FLASH_TIMING "<write B/s> <erase B/s>": 16 KB erased at 16 KB/s lasts at least 1 s and written at
    64 KB/s at least 0.25 s; without it the same operations are memory copies (well under either)."""
    erase_s, write_s = _flash_times(port_check, tmp_path, f"{64 * 1024} {16 * 1024}")
    assert erase_s >= 1.0 and write_s >= 0.25, (erase_s, write_s)
    assert erase_s < 3.0 and write_s < 1.0, "each operation waits once, for its own length"
    erase_s, write_s = _flash_times(port_check, tmp_path, None)
    assert erase_s < 0.5 and write_s < 0.125, (erase_s, write_s)


def test_a_malformed_flash_timing_stops_the_app_with_what_it_expects(port_check: Path, tmp_path: Path) -> None:
    run = _run(port_check, tmp_path, "flash_times\n", env={abi.ENV_FLASH_TIMING: "fast"})
    assert run.returncode == abi.EXIT_PANIC
    assert 'bad HIL_FLASH_TIMING: expected "<write bytes/s> <erase bytes/s>"' in run.stdout


def test_task_watchdog_panics_with_the_chip_lines(port_check: Path, tmp_path: Path) -> None:
    Flash.create(tmp_path / "flash.bin", CSV).close()
    # stdin stays open (the command, then nothing) until the watchdog ends the process
    proc = subprocess.Popen(
        [str(port_check)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, errors="replace",
        env={abi.ENV_FLASH_FILE: str(tmp_path / "flash.bin"), abi.ENV_APP_OFFSET: "0x20000",
             abi.ENV_BOOT_TIME_US: "250000"},
    )
    deadline = threading.Timer(10, proc.kill)  # the watchdog must end it well before
    deadline.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("wdt 300 1\n")
        proc.stdin.flush()
        out = proc.stdout.read()  # until the process ends; stdin stays open, as in a board
        proc.wait()
    finally:
        deadline.cancel()
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()
    assert proc.returncode == abi.EXIT_TASK_WDT, out
    lines = out.splitlines()
    wdt = [line for line in lines if "task_wdt:" in line]
    assert re.fullmatch(r"E \((\d+)\) task_wdt: Task watchdog got triggered\. The following tasks/users did not "
                        r"reset the watchdog in time:", wdt[0]), wdt
    assert wdt[1].endswith("task_wdt:  - stuck_task (CPU 0/1)")
    assert wdt[2].endswith("task_wdt: Tasks currently running:")
    assert any(line.endswith("task_wdt: Aborting.") for line in wdt)
    assert lines[-1] == "Rebooting..."
    # log times count from the chip's reset: the board's boot time plus the 300 ms timeout
    assert int(re.match(r"E \((\d+)\)", wdt[0]).group(1)) >= 250 + 300
