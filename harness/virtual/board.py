"""The virtual ESP32: a flash file, the bootloader rules, and our firmware as a child process.

Each boot prints the ROM and bootloader lines of a real ESP32, runs the bootloader emulation on
the flash file, then starts the executable inside the image it loaded. The app's stdout is the
serial console; its exit code says why it stopped (esp_restart, a panic, a power cut), which
picks the next reset reason, exactly as a chip would report it.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.boards.base import Board
from harness.formats import partition_table as pt
from harness.formats.app_image import virtual_payload
from harness.serial_log import SerialLine, SerialLog
from harness.virtual import host_abi as abi
from harness.virtual import rom
from harness.virtual.ble_air import BleAir
from harness.virtual.bootloader import Bootloader, BootloaderConfig
from harness.virtual.efuse import Efuses
from harness.virtual.flash import SECTOR_SIZE, Flash, FlashTiming
from harness.virtual.mesh import MeshMedium
from harness.virtual.mqtt_trace import Published, read_trace
from harness.virtual.uart import PtyUart
from harness.virtual.wifi_ap import WifiAp

# A real chip with nothing bootable resets at once and loops; pausing between attempts shows the
# same loop without spinning a CPU core.
NO_APP_RETRY_S = 0.5


# Boards boot in threads of one process. A child forked while another board's thread still has its new
# executable open for writing keeps that descriptor until it execs, and exec of that file then fails with
# ETXTBSY ("Text file busy"). Writing an executable and starting one never overlap.
_EXEC_LOCK = threading.Lock()

class VirtualBoardError(RuntimeError):
    pass


class VirtualBoard(Board):
    def __init__(
        self, name: str, flash_path: Path, workdir: Path, mac: str = "240ac4000001",
        on_line: Callable[[SerialLine], None] | None = None, efuse_path: Path | None = None,
    ) -> None:
        """`efuse_path`: the chip's eFuses, kept as they are (blank when the file is missing), as a board
        kept between runs has them; by default a blank chip's, in `workdir`."""
        self.name = name
        self.device_id = name
        self.flash_path = Path(flash_path)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mac = mac
        self.serial = SerialLog(name, self._on_serial_line)
        self._on_line = on_line
        self._uart: PtyUart | None = None
        self.power_cut_at: int | None = None  # lose power at this flash write/erase of the next boot
        self.power_cut_boots_ahead = 0  # ... of the boot after this many more app runs (one that crashes, say)
        self.flash_timing: FlashTiming | None = None  # from the next boot: flash takes this long (None: no time)
        self.boot_count = 0
        self.flash_ops_at_boot: list[int] = []  # flash_ops() as each boot began: what each run of the app did
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._next_reset = rom.POWERON
        self._forced_reset: rom.RomReset | None = None
        self._stopping = threading.Event()
        self._interrupted = threading.Event()  # reset or power cut while no app runs
        self._thread: threading.Thread | None = None
        self._running_offset: int | None = None
        self._boot_ms = 0.0
        self._control_path = self.workdir / "flash-control.bin"
        self._mqtt_trace_path = self.workdir / "mqtt-trace.bin"
        # The app's temporary files (the host port's copies of the TLS material, which libmosquitto reads from
        # files where a chip keeps it in RAM): its TMPDIR, emptied at every boot, as RAM is. An app ended by a
        # reset or a power cut cannot remove its own, and in /tmp they would pile up.
        self._app_tmp = self.workdir / "app-tmp"
        self._control_path.write_bytes(bytes(4 * abi.FC_WORDS))
        self._ble_air = BleAir(self.workdir / "ble-air.txt")  # the board's surroundings: kept across reboots
        self._wifi_ap = WifiAp(self.workdir / "wifi-ap.txt")  # its access point, also kept across reboots
        self.efuses = Efuses(Path(efuse_path) if efuse_path else self.workdir / "efuse.bin")  # kept across reboots
        if efuse_path is None or not self.efuses.path.exists():
            self.efuses.create()
        # The options of the bootloader on the flash (flash(..., bootloader=...)): the build's sdkconfig's.
        self.bootloader_config = BootloaderConfig()
        # The ESP-WIFI-MESH network the board is in range of (harness/virtual/mesh.py), if any: its firmware
        # finds the medium through HIL_MESH at every boot.
        self.mesh: MeshMedium | None = None

    # --- flash operations of the running app (counted by the host port) ---

    def _control_word(self, index: int, value: int | None = None) -> int:
        with open(self._control_path, "r+b") as f, mmap.mmap(f.fileno(), 4 * abi.FC_WORDS) as words:
            if value is not None:
                words[4 * index : 4 * index + 4] = struct.pack("<I", value)
            return struct.unpack_from("<I", words, 4 * index)[0]

    def mqtt_publishes(self) -> list[Published]:
        """What the firmware published over MQTT, every boot so far, each with when it did (mqtt_trace)."""
        return read_trace(self._mqtt_trace_path)

    @property
    def app_tmpdir(self) -> Path:
        """The running app's TMPDIR (emptied at every boot)."""
        return self._app_tmp

    @property
    def ble_air(self) -> BleAir:
        """The BLE devices advertising around the board (harness/virtual/ble_air.py), heard by the firmware."""
        return self._ble_air

    @property
    def wifi_ap(self) -> WifiAp:
        """The board's Wi-Fi access point (harness/virtual/wifi_ap.py): down(), up(), set_rssi()."""
        return self._wifi_ap

    def flash_ops(self) -> int:
        """Flash writes plus erases the firmware has done since the board was created."""
        return self._control_word(abi.FC_OPS)

    def cut_power_at_op(self, n: int) -> None:
        """Power fails during flash operation number n (as counted by flash_ops(), 1-based)."""
        self._control_word(abi.FC_CUT_AT, n)

    # --- Board interface ---

    @property
    def serial_port(self) -> str:
        """A pty that pyserial can open (e.g. pytest-embedded's --port): the board's UART."""
        if self._uart is None:
            self._uart = PtyUart(self.name, self.write)
        return self._uart.path

    def _on_serial_line(self, line: SerialLine) -> None:
        if self._uart is not None:
            self._uart.write_line(line.text)
        if self._on_line is not None:
            self._on_line(line)

    def power_on(self) -> None:
        if self._thread is not None:
            raise VirtualBoardError(f"{self.name} is already powered")
        self._stopping.clear()
        self._next_reset = rom.POWERON
        self._thread = threading.Thread(target=self._run, name=f"board-{self.name}", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        with self._lock:
            proc = self._proc
        if proc is None or proc.stdin is None:
            raise VirtualBoardError(f"{self.name}: no firmware is running to read the console line")
        try:
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError as err:
            raise VirtualBoardError(f"{self.name}: the firmware stopped before reading the console line") from err

    def reset(self) -> None:
        """EN pin: a classic ESP32 reports it as a power-on reset (ESP_RST_EXT is not used)."""
        self._kill_app(rom.POWERON)

    def power_cut(self) -> None:
        self._kill_app(rom.POWERON)

    @property
    def partitions(self) -> list[pt.Partition]:
        with Flash(self.flash_path) as flash:
            return flash.partitions()

    def flash(self, image: bytes, bootloader: BootloaderConfig | None = None) -> None:
        """Writes image to ota_0 and erases otadata and nvs, like `idf.py erase-flash flash`; with `bootloader`,
        the bootloader of a build with those options is flashed too (`idf.py flash` writes the build's own).
        eFuses are not touched: like a chip's, they keep what was burnt."""
        if bootloader is not None:
            self.bootloader_config = bootloader
        with Flash(self.flash_path) as flash:
            parts = {p.label: p for p in flash.partitions()}
            for label in ("otadata", "nvs"):
                if label in parts:
                    flash.erase(parts[label].offset, parts[label].size)
            slot = parts["ota_0"]
            flash.erase(slot.offset, slot.size)
            flash.write(slot.offset, image)

    def stop(self) -> None:
        self._stopping.set()
        self._kill_app(rom.POWERON)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._uart is not None:
            self._uart.close()
            self._uart = None

    def running_partition_offset(self) -> int | None:
        return self._running_offset

    # --- boot loop ---

    def _kill_app(self, next_reset: rom.RomReset) -> None:
        with self._lock:
            self._forced_reset = next_reset
            proc = self._proc
            self._interrupted.set()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)

    def _log_boot(self, level: str, message: str, tag: str = "boot") -> None:
        ms = int((time.monotonic() - self._boot_start) * 1000) + 27  # the ROM takes ~27 ms
        self.serial.add(f"{level} ({ms}) {tag}: {message}")

    def _run(self) -> None:
        while not self._stopping.is_set():
            reset = self._next_reset
            with self._lock:
                self._forced_reset = None
                self._interrupted.clear()
            try:
                self._next_reset = self._boot_once(reset)
            except Exception as err:  # a board must never die silently: show why on the console
                self.serial.add(f"virtual board error: {err!r}")
                raise

    def _boot_once(self, reset: rom.RomReset) -> rom.RomReset:
        self.boot_count += 1
        self.flash_ops_at_boot.append(self.flash_ops())
        self._boot_start = time.monotonic()
        self._running_offset = None
        for line in rom.rom_banner(reset):
            self.serial.add(line)
        for tag, message in rom.bootloader_banner():
            self._log_boot("I", message, tag)
        with Flash(self.flash_path) as flash:
            outcome = Bootloader(flash, self._log_boot, config=self.bootloader_config, efuses=self.efuses).boot()
            if outcome.partition is None:
                self._interrupted.wait(NO_APP_RETRY_S)
                return self._forced_reset or rom.SYSTEM_RESET
            payload = virtual_payload(flash.read(outcome.partition.offset, outcome.image.length))
        self._log_boot("I", "Disabling RNG early entropy source...")
        self._running_offset = outcome.partition.offset
        return self._run_app(self._executable(payload), outcome.partition.offset, reset)

    def _executable(self, payload: bytes) -> Path:
        """The app's executable, cached by content so a reboot does not rewrite it."""
        path = self.workdir / f"app-{hashlib.sha256(payload).hexdigest()[:16]}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            with _EXEC_LOCK:
                tmp.write_bytes(payload)
            tmp.chmod(0o755)
            tmp.rename(path)
        return path

    def _fresh_app_tmp(self) -> Path:
        """The app's TMPDIR, empty: what the last boot left there is gone, as a chip's RAM is after a reset.

        Two system calls when it is empty already (most boots: only mqtts leaves a file): each one gives up
        the GIL, which a busy test process takes milliseconds to give back, on every boot's path."""
        try:
            self._app_tmp.rmdir()
        except FileNotFoundError:
            pass
        except OSError:  # not empty
            shutil.rmtree(self._app_tmp)
        self._app_tmp.mkdir(mode=0o700)
        return self._app_tmp

    def _run_app(self, exe: Path, offset: int, reset: rom.RomReset) -> rom.RomReset:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            abi.ENV_FLASH_FILE: str(self.flash_path),
            abi.ENV_APP_OFFSET: f"0x{offset:x}",
            abi.ENV_RESET_REASON: str(int(reset.app_reason)),
            abi.ENV_MAC: self.mac,
            abi.ENV_FLASH_CONTROL: str(self._control_path),
            # the app's log timestamps continue from the ROM + bootloader time, as on a chip
            abi.ENV_BOOT_TIME_US: str(int((time.monotonic() - self._boot_start) * 1e6) + 27000),
            abi.ENV_MQTT_TRACE: str(self._mqtt_trace_path),
            abi.ENV_BLE_AIR: str(self._ble_air.path),
            abi.ENV_WIFI_AP: str(self._wifi_ap.path),
            abi.ENV_EFUSE_FILE: str(self.efuses.path),
            abi.ENV_BOARD_PID: str(os.getpid()),
            "TMPDIR": str(self._fresh_app_tmp()),
        }
        if self.mesh is not None:
            env[abi.ENV_MESH] = str(self.mesh.path)
        if self.flash_timing is not None:
            env[abi.ENV_FLASH_TIMING] = self.flash_timing.env_value()
        # A cut armed for the last run must not fire in this one; the counters keep counting
        # across boots, so a test can measure and target operations across a reboot.
        self._control_word(abi.FC_CUT_AT, 0)
        self._control_word(abi.FC_POWER_CUT, 0)
        if self.power_cut_at is not None and self.power_cut_boots_ahead > 0:
            self.power_cut_boots_ahead -= 1
        elif self.power_cut_at is not None:  # the n-th operation of this boot (the counters never restart)
            env[abi.ENV_POWER_CUT_AT] = str(self.flash_ops() + self.power_cut_at)
            self.power_cut_at = None
        with self._lock:
            if self._stopping.is_set():
                return rom.POWERON
            if self._forced_reset is not None:  # reset or power cut during the bootloader
                return self._forced_reset
            with _EXEC_LOCK:
                # a process group of its own: a terminal's Ctrl-C, sent to the whole group, is for the harness
                # (which stops the board); reaching the app too it looked like a crash, and the board rebooted
                # while being stopped. The app still dies with this process (ENV_BOARD_PID, PR_SET_PDEATHSIG).
                # Not a session of its own: with the kernel's autogroups each session is a scheduling group, so
                # every app would get as much CPU as the whole test run, and the catalog's timing would change.
                self._proc = subprocess.Popen(
                    [str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                    process_group=0,
                )
        proc = self._proc
        for raw in proc.stdout:
            self.serial.add(raw.decode(errors="replace").rstrip("\r\n"))
        code = proc.wait()
        proc.stdout.close()
        proc.stdin.close()
        with self._lock:
            self._proc = None
            forced = self._forced_reset
        if forced is not None:
            return forced
        return self._reset_after_exit(code)

    def _reset_after_exit(self, code: int) -> rom.RomReset:
        if code == abi.EXIT_RESTART:
            return rom.SW_CPU
        if code == abi.EXIT_POWER_CUT:
            return rom.POWERON
        if code == abi.EXIT_TASK_WDT:
            return rom.TASK_WDT
        if code != abi.EXIT_PANIC:
            # Killed by a signal the panic handler could not catch, or an unexpected exit.
            self.serial.add(f"Guru Meditation Error: Core  0 panic'ed (exit status {code}). Exception was unhandled.")
            self.serial.add("Rebooting...")
        return rom.PANIC


def create_flash(path: Path, partitions_csv: str) -> None:
    """A blank 4 MB flash with the partition table written at 0x8000."""
    Flash.create(path, partitions_csv).close()


__all__ = ["SECTOR_SIZE", "VirtualBoard", "VirtualBoardError", "create_flash"]
