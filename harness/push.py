"""The pusher: an image to a device through the broker (docs/protocol.md, "`push`: an image through the broker").

`Pusher.push(image)` sends the `push` command, waits for the device's first acknowledgement on
`<prefix>/<id>/push_ack`, then publishes the image in chunks of `chunk` bytes (16 KiB by default) on
`<prefix>/<id>/push/<transfer>/<offset>`, never more than `window` chunks beyond the last acknowledged offset. The
device writes only the chunk it expects and acknowledges its next offset after each one; an acknowledgement of a
chunk it ignored past that offset (a gap), or none for `ack_timeout` seconds, sends the image again from that
offset (go-back-N). It returns when the device says `rebooting` or another outcome. A command the device
missed because it was not connected yet is sent again when its live `online` arrives.
`PushFaults` makes it misbehave as the issue's fault plan asks (drop, duplicate, reorder, stall, a wrong hash, a
size past the slot), and lose acknowledgements.
"""

from __future__ import annotations

import functools
import hashlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import paho.mqtt.client as mqtt

from harness import commands
from harness.mqtt_client import LinkError, new_client
from harness.net import format_url, parse_mqtt_url

# The device's limits (docs/protocol.md): window 1..16 chunks of 512..16384 bytes, window x chunk <= 64 KiB.
WINDOW_MAX = 16
CHUNK_MIN, CHUNK_MAX = 512, 16384
IN_FLIGHT_MAX = 65536
TRANSFER_ID_MAX = 47  # the id names the chunks' topics: one topic level, without wildcards
TIMEOUT_S_MAX = 86400
DEFAULT_WINDOW = 4
# 16 KiB chunks: a quarter of the messages, acknowledgements and broker hops of the protocol's 4 KiB default
# for the same image (docs/performance.md, "Push").
DEFAULT_CHUNK = 16384
DEFAULT_QOS = 1
OUTCOMES = frozenset({"rebooting", "failed", "rejected", "cancelled"})
VERDICTS = frozenset({"succeeded", "rolled_back"})  # after `rebooting`: the new firmware's self-test decided
OFFLINE_GRACE_S = 1.0  # after an `offline` flag, how long a device that is coming back may take to say `online`
RESEND_GRACE_S = 2.0  # after the command was sent again, how long its answer may take, whatever the start timeout


def check_transfer_id(transfer_id: str) -> None:
    """ValueError unless the device would take `transfer_id` (docs/protocol.md, `push`): it names the chunks'
    topics, so a longer one is refused and one with /, + or # could never be subscribed to as one level."""
    if len(transfer_id) > TRANSFER_ID_MAX or any(c in transfer_id for c in "/+#"):
        raise ValueError(f"transfer id {transfer_id!r}: at most {TRANSFER_ID_MAX} characters, without /, + or #")


class PushError(RuntimeError):
    """The push could not run: no broker, no answer from the device."""


_Ack = tuple[int, int | None]  # an acknowledgement: the device's `next`, and the offset it `ignored` if any


@dataclass(frozen=True)
class PushFaults:
    """How the pusher misbehaves (each off by default)."""

    drop: frozenset[int] = frozenset()  # chunk indexes left out the first time they are due
    duplicate: bool = False  # every chunk published twice
    reorder: bool = False  # each pair of chunks published the second one first (the first time)
    stall_at: int | None = None  # stop sending at this byte offset until resume() (else the idle deadline ends it)
    lose_acks: int = 0  # the device's first acknowledgements after its first one never reach the pusher
    sha256: str | None = None  # announce this SHA-256 instead of the image's
    size: int | None = None  # announce this size instead of the image's


