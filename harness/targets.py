"""Which target a session runs on, which scenarios it can run, and the real-board back-end.

`--target` and `--port` are pytest-embedded's own options; the harness registers them only when
pytest-embedded is not installed. `linux` (the default) is the virtual ESP32. A real target
(`esp32`) uses boards from `--port` or `--board-inventory`, flashed once per session with the
idf.py build of each variant (harness.idf_build), restored to the baseline before every test
without re-flashing, and provisioned over the serial console. Scenarios a real board cannot do
are deselected, each with its reason in the report. A real target never falls back to the
virtual board: no board is a usage error, at once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from esptool.targets import CHIP_DEFS

from harness import project
from harness.boards import inventory
from harness.boards.esp32 import LOADED_APP, Esp32Board, Esp32Error, PortLostError
from harness.boards.power import parse_power
from harness.idf_build import FirmwareMissingError, IdfFirmware
from harness.masking import Secret, is_secret_key
from harness.provision import provision

VIRTUAL_TARGET = "linux"
REAL_TARGETS = tuple(sorted(CHIP_DEFS))  # every chip esptool knows; esp32 is the one the firmware CI builds
REAL_BOOT_TIMEOUT_S = 45.0  # reset, Wi-Fi association, DHCP and MQTT connect on a real board
CONSOLE_TIMEOUT_S = 10.0
PROBE_BROKER_URL = "mqtt://127.0.0.1:1"  # never answers: only used to make the board join Wi-Fi
GOT_IP = r"got ip:\s*(\d+\.\d+\.\d+\.\d+)"


@dataclass(frozen=True)
class Requirement:
    marker: str
    reason: str


# What a marker needs that a real board (without extra equipment) does not have.
VIRTUAL_ONLY = Requirement("virtual_only", "needs the virtual board (flash access or emulation a real ESP32 lacks)")
POWER = Requirement("needs_power_control", "needs power control (a relay or uhubctl), none configured: set --power "
                                           "or 'power' in the board inventory")
REAL_BOARD_LIMITS = (VIRTUAL_ONLY, POWER)

MARKERS = (
    "boards(n): the scenario needs n boards at the same time (a real target leases n boards from the pool)",
    "virtual_only: runs on the virtual board only (needs flash access or emulation a real board lacks)",
    "needs_power_control: needs a way to cut the board's power",
)


def _embedded_registers_options(pluginmanager: pytest.PytestPluginManager | None) -> bool:
    """Whether pytest-embedded's plugin is (or will be) loaded, and so owns --target and --port."""
    if pluginmanager is not None:
        if pluginmanager.has_plugin("pytest_embedded") or pluginmanager.has_plugin("pytest_embedded.plugin"):
            return True
        if pluginmanager.is_blocked("pytest_embedded"):
            return False
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return importlib.util.find_spec("pytest_embedded") is not None


def add_target_option(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager | None = None) -> None:
    group = parser.getgroup("hil")
    if not _embedded_registers_options(pluginmanager):
        group.addoption(
            "--target", default=VIRTUAL_TARGET,
            help=f"where the scenarios run: {VIRTUAL_TARGET} (virtual ESP32, default) or esp32 (a real board)",
        )
        group.addoption("--port", default=None,
                        help="serial port of the real board: a device path, a glob, or rfc2217://host:port")
    group.addoption("--board-inventory", default=None, metavar="FILE",
                    help="TOML or YAML list of boards (port, serial_number or mac; target; capabilities; power)")
    group.addoption("--firmware-dir", default=None, metavar="DIR",
                    help="where the idf.py builds are, as build_<target>_<variant>/ (default: device/)")
    group.addoption("--flash-baud", type=int, default=460800, metavar="BAUD",
                    help="esptool baud rate for flashing and erasing (default: 460800)")
    group.addoption("--wifi-ssid", default=None, metavar="SSID",
                    help="Wi-Fi network the real board joins (default: $HIL_WIFI_SSID, else the firmware's Kconfig)")
    group.addoption("--wifi-password", default=None, metavar="PASSWORD",
                    help="its password (default: $HIL_WIFI_PASSWORD; prefer the variable: it stays out of "
                         "process lists); never printed")
    group.addoption("--host-ip", default=None, metavar="ADDR",
                    help="address the board reaches this machine at, for the broker and firmware server "
                         "(default: found from the board's own address)")
    group.addoption("--power", default=None, metavar="SPEC",
                    help="power control for --port boards: uhubctl:<hub location>:<port> or "
                         "command:<command with {action}>")


