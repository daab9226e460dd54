"""What the fault proxy does to a link: the settings a test changes while it runs, checked when made.

`LinkFaults` is the standing state of the link (latency, jitter, bandwidth, black hole, refusal, a cut at
byte N); the proxy swaps the whole value at each change, so its event loop always sees one consistent set.
A cut at time t is not a state but a one-off timer (FaultProxy.cut_at).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down"]  # up: device -> upstream server; down: upstream server -> device
CutHow = Literal["rst", "fin"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down")
CUT_HOWS: tuple[CutHow, ...] = ("rst", "fin")
MAX_DELAY_MS = 60_000.0  # a minute one way: longer than any device or test deadline


@dataclass(frozen=True)
class ByteCut:
    """Cut a connection once `after_bytes` more bytes have gone through it in `direction`.

    Counted from when the fault is set for connections already open, from their start for later ones; with
    0, the connection is cut when its first byte in that direction arrives (nothing is forwarded). `how`:
    "rst" resets both sides (after the N bytes have reached the receiver's socket), "fin" closes both sides
    gracefully. `connections`: cut only that many connections, then the fault clears itself (a download that
    resumes with Range after one cut); None cuts every connection.
    """

    after_bytes: int
    direction: Direction = "down"
    how: CutHow = "rst"
    connections: int | None = None

    def __post_init__(self) -> None:
        if self.after_bytes < 0:
            raise ValueError(f"ByteCut.after_bytes must be >= 0 (bytes), got {self.after_bytes}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"ByteCut.direction must be one of {DIRECTIONS}, got {self.direction!r}")
        check_how(self.how)
        if self.connections is not None and self.connections < 1:
            raise ValueError(f"ByteCut.connections must be None (every connection) or >= 1, got {self.connections}")

    def describe(self) -> str:
        which = "every connection" if self.connections is None else f"the next {self.connections} connection(s)"
        return f"cut {which} after {self.after_bytes} bytes {self.direction} ({self.how})"


@dataclass(frozen=True)
class LinkFaults:
    """The standing faults of one proxy; the default is a clean link.

    latency_ms: one-way delay added in each direction; jitter_ms: each chunk's delay is latency ± jitter
    (uniform, never below 0), never delivered before the chunk ahead of it (TCP does not reorder).
    bandwidth_bps: bytes per second in each direction, shared by the proxy's connections as a link's
    capacity is (None: uncapped). blackhole: nothing is forwarded either way, new connections are accepted
    and held; clearing it delivers what was held. refuse: new connections are reset at once.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_bps: int | None = None
    blackhole: bool = False
    refuse: bool = False
    cut: ByteCut | None = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_DELAY_MS:
                raise ValueError(f"LinkFaults.{name} must be from 0 to {MAX_DELAY_MS:g} ms, got {value}")
        if self.bandwidth_bps is not None and self.bandwidth_bps < 1:
            raise ValueError(
                f"LinkFaults.bandwidth_bps must be None (uncapped) or >= 1 byte/s, "
                f"got {self.bandwidth_bps}; a link that carries nothing is the black hole"
            )

    def changes_from(self, old: LinkFaults) -> list[tuple[str, str]]:
        """(what, detail) per fault that differs from `old`; what is "set" or "clear"."""
        changes: list[tuple[str, str]] = []
        if (self.latency_ms, self.jitter_ms) != (old.latency_ms, old.jitter_ms):
            changes.append(
                ("set", f"latency {self.latency_ms:g} ms ± {self.jitter_ms:g} ms each way")
                if self.latency_ms or self.jitter_ms
                else ("clear", "latency")
            )
        if self.bandwidth_bps != old.bandwidth_bps:
            changes.append(
                ("set", f"bandwidth {self.bandwidth_bps} B/s each way")
                if self.bandwidth_bps
                else ("clear", "bandwidth cap")
            )
        if self.blackhole != old.blackhole:
            changes.append(
                ("set", "black hole: nothing forwarded") if self.blackhole else ("clear", "black hole: held data flows")
            )
        if self.refuse != old.refuse:
            changes.append(
                ("set", "refusing new connections (RST)") if self.refuse else ("clear", "refusal: accepting again")
            )
        if self.cut != old.cut:
            changes.append(("set", self.cut.describe()) if self.cut else ("clear", "cut at byte N"))
        return changes


def check_how(how: str) -> None:
    if how not in CUT_HOWS:
        raise ValueError(f"how must be one of {CUT_HOWS} (reset or graceful close), got {how!r}")
