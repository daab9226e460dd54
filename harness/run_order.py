"""The order a run hands its scenarios out in: those marked `waits` first, the rest as collected.

Under xdist each worker takes the next scenario when it is free, in collection order (test files
alphabetically). A scenario that spends seconds on the device's own timers (a beacon timeout, a keep-alive,
a reconnect backoff) with little CPU trails the whole run when it comes last: the catalog's Wi-Fi scenarios
ended `make hil` up to 12 s after every other worker was done (docs/performance.md, "Scenario catalog").
Handed out first, they overlap the CPU-bound scenarios instead. Only these move: handing out every long
scenario first (the `slow` ones) put the CPU-heavy mesh and fleet scenarios together on two cores and made
the run slower.
"""

from __future__ import annotations

import pytest

MARKER = ("waits: spends seconds waiting on the device's own timers (beacon timeout, keep-alive, backoff) with "
          "little CPU; handed out first, so that it overlaps the rest of a parallel run instead of trailing it")


def waits_first(items: list[pytest.Item]) -> None:
    """Moves the `waits` scenarios to the front, each group in its collection order."""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)  # sort is stable
