"""Manifest mode.

The device fetches {version, url, sha256} and updates only to a newer version.

Updates started from a manifest report under the request id "manifest". A board made with
manifest_delay_s=0 checks at start-up; with 3600 it checks only when sent {"type": "check"}.
"""

import json
import re

import pytest

from harness import commands
from harness.broker import ExternalBroker
from harness.fwserver import Artifact, FaultPlan
from harness.link import DeviceLink

NO_AUTO_CHECK = 3600  # manifest_delay_s: far beyond any test, so only a check command starts one


def _manifest(fw_server, version: str, artifact: Artifact, **fields: object) -> Artifact:
    body = {"version": version, "url": artifact.url, "sha256": artifact.sha256, **fields}
    return fw_server.add(json.dumps(body).encode(), name="manifest.json")


def test_newer_manifest_version_installs_after_the_start_up_delay(board_factory, link: DeviceLink, fw_server,
                                                                  firmware) -> None:
    """The start-up check finds 2.0.0 and installs it; 2.0.0's own start-up check then finds nothing
    newer and downloads nothing."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    manifest = _manifest(fw_server, "2.0.0", artifact)
    since = link.cursor()
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=0)
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=40, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    status = link.wait_status(board.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                              since=since, timeout=10)
    assert status["partition"] == "ota_1"
    # v2 checks the same manifest at its own start-up, once it has confirmed itself (so after its
    # succeeded event), and, being that version, does not update again.
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ota" and m.data.get("state") == "rejected"
                  and m.data.get("reason") == "same_version", timeout=15, since=since,
                  description="v2 refusing the manifest it already runs")
    assert len(fw_server.requests_for(artifact)) == 1, "the image was downloaded more than once"
    link.check_protocol()


def test_an_update_switched_before_the_broker_answers_is_not_taken_for_an_earlier_one(
        board_factory, link: DeviceLink, fw_server, firmware, fault_proxy, broker) -> None:
    """The start-up check installs 2.0.0 while the broker is slow to answer (250 ms each way): the update saves
    its record and switches before the device's first status goes out. That record belongs to this update,
    not to one from before the boot: no `failed` for it, and 2.0.0 confirms it as "manifest"."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    manifest = _manifest(fw_server, "2.0.0", artifact)
    mqtt = fault_proxy(broker.url, name="board-mqtt")
    mqtt.set_latency(250)
    since = link.cursor()
    board = board_factory(broker_url=mqtt.url_for(broker.url), manifest_url=manifest.url, manifest_delay_s=0)
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=40, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    link.check_protocol()


