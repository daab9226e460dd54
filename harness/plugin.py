"""The pytest plugin: every hook of the harness (options, configuration, collection, reports).

Registered through the ``pytest11`` entry point, so any firmware repository that installs the harness
gets it; it brings the fixtures of harness.fixtures with it (``pytest_plugins``).

Each test using the fixtures gets a timeline (serial lines, MQTT messages, HTTP requests, by time) written
as JSON lines to ``--hil-timeline-dir``. When a test fails, its report shows the timeline's last lines of
each kind. Secrets (provisioned passwords, password fields, URL passwords) are masked in the timeline and
in everything the report shows: traceback, captured output, HTML report.

``--hil-report`` pages are made from pytest's test reports as they are logged, so under pytest-xdist the
controller's page has every worker's scenarios: a worker attaches what the page needs to its (masked)
reports, and xdist carries those attributes to the controller with the rest of the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import html
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness import live_progress, masking, panic_decoder, run_order, targets, timeline
from harness import project as project_mod
from harness import report as report_mod
from harness.boards.errors import PortLostError
from harness.broker import BrokerError, ExternalBroker
from harness.farm import pytest_farm
from harness.idf_build import FirmwareMissingError
from harness.live import pytest_live
from harness.net import parse_mqtt_url
from harness.session.record import RECORD_KEY, run_masker, timeline_path
from harness.virtual import build_dirs
from harness.virtual import flash as flash_timings

pytest_plugins = ["harness.fixtures"]


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # with pytest-embedded installed, --target, --port, --app-path and --build-dir are its options and its help
    # shows under its groups: the title says what they mean here
    group = parser.getgroup("hil", "OTA hardware-in-the-loop harness (--target linux, the default: the virtual "
                                   "ESP32; --target esp32: real boards, named by --port, --hil-board-inventory or "
                                   "--hil-farm, with their builds in --app-path)")
    group.addoption(
        "--hil-broker",
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
    group.addoption("--hil-flash-timing", choices=sorted(flash_timings.TIMINGS), default="none",
                    help=flash_timings.TIMINGS_HELP)
    targets.add_target_option(parser, pluginmanager)
    live_progress.add_option(group)
    pytest_live.add_options(group)
    project_mod.add_ini_options(parser)
    build_dirs.add_ini_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", run_order.MARKER)
    if project_mod.is_configured(config):
        project_mod.of(config)  # a wrong hil_* setting stops the run here, not at the first board
    targets.check_target_usable(config)
    url = config.getoption("--hil-broker", default=None)
    if url:
        masked = run_masker(config).text
        try:
            parse_mqtt_url(url)
        except ValueError as err:
            raise pytest.UsageError(masked(f"--hil-broker: {err}")) from err
        if "@" in urlsplit(url).netloc:
            raise pytest.UsageError(masked(
                f"--hil-broker {url}: user names and passwords in the broker URL are not supported (the boards are "
                "provisioned with the URL only); give the harness a listener that accepts anonymous clients"))
    timeline_dir = config.getoption("--hil-timeline-dir", default=None)
    if timeline_dir and Path(timeline_dir).exists() and not Path(timeline_dir).is_dir():
        raise pytest.UsageError(f"--hil-timeline-dir {timeline_dir}: exists and is not a directory; give a "
                                "directory (it is created if missing)")
    if timeline_dir:
        _check_writable("--hil-timeline-dir", Path(timeline_dir))
    html = config.getoption("--hil-report", default=None)
    if html and Path(html).is_dir():
        raise pytest.UsageError(f"--hil-report {html}: is a directory; give a file name such as {html}/report.html")
    if html:
        _check_writable("--hil-report", Path(html).parent)
    if html and not hasattr(config, "workerinput"):  # xdist workers send their reports to the controller
        config.pluginmanager.register(HtmlReport(Path(html)), "hil-html-report")
    live_progress.configure(config)
    pytest_live.configure(config)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    pytest_farm.keep_labgrid_plugin_out(early_config)  # its `target` fixture would skip every test


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """An external broker that does not answer stops the run before any test, instead of failing each one."""
    config = session.config
    url = config.getoption("--hil-broker", default=None)
    if not url or config.getoption("collectonly", default=False):
        return
    try:
        ExternalBroker(url).check()
    except BrokerError as err:
        raise pytest.UsageError(run_masker(config).text(
            f"--hil-broker: {err}. Start the broker, fix the URL, or leave --hil-broker out to use the embedded "
            "broker.")) from None


_DESELECTED_KEY = pytest.StashKey[list[tuple[str, str]]]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_DESELECTED_KEY] = targets.deselect_for_target(config, items)
    run_order.waits_first(items, run_order.xdist_workers(config))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What is loaded by now (the modules, the collected tests) lives as long as the process: moved out of the
    garbage collector's sight (gc.freeze), so that its full collections, which ran through all of it again and
    again while the tests made and dropped their boards and timelines, walk only what the tests made. Those
    collections took about a tenth of a `make hil`'s CPU (perf), and as much again when each worker exited."""
    gc.collect()
    gc.freeze()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    dropped = config.stash.get(_DESELECTED_KEY, [])
    lines = [f"target {targets.target_of(config)}: {len(dropped)} scenario(s) deselected"] if dropped else []
    return lines + [f"  deselected {nodeid}: {reason}" for nodeid, reason in dropped]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if config.getoption("--hil-report", default=None):
        terminalreporter.write_line(f"HTML report: {Path(config.getoption('--hil-report')).resolve()}")
    # without xdist the deselections were made here; with xdist a worker hands them over (pytest_testnodedown)
    for nodeid, reason in config.stash.get(_DESELECTED_KEY, []) or config.stash.get(_WORKER_DESELECTED_KEY, []):
        terminalreporter.write_line(f"DESELECTED {nodeid}: {reason}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not targets.is_real(config):
        return []
    specs = targets.boards_of(config)
    lines = [f"target {targets.target_of(config)}: {len(specs)} board(s): "
             + ", ".join(f"{s.name} ({s.where()})" for s in specs)]
    if pytest_farm.farm_address(config):
        lines += pytest_farm.header_lines(config)
    with contextlib.suppress(FirmwareMissingError):
        build = targets.idf_firmware(config).build()
        lines.append(f"firmware {build.build_dir} version {build.version}")
    lines.append(f"wifi: {targets.wifi_credentials(config)!r}")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the deselections to the controller
        session.config.workeroutput["hil_deselected"] = session.config.stash.get(_DESELECTED_KEY, [])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    dropped = getattr(node, "workeroutput", {}).get("hil_deselected")
    if dropped is not None:
        node.config.stash[_WORKER_DESELECTED_KEY] = [tuple(d) for d in dropped]
    released = pytest_farm.release_dead_worker(node.config, node)  # a worker killed mid-test held its places
    if released:
        reporter = node.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"labgrid: released {', '.join(released)}, still held by worker "
                                f"{node.workerinput.get('workerid')} when it went down")


