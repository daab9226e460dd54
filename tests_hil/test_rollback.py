"""Boot, confirm, rollback.

Boot, confirm and rollback (E1, E2, E3, E7) and a reset in the middle of a download (C4).

E2 and E3 stop the broker while v2 boots, so they need one the harness runs (not `--hil-broker URL`).
"""

import contextlib
import json
from collections.abc import Iterator

import pytest

from harness.broker import ExternalBroker
from harness.fwserver import FaultPlan
from harness.link import DeviceLink


@contextlib.contextmanager
def _broker_down(broker) -> Iterator[None]:
    """The broker stopped while v2 boots, started again afterwards whatever happened meanwhile."""
    broker.stop()
    try:
        yield
    finally:
        broker.start()


def _v2_booting_without_broker(board_factory, ota_for, broker, fw_server, firmware, request_id: str,
                               **settings: object):
    """A board updated to v2 that reboots into it while the broker is away; (board, cursor before the update)."""
    if isinstance(broker, ExternalBroker):
        pytest.skip("stops the broker while v2 boots: needs the embedded broker, not --hil-broker URL")
    board = board_factory(**settings)
    since = ota_for(board).start_until_reboot(request_id, fw_server.add(firmware.image(version="2.0.0")).url)
    return board, since


def _last_ota_after_broker_restart(board, link: DeviceLink, since: int) -> dict:
    """The rolled_back event may go out before the link is back on the restarted broker (events
    are not retained), so ask for the status: its last_ota is the persisted outcome."""
    link.wait_connection(timeout=10)
    board.expect(r"app: ready", timeout=15)
    cursor = link.cursor()
    link.send(board.device_id, {"type": "status"})
    return link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=cursor, timeout=10)


def test_confirmed_image_stays_after_resets(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """E1: after confirmation, two EN-pin resets boot ota_1 again: 2.0.0, valid, reset reason `poweron`,
    `succeeded` persisted; no rollback."""
    ota.install("e1", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    for _ in range(2):
        since = link.cursor()
        board.serial.skip_to_end()
        board.reset()
        board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=10)
        assert board.expect_loaded_app(timeout=10) == "ota_1"
        status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=15)
        assert (status["version"], status["partition"], status["ota_state"]) == ("2.0.0", "ota_1", "valid")
        assert status["last_ota"] == {"id": "e1", "state": "succeeded", "version": "2.0.0"}, status
    link.check_protocol()


def test_new_firmware_that_cannot_reach_the_broker_rolls_back(board_factory, ota_for, broker, link: DeviceLink,
                                                              fw_server, firmware) -> None:
    """E3: broker down while v2 boots: its self-test times out (`selftest_timeout_s`), it marks itself
    invalid (`Rollback to previously worked partition.`) and reboots into v1, which reports
    `rolled_back`/`selftest_failed` once the broker is back.

    Needs: embedded broker."""
    board, since = _v2_booting_without_broker(board_factory, ota_for, broker, fw_server, firmware, "e3",
                                              selftest_timeout_s=1)
    with _broker_down(broker):
        assert board.expect_loaded_app(timeout=10) == "ota_1"
        board.expect(r"boot_check: self-test failed \(broker not reachable\)", timeout=15)
        board.expect(r"esp_ota_ops: Rollback to previously worked partition\.", timeout=5)
        board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
        assert board.expect_loaded_app(timeout=10) == "ota_0"
    status = _last_ota_after_broker_restart(board, link, since)
    assert status["last_ota"] == {"id": "e3", "state": "rolled_back", "reason": "selftest_failed", "version": "2.0.0"}
    assert (status["version"], status["partition"], status["ota_state"]) == (firmware.base_version, "ota_0", "valid")
    link.check_protocol()


