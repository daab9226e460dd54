"""When the embedded broker took each PUBLISH from its publisher: the timeline's clock for MQTT messages.

A subscriber sees a message only after the broker forwarded it, and amqtt acknowledges a QoS 1 PUBLISH before
it forwards it. A device that publishes `rebooting`, waits for the PUBACK and restarts can therefore print
its reset line before the test's link has the message. Stamped when the broker reads the packet, before
the PUBACK goes out, a message sorts before everything the device did after sending it.

`ReceiptPlugin` is an amqtt plugin (the `mqtt_packet_received` event, whose handler amqtt schedules before the
packet's own handling) writing into a `ReceiptLog`; each `DeviceLink` reads the log through its own
`ReceiptReader`, which matches the messages it receives, per topic and in order, to their receipts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from amqtt.broker import BrokerContext
from amqtt.mqtt.publish import PublishPacket
from amqtt.plugins.base import BasePlugin

from harness import clock


class ReceiptLog:
    """Receipt times of PUBLISH packets by topic, in the order the broker read them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_topic: dict[str, list[tuple[float, bytes]]] = {}

    def record(self, topic: str, payload: bytes, t: float) -> None:
        with self._lock:
            self._by_topic.setdefault(topic, []).append((t, payload))

    def reader(self) -> ReceiptReader:
        return ReceiptReader(self)

    def _find(self, topic: str, payload: bytes, start: int) -> tuple[int, float] | None:
        with self._lock:
            receipts = self._by_topic.get(topic, [])
            for index in range(start, len(receipts)):
                if receipts[index][1] == payload:
                    return index, receipts[index][0]
        return None


class ReceiptReader:
    """One subscriber's view: each received message takes the first receipt after the previous one's."""

    def __init__(self, log: ReceiptLog) -> None:
        self._log = log
        self._next: dict[str, int] = {}

    def time_of(self, topic: str, payload: bytes) -> float | None:
        """When the broker read this message; None if it has no receipt (another broker, a will)."""
        found = self._log._find(topic, payload, self._next.get(topic, 0))
        if found is None:
            return None
        index, t = found
        self._next[topic] = index + 1
        return t


@dataclass
class _ReceiptConfig:
    log: Any = None  # a ReceiptLog; `Any` lets amqtt's dacite pass the live object through uncopied


class ReceiptPlugin(BasePlugin[BrokerContext]):
    """Stamps every PUBLISH a client sends, as amqtt reads it."""

    Config = _ReceiptConfig

    async def on_mqtt_packet_received(self, *, packet: Any, session: Any = None) -> None:
        if isinstance(packet, PublishPacket) and packet.variable_header is not None and packet.payload is not None:
            self.config.log.record(packet.variable_header.topic_name, bytes(packet.payload.data), clock.now())

