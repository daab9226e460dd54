"""Fleet figures: many virtual boards started at once, a staged rollout over 100, one broadcast over 1,000.

    .venv/bin/python bench/bench_fleet.py [--boards 100] [--fleet 1000] [--image-kb 600]

The devices are the reference firmware on virtual boards (one process each), on one mosquitto broker, one
firmware server and one device link, as in the fleet scenarios (tests_hil/test_fleet.py). Boards start 16
at a time (harness.fleet.start_boards' default). Figures and targets (issue 17):
- 100 boards started (each provisioned and reporting its first status): < 3 s;
- a staged rollout of a 600 KB image over those 100 (canary 5 -> 25 % -> 100 %, harness.fleet.Rollout), from the
  first command to the last board confirmed: < 20 s; peak RSS per board (reported);
- 1,000 boards started, updated by one broadcast (`<prefix>/all/cmd`; the image 200 KB, or the firmware itself
  when larger) and all confirmed: < 90 s, < 15 MB RSS each. The system of ../shared/reference/systems/003
  gives 20 nodes x 200 KB sequentially: 20 min.
Prints each figure with PASS/FAIL beside its target and exits non-zero on a miss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from bench_common import Result, report, rss_kb, start_board, verdict

from harness.boards.base import Board
from harness.broker import MosquittoBroker
from harness.fleet import RolloutPlan
from harness.fleet.rollout import Rollout
from harness.fleet.start import PARALLEL_STARTS
from harness.formats.app_image import build_virtual_image, virtual_payload
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.protocol import Message
from harness.virtual import firmware


def padded_image(base: bytes, size: int, version: str) -> bytes:
    """The firmware padded to `size` bytes (trailing bytes after the executable; it still runs)."""
    return build_virtual_image(virtual_payload(base) + bytes(max(0, size - len(base))), version=version,
                               project_name="hil_ota_agent")


def start_fleet(workdir: Path, count: int, first_index: int, base: bytes, broker_url: str,
                link: DeviceLink) -> tuple[list[Board], float]:
    t0 = time.monotonic()
    with ThreadPoolExecutor(PARALLEL_STARTS) as pool:
        boards = list(pool.map(lambda i: start_board(workdir / f"b{i}", f"fleet{i}", i, base, broker_url, link,
                                                     heartbeat_s=0), range(first_index, first_index + count)))
    return boards, time.monotonic() - t0


def stop_fleet(boards: list[Board]) -> None:
    with ThreadPoolExecutor(PARALLEL_STARTS) as pool:
        list(pool.map(lambda b: b.stop(), boards))


def rss_mb(boards: list[Board]) -> list[float]:
    return [rss_kb(b._proc.pid) / 1024 for b in boards if getattr(b, "_proc", None) is not None]


def staged_rollout(workdir: Path, args: argparse.Namespace, base: bytes) -> None:
    with ExitStack() as stack:
        broker = stack.enter_context(MosquittoBroker())
        server = stack.enter_context(FirmwareServer())
        link = stack.enter_context(DeviceLink(broker.url))
        boards, started_s = start_fleet(workdir, args.boards, 0, base, broker.url, link)
        stack.callback(stop_fleet, boards)
        report(Result(f"{args.boards} boards started ({PARALLEL_STARTS} at a time, mosquitto)", f"{started_s:.2f} s",
                      "< 3 s", started_s < 3))
        image = padded_image(base, args.image_kb * 1024, "2.0.0")
        artifact = server.add(image)
        plan = RolloutPlan(canary=5, steps=(25, 100), device_timeout_s=120)
        rollout = Rollout(link, [b.device_id for b in boards], {"type": "ota", "url": artifact.url}, plan)
        t0 = time.monotonic()
        result = rollout.run()
        seconds = time.monotonic() - t0
        if result.state != "succeeded":
            print(result.table())
        report(Result(f"staged rollout of a {len(image) // 1024} KB image over {args.boards} boards "
                      f"(canary 5 -> 25 % -> 100 %): {result.count('succeeded')} confirmed", f"{seconds:.2f} s",
                      "< 20 s, all confirmed", seconds < 20 and result.count("succeeded") == args.boards))
        for cohort in result.cohorts:
            print(f"  {cohort.name:<10} {len(cohort.devices):>4} boards  "
                  f"{(cohort.ended_at or 0) - (cohort.started_at or 0):6.2f} s")
        rss = rss_mb(boards)
        report(Result(f"RSS per board after the rollout (app process, {len(rss)} boards)",
                      f"mean {statistics.mean(rss):.1f} MB, max {max(rss):.1f} MB"))


def broadcast_fleet(workdir: Path, args: argparse.Namespace, base: bytes) -> None:
    with ExitStack() as stack:
        broker = stack.enter_context(MosquittoBroker())
        server = stack.enter_context(FirmwareServer())
        link = stack.enter_context(DeviceLink(broker.url))
        t0 = time.monotonic()
        boards, started_s = start_fleet(workdir, args.fleet, 10_000, base, broker.url, link)
        stack.callback(stop_fleet, boards)
        print(f"  {args.fleet} boards started in {started_s:.1f} s")
        image = padded_image(base, 200 * 1024, "2.0.0")  # the system's 200 KB, or the firmware if larger
        artifact = server.add(image)
        ids = {b.device_id for b in boards}
        confirmed: set[str] = set()
        all_confirmed = threading.Event()

        def count(m: Message) -> None:  # in the link's thread, once per message (no rescan of the transcript)
            if (m.kind == "ota" and m.device_id in ids and isinstance(m.data, dict)
                    and m.data.get("id") == "fleet-bcast" and m.data.get("state") == "succeeded"):
                confirmed.add(m.device_id)
                if len(confirmed) == len(ids):
                    all_confirmed.set()

        link.add_listener(count)
        since = link.cursor()
        sent = time.monotonic()
        link.broadcast({"type": "ota", "id": "fleet-bcast", "url": artifact.url})
        if not all_confirmed.wait(300):
            last: dict[str, str] = {}
            for m in link.messages[since:]:
                if m.kind == "ota" and m.device_id in ids - confirmed and isinstance(m.data, dict):
                    last[m.device_id] = f"{m.data.get('state')} {m.data.get('reason') or ''}".strip()
            states = sorted(f"{d}: {last.get(d, 'no event')}" for d in ids - confirmed)
            raise RuntimeError(f"{len(confirmed)} of {len(ids)} boards confirmed within 300 s; the others' last "
                               f"events: {states[:20]}")
        total = time.monotonic() - t0
        print(f"  broadcast -> all confirmed: {time.monotonic() - sent:.1f} s")
        rss = rss_mb(boards)
        report(Result(f"{args.fleet} boards started, updated by one broadcast ({len(image) // 1024} KB) and all "
                      "confirmed",
                      f"{total:.1f} s", "< 90 s", total < 90))
        report(Result(f"RSS per board, {args.fleet} boards", f"mean {statistics.mean(rss):.1f} MB, max "
                      f"{max(rss):.1f} MB", "< 15 MB each", max(rss) < 15))
        report(Result("the system's own table (../shared/reference/systems/003): 20 nodes x 200 KB, sequential",
                      "20 min"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", type=int, default=100, help="boards of the staged rollout (default 100)")
    parser.add_argument("--fleet", type=int, default=1000, help="boards of the broadcast, 0 to skip (default 1000)")
    parser.add_argument("--image-kb", type=int, default=600, help="the staged rollout's image size (default 600)")
    args = parser.parse_args()
    base = firmware.build().image
    with tempfile.TemporaryDirectory() as tmp:
        staged_rollout(Path(tmp) / "staged", args, base)
        if args.fleet:
            broadcast_fleet(Path(tmp) / "broadcast", args, base)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
