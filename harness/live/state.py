"""The live view's model: one row per board, their serial tails and MQTT transcripts, the scenarios of a run.

Fed from the threads things happen in: the device link's listener (`on_message`, paho's thread) for the
boards' retained status, OTA events and online flag, each board's serial reader (`on_serial`), the rollout
driver's notes, pytest's reports. Every change becomes an event (a JSON-able dict with a sequence number
and `t_ms`, the wall-clock time in ms the harness got what caused it) handed at once to each subscriber,
which is how the server pushes it to the page (harness/live/server.py). Everything shown is masked first
(harness/masking.py): serial lines, payloads, notes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness import clock
from harness.masking import Masker
from harness.protocol import Message
from harness.report import FINAL_STATES

SERIAL_TAIL = 400  # lines kept per board
MQTT_TAIL = 300  # messages kept per board
NOTES_TAIL = 200
TEXT_LIMIT = 2000  # characters of one payload or line shown

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


def wall_ms(t: float | None = None) -> float:
    """Wall-clock ms (what the page's Date.now() compares with) of clock.now() time `t` (default: now)."""
    now = time.time() * 1000
    return now if t is None else now - (clock.now() - t) * 1000


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any, limit: int = 64) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class BoardRow:
    """What the page's row of one board shows."""

    device_id: str
    name: str = ""
    version: str | None = None
    slot: str | None = None  # the running partition
    ota_state: str | None = None  # the running slot's otadata state (valid, pending_verify, ...)
    reset_reason: str | None = None
    online: bool | None = None  # None: not heard yet
    request_id: str | None = None  # the latest OTA request
    ota: str | None = None  # that request's latest state
    percent: int | None = None  # of its download, while downloading
    bytes: int | None = None
    total: int | None = None
    last_outcome: str | None = None  # e.g. "succeeded 2.0.0", "failed (http_status 404)"
    t_ms: float = 0.0  # when the row last changed


@dataclass
class Scenario:
    nodeid: str
    outcome: str = "pending"  # pending, running, passed, failed, skipped, error
    duration: float | None = None


