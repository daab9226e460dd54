"""Version and happy path.

The version policy (A1-A4), and one update broadcast to every board.
"""

from typing import Any

import pytest

from harness.link import DeviceLink

REBOOTS = {  # how the device is restarted -> the ROM banner and the reset reason it reports
    "reboot_command": (r"^rst:0xc \(SW_CPU_RESET\)", "sw"),
    "reset_pin": (r"^rst:0x1 \(POWERON_RESET\)", "poweron"),
}


def _status_after_reboot(board, link: DeviceLink, how: str) -> dict[str, Any]:
    """Restarts the board and returns the first status it publishes after the ROM banner."""
    banner, reason = REBOOTS[how]
    board.serial.skip_to_end()
    mark = board.serial.mark()
    if how == "reboot_command":
        link.send(board.device_id, {"type": "reboot"})
    else:
        board.reset()
    board.expect(banner, timeout=10)
    rom = next(line for line in board.serial.lines[mark:] if line.text.startswith("rst:"))
    status = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "status" and m.t > rom.t,
                           timeout=15, description="the first status after the reboot").data
    assert status["reset_reason"] == reason, status
    return status


@pytest.mark.parametrize("how", sorted(REBOOTS))
def test_new_version_survives_a_further_reboot(ota, board, link: DeviceLink, fw_server, firmware, how: str) -> None:
    """A1: after confirmation, a `reboot` command or the EN pin boots v2 again (valid, the right reset
    reason, `succeeded` persisted), with no new OTA events.

    1.0.0 -> 2.0.0 installs into ota_1, confirms itself, and is still there (valid, no rollback) after
    another reboot: the confirmation and the outcome persisted."""
    ota.install("a1", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    since = link.cursor()
    status = _status_after_reboot(board, link, how)
    assert (status["version"], status["partition"], status["ota_state"]) == ("2.0.0", "ota_1", "valid"), status
    assert status["last_ota"] == {"id": "a1", "state": "succeeded", "version": "2.0.0"}, status
    after = [m.text for m in link.messages[since:] if m.device_id == board.device_id and m.kind == "ota"]
    assert not after, f"OTA events after a plain reboot: {after}"
    link.check_protocol()


def test_back_to_back_updates_alternate_slots(ota, fw_server, firmware) -> None:
    """A2: v1 → v2 → v3 → v4, each into the slot not running (ota_1, ota_0, ota_1); the second and later
    updates run in firmware that was itself installed over the air."""
    slots = [ota.install(f"a2-{v}", fw_server.add(firmware.image(version=f"{v}.0.0")).url, f"{v}.0.0")["partition"]
             for v in (2, 3, 4)]
    assert slots == ["ota_1", "ota_0", "ota_1"]
    ota.link.check_protocol()


def test_same_version_is_refused(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """A3: the running version is offered again: `rejected`/`same_version` before anything is verified,
    no reboot."""
    since = ota.start("a3", fw_server.add(firmware.image()).url)
    ota.expect_outcome("a3", "rejected", "same_version", since)
    ota.assert_healthy_on_base(since)
    assert "verifying" not in [e["state"] for e in link.ota_events(board.device_id, "a3")]


def test_downgrade_is_refused_unless_forced(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """A4: on 2.0.0, 1.5.0 is `rejected`/`downgrade` (still 2.0.0 from ota_1, no reboot); with `force`
    it installs."""
    ota.install("a4-up", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    old = fw_server.add(firmware.image(version="1.5.0"))
    since = ota.start("a4-down", old.url)
    ota.expect_outcome("a4-down", "rejected", "downgrade", since)
    ota.assert_healthy("2.0.0", "ota_1")
    status = ota.install("a4-force", old.url, "1.5.0", force=True)
    assert status["partition"] == "ota_0"


@pytest.mark.boards(2)
def test_broadcast_updates_every_board(board_factory, link: DeviceLink, fw_server, firmware) -> None:
    """One command on `<prefix>/all/cmd` updates every board, each reporting under its own id; the
    image is downloaded once per board."""
    boards = [board_factory(), board_factory()]
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    link.broadcast({"type": "ota", "id": "all1", "url": artifact.url})
    for b in boards:
        link.wait_ota(b.device_id, "all1", "succeeded", timeout=40, since=since,
                      fail_on={"failed", "rejected", "rolled_back"})
        status = link.wait_status(b.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                                  since=since, timeout=10)
        assert status["partition"] == "ota_1"
    assert len(fw_server.requests_for(artifact)) == len(boards)
    link.check_protocol()
