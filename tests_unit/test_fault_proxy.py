"""FaultProxy on real sockets: a threaded upstream server (echo, source or sink) behind it, real clients.

Each fault is measured where a device would see it: round trips for latency, transfer times for the cap,
byte counts for cuts. Waits have deadlines (socket timeouts, the proxy's and the upstream's conditions);
elapsed times are measured, never slept for.
"""

from __future__ import annotations

import gc
import os
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import timeline
from harness.fault_proxy import FaultProxy, LinkFaults, upstream_address
from harness.fault_proxy.events import ProxyEvent
from harness.fixtures import fault_notes
from harness.session.record import TestRecord

pytestmark = [
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
    pytest.mark.usefixtures("no_warnings_logged"),
]

WAIT = 5.0  # deadline of every wait that should end at once
ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.04  # s a round trip may take beyond its delays on a busy 2-core machine


# --- the upstream server --------------------------------------------------------------------------------


class Upstream(socketserver.ThreadingTCPServer):
    """echo: sends back what it gets; source: sends `payload` on connect, then reads; sink: only reads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str, payload: bytes = b"") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode, self.payload = mode, payload
        self.connections = self.open = self.received = 0
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), name="upstream", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.server_address[0], self.server_address[1]

    def count(self, **deltas: int) -> None:
        with self.changed:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        with self.changed:
            if not self.changed.wait_for(predicate, timeout):
                raise AssertionError(f"upstream: {what} not within {timeout} s (received {self.received})")

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(WAIT)


class _Handler(socketserver.BaseRequestHandler):
    server: Upstream

    def handle(self) -> None:
        server, sock = self.server, self.request
        server.count(connections=1, open=1)
        try:
            if server.mode == "source":
                sock.sendall(server.payload)
            while data := sock.recv(65536):
                server.count(received=len(data))
                if server.mode == "echo":
                    sock.sendall(data)
        except OSError:
            pass  # the proxy cut the connection: what the test is about
        finally:
            sock.close()  # before counting it closed, so a test that saw open == 0 counts no fd of ours
            server.count(open=-1)


@pytest.fixture
def echo() -> Iterator[Upstream]:
    server = Upstream("echo")
    yield server
    server.close()


@pytest.fixture
def proxy(echo: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(*echo.address, name="p", seed=1) as p:
        yield p


def connect(proxy: FaultProxy, timeout: float = WAIT) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def read_until_closed(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how it ended: "eof" or "reset"."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    return data, "eof"


def how_a_refused_connection_ends(proxy: FaultProxy) -> tuple[bytes, str]:
    """Connect to a refusing proxy and read: the RST can arrive before a timed connect() has read its
    result (Python polls, then reads SO_ERROR), so a reset at connect counts the same as one at recv."""
    try:
        sock = connect(proxy)
    except ConnectionResetError:
        return b"", "reset"
    with sock:
        return read_until_closed(sock)


def round_trip(sock: socket.socket, message: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(message)
    assert recv_exactly(sock, len(message)) == message
    return time.monotonic() - started


def whats(proxy: FaultProxy) -> list[str]:
    return [e.what for e in proxy.events]


# --- forwarding -----------------------------------------------------------------------------------------


def test_forwards_both_ways_passes_a_half_close_on_and_counts(echo: Upstream, proxy: FaultProxy) -> None:
    data = os.urandom(300_000)
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        assert recv_exactly(sock, len(data)) == data
        sender.join(WAIT)
        sock.shutdown(socket.SHUT_WR)  # the echo server sees EOF, closes, and the client sees EOF
        assert read_until_closed(sock) == (b"", "eof")
    stats = proxy.wait_until(lambda s: s.current == 0, what="the connection closing")
    assert (stats.accepted, stats.bytes_up, stats.bytes_down, stats.cuts) == (1, len(data), len(data), 0)
    assert proxy.events == []  # a clean link applied no fault


# --- latency and jitter ---------------------------------------------------------------------------------


def test_latency_adds_twice_the_one_way_delay_to_a_round_trip(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        clean = min(round_trip(sock) for _ in range(3))
        proxy.set_latency(60)
        rtts = [round_trip(sock) for _ in range(5)]
    assert clean < 0.02
    assert min(rtts) >= 0.120, rtts
    assert statistics.median(rtts) <= 0.120 + TOLERANCE, rtts
    assert proxy.events[-1].text == "set: latency 60 ms ± 0 ms each way"


def test_jitter_stays_within_its_bounds_and_never_reorders(proxy: FaultProxy) -> None:
    proxy.set_latency(40, jitter_ms=20)  # each way 20..60 ms: a round trip 40..120 ms
    with connect(proxy) as sock:
        rtts = [round_trip(sock) for _ in range(8)]
        messages = [f"<{i}>".encode() for i in range(200)]
        for message in messages:  # each its own segment (TCP_NODELAY): each its own delay
            sock.sendall(message)
        stream = b"".join(messages)
        assert recv_exactly(sock, len(stream)) == stream
    assert min(rtts) >= 0.040 and max(rtts) <= 0.120 + TOLERANCE, rtts
    assert max(rtts) - min(rtts) >= 0.010, f"no jitter to be seen: {rtts}"


# --- bandwidth --------------------------------------------------------------------------------------------

SIZE = 256 * 1024
RATE = 512 * 1024


def test_the_cap_holds_a_download_to_its_rate() -> None:
    source = Upstream("source", os.urandom(SIZE))
    try:
        with FaultProxy(*source.address) as proxy:
            proxy.set_bandwidth(RATE)
            started = time.monotonic()
            with connect(proxy) as sock:
                data = recv_exactly(sock, SIZE)
            elapsed = time.monotonic() - started
    finally:
        source.close()
    assert data == source.payload
    assert SIZE / RATE * 0.9 <= elapsed <= SIZE / RATE * 1.2, f"{SIZE} bytes at {RATE} B/s took {elapsed:.3f} s"


def test_the_cap_holds_an_upload_to_its_rate() -> None:
    sink = Upstream("sink")
    try:
        with FaultProxy(*sink.address) as proxy:
            proxy.set_bandwidth(RATE)
            with connect(proxy) as sock:
                started = time.monotonic()
                sock.sendall(os.urandom(SIZE))
                sink.wait(lambda: sink.received == SIZE, f"{SIZE} bytes")
                elapsed = time.monotonic() - started
    finally:
        sink.close()
    assert SIZE / RATE * 0.9 <= elapsed <= SIZE / RATE * 1.2, f"{SIZE} bytes at {RATE} B/s took {elapsed:.3f} s"


def test_lifting_the_cap_mid_transfer_speeds_the_rest_up() -> None:
    source = Upstream("source", os.urandom(1024 * 1024))
    try:
        with FaultProxy(*source.address) as proxy:
            # capped before connecting: the source sends at once, and a cap set after the connect found the
            # first 64 KiB already forwarded into the client's socket (0.000 s, seen in a CI run)
            proxy.set_bandwidth(256 * 1024)  # the whole megabyte would take 4 s
            with connect(proxy) as sock:
                started = time.monotonic()
                head = recv_exactly(sock, 64 * 1024)
                at_cap = time.monotonic() - started
                proxy.set_bandwidth(None)
                rest = recv_exactly(sock, len(source.payload) - len(head))
                total = time.monotonic() - started
    finally:
        source.close()
    assert head + rest == source.payload
    assert 0.2 <= at_cap <= 0.45, f"64 KiB at 256 KiB/s took {at_cap:.3f} s"
    assert total - at_cap < 0.5, f"the uncapped rest took {total - at_cap:.3f} s (3.75 s at the cap)"
    assert whats(proxy) == ["set", "clear"]


# --- cuts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("how", "ending"), [("rst", "reset"), ("fin", "eof")])
def test_a_cut_at_byte_n_gives_the_client_exactly_n_bytes(how: str, ending: str) -> None:
    """A small receive buffer keeps bytes queued in the proxy's socket when the cut comes: a reset that did not
    wait for the client to take them would drop them."""
    n = 200_001
    source = Upstream("source", os.urandom(300_000))
    try:
        with FaultProxy(*source.address) as proxy:
            proxy.cut_after_bytes(n, "down", how=how)  # type: ignore[arg-type]
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(WAIT)
                sock.connect((proxy.host, proxy.port))
                data, ended = read_until_closed(sock)
            stats = proxy.wait_until(lambda s: s.current == 0, what="the cut connection gone")
    finally:
        source.close()
    assert (len(data), ended) == (n, ending)
    assert data == source.payload[:n]
    assert (stats.cuts, stats.bytes_down) == (1, n)
    assert proxy.events[-1].what == "cut" and f"after {n} bytes down ({how})" in proxy.events[-1].detail


def test_a_cut_at_byte_n_counts_from_when_it_is_set_and_can_clear_itself(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        assert round_trip(sock, b"a" * 1000) < 1
        proxy.cut_after_bytes(500, "down", connections=1)  # the first 1000 bytes do not count
        sock.sendall(b"b" * 1000)
        assert read_until_closed(sock) == (b"b" * 500, "reset")
    assert proxy.faults.cut is None, "a cut of one connection clears itself once it fired"
    with connect(proxy) as sock:
        assert round_trip(sock, b"c" * 1000) < 1
    assert whats(proxy) == ["set", "cut", "clear"]


def test_a_cut_upwards_lets_exactly_n_bytes_reach_the_server() -> None:
    sink = Upstream("sink")
    try:
        with FaultProxy(*sink.address) as proxy, connect(proxy) as sock:
            proxy.cut_after_bytes(300, "up")
            sock.sendall(b"u" * 1000)
            assert read_until_closed(sock) == (b"", "reset")
            # the kernel acknowledges the 300 bytes before the sink accepts: wait for it to take them too
            sink.wait(lambda: sink.connections == 1 and sink.open == 0, "the server's side accepted and closed")
    finally:
        sink.close()
    assert sink.received == 300


def test_a_cut_at_time_t_cuts_the_open_connections_then(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        started = time.monotonic()
        proxy.cut_at(0.3)
        assert read_until_closed(sock) == (b"", "reset")
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed <= 0.4, elapsed
    with connect(proxy) as sock:  # a one-off: later connections are left alone
        assert round_trip(sock) < 1
    assert [e.text for e in proxy.events] == [
        "set: cut every open connection in 0.3 s (rst)",
        "cut: timed cut (0.3 s): 1 connection(s) cut (rst)",
    ]


# --- black hole, refusal, reset --------------------------------------------------------------------------


def test_a_black_hole_forwards_nothing_holds_it_and_delivers_it_when_healed(echo: Upstream, proxy: FaultProxy) -> None:
    with connect(proxy) as before:
        round_trip(before)
        proxy.set_blackhole()
        before.sendall(b"held")
        before.settimeout(0.3)
        with pytest.raises(TimeoutError):  # the deadline of the wait for nothing
            before.recv(10)
        with connect(proxy) as during:
            during.sendall(b"new")
            proxy.wait_accepted(2)
            assert (echo.connections, echo.received) == (1, 4), "nothing may reach the server in a black hole"
            proxy.set_blackhole(False)
            before.settimeout(WAIT)
            assert recv_exactly(before, 4) == b"held"
            assert recv_exactly(during, 3) == b"new"
    assert [e.text for e in proxy.events] == [
        "set: black hole: nothing forwarded",
        "clear: black hole: held data flows",
    ]


def test_what_a_board_sent_before_it_went_away_in_a_black_hole_never_arrives(echo: Upstream) -> None:
    """A board that closes its side during a partition rebooted or lost power, and a chip keeps no TCP state to
    retransmit from: its held data is dropped and its close reaches no one. The server never hears from a
    connection it never had, and those it had (one sending, one idle) are reset once the partition heals."""
    gone: list[str] = []
    changed = threading.Condition()

    def on_event(event: ProxyEvent) -> None:
        if event.what == "gone":
            with changed:
                gone.append(event.detail.split("; ")[1])
                changed.notify_all()

    with FaultProxy(*echo.address, name="p", on_event=on_event) as proxy, connect(proxy) as before, \
            connect(proxy) as idle:
        round_trip(before)
        round_trip(idle)
        proxy.set_blackhole()
        during = connect(proxy)
        proxy.wait_accepted(3)
        before.sendall(b"old session")
        during.sendall(b"CONNECT")  # an MQTT client's first packet: delivered late, it would take over the id
        before.close()
        during.close()
        idle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        idle.close()  # with a reset, as the virtual board's process ends with data unread
        with changed:
            assert changed.wait_for(lambda: len(gone) == 3, WAIT), f"three boards gone, not {gone}"
        assert echo.open == 2, "a close reached the server during the partition"
        proxy.set_blackhole(False)
        proxy.wait_until(lambda s: s.current == 0, what="the connections ended")
        echo.wait(lambda: echo.open == 0, "the upstream connections reset")
    assert (echo.connections, echo.received) == (2, 8), "data from a board that went away reached the server"
    assert sorted(gone) == ["the 0 bytes it had sent are dropped", "the 11 bytes it had sent are dropped",
                            "the 7 bytes it had sent are dropped"], gone


def test_a_server_that_closes_in_a_black_hole_is_seen_closing_once_it_heals() -> None:
    """The server's FIN (amqtt dropping a silent session, say) crosses the partition no sooner than its data."""
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            FaultProxy(*listener.getsockname()[:2], name="p") as proxy, connect(proxy) as board:
        server_side, _ = listener.accept()  # the proxy's upstream connection, made as the board connected
        proxy.set_blackhole()
        server_side.close()
        board.settimeout(0.3)
        with pytest.raises(TimeoutError):  # the deadline of the wait for nothing
            board.recv(10)
        proxy.set_blackhole(False)
        board.settimeout(WAIT)
        assert read_until_closed(board) == (b"", "eof")


