"""The release gate of the ACME sensor: the next version installs, and a broken one rolls back."""

from conftest import NEXT_VERSION


def test_release_installs_and_confirms(ota, board, fw_server, release_image):
    """The release boots from the other slot, confirms itself and reports the new version."""
    artifact = fw_server.add(release_image)
    status = ota.install("rel-1", artifact.url, NEXT_VERSION)
    assert board.expect_loaded_app(timeout=10) == "ota_1"  # the slot of our own partition table
    assert (status["partition"], status["ota_state"]) == ("ota_1", "valid")
    ota.link.check_protocol()


def test_release_with_failing_selftest_rolls_back(ota, fw_server, firmware):
    """A release whose self-test fails is rolled back: the device is back on the base version, healthy."""
    artifact = fw_server.add(firmware.image("broken_selftest", version=NEXT_VERSION))
    since = ota.start("rel-2", artifact.url)
    event = ota.link.wait_ota(ota.board.device_id, "rel-2", "rolled_back", timeout=40, since=since,
                              fail_on={"succeeded"})
    assert event["reason"] == "selftest_failed"
    status = ota.link.wait_status(ota.board.device_id, lambda s: s["last_ota"] is not None, since=since, timeout=10)
    assert (status["version"], status["partition"]) == (firmware.base_version, "ota_0")
    ota.link.check_protocol()
