"""Firmware image server: aiohttp in its own thread and loop, with a fault plan per artifact.

Each artifact gets a unique URL path. Its `FaultPlan` decides how it is served: throttled, stalled,
cut, truncated, corrupted, with an error status, behind redirects, without Range support, chunked or
with late headers. Every request is logged as a `RequestRecord`, and tests wait on that log with a
deadline instead of sleeping. HTTPS uses a trustme CA whose PEM (`ca_pem`) is what a device is given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import ssl
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import trustme
from aiohttp import web

from harness import clock
from harness.broker import WILDCARD_HOSTS, LoopThread, check_port_free, format_url

CHUNK_SIZE = 16 * 1024
SHUTDOWN_GRACE_S = 2.0  # handlers end at once on stop (stalls watch a stop event); this is a backstop


@dataclass(frozen=True)
class FaultPlan:
    """How one artifact misbehaves. Every field is optional and they combine.

    Byte counts (`stall_after_bytes`, `close_after_bytes`) count body bytes of one response, so a device
    resuming with Range makes progress through a connection that keeps dropping. `truncate_to` and
    `corrupt_offsets` change the served file itself (offsets into the file), while the Artifact keeps
    the size and sha256 of the original, as a release manifest would.
    """

    throttle_bps: int | None = None
    stall_after_bytes: int | None = None
    stall_seconds: float | None = None  # None: stall until the client leaves or the server stops
    close_after_bytes: int | None = None
    close_first_requests: int | None = None  # None: every request is cut
    truncate_to: int | None = None
    corrupt_offsets: tuple[int, ...] = ()
    status: int | None = None
    status_first_requests: int | None = None  # first K requests get `status` (default 503), then 200
    redirects: int = 0
    ranges_honoured: bool = True
    chunked: bool = False
    header_delay_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("throttle_bps", "stall_after_bytes", "close_after_bytes", "close_first_requests",
                     "truncate_to", "status_first_requests"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0, got {value}")
        if self.throttle_bps == 0:
            raise ValueError("FaultPlan.throttle_bps must be > 0 (use stall_after_bytes to stop sending)")
        if self.redirects < 0 or self.header_delay_s < 0:
            raise ValueError("FaultPlan.redirects and header_delay_s must be >= 0")
        object.__setattr__(self, "corrupt_offsets", tuple(self.corrupt_offsets))

    def status_for(self, request_number: int) -> int | None:
        """The injected status for the n-th request (0-based) to the artifact, or None to serve it."""
        if self.status_first_requests is None:
            return self.status
        return (self.status or 503) if request_number < self.status_first_requests else None

    def cuts(self, request_number: int) -> bool:
        return self.close_after_bytes is not None and (
            self.close_first_requests is None or request_number < self.close_first_requests
        )


@dataclass(frozen=True)
class Artifact:
    """A registered image. `url` is what to hand to the device (the first redirect hop, if any)."""

    url: str
    path: str
    size: int
    sha256: str
    name: str
    faults: FaultPlan
    data: bytes = dataclasses.field(repr=False, compare=False)


@dataclass
class RequestRecord:
    """One HTTP request as the server saw it. `status` and `t_end` are None until they are known.

    `bytes_sent` counts body bytes handed to the socket; `client_hung_up` is True when the client left
    before the response ended. Loopback socket buffers hold megabytes, so a client that leaves after
    the whole body was buffered is not seen leaving: stall or throttle to observe a hang-up reliably.
    Times are harness.clock's, comparable with the link's Message.t.
    """

    method: str
    path: str
    range: str | None
    client: str
    t_start: float
    artifact: str | None = None  # Artifact.path of the artifact this request belongs to (hops included)
    status: int | None = None
    bytes_sent: int = 0
    t_end: float | None = None
    client_hung_up: bool = False

    @property
    def completed(self) -> bool:
        return self.t_end is not None

    @property
    def duration(self) -> float | None:
        return None if self.t_end is None else self.t_end - self.t_start


class RequestLog:
    """Thread-safe request log: written on the server loop, read and awaited from the test thread."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._changed = threading.Condition()

    def begin(self, record: RequestRecord) -> None:
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def update(self, record: RequestRecord, **changes: object) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(record, key, value)
            self._changed.notify_all()

    def snapshot(self, artifact: Artifact | None = None) -> list[RequestRecord]:
        """Copies, so a test never sees a record change under it."""
        with self._changed:
            return [dataclasses.replace(r) for r in self._records if _belongs(r, artifact)]

    def wait_for(
        self, index: int, timeout: float, artifact: Artifact | None = None, completed: bool = True
    ) -> RequestRecord:
        """Wait for request number `index` (0-based, counting only `artifact`'s requests if given)."""
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            matching = [r for r in self._records if _belongs(r, artifact)]
            return len(matching) > index and (matching[index].completed or not completed)

        with self._changed:
            if not self._changed.wait_for(ready, max(0.0, deadline - time.monotonic())):
                raise TimeoutError(self._timeout_message(index, timeout, artifact, completed))
            matching = [r for r in self._records if _belongs(r, artifact)]
            return dataclasses.replace(matching[index])

    def _timeout_message(self, index: int, timeout: float, artifact: Artifact | None, completed: bool) -> str:
        what = f"request #{index}" + (f" for {artifact.path}" if artifact else "")
        lines = [f"  {_describe(r)}" for r in self._records] or ["  (no requests at all)"]
        state = "completed " if completed else ""
        return f"no {state}{what} within {timeout} s; requests seen:\n" + "\n".join(lines)


