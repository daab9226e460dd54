"""The ACME sensor's own job, BLE scanning, and what updates must not break in it.

The virtual board's BLE air (`board.ble_air`) holds the devices that advertise around the board; the
sensor scans in rounds and publishes each device it has not reported since boot on `<prefix>/<id>/ble`.
"""

from conftest import NEXT_VERSION
from harness.link import DeviceLink

TAG_1, TAG_2, TAG_3 = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:03"


def wait_published(link: DeviceLink, board, mac: str, since: int, timeout: float = 15) -> dict:
    """The sensor's message about mac, published after the cursor since."""
    message = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ble" and
                            isinstance(m.data, dict) and m.data.get("mac") == mac,
                            timeout=timeout, since=since, description=f"{mac} published on /ble")
    return message.data


def published_macs(link: DeviceLink, board, since: int) -> list[str]:
    return [m.data["mac"] for m in link.messages[since:] if m.device_id == board.device_id and m.kind == "ble"]


def test_each_new_device_is_published_once(board, ota, link: DeviceLink, fw_server) -> None:
    """Two devices are published with their RSSI and name; a new scanning round (the scan pauses for an
    update that fails, then resumes) finds them again and publishes only the third, new one."""
    since = link.cursor()
    board.ble_air.advertise(TAG_1, rssi=-55, name="tag-1")
    board.ble_air.advertise(TAG_2, rssi=-71, name="tag-2")
    assert wait_published(link, board, TAG_1, since) == {"mac": TAG_1, "rssi": -55, "name": "tag-1"}
    assert wait_published(link, board, TAG_2, since) == {"mac": TAG_2, "rssi": -71, "name": "tag-2"}

    started = ota.start("no-image", f"{fw_server.base_url}/no/such/image.bin")
    ota.expect_outcome("no-image", "failed", "http_status", started)
    board.expect(r"ble_scan: resuming", timeout=10)
    board.expect(r"ble_scan: scanning for", timeout=10)
    board.ble_air.advertise(TAG_3, rssi=-60, name="tag-3")
    wait_published(link, board, TAG_3, since)
    # the new round has heard the first two again and filtered them: nothing more can come of them
    seen = {m.group(1) for m in (board.expect(r"ble_scan: device (\S+) reported before; filtered", timeout=10)
                                 for _ in range(2))}
    assert seen == {TAG_1, TAG_2}
    assert published_macs(link, board, since) == [TAG_1, TAG_2, TAG_3]


def test_scan_results_keep_flowing_after_an_update(board, ota, link: DeviceLink, fw_server,
                                                   release_image) -> None:
    """After an update to the next version, the new firmware scans: a device that appears afterwards is
    published, and so is one from before (the new firmware has not reported it yet)."""
    since = link.cursor()
    board.ble_air.advertise(TAG_1, name="before")
    wait_published(link, board, TAG_1, since)

    updating = link.cursor()  # the old firmware has published TAG_1 and will not again
    status = ota.install("rel-ble", fw_server.add(release_image).url, NEXT_VERSION)
    assert status["version"] == NEXT_VERSION
    after = link.cursor()
    board.ble_air.advertise(TAG_2, name="after")
    wait_published(link, board, TAG_2, after)
    wait_published(link, board, TAG_1, updating)  # the new firmware's, perhaps before its status came


def test_an_update_during_a_scan_completes_and_the_scan_resumes(board, ota, link: DeviceLink, fw_server,
                                                                release_image) -> None:
    """An update sent while a scanning round runs: the scan stops before the download starts (the app's
    on_suspend_tasks), the update installs, and the new firmware scans and publishes again."""
    board.expect(r"ble_scan: scanning for", timeout=15)
    since = ota.start("mid-scan", fw_server.add(release_image).url)
    board.expect(r"ble_scan: paused", timeout=10)
    board.expect(r"ota_download: downloading", timeout=10)  # after the pause: the console is read forward
    link.wait_ota(board.device_id, "mid-scan", "succeeded", timeout=40, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    board.expect(r"ble_scan: scanning for", timeout=15)
    after = link.cursor()
    board.ble_air.advertise(TAG_3, name="new")
    wait_published(link, board, TAG_3, after)