def target_of(config: pytest.Config) -> str:
    target = config.getoption("--target", default=None) or VIRTUAL_TARGET
    return VIRTUAL_TARGET if target == "linux" else target


def is_real(config: pytest.Config) -> bool:
    return target_of(config) != VIRTUAL_TARGET


# --- which boards a session has ---


def _configured_specs(config: pytest.Config) -> list[inventory.BoardSpec]:
    """Boards named by the options (no probing): inventory entries for the target, --port / ESPPORT
    entries (globs expanded), or USB serial bridges found on this machine."""
    target = target_of(config)
    path = config.getoption("--board-inventory", default=None)
    if path:
        try:
            return [s for s in inventory.load_inventory(Path(path)) if s.target == target]
        except inventory.InventoryError as err:
            raise pytest.UsageError(f"--board-inventory: {err}") from None
    power = config.getoption("--power", default=None)
    try:
        parse_power(power)
    except ValueError as err:
        raise pytest.UsageError(f"--power: {err}") from None
    ports = config.getoption("--port", default=None) or os.environ.get("ESPPORT")
    if ports:
        return inventory.specs_from_ports(ports, target, power)
    return inventory.autodetect_specs(target, power)


def _boards_of(config: pytest.Config) -> list[inventory.BoardSpec]:
    if _SPECS_KEY not in config.stash:
        config.stash[_SPECS_KEY] = _configured_specs(config)
    return config.stash[_SPECS_KEY]


_SPECS_KEY = pytest.StashKey[list[inventory.BoardSpec]]()


def boards_needed(item: pytest.Item) -> int:
    marker = item.get_closest_marker("boards")
    return int(marker.args[0]) if marker and marker.args else 1


def deselect_for_target(config: pytest.Config, items: list[pytest.Item]) -> list[tuple[str, str]]:
    """Removes what the target cannot run; returns (test id, reason) for the report."""
    if not is_real(config):
        return []
    target = target_of(config)
    specs = _boards_of(config)
    count = max(1, len(specs))  # with none found the session stops before running anything
    with_power = sum(1 for s in specs if s.has_power)
    kept, dropped = [], []
    for item in items:
        reason = None
        if item.get_closest_marker(VIRTUAL_ONLY.marker):
            reason = VIRTUAL_ONLY.reason
        elif item.get_closest_marker(POWER.marker) and not with_power:
            reason = POWER.reason
        elif boards_needed(item) > count:
            reason = (f"needs {boards_needed(item)} boards at once; {len(specs)} {target} board(s) configured "
                      "(list more with --port a,b or --board-inventory)")
        (dropped if reason else kept).append((item, reason))
    if dropped:
        config.hook.pytest_deselected(items=[item for item, _ in dropped])
        items[:] = [item for item, _ in kept]
    config.stash[_DROPPED_KEY] = [(item.nodeid, reason) for item, reason in dropped]
    return config.stash[_DROPPED_KEY]


def _no_board_message(target: str, detail: str) -> str:
    return (f"--target {target}: {detail}\nThis run does not fall back to the virtual board; omit --target to use "
            f"it.\n{inventory.HOW_TO_NAME_A_PORT}")


