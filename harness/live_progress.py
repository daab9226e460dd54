"""Live OTA progress on the terminal while a test runs: board, state, percent, KB/s.

pytest captures a test's output, so the display writes to its own duplicate of the real stdout, taken
at configure time while capture is suspended. On a terminal it redraws one line in place; without one
(CI logs) it prints one plain line per OTA outcome: the final state of each request (succeeded, failed,
rejected, cancelled, rolled_back) with its version or reason, the download's size and KB/s. It writes in
"leading newline" style: every write starts a line of its own, and the last line is left open, so
after a test that printed something pytest is told (through its terminal reporter) to start a fresh
line and re-print its `path::test` prefix or file path before the result.

`ProgressView` is the pure part (events in, text out, times from `Message.t`); `LiveProgress` is the
pytest plugin and DeviceLink listener around it. Off with `-q`, `--hil-progress=off`, without pytest's
terminal reporter, and in pytest-xdist workers (their output never reaches the terminal directly).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.protocol import Message
from harness.report import FINAL_STATES

TTY_INTERVAL_S = 0.2  # redraw at most ~5 times a second, plus at every state change
FALLBACK_WIDTH = 80
ERASE_LINE = "\r\x1b[K"  # back to column 0, clear to the end of the line
PREFIX = "  OTA "
SEPARATOR = " | "
KB = 1024

Key = tuple[str, str]  # (device id, request id)


def _clean(value: object, limit: int = 48) -> str:
    """Device-supplied text made safe for one terminal line: no control characters, bounded length."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kb(n: int) -> int:
    return round(n / KB)


@dataclass
class Transfer:
    """What the events so far say about one OTA request on one board."""

    device_id: str
    request_id: str
    state: str = ""
    bytes: int | None = None
    total: int | None = None  # None when unknown (the event's -1)
    percent: int | None = None  # None when unknown
    reason: str = ""
    version: str = ""
    started_at: float | None = None  # host time of the first accepted/downloading event
    start_bytes: int = 0  # bytes at started_at: the rate counts only what came after
    bytes_at: float | None = None  # host time of the latest byte count

    def update(self, data: dict[str, Any], t: float) -> bool:
        """Takes one event's payload received at host time `t`; True if the state changed."""
        state = _clean(data.get("state"), 16)
        changed = state != self.state
        self.state = state
        if state == "accepted":  # a new attempt (the same id may be reused): forget the last one
            self.bytes = self.total = self.percent = self.bytes_at = None
            self.started_at, self.start_bytes, self.reason = t, 0, ""
        elif state == "downloading":
            count, total, percent = _int(data.get("bytes")), _int(data.get("total")), _int(data.get("percent"))
            if count is not None:
                if self.started_at is None:  # the accepted event was missed: measure from here
                    self.started_at, self.start_bytes = t, count
                self.bytes, self.bytes_at = count, t
            self.total = total if total is not None and total > 0 else None
            self.percent = percent if self.total is not None and percent is not None and 0 <= percent <= 100 else None
        reason = data.get("reason")
        if reason is not None:
            status = _int(data.get("http_status"))
            self.reason = _clean(reason, 24) + (f" {status}" if status is not None else "")
        if data.get("version") is not None:
            self.version = _clean(data["version"], 24)
        return changed

    def rate(self) -> float | None:
        """KB/s: bytes since the first event over the host time since then (None until measurable)."""
        if self.started_at is None or self.bytes is None or self.bytes_at is None:
            return None
        elapsed = self.bytes_at - self.started_at
        if elapsed <= 0:
            return None
        return max(0, self.bytes - self.start_bytes) / KB / elapsed  # a restart from zero is not negative

    def describe(self) -> str:
        """e.g. `vb1a2b3c r1 downloading  45%  812/1780 KB  254.1 KB/s`, `vb1a2b3c r4 failed (http_status 404)`."""
        head = f"{_clean(self.device_id, 24)} {_clean(self.request_id) or '-'} {self.state}"
        rate = self.rate()
        speed = f"  {rate:.1f} KB/s" if rate is not None else ""
        if self.state == "downloading" and self.bytes is not None:
            if self.total is None:
                return f"{head}  {_kb(self.bytes)} KB{speed}"
            percent = f" {self.percent:3d}%" if self.percent is not None else ""
            return f"{head}{percent}  {_kb(self.bytes)}/{_kb(self.total)} KB{speed}"
        if self.state in ("verifying", "rebooting") and self.bytes is not None:
            return f"{head}  {_kb(self.bytes)} KB{speed}"  # the download's size and average rate
        if self.state == "succeeded" and self.version:
            return f"{head} {self.version}"
        if self.state in ("failed", "rejected", "rolled_back", "cancelled") and self.reason not in ("", self.state):
            return f"{head} ({self.reason})"
        return head

    def outcome(self) -> str:
        """The final state with what was downloaded, e.g. `vb1a2b3c r1 succeeded 2.0.0  1780 KB  445.0 KB/s`,
        `vb1a2b3c r2 failed (timeout)  100/1780 KB  50.0 KB/s`, `vb1a2b3c r3 rejected (busy)`."""
        if self.bytes is None:
            return self.describe()
        total = f"/{_kb(self.total)}" if self.total is not None and self.total != self.bytes else ""  # stopped early
        rate = self.rate()
        return f"{self.describe()}  {_kb(self.bytes)}{total} KB" + (f"  {rate:.1f} KB/s" if rate is not None else "")


