"""The farm in a pytest session: ``--hil-farm COORDINATOR`` and ``--hil-farm-places GLOB``.

With them (and ``--target esp32``), the real target's boards are labgrid places instead of ``--port`` or
an inventory: ``FarmPool`` has the ``BoardPool`` interface the real-board back-end uses
(harness/boards/esp32_bench.py), and a lease is an acquired place. Each test acquires the places it needs
and releases them in its teardown; whatever a process still holds is released when its session ends; and
when an xdist worker dies mid-test (killed, crashed) the controller releases the places acquired under
that worker's name (``pytest_testnodedown``), so a dead worker leaves no place locked.

Why the harness's own options rather than labgrid's ``--lg-env``: an env file names one RemotePlace per
target role, so two xdist workers would lock the same place; here each worker takes any free place that
matches. labgrid's pytest plugin arrives with labgrid (an entry point) and its session fixture ``target``
(which skips every test without ``--lg-env``) would take the place of pytest-embedded's: without
``--lg-env`` (or ``LG_ENV``) the harness unregisters that plugin (its hooks change log formatting too)
and takes its fixtures away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.boards import inventory
from harness.farm.agent import FarmAgent, HeldPlace
from harness.farm.client import CoordinatorUnreachableError, FarmError, PlacesBusyError, run_identity

DEFAULT_TIMEOUT_S = 1800.0
LABGRID_PLUGIN = "labgrid"


def add_options(group: Any) -> None:
    group.addoption("--hil-farm", default=None, metavar="HOST:PORT",
                    help="take the real boards from a labgrid coordinator's places (with --target esp32): each test "
                         "acquires a free place and releases it after (docs/runner-setup.md, board farm)")
    group.addoption("--hil-farm-places", default="*", metavar="GLOB",
                    help="the labgrid places this run may use, as a shell pattern on their names (default: *)")
    group.addoption("--hil-farm-timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                    help=f"how long a test waits for a free place (default: {DEFAULT_TIMEOUT_S:g})")


def farm_address(config: pytest.Config) -> str | None:
    return config.getoption("--hil-farm", default=None)


def _worker(config: pytest.Config) -> str:
    return getattr(config, "workerinput", {}).get("workerid", "main")


def _run_id(config: pytest.Config) -> str:
    if _RUN_KEY not in config.stash:
        config.stash[_RUN_KEY] = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
    return config.stash[_RUN_KEY]


_RUN_KEY = pytest.StashKey[str]()
_CLIENT_KEY = pytest.StashKey[FarmAgent]()


def client(config: pytest.Config) -> FarmAgent:
    """This process's session with the coordinator (in its agent process, harness/farm/agent.py), started on
    first use, ended (its places released) when pytest's configuration is cleaned up."""
    if _CLIENT_KEY not in config.stash:
        address = farm_address(config)
        assert address is not None
        if importlib.util.find_spec("labgrid") is None:
            raise pytest.UsageError("--hil-farm needs labgrid: pip install 'esp-ota-hil[farm]' (labgrid 26)")
        try:
            farm = FarmAgent(address, config.getoption("--hil-farm-places", default="*"),
                             user=run_identity(_run_id(config), _worker(config)))
        except CoordinatorUnreachableError as err:
            raise pytest.UsageError(f"--hil-farm: {err}") from None
        config.stash[_CLIENT_KEY] = farm
        config.add_cleanup(farm.close)
        _forked_children_die_with_this_process()
    return config.stash[_CLIENT_KEY]


def place_specs(config: pytest.Config, target: str) -> list[inventory.BoardSpec]:
    """The matching places as board specs (the places of other targets left out); none is a usage error that
    lists what the coordinator has."""
    farm = client(config)
    places = farm.places()
    boards = [p for p in places if p.is_board and p.target == target]
    if not boards:
        pattern = config.getoption("--hil-farm-places", default="*")
        others = farm.all_place_names()
        detail = (f"the matching places have no available NetworkSerialPort or another target: "
                  f"{', '.join(f'{p.name} ({sorted(p.classes)}, target {p.target})' for p in places)}"
                  if places else f"places there: {', '.join(others) or 'none'}")
        raise pytest.UsageError(
            f"--hil-farm {farm.address}: no labgrid place matches {pattern!r} with a board of target {target} "
            f"({detail}). "
            "Add one: labgrid-client -x ADDRESS -p NAME create; labgrid-client -x ADDRESS -p NAME add-match "
            "'EXPORTER/GROUP/*' (docs/runner-setup.md), or fix --hil-farm-places")
    specs = []
    for place in boards:
        caps = frozenset({inventory.POWER_CAPABILITY}) if place.has_power else frozenset()
        mac = place.tags.get("mac")
        specs.append(inventory.BoardSpec(
            name=place.name, target=target, port=f"labgrid://{farm.address}/{place.name}", capabilities=caps,
            mac=inventory.normalize_mac(mac) if mac else None, ip=place.tags.get("ip")))
    return specs


def header_lines(config: pytest.Config) -> list[str]:
    farm = client(config)
    return [f"labgrid farm {farm.address}, places {farm.pattern!r}: "
            + ", ".join(p.holder() for p in farm.places() if p.is_board)]