def check_target_usable(config: pytest.Config) -> None:
    """A real target with no board, or no build, fails the session at once; never falls back."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    target = target_of(config)
    if target == VIRTUAL_TARGET:
        return
    if target not in REAL_TARGETS:
        raise pytest.UsageError(f"--target {target}: unknown target; use {VIRTUAL_TARGET} (the virtual ESP32) "
                                "or esp32 (a real board)")
    this_module = sys.modules[__name__]
    if not config.pluginmanager.is_registered(this_module):
        config.pluginmanager.register(this_module, "harness-real-target")
    if config.option.collectonly or hasattr(config, "workerinput") or config.option.help:
        return  # collection alone needs no board; xdist workers trust the controller's check
    specs = _boards_of(config)
    if not specs:
        raise pytest.UsageError(_no_board_message(target, "no board named and no ESP32 USB serial bridge found."))
    present = [s for s in specs if s.mac and not (s.port or s.serial_number) or _answers(inventory.resolve_port(s))]
    if not present:
        where = ", ".join(s.where() for s in specs)
        raise pytest.UsageError(_no_board_message(target, f"no board found at {where}."))
    try:
        _firmware(config).build()
    except FirmwareMissingError as err:
        raise pytest.UsageError(f"--target {target}: {err}") from None
    ssid = _wifi(config).ssid
    if ssid is not None and any(c.isspace() for c in ssid):
        raise pytest.UsageError("--wifi-ssid: an SSID with spaces cannot be provisioned over the console yet")


def _answers(url: str | None) -> bool:
    """A local port exists (resolve_port checked); a network port accepts a connection within 3 s."""
    if url is None or "://" not in url:
        return url is not None
    hostport = url.split("://", 1)[1].split("?", 1)[0].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


# --- session state of a real target ---


@dataclass(frozen=True)
class WifiCredentials:
    ssid: str | None
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"WifiCredentials(ssid={self.ssid!r}, password={'********' if self.password else None})"

    def settings(self) -> dict[str, str]:
        values = {}
        if self.ssid:
            values["wifi_ssid"] = self.ssid
        if self.password:
            values["wifi_password"] = Secret(self.password)
        return values


def _wifi(config: pytest.Config) -> WifiCredentials:
    return WifiCredentials(
        ssid=config.getoption("--wifi-ssid", default=None) or os.environ.get("HIL_WIFI_SSID"),
        password=config.getoption("--wifi-password", default=None) or os.environ.get("HIL_WIFI_PASSWORD"),
    )


def _firmware(config: pytest.Config) -> IdfFirmware:
    if _FIRMWARE_KEY not in config.stash:
        app = project.of(config)
        device_dir = Path(config.getoption("--firmware-dir", default=None) or app.app_dir)
        config.stash[_FIRMWARE_KEY] = IdfFirmware(device_dir, target_of(config), app.sdkconfig_defaults)
    return config.stash[_FIRMWARE_KEY]


_FIRMWARE_KEY = pytest.StashKey[IdfFirmware]()


def udp_source_address(dest_ip: str) -> str:
    """This machine's address on the route towards dest_ip (connect() on UDP sends no packet)."""
    family = socket.AF_INET6 if ":" in dest_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((dest_ip, 9))
        return sock.getsockname()[0]


def _is_local_address(address: str) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


