"""The fixtures a scenario stages an OTA with (registered by harness.plugin, the pytest11 entry point).

Their names carry the plugin's prefix, so that they cannot collide with another plugin's; the catalog uses
the short names of harness.fixture_aliases (``board``, ``ota``, ...), a plugin of its own that a project
switches off (``-p no:esp_ota_hil_aliases``) when another plugin has a fixture of one of those names.

- ``hil_firmware``: builds of the project's firmware, per variant (a `FirmwareSource`).
- ``hil_broker``: an embedded amqtt broker (or ``--hil-broker URL`` for an external one, checked once at
  the start of the session); a test can ask for a mosquitto subprocess with
  ``@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)`` (or ``"hil_broker"``).
- ``hil_fw_server``: an HTTP firmware server with fault injection.
- ``hil_link``: the device link (MQTT) that sends commands and records every message.
- ``hil_board_factory`` / ``hil_board``: boards of the session's target (virtual or real), flashed,
  provisioned and connected (a `BoardFactory`, `Board`s).
- ``hil_ota`` / ``hil_ota_for``: the scenario helper (harness.ota.Ota) for the board, or for any board.
- ``hil_record``: the test's record (harness.session.record), which its timeline and report come from.
- ``hil_fault_proxy``: makes TCP fault proxies (harness.fault_proxy) to put between a board and the broker
  or the firmware server; every fault they apply goes into the test's timeline.
- ``hil_tidy_pytest_embedded_dir`` (autouse): removes the empty log directory pytest-embedded makes per session.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import live_progress, masking, report, targets, timeline
from harness import project as project_mod
from harness.boards.base import Board
from harness.broker import AccessPolicy, BrokerError, EmbeddedBroker, ExternalBroker, MosquittoBroker, MqttBroker
from harness.fault_proxy import FaultProxy, FaultProxyFactory, ProxyEvent, upstream_address
from harness.fault_proxy.events import EventHook
from harness.fleet import Rollout, RolloutPlan, start_boards
from harness.fleet.mesh import MESH_VARIANT, Mesh, start_mesh
from harness.fleet.rollout import Command
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.live import pytest_live
from harness.ota import Ota
from harness.push import Pusher
from harness.session.interfaces import BoardFactory, FirmwareSource
from harness.session.record import RECORD_KEY, TestRecord, run_masker, timeline_path
from harness.virtual import build_dirs
from harness.virtual import flash as flash_timings
from harness.virtual.factory import VirtualBoardFactory, VirtualFirmware
from harness.virtual.mesh import Hop, MeshMedium

BROKER_KINDS = ("embedded", "mosquitto", "secured")


def server_address(request: pytest.FixtureRequest) -> dict[str, str]:
    """Where the broker and the firmware server listen: loopback for virtual boards, an address real boards
    reach (host=, advertise_host=) otherwise."""
    if not targets.is_real(request.config):
        return {}
    from harness.boards import esp32_bench  # real boards only: esptool stays out of a virtual run's processes

    return esp32_bench.bench(request.config).server_address()


@pytest.fixture(scope="session")
def hil_firmware(request: pytest.FixtureRequest) -> FirmwareSource:
    config = request.config
    if targets.is_real(config):
        return targets.idf_firmware(config)  # idf.py builds
    app = project_mod.of(config)
    return VirtualFirmware(app, build_dirs.build_root_of(config, app))


@pytest.fixture
def hil_record(request: pytest.FixtureRequest) -> Iterator[TestRecord]:
    record = TestRecord(masker=masking.Masker(set(run_masker(request.config).secrets)))
    request.node.stash[RECORD_KEY] = record
    live = pytest_live.of(request.config)  # --hil-live: the page shows this test's boards
    if live is not None:
        live.attach_record(record)
    yield record
    if live is not None:
        live.detach_record(record)
    entries = record.timeline()
    jsonl = timeline.write_jsonl(entries, timeline_path(request.config, request.node.nodeid))
    served = {r.artifact for server in record.servers for r in server.requests}
    shas = [a.sha256 for server in record.servers for a in server.artifacts if a.path in served]
    props = report.ota_properties(entries, targets.target_of(request.config), shas)
    request.node.user_properties.extend(props.items())  # JUnit XML <properties>
    record.properties, record.timeline_jsonl = props, jsonl  # the teardown's report takes them to the HTML report


def _broker_kind(request: pytest.FixtureRequest) -> str | None:
    """The kind a test parametrized the broker with, under either name (the alias passes no param on)."""
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return params.get("hil_broker", params.get("broker"))


@pytest.fixture
def hil_broker(request: pytest.FixtureRequest) -> Iterator[MqttBroker]:
    """The MQTT broker of the test: `--hil-broker URL` if given, else an embedded amqtt broker.

    A test asks for a given kind with `@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)`
    ("embedded" or "mosquitto"); that wins over --hil-broker.
    """
    kind = _broker_kind(request)
    url = request.config.getoption("--hil-broker")
    instance: MqttBroker
    if kind is None and url:
        instance = ExternalBroker(url)
        try:
            instance.start()  # checked at the session start; here it may have gone away since
        except BrokerError as err:
            request.session.shouldstop = f"the external broker went away: {err}"
            raise
        yield instance
        return
    if kind not in (None, *BROKER_KINDS):
        raise pytest.UsageError(f"broker fixture: unknown kind {kind!r}; parametrize it with one of {BROKER_KINDS}")
    address = server_address(request)
    if kind == "mosquitto":
        instance = MosquittoBroker(**address)
    elif kind == "secured":  # mqtts, and the per-device access policy (harness.broker.access)
        operator = AccessPolicy(operator_password=secrets.token_urlsafe(16),
                                prefix=project_mod.of(request.config).topic_prefix)
        instance = EmbeddedBroker(**address, auth=operator, tls=True)
    else:
        instance = EmbeddedBroker(**address)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def hil_fw_server(request: pytest.FixtureRequest, hil_record: TestRecord) -> Iterator[FirmwareServer]:
    server = FirmwareServer(**server_address(request)).start()
    hil_record.servers.append(server)
    yield server
    server.stop()


@pytest.fixture
def hil_link(request: pytest.FixtureRequest, hil_broker: MqttBroker,
             hil_record: TestRecord) -> Iterator[DeviceLink]:
    policy = hil_broker.auth if isinstance(hil_broker, EmbeddedBroker) else None
    if policy is not None:  # a secured broker: the test's link is its operator
        hil_record.masker.add(policy.operator_password)
    device_link = DeviceLink(hil_broker.url, prefix=project_mod.of(request.config).topic_prefix,
                             receipts=hil_broker.receipts,
                             username=policy.operator_username if policy else None,
                             password=policy.operator_password if policy else None,
                             ca_pem=hil_broker.ca_pem if policy is not None else None).connect()
    hil_record.links.append(device_link)
    device_link.add_listener(live_progress.of(request.config).on_message)
    live = pytest_live.of(request.config)
    if live is not None:
        live.attach_link(device_link)
    yield device_link
    device_link.close()


@pytest.fixture
def hil_board_factory(
    request: pytest.FixtureRequest, tmp_path: Path, hil_firmware: FirmwareSource, hil_broker: MqttBroker,
    hil_link: DeviceLink, hil_record: TestRecord,
) -> Iterator[BoardFactory]:
    factory: BoardFactory
    if targets.is_real(request.config):  # real boards from the pool, restored to the baseline
        from harness.boards import esp32_bench

        factory = esp32_bench.Esp32BoardFactory(request, hil_broker.url, hil_link, hil_record)
    else:
        assert isinstance(hil_firmware, VirtualFirmware)
        marker = request.node.get_closest_marker("flash_timing")  # the scenario's need overrides the option
        name = request.config.getoption("--hil-flash-timing", default="none")
        if marker is not None:
            name = marker.args[0] if len(marker.args) == 1 else None
        if name not in flash_timings.TIMINGS:
            raise ValueError(f"flash_timing marker: give one of {sorted(flash_timings.TIMINGS)}, as in "
                             f"@pytest.mark.flash_timing(\"chip\") (got {marker.args if marker else name!r})")
        timing = flash_timings.TIMINGS[name]
        factory = VirtualBoardFactory(tmp_path, hil_firmware, hil_broker.url, hil_link, hil_record,
                                      flash_timing=timing)
    yield factory
    factory.stop_all()


@pytest.fixture
def hil_board(hil_board_factory: BoardFactory) -> Board:
    """One board running the base firmware from ota_0, connected to the broker."""
    return hil_board_factory()


@pytest.fixture
def hil_fleet(hil_board_factory: BoardFactory) -> Callable[..., list[Board]]:
    """Starts many boards at once: `hil_fleet(100, **settings)` (settings as for `hil_board_factory`), a few
    dozen at a time, all on the test's broker and link; stopped with the factory at teardown."""
    return lambda count, **settings: start_boards(hil_board_factory, count, **settings)


