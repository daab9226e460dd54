"""Manifest mode: the device fetches {version, url, sha256} and updates only to a newer version."""

import json

from harness.link import DeviceLink


def _manifest(fw_server, version: str, artifact) -> str:
    body = json.dumps({"version": version, "url": artifact.url, "sha256": artifact.sha256}).encode()
    return fw_server.add(body, name="manifest.json").url


def test_newer_manifest_version_installs_after_the_start_up_delay(board_factory, link: DeviceLink, fw_server,
                                                                  firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    board = board_factory(manifest_url=_manifest(fw_server, "2.0.0", artifact), manifest_delay_s=0)
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=40, since=since, fail_on={"failed"})
    link.wait_status(board.device_id, lambda s: s["version"] == "2.0.0", since=since, timeout=10)
    # v2 checks the same manifest at its own start-up and, being that version, does not update again.
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ota" and m.data.get("state") == "rejected"
                  and m.data.get("reason") == "same_version", timeout=15, since=since,
                  description="v2 refusing the manifest it already runs")
    assert len(fw_server.requests_for(artifact)) == 1, "the image was downloaded more than once"


def test_check_with_the_running_version_does_not_download(board_factory, link: DeviceLink, fw_server,
                                                          firmware) -> None:
    artifact = fw_server.add(firmware.image())
    board = board_factory(manifest_url=_manifest(fw_server, firmware.base_version, artifact), manifest_delay_s=3600)
    since = link.cursor()
    link.send(board.device_id, {"type": "check"})
    event = link.wait_ota(board.device_id, "manifest", "rejected", timeout=15, since=since)
    assert event["reason"] == "same_version"
    assert fw_server.requests_for(artifact) == []


def test_check_without_a_manifest_url_is_refused(board, link: DeviceLink) -> None:
    since = link.cursor()
    link.send(board.device_id, {"type": "check"})
    assert link.wait_ota(board.device_id, "manifest", "rejected", timeout=10, since=since)["reason"] == "bad_command"