def _belongs(record: RequestRecord, artifact: Artifact | None) -> bool:
    return artifact is None or record.artifact == artifact.path


def _describe(r: RequestRecord) -> str:
    end = "in progress" if r.t_end is None else f"{r.t_end - r.t_start:.3f} s"
    hung = " client hung up" if r.client_hung_up else ""
    return f"{r.method} {r.path} range={r.range} -> {r.status} {r.bytes_sent} B {end} from {r.client}{hung}"


# ---------------------------------------------------------------------------------------------------------
# Range handling


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for `bytes=N-`, `bytes=N-M`, `bytes=-S`; None means serve the whole body.

    Malformed or multi-range headers are ignored (RFC 9110 lets a server do that); a range starting past
    the end raises RangeNotSatisfiable.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_s, sep, last_s = header[len("bytes="):].strip().partition("-")
    if not sep or not (first_s or last_s) or not (first_s + last_s).isdigit():
        return None
    if not first_s:  # suffix: the last S bytes
        suffix = int(last_s)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    if first >= size:
        raise RangeNotSatisfiable
    return (first, last) if first <= last else None


# ---------------------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class _Route:
    artifact: Artifact
    body: bytes  # after truncate/corrupt: what is actually served
    next_url: str | None = None  # set on redirect hops


class _Stopped(Exception):
    """The server is stopping: abandon the response quietly."""


