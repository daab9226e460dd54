"""The TCP fault proxy: a listening port between a device and one upstream server (the broker, the firmware
server), forwarding both ways under faults a test changes while it runs.

Why our own, on asyncio: Toxiproxy (Shopify, Go) does this, but as a server of its own that Debian does
not package and that cannot be installed here (PyPI has only its 2019 client, toxiproxy-python 0.1.1);
`tc netem` needs root and acts on a whole interface, and loopback carries every test's traffic, so it
cannot fault one device's link. Of the Python proxies on PyPI, vaurien (2014) is Python 2 on gevent, and
faulty 0.2.1 (alpha) sleeps per chunk in the forwarding loop, so its latency also cuts throughput, and it
has no cut, black hole, refusal, thread-safe control or record of what it did. So this one is written
here, on the same `LoopThread` as the broker and the firmware server.

Faults apply per proxy: one proxy is one device's link to one server. A change takes effect when the
setter returns (the loop has it), on open connections as on new ones: bytes already on the wire keep the
delay they were sent with, as on a real link. Every change, every cut that fires and every refused
connection is a `ProxyEvent` in `events`, and goes to `on_event` (the `hil_fault_proxy` fixture puts them
in the test's timeline).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import itertools
import logging
import random
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from harness import clock
from harness.fault_proxy.connection import ProxiedConnection, reset
from harness.fault_proxy.events import EventHook, ProxyEvent
from harness.fault_proxy.faults import ByteCut, CutHow, Direction, LinkFaults, check_how
from harness.fault_proxy.link_state import LinkState
from harness.fault_proxy.stats import Counters, ProxyStats
from harness.loop_thread import LoopThread
from harness.net import DEFAULT_PORTS, PortInUseError, format_url
from harness.service import ListeningService

T = TypeVar("T")
URL_DEFAULT_PORTS = {**DEFAULT_PORTS, "http": 80, "https": 443}
MAX_CUT_AT_S = 3600.0
CONTROL_TIMEOUT_S = 5.0  # a change waits this long for the loop to take it
logger = logging.getLogger(__name__)


def upstream_address(target: str | tuple[str, int]) -> tuple[str, int]:
    """(host, port) of a URL (`mqtt://h:p`, `http://h:p/path`; the scheme's port if none) or of a pair."""
    if isinstance(target, tuple):
        return target[0], int(target[1])
    parts = urlsplit(target)
    try:
        port = parts.port or URL_DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    if not parts.hostname or not port:
        raise ValueError(
            f"{target!r}: give a URL with a host (and a port unless the scheme is one of "
            f"{sorted(URL_DEFAULT_PORTS)}), or a (host, port) pair"
        )
    return parts.hostname, port


class FaultProxy(ListeningService):
    """Forwards every connection made to it to `upstream_host:upstream_port`, with the link's faults.

    `listen_host` is the bind address and `advertise_host` (default: listen_host) what goes into `url_for`,
    as for the broker and the firmware server: 127.0.0.1 for virtual boards, the address a real board
    reaches (or 0.0.0.0 with the LAN address advertised). `seed` makes the jitter repeatable.
    """

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        advertise_host: str | None = None,
        name: str | None = None,
        on_event: EventHook | None = None,
        seed: int | None = None,
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._host, self._port = listen_host, listen_port
        self._advertise = advertise_host or listen_host
        self.name = name or f"proxy->{upstream_host}:{upstream_port}"
        self._on_event = on_event
        self._rng = random.Random(seed)
        self._loop = LoopThread(f"faultproxy-{self.name}")
        self._lock = threading.Lock()  # one change at a time; start and stop wait for it
        self._faults = LinkFaults()  # changed on the loop once it runs (read anywhere: one reference)
        self._cuts_left: int | None = None  # a ByteCut of K connections: how many it still cuts
        self._counters = Counters(self.name)
        self._events: list[ProxyEvent] = []
        self._numbers = itertools.count(1)
        # on the loop only
        self._server: asyncio.Server | None = None
        self._link: LinkState | None = None
        self._connections: dict[ProxiedConnection, asyncio.Task[None]] = {}
        self._timers: set[asyncio.TimerHandle] = set()

    # --- what a test reads ----------------------------------------------------------------------------

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstream

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def faults(self) -> LinkFaults:
        return self._faults

    @property
    def stats(self) -> ProxyStats:
        return self._counters.snapshot()

    @property
    def events(self) -> list[ProxyEvent]:
        return list(self._events)

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's: what to give the device instead.

        The URL must point at this proxy's upstream (a ValueError says which proxy it needs otherwise).
        """
        parts = urlsplit(url)
        if upstream_address(url) != self._upstream:
            raise ValueError(
                f"{url!r} points at {upstream_address(url)}, but {self.name} forwards to "
                f"{self._upstream}: make a proxy for that server (hil_fault_proxy({url!r}))"
            )
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = format_url("x", self.host, self.port).removeprefix("x://")
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))

    def wait_until(
        self, predicate: Callable[[ProxyStats], bool], timeout: float = 5.0, what: str = "the awaited condition"
    ) -> ProxyStats:
        """Wait for the counters to satisfy `predicate` (e.g. `lambda s: s.accepted >= 2`: the device came back)."""
        return self._counters.wait_until(predicate, timeout, what)

    def wait_accepted(self, count: int = 1, timeout: float = 5.0) -> ProxyStats:
        return self.wait_until(lambda s: s.accepted >= count, timeout, f"{count} accepted connection(s)")

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else f"{self._host}:?"
        return f"FaultProxy({self.name}, {where} -> {self._upstream[0]}:{self._upstream[1]})"

    # --- faults ------------------------------------------------------------------------------------

    def apply(self, faults: LinkFaults) -> None:
        """Replace every standing fault at once (timed cuts still pending stay)."""
        self._on_loop(lambda: self._apply(faults))

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """One-way delay in each direction, each chunk latency ± jitter (uniform), order kept."""
        self._change(latency_ms=latency_ms, jitter_ms=jitter_ms)

    def set_bandwidth(self, bytes_per_s: int | None) -> None:
        """Cap each direction at `bytes_per_s` (shared by the proxy's connections); None lifts the cap."""
        self._change(bandwidth_bps=bytes_per_s)

    def set_blackhole(self, on: bool = True) -> None:
        """A partition: nothing forwarded either way, closes included, new connections accepted and held (no
        upstream connection until it heals). Data sent meanwhile is held, not dropped, and delivered in order
        once it is cleared: what TCP's retransmissions show its ends across a partition that heals in time.
        A board that closes its side meanwhile rebooted or lost power: what it sent is dropped (a `gone`
        event), and its server connection is reset at the heal (harness/fault_proxy/connection.py)."""
        self._change(blackhole=on)

    def set_refuse(self, on: bool = True) -> None:
        """New connections are reset as soon as they are accepted; open ones go on (see reset_all)."""
        self._change(refuse=on)

    def cut_after_bytes(
        self, after_bytes: int, direction: Direction = "down", how: CutHow = "rst", connections: int | None = None
    ) -> None:
        """Cut connections once `after_bytes` more bytes went `direction` (see faults.ByteCut)."""
        self._change(cut=ByteCut(after_bytes, direction, how, connections))

    def cut_at(self, seconds: float, how: CutHow = "rst") -> None:
        """In `seconds` from now, cut every connection open then (a one-off; later ones are not touched)."""
        check_how(how)
        if not 0 <= seconds <= MAX_CUT_AT_S:
            raise ValueError(f"cut_at: seconds must be from 0 to {MAX_CUT_AT_S:g}, got {seconds}")
        if not self.running:
            raise RuntimeError(f"{self.name}: start() it before cut_at(): the time counts from now")
        self._on_loop(lambda: self._schedule_cut(seconds, how))

    def reset_all(self, how: CutHow = "rst") -> int:
        """Cut every open connection now; returns how many."""
        check_how(how)
        return self._on_loop(lambda: self._cut_all_recorded("reset", "reset_all", how))

    def clear(self) -> None:
        """Back to a clean link: every standing fault off, pending timed cuts cancelled."""
        self._on_loop(self._clear)

    # --- lifecycle ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop listening and reset every open connection; leaves no thread, socket or fd behind."""
        with self._lock:
            server, self._server = self._server, None
            try:
                if server is not None:
                    self._loop.run(self._close(server), timeout=10.0)
            finally:
                self._loop.stop()
                self._link = None

    def _is_started(self) -> bool:
        return self._server is not None

    def _start(self) -> None:
        with self._lock:
            self._loop.start()
            self._loop.run(self._open(), timeout=10.0)

    async def _open(self) -> None:
        self._link = LinkState(self._faults, self._rng)
        try:
            server = await asyncio.start_server(self._serve, self._host, self._port, reuse_address=True)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"{self.name}: port {self._port} on {self._host} was taken while starting; "
                    "stop the other process or use listen_port=0"
                ) from exc
            raise
        self._port = server.sockets[0].getsockname()[1]
        self._server = server

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = list(self._connections.values())
        for connection in list(self._connections):
            connection.cut("rst")  # stopping is not a fault: no event; it ends the connection's tasks
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        await server.wait_closed()

    # --- internals: changes, on the loop -----------------------------------------------------------

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` where the faults live: on the loop once it runs (waiting for it), else right here."""
        if self._in_loop():  # an on_event hook changing faults: already there
            return fn()
        with self._lock:
            if self._server is None:
                return fn()

            async def call() -> T:
                return fn()

            return self._loop.run(call(), timeout=CONTROL_TIMEOUT_S)

    def _in_loop(self) -> bool:
        try:
            return self._loop.running and asyncio.get_running_loop() is self._loop.loop
        except RuntimeError:
            return False

    def _change(self, **fields: object) -> None:
        new = dataclasses.replace(self._faults, **fields)  # checked here, in the caller's thread
        changed = set(fields)
        # applied on the loop to the faults as they are there (a cut may have cleared itself meanwhile)
        self._on_loop(
            lambda: self._apply(dataclasses.replace(self._faults, **{name: getattr(new, name) for name in changed}))
        )

    def _apply(self, new: LinkFaults) -> None:
        old, self._faults = self._faults, new
        if self._link is not None:
            self._link.update(new)
        if new.cut != old.cut:
            self._cuts_left = new.cut.connections if new.cut else None
            for connection in self._connections:  # counted from now on open connections
                connection.budget = _budget(new.cut)
        for what, detail in new.changes_from(old):
            self._record(what, detail)

    def _clear(self) -> None:
        self._apply(LinkFaults())
        if self._timers:
            for timer in self._timers:
                timer.cancel()
            self._record("clear", f"{len(self._timers)} pending timed cut(s)")
            self._timers.clear()

    def _schedule_cut(self, seconds: float, how: CutHow) -> None:
        timer: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(timer[0])
            self._cut_all_recorded("cut", f"timed cut ({seconds:g} s)", how)

        timer.append(asyncio.get_running_loop().call_later(seconds, fire))
        self._timers.add(timer[0])
        self._record("set", f"cut every open connection in {seconds:g} s ({how})")

    def _cut_all_recorded(self, what: str, why: str, how: CutHow) -> int:
        open_ = [c for c in self._connections if not c.closed]
        for connection in open_:
            connection.cut(how)
        self._counters.add(cuts=len(open_))
        self._record(what, f"{why}: {len(open_)} connection(s) cut ({how})")
        return len(open_)

    def _record(self, what: str, detail: str) -> None:
        event = ProxyEvent(clock.now(), self.name, what, detail)
        self._events.append(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken hook must not take the link down with it
                logger.exception("%s: on_event hook failed for %s", self.name, event)

    # --- internals: connections, on the loop -------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._link is not None
        if self._faults.refuse:
            peer = writer.get_extra_info("peername")
            reset(writer)
            self._counters.add(refused=1)
            self._record("refuse", f"connection from {peer[0]}:{peer[1]} reset" if peer else "connection reset")
            return
        connection = ProxiedConnection(
            next(self._numbers), self._link, (reader, writer), self._forwarded, self._cut_due, self._gone
        )
        connection.budget = _budget(self._faults.cut)
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        self._counters.add(accepted=1, current=1)
        try:
            error = await connection.run(*self._upstream)
            if error is not None:
                self._record("upstream", f"{connection}: cannot reach {error}; the device's connection reset")
        finally:
            del self._connections[connection]
            self._counters.add(current=-1)

    def _forwarded(self, direction: Direction, n: int) -> None:
        self._counters.add(**{f"bytes_{direction}": n})

    def _gone(self, connection: ProxiedConnection, dropped: int) -> None:
        self._record("gone", f"{connection} closed by the board in the black hole; the {dropped} bytes it had sent "
                             "are dropped")

    def _cut_due(self, connection: ProxiedConnection, direction: Direction) -> CutHow:
        cut = self._faults.cut
        how: CutHow = cut.how if cut else "rst"
        self._counters.add(cuts=1)
        self._record("cut", f"{connection} after {cut.after_bytes if cut else '?'} bytes {direction} ({how})")
        if cut is not None and self._cuts_left is not None:
            self._cuts_left -= 1
            if self._cuts_left == 0:
                self._apply(dataclasses.replace(self._faults, cut=None))
        return how


def _budget(cut: ByteCut | None) -> dict[Direction, int | None]:
    budget: dict[Direction, int | None] = {"up": None, "down": None}
    if cut is not None:
        budget[cut.direction] = cut.after_bytes
    return budget


class FaultProxyFactory(Protocol):
    """What `hil_fault_proxy` hands a test: a started proxy in front of a URL's server or a (host, port)."""

    def __call__(self, upstream: str | tuple[str, int], name: str | None = None) -> FaultProxy: ...
