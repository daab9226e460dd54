"""A labgrid coordinator seen from a test session: places, acquired for a test and released after.

It runs in the farm agent, a helper process of each pytest process (harness/farm/agent.py says why);
labgrid and gRPC are imported there only, so the harness works without them when no farm is used.

One ``FarmClient`` per process (an xdist worker, or the controller) holds a labgrid ``ClientSession`` on
an event loop of its own (harness/loop_thread.py), so the session's stream of place and resource updates
keeps flowing while the test thread blocks on a serial port. The session's name, which the coordinator
records as a place's ``acquired`` field, is ``<host>/<user>.hil-<run>-<worker>``: who holds a place is
readable in ``labgrid-client places -v`` and in the harness's errors, and the xdist controller can release
exactly the places of a worker that died (``ReleasePlace`` with ``fromuser``, as ``labgrid-client
release-from`` does), never someone else's.

A place is a board when it has a ``NetworkSerialPort`` (RFC2217, as ``esp_rfc2217_server`` or the farm's
virtual benches serve it); a power resource labgrid has a driver for (``NetworkPowerPort``, ...) gives it
power control, through labgrid's own ``PowerProtocol`` driver. Place tags ``target`` (default ``esp32``),
``mac`` and ``ip`` mean what they mean in a board inventory (harness/boards/inventory.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import getpass
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from harness.loop_thread import LoopThread

CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 15.0
SERIAL_CLASS = "NetworkSerialPort"
POWER_CLASSES = {  # labgrid's power resources (as a place's acquired resources name them) and their drivers
    "NetworkPowerPort": "NetworkPowerDriver",
    "PDUDaemonPort": "PDUDaemonDriver",
    "TasmotaPowerPort": "TasmotaPowerDriver",
    "NetworkUSBPowerPort": "USBPowerDriver",
    "NetworkSiSPMPowerPort": "SiSPMPowerDriver",
    "NetworkYKUSHPowerPort": "YKUSHPowerDriver",
}


class FarmError(RuntimeError):
    pass


class CoordinatorUnreachableError(FarmError):
    pass


class PlacesBusyError(FarmError):
    pass


@dataclass(frozen=True)
class PlaceView:
    """What the harness needs of a labgrid place."""

    name: str
    acquired: str | None
    tags: dict[str, str]
    classes: frozenset[str]  # the resource classes matching the place (exported and available)
    comment: str = ""

    @property
    def is_board(self) -> bool:
        return SERIAL_CLASS in self.classes

    @property
    def has_power(self) -> bool:
        return bool(self.classes & set(POWER_CLASSES))

    @property
    def target(self) -> str:
        return self.tags.get("target", "esp32")

    def holder(self) -> str:
        return f"{self.name} (acquired by {self.acquired})" if self.acquired else f"{self.name} (free)"


@dataclass(frozen=True)
class SerialEndpoint:
    host: str
    port: int

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rfc2217://{host}:{self.port}?ign_set_control"


@dataclass
class AcquiredPlace:
    """A place this client holds: its serial endpoint, and labgrid's target with the place's resources."""

    name: str
    serial: SerialEndpoint
    tags: dict[str, str]
    target: Any = field(repr=False, default=None)  # labgrid.Target with the place's resources (RemotePlace)

    def power_driver(self) -> Any | None:
        """labgrid's PowerProtocol driver for the place's power resource, or None when it has none."""
        if self.target is None:
            return None
        from labgrid.exceptions import NoDriverFoundError
        from labgrid.factory import target_factory

        with contextlib.suppress(NoDriverFoundError):
            return self.target.get_driver("PowerProtocol")
        for resource in self.target.resources:
            driver_name = POWER_CLASSES.get(type(resource).__name__)
            if driver_name:
                driver = target_factory.class_from_string(driver_name)(self.target, name=None)
                self.target.activate(driver)
                return driver
        return None


def run_identity(run_id: str, worker: str) -> str:
    """The user part of this process's session name (no '/': labgrid splits acquired on it)."""
    return f"{getpass.getuser()}.hil-{run_id[:8]}-{worker}".replace("/", "_")


def session_name(user: str) -> str:
    return f"{socket.gethostname()}/{user}"


