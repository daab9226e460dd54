"""A real ESP32 board: esptool for flashing and resets, pyserial for the serial console.

Why not pytest-embedded's ``dut`` here: its DUT is function-scoped and flashes through a port-app
cache that skips the flash but never restores otadata, it writes every serial byte (typed Wi-Fi
passwords included) to its own log files, and it cannot give one test two boards from a pool. This
board uses the same building blocks underneath (esptool's ESPLoader, stub, ``HardReset``; pyserial's
``serial_for_url``, so device paths, ``rfc2217://`` and ``socket://`` all work) and keeps the
harness's own ``SerialLog``, so a scenario reads the console the same way on both targets.

One pyserial connection per board is kept open while a test holds the board. A reader thread
turns the bytes into lines (ANSI colours stripped, the ``hil>`` prompt split off, secrets masked)
and is paused while esptool talks to the ROM over the same connection.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import serial
import serial.rfc2217
from esptool.cmds import attach_flash, erase_region, run_stub, write_flash
from esptool.loader import ESPLoader
from esptool.reset import HardReset
from esptool.targets import CHIP_DEFS
from esptool.util import FatalError

from harness.boards.base import Board
from harness.boards.errors import Esp32Error, PortLostError
from harness.boards.power import PowerControl
from harness.formats import partition_table as pt
from harness.idf_build import IdfBuild
from harness.masking import TYPED_SECRET, mask_secrets
from harness.serial_log import SerialLog

CONSOLE_BAUD = 115200
FLASH_BAUD = 460800
CONNECT_ATTEMPTS = 4
PROMPT = "hil>"
READ_TIMEOUT_S = 0.05
IDLE_FLUSH_S = 0.3  # a partial line with no more bytes for this long is shown as a line
WRITE_CHUNK = 64  # bytes per write while the console echoes them back
POWER_OFF_S = 1.0
PORT_RETURN_TIMEOUT_S = 15.0
LOADED_APP = re.compile(r"boot: Loaded app from partition at offset (0x[0-9a-fA-F]+)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class Rfc2217Serial(serial.rfc2217.Serial):
    """pyserial's RFC2217 client, without a network round trip for every ``timeout`` change.

    pyserial sends every port setting again, and waits for the acknowledgements, whenever a
    setting changes, the read timeout included; esptool changes the timeout twice per command, so
    flashing over rfc2217 spends most of its time waiting. A timeout is local to the client: only
    changes the server has to apply (baud rate, format, flow control) are sent.
    """

    _sent: tuple | None = None

    def _reconfigure_port(self) -> None:
        if self._write_timeout is not None:
            raise NotImplementedError("write_timeout is currently not supported")  # as pyserial's; esptool relies on it
        remote = (self._baudrate, self._bytesize, self._parity, self._stopbits, self._xonxoff, self._rtscts)
        if remote != self._sent:
            super()._reconfigure_port()
            self._sent = remote

    def close(self) -> None:
        self._sent = None
        super().close()


def open_serial(url: str) -> serial.SerialBase:
    """A pyserial object for a device path or URL, not opened yet."""
    if url.startswith("rfc2217://"):
        ser = Rfc2217Serial(None, exclusive=True)
        ser.port = url
        return ser
    return serial.serial_for_url(url, do_not_open=True, exclusive=True)


def is_local_device(url: str) -> bool:
    return "://" not in url


class ConsoleLog(SerialLog):
    """A SerialLog whose ``expect`` fails at once, naming the port, when the port is lost."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.lost: str | None = None

    def mark_lost(self, reason: str) -> None:
        with self._changed:
            self.lost = reason
            self._changed.notify_all()

    def clear_lost(self) -> None:
        with self._changed:
            self.lost = None

    def _check_alive(self, regex: re.Pattern[str]) -> None:
        if self.lost is not None:
            raise PortLostError(f"{self.name}: {self.lost} (while waiting for {regex.pattern!r})")


