"""The harness's fixtures under their short names, as the scenario catalog (tests_hil) uses them.

A plugin of its own (pytest11 entry point ``esp_ota_hil_aliases``), so that a project with another plugin
that has a fixture of one of these names runs with ``-p no:esp_ota_hil_aliases`` and asks for the
prefixed names (harness.fixtures) instead. Each alias is the prefixed fixture itself, same scope.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.boards.base import Board
from harness.broker import MqttBroker
from harness.fault_proxy import FaultProxyFactory
from harness.fleet import Rollout
from harness.fleet.mesh import Mesh
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.ota import Ota
from harness.push import Pusher
from harness.session.interfaces import BoardFactory, FirmwareSource


@pytest.fixture(scope="session")
def firmware(hil_firmware: FirmwareSource) -> FirmwareSource:
    """`hil_firmware`: builds of the project's firmware, per variant."""
    return hil_firmware


@pytest.fixture
def broker(hil_broker: MqttBroker) -> MqttBroker:
    """`hil_broker`: the test's MQTT broker (parametrize "broker" indirectly for a kind)."""
    return hil_broker


@pytest.fixture
def fw_server(hil_fw_server: FirmwareServer) -> FirmwareServer:
    """`hil_fw_server`: the HTTP firmware server with fault injection."""
    return hil_fw_server


@pytest.fixture
def link(hil_link: DeviceLink) -> DeviceLink:
    """`hil_link`: the device link (MQTT)."""
    return hil_link


@pytest.fixture
def board_factory(hil_board_factory: BoardFactory) -> BoardFactory:
    """`hil_board_factory`: makes boards of the session's target."""
    return hil_board_factory


@pytest.fixture
def board(hil_board: Board) -> Board:
    """`hil_board`: one board running the base firmware from ota_0."""
    return hil_board


@pytest.fixture
def ota(hil_ota: Ota) -> Ota:
    """`hil_ota`: the scenario helper for `board`."""
    return hil_ota


@pytest.fixture
def pusher(hil_pusher: Pusher) -> Pusher:
    """`hil_pusher`: a pusher for `board` (images through the broker)."""
    return hil_pusher


@pytest.fixture
def ota_for(hil_ota_for: Callable[[Board], Ota]) -> Callable[[Board], Ota]:
    """`hil_ota_for`: the scenario helper for any board of the test."""
    return hil_ota_for


@pytest.fixture
def fault_proxy(hil_fault_proxy: FaultProxyFactory) -> FaultProxyFactory:
    """`hil_fault_proxy`: makes TCP fault proxies in front of the broker or the firmware server."""
    return hil_fault_proxy


@pytest.fixture
def fleet(hil_fleet: Callable[..., list[Board]]) -> Callable[..., list[Board]]:
    """`hil_fleet`: starts many boards at once."""
    return hil_fleet


@pytest.fixture
def rollout(hil_rollout: Callable[..., Rollout]) -> Callable[..., Rollout]:
    """`hil_rollout`: makes a staged rollout over boards (harness.fleet)."""
    return hil_rollout


@pytest.fixture
def mesh(hil_mesh: Callable[..., Mesh]) -> Callable[..., Mesh]:
    """`hil_mesh`: starts a mesh of virtual boards (the first one the root)."""
    return hil_mesh
