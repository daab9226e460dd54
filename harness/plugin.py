"""The pytest plugin: fixtures that stage an OTA scenario and report what happened.

Registered through the ``pytest11`` entry point, so any firmware repository that installs the
harness gets these fixtures:

- ``firmware``: builds of the reference firmware for the virtual board, per variant.
- ``broker``: an embedded amqtt broker (or ``--broker URL`` for an external one, checked once at the
  start of the session); a test can ask for a mosquitto subprocess with
  ``@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)``.
- ``fw_server``: an HTTP firmware server with fault injection.
- ``link``: the device link (MQTT) that sends commands and records every message.
- ``board_factory`` / ``board``: virtual ESP32 boards, flashed, provisioned and connected.

Each test using them gets a timeline (serial lines, MQTT messages, HTTP requests, by time) written
as JSON lines to ``--hil-timeline-dir``. When a test fails, its report shows the timeline's last
lines of each kind. Secrets (provisioned passwords, password fields, URL passwords) are masked in
the timeline and in everything the report shows: traceback, captured output, HTML report.

``--hil-report`` pages are made from pytest's test reports as they are logged, so under pytest-xdist the
controller's page has every worker's scenarios: a worker attaches what the page needs to its (masked)
reports, and xdist carries those attributes to the controller with the rest of the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness import clock, live_progress, masking, report, targets, timeline
from harness import project as project_mod
from harness import report as report_mod
from harness.broker import (
    BrokerError,
    EmbeddedBroker,
    ExternalBroker,
    MosquittoBroker,
    MqttBroker,
)
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.net import parse_mqtt_url
from harness.provision import provision
from harness.virtual import firmware as fw_build
from harness.virtual.board import VirtualBoard, create_flash

BOOT_TIMEOUT_S = 15.0


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("hil", "OTA hardware-in-the-loop harness")
    group.addoption(
        "--broker",
        default=None,
        metavar="URL",
        help="use an existing MQTT broker (mqtt://host:port or mqtts://host:port) instead of the embedded one",
    )
    group.addoption(
        "--hil-timeline-dir", default=None, metavar="DIR",
        help="where each test's timeline (JSON lines) is written (default: build/timelines)",
    )
    group.addoption(
        "--hil-report", default=None, metavar="PATH",
        help="write one self-contained HTML report of the run (summary, OTA charts, logs) to PATH",
    )
    targets.add_target_option(parser, pluginmanager)
    live_progress.add_option(group)
    project_mod.add_ini_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if project_mod.is_configured(config):
        project_mod.of(config)  # a wrong hil_* setting stops the run here, not at the first board
    targets.check_target_usable(config)
    url = config.getoption("--broker", default=None)
    if url:
        masked = _config_masker(config).text
        try:
            parse_mqtt_url(url)
        except ValueError as err:
            raise pytest.UsageError(masked(f"--broker: {err}")) from err
        if "@" in urlsplit(url).netloc:
            raise pytest.UsageError(masked(
                f"--broker {url}: user names and passwords in the broker URL are not supported (the boards are "
                "provisioned with the URL only); give the harness a listener that accepts anonymous clients"))
    timeline_dir = config.getoption("--hil-timeline-dir", default=None)
    if timeline_dir and Path(timeline_dir).exists() and not Path(timeline_dir).is_dir():
        raise pytest.UsageError(f"--hil-timeline-dir {timeline_dir}: exists and is not a directory; give a "
                                "directory (it is created if missing)")
    html = config.getoption("--hil-report", default=None)
    if html and Path(html).is_dir():
        raise pytest.UsageError(f"--hil-report {html}: is a directory; give a file name such as {html}/report.html")
    if html and not hasattr(config, "workerinput"):  # xdist workers send their reports to the controller
        config.pluginmanager.register(HtmlReport(Path(html)), "hil-html-report")
    live_progress.configure(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """An external broker that does not answer stops the run before any test, instead of failing each one."""
    config = session.config
    url = config.getoption("--broker", default=None)
    if not url or config.getoption("collectonly", default=False):
        return
    try:
        ExternalBroker(url).check()
    except BrokerError as err:
        raise pytest.UsageError(_config_masker(config).text(
            f"--broker: {err}. Start the broker, fix the URL, or leave --broker out to use the embedded "
            "broker.")) from None


_CONFIG_MASKER_KEY = pytest.StashKey[masking.Masker]()


def _config_masker(config: pytest.Config) -> masking.Masker:
    """Secrets known for the whole run: passwords given on the command line or in the environment."""
    if _CONFIG_MASKER_KEY not in config.stash:
        masker = masking.Masker()
        url = config.getoption("--broker", default=None)
        if url:
            with contextlib.suppress(ValueError):
                masker.add(urlsplit(url).password)
        masker.add(config.getoption("--wifi-password", default=None), os.environ.get("HIL_WIFI_PASSWORD"))
        config.stash[_CONFIG_MASKER_KEY] = masker
    return config.stash[_CONFIG_MASKER_KEY]


_DESELECTED_KEY = pytest.StashKey[list[tuple[str, str]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_DESELECTED_KEY] = targets.deselect_for_target(config, items)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    dropped = config.stash.get(_DESELECTED_KEY, [])
    lines = [f"target {targets.target_of(config)}: {len(dropped)} scenario(s) deselected"] if dropped else []
    return lines + [f"  deselected {nodeid}: {reason}" for nodeid, reason in dropped]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.getoption("--hil-report", default=None):
        terminalreporter.write_line(f"HTML report: {Path(config.getoption('--hil-report')).resolve()}")
    for nodeid, reason in config.stash.get(_DESELECTED_KEY, []):
        terminalreporter.write_line(f"DESELECTED {nodeid}: {reason}")


@dataclass
class Firmware:
    """Builds of the project's firmware, made on first use and cached for the session."""

    project: project_mod.HilProject = field(default_factory=project_mod.reference, repr=False)
    build_root: Path | None = field(default=None, repr=False)  # default: build/virtual of the harness
    builds: dict[str, fw_build.FirmwareBuild] = field(default_factory=dict)

    def build(self, variant: str = fw_build.DEFAULT_VARIANT) -> fw_build.FirmwareBuild:
        if variant not in self.builds:
            try:
                self.project.check_variant(variant)
            except project_mod.ProjectError as err:
                pytest.fail(str(err), pytrace=False)
            self.builds[variant] = fw_build.build(variant, self.build_root, self.project)
        return self.builds[variant]

    def image(self, variant: str = fw_build.DEFAULT_VARIANT, version: str | None = None) -> bytes:
        """An app image of a variant, reporting `version` when given (a patched descriptor)."""
        build = self.build(variant)
        return build.image if version is None else build.image_with_version(version)

    @property
    def base_version(self) -> str:
        return self.build().version


