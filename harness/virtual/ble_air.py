"""The BLE air around a virtual board: the devices advertising near it, which a test puts there.

The air belongs to the board, not to the firmware: it outlives the app's reboots, as the radio environment
around a real board does. The board hands its file to the app in HIL_BLE_AIR; the host port's Bluetooth
controller (device/port/linux/src/host_ble_air.c) reads it from the start at every boot and follows it, and a
scan reports each advertisement it hears (subject to the controller's duplicate filter). The record format is
in device/port/linux/src/host_board.h, one line per record, appended with one write:

    <CLOCK_MONOTONIC ns> adv <aa:bb:cc:dd:ee:ff> <rssi dBm> <interval ms> <advertising data as hex, or ->
    <CLOCK_MONOTONIC ns> stop <aa:bb:cc:dd:ee:ff>
    <CLOCK_MONOTONIC ns> clear

A device advertises at the moment `advertise()` is called and every `interval_ms` after it.

    board.ble_air.advertise("c0:ff:ee:00:00:01", rssi=-58, name="acme-th-01")
    board.expect(r"found c0:ff:ee:00:00:01 .*acme-th-01", timeout=5)
    board.ble_air.stop("c0:ff:ee:00:00:01")

Only virtual boards have an air: on a real ESP32 `board.ble_air` raises `NoBleAirError` (an AttributeError, so
``hasattr(board, "ble_air")`` is False). Mark a test that injects advertisements ``@pytest.mark.virtual_only``:
a run on ``--target esp32`` then deselects it, with the reason in the report.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from harness.virtual.host_abi import append_record

ADV_DATA_MAX = 31  # a legacy advertising PDU's payload (ESP_BLE_ADV_DATA_LEN_MAX)
AD_TYPE_NAME_CMPL = 0x09  # ESP_BLE_AD_TYPE_NAME_CMPL
MIN_INTERVAL_MS = 20  # the Bluetooth Core specification's shortest advertising interval
MAX_INTERVAL_MS = 10_240
RSSI_RANGE = range(-127, 21)  # dBm, as an HCI LE Advertising Report carries it
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


class NoBleAirError(AttributeError):
    """The board has no BLE air to put advertisements into: a real ESP32 hears real devices only."""


@dataclass(frozen=True)
class Advertiser:
    """One device advertising in the air."""

    mac: str  # aa:bb:cc:dd:ee:ff, lower case
    rssi: int
    adv_data: bytes
    interval_ms: int


def normalize_mac(mac: str) -> str:
    """aa:bb:cc:dd:ee:ff in lower case, from that form, with dashes, or as 12 hex digits."""
    text = mac.strip().lower().replace("-", ":")
    if re.fullmatch(r"[0-9a-f]{12}", text):
        text = ":".join(text[i:i + 2] for i in range(0, 12, 2))
    if not _MAC.fullmatch(text):
        raise ValueError(f"{mac!r} is not a Bluetooth device address (aa:bb:cc:dd:ee:ff)")
    return text


def name_ad(name: str) -> bytes:
    """The Complete Local Name AD structure (length, type 0x09, the UTF-8 name) of a name that fits a PDU."""
    encoded = name.encode()
    if not 0 < len(encoded) <= ADV_DATA_MAX - 2:
        raise ValueError(f"name {name!r}: 1 to {ADV_DATA_MAX - 2} bytes of UTF-8 fit in an advertisement")
    return bytes([len(encoded) + 1, AD_TYPE_NAME_CMPL]) + encoded


def _check(rssi: int, adv_data: bytes, interval_ms: int) -> None:
    if rssi not in RSSI_RANGE:
        raise ValueError(f"rssi {rssi} dBm: out of {RSSI_RANGE.start}..{RSSI_RANGE.stop - 1}")
    if len(adv_data) > ADV_DATA_MAX:
        raise ValueError(f"adv_data of {len(adv_data)} bytes: an advertisement holds {ADV_DATA_MAX}")
    if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        raise ValueError(f"interval_ms {interval_ms}: advertising intervals are {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS}")


class BleAir:
    """The advertisers around one virtual board, written to the file its firmware follows (HIL_BLE_AIR)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._advertisers: dict[str, Advertiser] = {}
        self.path.write_bytes(b"")  # a new board starts in an empty air

    def advertise(self, mac: str, rssi: int = -60, name: str | None = None, adv_data: bytes | None = None,
                  interval_ms: int = 100) -> None:
        """The device `mac` advertises from now on, every interval_ms, at rssi dBm: `adv_data`, or when not
        given a Complete Local Name of `name` (neither: an empty advertisement). Replaces what it advertised."""
        mac = normalize_mac(mac)
        data = adv_data if adv_data is not None else name_ad(name) if name is not None else b""
        _check(rssi, data, interval_ms)
        with self._lock:
            self._advertisers[mac] = Advertiser(mac, rssi, data, interval_ms)
            self._append(f"adv {mac} {rssi} {interval_ms} {data.hex() or '-'}")

    def stop(self, mac: str) -> None:
        """The device stops advertising (nothing happens if it was not)."""
        mac = normalize_mac(mac)
        with self._lock:
            self._advertisers.pop(mac, None)
            self._append(f"stop {mac}")

    def clear(self) -> None:
        """Every device stops advertising."""
        with self._lock:
            self._advertisers.clear()
            self._append("clear")

    @property
    def advertisers(self) -> dict[str, Advertiser]:
        """What is in the air now, by address."""
        with self._lock:
            return dict(self._advertisers)

    def _append(self, record: str) -> None:
        append_record(self.path, record)
