"""Many boards at once: a board factory called from a pool of threads.

A virtual board's start is mostly waiting (its two boots, the console round trips of its provisioning, its
first MQTT status), so a few dozen start together on two cores; the builds are shared (the factory's
firmware), and every board reports on the test's one link.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from harness.boards.base import Board

PARALLEL_STARTS = 16


def start_boards(factory: Callable[..., Board], count: int, workers: int = PARALLEL_STARTS,
                 **settings: object) -> list[Board]:
    """`count` boards from `factory(**settings)`, started `workers` at a time, in a stable order. If one fails
    to start, the error is raised once the others have started (the factory stops them all at teardown)."""
    if count < 1:
        raise ValueError(f"start_boards: count must be >= 1, not {count}")
    with ThreadPoolExecutor(max_workers=min(workers, count), thread_name_prefix="board-start") as pool:
        futures = [pool.submit(factory, **settings) for _ in range(count)]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:  # Ctrl-C: the boards not yet begun are not started (the pool waits for the rest)
            for future in futures:
                future.cancel()
            raise
