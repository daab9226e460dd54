"""A token bucket: the bandwidth cap of one direction of the fault proxy's link (on its event loop only)."""

from __future__ import annotations

import time

# The bucket holds at most this much time's worth of bytes, and bytes go out in pieces that size: a burst
# that small keeps the cap accurate to about 1 % over half a second, yet is only 100 writes a second.
BURST_S = 0.01


class TokenBucket:
    """Bytes per second, or None for no cap. `reserve(n)` takes n tokens or says how long to wait for them."""

    def __init__(self, rate: int | None = None) -> None:
        self._rate: int | None = None
        self._tokens = 0.0
        self._last = time.monotonic()
        self.set_rate(rate)

    @property
    def rate(self) -> int | None:
        return self._rate

    @property
    def burst(self) -> int:
        return max(1, int(self._rate * BURST_S)) if self._rate else 0

    def set_rate(self, rate: int | None) -> None:
        """A new cap from now on; the bucket starts full at the new burst."""
        self._rate = rate
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    def piece(self, n: int) -> int:
        """How many of n bytes to send at once under the cap."""
        return min(n, self.burst) if self._rate else n

    def reserve(self, n: int) -> float:
        """0 once n tokens are taken (n <= burst), else the seconds until they will be there (none taken)."""
        if not self._rate:
            return 0.0
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return 0.0
        return (n - self._tokens) / self._rate