@dataclass
class Esp32Bench:
    """What a session on a real target shares: the boards, the builds, credentials, the host address."""

    config: pytest.Config
    target: str
    pool: inventory.BoardPool
    firmware: IdfFirmware
    wifi: WifiCredentials
    flash_baud: int
    run_id: str
    host_ip: str | None = None
    host_ip_given: bool = False

    # -- boards --

    def open_board(self, lease: inventory.Lease) -> Esp32Board:
        spec = lease.spec
        claimed: set[str] = set()
        url = inventory.resolve_port(spec, claimed)
        if url is None and spec.mac and not (spec.port or spec.serial_number):
            url = inventory.find_by_mac(spec, claimed, self._read_mac_at)
        if url is None:
            raise PortLostError(f"board {spec.name} ({spec.where()}) is not connected")
        board = Esp32Board(spec.name, url, target=self.target, power=parse_power(spec.power),
                           flash_baud=self.flash_baud)
        board.add_secrets(v for v in (self.wifi.password,) if v)
        board.open()
        return board

    def _read_mac_at(self, port: str) -> str:
        probe = Esp32Board("probe", port, target=self.target, flash_baud=self.flash_baud, connect_attempts=1)
        try:
            return probe.read_mac()
        finally:
            probe.close()

    def restore_baseline(self, lease: inventory.Lease, board: Esp32Board, image: bytes | None = None) -> None:
        """Flash once per session (per board), else only erase otadata and nvs; reset; check ota_0 boots."""
        build = self.firmware.build()
        state = lease.read_state()
        if state.get("run") != self.run_id or state.get("build") != build.fingerprint():
            board.flash_build(build, image)
            if lease.spec.mac:
                self._check_mac(board, lease.spec.mac)
            lease.write_state(run=self.run_id, build=build.fingerprint())
        else:
            board.build = build
            board.restore_flash(build, image)
        board.serial.skip_to_end()
        board.reset()
        offset = int(board.expect(LOADED_APP, timeout=CONSOLE_TIMEOUT_S).group(1), 16)
        if offset != build.ota_0.offset:
            raise Esp32Error(f"{board.name}: after erasing otadata the bootloader loaded {offset:#x}, not ota_0 "
                             f"at {build.ota_0.offset:#x}")

    @staticmethod
    def _check_mac(board: Esp32Board, mac: str) -> None:
        found = inventory.normalize_mac(board.read_mac())
        if found != mac:
            raise Esp32Error(f"{board.name}: the chip on {board.port_url} has MAC {found}, the inventory says {mac}")

    # -- the address the board reaches us at --

    def server_address(self) -> dict[str, str]:
        if self.host_ip is None:
            self.host_ip = self._learn_host_ip()
        bind = self.host_ip if _is_local_address(self.host_ip) else "0.0.0.0"
        return {"host": bind, "advertise_host": self.host_ip}

    def _learn_host_ip(self) -> str:
        """Joins Wi-Fi with one board, reads its address, and takes our address on the route to it."""
        known = [s.ip for s in self.pool.specs if s.ip]
        if known:
            return udp_source_address(known[0])
        leases = self.pool.acquire(1)
        board = None
        try:
            lease = leases[0]
            ip = lease.read_state().get("ip") if lease.read_state().get("run") == self.run_id else None
            if ip is None:
                board = self.open_board(lease)
                self.restore_baseline(lease, board)
                provision(board, {"device_id": f"probe{uuid.uuid4().hex[:6]}", "broker_url": PROBE_BROKER_URL,
                                  **self.wifi.settings()}, timeout=CONSOLE_TIMEOUT_S)
                ip = board.expect(GOT_IP, timeout=REAL_BOOT_TIMEOUT_S).group(1)
                lease.write_state(ip=ip)
            return udp_source_address(ip)
        finally:
            if board is not None:
                board.close()
            self.pool.release(leases)


def bench(config: pytest.Config) -> Esp32Bench:
    if _BENCH_KEY not in config.stash:
        worker = getattr(config, "workerinput", {}).get("workerid", "gw0")
        host_ip = config.getoption("--host-ip", default=None)
        config.stash[_BENCH_KEY] = Esp32Bench(
            config=config,
            target=target_of(config),
            pool=inventory.BoardPool(_boards_of(config), worker_index=int(worker.lstrip("gw") or 0),
                                     worker_count=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))),
            firmware=_firmware(config),
            wifi=_wifi(config),
            flash_baud=config.getoption("--flash-baud", default=460800),
            run_id=os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex,
            host_ip=host_ip,
            host_ip_given=host_ip is not None,
        )
    return config.stash[_BENCH_KEY]


_BENCH_KEY = pytest.StashKey[Esp32Bench]()


# --- what plugin.py's fixtures ask for ---


def server_address(request: pytest.FixtureRequest) -> dict[str, str]:
    """Keyword arguments (host=, advertise_host=) for EmbeddedBroker and FirmwareServer."""
    if not is_real(request.config):
        return {}
    return bench(request.config).server_address()


def real_firmware(config: pytest.Config) -> IdfFirmware | None:
    return _firmware(config) if is_real(config) else None


