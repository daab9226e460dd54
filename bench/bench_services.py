"""Harness services figures: start-up, device-to-test event latency, firmware download throughput.

    .venv/bin/python bench/bench_services.py [--messages 1000] [--size-mb 4] [--rounds 3]

Loopback only; every loop is bounded. Prints the figures and whether each target is met;
docs/performance.md ("Harness services") records them with this command.

- start-up: EmbeddedBroker start / stop, FirmwareServer start / stop, both ready (target < 50 ms).
- latency: a device (bare paho client) publishes QoS 1 OTA events; the test side is a DeviceLink, timed
  in its listener, i.e. when a test's wait could see the event. amqtt and mosquitto in the same run
  (target for amqtt: p50 < 3 ms, p99 < 20 ms).
- throughput: 1, 20 and 100 concurrent downloads of one 4 MB image from our server, plain and TLS, by
  an aiohttp client in a separate process (as devices are; a client in this process would share the
  server's GIL). The baseline is 100 parallel `curl` processes fetching the same file from a static
  server (http.server's ThreadingHTTPServer, in its own process, listen backlog raised from 5 to 256:
  `python -m http.server` keeps 5, which drops SYNs under 100 clients and would flatter us), and from
  our server too. Both clocks start once the clients' processes are up. Target: our 100 plain downloads
  at no less than half of curl from the static server.
  The static-server pair is measured in `--rounds` interleaved rounds and the median taken.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from bench_common import Result, report, verdict
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import EmbeddedBroker, MosquittoBroker
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.protocol import Message

DOWNLOAD_TIMEOUT_S = 120.0
STATIC_SERVER = """
import http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
handler = lambda *a, **k: Quiet(*a, directory=sys.argv[1], **k)
with Server(("127.0.0.1", 0), handler) as httpd:
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()
"""


def ms(seconds: float) -> float:
    return seconds * 1000.0


# --- start-up ----------------------------------------------------------------------------------------------


def startup(cycles: int) -> None:
    broker_start, broker_stop, server_start, server_stop, ready = [], [], [], [], []
    for _ in range(cycles):
        t0 = time.perf_counter()
        broker = EmbeddedBroker().start()  # returns once the broker answered an MQTT CONNECT
        t1 = time.perf_counter()
        server = FirmwareServer().start()
        t2 = time.perf_counter()
        broker.stop()
        t3 = time.perf_counter()
        server.stop()
        t4 = time.perf_counter()
        broker_start.append(ms(t1 - t0))
        server_start.append(ms(t2 - t1))
        ready.append(ms(t2 - t0))
        broker_stop.append(ms(t3 - t2))
        server_stop.append(ms(t4 - t3))
    med = statistics.median
    report(Result(f"broker start / stop (median of {cycles})",
                  f"{med(broker_start):.1f} ms / {med(broker_stop):.1f} ms"))
    report(Result(f"firmware server start / stop (median of {cycles})",
                  f"{med(server_start):.1f} ms / {med(server_stop):.1f} ms"))
    report(Result("broker + firmware server ready", f"median {med(ready):.1f} ms, max {max(ready):.1f} ms",
                  "< 50 ms", med(ready) < 50))


# --- device-to-test latency --------------------------------------------------------------------------------


def latency(url: str, host: str, port: int, messages: int) -> list[float]:
    """ms from a device's QoS 1 publish to the DeviceLink listener seeing the event, for `messages` events."""
    received: dict[int, float] = {}
    all_in = threading.Event()

    def on_event(message: Message) -> None:
        if message.kind == "ota" and isinstance(message.data, dict):
            received[message.data["seq"]] = time.perf_counter()
            if len(received) == messages:
                all_in.set()

    sent: dict[int, float] = {}
    with DeviceLink(url, strict=False) as link:
        link.add_listener(on_event)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-device")
        device.connect(host, port)
        device.loop_start()
        try:
            for seq in range(1, messages + 1):
                event = {"id": "bench", "seq": seq, "state": "downloading", "bytes": seq, "total": messages,
                         "percent": seq * 100 // messages}
                sent[seq] = time.perf_counter()
                info = device.publish("devices/bench/ota", json.dumps(event), qos=1)
                info.wait_for_publish(5)
                if not info.is_published():
                    raise RuntimeError(f"no PUBACK for event {seq} from {url}")
            if not all_in.wait(30):
                print(f"  only {len(received)}/{messages} events arrived within 30 s")
        finally:
            device.loop_stop()
            device.disconnect()
    return [ms(received[seq] - sent[seq]) for seq in sent if seq in received]


def report_latency(name: str, values: list[float], messages: int, targets: tuple[float, float] | None) -> None:
    q = statistics.quantiles(values, n=100)
    p50, p99 = statistics.median(values), q[98]
    value = f"{len(values)}/{messages} events, p50 {p50:.2f} ms, p90 {q[89]:.2f} ms, p99 {p99:.2f} ms, " \
            f"max {max(values):.2f} ms"
    if targets is None:
        report(Result(f"event latency, {name}", value))
    else:
        ok = len(values) == messages and p50 < targets[0] and p99 < targets[1]
        report(Result(f"event latency, {name}", value, f"p50 < {targets[0]:g} ms, p99 < {targets[1]:g} ms", ok))


# --- throughput --------------------------------------------------------------------------------------------


async def _download(session: Any, url: str, ssl_ctx: ssl.SSLContext | bool) -> int:
    total = 0
    async with session.get(url, ssl=ssl_ctx) as resp:
        resp.raise_for_status()
        async for chunk in resp.content.iter_chunked(256 * 1024):
            total += len(chunk)
    return total


async def _client(url: str, clients: int, cafile: str | None) -> dict[str, float]:
    import aiohttp

    ssl_ctx: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else False
    connector = aiohttp.TCPConnector(limit=clients, force_close=True)
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(_download(session, url, ssl_ctx) for _ in range(clients)))
        return {"seconds": time.perf_counter() - t0, "sizes": sizes}


