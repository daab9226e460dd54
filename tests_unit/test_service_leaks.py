"""200 start/stop cycles of broker plus firmware server leave no threads, sockets or fds behind.

Every 10th cycle also has a client on each (a device link through the broker, a download from the
server), every 50th serves HTTPS, so the connection paths are counted too, not only listen and close.
"""

from __future__ import annotations

import gc
import os
import ssl
import threading
import urllib.request
from collections import Counter

from harness.broker import EmbeddedBroker
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink

CYCLES = 200
IMAGE = os.urandom(64 * 1024)


def _fds() -> Counter[str]:
    """Open fds by kind: 'socket', 'pipe', 'anon_inode' (epoll, eventfd) or 'file'."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the fd listdir itself used, closed by now
            continue
        kind = target.split(":", 1)[0] if target.split(":", 1)[0] in ("socket", "pipe", "anon_inode") else "file"
        kinds[kind] += 1
    return kinds


def _threads() -> Counter[str]:
    return Counter(t.name.split("-")[0] for t in threading.enumerate())


def _cycle(i: int) -> None:
    tls = i % 50 == 0
    with EmbeddedBroker() as broker, FirmwareServer(tls=tls) as server:
        artifact = server.add(IMAGE)
        if i % 10 == 0:
            with DeviceLink(broker.url):
                pass
            context = ssl.create_default_context(cadata=server.ca_pem) if tls else None
            with urllib.request.urlopen(artifact.url, timeout=5, context=context) as response:
                assert response.read() == IMAGE


def test_200_cycles_leak_nothing() -> None:
    _cycle(0)  # warm up: imports and lazily created resources (the default executor, ssl, paho)
    gc.collect()  # objects left by earlier tests may still hold fds; do not count their release as ours
    threads, fds = _threads(), _fds()
    for i in range(CYCLES):
        _cycle(i)
    gc.collect()
    grown_threads, grown_fds = _threads() - threads, _fds() - fds  # Counter subtraction keeps only growth
    assert not grown_threads, f"threads left behind: {dict(grown_threads)}"
    assert not grown_fds, f"fds left behind (by kind): {dict(grown_fds)}"
