"""When the embedded broker took each PUBLISH from its publisher: the timeline's clock for MQTT messages.

A subscriber sees a message only after the broker forwarded it, and amqtt acknowledges a QoS 1 PUBLISH before
it forwards it. A device that publishes `rebooting`, waits for the PUBACK and restarts can therefore print
its reset line before the test's link has the message. Stamped when the broker reads the packet, before
the PUBACK goes out, a message sorts before everything the device did after sending it.

`ReceiptStreamReader` is the StreamReader of each client connection the embedded broker accepts: as bytes
arrive it frames them into MQTT packets and writes every complete PUBLISH into a `PublishLog`, before amqtt
reads the packet from the reader (so before its PUBACK). Each `DeviceLink` reads the log through its own
`PublishLog.reader()`, which matches the messages it receives, per topic and in order, to their receipts.

It replaced an amqtt plugin on the `mqtt_packet_received` event: amqtt runs every plugin callback in a task
of its own, for every packet of every client (PUBACKs too), which was a sixth of the broker's time per
status round trip (docs/performance.md, "Event path").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from harness import clock
from harness.publish_log import PublishLog

PUBLISH = 3
CONNECT = 1


class PublishFramer:
    """Splits one client's byte stream into MQTT 3.1.1 packets and stamps each PUBLISH (topic, payload).

    Stamps only what amqtt itself would read as a PUBLISH of a connected client: after the CONNECT that must
    open the stream, a topic without wildcards; it gives up on a stream amqtt would drop too (a first packet
    that is not a CONNECT, a remaining length of more than 4 bytes).
    """

    def __init__(self, log: PublishLog, now: Callable[[], float] = clock.now) -> None:
        self._log = log
        self._now = now
        self._pending = bytearray()  # the start of a packet whose end has not arrived yet
        self._need = 0  # bytes the pending packet needs in all (0: not known yet)
        self._connected = False
        self._broken = False

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._broken:
            return
        if self._pending:
            self._pending += data
            if self._need and len(self._pending) < self._need:
                return
            data, self._pending = bytes(self._pending), bytearray()
        self._need = 0
        t = self._now()
        pos, end = 0, len(data)
        while pos < end:
            size = self._packet_size(data, pos, end)
            if self._broken:
                return
            if size is None or pos + size > end:  # the rest of this packet is still to come
                self._pending = bytearray(data[pos:])
                self._need = size or 0
                return
            if not self._take(data, pos, size, t):
                self._broken = True
                return
            pos += size

    def _packet_size(self, data: bytes | bytearray | memoryview, pos: int, end: int) -> int | None:
        """The whole packet's length (fixed header included), None while its length bytes are incomplete."""
        length, multiplier = 0, 1
        for index in range(pos + 1, min(pos + 5, end)):
            byte = data[index]
            length += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                return index + 1 - pos + length
            multiplier *= 128
        if end - pos >= 5:  # a fifth length byte: amqtt drops the connection
            self._broken = True
        return None

    def _take(self, data: bytes | bytearray | memoryview, pos: int, size: int, t: float) -> bool:
        first = data[pos]
        kind = first >> 4
        if not self._connected:
            self._connected = kind == CONNECT
            return self._connected
        if kind != PUBLISH:
            return True
        body = pos + 1
        while data[body] & 0x80:
            body += 1
        body += 1  # past the remaining length
        end = pos + size
        if end - body < 2:
            return True
        topic_length = int.from_bytes(data[body:body + 2], "big")
        payload = body + 2 + topic_length + (2 if (first >> 1) & 0x03 else 0)
        if payload > end:
            return True  # amqtt would fail to read it: no receipt
        try:
            topic = bytes(data[body + 2:body + 2 + topic_length]).decode("utf-8")
        except UnicodeDecodeError:
            return True
        if "#" not in topic and "+" not in topic:
            self._log.record(topic, bytes(data[payload:end]), t)
        return True


class ReceiptStreamReader(asyncio.StreamReader):
    """An asyncio StreamReader that shows every chunk to a PublishFramer before amqtt can read it."""

    def __init__(self, log: PublishLog, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self._framer = PublishFramer(log)

    def feed_data(self, data: bytes) -> None:
        self._framer.feed(data)  # first: the stamp must precede anything amqtt does with the packet
        super().feed_data(data)
