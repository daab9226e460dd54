"""One ordered record of a test: serial lines, MQTT messages, HTTP requests and faults, merged by time.

Times are seconds from the test's start, all on `harness.clock`: a serial line when the board printed it,
an MQTT message when a virtual board's firmware published it (its host port records that), else when the
embedded broker read it from its publisher (before acknowledging it), else when the link received it; an
HTTP request when the server started answering it; a fault (a fault proxy's, harness.fault_proxy) when it
was set, cleared or fired, as the service reported it (a `Note`, through `TestRecord.note`); a rollout's
steps and its final table (harness.fleet) likewise. Kept as a
JSON-lines file per test for later tools, and its tail is what a failure report shows. Secrets never
appear: every entry goes through a `harness.masking.Masker`, which knows what the boards were provisioned
with.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.masking import Masker
from harness.publish_log import PublishLog

KINDS = ("serial", "mqtt", "http", "fault", "rollout")


@dataclass(frozen=True)
class Entry:
    t: float  # seconds since the test started
    kind: str  # one of KINDS
    source: str  # board name, topic, request path, or the service that applied a fault
    text: str


@dataclass(frozen=True)
class Note:
    """An entry a service reports as it happens (a fault applied), at its own `harness.clock` time."""

    t: float
    kind: str  # one of KINDS
    source: str
    text: str


def collect(
    t0: float, boards: Iterable[Any], links: Iterable[Any], servers: Iterable[Any], masker: Masker | None = None,
    notes: Iterable[Note] = (),
) -> list[Entry]:
    """Everything the boards printed, the links received, the servers were asked and the services noted
    since `t0`, by time.

    Boards' own `secrets` (real boards know what they were provisioned with) are masked too.
    """
    masker = Masker(set(masker.secrets)) if masker else Masker()
    boards, links, servers = list(boards), list(links), list(servers)
    for board in boards:
        masker.add(*getattr(board, "secrets", ()))
    entries: list[Entry] = []
    for board in boards:
        entries += [Entry(line.t - t0, "serial", board.name, masker.text(line.text))
                    for line in list(board.serial.lines) if line.t >= t0]  # a reused board printed before
    said = _device_publishes(boards)
    for link in links:
        when_said = said.reader()
        for m in link.messages:
            text = json.dumps(masker.data(m.data)) if m.data is not None else masker.text(m.text)
            t = when_said.time_of(m.topic, m.payload)
            entries.append(Entry((m.t_published if t is None else t) - t0, "mqtt", masker.text(m.topic), text))
    for server in servers:
        for r in server.requests:
            text = f"{r.method} {r.path} range={r.range} status={r.status} bytes={r.bytes_sent}" + (
                " client hung up" if r.client_hung_up else "")
            entries.append(Entry(r.t_start - t0, "http", masker.text(r.path), masker.text(text)))
    entries += [Entry(n.t - t0, n.kind, masker.text(n.source), masker.text(n.text)) for n in list(notes) if n.t >= t0]
    return sorted(entries, key=lambda e: e.t)


def _device_publishes(boards: list[Any]) -> PublishLog:
    """What virtual boards' firmware published and when (real boards cannot tell), in time order."""
    said = sorted((p for board in boards for p in getattr(board, "mqtt_publishes", list)()), key=lambda p: p.t)
    log = PublishLog()
    for p in said:
        log.record(p.topic, p.payload, p.t)
    return log


def to_jsonl(entries: list[Entry]) -> str:
    """The timeline as JSON lines, one entry a line: the timeline file's text, and what an xdist worker sends the
    controller for the HTML report (one string: execnet's serializer, pure Python, took 1 to 2 ms per 100
    entries as a list of dicts, against json's C encoder here)."""
    # vars(), not asdict(): the fields are plain values, and asdict's deep copy was most of the time here
    return "".join(json.dumps(vars(entry)) + "\n" for entry in entries)


def from_jsonl(text: str) -> list[Entry]:
    """to_jsonl's text back as entries; ValueError (JSON) or TypeError (fields) for a line that is not one."""
    return [_entry(json.loads(line)) for line in text.splitlines() if line.strip()]


def _entry(fields: dict[str, object]) -> Entry:
    entry = Entry(**fields)  # type: ignore[arg-type]
    # checked here, once: the report formats `t` as a number and escapes the rest as text
    if not isinstance(entry.t, int | float) or not all(isinstance(v, str) for v in (entry.kind, entry.source,
                                                                                      entry.text)):
        raise TypeError(f"timeline entry with a field of the wrong type: {fields!r:.120}")
    return entry


def write_jsonl(entries: list[Entry], path: Path) -> str:
    """The timeline file; returns its text (to_jsonl), which the HTML report takes too."""
    text = to_jsonl(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def read_jsonl(path: Path) -> list[Entry]:
    """A timeline file back as entries (for tools that post-process runs)."""
    return from_jsonl(path.read_text())


def tail_by_kind(entries: list[Entry], count: int = 30) -> dict[str, str]:
    """The last `count` entries of each kind, formatted for a failure report."""
    sections = {}
    for kind in KINDS:
        of_kind = [e for e in entries if e.kind == kind][-count:]
        if of_kind:
            sections[kind] = "\n".join(f"{e.t:8.3f}s {e.source}: {e.text}" for e in of_kind)
    return sections
