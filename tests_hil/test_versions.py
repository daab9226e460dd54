"""Version policy and the happy path (A1-A4, broadcast)."""

import pytest

from harness.link import DeviceLink


def test_new_version_survives_a_further_reboot(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """A1: installed, confirmed, and still there after a reset (the confirmation persisted)."""
    ota.install("a1", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    since = link.cursor()
    board.reset()
    board.expect(r"rst:0x1 \(POWERON_RESET\)", timeout=10)
    status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=15)
    assert (status["version"], status["partition"], status["ota_state"]) == ("2.0.0", "ota_1", "valid")


def test_back_to_back_updates_alternate_slots(ota, fw_server, firmware) -> None:
    """A2: v1 -> v2 -> v3, each in the slot the device is not running from."""
    assert ota.install("a2-2", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")["partition"] == "ota_1"
    assert ota.install("a2-3", fw_server.add(firmware.image(version="3.0.0")).url, "3.0.0")["partition"] == "ota_0"


def test_same_version_is_refused(ota, fw_server, firmware) -> None:
    """A3: nothing to do, nothing written, no reboot."""
    since = ota.start("a3", fw_server.add(firmware.image()).url)
    ota.expect_outcome("a3", "rejected", "same_version", since)
    ota.assert_healthy_on_base(since)


def test_downgrade_is_refused_unless_forced(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """A4: 2.0.0 -> 1.5.0 is refused, and accepted with force."""
    ota.install("a4-up", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    old = fw_server.add(firmware.image(version="1.5.0"))
    since = ota.start("a4-down", old.url)
    ota.expect_outcome("a4-down", "rejected", "downgrade", since)
    status = ota.install("a4-force", old.url, "1.5.0", force=True)
    assert status["partition"] == "ota_0"


@pytest.mark.boards(2)
def test_broadcast_updates_every_board(board_factory, link: DeviceLink, fw_server, firmware) -> None:
    boards = [board_factory(), board_factory()]
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    link.broadcast({"type": "ota", "id": "all1", "url": artifact.url})
    for b in boards:
        link.wait_ota(b.device_id, "all1", "succeeded", timeout=40, since=since, fail_on={"failed", "rejected"})
        link.wait_status(b.device_id, lambda s: s["version"] == "2.0.0", since=since, timeout=10)