def _session_class() -> type:
    import attr
    from labgrid.remote.client import ClientSession

    @attr.s(eq=False)
    class HarnessSession(ClientSession):
        """labgrid's client session under the harness's name, which wakes waiters on every place update."""

        hil_user: str = attr.ib(default="")
        on_places: Any = attr.ib(default=None)

        def getuser(self) -> str:
            return self.hil_user or super().getuser()

        async def on_place_changed(self, place_pb2: Any) -> None:
            await super().on_place_changed(place_pb2)
            if self.on_places is not None:
                self.on_places()

        async def on_place_deleted(self, name: str) -> None:
            await super().on_place_deleted(name)
            if self.on_places is not None:
                self.on_places()

    return HarnessSession


class FarmClient:
    """A session with one coordinator; `pattern` (fnmatch) chooses the places this run may use."""

    def __init__(self, address: str, pattern: str = "*", user: str | None = None) -> None:
        self.address = address
        self.pattern = pattern or "*"
        self.user = user or run_identity("local", "main")
        self.name = session_name(self.user)
        self._loop = LoopThread(f"labgrid-{address}")
        self._session: Any = None
        self._changed = threading.Condition()
        self._generation = 0
        self.held: dict[str, AcquiredPlace] = {}

    # --- the session ---

    def connect(self, timeout: float = CONNECT_TIMEOUT_S) -> FarmClient:
        import grpc
        from labgrid.remote.client import Error as LabgridError
        from labgrid.util.proxy import proxymanager

        address = proxymanager.get_grpc_address(self.address, default_port=20408)
        self._loop.start()
        session_cls = _session_class()

        async def start() -> Any:
            session = session_cls(address, asyncio.get_running_loop(), hil_user=self.user,
                                  on_places=self._notify)
            await session.start()
            return session

        try:
            self._session = self._loop.run(start(), timeout)
        except (LabgridError, TimeoutError, grpc.RpcError, OSError) as err:
            self._loop.stop()
            raise CoordinatorUnreachableError(
                f"cannot reach the labgrid coordinator at {self.address} ({err}): start labgrid-coordinator there "
                "(docs/runner-setup.md, 'A board farm with labgrid') or fix --hil-farm HOST:PORT") from None
        return self

    def close(self) -> None:
        """Releases what this client still holds, then ends the session."""
        if self._session is None:
            return
        for name in list(self.held):
            with contextlib.suppress(FarmError, TimeoutError):
                self.release(name)
        session, self._session = self._session, None
        with contextlib.suppress(Exception):
            self._loop.run(session.stop(), 5)
        with contextlib.suppress(Exception):
            self._loop.run(session.close(), 5)
        self._loop.stop()

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _call(self, coro: Any) -> Any:
        if self._session is None:
            raise FarmError("the labgrid session is closed")
        return self._loop.run(coro, CALL_TIMEOUT_S)

    # --- places ---

    def places(self) -> list[PlaceView]:
        """The places matching the pattern, as the coordinator last told this session, sorted by name."""
        session = self._session
        places = dict(session.places)
        resources = [((exporter, group, entry.cls, name), entry)
                     for exporter, groups in list(session.resources.items())
                     for group, entries in list(groups.items())
                     for name, entry in list(entries.items())
                     if entry.data.get("cls")]
        views = []
        for name, place in sorted(places.items()):
            if not fnmatch.fnmatchcase(name, self.pattern):
                continue
            classes = frozenset(path[2] for path, entry in resources if entry.avail and place.hasmatch(path))
            views.append(PlaceView(name, place.acquired or None, dict(place.tags), classes, place.comment or ""))
        return views

    def all_place_names(self) -> list[str]:
        return sorted(self._session.places)

    def wait_for_change(self, timeout: float) -> None:
        """Returns when the coordinator reported a place change, or after timeout."""
        with self._changed:
            start = self._generation
            self._changed.wait_for(lambda: self._generation != start, timeout)

    def acquire(self, name: str) -> AcquiredPlace | None:
        """Acquires one place; None when someone else took it first."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2

        async def acquire() -> None:
            await self._session.stub.AcquirePlace(labgrid_coordinator_pb2.AcquirePlaceRequest(placename=name))
            await self._session.sync_with_coordinator()

        try:
            self._call(acquire())
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return None  # acquired meanwhile by another client, or its resources are in use
            raise FarmError(f"labgrid: acquiring place {name}: {err.details()}") from None
        try:
            held = self._resolve(name)
        except BaseException:
            with contextlib.suppress(Exception):
                self.release(name, AcquiredPlace(name, SerialEndpoint("", 0), {}))
            raise
        self.held[name] = held
        return held

    def _resolve(self, name: str) -> AcquiredPlace:
        """The acquired place's resources: its serial endpoint and a labgrid Target for its drivers."""
        from labgrid import Target
        from labgrid.resource.remote import RemotePlace, RemotePlaceManager

        session = self._session
        place = session.places[name]
        resources = session.get_target_resources(place)
        serial = [entry for (_, cls), entry in resources.items() if cls == SERIAL_CLASS]
        if not serial:
            raise FarmError(f"labgrid place {name} has no {SERIAL_CLASS} among its resources "
                            f"({', '.join(sorted(cls for _, cls in resources)) or 'none'}); add a match for the "
                            "board's RFC2217 port (labgrid-client -p PLACE add-match EXPORTER/GROUP/NetworkSerialPort)")
        args = serial[0].args
        protocol = args.get("protocol", "rfc2217")
        if protocol != "rfc2217":
            raise FarmError(f"labgrid place {name}: its {SERIAL_CLASS} speaks {protocol}; the harness needs rfc2217 "
                            "(esptool resets and flashes the board through it)")
        manager = RemotePlaceManager.get()
        manager.session, manager.loop = session, session.loop  # as labgrid-client does (_prepare_manager)
        target = Target(name)
        RemotePlace(target, name=name)
        return AcquiredPlace(name, SerialEndpoint(str(args["host"]), int(args["port"])), dict(place.tags), target)

    def release(self, name: str, held: AcquiredPlace | None = None) -> None:
        """Releases a place if this client still holds it (``fromuser``: never someone else's)."""
        held = self.held.pop(name, None) or held
        if held is not None and held.target is not None:
            with contextlib.suppress(Exception):
                held.target.cleanup()
        self.release_from(name, self.name)

    def release_from(self, name: str, holder: str) -> None:
        """Releases a place acquired by `holder` (HOST/USER); nothing when someone else holds it."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2

        async def release() -> None:
            await self._session.stub.ReleasePlace(
                labgrid_coordinator_pb2.ReleasePlaceRequest(placename=name, fromuser=holder))
            await self._session.sync_with_coordinator()

        try:
            self._call(release())
        except grpc.aio.AioRpcError as err:
            raise FarmError(f"labgrid: releasing place {name}: {err.details()}") from None

    def release_all_of(self, holder_user: str) -> list[str]:
        """Releases every place acquired by `holder_user` (a dead worker's); returns their names."""
        holder = session_name(holder_user)
        mine = [p.name for p in self.places() if p.acquired == holder]
        for name in mine:
            self.release_from(name, holder)
        return mine

    def acquire_any(self, candidates: list[str], count: int, timeout: float) -> list[AcquiredPlace]:
        """`count` places among `candidates` (in preference order), all at once (no hold-and-wait), waiting
        for the coordinator to report a release while too few are free, up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            got: list[AcquiredPlace] = []
            free = {p.name for p in self.places() if p.acquired is None}
            for name in candidates:
                if name in free:
                    held = self.acquire(name)
                    if held is not None:
                        got.append(held)
                        if len(got) == count:
                            return got
            for held in got:
                self.release(held.name)
            left = deadline - time.monotonic()
            if left <= 0:
                busy = [p.holder() for p in self.places() if p.name in candidates]
                raise PlacesBusyError(
                    f"no {count} free labgrid place(s) matching {self.pattern!r} on {self.address} within "
                    f"{timeout:g} s: {', '.join(busy)}. A place held by a run that is gone is released with "
                    "labgrid-client -p PLACE release-from HOST/USER (or release --kick)")
            self.wait_for_change(min(left, 5.0))
