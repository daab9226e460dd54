"""The firmware server itself: aiohttp in its own thread and loop, serving artifacts by their fault plans."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

from harness import clock
from harness.fwserver.faults import Artifact, FaultPlan, served_body
from harness.fwserver.request_log import RequestLog, RequestRecord
from harness.loop_thread import LoopThread
from harness.net import format_url
from harness.service import ListeningService
from harness.tls_ca import server_tls, unrelated_ca_pem

CHUNK_SIZE = 16 * 1024
SHUTDOWN_GRACE_S = 2.0  # handlers end at once on stop (stalls watch a stop event); this is a backstop


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
    added_at: float = field(default_factory=clock.now)  # for FaultPlan.expire_after_s


# What S3 answers a pre-signed URL past its expiry (HTTP 403).
S3_EXPIRED_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                   b"<Message>Request has expired</Message></Error>\n")


class _Stopped(Exception):
    """The server is stopping: abandon the response quietly."""


class FirmwareServer(ListeningService):
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
        self._tls = server_tls(self._advertise, host) if tls else None
        self._wrong_ca_pem = unrelated_ca_pem() if tls else None

    # --- properties ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return format_url("https" if self._tls else "http", self._advertise, self.port)

    @property
    def ca_pem(self) -> str:
        """PEM of the CA that signed the server certificate: what the device must trust."""
        if self._tls is None:
            raise RuntimeError("FirmwareServer: ca_pem exists only with tls=True")
        return self._tls.ca_pem

    @property
    def wrong_ca_pem(self) -> str:
        """PEM of an unrelated CA: a device trusting only this must refuse the server (tls_failed)."""
        if self._wrong_ca_pem is None:
            raise RuntimeError("FirmwareServer: wrong_ca_pem exists only with tls=True")
        return self._wrong_ca_pem

    @property
    def requests(self) -> list[RequestRecord]:
        return self.log.snapshot()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # --- lifecycle -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving; in-flight responses (stalled ones too) are abandoned at once."""
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                self._loop.run(self._stop_site(runner), timeout=SHUTDOWN_GRACE_S + 5.0)
        finally:
            self._loop.stop()

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
        body = served_body(data, plan)
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

    def _is_started(self) -> bool:
        return self._runner is not None

    def _start(self) -> None:
        self._loop.start()
        self._runner = self._loop.run(self._start_site(), timeout=10.0)

    async def _start_site(self) -> web.ServerRunner:
        self._stopping = asyncio.Event()
        # handler_cancellation: a client that disconnects mid-stall cancels the handler, so the log shows
        # the hang-up when it happens, not when the stall ends; access_log=None keeps test output clean
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        ssl_context = self._tls.context if self._tls else None
        site = web.TCPSite(runner, self._host, self._port, ssl_context=ssl_context, reuse_address=True)
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
        if plan.expired(number, clock.now() - route.added_at):
            return await self._send_status(request, record, 403, body=S3_EXPIRED_BODY, content_type="application/xml")
        status = plan.status_for(number)
        if status is not None:
            return await self._send_status(request, record, status)
        return await self._send_body(request, route, record, number)

    async def _send_status(
        self, request: web.BaseRequest, record: RequestRecord, status: int, location: str | None = None,
        body: bytes | None = None, content_type: str = "text/plain",
    ) -> web.StreamResponse:
        if body is None:
            body = f"injected fault: HTTP {status}\n".encode() if status != 302 else b""
        response = web.Response(status=status, body=body, content_type=content_type)
        if location:
            response.headers["Location"] = location
        # Logged before it is sent: the device may act on the status (and a test read the log) before
        # this coroutine runs again after the write.
        self.log.update(record, status=status)
        await response.prepare(request)
        await response.write_eof()
        return response

    async def _send_body(
        self, request: web.BaseRequest, route: _Route, record: RequestRecord, number: int
    ) -> web.StreamResponse:
        plan, body = route.artifact.faults, route.body
        try:
            span = parse_range(record.range, len(body)) if plan.ranges_honoured else None
        except RangeNotSatisfiable:
            response = web.Response(status=416, headers={"Content-Range": f"bytes */{len(body)}"})
            self.log.update(record, status=416)
            await response.prepare(request)
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
        self.log.update(record, status=response.status)
        await response.prepare(request)
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


def _peer(request: web.BaseRequest) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else str(request.remote)


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()