@pytest.fixture(scope="session")
def firmware(request: pytest.FixtureRequest) -> Firmware:
    config = request.config
    real = targets.real_firmware(config)  # idf.py builds on a real target
    return real or Firmware(project_mod.of(config), config.rootpath / "build" / "virtual")


@dataclass
class TestRecord:
    """What a test used, so its timeline (and a failure report) can show each one's log.

    `masker` knows the secrets of the test (what its boards were provisioned with); the timeline and the
    test's report go through it.
    """

    t0: float = field(default_factory=clock.now)
    boards: list[VirtualBoard] = field(default_factory=list)
    links: list[DeviceLink] = field(default_factory=list)
    servers: list[FirmwareServer] = field(default_factory=list)
    masker: masking.Masker = field(default_factory=masking.Masker, repr=False)
    # set at the end of the test (hil_record's teardown), for the HTML report
    properties: dict[str, Any] | None = None
    entries: list[timeline.Entry] | None = None

    def timeline(self) -> list[timeline.Entry]:
        return timeline.collect(self.t0, self.boards, self.links, self.servers, self.masker)

    def full_masker(self) -> masking.Masker:
        """The masker plus the secrets real boards learnt on their own (typed on their console)."""
        masker = masking.Masker(set(self.masker.secrets))
        for board in self.boards:
            masker.add(*getattr(board, "secrets", ()))
        return masker


