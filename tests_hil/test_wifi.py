"""Wi-Fi that comes and goes.

The virtual board's access point goes off the air and comes back (`board.wifi_ap`, harness/virtual/wifi_ap.py):
the firmware sees what an ESP32 sees (no event while the beacon timeout runs, then WIFI_EVENT_STA_DISCONNECTED
with BEACON_TIMEOUT, NO_AP_FOUND for each attempt while the AP is away, its TCP connections aborted) and recovers
as an ESP-IDF app does: reconnects with a growing delay, gets its IP again, and esp-mqtt reconnects on its own.
A real board's AP cannot be switched from a test (its network is cut through the fault proxy): virtual only.
"""

from __future__ import annotations

import re
import threading

import pytest

from harness import clock, commands
from harness.fwserver import FaultPlan
from harness.link import DeviceLink, LinkTimeout
from harness.virtual.wifi_ap import PROBE_S, SCAN_S

pytestmark = [pytest.mark.virtual_only, pytest.mark.waits]  # beacon timeouts and reconnect backoffs

BEACON_TIMEOUT_S = 3  # `wifi_beacon_timeout_s` (esp_wifi_set_inactive_time's minimum; ESP-IDF's default is 6)
DISCONNECT_S = BEACON_TIMEOUT_S + PROBE_S + 3.0  # from down() to STA_DISCONNECTED, with a margin
BEACON_LOST = r"wifi_sta: disconnected from \"[^\"]*\": reason 200 BEACON_TIMEOUT, rssi -?\d+"
NO_AP = r"wifi_sta: disconnected from \"[^\"]*\": reason 201 NO_AP_FOUND"
RECONNECTING = r"wifi_sta: reconnecting in (\d+) ms \(attempt (\d+)\)"
GOT_IP = r"wifi_sta: got ip:"
WAITS_FOR_IP = r"ota_download: no IP address \(Wi-Fi reconnecting\); the retry waits for it"


def _rebooted(board, mark: int) -> bool:
    return any(line.text.startswith("rst:") for line in board.serial.lines[mark:])


def _slow_download(fw_server, firmware, seconds: float = 2.5):
    image = firmware.image(version="2.0.0")
    return fw_server.add(image, faults=FaultPlan(throttle_bps=int(len(image) / seconds)))


@pytest.mark.slow
def test_a_lost_access_point_is_retried_with_a_growing_delay_and_mqtt_comes_back(board_factory,
                                                                                 link: DeviceLink) -> None:
    """The AP goes away with MQTT connected: after the beacon timeout the firmware logs the disconnect with its
    reason (200 BEACON_TIMEOUT) and reconnects 1 s, then 2 s later (each failed scan 201 NO_AP_FOUND); a status
    asked for meanwhile is not answered. The AP back (now at -67 dBm), the station gets its IP again, esp-mqtt
    reconnects on its own, the device is `online` with that RSSI in its status, and it never rebooted."""
    board = board_factory(wifi_beacon_timeout_s=BEACON_TIMEOUT_S)
    before = link.latest_status(board.device_id)
    assert before is not None and before["rssi"] is not None
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.wifi_ap.down()
    board.expect(BEACON_LOST, timeout=DISCONNECT_S)
    asked = link.cursor()
    link.send(board.device_id, commands.status())
    delays = []
    for attempt in (1, 2):
        found = board.expect(RECONNECTING, timeout=5)
        assert int(found.group(2)) == attempt, found.string
        delays.append(int(found.group(1)))
        if attempt == 1:
            board.expect(NO_AP, timeout=delays[-1] / 1000 + SCAN_S + 3)
    assert delays == [1000, 2000], f"reconnect delays {delays} ms: a backoff doubles from 1 s"
    lines = [line.text for line in board.serial.lines[mark:]]
    assert any("mqtt_link: disconnected from the broker" in t for t in lines), "esp-mqtt did not see the link go"
    board.wifi_ap.set_rssi(-67)
    board.wifi_ap.up()
    board.expect(GOT_IP, timeout=delays[-1] / 1000 + SCAN_S + 3)
    got_ip_t = clock.now()
    unanswered = [m for m in link.messages[asked:]
                  if m.device_id == board.device_id and m.kind == "status" and m.t < got_ip_t]
    assert not unanswered, f"a status came while the AP was down: {unanswered[0].payload!r}"
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "online" and m.payload == b"online",
                  timeout=10, since=asked, description="the device online again after the AP came back")
    back = link.cursor()
    link.send(board.device_id, commands.status())
    # A status built before the AP went (the boot one, its PUBACK lost with the link) may come again now: QoS 1
    # is at least once, and esp-mqtt sends what its outbox holds after reconnecting. The answer is built now.
    status = link.wait_status(board.device_id, lambda s: s["uptime_s"] > before["uptime_s"], since=back, timeout=5,
                              description="the status after the AP returned")
    assert status["rssi"] == -67, status
    assert not _rebooted(board, mark), "the firmware rebooted instead of reconnecting"


