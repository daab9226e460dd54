"""One ordered record of a test: serial lines, MQTT messages and HTTP requests, merged by time.

Times are seconds from the test's start, all on `harness.clock`: a serial line when the board printed it,
an MQTT message when a virtual board's firmware published it (its host port records that), else when the
embedded broker read it from its publisher (before acknowledging it), else when the link received it; an
HTTP request when the server started answering it. Kept as a JSON-lines file per test for later tools, and
its tail is what a failure report shows. Secrets never appear: a `Masker` replaces the values of
password-like keys (in JSON, `key=value`, `config set wifi_password ...`), the password in a URL's
user info, and every known secret value (what a board was provisioned with) wherever it shows up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MASK = "********"
KINDS = ("serial", "mqtt", "http")
SHORT_SECRET = 4  # shorter known secrets are masked only as whole words, or "1" would hide every digit

_KEY = r"[\w-]*(?:password|passwd|secret|token)[\w-]*"
_SECRET_KEY = re.compile(_KEY, re.IGNORECASE)
_PATTERNS = (
    # "wifi_password": "a b" (a JSON string, spaces and escapes included)
    re.compile(rf"""(["']{_KEY}["']\s*:\s*")((?:[^"\\]|\\.)*)(")""", re.IGNORECASE),
    # password=x, broker_password: x, ?token=x&, wifi_password='x'
    re.compile(rf"""(\b{_KEY}["']?\s*[:=]\s*["']?)(?!\*{{8}})([^\s"',;&}}]+)()""", re.IGNORECASE),
    # config set broker_password x, wifi_password x (a key with a prefix, then a space)
    re.compile(r"""(\b\w+_(?:password|passwd|secret|token)\s+)(?!\*{8})([^\s"',;&}]+)()""", re.IGNORECASE),
    # mqtt://user:pass@host
    re.compile(r"""(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)""", re.IGNORECASE),
)


@dataclass
class Masker:
    """Hides secrets in text and data. `secrets` are known values (e.g. the provisioned passwords)."""

    secrets: set[str] = field(default_factory=set)

    def add(self, *values: object) -> None:
        self.secrets.update(str(v) for v in values if v is not None and str(v) and str(v) != MASK)

    def add_from_settings(self, settings: dict[str, object]) -> None:
        """Registers the values of password-like keys (`wifi_password`, `broker_password`, ...)."""
        self.add(*(v for k, v in settings.items() if is_secret_key(k)))

    def text(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                if len(secret) >= SHORT_SECRET:
                    text = text.replace(secret, MASK)
                else:
                    text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK + m.group(3), text)
        return text

    def data(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: MASK if is_secret_key(k) else self.data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.data(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data


def is_secret_key(key: object) -> bool:
    return bool(_SECRET_KEY.fullmatch(str(key)))


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    return Masker(set(secrets)).text(text)


def mask_data(data: Any, secrets: Iterable[str] = ()) -> Any:
    return Masker(set(secrets)).data(data)


@dataclass(frozen=True)
class Entry:
    t: float  # seconds since the test started
    kind: str  # "serial", "mqtt" or "http"
    source: str  # board name, topic, or request path
    text: str


def collect(
    t0: float, boards: Iterable[Any], links: Iterable[Any], servers: Iterable[Any], masker: Masker | None = None,
) -> list[Entry]:
    """Everything the boards printed, the links received and the servers were asked since `t0`, by time.

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
        when_said = _PublishMatcher(said)
        for m in link.messages:
            text = json.dumps(masker.data(m.data)) if m.data is not None else masker.text(m.text)
            t = when_said.time_of(m.topic, m.payload)
            entries.append(Entry((m.t_published if t is None else t) - t0, "mqtt", masker.text(m.topic), text))
    for server in servers:
        for r in server.requests:
            text = f"{r.method} {r.path} range={r.range} status={r.status} bytes={r.bytes_sent}" + (
                " client hung up" if r.client_hung_up else "")
            entries.append(Entry(r.t_start - t0, "http", masker.text(r.path), masker.text(text)))
    return sorted(entries, key=lambda e: e.t)


def _device_publishes(boards: list[Any]) -> dict[str, list[tuple[float, bytes]]]:
    """By topic, in order: what virtual boards' firmware published and when (real boards cannot tell)."""
    said: dict[str, list[tuple[float, bytes]]] = {}
    for board in boards:
        for p in getattr(board, "mqtt_publishes", list)():
            said.setdefault(p.topic, []).append((p.t, p.payload))
    for publishes in said.values():
        publishes.sort(key=lambda item: item[0])
    return said


class _PublishMatcher:
    """One link's messages, matched per topic and in order to the device publishes they came from."""

    def __init__(self, said: dict[str, list[tuple[float, bytes]]]) -> None:
        self._said = said
        self._next: dict[str, int] = {}

    def time_of(self, topic: str, payload: bytes) -> float | None:
        publishes = self._said.get(topic, ())
        for index in range(self._next.get(topic, 0), len(publishes)):
            if publishes[index][1] == payload:
                self._next[topic] = index + 1
                return publishes[index][0]
        return None


def write_jsonl(entries: list[Entry], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for entry in entries:
            f.write(json.dumps(asdict(entry)) + "\n")


def read_jsonl(path: Path) -> list[Entry]:
    """A timeline file back as entries (for tools that post-process runs)."""
    return [Entry(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def tail_by_kind(entries: list[Entry], count: int = 30) -> dict[str, str]:
    """The last `count` entries of each kind, formatted for a failure report."""
    sections = {}
    for kind in KINDS:
        of_kind = [e for e in entries if e.kind == kind][-count:]
        if of_kind:
            sections[kind] = "\n".join(f"{e.t:8.3f}s {e.source}: {e.text}" for e in of_kind)
    return sections
