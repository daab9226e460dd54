"""Boot, confirm, rollback.

E5: a v2 whose self-test fails marks itself invalid; the board comes back on v1 in ota_0.
"""

from harness.link import DeviceLink


def test_rollback_when_selftest_fails(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """E5: an application self-test failure marks v2 invalid and rolls back to v1 in ota_0
    (`rolled_back`/`selftest_failed`).

    Needs: selftest_fail build."""
    since = ota.start_until_reboot("r2", fw_server.add(firmware.image("selftest_fail", version="2.0.0")).url)
    assert board.expect_loaded_app(timeout=10) == "ota_1"  # v2 gets its one boot
    board.expect(r"esp_ota_ops: Rollback to previously worked partition\.", timeout=15)
    assert board.expect_loaded_app(timeout=10) == "ota_0"  # and the bootloader goes back

    event = link.wait_ota(board.device_id, "r2", "rolled_back", timeout=20, since=since, fail_on={"succeeded"})
    assert event["reason"] == "selftest_failed"
    status = link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=since, timeout=10)
    assert status["version"] == firmware.base_version
    assert status["partition"] == "ota_0"
    assert status["ota_state"] == "valid"
    assert status["last_ota"]["state"] == "rolled_back"
    link.check_protocol()
