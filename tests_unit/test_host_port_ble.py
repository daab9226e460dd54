"""The host port's Bluetooth controller, Bluedroid and BLE GAP scanning, at the C level, in a BLE air.

device/port/linux/test/ble_check.c (commands of port_check) brings the stack up and scans as a BLE scanner app
does, printing each GAP event as its callback gets it; a `BleAir` (harness/virtual/ble_air.py) is the radio
environment, handed to the process in HIL_BLE_AIR as the virtual board hands it. Each test is about one
behaviour the port's file headers claim: the events in the chip's order, what a result carries, the duplicate
filter, a device going quiet, a scan stopped, and the errors of a call made too early. The last tests go
through a real VirtualBoard: the air reaches the app and outlives its reboots; a real board has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards.base import Board
from harness.virtual import host_abi as abi
from harness.virtual.ble_air import BleAir, NoBleAirError, name_ad
from harness.virtual.board import VirtualBoard
from tests_unit.port_check_app import PortCheck, port_check_board, values

DEVICE_A = "c0:ff:ee:00:00:0a"
DEVICE_B = "c0:ff:ee:00:00:0b"
DEVICE_C = "c0:ff:ee:00:00:0c"
FAST_MS = 20  # the shortest advertising interval: many advertisements in little time
QUIET_S = 0.4  # 20 intervals of FAST_MS: what a scan that should be over would have reported by then
INQ_RES = r"^ble_event=SCAN_RESULT search_evt=INQ_RES "
INQ_CMPL = r"^ble_event=SCAN_RESULT search_evt=INQ_CMPL "
# esp_bt_status_t values Bluedroid puts in the *_COMPLETE events (BTA_SUCCESS, BTA_FAILURE, BTM_ILLEGAL_VALUE)
OK, FAILURE, ILLEGAL_VALUE = "0", "1", "5"


@pytest.fixture
def air(tmp_path: Path) -> BleAir:
    return BleAir(tmp_path / "ble-air.txt")


@pytest.fixture
def ble(port_check_exe: Path, tmp_path: Path, air: BleAir) -> Iterator[PortCheck]:
    pc = PortCheck(port_check_exe, tmp_path, env={abi.ENV_BLE_AIR: str(air.path)})
    try:
        yield pc
    finally:
        pc.close()


def bring_up(pc: PortCheck) -> None:
    """Controller (BLE only) and Bluedroid up, the callback registered, as a scanner app starts."""
    assert pc.run("bt_controller") == {"mem_release": "ESP_OK", "controller_init": "ESP_OK",
                                       "controller_enable": "ESP_OK", "controller_status": "2"}
    assert pc.run("bt_bluedroid") == {"bluedroid_init": "ESP_OK", "bluedroid_enable": "ESP_OK",
                                      "register_callback": "ESP_OK", "bluedroid_status": "2"}


def events(lines: list[str]) -> list[dict[str, str]]:
    """The GAP events among port_check's lines, in order, as key=value pairs."""
    return [values([line]) for line in lines if line.startswith("ble_event=")]


def kind(event: dict[str, str]) -> str:
    return event.get("search_evt", event["ble_event"])


def results(pc: PortCheck, since: int = 0, bda: str | None = None) -> list[dict[str, str]]:
    found = [values([line]) for line in pc.lines[since:] if re.match(INQ_RES, line)]
    return [r for r in found if bda is None or r["bda"] == bda]


def expect_results(pc: PortCheck, bda: str, count: int, since: int = 0) -> int:
    """Waits for `count` results of bda from line `since` on; returns the index just after the last."""
    for _ in range(count):
        pc.expect(INQ_RES + f"bda={bda} ", since=since)
        since = pc.last_index
    return since


def assert_no_line(pc: PortCheck, pattern: str, since: int, within: float = QUIET_S) -> None:
    """No line from `since` on matches `pattern` for `within` seconds (a deadline on the output, not a sleep)."""
    try:
        match = pc.expect(pattern, since=since, timeout=within)
    except AssertionError:
        return
    raise AssertionError(f"unexpected line {match.string!r}; output:\n" + "\n".join(pc.lines[since:][-30:]))


def status_of(pc: PortCheck, command: str, event: str) -> str:
    """Runs a command whose only event is `event`; returns the event's status."""
    start = pc.send(command)
    return pc.expect(rf"^ble_event={event} status=(\d+)$", since=start).group(1)


