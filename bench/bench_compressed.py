"""Compressed and plain OTA of our image side by side: bytes on the wire and update time, in one run.

    .venv/bin/python bench/bench_compressed.py [--rounds 3] [--link-bps 500000]

One virtual board updates `rounds` times with each of the plain image, its gzip and its zlib stream (the
same image with a new version each time, so every update is newer), in turns, over loopback and over a link
throttled to `link-bps` bytes/s by the firmware server (500 KB/s: about an ESP32's HTTP OTA over Wi-Fi). For
each: the bytes the server sent (its request log), the time from the command to `rebooting` (download,
inflation, flash writes, checks, switch) and to `succeeded` on the new version.

Targets: the compressed streams are at least 40 % smaller than the image and, over the slow link, update at
least 40 % faster (the low ends of option 1E's "40-60 %", ../shared/reference/systems/003); over loopback,
where only the CPU counts, inflating costs at most 25 % over the plain update. Prints each figure beside its
target and exits 1 on a miss; docs/performance.md records them with this command.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import Result, report, start_board, verdict

from harness.broker import EmbeddedBroker
from harness.formats import app_image
from harness.fwserver import FaultPlan, FirmwareServer
from harness.link import DeviceLink
from harness.virtual import firmware

ENCODINGS = ("plain", *app_image.COMPRESSIONS)
MIN_SAVING = 0.40
MAX_SLOWDOWN = 1.25  # loopback: compressed / plain time to `rebooting`
MAX_SLOW_LINK_RATIO = 0.60  # the throttled link: compressed / plain time to `rebooting`


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="updates per encoding and link")
    parser.add_argument("--link-bps", type=int, default=500_000, help="the slow link's bytes per second")
    args = parser.parse_args()
    base = firmware.build().image
    links: dict[str, int | None] = {"loopback": None, f"{args.link_bps // 1000} KB/s": args.link_bps}
    runs = [(link_name, e) for link_name in links for e in ENCODINGS]
    wire: dict[tuple[str, str], list[int]] = {r: [] for r in runs}
    to_reboot: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    to_success: dict[tuple[str, str], list[float]] = {r: [] for r in runs}
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker, FirmwareServer() as server, \
            DeviceLink(broker.url) as link:
        board = start_board(Path(tmp) / "b0", "zbench", 0, base, broker.url, link)
        try:
            n = 0
            for _ in range(args.rounds):
                for run in runs:
                    link_name, encoding = run
                    n += 1
                    image = app_image.patch_version(base, f"{n + 1}.0.0")
                    body = image if encoding == "plain" else app_image.compress(image, encoding)
                    artifact = server.add(body, name=f"fw{n}.bin", faults=FaultPlan(throttle_bps=links[link_name]))
                    since = link.cursor()
                    t0 = time.monotonic()
                    link.send("zbench", {"type": "ota", "id": f"z{n}", "url": artifact.url, "size": len(image),
                                         "sha256": hashlib.sha256(image).hexdigest()})
                    link.wait_ota("zbench", f"z{n}", "rebooting", timeout=60, since=since,
                                  fail_on={"failed", "rejected"})
                    to_reboot[run].append(time.monotonic() - t0)
                    link.wait_ota("zbench", f"z{n}", "succeeded", timeout=60, since=since,
                                  fail_on={"failed", "rolled_back"})
                    to_success[run].append(time.monotonic() - t0)
                    wire[run].append(sum(r.bytes_sent for r in server.requests_for(artifact)))
        finally:
            board.stop()
    print(f"image: {len(base)} bytes (the default variant's virtual image), {args.rounds} updates per encoding"
          " and link\n")
    for run in runs:
        link_name, encoding = run
        name = f"{link_name}, {encoding}"
        plain_time = statistics.median(to_reboot[(link_name, "plain")])
        sent = statistics.median(wire[run])
        saving = 1 - sent / len(base)
        t_reboot, t_success = statistics.median(to_reboot[run]), statistics.median(to_success[run])
        if encoding == "plain":
            report(Result(f"{name}: bytes on the wire", f"{sent:.0f}"))
            report(Result(f"{name}: command -> rebooting (median)", f"{t_reboot * 1000:.0f} ms"))
        else:
            limit = MAX_SLOWDOWN if links[link_name] is None else MAX_SLOW_LINK_RATIO
            report(Result(f"{name}: bytes on the wire", f"{sent:.0f} ({saving:.1%} smaller)",
                          f">= {MIN_SAVING:.0%} smaller", saving >= MIN_SAVING))
            report(Result(f"{name}: command -> rebooting (median)",
                          f"{t_reboot * 1000:.0f} ms ({t_reboot / plain_time:.2f} x plain)",
                          f"<= {limit:.2f} x plain", t_reboot <= limit * plain_time))
        report(Result(f"{name}: command -> succeeded (median)", f"{t_success * 1000:.0f} ms"))
    return verdict()


if __name__ == "__main__":
    raise SystemExit(main())
