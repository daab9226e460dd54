"""Virtual board figures: reset to MQTT-connected, a 1 MiB OTA, and many boards at once.

    .venv/bin/python bench/bench_virtual.py [--boots 20] [--boards 100]

Prints the figures; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import rss_kb, start_board

from harness.broker import EmbeddedBroker
from harness.formats.app_image import build_virtual_image, virtual_payload
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.virtual import firmware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boots", type=int, default=20, help="resets to time")
    parser.add_argument("--boards", type=int, default=100, help="boards to run at once")
    args = parser.parse_args()
    image = firmware.build().image
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker, FirmwareServer() as server, \
            DeviceLink(broker.url) as link:
        board = start_board(Path(tmp) / "b0", "bench0", 0, image, broker.url, link)
        times = []
        for _ in range(args.boots):
            since = link.cursor()
            t0 = time.monotonic()
            board.reset()
            link.wait_for(lambda m: m.device_id == "bench0" and m.kind == "online" and m.payload == b"online",
                          timeout=20, since=since, description="online after reset")
            times.append((time.monotonic() - t0) * 1000)
        q = statistics.quantiles(times, n=20)
        print(f"reset -> MQTT connected: p50 {statistics.median(times):.0f} ms, p95 {q[18]:.0f} ms "
              f"over {len(times)} boots")

        payload = virtual_payload(image)
        big = build_virtual_image(payload + bytes(1024 * 1024 - len(image)), version="2.0.0",
                                  project_name="hil_ota_agent")
        artifact = server.add(big)
        since = link.cursor()
        t0 = time.monotonic()
        link.send("bench0", {"type": "ota", "id": "b1", "url": artifact.url})
        link.wait_ota("bench0", "b1", "succeeded", timeout=60, since=since, fail_on={"failed", "rejected"})
        print(f"OTA of a {len(big) / 1048576:.2f} MiB image, command -> succeeded: {time.monotonic() - t0:.2f} s")
        board.stop()

        boards = []
        t0 = time.monotonic()
        try:
            for i in range(args.boards):
                boards.append(start_board(Path(tmp) / f"m{i}", f"many{i}", i + 1, image, broker.url, link))
            elapsed = time.monotonic() - t0
            rss = [rss_kb(b._proc.pid) for b in boards if b._proc is not None]
            print(f"{len(boards)} boards running at once (started in {elapsed:.1f} s): app RSS "
                  f"mean {statistics.mean(rss) / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB per board")
        finally:
            for b in boards:
                b.stop()


if __name__ == "__main__":
    main()