class LineAssembler:
    """Bytes from the UART to clean lines: CR and ANSI codes dropped, the prompt on a line of its own.

    The ESP-IDF console prints its prompt without a newline and echoes what is typed after it, so
    ``hil> config set x y`` becomes the lines ``hil>`` and ``config set x y``, as the virtual board
    prints them. ``secrets`` are replaced by ``********`` before a line is stored anywhere.
    """

    def __init__(self, emit: Callable[[str], None], secrets: set[str], prompt: str = PROMPT) -> None:
        self._emit = emit
        self._secrets = secrets
        self._prompt = prompt
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += self._decoder.decode(data).replace("\r", "")
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._line(line)
        clean = _ANSI.sub("", self._buf)
        if clean.startswith(self._prompt):  # the console waits for input after its prompt
            self._out(self._prompt)
            self._buf = clean[len(self._prompt):].lstrip(" ")

    def flush(self) -> None:
        if self._buf:
            text, self._buf = self._buf, ""
            self._line(text)

    def _line(self, raw: str) -> None:
        text = _ANSI.sub("", raw)
        if text.startswith(self._prompt):
            self._out(self._prompt)
            text = text[len(self._prompt):].lstrip(" ")
            if not text:
                return
        self._out(text.rstrip())

    def _out(self, text: str) -> None:
        self._emit(mask_secrets(text, self._secrets))


