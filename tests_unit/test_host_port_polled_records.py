"""The host port without inotify: the AP's and the BLE air's files read every HOST_RECORD_POLL_MS instead.

A fleet of over a hundred virtual boards uses up the user's inotify instances (128 by default), and then
host_record_file.c says so on the console and the Wi-Fi driver and the BLE radio read their file every 200 ms.
Here port_check (device/port/linux/test/) runs in a user namespace of its own whose inotify limit is 0, so its
inotify_init1() fails with EMFILE as it would on such a machine, while every other process keeps its limit
(/proc/sys/user/max_inotify_instances is the namespace's own; the machine's fs.inotify.* is never touched).
Each test is a change the file must still carry: the AP going and coming back, a device starting to advertise.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.virtual import host_abi as abi
from harness.virtual.ble_air import BleAir
from harness.virtual.wifi_ap import WifiAp
from tests_unit.port_check_app import PortCheck, values

POLL_S = 0.2  # HOST_RECORD_POLL_MS in device/port/linux/src/host_record_file.h
HEARD_S = 2.0  # a change is heard within a few polls, even on a busy 2-core machine
DEVICE = "c0:ff:ee:00:00:0d"
# Sets the new namespace's inotify limit to 0, then runs the command that follows (port_check).
NO_INOTIFY_SCRIPT = 'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"'


@pytest.fixture(scope="module")
def no_inotify() -> list[str]:
    """The prefix that runs a command with no inotify instance to get; skips where user namespaces are off."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    prefix = [unshare, "--user", "--map-root-user", "/bin/sh", "-c", NO_INOTIFY_SCRIPT, "no-inotify"]
    probe = subprocess.run([*prefix, "/bin/true"], check=False, capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user namespace without inotify here: {probe.stderr.strip()}")
    return prefix


def assert_polled(pc: PortCheck, tag: str, path: Path) -> None:
    """The console says that the file is read every HOST_RECORD_POLL_MS, and why."""
    line = pc.expect(rf"W \(\d+\) {tag}: no inotify instance left \((.+)\): reading (\S+) every (\d+) ms instead")
    assert (line[2], int(line[3])) == (str(path), POLL_S * 1000), line.string
    assert line[1] == "Too many open files"  # EMFILE, as when the user's instances are used up


@pytest.fixture
def wifi(port_check_exe: Path, tmp_path: Path, no_inotify: list[str]) -> Iterator[tuple[PortCheck, WifiAp]]:
    ap = WifiAp(tmp_path / "wifi-ap.txt")
    pc = PortCheck(port_check_exe, tmp_path, env={abi.ENV_WIFI_AP: str(ap.path)}, prefix=no_inotify)
    try:
        assert pc.run("wifi_start hil-ap")["wifi_start"] == "ESP_OK"
        assert pc.run("wifi_connect")["wifi_connect"] == "ESP_OK"
        pc.expect(r"^ip_event=GOT_IP ")
        yield pc, ap
    finally:
        pc.close()


def test_without_inotify_the_station_still_sees_its_ap_go_and_come_back(wifi: tuple[PortCheck, WifiAp]) -> None:
    pc, ap = wifi
    assert_polled(pc, "wifi_ap", ap.path)
    ap.down()
    assert pc.run(f"wifi_gate stalled {int(HEARD_S * 1000)}")["wifi_gate"] == "stalled"
    ap.up()
    assert pc.run(f"wifi_gate up {int(HEARD_S * 1000)}")["wifi_gate"] == "up"
    assert not [line for line in pc.lines if line.startswith("wifi_event=STA_DISCONNECTED")], "a short loss only"


def test_without_inotify_a_scan_hears_a_device_that_starts_advertising(
    port_check_exe: Path, tmp_path: Path, no_inotify: list[str]
) -> None:
    air = BleAir(tmp_path / "ble-air.txt")
    pc = PortCheck(port_check_exe, tmp_path, env={abi.ENV_BLE_AIR: str(air.path)}, prefix=no_inotify)
    try:
        assert pc.run("bt_controller")["controller_enable"] == "ESP_OK"
        assert pc.run("bt_bluedroid")["register_callback"] == "ESP_OK"
        assert_polled(pc, "ble_air", air.path)
        since = pc.send("ble_scan 0 1")  # scan until stopped; nothing advertises yet, so nothing wakes the radio
        pc.expect(r"^ble_event=SCAN_START_COMPLETE status=0$", since=since)
        air.advertise(DEVICE, rssi=-60, name="late", interval_ms=50)
        result = values([pc.expect(rf"^ble_event=SCAN_RESULT search_evt=INQ_RES bda={DEVICE} ", since=since,
                                   timeout=HEARD_S).string])
        assert (result["rssi"], result["name"]) == ("-60", "late")
    finally:
        pc.close()
