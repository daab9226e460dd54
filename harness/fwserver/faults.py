"""How the firmware server misbehaves for one artifact: the fault plan, and the artifact it belongs to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultPlan:
    """How one artifact misbehaves. Every field is optional and they combine.

    Byte counts (`stall_after_bytes`, `close_after_bytes`) count body bytes of one response, so a device
    resuming with Range makes progress through a connection that keeps dropping. `truncate_to` and
    `corrupt_offsets` change the served file itself (offsets into the file), while the Artifact keeps
    the size and sha256 of the original, as a release manifest would.
    """

    throttle_bps: int | None = None
    stall_after_bytes: int | None = None
    stall_seconds: float | None = None  # None: stall until the client leaves or the server stops
    close_after_bytes: int | None = None
    close_first_requests: int | None = None  # None: every request is cut
    truncate_to: int | None = None
    corrupt_offsets: tuple[int, ...] = ()
    status: int | None = None
    status_first_requests: int | None = None  # first K requests get `status` (default 503), then 200
    redirects: int = 0
    ranges_honoured: bool = True
    chunked: bool = False
    header_delay_s: float = 0.0
    expire_after_requests: int | None = None
    expire_after_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("throttle_bps", "stall_after_bytes", "close_after_bytes", "close_first_requests",
                     "truncate_to", "status_first_requests", "expire_after_requests"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0, got {value}")
        if self.throttle_bps == 0:
            raise ValueError("FaultPlan.throttle_bps must be > 0 (use stall_after_bytes to stop sending)")
        if self.redirects < 0 or self.header_delay_s < 0 or (self.expire_after_s or 0) < 0:
            raise ValueError("FaultPlan.redirects, header_delay_s and expire_after_s must be >= 0")
        object.__setattr__(self, "corrupt_offsets", tuple(self.corrupt_offsets))

    def status_for(self, request_number: int) -> int | None:
        """The injected status for the n-th request (0-based) to the artifact, or None to serve it."""
        if self.status_first_requests is None:
            return self.status
        return (self.status or 503) if request_number < self.status_first_requests else None

    def expired(self, request_number: int, age_s: float) -> bool:
        """Whether the n-th request (0-based), `age_s` after the artifact was added, finds the URL expired."""
        return ((self.expire_after_requests is not None and request_number >= self.expire_after_requests)
                or (self.expire_after_s is not None and age_s >= self.expire_after_s))

    def cuts(self, request_number: int) -> bool:
        return self.close_after_bytes is not None and (
            self.close_first_requests is None or request_number < self.close_first_requests
        )


@dataclass(frozen=True)
class Artifact:
    """A registered image. `url` is what to hand to the device (the first redirect hop, if any)."""

    url: str
    path: str
    size: int
    sha256: str
    name: str
    faults: FaultPlan
    data: bytes = dataclasses.field(repr=False, compare=False)


def served_body(data: bytes, plan: FaultPlan) -> bytes:
    """The bytes the server sends for `data` under `plan`: truncated and corrupted as the plan says."""
    body = bytearray(data if plan.truncate_to is None else data[:plan.truncate_to])
    for offset in plan.corrupt_offsets:
        if offset < len(body):
            body[offset] ^= 0xFF
    return bytes(body)
