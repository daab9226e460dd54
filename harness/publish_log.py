"""When MQTT messages were published, by topic and in order, and a subscriber's messages matched to them.

Two sources fill one: the embedded broker's receipts (harness/broker/receipts.py, stamped as it reads each
PUBLISH, before its PUBACK) and a virtual board's own publish trace (harness/virtual/mqtt_trace.py). A
reader matches the messages one subscriber received, per topic and in order, to their publish times:
MQTT keeps one publisher's messages on a topic in order, so the first unmatched equal payload is the one.
"""

from __future__ import annotations

import threading


class PublishLog:
    """Publish times by topic, in the order they were recorded (thread-safe: a broker fills it as a link reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_topic: dict[str, list[tuple[float, bytes]]] = {}

    def record(self, topic: str, payload: bytes, t: float) -> None:
        with self._lock:
            self._by_topic.setdefault(topic, []).append((t, payload))

    def reader(self) -> PublishLogReader:
        return PublishLogReader(self)

    def _find(self, topic: str, payload: bytes, start: int) -> tuple[int, float] | None:
        with self._lock:
            receipts = self._by_topic.get(topic, [])
            for index in range(start, len(receipts)):
                if receipts[index][1] == payload:
                    return index, receipts[index][0]
        return None


class PublishLogReader:
    """One subscriber's view: each received message takes the first equal publish after the previous one's."""

    def __init__(self, log: PublishLog) -> None:
        self._log = log
        self._next: dict[str, int] = {}

    def time_of(self, topic: str, payload: bytes) -> float | None:
        """When this message was published; None if the log does not have it (another broker, a will, a command)."""
        found = self._log._find(topic, payload, self._next.get(topic, 0))
        if found is None:
            return None
        index, t = found
        self._next[topic] = index + 1
        return t
