"""The order a run hands its scenarios out in: those marked `waits` first, the rest as collected.

Under xdist each worker takes the next scenario when it is free, in collection order (test files
alphabetically). A scenario that spends seconds on the device's own timers (a beacon timeout, a keep-alive,
a reconnect backoff) with little CPU trails the whole run when it comes last: the catalog's Wi-Fi scenarios
ended `make hil` up to 12 s after every other worker was done (docs/performance.md, "Scenario catalog").
Handed out first, they overlap the CPU-bound scenarios instead. Only these move: handing out every long
scenario first (the `slow` ones) put the CPU-heavy mesh and fleet scenarios together on two cores and made
the run slower.

Under xdist they are also dealt out one per worker. xdist's `load` scheduling starts each worker on a run of
consecutive scenarios (a quarter of its share, at least 2: LoadScheduling.schedule in xdist 3.x), so the
seven of them, all at the front, went to the first worker alone, which ended `make hil` 5 s after the others.
"""

from __future__ import annotations

import pytest

MARKER = ("waits: spends seconds waiting on the device's own timers (beacon timeout, keep-alive, backoff) with "
          "little CPU; handed out first, so that it overlaps the rest of a parallel run instead of trailing it")


def xdist_workers(config: pytest.Config) -> int:
    """How many xdist workers share the run, when this process is one of them (each collects); else 1."""
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput.get("workercount", 1)) if workerinput else 1


def waits_first(items: list[pytest.Item], workers: int = 1) -> None:
    """Moves the `waits` scenarios to the front, in their collection order; with xdist workers, into each
    worker's first batch in turn, the rest as collected."""
    waiting = [item for item in items if item.get_closest_marker("waits") is not None]
    rest = [item for item in items if item.get_closest_marker("waits") is None]
    batch = max(2, len(items) // max(workers, 1) // 4)  # each worker's first batch under xdist's load scheduling
    for place, item in sorted((_place(k, workers, batch), item) for k, item in enumerate(waiting)):
        rest.insert(place, item)  # in ascending places, so each lands where it was placed
    items[:] = rest


def _place(k: int, workers: int, batch: int) -> int:
    """Where the k-th waiting scenario goes: worker k % workers's first batch, or after all first batches."""
    if workers <= 1:
        return k
    turn, worker = divmod(k, workers)
    return worker * batch + turn if turn < batch else k
