"""A virtual ESP32 dev board behind an RFC2217 port: the real-board path without hardware.

It is what a farm exports for a virtual board (harness/farm/bench.py, ``python -m harness farm serve``),
and what tests_unit uses to test ``--target esp32`` on this machine: from the client's side it is a USB
ESP32 shared with ``esp_rfc2217_server``, flashed by esptool and reset through RTS/DTR.

Layers, as on a bench:

- the network serial port: esptool's ``esp_rfc2217_server`` port manager (RFC2217), which turns
  the client's DTR/RTS requests into local reset sequences, as when a board is shared that way;
- the dev board's auto-reset circuit: EN is low while RTS is asserted without DTR, IO0 is low
  while DTR is asserted without RTS; the chip samples IO0 shortly after EN rises;
- download mode (IO0 low): the ROM serial protocol of ``esp32-mock-bootloader`` (stub upload,
  flash writes, erases, MD5) on the board's flash file, recording every write and erase;
- normal boot (IO0 high): the virtual board, our firmware built for Linux, booting from that same
  flash file, with a console that behaves like ESP-IDF's on a UART (CRLF line endings, the prompt
  without a newline, typed characters echoed).

Why not ser2net on the virtual board's pty: a pty has no modem control lines (TIOCMBIS on either end is
ENOTTY), so the DTR/RTS changes esptool makes to reset the chip and enter download mode would reach
nothing, and the pty carries only the app's console, not the ROM's serial protocol. The port manager
below is esptool's own RFC2217 server, so the reset sequences are those a shared USB board gets.

Power: ``power_off()`` and ``power_on()`` (a relay on the board's supply, not on its USB bridge: the
network port stays up), which the bench serves to labgrid's ``NetworkPowerPort`` (model ``simplerest``).

The app images it runs are virtual-board images (the virtual chip id), so the harness flashes a
"build" whose app is the Linux build of the firmware; everything else is the real-board path. Its app's flash
writes and erases take an ESP32's time by default (harness/virtual/flash.py's CHIP_TIMING), as a USB board's do, so a
scenario that needs a chip's flash pace (the flash_timing marker, which only the virtual target's boards
read) runs here as on the hardware; esptool's writes through the ROM protocol take no time.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import queue
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serial
from esp32_mock_bootloader.server import BootloaderConnection, FlashImage, handle_client
from esp_rfc2217_server.esp_port_manager import EspPortManager
from esptool.reset import DEFAULT_RESET_DELAY, ClassicReset

from harness.virtual.board import VirtualBoard, VirtualBoardError
from harness.virtual.flash import CHIP_TIMING, FLASH_SIZE, FlashTiming

BOOT_SAMPLE_S = 0.02  # the EN RC delay: IO0 is sampled this long after EN rises
SECTOR = 0x1000
DOWNLOAD_BANNER = (b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 "
                   b"(DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n")


@dataclass(frozen=True)
class FlashOp:
    kind: str  # "write" or "erase"
    offset: int
    length: int
    md5: str = ""  # of the bytes written


class RecordingFlash(FlashImage):
    """The mock's flash store on our flash file, with NOR erase-before-write and a log of operations."""

    def __init__(self, data: mmap.mmap, ops: list[FlashOp]) -> None:
        super().__init__()
        self.data = data  # type: ignore[assignment]  # mmap supports what FlashImage does with a bytearray
        self.ops = ops
        self._start = 0

    def _erase(self, offset: int, size: int) -> None:
        end = min(offset + -(-size // SECTOR) * SECTOR, len(self.data))
        self.data[offset:end] = b"\xff" * (end - offset)

    def begin_defl(self, payload: bytes) -> None:
        write_size, _, _, offset = struct.unpack_from("<IIII", payload, 0)
        self._erase(offset, write_size)  # the stub erases what it is about to write
        self._start = offset
        super().begin_defl(payload)

    def end_defl(self) -> None:
        super().end_defl()
        self._record_write(self._defl_offset)

    def begin_plain(self, payload: bytes) -> None:
        size, _, _, offset = struct.unpack_from("<IIII", payload, 0)
        self._erase(offset, size)
        self._start = offset
        super().begin_plain(payload)

    def _record_write(self, end: int) -> None:
        data = bytes(self.data[self._start:end])
        self.ops.append(FlashOp("write", self._start, len(data), hashlib.md5(data).hexdigest()))

    def erase_region(self, offset: int, size: int) -> None:
        super().erase_region(offset, size)
        self.ops.append(FlashOp("erase", offset, size))


class _RomPort:
    """What the mock's handle_client reads from and writes to, in place of a serial port."""

    def __init__(self, send) -> None:
        self._send = send
        self.input: queue.Queue[bytes] = queue.Queue()
        self.timeout = 0.05
        self.closed = threading.Event()

    def read(self, size: int) -> bytes:
        if self.closed.is_set():
            raise serial.SerialException("reset")
        try:
            return self.input.get(timeout=self.timeout)
        except queue.Empty:
            return b""

    def write(self, data: bytes) -> None:
        self._send(data)

    def close(self) -> None:
        self.closed.set()


class _PortManager(EspPortManager):
    """esp_rfc2217_server's port manager; the download-mode reset uses esptool's ClassicReset (the
    Windows path of the server) because this port has no ioctl for UnixTightReset."""

    def __init__(self, serial_port: _Lines, connection: _SocketWriter) -> None:
        super().__init__(serial_port, connection, esp32r0_delay=False)

    def _reset_thread(self) -> None:
        ClassicReset(self.serial, DEFAULT_RESET_DELAY)()



def _control_line(name: str) -> property:
    """A modem control line (DTR or RTS) of the fake port: setting it tells the emulator both lines' state."""

    def get(port: Any) -> bool:
        return getattr(port, f"_{name}")

    def set_(port: Any, value: bool) -> None:
        setattr(port, f"_{name}", bool(value))
        port._emulator.control_lines_changed(port._dtr, port._rts)

    return property(get, set_)

class _Lines:
    """The serial-port object the port manager drives: settings are stored, DTR and RTS go to the circuit."""

    def __init__(self, emulator: VirtualEsp32) -> None:
        self._emulator = emulator
        self.name = "esp32-emulator"
        self.baudrate = 115200
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.cts = self.dsr = self.ri = self.cd = False
        self._dtr = False
        self._rts = False

    dtr = _control_line("dtr")  # pyserial's attributes; each change reaches the emulated chip's EN/IO0
    rts = _control_line("rts")

    def setDTR(self, value: bool) -> None:  # pyserial's names, used by esptool's reset code
        self.dtr = value

    def setRTS(self, value: bool) -> None:
        self.rts = value

    def isOpen(self) -> bool:
        return True

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class VirtualEsp32:
    """One emulated dev board on ``rfc2217://127.0.0.1:<port>``; see the module doc."""

    def __init__(self, workdir: Path, mac: str = "240ac4abcdef", vanish_after_rom_sessions: int | None = None, *,
                 name: str = "emulated-esp32", host: str = "127.0.0.1", port: int = 0,
                 flash_timing: FlashTiming | None = CHIP_TIMING) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.flash_path = self.workdir / "flash.bin"
        self.flash_path.write_bytes(b"\xff" * FLASH_SIZE)
        self._flash_file = open(self.flash_path, "r+b")  # noqa: SIM115 - open for the emulator's lifetime
        self.flash = mmap.mmap(self._flash_file.fileno(), FLASH_SIZE)
        self.ops: list[FlashOp] = []
        self.events: list[str] = []  # "download", "boot", "reset", "vanished"
        self.rom_sessions = 0
        self.vanish_after_rom_sessions = vanish_after_rom_sessions
        self.name = name
        self.board = VirtualBoard(name, self.flash_path, self.workdir / "board", mac=mac,
                                  on_line=self._board_line)
        self.board.flash_timing = flash_timing
        self._lock = threading.RLock()
        self.host = host
        self._server = socket.create_server((host, port))
        self.port = self._server.getsockname()[1]
        self._powered = True
        self._client: socket.socket | None = None
        self._pm: _PortManager | None = None
        self._send_lock = threading.Lock()
        self._lines = _Lines(self)  # the board's DTR/RTS inputs keep their state between clients
        self._en_low = False
        self._io0_low = False
        self._mode = "reset"  # "reset" (held, or blank and idle), "download" or "run"
        self._rom: tuple[_RomPort, threading.Thread, threading.Event] | None = None
        self._boot_timer: threading.Timer | None = None
        self._typed = b""
        self._closing = threading.Event()
        self._accept_thread = threading.Thread(target=self._accept_loop, name="esp32-emulator", daemon=True)
        self._accept_thread.start()

    @property
    def url(self) -> str:
        return f"rfc2217://{self.host}:{self.port}?ign_set_control"

    @property
    def powered(self) -> bool:
        return self._powered

    def read_flash(self, offset: int, length: int) -> bytes:
        return bytes(self.flash[offset:offset + length])

    # --- the network port ---

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._client is not None:  # one client at a time, as esp_rfc2217_server
                    conn.close()
                    continue
                self._client = conn
                self._pm = _PortManager(self._lines, _SocketWriter(conn, self._send_lock))
            threading.Thread(target=self._client_loop, args=(conn,), daemon=True).start()

    def _client_loop(self, conn: socket.socket) -> None:
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                pm = self._pm
                if pm is None:
                    break
                payload = b"".join(pm.filter(data))
                if payload:
                    self._from_host(payload)
        except OSError:
            pass
        finally:
            with self._lock:
                if self._client is conn:
                    self._client = None
                    self._pm = None
            with contextlib.suppress(OSError):
                conn.close()

    def _send(self, data: bytes) -> None:
        with self._lock:
            conn, pm = self._client, self._pm
        if conn is None or pm is None:
            return  # nobody listens: the bytes are lost, as on a UART
        with self._send_lock, contextlib.suppress(OSError):
            conn.sendall(b"".join(pm.escape(data)))

    def _from_host(self, data: bytes) -> None:
        with self._lock:
            mode, rom = self._mode, self._rom
        if mode == "download" and rom is not None:
            rom[0].input.put(data)
        elif mode == "run":
            self._typed_input(data)

    # --- the auto-reset circuit ---

    def control_lines_changed(self, dtr: bool, rts: bool) -> None:
        en_low = rts and not dtr
        with self._lock:
            self._io0_low = dtr and not rts
            falling, rising = en_low and not self._en_low, self._en_low and not en_low
            self._en_low = en_low
            if rising:
                self._boot_timer = threading.Timer(BOOT_SAMPLE_S, self._sample_boot_mode)
                self._boot_timer.start()
        if falling:
            self._hold_in_reset()

    def _sample_boot_mode(self) -> None:
        with self._lock:
            if self._en_low or self._mode != "reset" or not self._powered:
                return
            mode = "download" if self._io0_low else "run"
        self._boot(mode)

    def _hold_in_reset(self) -> None:
        with self._lock:
            if self._boot_timer is not None:
                self._boot_timer.cancel()
            previous, rom = self._mode, self._rom
            self._mode, self._rom = "reset", None
            self.events.append("reset")
        if previous == "run":
            self.board.stop()
        if rom is not None:
            port, thread, stop = rom
            stop.set()
            port.close()
            thread.join(timeout=5)
        self.flash.flush()

    def _boot(self, mode: str) -> None:
        if mode == "download":
            self.rom_sessions += 1
            if self.vanish_after_rom_sessions is not None and self.rom_sessions > self.vanish_after_rom_sessions:
                self.vanish()
                return
            port, stop = _RomPort(self._send), threading.Event()
            thread = threading.Thread(target=self._run_rom, args=(port, stop), daemon=True)
            with self._lock:
                self._mode, self._rom = "download", (port, thread, stop)
                self.events.append("download")
            self._send(DOWNLOAD_BANNER)
            thread.start()
        else:
            with self._lock:
                self._mode = "run"
                self._typed = b""
                self.events.append("boot")
            self.board.power_on()

    def _run_rom(self, port: _RomPort, stop: threading.Event) -> None:
        with contextlib.suppress(Exception):
            handle_client(BootloaderConnection(serial_port=port), stop, "esp32", exit_on_disconnect=True,
                          flash=RecordingFlash(self.flash, self.ops))

    # --- power (a relay on the board's supply) ---

    def power_off(self) -> None:
        with self._lock:
            if not self._powered:
                return
            self._powered = False
            self.events.append("power_off")
        self._hold_in_reset()

    def power_on(self) -> None:
        """Power returns: the chip boots as EN rises, in the mode IO0 (DTR) selects, unless RTS holds EN low."""
        with self._lock:
            if self._powered:
                return
            self._powered = True
            self.events.append("power_on")
            if not self._en_low:
                self._boot_timer = threading.Timer(BOOT_SAMPLE_S, self._sample_boot_mode)
                self._boot_timer.start()

    # --- the app's console, as ESP-IDF's UART console shows it ---

    def _board_line(self, line) -> None:
        with self._lock:
            if self._mode != "run":
                return
        if line.text == "hil>":
            self._send(b"hil> ")  # linenoise prints the prompt and waits on the same line
        else:
            self._send(line.text.encode() + b"\r\n")

    def _typed_input(self, data: bytes) -> None:
        self._send(data.replace(b"\n", b"\r\n"))  # linenoise (dumb mode) echoes what is typed
        self._typed += data.replace(b"\r", b"\n")
        while b"\n" in self._typed:
            line, self._typed = self._typed.split(b"\n", 1)
            with contextlib.suppress(VirtualBoardError):
                self.board.write(line.decode(errors="replace"))

    # --- lifetime ---

    def vanish(self) -> None:
        """The board disappears: its server stops and the connection drops (an unplugged cable)."""
        self.events.append("vanished")
        self._closing.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            conn = self._client
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def close(self) -> None:
        if self._flash_file.closed:
            return
        self.vanish()
        self._hold_in_reset()
        self.board.stop()
        self.flash.close()
        self._flash_file.close()


class _SocketWriter:
    def __init__(self, conn: socket.socket, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def write(self, data: bytes) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._conn.sendall(data)
