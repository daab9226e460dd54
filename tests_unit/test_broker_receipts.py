"""The embedded broker's receipts: PUBLISH packets framed out of each client's byte stream as it arrives."""

from __future__ import annotations

import itertools
import ssl
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from amqtt.mqtt.publish import PublishPacket
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import EmbeddedBroker
from harness.broker.probe import _connect_packet
from harness.broker.receipts import PublishFramer
from harness.publish_log import PublishLog

WAIT = 5.0
CONNECT = _connect_packet("framer-test")
PUBACK = bytes([0x40, 0x02, 0x00, 0x07])
PINGREQ = bytes([0xC0, 0x00])


def publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bytes:
    """A PUBLISH as amqtt itself encodes one (amqtt parses what the framer frames)."""
    return bytes(PublishPacket.build(topic, payload, 7 if qos else None, False, qos, retain).to_bytes())


def raw_publish(topic: bytes, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH with any topic bytes (amqtt refuses to build one with a wildcard)."""
    body = len(topic).to_bytes(2, "big") + topic + payload
    assert len(body) < 128
    return bytes([0x30, len(body)]) + body


class Recorder(PublishLog):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, bytes, float]] = []

    def record(self, topic: str, payload: bytes, t: float) -> None:
        self.records.append((topic, payload, t))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def framer() -> tuple[PublishFramer, Recorder, Clock]:
    log, clock = Recorder(), Clock()
    return PublishFramer(log, now=clock), log, clock


BIG = bytes(range(256)) * 80  # 20 kB: a remaining length of three bytes
STREAM = [CONNECT, publish("devices/d1/ota", b'{"state": "accepted"}'), PUBACK,
          publish("devices/d1/status", b"{}", qos=0, retain=True), PINGREQ, publish("devices/d1/big", BIG),
          publish("devices/d1/empty", b"")]
EXPECTED = [("devices/d1/ota", b'{"state": "accepted"}'), ("devices/d1/status", b"{}"),
            ("devices/d1/big", BIG), ("devices/d1/empty", b"")]


def test_every_publish_is_stamped_once_however_the_stream_is_cut() -> None:
    data = b"".join(STREAM)
    cuts = [*range(80), *range(len(data) - 80, len(data)), *range(80, len(data) - 80, 997)]
    for cut in cuts:
        f, log, _ = framer()
        f.feed(data[:cut])
        f.feed(data[cut:])
        assert [(topic, payload) for topic, payload, _ in log.records] == EXPECTED, cut


def test_byte_by_byte_and_all_at_once() -> None:
    data = b"".join(STREAM)
    one, log_one, _ = framer()
    for i in range(len(data)):
        one.feed(data[i:i + 1])
    everything, log_all, _ = framer()
    everything.feed(bytearray(data))
    assert [r[:2] for r in log_one.records] == [r[:2] for r in log_all.records] == EXPECTED


def test_a_packet_is_stamped_when_its_last_byte_arrives() -> None:
    f, log, clock = framer()
    first, second = publish("devices/d1/a", b"1"), publish("devices/d1/b", b"2")
    f.feed(CONNECT + first[:5])
    assert log.records == []
    f.feed(first[5:] + second)  # the rest of one and a whole other in one chunk: one arrival, one time
    assert [(topic, t) for topic, _, t in log.records] == [("devices/d1/a", clock.t), ("devices/d1/b", clock.t)]
    f.feed(publish("devices/d1/c", b"3"))
    assert log.records[-1][2] == clock.t > log.records[0][2]


def test_what_amqtt_would_not_read_as_a_publish_has_no_receipt() -> None:
    f, log, _ = framer()
    wild, bad_utf8 = raw_publish(b"devices/+/ota", b"wild"), raw_publish(b"devices/\xff\xfe", b"bad")
    f.feed(CONNECT + wild + raw_publish(b"devices/#", b"wild") + bad_utf8 + publish("devices/d1/ota", b"after"))
    assert [r[:2] for r in log.records] == [("devices/d1/ota", b"after")]


def test_a_stream_that_does_not_open_with_connect_is_ignored() -> None:
    f, log, _ = framer()
    f.feed(publish("devices/d1/ota", b"first") + CONNECT + publish("devices/d1/ota", b"second"))
    assert log.records == []


def test_a_remaining_length_of_five_bytes_ends_the_framing() -> None:
    f, log, _ = framer()
    f.feed(CONNECT + bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) + publish("devices/d1/ota", b"x"))
    assert log.records == []


# --- through the running broker ----------------------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["plain", "tls"])
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tls=request.param) as b:
        yield b


def client(broker: EmbeddedBroker) -> mqtt.Client:
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="receipts-test")
    if broker.url.startswith("mqtts://"):
        paho.tls_set_context(ssl.create_default_context(cadata=broker.ca_pem))
    connected = threading.Event()
    paho.on_connect = lambda *_: connected.set()
    paho.connect(broker.host, broker.port)
    paho.loop_start()
    assert connected.wait(WAIT)
    return paho


def test_the_broker_stamps_each_publish_before_its_puback(broker: EmbeddedBroker) -> None:
    paho = client(broker)
    try:
        before = time.monotonic()
        sent = []
        for i, qos in zip(range(6), itertools.cycle([0, 1]), strict=False):
            info = paho.publish(f"devices/d1/q{qos}", f"m{i}".encode(), qos=qos, retain=i == 5)
            info.wait_for_publish(WAIT)
            sent.append((f"devices/d1/q{qos}", f"m{i}".encode(), time.monotonic()))
        deadline = time.monotonic() + WAIT  # QoS 0 has no PUBACK: wait for the last one's receipt
        reader = broker.receipts.reader()
        stamps = []
        for topic, payload, acked in sent:
            while (t := reader.time_of(topic, payload)) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert t is not None, (topic, payload)
            stamps.append(t)
            if topic.endswith("q1"):
                assert t <= acked  # QoS 1: stamped before publish() saw the PUBACK
        assert before <= stamps[0] and stamps == sorted(stamps)
        assert reader.time_of("devices/d1/q1", b"m1") is None  # each receipt is taken once
    finally:
        paho.disconnect()
        paho.loop_stop()