@pytest.mark.slow
@pytest.mark.waits  # the self-test's timeout and a reboot's flush, with little CPU
# At a chip's flash pace 3.0.0's outcome takes a while to be saved after its partition turns valid, and its own
# manifest check once reported `rejected` under the same id first (boot_check_confirmed() fixed it)
@pytest.mark.flash_timing("chip")
def test_a_rollback_not_yet_reported_survives_an_update_that_starts_first(board_factory, ota_for, broker,
                                                                           fault_proxy, link: DeviceLink, fw_server,
                                                                           firmware) -> None:
    """E3 + manifest: v2 rolls back while the device's broker link is partitioned, so v1 cannot report it yet;
    v1's start-up manifest check installs 3.0.0 and reboots before the link heals. The rollback's outcome is
    not overwritten by 3.0.0's record: 3.0.0 reports v2's `rolled_back`/`selftest_failed` once it reaches the
    broker, before it confirms itself."""
    newest = fw_server.add(firmware.image(version="3.0.0"))
    body = {"version": "3.0.0", "url": newest.url, "sha256": newest.sha256}
    manifest = fw_server.add(json.dumps(body).encode(), name="manifest.json",
                             faults=FaultPlan(status=404, status_first_requests=1))  # v1's first check: none
    mqtt = fault_proxy(broker.url, name="board-mqtt")
    since = link.cursor()
    board = board_factory(broker_url=mqtt.url_for(broker.url), selftest_timeout_s=3, manifest_url=manifest.url,
                          manifest_delay_s=0)
    link.wait_ota(board.device_id, "manifest", "failed", timeout=15, since=since)  # the 404: first check done
    ota = ota_for(board)
    since = ota.start_until_reboot("unreported", fw_server.add(firmware.image(version="2.0.0")).url)
    mqtt.set_blackhole(True)  # before v2 boots: its `rebooting` has reached the broker
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
    assert board.expect_loaded_app(timeout=10) == "ota_1"
    board.expect(r"boot_check: self-test failed \(broker not reachable\)", timeout=15)
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
    assert board.expect_loaded_app(timeout=10) == "ota_0"  # v1, its rollback report waiting for the broker
    board.expect(r"ota_agent: update manifest written to ota_1; rebooting", timeout=20)
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
    mqtt.set_blackhole(False)
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=20, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    outcomes = [(e["id"], e["state"], e.get("reason"), e.get("version")) for e in link.ota_events(board.device_id)
                if e["state"] in ("rolled_back", "succeeded")]
    assert outcomes == [("unreported", "rolled_back", "selftest_failed", "2.0.0"),  # once, and first
                        ("manifest", "succeeded", None, "3.0.0")], outcomes
    assert len(fw_server.requests_for(newest)) == 1
    link.check_protocol()


def test_reset_before_confirmation_rolls_back(board_factory, ota_for, broker, link: DeviceLink, fw_server,
                                              firmware) -> None:
    """E2: v2 reset while PENDING_VERIFY (broker down, so it cannot confirm): the bootloader turns it
    into ABORTED and boots v1 from ota_0, which reports `rolled_back`/`boot_failed`.

    Needs: embedded broker."""
    board, since = _v2_booting_without_broker(board_factory, ota_for, broker, fw_server, firmware, "e2",
                                              selftest_timeout_s=30)
    with _broker_down(broker):
        assert board.expect_loaded_app(timeout=10) == "ota_1"
        board.expect(r"boot_check: new image pending verification", timeout=15)
        board.reset()
        board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=10)
        assert board.expect_loaded_app(timeout=10) == "ota_0"
    status = _last_ota_after_broker_restart(board, link, since)
    assert status["last_ota"] == {"id": "e2", "state": "rolled_back", "reason": "boot_failed", "version": "2.0.0"}
    assert (status["version"], status["partition"], status["reset_reason"]) == (firmware.base_version, "ota_0",
                                                                                 "poweron")
    link.check_protocol()


FAILURES = {  # a first update that fails -> its FaultPlan (or None: a truncated image) and outcome reason
    "not_found": (FaultPlan(status=404), "http_status"),
    "truncated": (None, "invalid_image"),  # erases and writes part of ota_1, then fails validation
    "corrupt": (FaultPlan(corrupt_offsets=(100_000,)), "invalid_image"),  # the whole slot written, bad hash
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_failed_update_then_a_valid_one(ota, fw_server, firmware, failure: str) -> None:
    """E7: a failed update (404; part of the slot written; all of it written with a bad hash) leaves v1
    running without a reboot, and the next update installs."""
    faults, reason = FAILURES[failure]
    image = firmware.image(version="2.0.0")
    bad = fw_server.add(image[:100_000] if faults is None else image, faults=faults)
    since = ota.start("e7-bad", bad.url, retries=0)
    ota.expect_outcome("e7-bad", "failed", reason, since)
    ota.assert_healthy_on_base(since)
    status = ota.install("e7-good", fw_server.add(image).url, "2.0.0")
    assert status["partition"] == "ota_1"


def test_reset_during_download_keeps_v1_and_a_retry_succeeds(ota, board, link: DeviceLink, fw_server,
                                                             firmware) -> None:
    """C4: EN-pin reset during a download (after its first progress event, the image a fifth written at
    most): v1 boots from ota_0 with no outcome recorded for the interrupted request, and a new request
    installs."""
    slow = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(throttle_bps=200_000))
    since = ota.start("c4", slow.url)
    first = link.wait_ota(board.device_id, "c4", "downloading", timeout=15, since=since)
    assert first["percent"] < 20, first
    board.reset()
    board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=10)
    assert board.expect_loaded_app(timeout=10) == "ota_0"
    status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=15)
    assert (status["version"], status["partition"], status["ota_state"]) == (firmware.base_version, "ota_0", "valid")
    assert status["last_ota"] is None, status
    states = [e["state"] for e in link.ota_events(board.device_id, "c4")]
    assert not {"verifying", "rebooting", "succeeded", "failed"} & set(states), states
    ota.install("c4-retry", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    link.check_protocol()