def test_check_command_installs_a_newer_version(board_factory, link: DeviceLink, fw_server, firmware) -> None:
    """`{"type": "check"}` fetches the manifest now and installs it under id `manifest`."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    board = board_factory(manifest_url=_manifest(fw_server, "2.0.0", artifact).url, manifest_delay_s=NO_AUTO_CHECK)
    assert fw_server.requests_for(artifact) == []
    since = link.cursor()
    link.send(board.device_id, {"type": "check"})
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=40, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    status = link.wait_status(board.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                              since=since, timeout=10)
    assert status["partition"] == "ota_1"


@pytest.mark.parametrize(("offered", "reason"), [("same", "same_version"), ("0.9.0", "downgrade")])
def test_check_without_a_newer_version_downloads_nothing(board_factory, ota_for, link: DeviceLink, fw_server,
                                                         firmware, offered: str, reason: str) -> None:
    """A3/A4: the manifest names the running or an older version: `rejected` with the reason
    (`same_version`, `downgrade`), the image is never requested, and the device stays on 1.0.0."""
    version = firmware.base_version if offered == "same" else offered
    artifact = fw_server.add(firmware.image(version=version))
    manifest = _manifest(fw_server, version, artifact)
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=NO_AUTO_CHECK)
    ota = ota_for(board)
    since = ota.send(commands.check())
    assert link.wait_ota(board.device_id, "manifest", "rejected", timeout=15, since=since)["reason"] == reason
    ota.assert_healthy_on_base(since)
    assert len(fw_server.requests_for(manifest)) == 1
    assert fw_server.requests_for(artifact) == [], "the image was downloaded"


@pytest.mark.slow
def test_unconfirmed_firmware_checks_the_manifest_only_after_its_self_test(
        board_factory, ota_for, broker, link: DeviceLink, fw_server, firmware) -> None:
    """A PENDING_VERIFY app does not start the manifest's update; once confirmed it installs it.

    The manifest moved on to 3.0.0 while the device was updated to 2.0.0 by command. 2.0.0 boots
    unconfirmed (the broker is down, so its self-test waits) and must not start the manifest's update
    then: esp_ota_begin refuses while the running app is PENDING_VERIFY, and the failed attempt would
    not be retried. Once confirmed, it checks and installs 3.0.0.

    Needs: embedded broker."""
    if isinstance(broker, ExternalBroker):
        pytest.skip("needs to stop the broker while 2.0.0 boots; an external broker (--hil-broker) cannot be stopped")
    v3 = fw_server.add(firmware.image(version="3.0.0"))
    body = json.dumps({"version": "3.0.0", "url": v3.url, "sha256": v3.sha256}).encode()
    manifest = fw_server.add(body, name="manifest.json", faults=FaultPlan(status=404, status_first_requests=1))
    since = link.cursor()
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=0, selftest_timeout_s=60)
    assert link.wait_ota(board.device_id, "manifest", "failed", timeout=15, since=since)["reason"] == "http_status"
    image = firmware.image(version="2.0.0")  # ~0.5 s to download: time to stop the broker before 2.0.0 boots
    v2 = fw_server.add(image, faults=FaultPlan(throttle_bps=2 * len(image)))
    since = ota_for(board).start("up", v2.url)
    link.wait_ota(board.device_id, "up", "downloading", timeout=10, since=since, fail_on={"failed", "rejected"})
    broker.stop()
    try:
        board.expect(r"app_init: App version:\s+2\.0\.0", timeout=20)
        # the self-test (app_main) and the manifest task start together: their first lines come in either order
        pending = r"boot_check: new image pending verification"
        manifest = r"manifest: (checking|waiting for the self-test)"
        first = board.expect(f"{pending}|{manifest}", timeout=10)
        board.expect(manifest if re.search(pending, first.string) else pending, timeout=10)
    finally:
        broker.start()
    link.wait_connection(timeout=10)
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=30, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    status = link.wait_status(board.device_id, lambda s: s["version"] == "3.0.0" and s["ota_state"] == "valid",
                              since=since, timeout=10)
    assert status["partition"] == "ota_0"


def test_manifest_sha256_is_enforced(board_factory, ota_for, link: DeviceLink, fw_server, firmware) -> None:
    """A manifest whose `sha256` does not match the image is not installed: `failed`/`sha256_mismatch`,
    v1 still up."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    wrong = _manifest(fw_server, "2.0.0", artifact, sha256=fw_server.add(b"other").sha256)
    board = board_factory(manifest_url=wrong.url, manifest_delay_s=NO_AUTO_CHECK)
    ota = ota_for(board)
    since = ota.send(commands.check())
    ota.expect_outcome("manifest", "failed", "sha256_mismatch", since)
    ota.assert_healthy_on_base(since)


MALFORMED_MANIFESTS = {
    "not_json": b"<html>not found</html>",
    "no_version": json.dumps({"url": "http://127.0.0.1/fw.bin"}).encode(),
    "no_url": json.dumps({"version": "2.0.0"}).encode(),
    "bad_sha256": json.dumps({"version": "2.0.0", "url": "http://127.0.0.1/fw.bin", "sha256": "xyz"}).encode(),
    "deep_nesting": b"[" * 500 + b"]" * 500,
}


@pytest.mark.parametrize("name", sorted(MALFORMED_MANIFESTS))
def test_malformed_manifest_is_refused(board_factory, ota_for, link: DeviceLink, fw_server, name: str) -> None:
    """B11: bad manifests (not JSON, no version, no url, a bad sha256, nested too deep) are
    `rejected`/`bad_command` under id `manifest`; nothing is downloaded, v1 still up."""
    manifest = fw_server.add(MALFORMED_MANIFESTS[name], name="manifest.json")
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=NO_AUTO_CHECK)
    ota = ota_for(board)
    since = ota.send(commands.check())
    ota.expect_outcome("manifest", "rejected", "bad_command", since)
    ota.assert_healthy_on_base(since)


def test_manifest_not_found_is_reported(board_factory, ota_for, link: DeviceLink, fw_server) -> None:
    """A 404 for the manifest is `failed`/`http_status` 404; v1 still up."""
    board = board_factory(manifest_url=f"{fw_server.base_url}/no/such/manifest.json", manifest_delay_s=NO_AUTO_CHECK)
    ota = ota_for(board)
    since = ota.send(commands.check())
    assert ota.expect_outcome("manifest", "failed", "http_status", since)["http_status"] == 404
    ota.assert_healthy_on_base(since)


def test_check_without_a_manifest_url_is_refused(board, link: DeviceLink) -> None:
    """A `check` without a `manifest_url` provisioned is `rejected`/`bad_command`."""
    since = link.cursor()
    link.send(board.device_id, {"type": "check"})
    assert link.wait_ota(board.device_id, "manifest", "rejected", timeout=10, since=since)["reason"] == "bad_command"
