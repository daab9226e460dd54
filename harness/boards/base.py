"""The Board interface the scenarios use, whatever the target (as pytest-embedded's ``dut``).

Tests reach the device only through a Board (serial console, reset, flashing) and the device
link (MQTT), never through back doors, so one test file runs on a virtual and a real board.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from harness import log_patterns
from harness.formats import partition_table as pt
from harness.serial_log import SerialLog
from harness.virtual.ble_air import BleAir, NoBleAirError
from harness.virtual.wifi_ap import NoWifiApError, WifiAp


class Board(ABC):
    """A board under test. `name` names it in logs; `device_id` is its id in the MQTT topics (set when
    it is provisioned); `serial` is its console."""

    name: str
    device_id: str
    serial: SerialLog

    @property
    @abstractmethod
    def partitions(self) -> list[pt.Partition]:
        """The partition table the board was flashed with."""

    def slot_offset(self, label: str) -> int:
        """Flash offset of a partition by label ("ota_0", "ota_1", "nvs", ...)."""
        return pt.find(self.partitions, label).offset

    def slot_at(self, offset: int) -> str:
        """The label of the partition that starts at `offset` (as the bootloader prints it)."""
        found = [p.label for p in self.partitions if p.offset == offset]
        if not found:
            raise AssertionError(f"{self.name}: no partition starts at {offset:#x}; the table has "
                                 + ", ".join(f"{p.label} at {p.offset:#x}" for p in self.partitions))
        return found[0]

    def expect_loaded_app(self, timeout: float = 10.0) -> str:
        """Waits for the bootloader's "Loaded app from partition at offset ..." line; returns the slot's label."""
        return self.slot_at(int(self.expect(log_patterns.LOADED_APP, timeout).group(1), 16))

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Waits for a serial line matching pattern, after the previous match."""
        return self.serial.expect(pattern, timeout)

    @property
    def ble_air(self) -> BleAir:
        """The BLE devices advertising around the board, which a test controls: only a virtual board has one."""
        raise NoBleAirError(f"{self.name}: injected BLE advertisements need the virtual board (a real ESP32 hears "
                            "only real devices); mark the test @pytest.mark.virtual_only")

    @property
    def wifi_ap(self) -> WifiAp:
        """The board's Wi-Fi access point, which a test switches off and on: only a virtual board has one."""
        raise NoWifiApError(f"{self.name}: switching the access point needs the virtual board (a real ESP32 joins a "
                            "real AP: cut its network with the fault proxy); mark the test @pytest.mark.virtual_only")

    @abstractmethod
    def write(self, line: str) -> None:
        """Sends one line to the firmware's serial console."""

    @abstractmethod
    def reset(self) -> None:
        """Resets the chip through its EN pin (a power-on reset on a classic ESP32)."""

    @abstractmethod
    def power_cut(self) -> None:
        """Cuts power and restores it (virtual boards, or real ones with power control)."""

    @abstractmethod
    def flash(self, image: bytes) -> None:
        """Writes an app image to ota_0 and blank otadata, as a factory flash does."""

    @abstractmethod
    def stop(self) -> None:
        """Powers the board off and releases its processes, threads and files."""

    def console(self, command: str, expect: str = r"^(OK|ERROR)\b", timeout: float = 5.0) -> re.Match[str]:
        """Runs a console command and waits for its reply line; fails on an ERROR reply."""
        self.write(command)
        match = self.expect(expect, timeout)
        if match.group(0).startswith("ERROR"):
            raise AssertionError(f"{self.name}: console command {command!r} failed: {match.string}")
        return match