@pytest.fixture
def hil_mesh(request: pytest.FixtureRequest, hil_board_factory: BoardFactory) -> Iterator[Callable[..., Mesh]]:
    """Starts a mesh of virtual boards (harness.fleet.mesh): `hil_mesh(count, hop=Hop(...), ip_forwarding=...,
    healing_s=..., variant="mesh", **settings)`; the first board is the root. One mesh per test; its boards
    and its medium stop at teardown. Virtual boards only."""
    if not isinstance(hil_board_factory, VirtualBoardFactory):
        pytest.skip("a mesh needs virtual boards (mark the test virtual_only)")
    factory = hil_board_factory
    media: list[MeshMedium] = []
    nets: list[Mesh] = []

    def make(count: int, *, hop: Hop | None = None, ip_forwarding: bool = False, healing_s: float = 0.5,
             variant: str = MESH_VARIANT, **settings: object) -> Mesh:
        if media:
            raise RuntimeError("hil_mesh: one mesh per test")
        medium = MeshMedium(hop=hop or Hop(), ip_forwarding=ip_forwarding, healing_s=healing_s).start()
        media.append(medium)
        factory.mesh = medium
        nets.append(start_mesh(factory, medium, count, variant, **settings))
        return nets[0]
    yield make
    for net in nets:
        for board in net.boards:
            board.stop()
    for medium in media:
        medium.stop()