# --- a scan, as an app sees it -------------------------------------------------------------------------------


def test_a_scan_reports_in_order_what_advertises_before_and_during_it(ble: PortCheck, air: BleAir) -> None:
    air.advertise(DEVICE_A, rssi=-55, name="before-scan", interval_ms=50)
    bring_up(ble)
    start = ble.send("ble_scan 1 1")
    ble.expect(r"^ble_event=SCAN_START_COMPLETE status=0$", since=start)
    air.advertise(DEVICE_B, rssi=-72, name="during-scan", interval_ms=50)
    cmpl = values([ble.expect(INQ_CMPL, since=start, timeout=5).string])
    end = ble.last_index

    got = events(ble.lines[start:end])
    assert [kind(e) for e in got] == ["SCAN_PARAM_SET_COMPLETE", "SCAN_START_COMPLETE", "INQ_RES", "INQ_RES",
                                      "INQ_CMPL"], got
    assert got[0]["status"] == got[1]["status"] == OK
    a, b = sorted(got[2:4], key=lambda r: r["bda"])  # in the order heard: A's next advertisement may come after B's
    for result, (bda, rssi, name) in ((a, (DEVICE_A, "-55", "before-scan")), (b, (DEVICE_B, "-72", "during-scan"))):
        assert (result["bda"], result["rssi"], result["name"], result["name_legacy"]) == (bda, rssi, name, name)
        # a BLE device with a public address, non-connectable advertising, no scan response
        assert (result["dev_type"], result["addr_type"], result["evt_type"]) == ("2", "0", "3")
        assert (result["adv"], result["adv_data_len"], result["scan_rsp_len"]) == (
            name_ad(name).hex(), str(len(name_ad(name))), "0")
        assert (result["num_resps"], result["flag"]) == ("1", "0")  # no Flags AD structure
    assert cmpl["num_resps"] == "2"
    assert_no_line(ble, r"^ble_event=", since=end)  # the duration is over: nothing after INQ_CMPL


def test_a_result_carries_the_advertising_data_as_it_was_sent(ble: PortCheck, air: BleAir) -> None:
    """Raw AD structures: Flags, a Shortened Local Name and manufacturer data; scan_rst.flag is the Flags
    byte, and the Complete Local Name is not there."""
    data = bytes([2, 0x01, 0x06]) + bytes([5, 0x08]) + b"acme" + bytes([5, 0xFF, 0xE5, 0x02, 0x01, 0x02])
    air.advertise(DEVICE_A, rssi=-40, adv_data=data, interval_ms=FAST_MS)
    bring_up(ble)
    start = ble.send("ble_scan 0 1")
    ble.expect(INQ_RES, since=start)
    [result] = results(ble, start)
    assert (result["adv"], result["adv_data_len"], result["flag"]) == (data.hex(), str(len(data)), "6")
    assert (result["name"], result["name_legacy"]) == ("-", "-")
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == OK


def test_the_duplicate_filter_reports_each_device_once_per_scan(ble: PortCheck, air: BleAir) -> None:
    air.advertise(DEVICE_A, name="fast", interval_ms=FAST_MS)
    air.advertise(DEVICE_B, name="also-fast", interval_ms=FAST_MS)
    bring_up(ble)
    for _scan in range(2):  # the filter is cleared when a scan starts: the second scan reports them again
        start = ble.send("ble_scan 1 1")
        ble.expect(INQ_CMPL, since=start, timeout=5)
        assert sorted(r["bda"] for r in results(ble, start)) == [DEVICE_A, DEVICE_B]  # of ~50 advertisements each

    start = ble.send("ble_scan 0 0")
    expect_results(ble, DEVICE_A, 5, since=start)  # without the filter: every advertisement heard
    expect_results(ble, DEVICE_B, 5, since=start)
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == OK