def test_refusal_resets_new_connections_and_reset_all_cuts_open_ones(proxy: FaultProxy) -> None:
    with connect(proxy) as kept:
        round_trip(kept)
        proxy.set_refuse()
        assert how_a_refused_connection_ends(proxy) == (b"", "reset")
        assert proxy.wait_until(lambda s: s.refused == 1, what="a refusal").accepted == 1
        assert round_trip(kept) < 1, "refusing new connections leaves open ones alone"
        assert proxy.reset_all() == 1
        assert read_until_closed(kept) == (b"", "reset")
    proxy.set_refuse(False)
    with connect(proxy) as later:
        assert round_trip(later) < 1
    assert whats(proxy) == ["set", "refuse", "reset", "clear"]


def test_clear_gives_a_clean_link_back_and_cancels_a_pending_cut(proxy: FaultProxy) -> None:
    proxy.apply(LinkFaults(latency_ms=200, bandwidth_bps=1000, refuse=True))
    proxy.set_refuse(False)
    with connect(proxy) as sock:
        proxy.cut_at(0.2)
        proxy.clear()
        assert proxy.faults == LinkFaults()
        assert round_trip(sock, b"x" * 10_000) < 0.05
        sock.settimeout(0.35)
        with pytest.raises(TimeoutError):  # no reset comes at 0.2 s
            sock.recv(10)
    assert proxy.events[-1].text == "clear: 1 pending timed cut(s)"


