"""Wi-Fi that comes and goes.

The virtual board's access point goes off the air and comes back (`board.wifi_ap`, harness/virtual/wifi_ap.py):
the firmware sees what an ESP32 sees (no event while the beacon timeout runs, then WIFI_EVENT_STA_DISCONNECTED
with BEACON_TIMEOUT, NO_AP_FOUND for each attempt while the AP is away, its TCP connections aborted) and recovers
as an ESP-IDF app does: reconnects with a growing delay, gets its IP again, and esp-mqtt reconnects on its own.
A real board's AP cannot be switched from a test (its network is cut through the fault proxy): virtual only.
"""

from __future__ import annotations

import re

import pytest

from harness import clock, commands
from harness.link import DeviceLink, LinkTimeout
from harness.virtual.wifi_ap import BEACON_TIMEOUT_S, PROBE_S, SCAN_S

pytestmark = pytest.mark.virtual_only

DISCONNECT_S = BEACON_TIMEOUT_S + PROBE_S + 3.0  # from down() to STA_DISCONNECTED, with a margin
BEACON_LOST = r"wifi_sta: disconnected from \"[^\"]*\": reason 200 BEACON_TIMEOUT, rssi -?\d+"
NO_AP = r"wifi_sta: disconnected from \"[^\"]*\": reason 201 NO_AP_FOUND"
RECONNECTING = r"wifi_sta: reconnecting in (\d+) ms \(attempt (\d+)\)"
GOT_IP = r"wifi_sta: got ip:"


def _rebooted(board, mark: int) -> bool:
    return any(line.text.startswith("rst:") for line in board.serial.lines[mark:])


def test_a_lost_access_point_is_logged_with_its_reason_and_retried_with_a_growing_delay(board) -> None:
    """The AP goes away: after the beacon timeout the firmware logs the disconnect with its reason (200
    BEACON_TIMEOUT), then reconnect attempts 1 s, 2 s, 4 s apart, each failed scan logged as 201 NO_AP_FOUND;
    the AP back, the station gets its IP again, without a reboot."""
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.wifi_ap.down()
    board.expect(BEACON_LOST, timeout=DISCONNECT_S)
    delays = []
    for attempt in (1, 2, 3):
        found = board.expect(RECONNECTING, timeout=5)
        assert int(found.group(2)) == attempt, found.string
        delays.append(int(found.group(1)))
        if attempt < 3:
            board.expect(NO_AP, timeout=delays[-1] / 1000 + SCAN_S + 3)
    assert delays == [1000, 2000, 4000], f"reconnect delays {delays} ms: a backoff doubles from 1 s"
    board.wifi_ap.up()
    board.expect(GOT_IP, timeout=delays[-1] / 1000 + 3)
    assert not _rebooted(board, mark), "the firmware rebooted instead of reconnecting"


def test_mqtt_comes_back_after_the_access_point_with_the_rssi_it_now_has(board, link: DeviceLink) -> None:
    """AP down with MQTT connected: a status request is not answered while the link is down; once the AP is
    back the broker sees the device come back online (esp-mqtt reconnects on its own, no reboot) and its status
    carries the RSSI the station hears now."""
    board.serial.skip_to_end()
    mark = board.serial.mark()
    before = link.latest_status(board.device_id)
    assert before is not None and before["rssi"] is not None
    board.wifi_ap.down()
    board.expect(BEACON_LOST, timeout=DISCONNECT_S)
    board.expect(r"mqtt_link: disconnected from the broker", timeout=5)
    asked = link.cursor()
    link.send(board.device_id, commands.status())
    board.expect(NO_AP, timeout=5)  # a first attempt failed: seconds have gone by with the command unanswered
    board.wifi_ap.set_rssi(-67)
    board.wifi_ap.up()
    board.expect(GOT_IP, timeout=8)
    got_ip_t = clock.now()
    unanswered = [
        m for m in link.messages[asked:] if m.device_id == board.device_id and m.kind == "status" and m.t < got_ip_t
    ]
    assert not unanswered, f"a status came while the AP was down: {unanswered[0].payload!r}"
    link.wait_for(
        lambda m: m.device_id == board.device_id and m.kind == "online" and m.payload == b"online",
        timeout=10,
        since=asked,
        description="the device online again after the AP came back",
    )
    back = link.cursor()
    link.send(board.device_id, commands.status())
    status = link.wait_status(board.device_id, since=back, timeout=5, description="the status after the AP returned")
    assert status["rssi"] == -67, status
    assert status["uptime_s"] >= before["uptime_s"], "uptime went back: the device rebooted"
    assert not _rebooted(board, mark), "the firmware rebooted instead of reconnecting"


def test_an_access_point_back_before_the_beacon_timeout_only_stalls_the_session(board, link: DeviceLink) -> None:
    """An AP gone for less than the beacon timeout: no disconnect at all; the broker connection stalls (a status
    request sent meanwhile is answered only once the AP is back, over the same session) and carries on."""
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.wifi_ap.down()
    asked = link.cursor()
    link.send(board.device_id, commands.status())
    with pytest.raises(LinkTimeout):
        link.wait_status(board.device_id, since=asked, timeout=2.0, description="no status while the AP is away")
    board.wifi_ap.up()
    link.wait_status(board.device_id, since=asked, timeout=5, description="the status the stalled command asked for")
    lines = [line.text for line in board.serial.lines[mark:]]
    assert not [t for t in lines if re.search(r"wifi_sta: disconnected|mqtt_link: disconnected", t)], lines
    assert not any(m.device_id == board.device_id and m.kind == "online" for m in link.messages[asked:]), (
        "the device reconnected to the broker: the session should have survived the stall"
    )
    assert not _rebooted(board, mark)
