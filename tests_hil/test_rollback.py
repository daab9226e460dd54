"""Boot, confirm and rollback (E1-E7, C4)."""

from harness.fwserver import FaultPlan
from harness.link import DeviceLink

LOADED_APP = r"boot: Loaded app from partition at offset (0x[0-9a-f]+)"


def _last_ota_after_broker_restart(board, link: DeviceLink, since: int) -> dict:
    """The rolled_back event may go out before the link is back on the restarted broker (events
    are not retained), so ask for the status: its last_ota is the persisted outcome."""
    link.wait_connection(timeout=10)
    board.expect(r"app: ready", timeout=15)
    cursor = link.cursor()
    link.send(board.device_id, {"type": "status"})
    return link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=cursor, timeout=10)


def test_confirmed_image_stays_after_resets(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """E1: after confirmation, resets never bring v1 back."""
    ota.install("e1", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    for _ in range(2):
        since = link.cursor()
        board.reset()
        status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=15)
        assert (status["version"], status["partition"], status["ota_state"]) == ("2.0.0", "ota_1", "valid")


def test_new_firmware_that_cannot_reach_the_broker_rolls_back(board_factory, ota_for, broker, link: DeviceLink,
                                                              fw_server, firmware) -> None:
    """E3: the broker is down while v2 boots; its self-test times out and v1 comes back."""
    board = board_factory(selftest_timeout_s=2)
    ota = ota_for(board)
    since = ota.start("e3", fw_server.add(firmware.image(version="2.0.0")).url)
    link.wait_ota(board.device_id, "e3", "rebooting", timeout=20, since=since, fail_on={"failed", "rejected"})
    broker.stop()
    try:
        assert board.expect(LOADED_APP, timeout=10).group(1) == "0x1d0000"
        board.expect(r"esp_ota_ops: Rollback to previously worked partition\.", timeout=15)
        assert board.expect(LOADED_APP, timeout=10).group(1) == "0x20000"
    finally:
        broker.start()
    status = _last_ota_after_broker_restart(board, link, since)
    assert status["last_ota"] == {"id": "e3", "state": "rolled_back", "reason": "selftest_failed", "version": "2.0.0"}
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")


def test_reset_before_confirmation_rolls_back(board_factory, ota_for, broker, link: DeviceLink, fw_server,
                                              firmware) -> None:
    """E2: v2 is reset while it waits for its self-test; the bootloader aborts it and boots v1."""
    board = board_factory(selftest_timeout_s=30)
    ota = ota_for(board)
    since = ota.start("e2", fw_server.add(firmware.image(version="2.0.0")).url)
    link.wait_ota(board.device_id, "e2", "rebooting", timeout=20, since=since, fail_on={"failed", "rejected"})
    broker.stop()
    try:
        board.expect(r"boot_check: new image pending verification", timeout=15)
        board.reset()
        assert board.expect(LOADED_APP, timeout=10).group(1) == "0x20000"
    finally:
        broker.start()
    status = _last_ota_after_broker_restart(board, link, since)
    assert status["last_ota"] == {"id": "e2", "state": "rolled_back", "reason": "boot_failed", "version": "2.0.0"}
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")


def test_failed_update_then_a_valid_one(ota, fw_server, firmware) -> None:
    """E7: a corrupt download fails cleanly and the next update installs."""
    since = ota.start("e7-bad", fw_server.add(firmware.image(version="2.0.0")[:1000]).url)
    ota.expect_outcome("e7-bad", "failed", "invalid_image", since)
    ota.install("e7-good", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")


def test_reset_during_download_keeps_v1_and_a_retry_succeeds(ota, board, link: DeviceLink, fw_server,
                                                             firmware) -> None:
    """C4: power is lost half way through the download; v1 boots and a new request installs."""
    slow = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(throttle_bps=200_000))
    since = ota.start("c4", slow.url)
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ota" and m.data.get("state") ==
                  "downloading" and m.data["percent"] >= 20, timeout=15, since=since, description="20 % downloaded")
    board.reset()
    assert board.expect(LOADED_APP, timeout=10).group(1) == "0x20000"
    status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=15)
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")
    ota.install("c4-retry", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
