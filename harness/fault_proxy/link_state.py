"""The link's faults as the proxy's event loop sees them: the current settings, the buckets, and waits
that end early when a test changes the faults (a black hole healed, a cap lifted)."""

from __future__ import annotations

import asyncio
import contextlib
import random

from harness.fault_proxy.bucket import TokenBucket
from harness.fault_proxy.faults import Direction, LinkFaults


class LinkState:
    """Used on the proxy's loop only (the proxy hands every change over to the loop first)."""

    def __init__(self, faults: LinkFaults, rng: random.Random) -> None:
        self.faults = faults
        self._rng = rng
        self._buckets: dict[Direction, TokenBucket] = {
            "up": TokenBucket(faults.bandwidth_bps),
            "down": TokenBucket(faults.bandwidth_bps),
        }
        # replaced at every change; whoever waits holds the old one, which is set
        self._changed = asyncio.Event()

    def update(self, faults: LinkFaults) -> None:
        if faults.bandwidth_bps != self.faults.bandwidth_bps:
            for bucket in self._buckets.values():
                bucket.set_rate(faults.bandwidth_bps)
        self.faults = faults
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def bucket(self, direction: Direction) -> TokenBucket:
        return self._buckets[direction]

    def delay_s(self) -> float:
        """The one-way delay for a chunk read now: latency ± jitter, never negative."""
        f = self.faults
        if not f.jitter_ms:
            return f.latency_ms / 1000
        return max(0.0, f.latency_ms + self._rng.uniform(-f.jitter_ms, f.jitter_ms)) / 1000

    async def wait_open(self) -> None:
        """Return once no black hole is on (at once if none is)."""
        while self.faults.blackhole:
            await self._changed.wait()

    async def sleep_or_change(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if the faults change meanwhile (the caller then looks again)."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), seconds)