class FirmwareServer:
    """aiohttp firmware server in its own thread and loop; HTTP by default, HTTPS with `tls=True`.

    `host` is the bind address; `advertise_host` (default: host) goes into URLs and the certificate, for a
    server bound to 0.0.0.0 that a board reaches through the LAN address.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        advertise_host: str | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._host = host
        self._port = port
        self._advertise = advertise_host or host
        self._chunk_size = chunk_size
        self._loop = LoopThread(f"fwserver-{host}:{port}")
        self._runner: web.ServerRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._routes: dict[str, _Route] = {}
        self._hits: dict[str, int] = {}  # artifact path -> requests that reached the real path
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.log = RequestLog()
        self._ca, self._wrong_ca, self._ssl = self._make_tls() if tls else (None, None, None)

    # --- properties ----------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._advertise

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("FirmwareServer: the port is known only after start()")
        return self._port

    @property
    def base_url(self) -> str:
        return format_url("https" if self._ssl else "http", self._advertise, self.port)

    @property
    def ca_pem(self) -> str:
        """PEM of the CA that signed the server certificate: what the device must trust."""
        if self._ca is None:
            raise RuntimeError("FirmwareServer: ca_pem exists only with tls=True")
        return self._ca.cert_pem.bytes().decode()

    @property
    def wrong_ca_pem(self) -> str:
        """PEM of an unrelated CA: a device trusting only this must refuse the server (tls_failed)."""
        if self._wrong_ca is None:
            raise RuntimeError("FirmwareServer: wrong_ca_pem exists only with tls=True")
        return self._wrong_ca.cert_pem.bytes().decode()

    @property
    def requests(self) -> list[RequestRecord]:
        return self.log.snapshot()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._runner is not None:
            return self
        if self._port:
            check_port_free(self._host, self._port, "FirmwareServer")
        self._loop.start()
        try:
            self._runner = self._loop.run(self._start_site(), timeout=10.0)
        except BaseException:
            self._loop.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving; in-flight responses (stalled ones too) are abandoned at once."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                self._loop.run(self._stop_site(runner), timeout=SHUTDOWN_GRACE_S + 5.0)
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port else f"{self._host}:?"
        return f"FirmwareServer({where}, {len(self._hits)} artifacts)"

    # --- artifacts and the request log ---------------------------------------------------------------

    def add(self, data: bytes, name: str = "fw.bin", faults: FaultPlan | None = None) -> Artifact:
        """Register `data` under a fresh URL path; the returned Artifact describes the original bytes."""
        if "/" in name or not name:
            raise ValueError(f"artifact name {name!r} must be a non-empty file name without '/'")
        plan = faults or FaultPlan()
        n = next(self._ids)
        path = f"/fw/{n}/{name}"
        hops = [f"/fw/{n}/hop{k}/{name}" for k in range(plan.redirects)]
        entry = hops[0] if hops else path
        artifact = Artifact(url=self.base_url + entry, path=entry, size=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), name=name, faults=plan, data=bytes(data))
        body = _served_body(data, plan)
        with self._lock:
            for hop, target in itertools.pairwise([*hops, path]):
                self._routes[hop] = _Route(artifact, body, next_url=self.base_url + target)
            self._routes[path] = _Route(artifact, body)
            self._hits[entry] = 0
        return artifact

    @property
    def artifacts(self) -> list[Artifact]:
        """Every artifact registered so far, in order."""
        with self._lock:
            unique = {id(route.artifact): route.artifact for route in self._routes.values()}
        return sorted(unique.values(), key=lambda a: a.path)

    def requests_for(self, artifact: Artifact) -> list[RequestRecord]:
        return self.log.snapshot(artifact)

    def wait_for_request(
        self, index: int, timeout: float = 5.0, artifact: Artifact | None = None, completed: bool = True
    ) -> RequestRecord:
        """Wait for request number `index` (0-based; only `artifact`'s requests, redirect hops included,
        when given). With completed=False it returns as soon as the request has started."""
        return self.log.wait_for(index, timeout, artifact, completed)

    # --- internals: setup ----------------------------------------------------------------------------

    def _make_tls(self) -> tuple[trustme.CA, trustme.CA, ssl.SSLContext]:
        ca, wrong_ca = trustme.CA(), trustme.CA()
        names = dict.fromkeys([self._advertise, self._host, "localhost", "127.0.0.1"])
        leaf = ca.issue_cert(*(n for n in names if n not in WILDCARD_HOSTS))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        return ca, wrong_ca, context

    async def _start_site(self) -> web.ServerRunner:
        self._stopping = asyncio.Event()
        # handler_cancellation: a client that disconnects mid-stall cancels the handler, so the log shows
        # the hang-up when it happens, not when the stall ends; access_log=None keeps test output clean
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        self._port = runner.addresses[0][1]
        return runner

    async def _stop_site(self, runner: web.ServerRunner) -> None:
        assert self._stopping is not None
        self._stopping.set()  # wakes every stall, throttle pause and header delay
        await runner.cleanup()

    # --- internals: serving --------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        with self._lock:
            route = self._routes.get(request.path)
        record = RequestRecord(
            method=request.method, path=request.path, range=request.headers.get("Range"),
            client=_peer(request), t_start=clock.now(), artifact=route.artifact.path if route else None)
        self.log.begin(record)
        # A device giving up mid-download is routine, never an error or a traceback. aiohttp logs any
        # exception a handler raises, but finishing a response on a closed transport is quiet; so hang-ups
        # return a throwaway response, and CancelledError (handler_cancellation) is simply re-raised.
        try:
            response = await self._respond(request, route, record)
        except _Stopped:
            _abort(request)
            self.log.update(record, t_end=clock.now())
            return web.Response()
        except ConnectionError:
            self.log.update(record, t_end=clock.now(), client_hung_up=True)
            return web.Response()
        except asyncio.CancelledError:
            self.log.update(record, t_end=clock.now(), client_hung_up=not self._is_stopping())
            raise
        self.log.update(record, t_end=clock.now())
        return response

    async def _respond(
        self, request: web.BaseRequest, route: _Route | None, record: RequestRecord
    ) -> web.StreamResponse:
        if route is None:
            return await self._send_status(request, record, 404)
        plan = route.artifact.faults
        await self._pause(plan.header_delay_s)
        if route.next_url is not None:
            return await self._send_status(request, record, 302, location=route.next_url)
        with self._lock:
            number = self._hits[route.artifact.path]
            self._hits[route.artifact.path] = number + 1
        status = plan.status_for(number)
        if status is not None:
            return await self._send_status(request, record, status)
        return await self._send_body(request, route, record, number)

    async def _send_status(
        self, request: web.BaseRequest, record: RequestRecord, status: int, location: str | None = None
    ) -> web.StreamResponse:
        body = f"injected fault: HTTP {status}\n".encode() if status != 302 else b""
        response = web.Response(status=status, body=body, content_type="text/plain")
        if location:
            response.headers["Location"] = location
        await response.prepare(request)
        await response.write_eof()
        self.log.update(record, status=status)
        return response

    async def _send_body(
        self, request: web.BaseRequest, route: _Route, record: RequestRecord, number: int
    ) -> web.StreamResponse:
        plan, body = route.artifact.faults, route.body
        try:
            span = parse_range(record.range, len(body)) if plan.ranges_honoured else None
        except RangeNotSatisfiable:
            response = web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
            await response.prepare(request)
            self.log.update(record, status=416)
            return response
        first, last = span or (0, len(body) - 1)
        response = web.StreamResponse(status=206 if span else 200)
        response.content_type = "application/octet-stream"
        response.headers["Accept-Ranges"] = "bytes" if plan.ranges_honoured else "none"
        if span:
            response.headers["Content-Range"] = f"bytes {first}-{last}/{len(body)}"
        if plan.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = last - first + 1
        await response.prepare(request)
        self.log.update(record, status=response.status)
        if request.method == "HEAD":  # aiohttp would send a StreamResponse body even for HEAD
            await response.write_eof()
            return response
        await self._stream(request, response, body[first:last + 1], record, plan.cuts(number), plan)
        return response

    async def _stream(
        self, request: web.BaseRequest, response: web.StreamResponse, payload: bytes,
        record: RequestRecord, cut: bool, plan: FaultPlan,
    ) -> None:
        chunk = self._chunk_size if not plan.throttle_bps else max(1, min(self._chunk_size, plan.throttle_bps // 20))
        stops = sorted(b for b in (plan.stall_after_bytes, plan.close_after_bytes if cut else None) if b is not None)
        started, sent = time.monotonic(), 0
        while sent < len(payload):
            limit = min([s for s in stops if s > sent] + [len(payload), sent + chunk])
            await response.write(payload[sent:limit])
            sent = limit
            self.log.update(record, bytes_sent=sent)
            if cut and sent == plan.close_after_bytes:
                request.transport.close()  # FIN after the buffered bytes: the client sees a short body
                return
            if sent == plan.stall_after_bytes:
                await self._pause(plan.stall_seconds)
            if plan.throttle_bps:
                await self._pause(started + sent / plan.throttle_bps - time.monotonic())
        await response.write_eof()

    async def _pause(self, seconds: float | None) -> None:
        """Sleep (None: until stop) unless the server stops first, which raises _Stopped."""
        if seconds is not None and seconds <= 0:
            return
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return
        raise _Stopped

    def _is_stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()


def _served_body(data: bytes, plan: FaultPlan) -> bytes:
    body = bytearray(data if plan.truncate_to is None else data[:plan.truncate_to])
    for offset in plan.corrupt_offsets:
        if offset < len(body):
            body[offset] ^= 0xFF
    return bytes(body)


def _peer(request: web.BaseRequest) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else str(request.remote)


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()