@dataclass
class ProgressView:
    """Turns the OTA events of one test into the lines to show; pure, so times come from the messages.

    `feed` returns the text to show now, or None when nothing should be written (not an OTA event, or
    throttled). On a terminal (`tty`) the text is one line for every board (each one's latest request),
    to be redrawn in place; otherwise it is the outcome of the request whose event this was, once when it
    reaches a final state (again only if a new `accepted` starts it over).
    """

    tty: bool
    transfers: dict[Key, Transfer] = field(default_factory=dict)
    latest: dict[str, Key] = field(default_factory=dict)  # device id -> its latest request, boards in order
    drawn_at: float | None = None  # tty: when the line was last drawn

    def feed(self, message: Message) -> str | None:
        data = message.data
        if message.kind != "ota" or message.device_id is None or not isinstance(data, dict) \
                or not isinstance(data.get("state"), str):
            return None
        key = (message.device_id, str(data.get("id", "")))
        transfer = self.transfers.setdefault(key, Transfer(*key))
        changed = transfer.update(data, message.t)
        self.latest[message.device_id] = key
        if self.tty:
            return self._tty_line(changed, message.t)
        return PREFIX + transfer.outcome() if changed and transfer.state in FINAL_STATES else None

    def _tty_line(self, changed: bool, t: float) -> str | None:
        if not changed and self.drawn_at is not None and t - self.drawn_at < TTY_INTERVAL_S:
            return None
        self.drawn_at = t
        return PREFIX + SEPARATOR.join(self.transfers[key].describe() for key in self.latest.values())


class LiveProgress:
    """The live display of a pytest run: a plugin (active during each test's call phase) and a
    DeviceLink listener (`on_message`, called in paho's network thread, hence the lock)."""

    def __init__(self, config: pytest.Config, fd: int | None) -> None:
        self.config = config
        self._fd = fd  # our own duplicate of the real stdout; None: disabled
        self._tty = fd is not None and os.isatty(fd)
        self._lock = threading.Lock()
        self._view: ProgressView | None = None  # not None only during a test's call phase
        self._printed = False  # something was written since the test started: pytest's line is broken

    def open(self) -> None:
        with self._lock:
            self._printed = False
            if self._fd is not None and self.config.pluginmanager.get_plugin("terminalreporter") is not None:
                self._view = ProgressView(tty=self._tty)

    def close(self) -> None:
        with self._lock:  # once this returns, nothing more is written for the test
            self._view = None

    def on_message(self, message: Message) -> None:
        with self._lock:
            if self._view is None:
                return
            line = self._view.feed(message)
            if line is not None:
                self._write(line)

    def _write(self, line: str) -> None:
        if self._tty:
            text = ERASE_LINE + line[: self._width() - 1]  # a wrapped line could not be redrawn in place
            if not self._printed:
                text = "\n" + text  # leave pytest's open line (`path::test ` or the dots) as it is
        else:
            text = "\n" + line
        data = text.encode("utf-8", errors="replace")
        try:
            while data:
                data = data[os.write(self._fd, data):]  # type: ignore[arg-type]  # checked by open()
        except OSError:  # the terminal or pipe went away: stop showing rather than fail the test
            self._view = None
            return
        self._printed = True

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._fd).columns or FALLBACK_WIDTH  # type: ignore[arg-type]
        except OSError:
            return FALLBACK_WIDTH

    # --- pytest hooks --------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        self.open()
        try:
            return (yield)
        finally:
            self.close()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """After a test that printed, before pytest writes its result: our last line is still open."""
        with self._lock:
            printed, self._printed = self._printed, False
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if not printed or reporter is None:
            return
        # -v: write_ensure_prefix() sees another prefix, so it starts a line and re-prints `path::test `.
        reporter.currentfspath = None
        if self.config.get_verbosity(pytest.Config.VERBOSITY_TEST_CASES) <= 0:
            # dots: the letter is written without a check, so start a line with the file path ourselves
            reporter.write_fspath_result(report.nodeid, "")

    def pytest_unconfigure(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


_KEY = pytest.StashKey[LiveProgress]()


def add_option(group: pytest.OptionGroup) -> None:
    group.addoption(
        "--hil-progress", choices=("auto", "off"), default="auto",
        help="live OTA progress during tests: auto (on unless -q; redrawn in place on a terminal, one line per "
             "OTA outcome otherwise) or off",
    )


def configure(config: pytest.Config) -> LiveProgress:
    """Creates the run's display (see `of`) and registers it as a plugin unless it is off."""
    enabled = (config.getoption("--hil-progress", default="auto") != "off"
               and config.get_verbosity() >= 0 and not hasattr(config, "workerinput"))
    fd = None
    if enabled:
        # fd 1 is the real stdout unless capture is running; make sure it is not
        capman = config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            fd = os.dup(1)
    progress = LiveProgress(config, fd)
    config.stash[_KEY] = progress
    if enabled:
        config.pluginmanager.register(progress, "hil-live-progress")
    return progress


def of(config: pytest.Config) -> LiveProgress:
    """The run's display; when it is off, its `on_message` ignores everything."""
    return config.stash[_KEY]