def test_an_access_point_back_before_the_beacon_timeout_only_stalls_the_session(board, link: DeviceLink) -> None:
    """An AP gone for less than the beacon timeout: no disconnect at all; the broker connection stalls (a status
    request sent meanwhile is answered only once the AP is back, over the same session) and carries on."""
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.wifi_ap.down()
    board.expect(r'wifi: virtual access point ".*" off the air', timeout=5)  # the driver has seen it go
    asked = link.cursor()
    link.send(board.device_id, commands.status())
    with pytest.raises(LinkTimeout):  # the stall lasts as long as this window: 1 s, well inside the 6 s
        link.wait_status(board.device_id, since=asked, timeout=1.0, description="no status while the AP is away")
    board.wifi_ap.up()
    link.wait_status(board.device_id, since=asked, timeout=5, description="the status the stalled command asked for")
    lines = [line.text for line in board.serial.lines[mark:]]
    assert not [t for t in lines if re.search(r"wifi_sta: disconnected|mqtt_link: disconnected", t)], lines
    assert not any(m.device_id == board.device_id and m.kind == "online" for m in link.messages[asked:]), (
        "the device reconnected to the broker: the session should have survived the stall"
    )
    assert not _rebooted(board, mark)


@pytest.mark.slow
def test_wifi_lost_for_3_s_mid_download_stalls_it_and_it_installs(ota, board, fw_server, firmware) -> None:
    """Wi-Fi lost mid-download and back after 3 s, within ESP-IDF's default 6 s beacon timeout: no disconnect,
    the download's connection only stalls (as TCP over a short outage does), carries on and installs: one
    request, no Range."""
    artifact = _slow_download(fw_server, firmware)
    since = ota.start("w3", artifact.url)
    ota.link.wait_ota(board.device_id, "w3", "downloading", timeout=10, since=since, fail_on={"failed"})
    board.wifi_ap.down()
    back = threading.Timer(3.0, board.wifi_ap.up)  # the outage's length is the scenario: the AP comes back at 3 s
    back.start()
    try:
        ota.link.wait_ota(board.device_id, "w3", "succeeded", timeout=30, since=since,
                          fail_on={"failed", "rejected", "rolled_back"})
    finally:
        back.cancel()
    requests = fw_server.requests_for(artifact)
    assert [(r.status, r.range) for r in requests] == [(200, None)], requests
    assert not [line for line in board.serial.lines[ota.serial_mark:] if "wifi_sta: disconnected" in line.text]


@pytest.mark.slow
def test_wifi_lost_past_the_beacon_timeout_mid_download_resumes_with_range(board_factory, ota_for, fw_server,
                                                                           firmware) -> None:
    """Wi-Fi lost mid-download for longer than the beacon timeout: the station leaves the AP and lwIP aborts the
    download's connection; the retry waits for the IP address (within `idle_timeout_s`) instead of failing on
    "no route", then resumes with Range where the connection dropped, and v2 installs."""
    board = board_factory(wifi_beacon_timeout_s=BEACON_TIMEOUT_S)
    ota = ota_for(board)
    artifact = _slow_download(fw_server, firmware)
    since = ota.start("wr", artifact.url, idle_timeout_s=20)
    ota.link.wait_ota(board.device_id, "wr", "downloading", timeout=10, since=since, fail_on={"failed"})
    board.wifi_ap.down()
    board.expect(BEACON_LOST, timeout=DISCONNECT_S)
    board.expect(WAITS_FOR_IP, timeout=5)
    board.wifi_ap.up()
    ota.link.wait_ota(board.device_id, "wr", "succeeded", timeout=30, since=since,
                      fail_on={"failed", "rejected", "rolled_back"})
    first, resumed = fw_server.requests_for(artifact)
    assert first.status == 200, first
    # the server may have written more into the socket than reached the device before the link went
    resumed_at = int((resumed.range or "bytes=-1-").removeprefix("bytes=").split("-")[0])
    assert resumed.status == 206 and 0 < resumed_at < artifact.size, resumed


@pytest.mark.slow
def test_wifi_lost_longer_than_the_idle_deadline_fails_the_update_and_v1_answers_once_back(board_factory, ota_for,
                                                                                          link: DeviceLink,
                                                                                          fw_server,
                                                                                          firmware) -> None:
    """Wi-Fi lost mid-download for longer than `idle_timeout_s` (3 s): the update ends `failed`/`idle_timeout`
    while the device is off the network; once the AP is back, v1 (ota_0) is running, answers, and its status
    and the event it kept for the broker report the failure."""
    board = board_factory(wifi_beacon_timeout_s=BEACON_TIMEOUT_S)
    ota = ota_for(board)
    artifact = _slow_download(fw_server, firmware)
    since = ota.start("wi", artifact.url, idle_timeout_s=3)
    link.wait_ota(board.device_id, "wi", "downloading", timeout=10, since=since, fail_on={"failed"})
    board.wifi_ap.down()
    board.expect(r"app_cb: on_failed reason=idle_timeout", timeout=15)
    board.wifi_ap.up()
    event = link.wait_ota(board.device_id, "wi", "failed", timeout=15, since=since)
    assert event["reason"] == "idle_timeout", event
    status = link.wait_status(board.device_id, lambda s: (s.get("last_ota") or {}).get("id") == "wi",
                              since=since, timeout=10)
    assert status["last_ota"]["reason"] == "idle_timeout", status
    ota.assert_healthy_on_base(since)