def test_faults_change_safely_from_many_threads_while_data_flows(proxy: FaultProxy) -> None:
    data = os.urandom(256 * 1024)

    def toggle(i: int) -> None:
        for k in range(30):
            proxy.set_latency((i + k) % 3)
            proxy.set_bandwidth(None if k % 2 else 4 * 1024 * 1024)

    with connect(proxy) as sock:
        togglers = [threading.Thread(target=toggle, args=(i,)) for i in range(4)]
        sender = threading.Thread(target=sock.sendall, args=(data,))
        for thread in [sender, *togglers]:
            thread.start()
        assert recv_exactly(sock, len(data)) == data
        for thread in [sender, *togglers]:
            thread.join(WAIT)


# --- values, URLs, the timeline --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.set_latency(-1), "latency_ms must be from 0 to 60000 ms"),
        (lambda p: p.set_latency(10, jitter_ms=60_001), "jitter_ms must be from 0 to 60000 ms"),
        (lambda p: p.set_bandwidth(0), "bandwidth_bps must be None (uncapped) or >= 1 byte/s"),
        (lambda p: p.cut_after_bytes(-1), "after_bytes must be >= 0"),
        (lambda p: p.cut_after_bytes(1, "sideways"), "direction must be one of ('up', 'down')"),
        (lambda p: p.cut_after_bytes(1, how="close"), "how must be one of ('rst', 'fin')"),
        (lambda p: p.cut_after_bytes(1, connections=0), "connections must be None (every connection) or >= 1"),
        (lambda p: p.cut_at(-0.5), "seconds must be from 0 to 3600"),
    ],
)
def test_bad_values_say_the_valid_range(proxy: FaultProxy, change: Callable[[FaultProxy], None], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        change(proxy)
    assert proxy.faults == LinkFaults() and proxy.events == []


def test_url_for_points_a_url_at_the_proxy(proxy: FaultProxy) -> None:
    host, port = proxy.upstream
    assert proxy.url_for(f"mqtt://dev:secret@{host}:{port}") == f"mqtt://dev:secret@127.0.0.1:{proxy.port}"
    assert proxy.url_for(f"http://{host}:{port}/fw/1/app.bin?x=1") == f"http://127.0.0.1:{proxy.port}/fw/1/app.bin?x=1"
    with pytest.raises(ValueError, match="make a proxy for that server"):
        proxy.url_for(f"http://{host}:{port + 1}/fw")
    assert upstream_address("mqtt://10.0.0.2") == ("10.0.0.2", 1883)
    assert upstream_address("https://[::1]/x") == ("::1", 443)
    assert upstream_address(("h", 7)) == ("h", 7)
    with pytest.raises(ValueError, match="give a URL with a host"):
        upstream_address("ftp://h")


def test_every_fault_goes_to_the_hook_and_into_the_timeline(echo: Upstream) -> None:
    record = TestRecord()
    with FaultProxy(*echo.address, name="broker-link", on_event=fault_notes(record)) as proxy:
        proxy.set_latency(5)
        proxy.set_refuse()
        assert how_a_refused_connection_ends(proxy) == (b"", "reset")
        proxy.wait_until(lambda s: s.refused == 1, what="a refusal")
        proxy.clear()
    faults = [(e.kind, e.source, e.text) for e in record.timeline() if e.kind == "fault"]
    assert [text for _, _, text in faults] == [
        "set: latency 5 ms ± 0 ms each way",
        "set: refusing new connections (RST)",
        faults[2][2],
        "clear: latency",
        "clear: refusal: accepting again",
    ]
    assert faults[2][2].startswith("refuse: connection from 127.0.0.1:")
    assert {source for _, source, _ in faults} == {"broker-link"}


FIXTURE_TESTS = """
import socket, socketserver, threading

made = []

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(100):
            self.request.sendall(data)

def test_the_alias_makes_proxies_that_record_into_the_timeline(fault_proxy, hil_fault_proxy):
    assert fault_proxy is hil_fault_proxy
    server = socketserver.TCPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    proxy = fault_proxy(f"http://127.0.0.1:{server.server_address[1]}/fw", name="board-http")
    made.append(proxy)
    proxy.set_latency(1)
    with socket.create_connection((proxy.host, proxy.port), timeout=5) as sock:
        sock.sendall(b"hi")
        assert sock.recv(10) == b"hi"
    proxy.set_refuse()
    server.shutdown()
    server.server_close()

def test_teardown_stopped_it_and_a_failure_shows_the_faults(fault_proxy):
    assert made and not made[0].running
    fault_proxy(("127.0.0.1", 9), name="shown").set_blackhole()
    assert False, "on purpose"
"""


def test_the_fixture_stops_its_proxies_and_puts_their_faults_in_the_timeline(tmp_path: Path) -> None:
    (tmp_path / "test_proxy_fixture.py").write_text(FIXTURE_TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-c",
            str(ROOT / "pytest.ini"),
            "--rootdir",
            str(ROOT),
            "--hil-timeline-dir",
            str(tmp_path / "timelines"),
            str(tmp_path / "test_proxy_fixture.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "1 failed, 1 passed" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    assert "timeline: faults applied" in result.stdout and "shown: set: black hole" in result.stdout
    (first,) = (tmp_path / "timelines").glob("*alias_makes*.jsonl")
    entries = [(e.kind, e.source, e.text) for e in timeline.read_jsonl(first)]
    assert entries == [
        ("fault", "board-http", "set: latency 1 ms ± 0 ms each way"),
        ("fault", "board-http", "set: refusing new connections (RST)"),
    ]


# --- no leaks --------------------------------------------------------------------------------------------


def _fds() -> Counter[str]:
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue
        kinds[target.split(":", 1)[0] if target.startswith(("socket:", "pipe:", "anon_inode:")) else "file"] += 1
    return kinds


def _threads() -> Counter[str]:
    return Counter(t.name.split("-")[0] for t in threading.enumerate() if "process_request" not in t.name)


def _cycle(echo: Upstream) -> int:
    """A proxy with a forwarding connection and one held in a black hole when it stops; its port."""
    with FaultProxy(*echo.address) as proxy:
        flowing = connect(proxy)
        round_trip(flowing)
        proxy.set_blackhole()
        held = connect(proxy)
        proxy.wait_accepted(2)
    for sock in (flowing, held):
        assert read_until_closed(sock)[1] == "reset"
        sock.close()
    echo.wait(lambda: echo.open == 0, "the server's sides closed")
    return proxy.port


def test_stop_leaves_no_thread_listening_port_or_fd(echo: Upstream) -> None:
    _cycle(echo)  # warm up: lazily made resources (the default executor) are not leaks
    gc.collect()
    threads, fds = _threads(), _fds()
    ports = [_cycle(echo) for _ in range(20)]
    gc.collect()
    assert not _threads() - threads, f"threads left behind: {dict(_threads() - threads)}"
    assert not _fds() - fds, f"fds left behind (by kind): {dict(_fds() - fds)}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", ports[-1]), timeout=WAIT)