def _timeline_path(config: pytest.Config, nodeid: str) -> Path:
    base = Path(config.getoption("--hil-timeline-dir") or config.rootpath / "build" / "timelines")
    return base / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid) + ".jsonl")


@pytest.fixture
def hil_record(request: pytest.FixtureRequest) -> Iterator[TestRecord]:
    record = TestRecord(masker=masking.Masker(set(_config_masker(request.config).secrets)))
    request.node.stash[_RECORD_KEY] = record
    yield record
    entries = record.timeline()
    timeline.write_jsonl(entries, _timeline_path(request.config, request.node.nodeid))
    served = {r.artifact for server in record.servers for r in server.requests}
    shas = [a.sha256 for server in record.servers for a in server.artifacts if a.path in served]
    props = report.ota_properties(entries, targets.target_of(request.config), shas)
    request.node.user_properties.extend(props.items())  # JUnit XML <properties>
    record.properties, record.entries = props, entries  # the teardown's report takes them to the HTML report


class HtmlReport:
    """The --hil-report page, built from the test reports where pytest logs them: in a plain run's process,
    or in the xdist controller, from the reports its workers send. What it needs rides on the reports as
    JSON-able attributes set by pytest_runtest_makereport: `hil_message` on the report of a test's result,
    `hil_properties` and `hil_entries` (the timeline) on its teardown's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, report_mod.TestReport] = {}  # by node id, in the order results came
        self.charts = report_mod.ChartRenderer()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        message, entries = getattr(report, "hil_message", None), getattr(report, "hil_entries", None)
        if message is None and entries is None:
            return
        test = self.tests.setdefault(report.nodeid, report_mod.TestReport(report.nodeid))
        if message is not None:
            test.outcome, test.duration, test.message = report.outcome, report.duration, message
        if entries is not None:
            test.properties = getattr(report, "hil_properties", {})
            test.entries = [timeline.Entry(**entry) for entry in entries]
            self.charts.submit(report.nodeid, test.entries)

    def pytest_sessionfinish(self) -> None:
        report_mod.write_html(list(self.tests.values()), self.path, charts=self.charts.results())


_RECORD_KEY = pytest.StashKey[TestRecord]()


BROKER_KINDS = ("embedded", "mosquitto")


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[MqttBroker]:
    """The MQTT broker of the test: `--broker URL` if given, else an embedded amqtt broker.

    A test asks for a given kind with `@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)`
    ("embedded" or "mosquitto"); that wins over --broker.
    """
    kind = getattr(request, "param", None)
    url = request.config.getoption("--broker")
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
    address = targets.server_address(request)
    instance = MosquittoBroker(**address) if kind == "mosquitto" else EmbeddedBroker(**address)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def fw_server(request: pytest.FixtureRequest, hil_record: TestRecord) -> Iterator[FirmwareServer]:
    server = FirmwareServer(**targets.server_address(request)).start()
    hil_record.servers.append(server)
    yield server
    server.stop()


@pytest.fixture
def link(request: pytest.FixtureRequest, broker: MqttBroker, hil_record: TestRecord) -> Iterator[DeviceLink]:
    device_link = DeviceLink(broker.url, prefix=project_mod.of(request.config).topic_prefix,
                             receipts=broker.receipts).connect()
    hil_record.links.append(device_link)
    device_link.add_listener(live_progress.of(request.config).on_message)
    yield device_link
    device_link.close()


@dataclass
class VirtualBoardFactory:
    """Makes provisioned virtual boards running a given firmware; stops them all at teardown."""

    tmp_path: Path
    firmware: Firmware
    broker_url: str
    link: DeviceLink
    record: TestRecord
    settings: dict[str, object] = field(default_factory=dict, repr=False)  # may hold passwords

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # tests may start boards in threads

    def __call__(self, image: bytes | None = None, **settings: object) -> VirtualBoard:
        device_id = f"vb{uuid.uuid4().hex[:6]}"
        with self._lock:
            index = len(self.record.boards)
            self.record.masker.add_from_settings({**self.settings, **settings})
            workdir = self.tmp_path / f"board{index}"
            workdir.mkdir(parents=True, exist_ok=True)
            flash_path = workdir / "flash.bin"
            board = VirtualBoard(device_id, flash_path, workdir, mac=f"240ac4{index + 1:06x}")
            self.record.boards.append(board)
        create_flash(flash_path, self.firmware.project.partitions_csv.read_text())
        board.flash(image if image is not None else self.firmware.image())
        board.power_on()
        cursor = self.link.cursor()
        provision(board, {"device_id": device_id, "broker_url": self.broker_url,
                          "topic_prefix": self.firmware.project.topic_prefix, **self.settings, **settings})
        self.link.wait_status(device_id, timeout=BOOT_TIMEOUT_S, since=cursor,
                              description=f"first status of {device_id} after provisioning")
        return board

    def stop_all(self) -> None:
        for board in self.record.boards:
            board.stop()


@pytest.fixture
def board_factory(
    request: pytest.FixtureRequest, tmp_path: Path, firmware: Firmware, broker: MqttBroker,
    link: DeviceLink, hil_record: TestRecord,
) -> Iterator[Callable[..., VirtualBoard]]:
    if targets.is_real(request.config):  # real boards from the pool, restored to the baseline
        factory = targets.real_board_factory(request, broker.url, link, hil_record)
    else:
        factory = VirtualBoardFactory(tmp_path, firmware, broker.url, link, hil_record)
    yield factory
    factory.stop_all()


@pytest.fixture
def board(board_factory: Callable[..., VirtualBoard]) -> VirtualBoard:
    """One virtual ESP32 running the base firmware from ota_0, connected to the broker."""
    return board_factory()


TAIL_LINES = 40
_TITLES = {"serial": "serial console", "mqtt": "MQTT messages", "http": "HTTP requests"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    record = item.stash.get(_RECORD_KEY, None)
    masker = record.full_masker() if record is not None else _config_masker(item.config)
    if record is not None or masker.secrets:
        _mask_report(report, masker)
    if item.config.getoption("--hil-report", default=None):  # see HtmlReport; masked above, like the rest
        if report.when == "call" or report.failed:
            report.hil_message = str(report.longrepr)[-4000:] if report.failed else ""
        if record is not None and record.entries is not None and report.when == "teardown":
            report.hil_properties = record.properties
            report.hil_entries = [dataclasses.asdict(entry) for entry in record.entries]
    if record is not None and report.failed:
        for kind, text in timeline.tail_by_kind(record.timeline(), count=TAIL_LINES).items():
            report.sections.append((f"timeline: {_TITLES[kind]} (last {TAIL_LINES}, s from test start)", text))
        report.sections.append(("timeline file", str(_timeline_path(item.config, item.nodeid))))
    return report


def _mask_report(report: pytest.TestReport, masker: masking.Masker) -> None:
    """Secrets out of what pytest shows and writes (terminal, JUnit XML): the traceback and captured output.

    The traceback's parts are masked in place, so pytest still renders it (colours, short summary line);
    should any secret remain in its text, it is replaced by its masked text.
    """
    report.sections = [(title, masker.text(text)) for title, text in report.sections]
    longrepr = report.longrepr
    if longrepr is None or isinstance(longrepr, tuple):  # None, or (path, line, reason) of a skip
        return
    if isinstance(longrepr, str):
        report.longrepr = masker.text(longrepr)
        return
    with contextlib.suppress(dataclasses.FrozenInstanceError, AttributeError, TypeError):
        _mask_in_place(longrepr, masker, set())
    text = str(longrepr)
    if masker.text(text) != text:
        report.longrepr = masker.text(text)


def _mask_in_place(value: object, masker: masking.Masker, seen: set[int]) -> object:
    """`value` with every string masked: strings and sequences are rebuilt, dataclasses (pytest's Repr*
    objects) changed in place."""
    if isinstance(value, str):
        return masker.text(value)
    if isinstance(value, list):
        return [_mask_in_place(v, masker, seen) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_mask_in_place(v, masker, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and id(value) not in seen:
        seen.add(id(value))
        for f in dataclasses.fields(value):
            setattr(value, f.name, _mask_in_place(getattr(value, f.name), masker, seen))
    return value
