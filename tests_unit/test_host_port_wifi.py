"""The host port's Wi-Fi station and network gate, at the C level, next to an access point a test switches.

device/port/linux/test/wifi_check.c (commands of port_check) brings the station up as an app does and prints
every WIFI_EVENT and IP_EVENT its handler gets (it never reconnects by itself: the test says when), and uses
plain BSD sockets, which cross the port's network gate (src/host_net_gate.c) as libcurl's and libmosquitto's
do. A `WifiAp` (harness/virtual/wifi_ap.py) is the access point, handed over in HIL_WIFI_AP as the board hands
it. Each test is one behaviour the file headers of esp_wifi.c and host_net_gate.c claim: the events and their
timing, connections that stall and then deliver, connections aborted and connects refused once the station has
noticed, an AP found during a scan. The beacon timeout is set to its 3 s minimum to keep the tests short.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards.base import Board
from harness.virtual import host_abi as abi
from harness.virtual.board import VirtualBoard
from harness.virtual.wifi_ap import DEFAULT_RSSI, PROBE_S, SCAN_S, NoWifiApError, WifiAp
from tests_unit.port_check_app import PortCheck, port_check_board, values

INACTIVE_S = 3  # esp_wifi_set_inactive_time()'s minimum for a station
IP_LOST_S = 4  # CONFIG_ESP_NETIF_IP_LOST_TIMER_INTERVAL in port_check's test/sdkconfig.defaults
QUIET_S = 0.3  # how long a peer waits to show that nothing crosses a dead link
SSID = "hil-ap"


@pytest.fixture
def ap(tmp_path: Path) -> WifiAp:
    return WifiAp(tmp_path / "wifi-ap.txt")


@pytest.fixture
def server() -> Iterator[socket.socket]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(QUIET_S)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def wifi(port_check_exe: Path, tmp_path: Path, ap: WifiAp) -> Iterator[PortCheck]:
    """port_check with its station associated (GOT_IP seen) and a 3 s beacon timeout."""
    pc = PortCheck(port_check_exe, tmp_path, env={abi.ENV_WIFI_AP: str(ap.path)})
    try:
        assert pc.run(f"wifi_start {SSID}")["wifi_start"] == "ESP_OK"
        assert pc.run("wifi_connect")["wifi_connect"] == "ESP_OK"
        pc.expect(r"^ip_event=GOT_IP ")
        assert pc.run(f"wifi_inactive {INACTIVE_S}")["wifi_inactive"] == "ESP_OK"
        yield pc
    finally:
        pc.close()


def event(pc: PortCheck, pattern: str, since: int = 0, timeout: float = 10.0) -> dict[str, str]:
    return values([pc.expect(pattern, since=since, timeout=timeout).string])


def connect(pc: PortCheck, srv: socket.socket) -> tuple[str, socket.socket]:
    """A TCP connection from port_check to srv: (port_check's fd, the server's socket)."""
    result = pc.run(f"tcp_connect 127.0.0.1 {srv.getsockname()[1]} 1000")
    assert result["tcp_connect"] == "connected", result
    peer, _ = srv.accept()
    peer.settimeout(QUIET_S)
    return result["fd"], peer


def assert_nothing_arrives(peer: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        data = peer.recv(64)
        pytest.fail(f"{data!r} crossed the link while the AP was away")


def lose_ap(pc: PortCheck, ap: WifiAp) -> int:
    """Takes the AP off the air and waits for the station's disconnect; returns the line index after it."""
    start = len(pc.lines)
    ap.down()
    event(pc, r"^wifi_event=STA_DISCONNECTED reason=200 ", since=start, timeout=INACTIVE_S + PROBE_S + 3)
    return pc.last_index


# --- the station's events ---------------------------------------------------------------------------------------


def test_a_connect_with_the_ap_on_the_air_posts_connected_then_got_ip(wifi: PortCheck) -> None:
    kinds = [line.split()[0] for line in wifi.lines if line.startswith(("wifi_event=", "ip_event="))]
    assert kinds == ["wifi_event=STA_START", "wifi_event=STA_CONNECTED", "ip_event=GOT_IP"]
    connected = event(wifi, r"^wifi_event=STA_CONNECTED ")
    assert (connected["ssid"], connected["channel"]) == (SSID, "6")
    assert event(wifi, r"^ip_event=GOT_IP ")["ip_changed"] == "1"  # the first address is a change
    assert wifi.run("wifi_ap_info") == {"ap_info": "ESP_OK", "rssi": str(DEFAULT_RSSI), "ssid": SSID, "channel": "6"}
    assert wifi.run("wifi_inactive 2")["wifi_inactive"] == "ESP_ERR_INVALID_ARG"  # a station's minimum is 3 s


