"""The live page of a pytest run: `--hil-live [PORT]` (harness/plugin.py adds the option).

One server for the session (started when the session starts, so a taken port stops the run before any
test), fed by the boards and link of the test that runs (the fixtures call `attach_record` and `attach_link`:
harness/fixtures.py) and by pytest's reports: the scenario list with each result as it comes. The page is
read-only: a run's updates are its tests'. Not under pytest-xdist (the boards live in the workers).
"""

from __future__ import annotations

import pytest

from harness.link import DeviceLink
from harness.live.server import DEFAULT_PORT, LiveServer, port_taken_message
from harness.live.state import LiveState, SerialTap
from harness.net import PortInUseError
from harness.session.record import TestRecord, run_masker

OPTION = "--hil-live"


def add_options(group: pytest.OptionGroup) -> None:
    group.addoption(
        OPTION, nargs="?", const=str(DEFAULT_PORT), default=None, metavar="PORT",
        help=f"serve a live page of the run on http://127.0.0.1:PORT/ (default {DEFAULT_PORT}; 0 picks a free "
             "one): the running test's boards (version, slot, state, progress bars, consoles) and the scenarios "
             f"with their results as they come. Write {OPTION}=PORT, or put {OPTION} after the test paths",
    )
    group.addoption(
        "--hil-live-bind", default="127.0.0.1", metavar="ADDRESS",
        help="the address of the --hil-live page (default: 127.0.0.1, this machine only)",
    )


class LiveRun:
    """The run's page: a pytest plugin, and what the fixtures hand each test's record and link to."""

    def __init__(self, config: pytest.Config, port: int, bind: str) -> None:
        self.config = config
        self.port, self.bind = port, bind
        self.state = LiveState(run_masker(config), title="esp-ota-hil: pytest run")
        self.server = LiveServer(self.state, None, host=bind, port=port)
        self._taps: list[SerialTap] = []

    @property
    def url(self) -> str:
        return self.server.url

    # --- what the fixtures call ----------------------------------------------------------------------

    def attach_record(self, record: TestRecord) -> None:
        """The test's boards from their first serial line on, masked with the test's secrets."""
        self.state.masker = record.masker
        record.board_listeners.append(lambda board: self._taps.append(SerialTap(self.state, board)))

    def detach_record(self, record: TestRecord) -> None:
        for tap in self._taps:
            tap.detach()
        self._taps.clear()

    def attach_link(self, link: DeviceLink) -> None:
        link.add_listener(self.state.on_message)

    # --- pytest hooks --------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if session.config.getoption("collectonly", default=False):
            return
        try:
            self.server.start()
        except PortInUseError:
            raise pytest.UsageError(port_taken_message(OPTION, self.bind, self.port)) from None
        except OSError as err:  # an address that is not this machine's, or a name that does not resolve
            self.server.stop()
            raise pytest.UsageError(f"{OPTION}-bind {self.bind}: the page cannot listen there ({err.strerror or err}); "
                                    "give an address of this machine (127.0.0.1, the default, or 0.0.0.0 for every "
                                    "interface)") from None
        self.state.set_info(target=session.config.getoption("--target", default="linux"), actions=False)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"live view: {self.server.url}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.state.set_scenarios([item.nodeid for item in session.items])

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.state.clear_boards()
        self.state.set_info(test=nodeid)
        self.state.scenario(nodeid, "running")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            outcome = report.outcome
        elif report.failed:
            outcome = "error"  # in setup or teardown
        elif report.when == "setup" and report.skipped:
            outcome = "skipped"
        else:
            return
        self.state.scenario(report.nodeid, outcome, report.duration)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.state.set_info(test=None)
        self.state.note(f"run finished: {session.testscollected} collected, {session.testsfailed} failed "
                        f"(exit status {int(exitstatus)})", level="error" if session.testsfailed else "info")

    def pytest_unconfigure(self) -> None:
        self.server.stop()


_KEY = pytest.StashKey["LiveRun | None"]()


def configure(config: pytest.Config) -> None:
    value = config.getoption(OPTION, default=None)
    config.stash[_KEY] = None
    if value is None or hasattr(config, "workerinput"):
        return
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise pytest.UsageError(f"{OPTION} {value}: not a port. {OPTION} takes an optional PORT: write "
                                f"{OPTION}={DEFAULT_PORT}, or put {OPTION} after the test paths")
    if config.getoption("numprocesses", default=None):
        raise pytest.UsageError(f"{OPTION} does not work with pytest-xdist (-n): the boards run in the workers; "
                                f"leave out -n to watch the run")
    live = LiveRun(config, int(value), config.getoption("--hil-live-bind"))
    config.stash[_KEY] = live
    config.pluginmanager.register(live, "hil-live-view")


def of(config: pytest.Config) -> LiveRun | None:
    """The run's page, None without --hil-live."""
    return config.stash.get(_KEY, None)