_WORKER_DESELECTED_KEY = pytest.StashKey[list[tuple[str, str]]]()


def _check_writable(option: str, directory: Path) -> None:
    """Before the run, not after it: a directory that cannot be made or written to would cost the run its report
    or every test its timeline. One that does not exist yet is made here."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise pytest.UsageError(f"{option}: cannot make the directory {directory} ({err.strerror}); give a path "
                                "you can write to") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise pytest.UsageError(f"{option}: cannot write in {directory}; give a path you can write to")


class HtmlReport:
    """The --hil-report page, built from the test reports where pytest logs them: in a plain run's process,
    or in the xdist controller, from the reports its workers send. What it needs rides on the reports as
    JSON-able attributes set by pytest_runtest_makereport: `hil_message` on the report of a test's result,
    `hil_properties` and `hil_entries` (the timeline, as timeline.to_jsonl's text) on its teardown's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, report_mod.TestReport] = {}  # by node id, in the order results came
        self.charts: dict[str, str] = {}  # SVG by node id, drawn as each test's report comes (a few ms each)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        message, entries = getattr(report, "hil_message", None), getattr(report, "hil_entries", None)
        if message is None and entries is None:
            return
        test = self.tests.setdefault(report.nodeid, report_mod.TestReport(report.nodeid))
        if message is not None:
            test.outcome, test.duration, test.message = report.outcome, report.duration, message
        if entries is not None:
            test.properties = getattr(report, "hil_properties", {})
            try:
                test.entries = timeline.from_jsonl(entries)
            except (ValueError, TypeError) as err:  # a bad line costs this test its chart and logs, not the page
                self.charts[report.nodeid] = f"<p>(no timeline: {html.escape(repr(err))})</p>"
            else:
                self.charts[report.nodeid] = report_mod.chart_html(test.entries)

    def pytest_sessionfinish(self, exitstatus: int | pytest.ExitCode = 0) -> None:
        # a page that says "24 of 24 passed" must not hide that the run was stopped, or that it ran nothing
        notice = ""
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            notice = f"The run was interrupted after {len(self.tests)} scenario(s) had ended; the rest are not listed."
        elif not self.tests:
            notice = "No scenario ran (none was selected, or the run stopped before the first one ended)."
        report_mod.write_html(list(self.tests.values()), self.path, charts=self.charts, notice=notice)


TAIL_LINES = 40
_TITLES = {"serial": "serial console", "mqtt": "MQTT messages", "http": "HTTP requests", "fault": "faults applied",
           "rollout": "rollout"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(PortLostError):
        # a real board that vanished fails its test and stops the session: the rest would only time out
        item.session.shouldstop = f"real board lost: {call.excinfo.value}"
    record = item.stash.get(RECORD_KEY, None)
    masker = record.full_masker() if record is not None else run_masker(item.config)
    if record is not None or masker.secrets:
        _mask_report(report, masker)
    if item.config.getoption("--hil-report", default=None):  # see HtmlReport; masked above, like the rest
        if report.when == "call" or report.failed:
            report.hil_message = str(report.longrepr)[-4000:] if report.failed else ""
        if record is not None and record.timeline_jsonl is not None and report.when == "teardown":
            report.hil_properties = record.properties
            report.hil_entries = record.timeline_jsonl
    if record is not None and report.failed:
        entries = record.timeline()
        for kind, text in timeline.tail_by_kind(entries, count=TAIL_LINES).items():
            report.sections.append((f"timeline: {_TITLES[kind]} (last {TAIL_LINES}, s from test start)", text))
        report.sections.append(("timeline file", str(timeline_path(item.config, item.nodeid))))
        # added after _mask_report ran, so masked here (its console lines are the timeline's, masked already)
        report.sections += [(title, masker.text(text)) for title, text in _decoded_backtraces(item, entries)]
    if report.when == "teardown" and record is not None:
        # the test's last report has what it needs of the record: the record (its boards' consoles, its
        # timeline) need not live as long as the item, which is the whole session
        del item.stash[RECORD_KEY]
    return report


def _decoded_backtraces(item: pytest.Item, entries: list[timeline.Entry]) -> list[tuple[str, str]]:
    """A "decoded backtrace (<board>)" section per board whose console printed a Backtrace line, decoded with
    the ELFs of the session's firmware (the `hil_firmware` fixture: boards come from its builds)."""
    firmware = getattr(item, "funcargs", {}).get("hil_firmware")
    if firmware is None or not hasattr(firmware, "panic_symbols"):
        return []
    return panic_decoder.report_sections(entries, firmware.panic_symbols())


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