def test_a_device_that_stops_advertising_is_no_longer_reported(ble: PortCheck, air: BleAir) -> None:
    air.advertise(DEVICE_A, name="leaving", interval_ms=FAST_MS)
    air.advertise(DEVICE_B, name="staying", interval_ms=FAST_MS)
    bring_up(ble)
    start = ble.send("ble_scan 0 0")
    expect_results(ble, DEVICE_A, 3, since=start)
    air.stop(DEVICE_A)
    # C enters the air after A left it: the radio reads the two records in that order and reports in the
    # order it hears, so from C's first result on, A's last advertisement is behind (whatever was queued).
    air.advertise(DEVICE_C, name="newcomer", interval_ms=FAST_MS)
    ble.expect(INQ_RES + f"bda={DEVICE_C} ", since=start)
    after_c = ble.last_index
    expect_results(ble, DEVICE_B, 10, since=after_c)  # 10 intervals: A would have advertised meanwhile
    assert results(ble, after_c, DEVICE_A) == []
    assert results(ble, start, DEVICE_A), "A was heard before it stopped"
    assert set(air.advertisers) == {DEVICE_B, DEVICE_C}
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == OK


def test_stop_scanning_ends_the_scan(ble: PortCheck, air: BleAir) -> None:
    air.advertise(DEVICE_A, name="beacon", interval_ms=FAST_MS)
    bring_up(ble)
    start = ble.send("ble_scan 0 0")  # until stopped
    expect_results(ble, DEVICE_A, 5, since=start)
    stop = ble.send("ble_stop")
    assert ble.expect(r"^ble_event=SCAN_STOP_COMPLETE status=(\d+)$", since=stop).group(1) == OK
    stopped = ble.last_index
    assert_no_line(ble, r"^ble_event=SCAN_RESULT", since=stopped)  # no result, and no INQ_CMPL either
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == FAILURE  # BTM_BleScan: scan not active
    # and the next scan hears the device again
    assert status_of(ble, "ble_start 1", "SCAN_START_COMPLETE") == OK
    expect_results(ble, DEVICE_A, 3, since=stopped)
    ble.expect(INQ_CMPL, since=stopped, timeout=5)


# --- errors, as the real API returns them ---------------------------------------------------------------------


def test_calls_before_bluedroid_is_enabled_fail_with_invalid_state(ble: PortCheck, air: BleAir) -> None:
    air.advertise(DEVICE_A, name="ignored", interval_ms=FAST_MS)
    too_early = {"start_scanning": "ESP_ERR_INVALID_STATE"}
    assert ble.run("ble_start 1") == too_early
    assert ble.run("ble_stop") == {"stop_scanning": "ESP_ERR_INVALID_STATE"}
    assert ble.run("ble_params 80 48 1 0") == {"set_scan_params": "ESP_ERR_INVALID_STATE"}
    # Bluedroid needs an enabled controller; without an initialised Bluedroid there is nothing to enable
    assert ble.run("bt_bluedroid") == {"bluedroid_init": "ESP_ERR_INVALID_STATE",
                                       "bluedroid_enable": "ESP_ERR_INVALID_STATE",
                                       "register_callback": "ESP_ERR_INVALID_STATE", "bluedroid_status": "0"}
    assert ble.run("bt_controller")["controller_enable"] == "ESP_OK"
    assert ble.run("ble_start 1") == too_early  # the controller alone is not enough
    assert ble.run("bt_bluedroid")["register_callback"] == "ESP_OK"
    start = ble.send("ble_start 0")
    ble.expect(r"^ble_event=SCAN_START_COMPLETE status=0$", since=start)
    expect_results(ble, DEVICE_A, 1, since=start)
    assert events(ble.lines[:start]) == []  # none of the refused calls made an event
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == OK


def test_scan_parameter_and_scan_state_errors_come_in_the_complete_events(ble: PortCheck) -> None:
    bring_up(ble)
    assert status_of(ble, "ble_params 80 48 1 0", "SCAN_PARAM_SET_COMPLETE") == OK
    assert status_of(ble, "ble_params 2 2 1 0", "SCAN_PARAM_SET_COMPLETE") == ILLEGAL_VALUE  # below 0x0004
    assert status_of(ble, "ble_params 48 80 1 0", "SCAN_PARAM_SET_COMPLETE") == FAILURE  # window > interval
    assert status_of(ble, "ble_params 80 48 1 1", "SCAN_PARAM_SET_COMPLETE") == FAILURE  # no random address set
    assert status_of(ble, "ble_start 0", "SCAN_START_COMPLETE") == OK
    assert status_of(ble, "ble_start 0", "SCAN_START_COMPLETE") == FAILURE  # scan already active
    assert status_of(ble, "ble_params 80 48 0 0", "SCAN_PARAM_SET_COMPLETE") == FAILURE  # not while scanning
    assert status_of(ble, "ble_stop", "SCAN_STOP_COMPLETE") == OK
    assert ble.run("bt_off") == {"bluedroid_disable": "ESP_OK", "bluedroid_deinit": "ESP_OK",
                                 "controller_disable": "ESP_OK", "controller_deinit": "ESP_OK"}
    assert ble.run("ble_start 1") == {"start_scanning": "ESP_ERR_INVALID_STATE"}