class Esp32BoardFactory:
    """Leases the boards a test needs, restores each to the baseline, provisions it, waits for it."""

    def __init__(self, request: pytest.FixtureRequest, broker_url: str, link: Any, record: Any) -> None:
        self.bench = bench(request.config)
        self.broker_url = broker_url
        self.topic_prefix = project.of(request.config).topic_prefix
        self.link = link
        self.record = record
        self.needed = frozenset({inventory.POWER_CAPABILITY}) if request.node.get_closest_marker(POWER.marker) \
            else frozenset()
        self.leases = self.bench.pool.acquire(boards_needed(request.node), self.needed)
        self.boards: list[Esp32Board] = []

    def __call__(self, image: bytes | None = None, **settings: object) -> Esp32Board:
        index = len(self.boards)
        if index >= len(self.leases):
            try:
                self.leases += self.bench.pool.acquire(1, self.needed, timeout=0)
            except inventory.BoardBusyError:
                raise Esp32Error(f"this test asks for board #{index + 1} but leased {len(self.leases)}: mark it "
                                 f"@pytest.mark.boards({index + 1})") from None
        lease = self.leases[index]
        board = self.bench.open_board(lease)
        self.boards.append(board)
        self.record.boards.append(board)
        device_id = f"e{uuid.uuid4().hex[:7]}"
        board.device_id = device_id
        values: dict[str, object] = {"device_id": device_id, "broker_url": self.broker_url,
                                     "topic_prefix": self.topic_prefix, **self.bench.wifi.settings(), **settings}
        board.add_secrets(str(v) for k, v in values.items() if is_secret_key(k))
        self.bench.restore_baseline(lease, board, image)
        cursor = self.link.cursor()
        provision(board, values, timeout=CONSOLE_TIMEOUT_S)
        board.expect(r"rst:0xc \(SW_CPU_RESET\)", timeout=CONSOLE_TIMEOUT_S)
        status = self.link.wait_status(device_id, timeout=REAL_BOOT_TIMEOUT_S, since=cursor,
                                       description=f"first status of {device_id} ({board.name}) after provisioning")
        self._check_route(board)
        if image is None:
            expected = (self.bench.firmware.base_version, "ota_0")
            if (status.get("version"), status.get("partition")) != expected:
                raise Esp32Error(f"{board.name}: after the baseline restore it runs {status.get('version')} from "
                                 f"{status.get('partition')}, not {expected[0]} from {expected[1]}")
        return board

    def _check_route(self, board: Esp32Board) -> None:
        if self.bench.host_ip_given or self.bench.host_ip is None:
            return
        ips = [m for line in board.serial.lines if (m := _search(GOT_IP, line.text))]
        if ips and udp_source_address(ips[-1]) != self.bench.host_ip:
            raise Esp32Error(f"{board.name} got {ips[-1]}, reached from this machine through "
                             f"{udp_source_address(ips[-1])}, but the servers were advertised at {self.bench.host_ip}: "
                             "pass --host-ip")

    def stop_all(self) -> None:
        for board in self.boards:
            board.close()
        self.bench.pool.release(self.leases)
        self.leases = []


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def real_board_factory(request: pytest.FixtureRequest, broker_url: str, link: Any, record: Any) -> Esp32BoardFactory:
    return Esp32BoardFactory(request, broker_url, link, record)


# --- hooks, active on a real target only (check_target_usable registers this module as a plugin) ---


def pytest_report_header(config: pytest.Config) -> list[str]:
    specs = _boards_of(config)
    lines = [f"target {target_of(config)}: {len(specs)} board(s): "
             + ", ".join(f"{s.name} ({s.where()})" for s in specs)]
    with contextlib.suppress(FirmwareMissingError):
        build = _firmware(config).build()
        lines.append(f"firmware {build.build_dir} version {build.version}")
    wifi = _wifi(config)
    lines.append(f"wifi: {wifi!r}")
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A board that vanished fails its test and stops the session: the rest would only time out."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(PortLostError):
        item.session.shouldstop = f"real board lost: {call.excinfo.value}"
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the deselections to the controller
        session.config.workeroutput["hil_deselected"] = session.config.stash.get(_DROPPED_KEY, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    dropped = getattr(node, "workeroutput", {}).get("hil_deselected")
    if dropped is not None:
        node.config.stash[_WORKER_DROPPED_KEY] = [tuple(d) for d in dropped]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # Without xdist plugin.py prints the deselections it collected itself; with xdist they come from a worker.
    for nodeid, reason in config.stash.get(_WORKER_DROPPED_KEY, []):
        terminalreporter.write_line(f"DESELECTED {nodeid}: {reason}")


_DROPPED_KEY = pytest.StashKey[list[tuple[str, str]]]()
_WORKER_DROPPED_KEY = pytest.StashKey[list[tuple[str, str]]]()