@pytest.fixture
def hil_rollout(hil_link: DeviceLink, hil_record: TestRecord) -> Callable[..., Rollout]:
    """Makes a staged rollout (harness.fleet) over boards or device ids: `hil_rollout(boards, command, plan)`,
    `command` the `ota` command (a dict, or a function of the device id); its steps and final table go into
    the test's timeline and HTML report. `.run()` returns the RolloutResult."""
    def make(devices: list[Board] | list[str], command: Command | dict[str, Any], plan: RolloutPlan,
             job_id: str = "rollout") -> Rollout:
        ids = [d if isinstance(d, str) else d.device_id for d in devices]
        return Rollout(hil_link, ids, command, plan, job_id,
                       on_note=lambda text: hil_record.note("rollout", job_id, text))
    return make


@pytest.fixture
def hil_ota(hil_board: Board, hil_link: DeviceLink, hil_firmware: FirmwareSource) -> Ota:
    """The scenario helper for `hil_board`: start updates, wait for outcomes, check the device is healthy."""
    return Ota(hil_board, hil_link, hil_firmware.base_version)


@pytest.fixture
def hil_pusher(request: pytest.FixtureRequest, hil_board: Board, hil_broker: MqttBroker) -> Iterator[Pusher]:
    """A pusher (harness.push) for `hil_board` on the test's broker: images through MQTT, with a fault plan."""
    pusher = Pusher(hil_broker.url, hil_board.device_id, prefix=project_mod.of(request.config).topic_prefix)
    with pusher:
        yield pusher