def client_main(url: str, clients: int, cafile: str | None) -> None:
    """`--client` mode: run the downloads in this process and print what happened as JSON."""
    print(json.dumps(asyncio.run(_client(url, clients, cafile))))


def aiohttp_clients(url: str, clients: int, size: int, cafile: str | None = None) -> float:
    """MB/s of `clients` concurrent downloads by an aiohttp client in its own process."""
    command = [sys.executable, __file__, "--client", url, str(clients)] + (["--cafile", cafile] if cafile else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S + 30, check=True)
    outcome = json.loads(done.stdout)
    if outcome["sizes"] != [size] * clients:
        raise RuntimeError(f"short downloads from {url}: {sorted(set(outcome['sizes']))}")
    return clients * size / outcome["seconds"] / 1e6


def curl_processes(url: str, clients: int, size: int, cafile: str | None = None) -> float:
    """MB/s of `clients` parallel curl processes.

    All processes are started first, each blocked reading its config (the URL) from stdin; the clock
    starts when they are given it. Starting 100 processes takes about a second here, which would
    otherwise count against curl; the aiohttp client's clock likewise starts after its start-up.
    """
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "--max-time",
               str(int(DOWNLOAD_TIMEOUT_S))] + (["--cacert", cafile] if cafile else []) + ["-K", "-"]
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(clients)]
    t0 = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f'url = "{url}"\n')
        proc.stdin.close()
    outputs = []
    for proc in procs:  # bounded: each curl gives up after --max-time
        assert proc.stdout is not None
        outputs.append(proc.stdout.read())
        proc.stdout.close()
        proc.wait(10)
    seconds = time.perf_counter() - t0
    bad = [o for o, p in zip(outputs, procs, strict=True) if p.returncode != 0 or o != f"200 {size}"]
    if bad:
        raise RuntimeError(f"{len(bad)} curl downloads from {url} failed: {bad[:3]}")
    return clients * size / seconds / 1e6


