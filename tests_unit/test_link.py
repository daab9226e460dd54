"""DeviceLink against a real amqtt broker, with a second DeviceLink standing in for the device."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.broker import AccessPolicy, EmbeddedBroker
from harness.link import CallbackError, DeviceLink, LinkError, LinkTimeout, OtaFailed
from harness.protocol import Message, ProtocolChecker, ProtocolViolation, parse_json, parse_topic

pytestmark = pytest.mark.usefixtures("no_warnings_logged")

pytestmark = pytest.mark.usefixtures("no_warnings_logged")

WAIT = 5.0


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def link(broker: EmbeddedBroker) -> Iterator[DeviceLink]:
    with DeviceLink(broker.url) as lnk:
        yield lnk


@pytest.fixture
def device(broker: EmbeddedBroker) -> Iterator[DeviceLink]:
    """Plays the firmware: publishes device topics (not strict, it records what the operator sends)."""
    with DeviceLink(broker.url, strict=False) as dev:
        yield dev


def ota(device: DeviceLink, device_id: str, **event: Any) -> None:
    device.publish(f"devices/{device_id}/ota", json.dumps(event))


# --- sending and recording ----------------------------------------------------------------------------------


def test_send_reaches_the_device_topic(link: DeviceLink, device: DeviceLink) -> None:
    command = {"type": "ota", "id": "r1", "url": "http://h/fw.bin"}
    link.send("d1", command)
    got = device.wait_for(lambda m: m.kind == "cmd", WAIT, "the command")
    assert (got.topic, got.device_id, got.data, got.retain) == ("devices/d1/cmd", "d1", command, False)
    link.broadcast({"type": "check"})
    got = device.wait_for(lambda m: m.device_id == "all", WAIT, "the broadcast", since=got.index + 1)
    assert (got.topic, got.data) == ("devices/all/cmd", {"type": "check"})


def test_every_message_is_recorded_with_its_fields(link: DeviceLink, device: DeviceLink) -> None:
    before = time.monotonic()
    device.publish("devices/d1/online", "online", retain=True)
    device.publish("devices/d1/raw", b"\xff\x00 not json")
    online = link.wait_for(lambda m: m.kind == "online", WAIT)
    raw = link.wait_for(lambda m: m.kind == "raw", WAIT)
    assert online.payload == b"online" and online.data is None and online.device_id == "d1"
    assert raw.payload == b"\xff\x00 not json" and raw.data is None
    assert before <= online.t <= raw.t <= time.monotonic()
    assert link.messages[online.index] == online and raw.index > online.index


def test_messages_carry_when_the_embedded_broker_read_them(broker: EmbeddedBroker, device: DeviceLink) -> None:
    """amqtt acknowledges a PUBLISH before it forwards it, so a publisher can act on the PUBACK (a device
    restarts) before a subscriber has the message. `t_published` is stamped as the broker reads the packet:
    before the PUBACK reaches the publisher, and matched to each message in order, repeats included."""
    with DeviceLink(broker.url, receipts=broker.receipts) as link:
        acked = []
        for i in range(20):
            ota(device, "vb1", id="r1", seq=i + 1, state="accepted" if i == 0 else "downloading",
                **({} if i == 0 else {"bytes": i, "total": 100, "percent": i}))
            acked.append(time.monotonic())  # publish() returned: the PUBACK is in
        link.wait_for(lambda m: m.kind == "ota" and m.data["seq"] == 20, timeout=WAIT)
        events = [m for m in link.messages if m.kind == "ota"]
        assert [m.data["seq"] for m in events] == list(range(1, 21))
        assert all(m.t_published <= ack for m, ack in zip(events, acked, strict=True)), \
            [(m.t_published, ack) for m, ack in zip(events, acked, strict=True)]
        assert all(a.t_published < b.t_published <= b.t for a, b in itertools.pairwise(events))
    with DeviceLink(broker.url) as plain:  # no receipts: the link's own reception time
        device.publish("devices/vb1/status", "{}", retain=True)
        message = plain.wait_for(lambda m: m.kind == "status", timeout=WAIT)
        assert message.t_published == message.t


def test_retained_status_is_delivered_to_a_late_link(broker: EmbeddedBroker, device: DeviceLink) -> None:
    device.publish("devices/d1/status", json.dumps({"version": "1.0.0"}), retain=True)
    device.wait_for(lambda m: m.kind == "status", WAIT)  # the broker has it
    with DeviceLink(broker.url) as late:
        status = late.wait_for(lambda m: m.kind == "status", WAIT)
        assert status.retain and status.data == {"version": "1.0.0"}
        assert late.latest_status("d1") == {"version": "1.0.0"}


def test_custom_prefix(broker: EmbeddedBroker) -> None:
    with DeviceLink(broker.url, prefix="lab/devices") as link, DeviceLink(broker.url, prefix="lab/devices") as dev:
        link.send("d7", {"type": "status"})
        got = dev.wait_for(lambda m: m.kind == "cmd", WAIT)
        assert (got.topic, got.device_id) == ("lab/devices/d7/cmd", "d7")


@pytest.mark.parametrize(("topic", "expected"), [
    ("devices/d1/ota", ("d1", "ota")), ("devices/d1", ("d1", None)), ("devices/d1/a/b", ("d1", "a/b")),
    ("other/d1/ota", (None, None)), ("devicesX/d1/ota", (None, None)),
])
def test_parse_topic(topic: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_topic(topic, "devices") == expected


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"a": [1]}', {"a": [1]}), (b"{type: ota", None), (b'"\xff"', None),
    (b"[" * 100_000 + b"]" * 100_000, None),  # a fuzzing test sends this to a device; the link records it
])
def test_parse_json(payload: bytes, expected: Any) -> None:
    assert parse_json(payload) == expected


# --- waiting ------------------------------------------------------------------------------------------------


def test_wait_for_sees_earlier_messages_unless_told_otherwise(link: DeviceLink, device: DeviceLink) -> None:
    device.publish("devices/d1/status", '{"n": 1}')
    first = link.wait_for(lambda m: m.kind == "status", WAIT)
    cursor = link.cursor()
    assert link.wait_for(lambda m: m.kind == "status", WAIT) == first  # scans from 0 by default
    device.publish("devices/d1/status", '{"n": 2}')
    assert link.wait_for(lambda m: m.kind == "status", WAIT, since=cursor).data == {"n": 2}


def test_wait_for_is_woken_by_a_message_not_by_polling(link: DeviceLink, device: DeviceLink) -> None:
    def publish_later() -> None:
        device.wait_for(lambda m: m.kind == "cmd", WAIT)  # the cue, sent after the wait started
        device.publish("devices/d1/status", '{"late": true}')

    thread = threading.Thread(target=publish_later)
    thread.start()
    link.send("d1", {"type": "status"})
    assert link.wait_status("d1", lambda s: s.get("late") is True, WAIT) == {"late": True}
    thread.join()


def test_wait_for_timeout_says_what_and_shows_the_transcript(link: DeviceLink, device: DeviceLink) -> None:
    ota(device, "d1", id="r1", seq=1, state="accepted")
    link.wait_for(lambda m: m.kind == "ota", WAIT)
    started = time.monotonic()
    with pytest.raises(LinkTimeout) as raised:
        link.wait_ota("d1", "r1", "succeeded", timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1.0
    text = str(raised.value)
    assert "OTA event state='succeeded' id='r1' from 'd1'" in text
    assert 'devices/d1/ota {"id": "r1", "seq": 1, "state": "accepted"}' in text
    assert isinstance(raised.value, TimeoutError) and isinstance(raised.value, AssertionError)


def test_ota_helpers(link: DeviceLink, device: DeviceLink) -> None:
    ota(device, "d1", id="r1", seq=1, state="accepted")
    ota(device, "d1", id="r1", seq=2, state="downloading", bytes=10, total=100, percent=10)
    ota(device, "d2", id="r1", seq=1, state="accepted")  # another device
    ota(device, "d1", id="r0", seq=3, state="failed", reason="busy")  # another request
    event = link.wait_ota("d1", "r1", "downloading", WAIT)
    assert event["bytes"] == 10
    link.wait_ota("d1", "r0", "failed", WAIT)
    assert [e["state"] for e in link.ota_events("d1", "r1")] == ["accepted", "downloading"]
    assert len(link.ota_events("d1")) == 3


def test_wait_ota_fails_fast_on_a_failure_state(link: DeviceLink, device: DeviceLink) -> None:
    ota(device, "d1", id="r1", seq=1, state="failed", reason="sha256_mismatch")
    started = time.monotonic()
    with pytest.raises(OtaFailed, match="sha256_mismatch"):
        link.wait_ota("d1", "r1", "succeeded", WAIT, fail_on={"failed", "rejected"})
    assert time.monotonic() - started < 1.0


def test_status_helpers(link: DeviceLink, device: DeviceLink) -> None:
    assert link.latest_status("d1") is None
    device.publish("devices/d1/status", json.dumps({"version": "1.0.0", "ota_state": "valid"}))
    device.publish("devices/d1/status", json.dumps({"version": "2.0.0", "ota_state": "pending_verify"}))
    status = link.wait_status("d1", lambda s: s["version"] == "2.0.0", WAIT)
    assert status["ota_state"] == "pending_verify"
    assert link.latest_status("d1") == status
    with pytest.raises(LinkTimeout, match="status from 'd1' matching"):
        link.wait_status("d1", lambda s: s["version"] == "3.0.0", timeout=0.05)


def test_wait_connection_across_a_broker_restart(broker: EmbeddedBroker, link: DeviceLink) -> None:
    assert link.connected
    broker.stop()
    link.wait_connection(False, WAIT)
    with pytest.raises(LinkError, match="not connected"):
        link.send("d1", {"type": "status"})
    broker.start()
    link.wait_connection(True, WAIT)  # resubscribed too: on_connect subscribes again
    with DeviceLink(broker.url, strict=False) as device:
        device.publish("devices/d1/status", "{}")
        link.wait_status("d1", timeout=WAIT)
    link.send("d1", {"type": "status"})


# --- protocol contract ------------------------------------------------------------------------------------


def message(topic: str, payload: Any, index: int = 0) -> Message:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    device_id, _, kind = topic.removeprefix("devices/").partition("/")
    data = payload if not isinstance(payload, bytes) else None
    return Message(index, topic, raw, data, False, 0.0, device_id, kind)


GOOD_EVENTS = [
    {"id": "r1", "seq": 1, "state": "accepted"},
    {"id": "r1", "seq": 2, "state": "downloading", "bytes": 0, "total": 10, "percent": 0},
    {"id": "r1", "seq": 3, "state": "failed", "reason": "http_status", "http_status": 404},
    {"id": "r1", "seq": 4, "state": "rejected", "reason": "same_version"},
    {"id": "r1", "seq": 5, "state": "rolled_back"},
]


def test_checker_accepts_a_good_sequence_and_a_reboot() -> None:
    checker = ProtocolChecker()
    for event in [*GOOD_EVENTS, {"id": "r1", "seq": 1, "state": "succeeded"}, {"id": "r2", "seq": 2,
                                                                              "state": "accepted"}]:
        assert checker.check(message("devices/d1/ota", event)) == []
    assert checker.check(message("devices/d1/online", b"offline")) == []
    assert checker.check(message("devices/d1/status", {"version": "1"})) == []
    assert checker.check(message("devices/d1/cmd", b"anything")) == []


@pytest.mark.parametrize(("event", "problem"), [
    ({"seq": 1, "state": "accepted"}, "'id'"),
    ({"id": "r1", "seq": "1", "state": "accepted"}, "integer 'seq'"),
    ({"id": "r1", "seq": True, "state": "accepted"}, "integer 'seq'"),
    ({"id": "r1", "seq": 1, "state": "done"}, "state 'done'"),
    ({"id": "r1", "seq": 1, "state": "downloading", "bytes": 1, "total": 2}, "integer percent"),
    ({"id": "r1", "seq": 1, "state": "failed"}, "'reason'"),
    ({"id": "r1", "seq": 1, "state": "rejected", "reason": "nope"}, "'reason'"),
    ({"id": "r1", "seq": 1, "state": "failed", "reason": "http_status"}, "integer 'http_status'"),
    ([1, 2], "not a JSON object"),
])
def test_checker_flags_malformed_events(event: Any, problem: str) -> None:
    problems = ProtocolChecker().check(message("devices/d1/ota", event))
    assert len(problems) == 1 and problem in problems[0], problems


def test_checker_flags_seq_going_backwards_within_a_boot() -> None:
    checker = ProtocolChecker()
    assert checker.check(message("devices/d1/ota", {"id": "r", "seq": 5, "state": "accepted"})) == []
    assert checker.check(message("devices/d2/ota", {"id": "r", "seq": 2, "state": "accepted"})) == []  # own count
    assert checker.check(message("devices/d1/ota", {"id": "r", "seq": 5, "state": "verifying"})) == [
        "seq went from 5 to 5 (must increase within a boot)"]
    assert checker.check(message("devices/d1/ota", {"id": "r", "seq": 3, "state": "verifying"}))
    assert checker.check(message("devices/d1/online", b"maybe"))


def test_checker_takes_the_same_event_again_as_a_qos1_redelivery() -> None:
    """A device whose PUBACK was lost publishes the event again after reconnecting: the same seq with the same
    payload is a redelivery, not a step back; the same seq with another payload still is one."""
    checker = ProtocolChecker()
    event = {"id": "r", "seq": 2, "state": "downloading", "bytes": 1, "total": 2, "percent": 50}
    assert checker.check(message("devices/d1/ota", event)) == []
    assert checker.check(message("devices/d1/ota", event)) == []
    assert checker.check(message("devices/d1/ota", {"id": "r", "seq": 3, "state": "verifying"})) == []
    assert checker.check(message("devices/d1/ota", {**event, "seq": 3})) == [
        "seq went from 3 to 3 (must increase within a boot)"]


def test_checker_compares_nothing_across_a_gap_it_was_told_of() -> None:
    """An observer that was away may have missed a reboot's first events: after forget_sequences() a lower seq
    is no step back; it is again within the new stretch."""
    checker = ProtocolChecker()
    assert checker.check(message("devices/d1/ota", {"id": "r", "seq": 3, "state": "downloading", "bytes": 1,
                                                    "total": 2, "percent": 50})) == []
    checker.forget_sequences()
    assert checker.check(message("devices/d1/ota", {"id": "m", "seq": 2, "state": "accepted"})) == []
    assert checker.check(message("devices/d1/ota", {"id": "m", "seq": 2, "state": "verifying"})) == [
        "seq went from 2 to 2 (must increase within a boot)"]


def test_a_reboot_missed_while_the_link_was_down_is_no_violation(broker: EmbeddedBroker, link: DeviceLink) -> None:
    """The device rebooted and sent its seq 1 while the test's link was away (the broker restarted): the link
    sees seq 3 of the old boot, then seq 2 of the new one, and takes it for what it is."""
    with DeviceLink(broker.url, strict=False) as device:
        ota(device, "d1", id="up", seq=3, state="downloading", bytes=1, total=2, percent=50)
        link.wait_ota("d1", "up", "downloading", WAIT)
    broker.stop()
    link.wait_connection(False, WAIT)
    broker.start()
    link.wait_connection(True, WAIT)
    with DeviceLink(broker.url, strict=False) as device:
        ota(device, "d1", id="m", seq=2, state="accepted")
        assert link.wait_ota("d1", "m", "accepted", WAIT)["seq"] == 2
    link.check_protocol()


def test_violation_raises_from_wait_for_with_the_message(link: DeviceLink, device: DeviceLink) -> None:
    ota(device, "d1", id="r1", seq=2, state="accepted")
    ota(device, "d1", id="r1", seq=2, state="downloading", bytes=1, total=2, percent=50)
    with pytest.raises(ProtocolViolation) as raised:
        link.wait_ota("d1", "r1", "downloading", WAIT)
    assert "seq went from 2 to 2" in str(raised.value)
    assert raised.value.message.topic == "devices/d1/ota" and raised.value.message.data["state"] == "downloading"
    # raised once from wait_for; check_protocol keeps reporting it
    assert link.wait_ota("d1", "r1", "downloading", WAIT)["percent"] == 50
    with pytest.raises(ProtocolViolation, match="seq went from 2 to 2"):
        link.check_protocol()


def test_non_strict_link_only_records_violations(broker: EmbeddedBroker, device: DeviceLink) -> None:
    with DeviceLink(broker.url, strict=False) as link:
        ota(device, "d1", id="r1", seq=1, state="bogus")
        ota(device, "d1", id="r1", seq=2, state="failed")
        link.wait_for(lambda m: isinstance(m.data, dict) and m.data.get("seq") == 2, WAIT)
        bogus_state = ("OTA state 'bogus' is not one of ['accepted', 'cancelled', 'downloading', 'failed', "
                       "'rebooting', 'rejected', 'rolled_back', 'succeeded', 'verifying']")
        assert [v.problem for v in link.violations] == [
            bogus_state, "'failed' event needs a 'reason' from the contract, got None"]
        with pytest.raises(ProtocolViolation, match=r"(?s)bogus.*1 more.*#\d+ 'failed' event needs a 'reason'"):
            link.check_protocol()


# --- failures inside callbacks -----------------------------------------------------------------------------


def test_callback_exception_surfaces_in_the_test_thread(link: DeviceLink, device: DeviceLink) -> None:
    def listener(message: Message) -> None:
        if message.kind == "status":
            raise KeyError("boom in a listener")

    link.add_listener(listener)
    device.publish("devices/d1/status", "{}")
    with pytest.raises(CallbackError, match="boom in a listener") as raised:
        link.wait_for(lambda m: False, WAIT, "anything")
    assert isinstance(raised.value.__cause__, KeyError)
    # paho's thread survived: later messages still arrive
    device.publish("devices/d1/ota", json.dumps({"id": "r9", "seq": 1, "state": "accepted"}))
    assert link.wait_ota("d1", "r9", "accepted", WAIT)["id"] == "r9"


def test_publishing_from_a_callback_is_refused_not_deadlocked(link: DeviceLink, device: DeviceLink) -> None:
    link.add_listener(lambda m: link.send("d1", {"type": "status"}) if m.kind == "status" else None)
    device.publish("devices/d1/status", "{}")
    with pytest.raises(CallbackError, match="paho callback"):
        link.wait_for(lambda m: False, WAIT)


# --- connecting ---------------------------------------------------------------------------------------------


def test_unreachable_broker_fails_fast() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        with pytest.raises(LinkError, match=rf"cannot connect to MQTT broker mqtt://127\.0\.0\.1:{port}"):
            DeviceLink(f"mqtt://127.0.0.1:{port}").connect()


def test_a_password_in_the_url_stays_out_of_errors() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        with pytest.raises(LinkError, match=rf"mqtt://127\.0\.0\.1:{port}") as raised:
            DeviceLink(f"mqtt://op:s3cret@127.0.0.1:{port}").connect()
    assert "s3cret" not in str(raised.value)


def test_credentials_and_acl() -> None:
    policy = AccessPolicy(operator_username="op", operator_password="secret", devices={"d1": "p1"})
    with EmbeddedBroker(auth=policy) as broker:
        with pytest.raises(LinkError, match="refused the connection"):
            DeviceLink(broker.url, username="op", password="wrong").connect()
        with pytest.raises(LinkError, match=r"refused the subscription to devices/\+/\+"):
            DeviceLink(broker.url, username="d1", password="p1").connect()  # a device may not watch all
        userinfo_url = broker.url.replace("mqtt://", "mqtt://op:secret@")
        with DeviceLink(userinfo_url) as link:
            link.send("d1", {"type": "status"})
            link.wait_for(lambda m: m.kind == "cmd", WAIT)


def test_mqtts_with_the_broker_ca() -> None:
    with EmbeddedBroker(tls=True) as broker, DeviceLink(broker.url, ca_pem=broker.ca_pem) as link:
        link.send("d1", {"type": "status"})
        assert link.wait_for(lambda m: m.kind == "cmd", WAIT).data == {"type": "status"}


def test_close_leaves_no_thread(broker: EmbeddedBroker) -> None:
    before = threading.active_count()
    for _ in range(3):
        with DeviceLink(broker.url) as link:
            assert link.connected
    assert threading.active_count() == before
