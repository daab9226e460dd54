"""The virtual board's record of its firmware's MQTT publishes, timed as the firmware made them.

The host port appends one record per `esp_mqtt_client_publish()` to the file the board names in
HIL_MQTT_TRACE (device/port/linux/src/host_trace.c has the format): when (CLOCK_MONOTONIC, the clock of
`harness.clock`), the topic and the payload. The timeline uses it to place a device's message at the moment
the device said it, before everything the device did next, which no observer on the network can do (a
message reaches the test only after the broker forwarded it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Published:
    t: float  # seconds on harness.clock
    topic: str
    payload: bytes


def read_trace(path: Path) -> list[Published]:
    """Every complete record of the file, in the order they were written (a record cut short by a power
    cut or a crash in the middle of its write is left out)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records, pos = [], 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        try:
            t_ns, topic_len, payload_len = (int(field) for field in data[pos:end].split())
        except ValueError:
            break
        body = end + 1
        stop = body + topic_len + payload_len
        if stop >= len(data) or data[stop:stop + 1] != b"\n":
            break
        topic = data[body:body + topic_len].decode("utf-8", errors="replace")
        records.append(Published(t_ns / 1e9, topic, data[body + topic_len:stop]))
        pos = stop + 1
    return records
