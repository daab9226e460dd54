"""The release gate of the ACME sensor: the next version installs, and a broken one rolls back."""

from conftest import NEXT_VERSION
from harness.log_patterns import LOADED_APP


def test_release_installs_and_confirms(board, link, fw_server, firmware, release_image):
    artifact = fw_server.add(release_image)
    since = link.cursor()
    board.serial.skip_to_end()
    link.send(board.device_id, {"type": "ota", "id": "rel-1", "url": artifact.url})

    link.wait_ota(board.device_id, "rel-1", "succeeded", timeout=40, since=since, fail_on={"failed", "rolled_back"})
    assert board.expect(LOADED_APP, timeout=10).group(1) == "0x200000"  # our table's ota_1
    status = link.wait_status(board.device_id, lambda s: s["version"] == NEXT_VERSION, since=since, timeout=10)
    assert (status["partition"], status["ota_state"]) == ("ota_1", "valid")
    link.check_protocol()


def test_release_with_failing_selftest_rolls_back(board, link, fw_server, firmware):
    artifact = fw_server.add(firmware.image("broken_selftest", version=NEXT_VERSION))
    since = link.cursor()
    link.send(board.device_id, {"type": "ota", "id": "rel-2", "url": artifact.url})

    event = link.wait_ota(board.device_id, "rel-2", "rolled_back", timeout=40, since=since, fail_on={"succeeded"})
    assert event["reason"] == "selftest_failed"
    status = link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=since, timeout=10)
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")
    link.check_protocol()