@dataclass
class PushResult:
    """How a push ended: the device's final event for it, and what the pusher sent."""

    state: str  # "rebooting" on success, else "failed", "rejected" or "cancelled"
    event: dict[str, Any]
    offsets: list[int] = field(default_factory=list)  # every chunk published, by offset, in order (re-sends too)
    rewinds: int = 0  # times the pusher went back to the device's `next` because the device said so
    stall_rewinds: int = 0  # times it went back after ack_timeout with no progress
    acks: list[int] = field(default_factory=list)  # every acknowledged `next`, in order
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "rebooting"

    @property
    def chunks_sent(self) -> int:
        """Publishes of chunks, re-sends included."""
        return len(self.offsets)

    def describe(self) -> str:
        reason = self.event.get("reason")
        detail = self.event.get("detail")
        return f"{self.state}" + (f"/{reason}" if reason else "") + (f": {detail}" if detail else "")


@dataclass
class _Transfer:
    """What the paho thread has heard about one transfer (guarded by Pusher._changed)."""

    transfer_id: str
    start: str = ""  # the push command, as published
    answer_deadline: float = 0.0  # the start timeout's end: the command is sent again only before it
    awaiting_answer: bool = True  # push() waits for the device's first answer (the only time it is sent again)
    resent_at: float | None = None  # when it was last sent again (the device or the pusher connected)
    acks: list[_Ack] = field(default_factory=list)  # (next, ignored) in order
    window: int | None = None
    outcome: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = None  # after a `rebooting` outcome: `succeeded` or `rolled_back`
    offline: bool = False  # the device's last will came: it lost power, crashed or its link dropped


@dataclass
class _Sender:
    """The go-back-N state of the test thread."""

    size: int
    window: int
    acked: int = 0  # the device's last `next`
    sent_upto: int = 0  # the next offset to publish
    last_rewind: int | None = None
    seen_acks: int = 0  # acks consumed from _Transfer.acks
    last_progress_at: float = field(default_factory=time.monotonic)  # when `next` last advanced
    first_time: set[int] = field(default_factory=set)  # chunk indexes sent at least once
    offsets: list[int] = field(default_factory=list)  # each chunk published, in order
    rewinds: int = 0
    stall_rewinds: int = 0
    lost_acks: int = 0  # acknowledgements the fault plan took away


def _answers_a_repeated_start(transfer: _Transfer, event: dict[str, Any]) -> bool:
    """`busy` for the command sent again, from a device that acknowledges this transfer already: about the copy,
    not the push (the reference firmware acknowledges such a copy instead; firmware without that rule says busy)."""
    return transfer.resent_at is not None and bool(transfer.acks) and event.get("state") == "rejected" and \
        event.get("reason") == "busy"