def _forked_children_die_with_this_process() -> None:
    """A child this process forks without exec (pytest-embedded's multiprocessing manager, in every session)
    gets SIGKILL when this process dies. Otherwise, when an xdist worker is killed, that child lives on with the
    worker's end of its execnet pipes, and the controller never sees the worker go (nor releases its places)."""
    if not sys.platform.startswith("linux") or _FORK_HOOKED:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def die_with_parent() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before prctl took effect
            os._exit(1)

    os.register_at_fork(after_in_child=die_with_parent)
    _FORK_HOOKED.append(parent)


PR_SET_PDEATHSIG = 1
_FORK_HOOKED: list[int] = []


class LabgridPower:
    """A place's power switch: labgrid's PowerProtocol driver for it (NetworkPowerDriver, ...), in the agent."""

    def __init__(self, farm: FarmAgent, place: str) -> None:
        self.farm = farm
        self.place = place

    def off(self) -> None:
        self.farm.power(self.place, False)

    def on(self) -> None:
        self.farm.power(self.place, True)

    def __str__(self) -> str:
        return f"labgrid power of place {self.place}"


@dataclass
class FarmLease(inventory.Lease):
    """An acquired place as a lease: its state file (flashed by this run?) is per place on this machine."""

    place: HeldPlace | None = None
    farm: FarmAgent | None = None

    def power_control(self) -> Any:
        if self.place is None or self.farm is None or not self.place.has_power:
            return None
        return LabgridPower(self.farm, self.place.name)


class FarmPool:
    """The BoardPool interface over labgrid places: worker N prefers the N-th place, as with lock files."""

    def __init__(self, farm: FarmAgent, specs: list[inventory.BoardSpec], worker_index: int = 0,
                 worker_count: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
                 state_dir: Path | None = None) -> None:
        self.farm = farm
        self.specs = list(specs)
        self.worker_index = worker_index
        self.worker_count = max(1, worker_count)
        self.timeout = timeout
        self.state_dir = Path(state_dir or inventory.LOCK_DIR)

    def _preference(self, needed: frozenset[str]) -> list[inventory.BoardSpec]:
        usable = [s for s in self.specs if s.provides(needed)]
        mine = [s for i, s in enumerate(self.specs) if i % self.worker_count == self.worker_index and s in usable]
        return mine + [s for s in usable if s not in mine]

    def acquire(self, count: int = 1, needed: frozenset[str] = frozenset(),
                timeout: float | None = None) -> list[FarmLease]:
        candidates = self._preference(needed)
        if len(candidates) < count:
            what = f" with {', '.join(sorted(needed))}" if needed else ""
            raise inventory.BoardBusyError(f"this test needs {count} board(s){what}; the farm has {len(candidates)} "
                                           f"matching place(s)")
        try:
            held = self.farm.acquire_any([s.name for s in candidates], count,
                                         self.timeout if timeout is None else timeout)
        except PlacesBusyError as err:
            raise inventory.BoardBusyError(str(err)) from None
        except FarmError as err:
            raise inventory.BoardBusyError(f"labgrid farm {self.farm.address}: {err}") from None
        by_name = {s.name: s for s in candidates}
        self.state_dir.mkdir(parents=True, exist_ok=True)
        leases = []
        for place in held:
            spec = dataclasses.replace(by_name[place.name], port=place.serial.url())
            key = re.sub(r"[^A-Za-z0-9_.-]", "_", f"labgrid_{self.farm.address}_{place.name}")[-100:]
            state = self.state_dir / f"{key}.state.json"
            leases.append(FarmLease(spec, state, -1, place=place, farm=self.farm))
        return leases

    def release(self, leases: list[Any]) -> None:
        for lease in leases:
            with contextlib.suppress(FarmError, TimeoutError):
                self.farm.release(lease.spec.name)


def pool(config: pytest.Config, specs: list[inventory.BoardSpec], worker_index: int, worker_count: int) -> FarmPool:
    return FarmPool(client(config), specs, worker_index, worker_count,
                    timeout=config.getoption("--hil-farm-timeout", default=DEFAULT_TIMEOUT_S))


def release_dead_worker(config: pytest.Config, node: Any) -> list[str]:
    """The controller's side of a worker that went down: its places, if it still held any, released."""
    workerinput = getattr(node, "workerinput", {}) or {}
    worker, run_id = workerinput.get("workerid"), workerinput.get("testrunuid")
    if not farm_address(config) or not worker or not run_id:
        return []
    try:
        return client(config).release_all_of(run_identity(run_id, worker))
    except (FarmError, TimeoutError, pytest.UsageError):
        return []


# --- labgrid's own pytest plugin ---


def keep_labgrid_plugin_out(early_config: pytest.Config) -> None:
    """Unregisters labgrid's pytest plugin unless its --lg-env (or LG_ENV) is used (see the module doc)."""
    pm = early_config.pluginmanager
    plugin = pm.get_plugin(LABGRID_PLUGIN)
    if plugin is None or not getattr(plugin, "__name__", "").startswith("labgrid"):
        return
    if getattr(early_config.known_args_namespace, "lg_env", None) or os.environ.get("LG_ENV"):
        return
    pm.unregister(plugin)
    # pytest replays every plugin registration to its fixture manager, which is made later (at session start)
    # and would parse the unregistered plugin's fixtures all the same: they go from the plugin's namespace.
    for name in list(vars(plugin)):
        value = getattr(plugin, name)
        if type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction"):
            delattr(plugin, name)
