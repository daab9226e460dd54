"""The Wi-Fi access point of a virtual board: a test takes it off the air, brings it back and sets its RSSI.

The AP belongs to the board, not to the firmware: it outlives the app's reboots, as the access point in the room
with a real board does. The board hands its file to the app in HIL_WIFI_AP; the host port's Wi-Fi driver
(device/port/linux/src/host_wifi_ap.c, esp_wifi.c) reads it from the start at every boot and follows it with
inotify, and posts what a chip posts: nothing at first when the AP goes (frames are lost, TCP stalls), then after
the beacon timeout (6 s) WIFI_EVENT_STA_DISCONNECTED with WIFI_REASON_BEACON_TIMEOUT, connections aborted, and
WIFI_REASON_NO_AP_FOUND for each esp_wifi_connect() until the AP is back. The record format is in
device/port/linux/src/host_board.h, one line per record, appended with one write:

    <CLOCK_MONOTONIC ns> up
    <CLOCK_MONOTONIC ns> down
    <CLOCK_MONOTONIC ns> rssi <dBm>

An empty file is an AP on the air at -42 dBm (DEFAULT_RSSI). The host port sees a change at once through
inotify; when the user's inotify instances are used up (fs.inotify.max_user_instances, 128 by default: a
fleet of over a hundred boards), it reads the file every 200 ms instead and says so on the console. The
driver prints when it has seen the AP go (`wifi: virtual access point "<ssid>" off the air`) and come back
before the beacon timeout (`... on the air again`): a test that needs the stall to have begun waits for that.

    board.wifi_ap.down()
    board.expect(r"wifi_sta: disconnected .*reason 200 BEACON_TIMEOUT", timeout=15)
    board.wifi_ap.set_rssi(-70)
    board.wifi_ap.up()

Only virtual boards have one: on a real ESP32 `board.wifi_ap` raises `NoWifiApError` (an AttributeError, so
``hasattr(board, "wifi_ap")`` is False); a real board loses its network through the fault proxy instead. Mark a
test that uses it ``@pytest.mark.virtual_only``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from harness.virtual.host_abi import append_record

DEFAULT_RSSI = -42  # HOST_WIFI_AP_DEFAULT_RSSI: what the station hears from an AP nobody touched
RSSI_RANGE = range(-128, 1)  # dBm, as wifi_ap_record_t's int8_t rssi carries it from a real radio
BEACON_TIMEOUT_S = 6.0  # esp_wifi_set_inactive_time()'s default: how long the station takes to notice
PROBE_S = 1.0  # the 5 probe requests after the beacon timeout, before STA_DISCONNECTED
SCAN_S = 13 * 0.120  # an all-channel scan that finds nothing, before STA_DISCONNECTED (NO_AP_FOUND)


class NoWifiApError(AttributeError):
    """The board has no access point a test can switch: a real ESP32 joins a real one."""


@dataclass(frozen=True)
class ApState:
    """The access point as the board last set it."""

    on_air: bool
    rssi: int


class WifiAp:
    """The access point of one virtual board, written to the file its firmware follows (HIL_WIFI_AP)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._state = ApState(on_air=True, rssi=DEFAULT_RSSI)
        self.path.write_bytes(b"")  # a new board starts next to an AP on the air

    def down(self) -> None:
        """The AP goes off the air now: no beacons, no frames either way (nothing happens if it was off)."""
        with self._lock:
            self._state = ApState(False, self._state.rssi)
            self._append("down")

    def up(self) -> None:
        """The AP is on the air again now (nothing happens if it was on)."""
        with self._lock:
            self._state = ApState(True, self._state.rssi)
            self._append("up")

    def set_rssi(self, rssi: int) -> None:
        """The station hears the AP at rssi dBm from now on (what esp_wifi_sta_get_ap_info() reports)."""
        if rssi not in RSSI_RANGE:
            raise ValueError(f"rssi {rssi} dBm: out of {RSSI_RANGE.start}..{RSSI_RANGE.stop - 1}")
        with self._lock:
            self._state = ApState(self._state.on_air, rssi)
            self._append(f"rssi {rssi}")

    @property
    def state(self) -> ApState:
        with self._lock:
            return self._state

    def _append(self, record: str) -> None:
        append_record(self.path, record)
