"""Push figures: a 1 MiB image through the broker beside a 1 MiB URL update, on amqtt and mosquitto.

    .venv/bin/python bench/bench_push.py [--rounds 3] [--window 4] [--chunk 16384] [--qos 1] [--flash chip]

The device is the reference firmware on the virtual board (one board per broker); the pusher is the
harness's `Pusher` (what `python -m harness push` runs) and the URL update comes from the harness's
firmware server. Each round installs the 1 MiB image both ways, one after the other, on the same board:
command to `rebooting` (the image written, verified and set to boot), then the new image's `succeeded`
before the next. Before the URL update, an update from a missing URL fails: the boot's first HTTP client,
which on the host loads libcurl (a chip loads nothing), so the timed one measures the transfer.
Throughput is the image size over that time, median of the rounds.
The virtual board's flash takes no time by default (as in the catalog), so both installs are the transfer
alone; `--flash chip` gives it an ESP32's write and erase rates (harness/virtual/flash.py's CHIP_TIMING),
so both are the whole path a chip runs, its flash included: about 17 s an install.
Targets: push throughput at least 0.3x the URL update's, per broker. mosquitto runs as a process of its
own, so its RSS is sampled (every 20 ms, /proc) during the pushes: its growth must stay within what the
window lets it hold (window x chunk bytes in flight, plus its own working set), target < 2 MiB.
Prints each figure with PASS/FAIL beside its target and exits non-zero on a miss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Self

from bench_common import Result, report, rss_kb, start_board, verdict

from harness.broker import EmbeddedBroker, MosquittoBroker
from harness.formats.app_image import build_virtual_image, virtual_payload
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.push import DEFAULT_CHUNK, DEFAULT_QOS, DEFAULT_WINDOW, Pusher
from harness.virtual import firmware
from harness.virtual.flash import TIMINGS, TIMINGS_HELP

MIB = 1024 * 1024
RSS_BOUND_KB = 2048


def one_mib_image(base: bytes, version: str) -> bytes:
    """The firmware padded to 1 MiB (trailing bytes after the executable; it still runs), at `version`."""
    payload = virtual_payload(base)
    return build_virtual_image(payload + bytes(MIB - len(base)), version=version, project_name="hil_ota_agent")


class RssSampler:
    """The peak RSS of a process while running, sampled from /proc every 20 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kb = max(self.peak_kb, rss_kb(self.pid))


def load_http_client(server: FirmwareServer, link: DeviceLink, device_id: str, request_id: str) -> None:
    """An update from a URL the server does not have, failed with http_status: the board's first HTTP client of
    this boot. The host port loads libcurl at a boot's first HTTP client (device/port/linux/src/host_curl.c,
    about 5 ms of a 10 to 20 ms install), which a chip does not do: so the timed URL update after it measures the
    transfer, as on the chip, and the ratio is not flattered by the loading."""
    since = link.cursor()
    link.send(device_id, {"type": "ota", "id": request_id, "url": f"{server.base_url}/no-such-image.bin"})
    failed = link.wait_ota(device_id, request_id, "failed", timeout=30, since=since, fail_on={"rejected", "rebooting"})
    if failed.get("reason") != "http_status":  # failed before its HTTP client, libcurl would load in the timed one
        raise RuntimeError(f"the warm-up update failed with {failed.get('reason')!r}, not http_status: {failed}")


def timed(install: Callable[[], None], link: DeviceLink, device_id: str, request_id: str) -> float:
    """Seconds from the command to `rebooting`; then waits for the new image's `succeeded`."""
    since = link.cursor()
    t0 = time.monotonic()
    install()
    link.wait_ota(device_id, request_id, "rebooting", timeout=180, since=since, fail_on={"failed", "rejected"})
    seconds = time.monotonic() - t0
    link.wait_ota(device_id, request_id, "succeeded", timeout=60, since=since, fail_on={"rolled_back"})
    return seconds


def measure(name: str, broker: EmbeddedBroker | MosquittoBroker, index: int, workdir: Path,
            args: argparse.Namespace) -> None:
    rounds = args.rounds
    device_id = f"push{index}"
    base = firmware.build().image
    with ExitStack() as stack:
        stack.enter_context(broker)
        server = stack.enter_context(FirmwareServer())
        link = stack.enter_context(DeviceLink(broker.url))
        board = start_board(workdir / device_id, device_id, index, base, broker.url, link,
                            flash_timing=TIMINGS[args.flash], heartbeat_s=0)
        stack.callback(board.stop)
        pusher = stack.enter_context(Pusher(broker.url, device_id, window=args.window, chunk=args.chunk,
                                            qos=args.qos).connect())
        url_s: list[float] = []
        push_s: list[float] = []
        peak_growth_kb = 0
        for r in range(rounds):
            by_url = one_mib_image(base, f"{2 * r + 2}.0.0")  # each install newer than the last
            artifact = server.add(by_url)
            command = {"type": "ota", "id": f"u{r}", "url": artifact.url}
            load_http_client(server, link, device_id, f"warm{r}")
            url_s.append(timed(lambda command=command: link.send(device_id, command), link, device_id, f"u{r}"))
            pushed = one_mib_image(base, f"{2 * r + 3}.0.0")

            def push(image: bytes = pushed, transfer: str = f"p{r}") -> None:
                result = pusher.push(image, transfer_id=transfer)
                if not result.ok:
                    raise RuntimeError(f"push {transfer} ended {result.describe()}")

            pid = broker.pid if isinstance(broker, MosquittoBroker) else None
            if pid is not None:
                before = rss_kb(pid)
                with RssSampler(pid) as sampler:
                    push_s.append(timed(push, link, device_id, f"p{r}"))
                peak_growth_kb = max(peak_growth_kb, sampler.peak_kb - before)
            else:
                push_s.append(timed(push, link, device_id, f"p{r}"))
        url_rate, push_rate = MIB / statistics.median(url_s) / MIB, MIB / statistics.median(push_s) / MIB
        label = f"{name}, flash {args.flash}"
        report(Result(f"1 MiB URL update, {label}: command -> rebooting", f"median {statistics.median(url_s):.2f} s "
                      f"({url_rate:.2f} MiB/s) over {rounds}"))
        report(Result(f"1 MiB push, {label}: command -> rebooting", f"median {statistics.median(push_s):.2f} s "
                      f"({push_rate:.2f} MiB/s) over {rounds}"))
        ratio = push_rate / url_rate
        report(Result(f"push / URL throughput, {label}", f"{ratio:.2f}", ">= 0.3", ratio >= 0.3))
        if isinstance(broker, MosquittoBroker):
            report(Result(f"mosquitto RSS growth during a push (window {args.window} x {args.chunk // 1024} KB)",
                          f"+{peak_growth_kb} KB", f"< {RSS_BOUND_KB} KB", peak_growth_kb < RSS_BOUND_KB))
        link.check_protocol()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="installs of each kind per broker")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                        help=f"chunks in flight (default {DEFAULT_WINDOW})")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help=f"bytes per chunk (default {DEFAULT_CHUNK})")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=DEFAULT_QOS,
                        help=f"the chunks' MQTT QoS (default {DEFAULT_QOS})")
    parser.add_argument("--flash", choices=sorted(TIMINGS), default="none", help=TIMINGS_HELP)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure("amqtt (embedded)", EmbeddedBroker(), 0, Path(tmp), args)
        measure("mosquitto", MosquittoBroker(), 1, Path(tmp), args)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
