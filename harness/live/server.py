"""The live view's web server: the page, its event stream and the actions, on aiohttp in its own thread.

    GET  /                 the page (page.html, page.js and page.css beside it, package data; no CDN)
    GET  /events           server-sent events: a `snapshot`, then every change of the state as it happens
    GET  /api/state        the snapshot as JSON (for scripts and curl)
    GET  /api/boards/ID    a board's serial tail and MQTT transcript
    POST /api/upload       an image as the request body (?name=fw.bin), or JSON {"variant", "version"}
    POST /api/update       {"artifact": N, "devices": [ids] | "all", "force": false}: an `ota` command to each
    POST /api/rollout      {"artifact": N, "devices": ..., "canary": 1, "steps": [50, 100], "max_in_flight": N}
    POST /api/cancel       {"devices": [ids] | "all"}: cancel their updates, and abort a rollout under way

The actions are a `LiveActions`' (harness/live/lab.py); without one (the page of a pytest run) they answer
409. Bound to 127.0.0.1 unless told otherwise: anyone who reaches the page can update the boards.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Protocol

from aiohttp import web

from harness.live.state import Event, LiveState
from harness.loop_thread import LoopThread
from harness.net import PortInUseError, format_url
from harness.service import ListeningService

DEFAULT_PORT = 8765
KEEPALIVE_S = 15.0
MAX_UPLOAD = 8 * 1024 * 1024  # bytes: larger than any slot
STATIC = {"/": ("page.html", "text/html"), "/page.js": ("page.js", "application/javascript"),
          "/page.css": ("page.css", "text/css")}


class ActionError(Exception):
    """An action the page asked for cannot be done; the message says why (shown on the page)."""


class LiveActions(Protocol):
    """What the page's buttons do (the lab implements it). Called in a worker thread, may block."""

    def upload(self, data: bytes, name: str) -> dict[str, Any]: ...

    def build_image(self, variant: str, version: str) -> dict[str, Any]: ...

    def update(self, artifact: int, devices: list[str] | None, force: bool = False) -> dict[str, Any]: ...

    def rollout(self, artifact: int, devices: list[str] | None, canary: int, steps: list[float],
                max_in_flight: int | None) -> dict[str, Any]: ...

    def cancel(self, devices: list[str] | None) -> dict[str, Any]: ...


def port_taken_message(option: str, host: str, port: int) -> str:
    return (f"{option} {port}: port {port} on {host} is already in use by another process (another lab or "
            f"--hil-live run, or some other server; `ss -ltnp 'sport = :{port}'` shows who); pick another with "
            f"{option} N, or {option} 0 for a free one")


def static_text(name: str) -> str:
    return files("harness.live").joinpath(name).read_text(encoding="utf-8")


@dataclass
class _Stream:
    queue: asyncio.Queue[Event | None]
    loop: asyncio.AbstractEventLoop

    def push(self, event: Event) -> None:  # any thread, the state's lock held: never blocks
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)


