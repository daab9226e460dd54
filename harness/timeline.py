"""One ordered record of a test: serial lines, MQTT messages and HTTP requests, merged by time.

Times are seconds from the test's start. Kept as a JSON-lines file per test for later tools, and
its tail is what a failure report shows. Secrets never appear: values of password-like keys are
masked in MQTT payloads and in serial lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_SECRET_KEY = re.compile(r"(password|passwd|secret|token)", re.IGNORECASE)
_SECRET_IN_TEXT = re.compile(r"((?:wifi_|broker_)?password[\"']?(?:\s*[:=]\s*|\s+)[\"']?)([^\s\"',}]+)", re.IGNORECASE)
MASK = "********"


@dataclass(frozen=True)
class Entry:
    t: float  # seconds since the test started
    kind: str  # "serial", "mqtt" or "http"
    source: str  # board name, topic, or request path
    text: str


def mask_text(text: str) -> str:
    return _SECRET_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)


def mask_data(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else mask_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_data(v) for v in data]
    return data


def collect(t0: float, boards: Iterable[Any], links: Iterable[Any], servers: Iterable[Any]) -> list[Entry]:
    entries: list[Entry] = []
    for board in boards:
        entries += [Entry(line.t - t0, "serial", board.name, mask_text(line.text)) for line in board.serial.lines]
    for link in links:
        for m in link.messages:
            text = json.dumps(mask_data(m.data)) if m.data is not None else mask_text(m.text)
            entries.append(Entry(m.t - t0, "mqtt", m.topic, text))
    for server in servers:
        for r in server.requests:
            text = f"{r.method} {r.path} range={r.range} status={r.status} bytes={r.bytes_sent}" + (
                " client hung up" if r.client_hung_up else "")
            entries.append(Entry(r.t_start - t0, "http", r.path, text))
    return sorted(entries, key=lambda e: e.t)


def write_jsonl(entries: list[Entry], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for entry in entries:
            f.write(json.dumps(asdict(entry)) + "\n")


def tail_by_kind(entries: list[Entry], count: int = 30) -> dict[str, str]:
    """The last `count` entries of each kind, formatted for a failure report."""
    sections = {}
    for kind in ("serial", "mqtt", "http"):
        of_kind = [e for e in entries if e.kind == kind][-count:]
        if of_kind:
            sections[kind] = "\n".join(f"{e.t:8.3f}s {e.source}: {e.text}" for e in of_kind)
    return sections
