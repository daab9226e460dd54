"""The fault proxy's counters, and waits on them with a deadline (tests wait for a connection, never sleep)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyStats:
    accepted: int = 0  # connections let in (forwarded, or held by a black hole); refused ones are not
    current: int = 0  # connections open now
    refused: int = 0
    cuts: int = 0  # connections cut by a fault (byte, time or reset_all)
    bytes_up: int = 0  # forwarded device -> upstream
    bytes_down: int = 0  # forwarded upstream -> device


class Counters:
    """ProxyStats updated by the proxy's loop and read or awaited from the test's thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._stats = ProxyStats()
        self._changed = threading.Condition()

    def add(self, **deltas: int) -> None:
        with self._changed:
            self._stats = dataclasses.replace(
                self._stats, **{k: getattr(self._stats, k) + v for k, v in deltas.items()}
            )
            self._changed.notify_all()

    def snapshot(self) -> ProxyStats:
        with self._changed:
            return self._stats

    def wait_until(self, predicate: Callable[[ProxyStats], bool], timeout: float, what: str) -> ProxyStats:
        """The stats once `predicate` holds; TimeoutError saying what was awaited and what there is."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._stats):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self._name}: {what} did not happen within {timeout} s; now {self._stats}")
                self._changed.wait(left)
            return self._stats
