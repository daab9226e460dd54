"""The `ota` fixture's helper: start an update on one board and check the device afterwards.

Through MQTT and the serial console only, so a scenario using it runs on every target. A firmware team's
own release gate uses it as the catalog does (`ota.install(...)`, `ota.expect_outcome(...)`,
`ota.assert_healthy_on_base(...)`).
"""

from __future__ import annotations

from typing import Any

from harness import commands
from harness.boards.base import Board
from harness.link import DeviceLink

FINAL_STATES = frozenset({"rebooting", "succeeded", "failed", "rejected", "cancelled"})


class Ota:
    """Sends OTA commands to one board and checks the device afterwards (MQTT and serial only)."""

    def __init__(self, board: Board, link: DeviceLink, base_version: str) -> None:
        self.board = board
        self.link = link
        self.base_version = base_version
        self.serial_mark = 0
        self.status_before: dict[str, Any] | None = None

    def mark(self) -> int:
        """Remembers the serial position and the latest status; returns the transcript cursor."""
        since = self.link.cursor()
        self.board.serial.skip_to_end()
        self.serial_mark = self.board.serial.mark()
        self.status_before = self.link.latest_status(self.board.device_id)
        return since

    def send(self, command: dict[str, Any]) -> int:
        """Sends a command (see harness.commands) after mark(); returns the transcript cursor from before it."""
        since = self.mark()
        self.link.send(self.board.device_id, command)
        return since

    def start(self, request_id: str, url: str, **fields: Any) -> int:
        """Sends an update command (harness.commands.ota) and returns the transcript cursor from before it."""
        return self.send(commands.ota(url, request_id, **fields))

    def start_until_reboot(self, request_id: str, url: str, timeout: float = 20, **fields: Any) -> int:
        """Starts an update and waits until the device says `rebooting` (the new image is written and the
        boot partition switched); returns the transcript cursor from before the command."""
        since = self.start(request_id, url, **fields)
        self.link.wait_ota(self.board.device_id, request_id, "rebooting", timeout=timeout, since=since,
                           fail_on={"failed", "rejected"})
        return since

    def expect_outcome(self, request_id: str, state: str, reason: str | None, since: int,
                       timeout: float = 30) -> dict[str, Any]:
        """Waits for the request's final state; a reboot or success on the way fails at once."""
        event = self.link.wait_ota(self.board.device_id, request_id, state, timeout=timeout, since=since,
                                   fail_on=FINAL_STATES - {state})
        if reason is not None:
            assert event.get("reason") == reason, event
        return event

    def assert_healthy_on_base(self, since: int) -> dict[str, Any]:
        """No reboot since `since`, still the base version from ota_0, and still answering commands."""
        return self.assert_healthy(self.base_version, "ota_0")

    def assert_healthy(self, version: str, partition: str) -> dict[str, Any]:
        """Answers a status command with `version` from `partition`, and has not rebooted since mark()/start().

        Two round trips, over MQTT and then over the serial console, come before the ROM banner is looked
        for, so a reboot that follows the outcome closely (a flush and esp_restart()) is caught too.
        """
        cursor = self.link.cursor()
        self.link.send(self.board.device_id, commands.status())
        status = self.link.wait_status(self.board.device_id, since=cursor, timeout=10,
                                       description="a status answer to a status command")
        console = self.board.console("status", expect=r"^version=(\S+) partition=(\S+) ota_state=(\S+)")
        rebooted = [line.text for line in self.board.serial.lines[self.serial_mark:] if line.text.startswith("rst:")]
        assert not rebooted, f"the device rebooted: {rebooted}"
        assert (status["version"], status["partition"], status["ota_state"]) == (version, partition, "valid"), status
        assert console.groups() == (version, partition, "valid"), console.string
        before = self.status_before
        if before is not None:  # a reboot restarts the uptime and changes the reset reason
            assert status["uptime_s"] >= before["uptime_s"], (before, status)
            assert status["reset_reason"] == before["reset_reason"], (before, status)
        self.link.check_protocol()
        return status

    def install(self, request_id: str, url: str, version: str, **fields: Any) -> dict[str, Any]:
        """Runs an update to the end and returns the status of the new firmware."""
        since = self.start(request_id, url, **fields)
        self.link.wait_ota(self.board.device_id, request_id, "succeeded", timeout=40, since=since,
                           fail_on={"failed", "rejected", "rolled_back", "cancelled"})
        return self.link.wait_status(self.board.device_id, lambda s: s["version"] == version and
                                     s["ota_state"] == "valid", since=since, timeout=10)
