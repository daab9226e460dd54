"""Where the embedded broker's time goes per status round trip: the figures behind docs/performance.md's Event path.

    .venv/bin/python bench/profile_broker.py [--trips 2000] [--cprofile] [--asyncio]

The same set-up as bench/bench_event_path.py's amqtt half (the reference firmware on a virtual board, a
DeviceLink as the test side, the broker in this process), then `--trips` status round trips one after the
other. Prints the round trip's p50/p99 and the CPU the broker's thread spent per round trip
(time.thread_time() read inside the loop thread), beside the whole process's.

`--cprofile` runs cProfile inside the broker's loop thread during the trips and prints its time by origin
(amqtt, asyncio's Python, C built-ins, the harness, logging) and the top functions; cProfile slows Python
calls several-fold, so its shares are a guide and its latencies are not the broker's. `--asyncio` runs the
broker on asyncio's own event loop instead of uvloop, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_event_path as bench

import harness.broker.embedded as broker_module
from harness.broker import EmbeddedBroker
from harness.link import DeviceLink
from harness.virtual import firmware


def origin(path: str, function: str) -> str:
    if "amqtt/" in path:
        return "amqtt"
    if "asyncio/" in path or path.endswith("selectors.py"):
        return "asyncio (Python)"
    if "harness/" in path:
        return "harness"
    if "logging/" in path:
        return "logging"
    if path == "~":
        return "C built-ins (socket calls, tasks, futures, ...)"
    return "other Python"


def print_profile(profile: cProfile.Profile, trips: int) -> None:
    stats = pstats.Stats(profile)
    seconds: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (path, _line, function), (_cc, ncalls, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        seconds[origin(path, function)] += tottime
        calls[origin(path, function)] += ncalls
    total = sum(seconds.values())
    print(f"cProfile, broker thread, by origin ({total:.2f} s over {trips} trips, profiled):")
    for name, value in seconds.most_common():
        print(f"  {name:48s} {value / total * 100:5.1f} %  {calls[name] / trips:6.0f} calls per trip")
    stats.sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trips", type=int, default=2000, help="status round trips, one after the other")
    parser.add_argument("--cprofile", action="store_true", help="cProfile the broker's loop thread")
    parser.add_argument("--asyncio", action="store_true", help="run the broker on asyncio's loop, not uvloop")
    args = parser.parse_args()
    if args.asyncio:
        broker_module._fast_event_loop = asyncio.new_event_loop
    image = firmware.build().image
    profile = cProfile.Profile()

    async def thread_time(enable: bool | None = None) -> float:
        if enable is True:
            profile.enable()
        elif enable is False:
            profile.disable()
        return time.thread_time()

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker, DeviceLink(broker.url) as link:
        board = bench.start_board(Path(tmp) / "board", "prof0", 0, image, broker.url, link)
        try:
            loop = type(broker._loop.loop)
            print(f"broker loop: {loop.__module__}.{loop.__name__}; {bench.load()}", flush=True)
            bench.status_round_trip(link, "prof0", bench.WARMUP)
            cpu0, process0 = broker._loop.run(thread_time(args.cprofile or None), 5), time.process_time()
            t0 = time.perf_counter()
            trips = bench.status_round_trip(link, "prof0", args.trips)
            wall = time.perf_counter() - t0
            cpu1, process1 = broker._loop.run(thread_time(False if args.cprofile else None), 5), time.process_time()
        finally:
            board.stop()
    ms = [t.ms for t in trips]
    print(f"status round trip: {bench.describe(ms)}; echo p50 {statistics.median(t.echo_ms for t in trips):.2f} ms")
    print(f"per round trip: broker thread CPU {(cpu1 - cpu0) / args.trips * 1e6:.0f} us, whole process CPU "
          f"{(process1 - process0) / args.trips * 1e6:.0f} us, wall {wall / args.trips * 1e6:.0f} us; {bench.load()}")
    if args.cprofile:
        print_profile(profile, args.trips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