def test_a_lost_ap_is_noticed_after_the_beacon_timeout_and_the_probes(wifi: PortCheck, ap: WifiAp) -> None:
    start = len(wifi.lines)
    ap.down()
    assert wifi.run("wifi_gate stalled 2000")["wifi_gate"] == "stalled"  # frames are lost at once ...
    assert wifi.run("wifi_ap_info")["ap_info"] == "ESP_OK"  # ... but the station does not know yet
    beacon = event(wifi, r"^wifi_event=STA_BEACON_TIMEOUT ", since=start, timeout=INACTIVE_S + 3)
    gone = event(wifi, r"^wifi_event=STA_DISCONNECTED ", since=start, timeout=PROBE_S + 3)
    assert (gone["reason"], gone["rssi"], gone["ssid"], gone["bssid_set"]) == ("200", str(DEFAULT_RSSI), SSID, "1")
    assert abs(int(gone["t_ms"]) - int(beacon["t_ms"]) - PROBE_S * 1000) < 200, (beacon, gone)
    assert wifi.run("wifi_ap_info")["ap_info"] == "ESP_ERR_WIFI_NOT_CONNECT"
    assert wifi.run("wifi_gate down 0")["wifi_gate"] == "down"


def test_a_connect_while_the_ap_is_away_scans_and_reports_no_ap_found(wifi: PortCheck, ap: WifiAp) -> None:
    after = lose_ap(wifi, ap)
    assert wifi.run("wifi_connect")["wifi_connect"] == "ESP_OK"
    asked = int(wifi.lines[after - 1].split("t_ms=")[1])  # the disconnect's time: the connect came just after
    none = event(wifi, r"^wifi_event=STA_DISCONNECTED reason=201 ", since=after, timeout=SCAN_S + 3)
    assert (none["bssid_set"], none["rssi"]) == ("0", "0")
    assert SCAN_S * 1000 - 100 <= int(none["t_ms"]) - asked <= SCAN_S * 1000 + 500, none


def test_an_ap_back_during_a_scan_is_joined_at_once_with_the_rssi_it_now_has(wifi: PortCheck, ap: WifiAp) -> None:
    after = lose_ap(wifi, ap)
    lost = event(wifi, r"^ip_event=LOST_IP ", since=after, timeout=IP_LOST_S + 2)  # the IP-lost timer fired
    start = len(wifi.lines)
    assert wifi.run("wifi_connect")["wifi_connect"] == "ESP_OK"  # the scan has begun
    ap.set_rssi(-71)
    ap.up()
    got = event(wifi, r"^ip_event=GOT_IP ", since=start, timeout=SCAN_S)  # found before the scan would end
    assert got["ip_changed"] == "1", "after LOST_IP the address is new again"
    assert int(got["t_ms"]) >= int(lost["t_ms"])
    assert wifi.run("wifi_ap_info")["rssi"] == "-71"


def test_an_ap_back_within_the_ip_lost_timer_gives_the_same_address_back(wifi: PortCheck, ap: WifiAp) -> None:
    after = lose_ap(wifi, ap)
    ap.up()
    assert wifi.run("wifi_connect")["wifi_connect"] == "ESP_OK"
    assert event(wifi, r"^ip_event=GOT_IP ", since=after)["ip_changed"] == "0"
    assert not [line for line in wifi.lines[after:] if line.startswith("ip_event=LOST_IP")]


# --- sockets through the gate -----------------------------------------------------------------------------------


def test_a_vanished_ap_stalls_a_connection_and_delivers_both_ways_when_it_returns(
    wifi: PortCheck, ap: WifiAp, server: socket.socket
) -> None:
    fd, peer = connect(wifi, server)
    start = len(wifi.lines)
    ap.down()
    assert wifi.run("wifi_gate stalled 2000")["wifi_gate"] == "stalled"
    assert wifi.run(f"tcp_send {fd} held")["tcp_send"] == "4"  # into the send buffer, as lwIP takes it
    assert_nothing_arrives(peer)
    peer.sendall(b"x")
    assert wifi.run(f"tcp_recv {fd} 300")["tcp_recv"] == "timeout"  # in the kernel, but not across the air
    assert wifi.run(f"tcp_recv_now {fd}")["tcp_recv_now"] == "EAGAIN"  # recv() without poll() sees nothing either
    ap.up()
    assert wifi.run("wifi_gate up 2000")["wifi_gate"] == "up"
    assert peer.recv(64) == b"held"
    assert wifi.run(f"tcp_recv {fd} 1000")["tcp_recv"] == "x"
    assert not [line for line in wifi.lines[start:] if line.startswith("wifi_event=")], "no event for a short loss"


