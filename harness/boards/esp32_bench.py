"""A session on a real target: the boards, their builds, the Wi-Fi credentials, the host address.

`Esp32Bench` is what a session shares (per pytest-xdist worker): the board pool, the idf.py builds, the
address the boards reach this machine at. `Esp32BoardFactory` leases the boards a test needs, flashes
(once per session) or restores each, then brings it to the baseline with the sequence every target
shares (harness/session/baseline.py).
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from harness import project, targets
from harness.boards import inventory
from harness.boards.esp32 import LOADED_APP, Esp32Board, Esp32Error, PortLostError
from harness.farm import pytest_farm
from harness.farm.pytest_farm import FarmPool
from harness.idf_build import IdfFirmware
from harness.masking import is_secret_key
from harness.provision import provision
from harness.session.baseline import bring_up
from harness.targets import (
    CONSOLE_TIMEOUT_S,
    GOT_IP,
    POWER,
    PROBE_BROKER_URL,
    REAL_BOOT_TIMEOUT_S,
    WifiCredentials,
    boards_needed,
    boards_of,
    idf_firmware,
    target_of,
    wifi_credentials,
)


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
    pool: inventory.BoardPool | FarmPool
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
        board = Esp32Board(spec.name, url, target=self.target, power=lease.power_control(),
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
        host_ip = config.getoption("--hil-host-ip", default=None)
        index, count = int(worker.lstrip("gw") or 0), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        config.stash[_BENCH_KEY] = Esp32Bench(
            config=config,
            target=target_of(config),
            pool=(pytest_farm.pool(config, boards_of(config), index, count) if pytest_farm.farm_address(config)
                  else inventory.BoardPool(boards_of(config), worker_index=index, worker_count=count)),
            firmware=idf_firmware(config),
            wifi=wifi_credentials(config),
            flash_baud=targets.esptool_baud(config),
            run_id=os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex,
            host_ip=host_ip,
            host_ip_given=host_ip is not None,
        )
    return config.stash[_BENCH_KEY]


_BENCH_KEY = pytest.StashKey[Esp32Bench]()


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

    def __call__(self, image: bytes | None = None, *, variant: str = project.DEFAULT_VARIANT,
                 **settings: object) -> Esp32Board:
        if variant != project.DEFAULT_VARIANT:  # each board is flashed once per session, with the default build
            raise Esp32Error(f"a board flashed with the {variant} build's bootloader: real boards run the default "
                             "build's (mark the scenario virtual_only, or flash that build yourself)")
        index = len(self.boards)
        if index >= len(self.leases):
            try:
                self.leases += self.bench.pool.acquire(1, self.needed, timeout=0)
            except inventory.BoardBusyError:
                raise Esp32Error(f"this test asks for board #{index + 1} but leased {len(self.leases)}: mark it "
                                 f"@pytest.mark.boards({index + 1})") from None
        lease = self.leases[index]
        board = self.bench.open_board(lease)
        device_id = str(settings.get("device_id") or f"e{uuid.uuid4().hex[:7]}")  # a test may name it
        board.device_id = device_id
        self.boards.append(board)
        self.record.add_board(board)
        values: dict[str, object] = {"device_id": device_id, "broker_url": self.broker_url,
                                     "topic_prefix": self.topic_prefix, **self.bench.wifi.settings(), **settings}
        board.add_secrets(str(v) for k, v in values.items() if is_secret_key(k))
        self.bench.restore_baseline(lease, board, image)
        bring_up(board, self.link, values, boot_timeout=REAL_BOOT_TIMEOUT_S, console_timeout=CONSOLE_TIMEOUT_S,
                 base=(self.bench.firmware.base_version, "ota_0") if image is None else None)
        self._check_route(board)
        return board

    def _check_route(self, board: Esp32Board) -> None:
        if self.bench.host_ip_given or self.bench.host_ip is None:
            return
        ips = [m for line in board.serial.lines if (m := _search(GOT_IP, line.text))]
        if ips and udp_source_address(ips[-1]) != self.bench.host_ip:
            raise Esp32Error(f"{board.name} got {ips[-1]}, reached from this machine through "
                             f"{udp_source_address(ips[-1])}, but the servers were advertised at {self.bench.host_ip}: "
                             "pass --hil-host-ip")

    def stop_all(self) -> None:
        for board in self.boards:
            board.close()
        self.bench.pool.release(self.leases)
        self.leases = []


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None