class Esp32Board(Board):
    """One real board on one serial port (a device path, ``rfc2217://host:port`` or ``socket://``)."""

    def __init__(
        self,
        name: str,
        port_url: str,
        *,
        target: str = "esp32",
        power: PowerControl | None = None,
        flash_baud: int = FLASH_BAUD,
        console_baud: int = CONSOLE_BAUD,
        connect_attempts: int = CONNECT_ATTEMPTS,
        build: IdfBuild | None = None,
    ) -> None:
        if target not in CHIP_DEFS:
            raise ValueError(f"unknown target {target!r} (esptool knows {', '.join(sorted(CHIP_DEFS))})")
        self.name = name
        self.device_id = name
        self.port_url = port_url
        self.target = target
        self.power = power
        self.flash_baud = flash_baud
        self.console_baud = console_baud
        self.connect_attempts = connect_attempts
        self.build = build  # partition layout for flash(); set by whoever flashed the board
        self.serial = ConsoleLog(name)
        self.secrets: set[str] = set()
        self._ser: serial.SerialBase | None = None
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Esp32Board({self.name!r}, {self.port_url!r}, {self.target})"

    # --- the serial connection ---

    def add_secrets(self, values: Iterable[str]) -> None:
        """Values masked in every line this board's console log keeps (passwords typed and echoed)."""
        self.secrets.update(v for v in values if v)

    def open(self) -> None:
        """Opens the port (without resetting the chip) and starts recording the console."""
        self._port()
        self._start_reader()

    def _port(self) -> serial.SerialBase:
        if self._ser is not None and self._ser.is_open:
            return self._ser
        try:
            ser = open_serial(self.port_url)
            ser.baudrate = self.console_baud
            ser.timeout = READ_TIMEOUT_S
            # Opening with DTR and RTS released keeps EN and IO0 high: the chip is not reset. Over
            # rfc2217, esp_rfc2217_server turns "RTS released" into a hard reset of its own and
            # ignores "RTS asserted", so RTS is left asserted there.
            ser.dtr = False
            ser.rts = self.port_url.startswith("rfc2217:")
            ser.open()
        except (serial.SerialException, OSError, ValueError) as err:
            reason = f"cannot open serial port {self.port_url}: {err}"
            self.serial.mark_lost(reason)
            raise PortLostError(f"{self.name}: {reason}") from None
        self._ser = ser
        self.serial.clear_lost()
        return ser

    def _start_reader(self) -> None:
        if self._reader is not None:
            return
        self._stop_reading.clear()
        self._reader = threading.Thread(target=self._read_loop, args=(self._port(),), name=f"serial-{self.name}",
                                        daemon=True)
        self._reader.start()

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._stop_reading.set()
            self._reader.join(timeout=5)
            self._reader = None

    def _read_loop(self, ser: serial.SerialBase) -> None:
        assembler = LineAssembler(self.serial.add, self.secrets)
        last_data = time.monotonic()
        while not self._stop_reading.is_set():
            try:
                data = ser.read(ser.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as err:  # a lost port
                if self._stop_reading.is_set():
                    break
                assembler.flush()
                self.serial.mark_lost(f"serial port {self.port_url} stopped answering ({err})")
                return
            now = time.monotonic()
            if data:
                assembler.feed(data)
                last_data = now
            elif assembler.pending and now - last_data > IDLE_FLUSH_S:
                assembler.flush()
        assembler.flush()

    def close(self) -> None:
        self._stop_reader()
        if self._ser is not None:
            with contextlib.suppress(Exception):
                self._ser.close()
            self._ser = None

    def stop(self) -> None:
        self.close()

    # --- Board interface ---

    def write(self, line: str) -> None:
        # The console echoes what is typed: a secret set by hand must be masked in that echo too.
        typed_secret = TYPED_SECRET.match(line)
        if typed_secret:
            self.add_secrets([typed_secret.group(1)])
        data = (line + "\n").encode()
        ser = self._port()
        try:
            with self._write_lock:
                for i in range(0, len(data), WRITE_CHUNK):
                    ser.write(data[i:i + WRITE_CHUNK])
                    ser.flush()
                    if len(data) > WRITE_CHUNK:  # let the console read and echo before the next chunk
                        time.sleep(WRITE_CHUNK * 10 / self.console_baud)
        except (serial.SerialException, OSError) as err:
            self.serial.mark_lost(f"writing to {self.port_url} failed ({err})")
            raise PortLostError(f"{self.name}: writing to {self.port_url} failed: {err}") from None

    def reset(self) -> None:
        """Pulses EN through RTS (esptool's HardReset), as the auto-reset circuit of a dev board does."""
        if self.port_url.startswith("socket://"):
            raise Esp32Error(f"{self.name}: a socket:// port carries no RTS/DTR, so the chip cannot be reset; "
                             "share the board with esp_rfc2217_server and use rfc2217://host:port?ign_set_control")
        ser = self._port()
        try:
            HardReset(ser)()
        except (serial.SerialException, OSError) as err:
            self.serial.mark_lost(f"resetting through {self.port_url} failed ({err})")
            raise PortLostError(f"{self.name}: resetting through {self.port_url} failed: {err}") from None

    def power_cut(self) -> None:
        """Switches the board's power off and on. A local port is closed meanwhile and reopened when it is back
        (the USB bridge may lose power too); a network port (a farm's) stays open, so the boot lines are read."""
        if self.power is None:
            raise Esp32Error(f"{self.name}: no power control back-end (set --hil-power or 'power' in the board "
                             "inventory); tests that cut power are marked needs_power_control")
        local = is_local_device(self.port_url)
        if local:
            self.close()
        self.power.off()
        time.sleep(POWER_OFF_S)  # long enough for the board's capacitors to drain
        self.power.on()
        if local:
            self._wait_for_port(PORT_RETURN_TIMEOUT_S)
            self.open()

    def _wait_for_port(self, timeout: float) -> None:
        if not is_local_device(self.port_url):
            return
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.port_url):  # USB re-enumeration after power on
            if time.monotonic() > deadline:
                raise PortLostError(f"{self.name}: {self.port_url} did not come back within {timeout:g} s of power on")
            time.sleep(0.1)

    def flash(self, image: bytes) -> None:
        """Writes image to ota_0 and erases otadata and nvs, like a factory flash of the app."""
        build = self._require_build()
        with self.bootloader() as esp:
            self._write(esp, [(build.ota_0.offset, image)], build)
            self._erase(esp, [build.otadata, build.nvs])

    def running_partition_offset(self) -> int | None:
        """The offset of the app the bootloader loaded last, from the console."""
        for line in reversed(self.serial.lines):
            match = LOADED_APP.search(line.text)
            if match:
                return int(match.group(1), 16)
            if line.text.startswith("rst:"):
                return None
        return None

    # --- esptool ---

    @property
    def partitions(self) -> list[pt.Partition]:
        return list(self._require_build().partitions)

    def _require_build(self) -> IdfBuild:
        if self.build is None:
            raise Esp32Error(f"{self.name}: flash the board with a build first (its partition table is needed)")
        return self.build

    @contextlib.contextmanager
    def bootloader(self) -> Iterator[ESPLoader]:
        """The chip in its ROM download mode, running esptool's stub, over this board's connection.

        The console reader pauses meanwhile. On exit the chip is left in the stub: reset() boots it.
        """
        self._stop_reader()
        ser = self._port()
        try:
            esp = CHIP_DEFS[self.target](ser, ESPLoader.ESP_ROM_BAUD)
            if self.port_url.startswith("rfc2217:"):
                esp.USES_RFC2217 = True
            esp.connect("default-reset", self.connect_attempts)
            esp = run_stub(esp)
            if self.flash_baud != ESPLoader.ESP_ROM_BAUD:
                esp.change_baud(self.flash_baud)
            attach_flash(esp)
            yield esp
        except FatalError as err:
            if not ser.is_open or (is_local_device(self.port_url) and not os.path.exists(self.port_url)):
                self.serial.mark_lost(f"serial port {self.port_url} disappeared ({err})")
                raise PortLostError(f"{self.name}: serial port {self.port_url} disappeared: {err}") from None
            raise Esp32Error(f"{self.name}: esptool on {self.port_url}: {err}") from None
        except (serial.SerialException, OSError) as err:
            self.serial.mark_lost(f"serial port {self.port_url} stopped answering ({err})")
            raise PortLostError(f"{self.name}: serial port {self.port_url} stopped answering: {err}") from None
        finally:
            if ser.is_open:
                with contextlib.suppress(Exception):
                    ser.baudrate = self.console_baud
                    ser.timeout = READ_TIMEOUT_S
                self._start_reader()

    def read_mac(self) -> str:
        with self.bootloader() as esp:
            return ":".join(f"{b:02x}" for b in esp.read_mac())

    @staticmethod
    def _write(esp: ESPLoader, files: list[tuple[int, bytes]], build: IdfBuild) -> None:
        write_flash(esp, files, flash_mode=build.flash_mode, flash_size=build.flash_size,
                    flash_freq=build.flash_freq, no_progress=True)

    @staticmethod
    def _erase(esp: ESPLoader, partitions: Iterable) -> None:
        for part in partitions:
            erase_region(esp, part.offset, part.size)

    def flash_build(self, build: IdfBuild, app: bytes | None = None) -> None:
        """What ``idf.py flash`` does, once per session: bootloader, partition table, the app in ota_0,
        and blank otadata (so the bootloader starts ota_0), plus a blank nvs."""
        files = [(build.bootloader.offset, build.bootloader.data),
                 (build.partition_table.offset, build.partition_table.data),
                 (build.ota_0.offset, app if app is not None else build.image)]
        with self.bootloader() as esp:
            self._write(esp, files, build)
            self._erase(esp, [build.otadata, build.nvs])
        self.build = build

    def restore_flash(self, build: IdfBuild | None = None, app: bytes | None = None) -> bool:
        """Back to the baseline without re-flashing: otadata blank (the bootloader starts ota_0) and
        nvs blank (no persisted OTA request, no configuration: the board is provisioned again).

        ota_0 is rewritten only when an update overwrote it (its MD5, computed by the stub on the
        chip, differs from the baseline app's); returns whether it was.
        """
        build = build or self._require_build()
        app = app if app is not None else build.image
        with self.bootloader() as esp:
            rewrite = esp.flash_md5sum(build.ota_0.offset, len(app)) != hashlib.md5(app).hexdigest()
            if rewrite:
                self._write(esp, [(build.ota_0.offset, app)], build)
            self._erase(esp, [build.otadata, build.nvs])
        return rewrite
