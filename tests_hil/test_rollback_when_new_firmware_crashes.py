"""Boot, confirm, rollback.

A v2 that crashes on its first boot, before confirming: the bootloader rolls back to v1.

The new image boots once in PENDING_VERIFY; the bootloader turns that into ABORTED at the next
boot and loads the previous slot. The old firmware then reports the request as rolled_back.
"""

from harness.link import DeviceLink


def test_rollback_when_new_firmware_crashes(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """A crash before confirming: the bootloader rolls back (`rolled_back`/`boot_failed`, reset reason
    `panic`), v1 runs from ota_0.

    Needs: crash_on_boot build."""
    since = ota.start_until_reboot("r3", fw_server.add(firmware.image("crash_on_boot", version="2.0.0")).url)
    assert board.expect_loaded_app(timeout=10) == "ota_1"
    board.expect(r"abort\(\) was called at PC 0x[0-9a-f]+ on core 0", timeout=10)
    board.expect(r"Rebooting\.\.\.", timeout=5)
    board.expect(r"rst:0xc \(SW_CPU_RESET\)", timeout=5)
    assert board.expect_loaded_app(timeout=10) == "ota_0"

    event = link.wait_ota(board.device_id, "r3", "rolled_back", timeout=20, since=since, fail_on={"succeeded"})
    assert event["reason"] == "boot_failed"
    status = link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=since, timeout=10)
    assert (status["version"], status["partition"], status["reset_reason"]) == (firmware.base_version, "ota_0", "panic")
    link.check_protocol()
