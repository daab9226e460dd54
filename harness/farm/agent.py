"""The labgrid session of a test process, kept in a helper process of its own (``python -m harness.farm.agent``).

Why not in the test process: labgrid's client is gRPC (grpc.aio), and a process that forks after gRPC
started crashes in the child (pytest-embedded's session fixture starts a multiprocessing manager by fork,
in every session). So each pytest process (a worker, or the controller) runs one agent, spawned with
fork+exec before anything forks, and talks to it in JSON lines over its stdin and stdout.

It also makes a killed test process harmless: the agent holds the places, and when its stdin closes (the
test process is gone, however it ended: SIGKILL included) it releases every place it still holds and exits.
The xdist controller's release of a dead worker's places (pytest_farm.release_dead_worker) is the second
line, for an agent killed with its worker.

Requests: ``places``, ``acquire_any`` (candidates, count, timeout), ``release`` (name), ``release_all_of``
(user), ``power`` (name, on). Each answer is ``{"ok": true, ...}`` or ``{"ok": false, "kind": ..., "message": ...}``
with kind ``unreachable``, ``busy`` or ``error``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

from harness.farm.client import (
    AcquiredPlace,
    CoordinatorUnreachableError,
    FarmClient,
    FarmError,
    PlacesBusyError,
    PlaceView,
    SerialEndpoint,
    session_name,
)

START_TIMEOUT_S = 30.0


# --- the agent process ---


def _place_json(view: PlaceView) -> dict[str, Any]:
    data = asdict(view)
    data["classes"] = sorted(view.classes)
    return data


def _held_json(held: AcquiredPlace) -> dict[str, Any]:
    return {"name": held.name, "host": held.serial.host, "port": held.serial.port, "tags": held.tags,
            "power": held.power_driver() is not None}


def _serve(farm: FarmClient, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "places":
        return {"places": [_place_json(p) for p in farm.places()], "all": farm.all_place_names()}
    if op == "acquire_any":
        held = farm.acquire_any(list(request["candidates"]), int(request["count"]), float(request["timeout"]))
        return {"held": [_held_json(h) for h in held]}
    if op == "release":
        farm.release(request["name"])
        return {}
    if op == "release_all_of":
        return {"released": farm.release_all_of(request["user"])}
    if op == "power":
        held = farm.held.get(request["name"])
        driver = held.power_driver() if held is not None else None
        if driver is None:
            raise FarmError(f"place {request['name']} is not held here or has no power resource")
        (driver.on if request["on"] else driver.off)()
        return {}
    raise FarmError(f"unknown request {op!r}")


def main(argv: list[str] | None = None) -> int:
    address, pattern, user = (argv if argv is not None else sys.argv[1:])[:3]
    out = sys.stdout
    sys.stdout = sys.stderr  # labgrid prints; the answers own stdout

    def answer(data: dict[str, Any]) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    farm = FarmClient(address, pattern, user=user)
    try:
        farm.connect()
    except CoordinatorUnreachableError as err:
        answer({"ok": False, "kind": "unreachable", "message": str(err)})
        return 1
    answer({"ok": True, "name": farm.name})
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                answer({"ok": True, **_serve(farm, json.loads(line))})
            except PlacesBusyError as err:
                answer({"ok": False, "kind": "busy", "message": str(err)})
            except (FarmError, TimeoutError, KeyError, ValueError) as err:
                answer({"ok": False, "kind": "error", "message": str(err) or type(err).__name__})
    finally:
        farm.close()  # stdin closed: the test process is gone or done; what it held is released
    return 0


# --- the test process's side ---


@dataclass(frozen=True)
class HeldPlace:
    name: str
    serial: SerialEndpoint
    tags: dict[str, str]
    has_power: bool


class FarmAgent:
    """The agent process, as FarmClient's methods; one request at a time."""

    def __init__(self, address: str, pattern: str, user: str) -> None:
        self.address = address
        self.pattern = pattern or "*"
        self.user = user
        self.name = session_name(user)
        self._lock = threading.Lock()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen([sys.executable, "-m", "harness.farm.agent", address, self.pattern, user],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._closed = False
        # A child forked without exec (pytest-embedded's multiprocessing manager) would inherit our end of the
        # agent's stdin and keep it open after this process died: the agent would never see it go.
        pipes = [self._proc.stdin.fileno(), self._proc.stdout.fileno()]  # type: ignore[union-attr]

        def forget_pipes_in_child() -> None:
            if not self._closed:
                for fd in pipes:
                    with contextlib.suppress(OSError):
                        os.close(fd)

        os.register_at_fork(after_in_child=forget_pipes_in_child)
        hello = self._read(START_TIMEOUT_S)
        if not hello.get("ok"):
            self.close()
            raise CoordinatorUnreachableError(hello.get("message", "the labgrid agent did not start"))

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result:
            raise FarmError(f"the labgrid agent for {self.address} did not answer within {timeout:g} s")
        if not result[0]:
            raise FarmError(f"the labgrid agent for {self.address} exited ({self._proc.poll()})")
        return json.loads(result[0])

    def _call(self, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        with self._lock:
            if self._proc.poll() is not None or self._proc.stdin is None:
                raise FarmError(f"the labgrid agent for {self.address} is not running")
            try:
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as err:
                raise FarmError(f"the labgrid agent for {self.address} went away: {err}") from None
            reply = self._read(timeout)
        if reply.get("ok"):
            return reply
        kind = {"busy": PlacesBusyError, "unreachable": CoordinatorUnreachableError}.get(reply.get("kind"), FarmError)
        raise kind(reply.get("message", "labgrid agent error"))

    def places(self) -> list[PlaceView]:
        return [PlaceView(p["name"], p["acquired"], dict(p["tags"]), frozenset(p["classes"]), p["comment"])
                for p in self._call({"op": "places"})["places"]]

    def all_place_names(self) -> list[str]:
        return list(self._call({"op": "places"})["all"])

    def acquire_any(self, candidates: list[str], count: int, timeout: float) -> list[HeldPlace]:
        reply = self._call({"op": "acquire_any", "candidates": candidates, "count": count, "timeout": timeout},
                           timeout + 30.0)
        return [HeldPlace(h["name"], SerialEndpoint(h["host"], int(h["port"])), dict(h["tags"]), bool(h["power"]))
                for h in reply["held"]]

    def release(self, name: str) -> None:
        self._call({"op": "release", "name": name})

    def release_all_of(self, user: str) -> list[str]:
        return list(self._call({"op": "release_all_of", "user": user})["released"])

    def power(self, name: str, on: bool) -> None:
        self._call({"op": "power", "name": name, "on": on})

    def close(self) -> None:
        """Ends the agent: it releases what it still holds first."""
        self._closed = True
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main())
