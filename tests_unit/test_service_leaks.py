"""200 start/stop cycles of broker plus firmware server leave no threads, sockets or fds behind."""

import gc
import os
import threading

from harness.broker import EmbeddedBroker
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink

CYCLES = 200


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _cycle(with_client: bool) -> None:
    with EmbeddedBroker() as broker, FirmwareServer() as server:
        server.add(b"x" * 1024)
        if with_client:
            with DeviceLink(broker.url):
                pass


def test_200_cycles_leak_nothing() -> None:
    _cycle(with_client=True)  # warm up: imports and lazily created loop resources
    gc.collect()  # objects left by earlier tests may still hold fds; do not count their release as ours
    threads, fds = threading.active_count(), _open_fds()
    for i in range(CYCLES):
        _cycle(with_client=i % 10 == 0)
    gc.collect()
    assert threading.active_count() <= threads, [t.name for t in threading.enumerate()]
    assert _open_fds() <= fds, sorted(os.listdir("/proc/self/fd"))