class LiveState:
    """The model the page shows; thread-safe. `subscribe` returns a snapshot and the events after it."""

    def __init__(self, masker: Masker | None = None, title: str = "esp-ota-hil live view") -> None:
        self.masker = masker or Masker()
        self.title = title
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._rows: dict[str, BoardRow] = {}
        self._serial: dict[str, deque[Event]] = {}
        self._mqtt: dict[str, deque[Event]] = {}
        self._notes: deque[Event] = deque(maxlen=NOTES_TAIL)
        self._scenarios: dict[str, Scenario] = {}
        self._artifacts: list[dict[str, Any]] = []
        self._info: dict[str, Any] = {}
        self._subscribers: list[Subscriber] = []

    # --- subscribers (the server's SSE streams) ------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Event:
        """Adds `subscriber` and returns the snapshot it starts from; it gets every event after it, in order."""
        with self._lock:
            self._subscribers.append(subscriber)
            return self._snapshot()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def snapshot(self) -> Event:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> Event:
        return {"type": "snapshot", "seq": next(self._seq), "t_ms": wall_ms(), "title": self.title,
                "info": dict(self._info), "boards": [asdict(r) for r in self._rows.values()],
                "scenarios": [asdict(s) for s in self._scenarios.values()], "artifacts": list(self._artifacts),
                "notes": list(self._notes)}

    def _emit(self, event: Event) -> Event:
        """Numbers the event and hands it to every subscriber; the lock is held, so the order is the seq order."""
        event["seq"] = next(self._seq)
        for subscriber in self._subscribers:
            subscriber(event)
        return event

    # --- boards --------------------------------------------------------------------------------------

    def add_board(self, device_id: str, name: str = "") -> None:
        with self._lock:
            row = self._row(device_id)
            row.name = name or row.name
            self._emit_row(row, wall_ms())

    def clear_boards(self) -> None:
        """Forget every board (a new test starts with boards of its own)."""
        with self._lock:
            self._rows.clear()
            self._serial.clear()
            self._mqtt.clear()
            self._emit({"type": "boards_cleared", "t_ms": wall_ms()})

    def board_ids(self) -> list[str]:
        with self._lock:
            return list(self._rows)

    def row(self, device_id: str) -> BoardRow | None:
        with self._lock:
            row = self._rows.get(device_id)
            return None if row is None else BoardRow(**asdict(row))

    def logs(self, device_id: str) -> dict[str, Any] | None:
        """A board's serial tail and MQTT transcript (entries with their seq, so the page can join the stream)."""
        with self._lock:
            if device_id not in self._rows:
                return None
            return {"device_id": device_id, "serial": list(self._serial.get(device_id, ())),
                    "mqtt": list(self._mqtt.get(device_id, ()))}

    def _row(self, device_id: str) -> BoardRow:
        if device_id not in self._rows:
            self._rows[device_id] = BoardRow(device_id)
            self._serial[device_id] = deque(maxlen=SERIAL_TAIL)
            self._mqtt[device_id] = deque(maxlen=MQTT_TAIL)
        return self._rows[device_id]

    def _emit_row(self, row: BoardRow, t_ms: float) -> None:
        row.t_ms = t_ms
        self._emit({"type": "board", "t_ms": t_ms, "board": asdict(row)})

    def on_serial(self, device_id: str, text: str, t: float | None = None) -> None:
        """A line of a board's console (`t`: clock.now() when it was read)."""
        t_ms = wall_ms(t)
        line = self.masker.text(text)[:TEXT_LIMIT]
        with self._lock:
            self._row(device_id)
            entry = self._emit({"type": "serial", "t_ms": t_ms, "device_id": device_id, "text": line})
            self._serial[device_id].append(entry)

    def on_message(self, message: Message) -> None:
        """A DeviceLink listener: every message under the prefix (a board's row is made on its first)."""
        device_id = message.device_id
        if device_id is None or device_id == "all" or message.kind is None:
            return
        if message.kind.startswith("push/"):
            return  # image chunks: many, and nothing to read
        t_ms = wall_ms(message.t)
        text = self.masker.text(message.text)[:TEXT_LIMIT]
        with self._lock:
            row = self._row(device_id)
            entry = self._emit({"type": "mqtt", "t_ms": t_ms, "device_id": device_id, "topic": message.topic,
                                "kind": message.kind, "retained": message.retain, "text": text})
            self._mqtt[device_id].append(entry)
            if self._apply(row, message):
                self._emit_row(row, t_ms)

    def _apply(self, row: BoardRow, message: Message) -> bool:
        """Folds a device message into its row; True if the row changed."""
        before = asdict(row)
        data = message.data
        if message.kind == "online":
            row.online = {b"online": True, b"offline": False}.get(message.payload, row.online)
        elif message.kind == "status" and isinstance(data, dict):
            data = self.masker.data(data)
            row.version = _str(data.get("version"), 32) or row.version
            row.slot = _str(data.get("partition"), 16) or row.slot
            row.ota_state = _str(data.get("ota_state"), 24) or row.ota_state
            row.reset_reason = _str(data.get("reset_reason"), 16) or row.reset_reason
            row.online = True if row.online is None else row.online
            last = data.get("last_ota")
            if isinstance(last, dict) and row.last_outcome is None:
                row.last_outcome = _outcome(last)
        elif message.kind == "ota" and isinstance(data, dict) and isinstance(data.get("state"), str):
            data = self.masker.data(data)
            state = data["state"]
            request = _str(data.get("id"), 48)
            if request != row.request_id or state == "accepted":
                row.request_id, row.percent, row.bytes, row.total = request, None, None, None
            row.ota = _str(state, 16)
            if state == "downloading":
                row.bytes, row.total = _int(data.get("bytes")), _int(data.get("total"))
                percent = _int(data.get("percent"))
                row.percent = percent if percent is not None and 0 <= percent <= 100 else None
            elif state in ("verifying", "rebooting") and row.total:
                row.percent = 100
            if state in FINAL_STATES:
                row.last_outcome = _outcome(data)
                row.percent = 100 if state == "succeeded" else row.percent
        return asdict(row) != before

    # --- the rest of the page: notes, artifacts, scenarios, info --------------------------------------

    def note(self, text: str, level: str = "info") -> None:
        """A line in the page's activity log (an action, a rollout's step, an error)."""
        with self._lock:
            entry = self._emit({"type": "note", "t_ms": wall_ms(), "level": level, "text": self.masker.text(text)})
            self._notes.append(entry)

    def set_info(self, **info: Any) -> None:
        """What the header shows (target, broker, whether actions are allowed, the test running)."""
        with self._lock:
            self._info.update(self.masker.data(info))
            self._emit({"type": "info", "t_ms": wall_ms(), "info": dict(self._info)})

    def add_artifact(self, artifact: dict[str, Any]) -> None:
        with self._lock:
            self._artifacts.append(self.masker.data(artifact))
            self._emit({"type": "artifacts", "t_ms": wall_ms(), "artifacts": list(self._artifacts)})

    def set_scenarios(self, nodeids: list[str]) -> None:
        with self._lock:
            self._scenarios = {n: Scenario(n) for n in nodeids}
            self._emit({"type": "scenarios", "t_ms": wall_ms(), "scenarios": [asdict(s) for s in
                                                                                self._scenarios.values()]})

    def scenario(self, nodeid: str, outcome: str, duration: float | None = None) -> None:
        with self._lock:
            item = self._scenarios.setdefault(nodeid, Scenario(nodeid))
            item.outcome, item.duration = outcome, duration
            self._emit({"type": "scenario", "t_ms": wall_ms(), "scenario": asdict(item)})


def _outcome(event: dict[str, Any]) -> str:
    """`succeeded 2.0.0`, `failed (http_status 404)`, `rejected (same_version)` from an event or last_ota."""
    state = str(event.get("state", "?"))
    reason = event.get("reason")
    if reason and reason != state:
        status = _int(event.get("http_status"))
        return f"{state} ({reason}{f' {status}' if status is not None else ''})"
    version = event.get("version")
    return f"{state} {version}" if version and state == "succeeded" else state


@dataclass
class SerialTap:
    """Feeds a board's console into the state; `detach()` stops it."""

    state: LiveState
    board: Any
    _listener: Callable[[Any], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        device_id = self.board.device_id
        self._listener = lambda line: self.state.on_serial(device_id, line.text, line.t)
        self.state.add_board(device_id, getattr(self.board, "name", ""))
        self.board.serial.add_listener(self._listener)

    def detach(self) -> None:
        self.board.serial.remove_listener(self._listener)