@pytest.fixture
def hil_ota_for(hil_link: DeviceLink, hil_firmware: FirmwareSource) -> Callable[[Board], Ota]:
    """The scenario helper for any board of the test (`hil_ota_for(board)`)."""
    return lambda board: Ota(board, hil_link, hil_firmware.base_version)


def fault_notes(record: TestRecord) -> EventHook:
    """The hook that puts a fault proxy's events into a test's timeline (kind "fault", source: its name)."""

    def note(event: ProxyEvent) -> None:
        record.note("fault", event.proxy, event.text, event.t)

    return note


@pytest.fixture
def hil_fault_proxy(request: pytest.FixtureRequest, hil_record: TestRecord) -> Iterator[FaultProxyFactory]:
    """Makes started TCP fault proxies in front of a server: `hil_fault_proxy(url or (host, port), name=None)`.

    Each listens where the test's servers do (loopback for virtual boards, the address a real board reaches
    otherwise), is stopped at teardown, and records every fault it sets, clears or fires in the timeline.
    The board is pointed at the proxy instead of the server with `proxy.url_for(url)`; the test's own link
    stays directly on the broker, so only the device's side of the link is faulted::

        def test_update_over_a_bad_link(board_factory, broker, fw_server, fault_proxy, firmware, ota_for):
            mqtt = fault_proxy(broker.url, name="board-mqtt")
            board = board_factory(broker_url=mqtt.url_for(broker.url))  # the board's MQTT goes through it
            http = fault_proxy(fw_server.base_url, name="board-http")
            artifact = fw_server.add(firmware.image(version="2.0.0"))
            http.set_bandwidth(50_000)  # bytes/s each way
            http.set_latency(80, jitter_ms=20)
            http.cut_after_bytes(300_000, connections=1)  # one dropped download, then a resume
            ota_for(board).install("j1", http.url_for(artifact.url), "2.0.0")
            mqtt.reset_all()  # the board's MQTT connection drops (set_blackhole(): a partition instead)
            mqtt.wait_until(lambda s: s.accepted >= 2, timeout=30, what="the board reconnecting")
    """
    address = server_address(request)
    proxies: list[FaultProxy] = []

    def make(upstream: str | tuple[str, int], name: str | None = None) -> FaultProxy:
        host, port = upstream_address(upstream)
        proxy = FaultProxy(host, port, listen_host=address.get("host", "127.0.0.1"),
                           advertise_host=address.get("advertise_host"), name=name or f"proxy{len(proxies) + 1}",
                           on_event=fault_notes(hil_record))
        proxies.append(proxy)
        return proxy.start()

    yield make
    errors = []
    for proxy in proxies:  # every one stopped, even after one that fails to
        try:
            proxy.stop()
        except Exception as exc:  # noqa: BLE001 - reported below, after the others are stopped
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session", autouse=True)
def hil_tidy_pytest_embedded_dir(request: pytest.FixtureRequest) -> Iterator[None]:
    """pytest-embedded, when installed, makes a session directory for its duts' logs in every session
    (an autouse fixture of its own asks for it), under --root-logdir (default: the system's temp directory):
    one empty directory per run and xdist worker where no dut ran, as none does in the harness's scenarios.
    Removed at the end of the session when it is still empty, so a dut's logs stay where it wrote them."""
    if "session_tempdir" not in request.fixturenames:  # pytest-embedded is not loaded
        yield
        return
    session_dir = Path(request.getfixturevalue("session_tempdir"))
    yield
    for empty in (session_dir, session_dir.parent):  # <root-logdir>/pytest-embedded/<date>, then its parent
        try:
            empty.rmdir()
        except OSError:  # not empty (a dut's logs, another session's directory) or gone already
            return