class Pusher:
    """A paho client that pushes images to one device (see the module docstring)."""

    def __init__(self, url: str, device_id: str, prefix: str = "devices", qos: int = DEFAULT_QOS,
                 window: int = DEFAULT_WINDOW, chunk: int = DEFAULT_CHUNK, username: str | None = None,
                 password: str | None = None, ca_pem: str | None = None, ack_timeout: float = 2.0,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
        """`ack_timeout`: with chunks in flight and no acknowledgement for this long, send again from the last
        acknowledged offset. `on_progress(acked, size)` is called on the caller's thread as the device acks."""
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos}")
        if not 1 <= window <= WINDOW_MAX:
            raise ValueError(f"window must be 1..{WINDOW_MAX} chunks, not {window}")
        if not CHUNK_MIN <= chunk <= CHUNK_MAX:
            raise ValueError(f"chunk must be {CHUNK_MIN}..{CHUNK_MAX} bytes, not {chunk}")
        if window * chunk > IN_FLIGHT_MAX:
            raise ValueError(f"window x chunk is {window * chunk} bytes, more than the device holds ({IN_FLIGHT_MAX}); "
                             f"use a window of at most {IN_FLIGHT_MAX // chunk} for {chunk}-byte chunks")
        self.url = url
        self.device_id = device_id
        self.prefix = prefix.rstrip("/")
        self.qos = qos
        self.window = window
        self.chunk = chunk
        self.ack_timeout = ack_timeout
        self.on_progress = on_progress
        endpoint = parse_mqtt_url(url)
        self._endpoint = endpoint
        self.shown_url = format_url(endpoint.scheme, endpoint.host, endpoint.port)  # for messages: no password
        self._client = new_client(endpoint, f"harness-pusher-{uuid.uuid4().hex[:8]}",
                                  username or endpoint.username, password or endpoint.password, ca_pem)
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(64)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.reconnect_delay_set(0.1, 0.5)  # back soon after a broker restart, as the device is
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._connack: mqtt.ReasonCode | None = None  # the broker's answer to CONNECT, once it came
        self._transfer: _Transfer | None = None
        self._presence: bytes | None = None  # the device's latest online flag (retained or live), once one came
        self._resumed = False  # resume() lifted the fault plan's stall

    # --- lifecycle -----------------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> Self:
        """Connect and subscribe to the device's acknowledgements and OTA events."""
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise PushError(f"cannot connect to the MQTT broker {self.shown_url}: {exc}; is it running, and the URL "
                            "right (mqtt://host:port)?") from exc
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            if self._connack is None:
                raise PushError(f"{self.shown_url} accepted a TCP connection but sent no MQTT CONNACK within "
                                f"{timeout} s: is it an MQTT broker, and the port its MQTT listener's (mqtts:// for a "
                                "TLS one)?")
            if self._connack.is_failure:
                raise PushError(f"the broker {self.shown_url} refused the pusher's connection: {self._connack} "
                                "(check the user name and password in the URL)")
            raise PushError(f"the broker {self.shown_url} did not accept the pusher's subscription within {timeout} s "
                            "(check its access rules for the pusher's user)")
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def resume(self) -> None:
        """Lift the fault plan's stall: the running push goes on from where it stopped (any thread)."""
        with self._changed:
            self._resumed = True
            self._changed.notify_all()

    def cancel(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Cancel the push that push() was running (after it was interrupted: Ctrl-C): the device's outcome for
        it (`cancelled`, or how it had ended already), or None if none came within `timeout` seconds."""
        with self._changed:
            transfer = self._transfer
        if transfer is None:
            return None
        self._publish(self.topic("cmd"), json.dumps(commands.cancel(transfer.transfer_id)), qos=1)
        with self._changed:
            self._changed.wait_for(lambda: transfer.outcome is not None, timeout)
            return transfer.outcome

    def wait_verdict(self, timeout: float) -> dict[str, Any] | None:
        """After a push that ended `rebooting`: the event that says how the new firmware's self-test went
        (`succeeded`, sent by the new firmware, or `rolled_back`, by the old one), or None if none came within
        `timeout` seconds. The pusher stays connected to the broker while the device reboots."""
        with self._changed:
            transfer = self._transfer
            if transfer is None:
                return None
            self._changed.wait_for(lambda: transfer.verdict is not None, timeout)
            return transfer.verdict

    def answered(self) -> bool:
        """Whether the device answered the push push() was running (an acknowledgement or an event)."""
        with self._changed:
            return self._transfer is not None and self._answered()

    def topic(self, kind: str) -> str:
        return f"{self.prefix}/{self.device_id}/{kind}"

    # --- the push ------------------------------------------------------------------------------------

    def push(self, image: bytes, transfer_id: str = "push", version: str | None = None, force: bool = False,
             timeout_s: int = 300, idle_timeout_s: int = 30, faults: PushFaults | None = None,
             start_timeout: float = 10.0) -> PushResult:
        """Push `image`; returns how the device ended it (raises PushError only when it never answered)."""
        check_transfer_id(transfer_id)
        faults = faults or PushFaults()
        started = time.monotonic()
        start = json.dumps(self._command(image, transfer_id, version, force, timeout_s, idle_timeout_s, faults))
        with self._changed:
            self._transfer = _Transfer(transfer_id, start=start, answer_deadline=started + start_timeout)
            self._resumed = False
        self._publish(self.topic("cmd"), start, qos=1)
        sender = _Sender(size=faults.size or len(image), window=self.window)
        result = self._first_answer(transfer_id, sender, start_timeout)
        if result is None and self.on_progress is not None:
            self.on_progress(sender.acked, sender.size)  # the device said where to start
        if result is None:
            result = self._stream(image, sender, faults, deadline=started + timeout_s + 15)
        result.duration_s = time.monotonic() - started
        return result

    def _command(self, image: bytes, transfer_id: str, version: str | None, force: bool, timeout_s: int,
                 idle_timeout_s: int, faults: PushFaults) -> dict[str, Any]:
        command: dict[str, Any] = {
            "type": "push", "id": transfer_id, "size": faults.size or len(image),
            "sha256": faults.sha256 or hashlib.sha256(image).hexdigest(), "force": force, "window": self.window,
            "chunk": self.chunk, "timeout_s": timeout_s, "idle_timeout_s": idle_timeout_s,
        }
        if version is not None:
            command["version"] = version
        return command

    def _first_answer(self, transfer_id: str, sender: _Sender, timeout: float) -> PushResult | None:
        """None once the device acknowledged the start; a result when it refused it at once."""
        with self._changed:
            try:
                answered = self._wait_first_answer()
            finally:
                self._state().awaiting_answer = False  # decided: a device that comes online later gets no command
            state = self._state()
            if self._presence == b"offline" and not self._answered():
                raise PushError(f"device {self.device_id} is offline: its online flag on {self.topic('online')} "
                                "says so (it lost power, crashed or its link dropped, and has not reconnected); "
                                "start it, wait for it to publish `online`, and push again")
            if state.outcome is not None and not state.acks:
                return self._result(state, _Sender(size=0, window=self.window))
            sender.seen_acks = len(state.acks)
            sender.acked = sender.sent_upto = state.acks[-1][0] if state.acks else 0
        if not answered:
            if state.resent_at is not None:  # a copy that reached the device late must not start a push nobody feeds
                self._publish(self.topic("cmd"), json.dumps(commands.cancel(transfer_id)), qos=1)
            never = "" if self._presence is not None else (
                f" The broker holds no online flag on {self.topic('online')}, so no device of that id has "
                "connected to it under that prefix (check --device and --prefix).")
            raise PushError(f"device {self.device_id} did not answer the push {transfer_id!r} within {timeout} s: "
                            f"is it online and connected to {self.shown_url} under the prefix {self.prefix!r}?"
                            f"{never}")
        return None

    def _answered(self) -> bool:
        state = self._state()
        return bool(state.acks) or state.outcome is not None

    def _wait_first_answer(self) -> bool:
        """Until the device answers (True), the start timeout passes (at least RESEND_GRACE_S after the command was
        sent again) or its online flag has said `offline` for OFFLINE_GRACE_S (False): a device coming back subscribes
        to its commands just before it says `online` (lock held)."""
        state = self._state()
        while not self._answered():
            end = state.answer_deadline if state.resent_at is None else max(state.answer_deadline,
                                                                             state.resent_at + RESEND_GRACE_S)
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._presence != b"offline":
                self._changed.wait_for(lambda: self._answered() or self._presence == b"offline", left)
            elif not self._changed.wait_for(lambda: self._answered() or self._presence != b"offline",
                                            min(OFFLINE_GRACE_S, left)):
                return False
        return True

    def _stream(self, image: bytes, sender: _Sender, faults: PushFaults, deadline: float) -> PushResult:
        while True:
            resumed = self._resumed
            self._send_window(image, sender, faults)
            with self._changed:
                self._changed.wait_for(functools.partial(self._news, sender, resumed), self.ack_timeout)
                state = self._state()
                if state.outcome is not None:
                    return self._result(state, sender)
                if state.offline:
                    raise PushError(f"device {self.device_id} went offline during the push at {sender.acked} of "
                                    f"{sender.size} bytes (power lost, a crash or its link dropped); push again "
                                    "once it is back online")
                new_acks = state.acks[sender.seen_acks:]
                sender.seen_acks = len(state.acks)
            self._take_acks(sender, self._lose_acks(new_acks, sender, faults))
            if time.monotonic() > deadline:
                raise PushError(f"device {self.device_id} neither finished nor failed the push within its timeout_s; "
                                "look at its serial console")

    def _news(self, sender: _Sender, resumed: bool) -> bool:
        """Something for the sending loop: an acknowledgement, the outcome, or resume() (lock held)."""
        state = self._state()
        return (len(state.acks) > sender.seen_acks or state.outcome is not None or state.offline
                or self._resumed != resumed)

    def _take_acks(self, sender: _Sender, acks: list[_Ack]) -> None:
        """Go-back-N: to the device's `next` when it ignored a chunk past it (a gap), when it acknowledged again
        of its own accord (after a reconnect), or when `next` has not moved for ack_timeout with chunks out."""
        now = time.monotonic()
        for next_offset, ignored in acks:
            if next_offset > sender.acked:
                sender.acked = next_offset
                sender.sent_upto = max(sender.sent_upto, next_offset)
                sender.last_progress_at = now
                if self.on_progress is not None:
                    self.on_progress(next_offset, sender.size)
            elif ignored is not None and ignored < next_offset:
                continue  # a duplicate: the device has it already
            elif next_offset < sender.sent_upto and sender.last_rewind != next_offset:
                self._rewind(sender, next_offset)
        if sender.sent_upto > sender.acked and now - sender.last_progress_at >= self.ack_timeout:
            self._rewind(sender, sender.acked)  # chunks or their acknowledgements were lost
            sender.rewinds -= 1
            sender.stall_rewinds += 1
            sender.last_progress_at = now

    @staticmethod
    def _lose_acks(acks: list[_Ack], sender: _Sender, faults: PushFaults) -> list[_Ack]:
        """The fault plan's lost acknowledgements: as when the pusher's own connection drops, or a broker loses them."""
        lost = min(len(acks), faults.lose_acks - sender.lost_acks)
        if lost <= 0:
            return acks
        sender.lost_acks += lost
        return acks[lost:]

    def _rewind(self, sender: _Sender, offset: int) -> None:
        sender.sent_upto = offset
        sender.last_rewind = offset
        sender.rewinds += 1

    def _send_window(self, image: bytes, sender: _Sender, faults: PushFaults) -> None:
        limit = min(sender.size, sender.acked + sender.window * self.chunk)
        if faults.stall_at is not None and not self._resumed:
            limit = min(limit, faults.stall_at)
        offsets = list(range(sender.sent_upto, limit, self.chunk))
        if offsets:
            sender.sent_upto = limit
        for offset in self._faulty_order(offsets, sender, faults):
            self._send_chunk(image, offset, sender)

    def _faulty_order(self, offsets: list[int], sender: _Sender, faults: PushFaults) -> list[int]:
        """The offsets to publish now, after the fault plan (which applies to a chunk's first sending only)."""
        fresh = [o for o in offsets if o // self.chunk not in sender.first_time]
        sender.first_time.update(o // self.chunk for o in offsets)
        out = [o for o in offsets if not (o in fresh and o // self.chunk in faults.drop)]
        if faults.reorder:
            for i in range(0, len(out) - 1, 2):
                if out[i] in fresh and out[i + 1] in fresh:
                    out[i], out[i + 1] = out[i + 1], out[i]
        if faults.duplicate:
            out = [o for o in out for _ in (0, 1)]
        return out

    def _send_chunk(self, image: bytes, offset: int, sender: _Sender) -> None:
        transfer = self._state().transfer_id
        self._publish(self.topic(f"push/{transfer}/{offset}"), image[offset:offset + self.chunk], qos=self.qos)
        sender.offsets.append(offset)

    def _publish(self, topic: str, payload: str | bytes, qos: int) -> None:
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # not connected: paho queues it
            raise PushError(f"publishing to {topic} failed: {mqtt.error_string(info.rc)}")

    def _result(self, state: _Transfer, sender: _Sender) -> PushResult:
        assert state.outcome is not None
        result = PushResult(state=state.outcome["state"], event=state.outcome, acks=[n for n, _ in state.acks],
                            offsets=sender.offsets, rewinds=sender.rewinds,
                            stall_rewinds=sender.stall_rewinds)
        if result.ok and self.on_progress is not None:
            self.on_progress(sender.size, sender.size)
        return result

    def _state(self) -> _Transfer:
        if self._transfer is None:
            raise LinkError("no push is running")
        return self._transfer

    # --- paho's thread -------------------------------------------------------------------------------

    def _on_online(self, msg: mqtt.MQTTMessage) -> None:
        """Any `offline` ends the wait for the device's first answer (its session is clean: it would never see the
        command); only a live one (the last will, not the retained one of a subscription) ends a running push.
        A live `online` before the device answered sends the command again: the device has just connected and
        subscribed, so the first one, published while it was not connected, never reached it."""
        with self._changed:
            self._presence = msg.payload
            transfer = self._transfer
            if transfer is not None and not msg.retain:
                if msg.payload == b"offline":
                    transfer.offline = True
                elif msg.payload == b"online":
                    self._send_again()
            self._changed.notify_all()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: mqtt.ReasonCode,
                    _properties: Any) -> None:
        self._connack = reason_code
        if reason_code.is_failure:
            return
        client.subscribe([(self.topic("push_ack"), 1), (self.topic("ota"), 1), (self.topic("online"), 1)])

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: list[mqtt.ReasonCode],
                      _properties: Any) -> None:
        if any(code.is_failure for code in reason_codes):
            return
        if self._subscribed.is_set():  # subscribed again after the pusher's own connection dropped
            self._send_again()
        self._subscribed.set()

    def _send_again(self) -> None:
        """The push command once more, while push() waits for the device's first answer and before the start
        timeout: the first one may not have reached the device (it was not connected yet, or the broker lost it
        with the pusher's connection). A device that had it acknowledges the transfer again (docs/protocol.md)."""
        with self._changed:
            transfer = self._transfer
            if (transfer is not None and transfer.awaiting_answer and not self._answered()
                    and time.monotonic() < transfer.answer_deadline):
                transfer.resent_at = time.monotonic()
                self._client.publish(self.topic("cmd"), transfer.start, qos=1)  # a failure: the wait times out
            self._changed.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # by exact topic: a broker may send more than was subscribed (amqtt 0.12 sent other clients' retained
        # messages to a starting session), and another device's flag is not this one's
        if msg.topic == self.topic("online"):
            self._on_online(msg)
            return
        if msg.topic not in (self.topic("push_ack"), self.topic("ota")):
            return
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return
        with self._changed:
            transfer = self._transfer
            if not isinstance(data, dict) or transfer is None or data.get("id") != transfer.transfer_id:
                return
            if msg.topic == self.topic("push_ack") and isinstance(data.get("next"), int):
                ignored = data.get("ignored")
                transfer.acks.append((data["next"], ignored if isinstance(ignored, int) else None))
                transfer.window = data.get("window")
            elif msg.topic == self.topic("ota") and data.get("state") in OUTCOMES and transfer.outcome is None:
                if _answers_a_repeated_start(transfer, data):
                    return
                transfer.outcome = data
            elif (msg.topic == self.topic("ota") and data.get("state") in VERDICTS and transfer.verdict is None
                  and transfer.outcome is not None and transfer.outcome.get("state") == "rebooting"):
                transfer.verdict = data
            self._changed.notify_all()