class LiveServer(ListeningService):
    """The page and its event stream for a `LiveState`; `actions` None: a read-only page."""

    def __init__(self, state: LiveState, actions: LiveActions | None = None, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT) -> None:
        self.state = state
        self.actions = actions
        self._host = self._advertise = host
        self._port = port
        self._loop = LoopThread(f"live-{host}:{port}")
        self._runner: web.AppRunner | None = None
        self._streams: list[_Stream] = []

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else "::1" if self._host == "::" else self._host
        return format_url("http", host, self.port) + "/"

    def _is_started(self) -> bool:
        return self._runner is not None

    def _start(self) -> None:
        self._loop.start()
        try:
            self._runner = self._loop.run(self._start_site(), timeout=10.0)
        except OSError as err:  # lost a race for the port after check_port_free, or a bad address
            if err.errno == 98:
                raise PortInUseError(port_taken_message("port", self._host, self._port)) from None
            raise

    async def _start_site(self) -> web.AppRunner:
        app = web.Application(client_max_size=MAX_UPLOAD)
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/api/boards/{device_id}", self._api_board)
        for name in ("upload", "update", "rollout", "cancel"):
            app.router.add_post(f"/api/{name}", self._action)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        await site.start()
        self._port = runner.addresses[0][1]
        return runner

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        try:
            if runner is not None:
                self._loop.run(self._stop_site(runner), timeout=10.0)
        finally:
            self._loop.stop()

    async def _stop_site(self, runner: web.AppRunner) -> None:
        for stream in list(self._streams):
            stream.queue.put_nowait(None)  # each event stream ends, so the runner's shutdown need not wait
        await runner.cleanup()

    # --- handlers ------------------------------------------------------------------------------------

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        return web.Response(text=static_text(name), content_type=content_type, headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        stream = _Stream(asyncio.Queue(), asyncio.get_running_loop())
        self._streams.append(stream)
        snapshot = self.state.subscribe(stream.push)
        try:
            await response.write(_sse(snapshot))
            while True:
                try:
                    event = await asyncio.wait_for(stream.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                batch = [event]
                while not stream.queue.empty() and (more := stream.queue.get_nowait()) is not None:
                    batch.append(more)
                await response.write(b"".join(_sse(e) for e in batch))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.state.unsubscribe(stream.push)
            self._streams.remove(stream)
        return response

    async def _api_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot())

    async def _api_board(self, request: web.Request) -> web.Response:
        logs = self.state.logs(request.match_info["device_id"])
        if logs is None:
            return web.json_response({"error": f"no board {request.match_info['device_id']!r}"}, status=404)
        return web.json_response(logs)

    async def _action(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[1]
        if self.actions is None:
            return web.json_response({"error": "this page shows a pytest run: updates are started by its tests "
                                               "(python -m harness lab has the buttons)"}, status=409)
        try:
            call = await self._parse(name, request)
            result = await asyncio.get_running_loop().run_in_executor(None, call)
        except ActionError as err:
            self.state.note(f"{name}: {err}", level="error")
            return web.json_response({"error": str(err)}, status=400)
        except Exception as exc:  # noqa: BLE001 - a broken link, a stopped broker: said on the page, not a bare 500
            self.state.note(f"{name} failed: {exc!r}", level="error")
            return web.json_response({"error": f"{name} failed: {exc}"}, status=500)
        return web.json_response(result)

    async def _parse(self, name: str, request: web.Request) -> Any:
        actions = self.actions
        assert actions is not None
        if name == "upload" and request.content_type != "application/json":
            data = await request.read()
            if not data:
                raise ActionError("the upload is empty: choose an image file")
            file_name = request.query.get("name") or "fw.bin"
            return lambda: actions.upload(data, file_name)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ActionError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise ActionError("the request body must be a JSON object")
        devices = _devices(body.get("devices", "all"))
        if name == "upload":
            variant, version = str(body.get("variant") or "default"), str(body.get("version") or "").strip()
            if not version:
                raise ActionError("give the version the built image should carry, e.g. 2.0.0")
            return lambda: actions.build_image(variant, version)
        if name == "cancel":
            return lambda: actions.cancel(devices)
        artifact = body.get("artifact")
        if not isinstance(artifact, int) or isinstance(artifact, bool):
            raise ActionError("upload an image or pick a built one first (no artifact given)")
        if name == "update":
            force = body.get("force") is True
            return lambda: actions.update(artifact, devices, force)
        canary = body.get("canary", 1)
        steps = body.get("steps", [100])
        max_in_flight = body.get("max_in_flight")
        if not isinstance(canary, int) or canary < 0:
            raise ActionError(f"canary must be a number of devices >= 0, not {canary!r}")
        if not isinstance(steps, list) or not all(isinstance(s, int | float) for s in steps) or not steps:
            raise ActionError(f"steps must be a list of percentages such as [50, 100], not {steps!r}")
        if max_in_flight is not None and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ActionError(f"max_in_flight must be a number >= 1 or empty, not {max_in_flight!r}")
        return lambda: actions.rollout(artifact, devices, canary, [float(s) for s in steps], max_in_flight)


def _devices(value: Any) -> list[str] | None:
    """None for every board ("all"), else the listed device ids."""
    if value == "all" or value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise ActionError("select at least one board (or use \"all\")")
    return value


def _sse(event: Event) -> bytes:
    return f"id: {event['seq']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