# --- through the virtual board ------------------------------------------------------------------------------


@pytest.fixture
def check_board(tmp_path: Path, port_check_exe: Path) -> Iterator[VirtualBoard]:
    """A virtual board running port_check, at its prompt."""
    with port_check_board(port_check_exe, tmp_path, "ble") as board:
        yield board


def scan_on_board(board: VirtualBoard) -> list[str]:
    """Brings the stack up and scans for a second (duplicates filtered); returns the results' lines."""
    for command in ("bt_controller", "bt_bluedroid"):
        board.console(command, expect=r"^port_check>$")
    board.write("ble_scan 1 1")
    board.expect(r"^ble_event=SCAN_START_COMPLETE status=0$")
    lines = []
    while not (line := board.expect(r"^ble_event=SCAN_RESULT .*$").group(0)).startswith(INQ_CMPL[1:]):
        lines.append(line)
    return lines


def test_the_board_hands_its_air_to_the_app_and_keeps_it_across_reboots(check_board: VirtualBoard) -> None:
    check_board.ble_air.advertise(DEVICE_A, rssi=-61, name="in-the-room")
    [line] = scan_on_board(check_board)
    assert values([line])["bda"] == DEVICE_A and "rssi=-61 " in line and "name=in-the-room " in line

    check_board.reset()  # the app restarts; the room around the board does not change
    check_board.expect(r"^port_check>$", timeout=15)
    [line] = scan_on_board(check_board)
    assert values([line])["name"] == "in-the-room"

    check_board.ble_air.clear()
    check_board.ble_air.advertise(DEVICE_B, name="next-door")
    assert [values([line])["bda"] for line in scan_on_board(check_board)] == [DEVICE_B]


def test_a_real_board_has_no_air() -> None:
    class RealBoard(Board):  # what Esp32Board inherits: only the virtual board overrides ble_air
        name = "esp32-0"
        partitions = ()
        write = reset = power_cut = flash = stop = lambda *args: None

    board = RealBoard()
    with pytest.raises(NoBleAirError, match="need the virtual board.*virtual_only"):
        board.ble_air.advertise(DEVICE_A)
    assert not hasattr(board, "ble_air")  # an AttributeError: a test can ask before it skips


# --- BleAir itself ------------------------------------------------------------------------------------------


def test_air_records_are_the_format_host_board_h_documents(air: BleAir) -> None:
    air.advertise("C0-FF-EE-00-00-0A", rssi=-90, name="x", interval_ms=250)
    air.advertise("c0ffee00000b", adv_data=b"")
    air.stop(DEVICE_A)
    air.clear()
    records = [line.split(" ", 1) for line in air.path.read_text().splitlines()]
    assert [r[1] for r in records] == [f"adv {DEVICE_A} -90 250 020978", f"adv {DEVICE_B} -60 100 -",
                                       f"stop {DEVICE_A}", "clear"]
    stamps = [int(r[0]) for r in records]
    assert stamps == sorted(stamps)  # CLOCK_MONOTONIC ns, as the firmware reads it
    assert air.advertisers == {}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"mac": "c0:ff:ee:00:00"}, "not a Bluetooth device address"),
    ({"mac": DEVICE_A, "rssi": 30}, "rssi"),
    ({"mac": DEVICE_A, "adv_data": bytes(32)}, "holds 31"),
    ({"mac": DEVICE_A, "name": "n" * 30}, "1 to 29 bytes"),
    ({"mac": DEVICE_A, "interval_ms": 5}, "interval_ms"),
])
def test_air_refuses_what_no_advertisement_can_be(air: BleAir, kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        air.advertise(**kwargs)  # type: ignore[arg-type]
    assert air.path.read_text() == ""