class StaticServer:
    """ThreadingHTTPServer (backlog 256) serving a directory, in its own process."""

    def __init__(self, directory: Path) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", STATIC_SERVER, str(directory)], stdout=subprocess.PIPE,
                                      text=True)
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def throughput(size: int, rounds: int) -> None:
    data = os.urandom(size)
    mb = size >> 20
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fw.bin").write_bytes(data)
        cafile = str(Path(tmp, "ca.pem"))
        for tls in (False, True):
            kind = "TLS" if tls else "plain"
            with FirmwareServer(tls=tls) as server:
                artifact = server.add(data)
                assert artifact.sha256 == hashlib.sha256(data).hexdigest()
                if tls:
                    Path(cafile).write_text(server.ca_pem)
                ca = cafile if tls else None
                figures = [f"{aiohttp_clients(artifact.url, n, size, ca):.0f}" for n in (1, 20)]
                report(Result(f"firmware server, {kind}, 1 / 20 concurrent {mb} MB downloads (aiohttp client)",
                              " / ".join(figures) + " MB/s"))
                if tls:
                    ours = aiohttp_clients(artifact.url, 100, size, ca)
                    curl = curl_processes(artifact.url, 100, size, ca)
                    report(Result(f"firmware server, TLS, 100 concurrent {mb} MB downloads", f"aiohttp client "
                                  f"{ours:.0f} MB/s, 100 curl processes {curl:.0f} MB/s"))
                    continue
                static = StaticServer(Path(tmp))
                try:
                    static_url = f"http://127.0.0.1:{static.port}/fw.bin"
                    pairs = []
                    for _ in range(rounds):  # interleaved, so a noisy moment hits both sides
                        pairs.append((aiohttp_clients(artifact.url, 100, size), curl_processes(static_url, 100, size)))
                    curl_ours = curl_processes(artifact.url, 100, size)
                    aiohttp_static = aiohttp_clients(static_url, 100, size)
                finally:
                    static.close()
                ours = statistics.median(p[0] for p in pairs)
                baseline = statistics.median(p[1] for p in pairs)
                report(Result(f"firmware server, plain, 100 concurrent {mb} MB downloads, aiohttp client (median of "
                              f"{rounds})", f"{ours:.0f} MB/s (rounds: {', '.join(f'{p[0]:.0f}' for p in pairs)})"))
                report(Result(f"baseline: 100 curl processes from the static server (median of {rounds})",
                              f"{baseline:.0f} MB/s (rounds: {', '.join(f'{p[1]:.0f}' for p in pairs)})"))
                report(Result("ours / baseline", f"{ours / baseline:.2f}", ">= 0.5", ours >= 0.5 * baseline))
                report(Result("cross-checks: 100 curl processes from our server; aiohttp client from the static "
                              "server", f"{curl_ours:.0f} MB/s; {aiohttp_static:.0f} MB/s"))


# --- main --------------------------------------------------------------------------------------------------


def timed(title: str, step: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    print(f"== {title}", flush=True)
    step()
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000, help="QoS 1 events per latency run")
    parser.add_argument("--size-mb", type=int, default=4, help="image size for the downloads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the 100-client comparison with curl")
    parser.add_argument("--cycles", type=int, default=50, help="start/stop cycles for the start-up figures")
    parser.add_argument("--client", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--cafile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client[0], int(args.client[1]), args.cafile)
        return 0
    if shutil.which("curl") is None:
        parser.error("curl is needed for the download baseline (Debian: apt-get install curl)")

    timed("start-up", lambda: startup(args.cycles))

    def latencies() -> None:
        with EmbeddedBroker() as broker:
            values = latency(broker.url, broker.host, broker.port, args.messages)
        report_latency("amqtt (embedded)", values, args.messages, (3.0, 20.0))
        with MosquittoBroker() as broker:
            values = latency(broker.url, broker.host, broker.port, args.messages)
        report_latency("mosquitto (reference)", values, args.messages, None)

    timed(f"device-to-test latency, {args.messages} QoS 1 events", latencies)
    timed(f"download throughput, {args.size_mb} MB image", lambda: throughput(args.size_mb << 20, args.rounds))
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
