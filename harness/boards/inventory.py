"""Which real boards a session may use, where they are, and who holds which right now.

Boards come from ``--port`` (one or more ports, globs allowed) or from a board inventory file,
TOML or YAML, one entry per board::

    [[board]]
    name = "esp32-a"
    target = "esp32"
    serial_number = "0001"                # the USB bridge's serial number (udevadm / list_ports)
    capabilities = ["wifi"]
    power = "uhubctl:1-1.4:2"             # see harness.boards.power

    [[board]]
    name = "esp32-b"
    port = "rfc2217://lab-pi:4000?ign_set_control"   # a board shared with esp_rfc2217_server
    mac = "24:0a:c4:12:34:56"             # checked after connecting

A board is found by ``port`` (device path, glob or URL), else ``serial_number``, else ``mac`` (every
unclaimed USB serial port is probed with esptool). With pytest-xdist every worker shares the pool:
a test leases the boards it needs for its duration (file locks, so also across concurrent sessions
on one machine); worker N prefers board N, so ``-n <number of boards>`` gives one worker per board.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from serial.tools import list_ports

from harness.boards.power import PowerControl, parse_power

# USB vendor ids of the UART bridges on ESP32 boards: Silicon Labs CP210x, WCH CH34x, FTDI, Espressif.
ESP_USB_VIDS = frozenset({0x10C4, 0x1A86, 0x0403, 0x303A})
POWER_CAPABILITY = "power_control"
_KEYS = {"name", "target", "port", "serial_number", "mac", "capabilities", "power", "ip"}
_GLOB = re.compile(r"[*?\[]")
LOCK_DIR = Path(tempfile.gettempdir()) / "esp-ota-hil-boards"

HOW_TO_NAME_A_PORT = """\
Name the board's serial port:
  --port /dev/ttyUSB0                                  a device path
  --port '/dev/serial/by-id/usb-Silicon_Labs_CP2102*'  a glob (quoted), every match is a board
  --port 'rfc2217://HOST:4000?ign_set_control'         a board shared with esp_rfc2217_server
  --hil-board-inventory boards.toml                        several boards, by port, serial number or MAC
or set ESPPORT. Without --target (or with --target linux) the scenarios run on the virtual board.
See docs/runner-setup.md."""


class InventoryError(ValueError):
    pass


class NoBoardError(RuntimeError):
    pass


@dataclass(frozen=True)
class BoardSpec:
    name: str
    target: str = "esp32"
    port: str | None = None
    serial_number: str | None = None
    mac: str | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)
    power: str | None = None
    ip: str | None = None

    @property
    def has_power(self) -> bool:
        return self.power is not None or POWER_CAPABILITY in self.capabilities

    def provides(self, needed: frozenset[str]) -> bool:
        return needed <= self.capabilities

    def where(self) -> str:
        if self.port:
            return self.port
        if self.serial_number:
            return f"USB serial number {self.serial_number}"
        return f"MAC {self.mac}"


def normalize_mac(mac: str) -> str:
    digits = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if len(digits) != 12:
        raise InventoryError(f"MAC {mac!r} does not have 12 hex digits")
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def _spec_from_entry(entry: object, index: int, source: str) -> BoardSpec:
    if not isinstance(entry, dict):
        raise InventoryError(f"{source}: board #{index + 1} is not a table/mapping")
    unknown = set(entry) - _KEYS
    if unknown:
        raise InventoryError(f"{source}: board #{index + 1} has unknown keys {sorted(unknown)} "
                             f"(known: {', '.join(sorted(_KEYS))})")
    name = str(entry.get("name") or f"board{index + 1}")
    if not any(entry.get(k) for k in ("port", "serial_number", "mac")):
        raise InventoryError(f"{source}: board {name!r} needs a port, serial_number or mac")
    caps = entry.get("capabilities", [])
    if isinstance(caps, str) or not all(isinstance(c, str) for c in caps):
        raise InventoryError(f"{source}: board {name!r}: capabilities must be a list of names")
    power = entry.get("power")
    try:
        parse_power(power)
    except ValueError as err:
        raise InventoryError(f"{source}: board {name!r}: {err}") from None
    capabilities = frozenset(caps) | ({POWER_CAPABILITY} if power else frozenset())
    if POWER_CAPABILITY in caps and not power:
        raise InventoryError(f"{source}: board {name!r} lists {POWER_CAPABILITY} but has no 'power' back-end")
    return BoardSpec(
        name=name,
        target=str(entry.get("target", "esp32")),
        port=entry.get("port"),
        serial_number=str(entry["serial_number"]) if entry.get("serial_number") else None,
        mac=normalize_mac(entry["mac"]) if entry.get("mac") else None,
        capabilities=capabilities,
        power=power,
        ip=entry.get("ip"),
    )


def load_inventory(path: Path) -> list[BoardSpec]:
    """Board specs from a TOML (``[[board]]`` tables) or YAML (``boards:`` list) file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise InventoryError(f"board inventory {path}: {err.strerror}") from None
    source = str(path)
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InventoryError(f"{source}: reading YAML needs PyYAML (pip install pyyaml), or use TOML") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise InventoryError(f"{source}: {err}") from None
        entries = data.get("boards", data.get("board", [])) if isinstance(data, dict) else data
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InventoryError(f"{source}: {err}") from None
        entries = data.get("board", data.get("boards", []))
    if not isinstance(entries, list) or not entries:
        raise InventoryError(f"{source}: no boards (expected [[board]] tables in TOML or a 'boards:' list in YAML)")
    specs = [_spec_from_entry(entry, i, source) for i, entry in enumerate(entries)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InventoryError(f"{source}: board names must be unique: {', '.join(dupes)}")
    return specs


def specs_from_ports(ports: str, target: str, power: str | None = None) -> list[BoardSpec]:
    """Boards from ``--port``: entries separated by ``,`` or ``|``; each glob match is a board."""
    entries = [p.strip() for p in re.split(r"[,|]", ports) if p.strip()]
    resolved: list[str] = []
    for entry in entries:
        if "://" not in entry and _GLOB.search(entry):
            resolved.extend(sorted(glob.glob(entry)))
        else:
            resolved.append(entry)
    caps = frozenset({POWER_CAPABILITY}) if power else frozenset()
    return [BoardSpec(name=_name_for_port(port, i), target=target, port=port, capabilities=caps, power=power)
            for i, port in enumerate(dict.fromkeys(resolved))]


def _name_for_port(port: str, index: int) -> str:
    if "://" in port:
        return f"board{index}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(port))[:40] or f"board{index}"


def usb_serial_ports() -> list[list_ports.ListPortInfo]:
    return [p for p in list_ports.comports() if p.vid in ESP_USB_VIDS]


def autodetect_specs(target: str, power: str | None = None) -> list[BoardSpec]:
    """Boards on USB serial bridges that ESP32 boards use (no --port, no inventory)."""
    ports = sorted(p.device for p in usb_serial_ports())
    return specs_from_ports(",".join(ports), target, power) if ports else []


def resolve_port(spec: BoardSpec, claimed: set[str] | None = None) -> str | None:
    """The port URL of a board, or None when it is not connected. MAC-only specs return None here:
    they are found by probing (find_by_mac)."""
    claimed = claimed or set()
    if spec.port:
        if "://" in spec.port:
            return spec.port
        if _GLOB.search(spec.port):
            matches = [m for m in sorted(glob.glob(spec.port)) if m not in claimed]
            return matches[0] if matches else None
        return spec.port if os.path.exists(spec.port) else None
    if spec.serial_number:
        for p in list_ports.comports():
            if p.serial_number == spec.serial_number and p.device not in claimed:
                return p.device
        return None
    return None


def find_by_mac(spec: BoardSpec, claimed: set[str], read_mac) -> str | None:
    """Probes unclaimed ESP USB ports with ``read_mac(port) -> 'aa:bb:..'`` until one matches."""
    for port in sorted(p.device for p in usb_serial_ports()):
        if port in claimed:
            continue
        with contextlib.suppress(Exception):
            if normalize_mac(read_mac(port)) == spec.mac:
                return port
    return None


# --- the pool ---


def _lock_name(spec: BoardSpec) -> str:
    key = spec.port or spec.serial_number or spec.mac or spec.name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key)[-80:]


