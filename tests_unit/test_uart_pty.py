"""The virtual board's UART as a pty: pyserial reads its boot and types into its console, and
pytest-embedded's serial dut runs expect() against it."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import serial

from harness.virtual import firmware
from harness.virtual.board import VirtualBoard, create_flash


@pytest.fixture
def powered_board(tmp_path: Path):
    create_flash(tmp_path / "flash.bin", (firmware.DEVICE_DIR / "partitions.csv").read_text())
    board = VirtualBoard("uart", tmp_path / "flash.bin", tmp_path)
    board.flash(firmware.build().image)
    port = board.serial_port  # opened before power-on: the port sees the whole boot
    board.power_on()
    board.expect(r"^hil>$", timeout=15)
    yield board, port
    board.stop()


def _read_until(port: serial.Serial, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = port.read_until(b"\n")
        assert chunk, f"no {marker!r} on the pty; got {data[-500:]!r}"
        data += chunk
    return data


def test_pyserial_talks_to_the_console(powered_board) -> None:
    _board, path = powered_board
    with serial.Serial(path, 115200, timeout=10) as port:
        port.write(b"status\r\n")
        line = _read_until(port, b"version=")
        assert b"partition=ota_0" in line


def test_pytest_embedded_serial_dut_expects_a_boot(powered_board, tmp_path: Path) -> None:
    pytest.importorskip("pytest_embedded_serial")
    _board, path = powered_board
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "test_virtual_boot.py").write_text(textwrap.dedent("""
        def test_boot(dut):
            dut.write("reboot")
            dut.expect("rst:0xc \\\\(SW_CPU_RESET\\\\)", timeout=15)
            dut.expect("boot: Loaded app from partition at offset 0x20000", timeout=15)
            dut.expect("main_task: Calling app_main\\\\(\\\\)", timeout=15)
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:esp_ota_hil", "-q",
         "--embedded-services", "serial", "--port", path, "--root-logdir", str(tmp_path / "logs"), str(inner)],
        cwd=inner, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
