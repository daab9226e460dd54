"""The Board interface the scenarios use, whatever the target (as pytest-embedded's ``dut``).

Tests reach the device only through a Board (serial console, reset, flashing) and the device
link (MQTT), never through back doors, so one test file runs on a virtual and a real board.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from harness.serial_log import SerialLog


class Board(ABC):
    name: str
    serial: SerialLog

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Waits for a serial line matching pattern, after the previous match."""
        return self.serial.expect(pattern, timeout)

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
