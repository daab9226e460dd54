"""The protocol contract between firmware and harness (docs/protocol.md), as the harness checks it.

Topics are `<prefix>/<device id>/<kind>`: `ota` events, `status`, `online`, `cmd`. `Message` is one MQTT
message as a link received it, with its topic taken apart and its payload parsed; `ProtocolChecker` holds
each device message to the contract (OTA states and failure reasons, required fields, `seq` order) and
returns problems, which the link turns into `ProtocolViolation`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

OTA_STATES = frozenset({
    "accepted", "downloading", "verifying", "rebooting", "succeeded",
    "failed", "rejected", "cancelled", "rolled_back",
})
FAILURE_REASONS = frozenset({
    "bad_command", "busy", "same_version", "downgrade", "http_status", "connect_failed", "tls_failed",
    "idle_timeout", "timeout", "too_large", "invalid_image", "wrong_chip", "sha256_mismatch",
    "size_mismatch", "flash_error", "cancelled", "selftest_failed", "boot_failed", "corrupt_stream",
    "invalid_signature", "secure_version",
})
STATES_WITH_REASON = frozenset({"failed", "rejected"})
ONLINE_PAYLOADS = frozenset({b"online", b"offline"})


class ProtocolViolation(AssertionError):
    """A device message broke the protocol contract."""

    def __init__(self, problem: str, message: Message) -> None:
        super().__init__(f"protocol violation: {problem}\n  in #{message.index} {message.describe()}")
        self.problem = problem
        self.message = message



@dataclass(frozen=True)
class Message:
    """One received MQTT message. `data` is the parsed JSON payload, or None if it is not JSON."""

    index: int
    topic: str
    payload: bytes
    data: Any
    retain: bool
    t: float  # clock.now() at reception by this link
    device_id: str | None
    kind: str | None  # "ota", "status", "online", "cmd", ... (the topic after the device id)
    t_published: float = 0.0  # when the embedded broker read it from its publisher (clock.now()), else t

    @property
    def text(self) -> str:
        """The payload as text; a push's chunks (binary) as their length, so transcripts stay readable."""
        if self.kind is not None and self.kind.startswith("push/"):
            return f"<{len(self.payload)} bytes of image>"
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(self.payload)} bytes of binary data>"

    def describe(self, now: float | None = None, limit: int = 200) -> str:
        when = f"t{self.t - now:+.3f}s " if now is not None else ""
        retained = " (retained)" if self.retain else ""
        text = self.text if len(self.text) <= limit else self.text[:limit] + "..."
        return f"{when}{self.topic}{retained} {text}"


def parse_topic(topic: str, prefix: str) -> tuple[str | None, str | None]:
    """`<prefix>/<id>/<kind>` -> (id, kind); (None, None) for topics outside the prefix."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None, None
    device_id, _, kind = topic[len(head):].partition("/")
    return device_id or None, kind or None


def parse_json(payload: bytes) -> Any:
    """The payload as JSON, or None: not UTF-8, not JSON, or nested too deeply for Python's parser."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def format_messages(messages: list[Message], now: float | None = None) -> str:
    return "\n".join(f"  #{m.index} {m.describe(now)}" for m in messages) or "  (no messages)"



def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ProtocolChecker:
    """Checks device messages against the contract (docs/protocol.md); returns problems, never raises.

    `seq` must increase per device, except that a drop to 1 or less means the device rebooted (a boot
    restarts the sequence), and that the same event may come twice: QoS 1 is at-least-once, and a device
    whose PUBACK was lost (its link dropped in between) publishes it again after reconnecting.
    """

    def __init__(self) -> None:
        self._last_seq: dict[str, int] = {}
        self._last_payload: dict[str, bytes] = {}

    def check(self, message: Message) -> list[str]:
        if message.device_id is None or message.device_id == "all":
            return []
        if message.kind == "ota":
            return self._check_ota(message)
        if message.kind == "status" and message.payload and not isinstance(message.data, dict):
            return ["status payload is not a JSON object"]
        if message.kind == "online" and message.payload and message.payload not in ONLINE_PAYLOADS:
            return [f"online payload must be 'online' or 'offline', got {message.text!r}"]
        return []

    def _check_ota(self, message: Message) -> list[str]:
        event = message.data
        if not isinstance(event, dict):
            return ["OTA event is not a JSON object"]
        problems = self._check_fields(event)
        seq = event.get("seq")
        device_id = message.device_id or ""
        if _is_int(seq) and not self._redelivered(device_id, seq, message.payload):
            problems += self._check_seq(device_id, seq)
        self._last_payload[device_id] = message.payload
        return problems

    def _redelivered(self, device_id: str, seq: int, payload: bytes) -> bool:
        return self._last_seq.get(device_id) == seq and self._last_payload.get(device_id) == payload

    @staticmethod
    def _check_fields(event: dict[str, Any]) -> list[str]:
        problems = []
        # A command may come without an id (only url is required), so "" is a valid request id.
        if not isinstance(event.get("id"), str):
            problems.append("OTA event needs a string 'id'")
        if not _is_int(event.get("seq")):
            problems.append("OTA event needs an integer 'seq'")
        state = event.get("state")
        if state not in OTA_STATES:
            problems.append(f"OTA state {state!r} is not one of {sorted(OTA_STATES)}")
        if state == "downloading":
            missing = [k for k in ("bytes", "total", "percent") if not _is_int(event.get(k))]
            if missing:
                problems.append(f"'downloading' event needs integer {', '.join(missing)}")
            if "written" in event and not _is_int(event["written"]):
                problems.append("'written' (a compressed download's decompressed bytes) must be an integer")
        if state in STATES_WITH_REASON:
            reason = event.get("reason")
            if reason not in FAILURE_REASONS:
                problems.append(f"{state!r} event needs a 'reason' from the contract, got {reason!r}")
            elif reason == "http_status" and not _is_int(event.get("http_status")):
                problems.append("reason 'http_status' needs an integer 'http_status'")
        return problems

    def forget_sequences(self) -> None:
        """The observer was away (its link reconnected): what it missed meanwhile may hold a boot's first
        events, so the next `seq` of each device is compared with nothing."""
        self._last_seq.clear()
        self._last_payload.clear()

    def _check_seq(self, device_id: str, seq: int) -> list[str]:
        last = self._last_seq.get(device_id)
        self._last_seq[device_id] = seq
        if last is not None and seq <= last and seq > 1:
            return [f"seq went from {last} to {seq} (must increase within a boot)"]
        return []

