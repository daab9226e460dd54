"""Harness services figures: broker and server start-up, event latency, download throughput.

    .venv/bin/python bench/bench_services.py [--messages 1000] [--size-mb 4]

Loopback only; every loop is bounded. Prints the figures; docs/performance.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import os
import shutil
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import EmbeddedBroker, MosquittoBroker
from harness.fwserver import FirmwareServer


def startup_times(cycles: int = 50) -> None:
    starts, stops, ready = [], [], []
    for _ in range(cycles):
        t0 = time.perf_counter()
        broker = EmbeddedBroker().start()
        t1 = time.perf_counter()
        server = FirmwareServer().start()
        t2 = time.perf_counter()
        broker.stop()
        t3 = time.perf_counter()
        server.stop()
        starts.append((t1 - t0) * 1000)
        ready.append((t2 - t0) * 1000)
        stops.append((t3 - t2) * 1000)
    print(f"broker start {statistics.median(starts):.1f} ms, stop {statistics.median(stops):.1f} ms (median of {cycles})")
    print(f"broker + server ready: median {statistics.median(ready):.1f} ms, max {max(ready):.1f} ms")


def latency(url_host: str, port: int, messages: int) -> list[float]:
    """QoS 1 publish -> receive on another client (the device-to-test path), in ms."""
    received: dict[int, float] = {}
    done = threading.Event()

    def on_message(_c, _u, msg) -> None:
        received[int(msg.payload)] = time.perf_counter()
        if len(received) == messages:
            done.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(url_host, port)
    sub.subscribe("devices/bench/ota", qos=1)
    sub.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("no SUBACK from the broker")
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    pub.connect(url_host, port)
    pub.loop_start()
    sent: dict[int, float] = {}
    for i in range(messages):
        sent[i] = time.perf_counter()
        pub.publish("devices/bench/ota", str(i), qos=1).wait_for_publish(5)
    done.wait(30)
    for client in (pub, sub):
        client.loop_stop()
        client.disconnect()
    return [(received[i] - sent[i]) * 1000 for i in sent if i in received]


def print_latency(name: str, values: list[float], messages: int) -> None:
    q = statistics.quantiles(values, n=100)
    print(f"{name}: {len(values)}/{messages} QoS 1 events, p50 {statistics.median(values):.2f} ms, p99 {q[98]:.2f} ms")


async def _download(session: aiohttp.ClientSession, url: str, ssl_ctx: ssl.SSLContext | None) -> int:
    total = 0
    async with session.get(url, ssl=ssl_ctx) as resp:
        async for chunk in resp.content.iter_chunked(256 * 1024):
            total += len(chunk)
    return total


async def _many(url: str, clients: int, ssl_ctx: ssl.SSLContext | None) -> tuple[int, float]:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        sizes = await asyncio.gather(*(_download(session, url, ssl_ctx) for _ in range(clients)))
        return sum(sizes), time.perf_counter() - t0


def throughput(size: int) -> None:
    data = os.urandom(size)
    for tls in (False, True):
        with FirmwareServer(tls=tls) as server:
            artifact = server.add(data)
            ctx = None
            if tls:
                ctx = ssl.create_default_context(cadata=server.ca_pem)
            for clients in (1, 20, 100):
                total, seconds = asyncio.run(_many(artifact.url, clients, ctx))
                print(f"fwserver {'TLS' if tls else 'plain'} {clients:3d} x {size >> 20} MB: "
                      f"{total / seconds / 1e6:7.1f} MB/s")
    curl_baseline(data, 100)


def curl_baseline(data: bytes, clients: int) -> None:
    """100 parallel curl processes against a static server (python -m http.server) in the same run."""
    if shutil.which("curl") is None:
        print("curl not installed: no baseline")
        return
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "fw.bin").write_bytes(data)
        class QuietHandler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k) -> None:
                super().__init__(*a, directory=tmp, **k)

            def log_message(self, *args) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
        httpd.request_queue_size = 256
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/fw.bin"
        t0 = time.perf_counter()
        procs = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", url]) for _ in range(clients)]
        for p in procs:
            p.wait(timeout=120)
        seconds = time.perf_counter() - t0
        httpd.shutdown()
        httpd.server_close()
    print(f"baseline: {clients} parallel curl from a static server: {clients * len(data) / seconds / 1e6:7.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size-mb", type=int, default=4)
    args = parser.parse_args()
    startup_times()
    with EmbeddedBroker() as broker:
        print_latency("amqtt", latency(broker.host, broker.port, args.messages), args.messages)
    with MosquittoBroker() as broker:
        print_latency("mosquitto", latency(broker.host, broker.port, args.messages), args.messages)
    throughput(args.size_mb << 20)


if __name__ == "__main__":
    main()
