"""What the fault proxy reports: each fault set, cleared or fired, as an event for the test's timeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# what: "set" / "clear" (a fault changed), "cut" (a cut fired), "refuse" (a connection refused),
# "reset" (reset_all), "upstream" (the upstream server could not be reached: not ours, but shown beside ours),
# "gone" (the board closed a connection in a black hole: it rebooted or lost power, and what it sent is dropped)
WHATS = ("set", "clear", "cut", "refuse", "reset", "upstream", "gone")


@dataclass(frozen=True)
class ProxyEvent:
    t: float  # harness.clock time
    proxy: str  # the proxy's name
    what: str  # one of WHATS
    detail: str

    @property
    def text(self) -> str:
        return f"{self.what}: {self.detail}"


EventHook = Callable[[ProxyEvent], None]