def test_a_connect_while_stalled_waits_for_the_ap(wifi: PortCheck, ap: WifiAp, server: socket.socket) -> None:
    ap.down()
    assert wifi.run("wifi_gate stalled 2000")["wifi_gate"] == "stalled"
    result = wifi.run(f"tcp_connect 127.0.0.1 {server.getsockname()[1]} 200")
    assert result["tcp_connect"] == "pending", result  # the SYN is lost: still in progress after 200 ms
    with pytest.raises(TimeoutError):
        server.accept()
    ap.up()
    assert wifi.run("wifi_gate up 2000")["wifi_gate"] == "up"
    server.settimeout(5)
    server.accept()[0].close()
    assert wifi.run(f"tcp_wait {result['fd']} 1000")["tcp_wait"] == "connected"


def test_the_disconnect_aborts_connections_and_new_connects_fail_at_once(
    wifi: PortCheck, ap: WifiAp, server: socket.socket
) -> None:
    fd, peer = connect(wifi, server)
    lose_ap(wifi, ap)
    received = wifi.run(f"tcp_recv {fd} 1000")
    assert received["tcp_recv"] == "ECONNABORTED", received  # lwIP's ERR_ABRT, readable at once
    assert wifi.run(f"tcp_send {fd} late")["tcp_send"] == "ECONNABORTED"
    refused = wifi.run(f"tcp_connect 127.0.0.1 {server.getsockname()[1]} 1000")
    assert refused["tcp_connect"] == "EHOSTUNREACH" and int(refused["ms"]) < 100, refused  # ERR_RTE, no wait
    assert wifi.run(f"tcp_close {fd}")["tcp_close"] == "0"
    assert_nothing_arrives(peer)  # the peer hears of it only once frames get through again
    ap.up()
    assert wifi.run("wifi_connect")["wifi_connect"] == "ESP_OK"
    assert wifi.run("wifi_gate up 2000")["wifi_gate"] == "up"
    peer.settimeout(5)
    with pytest.raises(ConnectionResetError):
        peer.recv(64)
    _, again = connect(wifi, server)  # and new connections work again
    again.close()


# --- through the virtual board ----------------------------------------------------------------------------------


@pytest.fixture
def check_board(tmp_path: Path, port_check_exe: Path) -> Iterator[VirtualBoard]:
    """A virtual board running port_check, at its prompt."""
    with port_check_board(port_check_exe, tmp_path, "wifi") as board:
        yield board


def test_the_board_hands_its_ap_to_the_app_and_keeps_it_across_reboots(check_board: VirtualBoard) -> None:
    check_board.wifi_ap.down()
    check_board.reset()  # the app restarts; the AP stays off the air
    check_board.expect(r"^port_check>$", timeout=15)
    check_board.console(f"wifi_start {SSID}", expect=r"^wifi_start=ESP_OK$")
    check_board.write("wifi_connect")
    check_board.expect(r"^wifi_event=STA_DISCONNECTED reason=201 ", timeout=SCAN_S + 3)
    check_board.wifi_ap.set_rssi(-55)
    check_board.wifi_ap.up()
    check_board.write("wifi_connect")
    check_board.expect(r"^ip_event=GOT_IP ", timeout=3)
    check_board.write("wifi_ap_info")
    check_board.expect(r"^ap_info=ESP_OK rssi=-55 ", timeout=3)


def test_a_real_board_has_no_ap_to_switch() -> None:
    class RealBoard(Board):  # what Esp32Board inherits: only the virtual board overrides wifi_ap
        name = "esp32-0"
        partitions = ()
        write = reset = power_cut = flash = stop = lambda *args: None

    board = RealBoard()
    with pytest.raises(NoWifiApError, match="needs the virtual board.*virtual_only"):
        board.wifi_ap.down()
    assert not hasattr(board, "wifi_ap")  # an AttributeError: a test can ask before it skips


# --- WifiAp itself ----------------------------------------------------------------------------------------------


def test_ap_records_are_the_format_host_board_h_documents(ap: WifiAp) -> None:
    assert ap.path.read_bytes() == b""  # an AP on the air at the default RSSI
    ap.down()
    ap.set_rssi(-80)
    ap.up()
    records = [line.split(" ", 1) for line in ap.path.read_text().splitlines()]
    assert [r[1] for r in records] == ["down", "rssi -80", "up"]
    stamps = [int(r[0]) for r in records]
    assert stamps == sorted(stamps)  # CLOCK_MONOTONIC ns, as the firmware reads it
    assert (ap.state.on_air, ap.state.rssi) == (True, -80)
    with pytest.raises(ValueError, match="rssi 5 dBm"):
        ap.set_rssi(5)
