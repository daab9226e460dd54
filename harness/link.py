"""Device link: the harness side of the MQTT protocol (docs/protocol.md; harness.protocol), on paho-mqtt 2.x.

`DeviceLink` subscribes to `<prefix>/+/+`, records every message in order, sends commands, and lets the test
thread wait for messages with a deadline. paho callbacks only record and notify: an assertion there would
kill paho's network thread, so failures (a callback exception, a protocol violation) are stored and raised
from the next wait in the test thread.

`<prefix>/+/+` is every topic of the protocol (docs/protocol.md) but a push's image chunks
(`<prefix>/<id>/push/<transfer>/<offset>`): recording each chunk again doubled the broker's work per chunk
(amqtt forwarded every 16 KiB twice, at QoS 1) and halved a push's speed; the pusher keeps what it sent
(`PushResult.offsets`), and the device's acknowledgements stay in the transcript.

The subscription is QoS 0: the link's session is clean, so a QoS 1 message lost with its connection would never
be sent again either, and on a live connection TCP delivers both alike. What QoS 1 added was the broker's work:
a PUBACK to read and a task waiting for it in amqtt for every message the link records (a quarter of a status
round trip's time through amqtt, docs/performance.md "Event path"). Commands the link sends stay QoS 1. A
mosquitto with its default `max_queued_messages 1000` drops QoS 0 messages to a client once 1,000 packets wait to
be written to it, as it drops QoS 1 ones past 1,000 queued: the harness's own runs with 0 (no limit).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, Self

import paho.mqtt.client as mqtt

from harness import clock
from harness.mqtt_client import LinkError, new_client, publish_all
from harness.net import format_url, parse_mqtt_url
from harness.protocol import (
    OTA_STATES,
    Message,
    ProtocolChecker,
    ProtocolViolation,
    format_messages,
    parse_json,
    parse_topic,
)
from harness.service import undone_on_failure

if TYPE_CHECKING:
    from harness.publish_log import PublishLog  # the link only reads it: no broker needed to run

SHOWN_ON_TIMEOUT = 20


class LinkTimeout(AssertionError, TimeoutError):
    """A wait ran out; the message says what was awaited and what arrived instead."""


class BrokerLost(LinkError):
    """The link lost its broker and could not reconnect within `lost_after`: a wait ends at once with this
    instead of running to its own deadline (the broker stopped or crashed; nothing can arrive)."""


class OtaFailed(AssertionError):
    """wait_ota saw a state listed in `fail_on` before the awaited one."""


class CallbackError(RuntimeError):
    """An exception raised inside a paho callback or a listener, re-raised in the test thread."""


class DeviceLink:
    """paho-mqtt 2.x client (MQTT 3.1.1) that records every message on `<prefix>/+/+` (all but push chunks).

    Use as a context manager or call connect()/close(). Waits take `since`, an index into the transcript
    (see `cursor()`): messages from there on, already received or still to come, are considered.
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        ca_pem: str | bytes | None = None,
        prefix: str = "devices",
        client_id: str | None = None,
        strict: bool = True,
        connect_timeout: float = 5.0,
        reconnect_delay: tuple[float, float] = (0.1, 0.5),  # short: close() waits out a pending backoff
        lost_after: float | None = 3.0,
        receipts: PublishLog | None = None,
    ) -> None:
        """`lost_after`: a wait fails with BrokerLost once the link has been disconnected that long during
        the wait (None: waits run to their deadline whatever the connection does). `receipts`: the embedded
        broker's, so each message also carries when the broker read it (`Message.t_published`)."""
        endpoint = parse_mqtt_url(url)
        self.url = format_url(endpoint.scheme, endpoint.host, endpoint.port)  # for messages: no user or password
        self.prefix = prefix.rstrip("/")
        self.strict = strict
        self._endpoint = endpoint
        self._username = username or endpoint.username
        self._password = password or endpoint.password
        self._ca_pem = ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem
        self._client_id = client_id or f"harness-link-{uuid.uuid4().hex[:8]}"
        self._connect_timeout = connect_timeout
        self._reconnect_delay = reconnect_delay
        self._lost_after = lost_after
        self._receipts = receipts.reader() if receipts is not None else None
        self._down_since: float | None = None  # monotonic time the connection was lost, None while up
        self._checker = ProtocolChecker()
        self._changed = threading.Condition()
        self._messages: list[Message] = []
        self._errors: list[BaseException] = []
        self._violations: list[ProtocolViolation] = []
        self._reported_errors = 0
        self._reported_violations = 0
        self._listeners: list[Callable[[Message], None]] = []
        self._connack: mqtt.ReasonCode | None = None
        self._suback: list[mqtt.ReasonCode] | None = None
        self._network_thread: int | None = None
        self._connected = False
        self._subscribed = False
        self.disconnects = 0
        self._client: mqtt.Client | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    def connect(self) -> Self:
        """Connect and subscribe; returns once the broker acknowledged the subscription."""
        if self._client is not None:
            return self
        client = self._make_client()
        try:
            client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"cannot connect to MQTT broker {self.url}: {exc}") from exc
        self._client = client
        client.loop_start()
        with undone_on_failure(self.close):
            self._wait_subscribed()
        return self

    def close(self) -> None:
        """Disconnect and stop paho's network thread."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()
        # paho closes its wake-up socketpair only in __del__; dropping the callbacks (which reference self)
        # breaks the cycle, so the client is freed, and its sockets closed, right here instead of at some GC
        client.on_connect = client.on_subscribe = client.on_message = client.on_disconnect = None

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def topic_filter(self) -> str:
        """What the link subscribes to: every protocol topic of every device, but push chunks (module docstring)."""
        return f"{self.prefix}/+/+"

    @property
    def connected(self) -> bool:
        """Connected and subscribed: messages published from now on will be recorded."""
        return self._connected and self._subscribed

    def wait_connection(self, connected: bool = True, timeout: float = 10.0) -> None:
        """Wait until the link is (re)connected, or disconnected, e.g. around a broker restart."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.connected == connected, timeout):
                state = "connected" if connected else "disconnected"
                raise LinkTimeout(f"link to {self.url} not {state} within {timeout} s")

    # --- sending -------------------------------------------------------------------------------------

    def send(self, device_id: str, command: dict[str, Any], timeout: float = 5.0) -> None:
        """Publish a command (QoS 1) to `<prefix>/<id>/cmd`; returns once the broker acknowledged it."""
        self.publish(f"{self.prefix}/{device_id}/cmd", json.dumps(command).encode(), timeout=timeout)

    def send_burst(self, device_id: str, commands: list[dict[str, Any]], timeout: float = 30.0) -> None:
        """Publish commands (QoS 1) all in flight at once, as a misbehaving operator script would flood them;
        returns once the broker acknowledged every one. They go out through a second client of the link's
        own (paho fixes the number of messages in flight, 20 by default, when it connects); the link
        records the device's answers as usual."""
        payloads = [json.dumps(command).encode() for command in commands]
        sender = new_client(self._endpoint, f"{self._client_id}-burst", self._username, self._password, self._ca_pem)
        publish_all(sender, self.url, f"{self.prefix}/{device_id}/cmd", payloads, timeout)

    def broadcast(self, command: dict[str, Any], timeout: float = 5.0) -> None:
        """Publish a command to every device (`<prefix>/all/cmd`)."""
        self.send("all", command, timeout)

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> None:
        """Publish and, for QoS >= 1, wait for the broker's acknowledgement. Not from a paho callback."""
        client = self._require_client()
        if threading.get_ident() == self._network_thread:
            raise LinkError("publish() from a paho callback would block paho's network thread")
        if not self._connected:
            # checked first: paho would queue it and deliver it after a reconnect, a ghost command
            raise LinkError(f"cannot publish to {topic}: not connected to {self.url}")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise LinkError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        if qos == 0:
            return
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise LinkError(f"publish to {topic} failed: {exc}") from exc
        if not info.is_published():  # wait_for_publish returns silently on timeout
            raise LinkError(f"publish to {topic} was not acknowledged by {self.url} within {timeout} s")

    # --- the transcript ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self._changed:
            return list(self._messages)

    def cursor(self) -> int:
        """Index of the next message to arrive: pass it as `since` to ignore what came before."""
        with self._changed:
            return len(self._messages)

    @property
    def violations(self) -> list[ProtocolViolation]:
        with self._changed:
            return list(self._violations)

    def add_listener(self, listener: Callable[[Message], None]) -> None:
        """Call `listener(message)` in paho's thread for every message (e.g. a timeline); its exceptions
        are re-raised from the next wait."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Message], None]) -> None:
        """Stop calling a listener added with add_listener (a no-op if it is not there)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def transcript(self) -> str:
        return format_messages(self.messages, time.monotonic())

    # --- waiting -------------------------------------------------------------------------------------

    def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = 10.0, description: str = "a matching message",
        since: int = 0,
    ) -> Message:
        """First message from index `since` on (already received or still to come) matching `predicate`.

        Raises LinkTimeout at the deadline, and first of all any pending callback error or (strict mode)
        protocol violation. `predicate` runs with the transcript locked: keep it quick.
        """
        started = time.monotonic()
        deadline = started + timeout
        position = since
        with self._changed:
            while True:
                self._raise_pending()
                for message in self._messages[position:]:
                    if predicate(message):
                        return message
                position = max(position, len(self._messages))
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    raise LinkTimeout(self._timeout_message(description, timeout, since))
                lost_at = self._lost_at(started)
                if lost_at is not None and now >= lost_at:
                    raise BrokerLost(self._lost_message(description, now))
                self._changed.wait(remaining if lost_at is None else min(remaining, lost_at - now))

    def wait_ota(
        self, device_id: str, request_id: str, state: str, timeout: float = 30.0, since: int = 0,
        fail_on: Collection[str] = (),
    ) -> dict[str, Any]:
        """The payload of the OTA event `state` for `request_id` from `device_id`.

        `fail_on`: states that end the wait at once with OtaFailed (e.g. {"failed", "rejected"} while
        waiting for "succeeded"), so a failed update fails the test now, with its reason, not at timeout.
        """
        if state not in OTA_STATES:
            raise ValueError(f"unknown OTA state {state!r}; one of {sorted(OTA_STATES)}")

        def match(m: Message) -> bool:
            return self._is_ota(m, device_id, request_id) and m.data.get("state") in {state, *fail_on}

        message = self.wait_for(match, timeout, f"OTA event state={state!r} id={request_id!r} from {device_id!r}",
                                since)
        if message.data["state"] != state:
            raise OtaFailed(f"waiting for OTA state {state!r} of {request_id!r} on {device_id!r}, the device "
                            f"reported {message.text}\n" + self.transcript())
        return message.data

    def ota_events(self, device_id: str, request_id: str | None = None) -> list[dict[str, Any]]:
        """Payloads of the OTA events received so far from `device_id` (for one request if given)."""
        return [m.data for m in self.messages if self._is_ota(m, device_id, request_id)]

    def wait_status(
        self, device_id: str, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 10.0,
        since: int = 0, description: str | None = None,
    ) -> dict[str, Any]:
        """The first status payload from `device_id` (from `since` on) for which `predicate` holds."""

        def match(m: Message) -> bool:
            return self._is_status(m, device_id) and (predicate is None or predicate(m.data))

        what = description or f"status from {device_id!r}" + (" matching the predicate" if predicate else "")
        return self.wait_for(match, timeout, what, since).data

    def latest_status(self, device_id: str) -> dict[str, Any] | None:
        for message in reversed(self.messages):
            if self._is_status(message, device_id):
                return message.data
        return None

    def check_protocol(self) -> None:
        """Raise the first protocol violation seen so far; the message lists the others too."""
        with self._changed:
            violations = list(self._violations)
        if len(violations) == 1:
            raise violations[0]
        if violations:
            others = "\n".join(f"  #{v.message.index} {v.problem}" for v in violations[1:])
            raise ProtocolViolation(f"{violations[0].problem}\n(and {len(violations) - 1} more:\n{others})",
                                    violations[0].message)

    # --- internals: waiting --------------------------------------------------------------------------

    def _is_ota(self, m: Message, device_id: str, request_id: str | None) -> bool:
        return (m.device_id == device_id and m.kind == "ota" and isinstance(m.data, dict)
                and (request_id is None or m.data.get("id") == request_id))

    @staticmethod
    def _is_status(m: Message, device_id: str) -> bool:
        return m.device_id == device_id and m.kind == "status" and isinstance(m.data, dict)

    def _raise_pending(self) -> None:
        # called with the lock held; each problem is raised once, so a test can go on after handling it
        if self._reported_errors < len(self._errors):
            error = self._errors[self._reported_errors]
            self._reported_errors += 1
            raise CallbackError(f"exception in an MQTT callback: {error!r}") from error
        if self.strict and self._reported_violations < len(self._violations):
            violation = self._violations[self._reported_violations]
            self._reported_violations += 1
            raise violation

    def _lost_at(self, wait_started: float) -> float | None:
        """When a wait that started at `wait_started` gives up on the broker (None: connected, or never)."""
        if self._lost_after is None or self._down_since is None or self._client is None:
            return None
        # a wait that starts while the broker is down (a test restarting it) gets the whole grace period
        return max(self._down_since, wait_started) + self._lost_after

    def _lost_message(self, description: str, now: float) -> str:
        shown = self._messages[-SHOWN_ON_TIMEOUT:]
        down = now - (self._down_since or now)
        return (f"lost the MQTT broker {self.url} while waiting for {description}: disconnected {down:.1f} s ago "
                f"and not reconnected ({self.disconnects} disconnects), so nothing more can arrive. The broker "
                "stopped or crashed: check that it still runs (its log, `ss -ltn`), or, if the test stops it on "
                "purpose, start it again before waiting on the link (link.wait_connection()). Last "
                f"{len(shown)} of {len(self._messages)} messages:\n" + format_messages(shown, now))

    def _timeout_message(self, description: str, timeout: float, since: int) -> str:
        now = time.monotonic()
        shown = self._messages[-SHOWN_ON_TIMEOUT:]
        state = "connected" if self._connected else f"NOT connected ({self.disconnects} disconnects)"
        return (f"timed out after {timeout} s waiting for {description} (looking from message #{since}); "
                f"link {state} to {self.url}; last {len(shown)} of {len(self._messages)} messages:\n"
                + format_messages(shown, now))

    def _wait_subscribed(self) -> None:
        deadline = time.monotonic() + self._connect_timeout
        with self._changed:
            while self._suback is None and not (self._connack and self._connack.is_failure):
                self._raise_pending()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LinkError(f"no CONNACK/SUBACK from {self.url} within {self._connect_timeout} s")
                self._changed.wait(remaining)
            if self._connack is not None and self._connack.is_failure:
                raise LinkError(f"broker {self.url} refused the connection: {self._connack}")
            if any(code.is_failure for code in self._suback or []):
                raise LinkError(f"broker {self.url} refused the subscription to {self.topic_filter}: {self._suback}")

    # --- internals: paho -----------------------------------------------------------------------------

    def _require_client(self) -> mqtt.Client:
        if self._client is None:
            raise LinkError("DeviceLink is not connected: call connect() or use it as a context manager")
        return self._client

    def _make_client(self) -> mqtt.Client:
        client = new_client(self._endpoint, self._client_id, self._username, self._password, self._ca_pem)
        client.reconnect_delay_set(*self._reconnect_delay)
        client.on_connect = self._guarded(self._on_connect)
        client.on_subscribe = self._guarded(self._on_subscribe)
        client.on_message = self._guarded(self._on_message)
        client.on_disconnect = self._guarded(self._on_disconnect)
        return client

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        """Wrap a callback so an exception is stored for the test thread instead of killing paho's thread."""

        def wrapper(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:  # noqa: BLE001 - stored and re-raised in the test thread
                with self._changed:
                    self._errors.append(exc)
                    self._changed.notify_all()

        return wrapper

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: mqtt.ReasonCode,
                    _properties: Any) -> None:
        self._network_thread = threading.get_ident()
        with self._changed:
            self._connack = reason_code
            self._connected = not reason_code.is_failure
            self._subscribed = False
            if self._connected and self.disconnects:
                self._checker.forget_sequences()  # what was published while the link was down never came
            self._changed.notify_all()
        if not reason_code.is_failure:
            # here, not after connect(): a clean session loses its subscriptions on every reconnect; QoS 0: see
            # the module docstring
            client.subscribe(self.topic_filter, qos=0)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: list[mqtt.ReasonCode],
                      _properties: Any) -> None:
        with self._changed:
            self._suback = list(reason_codes)
            self._subscribed = not any(code.is_failure for code in reason_codes)
            if self._subscribed:
                self._down_since = None
            self._changed.notify_all()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, _reason_code: mqtt.ReasonCode,
                       _properties: Any) -> None:
        with self._changed:
            self._connected = self._subscribed = False
            self.disconnects += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
            self._changed.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        device_id, kind = parse_topic(msg.topic, self.prefix)
        payload = bytes(msg.payload)
        t = clock.now()
        published = self._receipts.time_of(msg.topic, payload) if self._receipts is not None else None
        with self._changed:
            message = Message(index=len(self._messages), topic=msg.topic, payload=payload,
                              data=parse_json(payload), retain=bool(msg.retain), t=t,
                              device_id=device_id, kind=kind, t_published=t if published is None else published)
            self._messages.append(message)
            for problem in self._checker.check(message):
                self._violations.append(ProtocolViolation(problem, message))
            self._changed.notify_all()
        for listener in list(self._listeners):  # a copy: remove_listener may run meanwhile
            self._guarded(listener)(message)  # one failing listener must not starve the others
