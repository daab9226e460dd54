"""Job control (D1, D5): cancel, busy, and the order of events of a successful update."""

from harness.fwserver import FaultPlan
from harness.link import DeviceLink

ORDER = ["accepted", "downloading", "verifying", "rebooting"]


def test_cancel_during_download_then_a_new_update_succeeds(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """D1: cancelled mid-download, nothing switched; the next request installs."""
    slow = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(throttle_bps=100_000))
    since = ota.start("d1", slow.url)
    link.wait_ota(board.device_id, "d1", "downloading", timeout=10, since=since)
    link.send(board.device_id, {"type": "cancel", "id": "d1"})
    ota.expect_outcome("d1", "cancelled", "cancelled", since)
    ota.assert_healthy_on_base(since)
    ota.install("d1-next", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")


def test_second_update_while_one_runs_is_busy(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    slow = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(throttle_bps=100_000))
    since = ota.start("first", slow.url)
    link.wait_ota(board.device_id, "first", "downloading", timeout=10, since=since)
    link.send(board.device_id, {"type": "ota", "id": "second", "url": slow.url})
    event = link.wait_ota(board.device_id, "second", "rejected", timeout=10, since=since)
    assert event["reason"] == "busy"
    link.send(board.device_id, {"type": "cancel"})
    ota.expect_outcome("first", "cancelled", "cancelled", since)


def test_events_arrive_in_protocol_order(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """D5: accepted, downloading..., verifying, rebooting, then succeeded from the new firmware."""
    ota.install("d5", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    events = link.ota_events(board.device_id, "d5")
    states = [e["state"] for e in events]
    collapsed = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
    assert collapsed == [*ORDER, "succeeded"], states
    before_reboot = [e["seq"] for e in events[:-1]]
    assert before_reboot == list(range(before_reboot[0], before_reboot[0] + len(before_reboot)))
    link.check_protocol()
