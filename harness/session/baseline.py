"""Bring a board to the known state a scenario starts from, the same way on every target.

Each factory first puts the firmware in place its own way (the virtual board writes a new flash file and
powers on; a real board is flashed once per session, then restored by erasing otadata and nvs, and
reset). Then this one sequence: provision over the serial console (`config set ...`, `reboot`), see the
reboot on the console, and wait for the device's first status over MQTT; a board started on the base
firmware must report the base version from ota_0.
"""

from __future__ import annotations

from typing import Any

from harness.boards.base import Board
from harness.link import DeviceLink
from harness.provision import provision

SOFTWARE_RESET = r"rst:0xc \(SW_CPU_RESET\)"


class BaselineError(AssertionError):
    """The board did not come up as the scenario's starting point."""


def bring_up(board: Board, link: DeviceLink, settings: dict[str, object], *, boot_timeout: float,
             console_timeout: float = 10.0, base: tuple[str, str] | None = None) -> dict[str, Any]:
    """Provisions `settings` (device_id among them), waits for the reboot and the first status; checks
    (version, partition) against `base` when given. Returns that status."""
    cursor = link.cursor()
    provision(board, settings, timeout=console_timeout)
    board.expect(SOFTWARE_RESET, timeout=console_timeout)
    status = link.wait_status(board.device_id, timeout=boot_timeout, since=cursor,
                              description=f"first status of {board.device_id} ({board.name}) after provisioning")
    if base is not None and (status.get("version"), status.get("partition")) != base:
        raise BaselineError(f"{board.name}: after the baseline it runs {status.get('version')} from "
                            f"{status.get('partition')}, not {base[0]} from {base[1]}")
    return status