@dataclass
class Lease:
    """One board held by this process until released; its state file says what was flashed on it."""

    spec: BoardSpec
    state_path: Path
    _fd: int

    def read_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def power_control(self) -> PowerControl | None:
        """The board's power switch: its spec's back-end (a farm's lease has labgrid's driver instead)."""
        return parse_power(self.spec.power)

    def write_state(self, **values: object) -> None:
        state = {**self.read_state(), **values}
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_path)


class BoardBusyError(RuntimeError):
    pass


class BoardPool:
    """Boards leased per test through lock files, machine-wide (pytest-xdist workers, other sessions)."""

    def __init__(self, specs: list[BoardSpec], worker_index: int = 0, worker_count: int = 1,
                 lock_dir: Path | None = None) -> None:
        self.specs = list(specs)
        self.worker_index = worker_index
        self.worker_count = max(1, worker_count)
        self.lock_dir = Path(lock_dir or LOCK_DIR)

    def _preference(self, needed: frozenset[str]) -> list[BoardSpec]:
        usable = [s for s in self.specs if s.provides(needed)]
        mine = [s for i, s in enumerate(self.specs) if i % self.worker_count == self.worker_index and s in usable]
        return mine + [s for s in usable if s not in mine]

    def _try_lock(self, spec: BoardSpec) -> Lease | None:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_dir / f"{_lock_name(spec)}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return Lease(spec, self.lock_dir / f"{_lock_name(spec)}.state.json", fd)

    def acquire(self, count: int = 1, needed: frozenset[str] = frozenset(), timeout: float = 1800.0) -> list[Lease]:
        """Leases `count` boards that have the `needed` capabilities, all at once (no hold-and-wait)."""
        candidates = self._preference(needed)
        if len(candidates) < count:
            what = f" with {', '.join(sorted(needed))}" if needed else ""
            raise BoardBusyError(f"this test needs {count} board(s){what}; the pool has {len(candidates)}")
        deadline = time.monotonic() + timeout
        while True:
            leases: list[Lease] = []
            for spec in candidates:
                lease = self._try_lock(spec)
                if lease is not None:
                    leases.append(lease)
                    if len(leases) == count:
                        return leases
            self.release(leases)
            if time.monotonic() > deadline:
                raise BoardBusyError(f"no {count} free board(s) within {timeout:g} s: "
                                     f"{', '.join(s.name for s in candidates)} stayed in use")
            time.sleep(0.2)  # other workers hold them; a lease lasts one test

    @staticmethod
    def release(leases: list[Lease]) -> None:
        for lease in leases:
            with contextlib.suppress(OSError):
                fcntl.flock(lease._fd, fcntl.LOCK_UN)
                os.close(lease._fd)
