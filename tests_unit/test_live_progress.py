"""Live OTA progress: the formatting and throttling (events in, lines out; on a terminal the redrawn line,
otherwise one line per OTA outcome), the writes on a pipe and a terminal, and whole pytest sessions doing a
real OTA of the virtual board (piped -v, dots, -q, a pty)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.live_progress import ERASE_LINE, LiveProgress, ProgressView
from harness.protocol import Message

ROOT = Path(__file__).resolve().parents[1]
KB = 1024
RUN_TIMEOUT_S = 90.0


def ota(t: float, device: str = "vb1a2b3c", **data: Any) -> Message:
    payload = json.dumps({"id": "r1", "seq": 1, **data}).encode()
    return Message(index=0, topic=f"devices/{device}/ota", payload=payload, data=json.loads(payload), retain=False,
                   t=t, device_id=device, kind="ota")


def downloading(t: float, count: int, total: int = 1780 * KB, device: str = "vb1a2b3c") -> Message:
    percent = count * 100 // total if total > 0 else -1  # as the firmware computes it
    return ota(t, device, state="downloading", bytes=count, total=total, percent=percent)


def feed(view: ProgressView, messages: list[Message]) -> list[str]:
    return [line for line in map(view.feed, messages) if line is not None]


# --- formatting ------------------------------------------------------------------------------------------


def test_downloading_shows_percent_size_and_rate_since_the_first_event() -> None:
    view = ProgressView(tty=True)
    assert view.feed(ota(100.0, state="accepted")) == "  OTA vb1a2b3c r1 accepted"
    # 812 KB in 4 s of host time since `accepted`
    line = view.feed(downloading(104.0, 812 * KB))
    assert line == "  OTA vb1a2b3c r1 downloading  45%  812/1780 KB  203.0 KB/s"


def test_rate_counts_from_the_first_download_event_when_accepted_was_missed() -> None:
    view = ProgressView(tty=True)
    assert view.feed(downloading(10.0, 100 * KB)) == "  OTA vb1a2b3c r1 downloading   5%  100/1780 KB"
    line = view.feed(downloading(12.0, 600 * KB))
    assert line == "  OTA vb1a2b3c r1 downloading  33%  600/1780 KB  250.0 KB/s"


def test_unknown_total_shows_bytes_and_rate_only() -> None:
    view = ProgressView(tty=True)
    view.feed(ota(0.0, state="accepted"))
    assert view.feed(downloading(2.0, 512 * KB, total=-1)) == "  OTA vb1a2b3c r1 downloading  512 KB  256.0 KB/s"


@pytest.mark.parametrize(("event", "shown"), [
    ({"state": "succeeded", "version": "2.0.0"}, "succeeded 2.0.0"),
    ({"state": "failed", "reason": "http_status", "http_status": 404, "detail": "x"}, "failed (http_status 404)"),
    ({"state": "failed", "reason": "invalid_image"}, "failed (invalid_image)"),
    ({"state": "rolled_back", "reason": "selftest_failed", "version": "2.0.0"}, "rolled_back (selftest_failed)"),
    ({"state": "rejected", "reason": "same_version"}, "rejected (same_version)"),
    ({"state": "cancelled", "reason": "cancelled"}, "cancelled"),
])
@pytest.mark.parametrize("tty", [True, False], ids=["tty", "plain"])
def test_final_states_are_shown_as_such(event: dict[str, Any], shown: str, tty: bool) -> None:
    assert ProgressView(tty=tty).feed(ota(1.0, **event)) == f"  OTA vb1a2b3c r1 {shown}"


def test_verifying_keeps_the_size_and_average_rate_of_the_download() -> None:
    view = ProgressView(tty=True)
    feed(view, [ota(0.0, state="accepted"), downloading(4.0, 1780 * KB)])
    assert view.feed(ota(4.1, state="verifying")) == "  OTA vb1a2b3c r1 verifying  1780 KB  445.0 KB/s"


def test_a_new_accepted_starts_the_measure_again() -> None:
    view = ProgressView(tty=True)
    feed(view, [ota(0.0, state="accepted"), downloading(1.0, 100 * KB), ota(1.1, state="failed", reason="timeout")])
    assert view.feed(ota(50.0, state="accepted")) == "  OTA vb1a2b3c r1 accepted"
    assert view.feed(downloading(52.0, 200 * KB)) == "  OTA vb1a2b3c r1 downloading  11%  200/1780 KB  100.0 KB/s"


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "plain"])
def test_other_messages_are_ignored(tty: bool) -> None:
    view = ProgressView(tty=tty)
    status = Message(0, "devices/vb1/status", b'{"state": "x"}', {"state": "x"}, True, 0.0, "vb1", "status")
    command = Message(0, "devices/vb1/cmd", b'{"type": "ota"}', {"type": "ota"}, False, 0.0, "vb1", "cmd")
    garbage = Message(0, "devices/vb1/ota", b"\xff", None, False, 0.0, "vb1", "ota")
    no_state = Message(0, "devices/vb1/ota", b'{"id": "r1"}', {"id": "r1"}, False, 0.0, "vb1", "ota")
    assert feed(view, [status, command, garbage, no_state]) == []


def test_device_text_cannot_move_the_cursor() -> None:
    view = ProgressView(tty=False)
    line = view.feed(ota(0.0, id="r\x1b[2J", state="rejected", reason="busy\r\n" + "x" * 100))
    assert line is not None and not any(c in line for c in "\x1b\r\n")
    assert len(line) < 100


# --- throttling ------------------------------------------------------------------------------------------


def test_plain_prints_one_line_per_outcome_with_the_download_size_and_rate() -> None:
    view = ProgressView(tty=False)
    total = 1000 * KB
    events = [ota(0.0, state="accepted")]
    events += [downloading(0.1 + i * 0.1, i * 50 * KB, total) for i in range(1, 21)]  # every 5 %, 1000 KB at 2.1 s
    events += [ota(2.2, state="verifying"), ota(2.3, state="rebooting"), ota(5.0, state="succeeded", version="2")]
    assert feed(view, events) == ["  OTA vb1a2b3c r1 succeeded 2  1000 KB  476.2 KB/s"]


def test_plain_outcome_of_a_download_stopped_early_shows_how_far_it_got() -> None:
    view = ProgressView(tty=False)
    events = [ota(0.0, state="accepted"), downloading(2.0, 100 * KB, 1000 * KB),
              ota(9.0, state="failed", reason="timeout")]
    assert feed(view, events) == ["  OTA vb1a2b3c r1 failed (timeout)  100/1000 KB  50.0 KB/s"]


def test_plain_outcome_of_an_unknown_total_shows_the_bytes() -> None:
    view = ProgressView(tty=False)
    events = [ota(0.0, state="accepted")] + [downloading(float(t), t * 10 * KB, total=-1) for t in range(1, 26)]
    events += [ota(25.5, state="succeeded", version="2.0.0")]
    assert feed(view, events) == ["  OTA vb1a2b3c r1 succeeded 2.0.0  250 KB  10.0 KB/s"]


def test_plain_prints_an_outcome_once_and_again_for_a_new_attempt() -> None:
    view = ProgressView(tty=False)
    events = [ota(0.0, state="rejected", reason="busy"), ota(0.1, state="rejected", reason="busy")]  # a repeat
    events += [ota(5.0, state="accepted"), ota(5.1, state="failed", reason="connect_failed")]  # the same id again
    assert feed(view, events) == ["  OTA vb1a2b3c r1 rejected (busy)", "  OTA vb1a2b3c r1 failed (connect_failed)"]


def test_tty_redraws_at_most_five_times_a_second_but_at_every_state_change() -> None:
    view = ProgressView(tty=True)
    events = [ota(0.0, state="accepted")]
    events += [downloading(0.05 * i, i * 10 * KB) for i in range(1, 21)]  # 20 events a second
    events += [ota(1.01, state="verifying")]
    drawn = [view.feed(m) is not None for m in events]
    times = [m.t for m, shown in zip(events, drawn, strict=True) if shown]
    assert times == pytest.approx([0.0, 0.05, 0.25, 0.45, 0.65, 0.85, 1.01])


def test_tty_joins_the_boards_latest_requests_on_one_line() -> None:
    view = ProgressView(tty=True)
    view.feed(ota(0.0, "vbaaaaaa", state="accepted"))
    view.feed(ota(0.0, "vbbbbbbb", state="accepted"))
    view.feed(ota(1.0, "vbaaaaaa", state="rejected", reason="busy", id="r2"))
    line = view.feed(downloading(2.0, 890 * KB, device="vbbbbbbb"))
    assert line == ("  OTA vbaaaaaa r2 rejected (busy) | "
                    "vbbbbbbb r1 downloading  50%  890/1780 KB  445.0 KB/s")


def test_plain_gives_each_board_its_own_lines() -> None:
    view = ProgressView(tty=False)
    lines = feed(view, [ota(0.0, "vbaaaaaa", state="accepted"), ota(0.0, "vbbbbbbb", state="accepted"),
                        downloading(1.0, 1780 * KB, device="vbaaaaaa"), downloading(1.0, 890 * KB, device="vbbbbbbb"),
                        ota(2.0, "vbbbbbbb", state="failed", reason="idle_timeout"),
                        ota(4.0, "vbaaaaaa", state="succeeded", version="2.0.0")])
    assert lines == ["  OTA vbbbbbbb r1 failed (idle_timeout)  890/1780 KB  890.0 KB/s",
                     "  OTA vbaaaaaa r1 succeeded 2.0.0  1780 KB  1780.0 KB/s"]


# --- writes ----------------------------------------------------------------------------------------------


def read_available(fd: int) -> bytes:
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def test_plain_writes_begin_with_a_newline_and_leave_the_last_line_open(pytestconfig: pytest.Config) -> None:
    read_end, write_end = os.pipe()
    progress = LiveProgress(pytestconfig, write_end)
    try:
        progress.on_message(ota(0.0, state="rejected", reason="busy"))  # not during a test: ignored
        progress.open()
        progress.on_message(ota(1.0, id="r2", state="rejected", reason="busy"))
        progress.on_message(ota(2.0, id="r3", state="accepted"))  # not an outcome
        progress.on_message(ota(3.0, id="r3", state="failed", reason="timeout"))
        progress.close()
        progress.on_message(ota(4.0, id="r4", state="failed", reason="timeout"))  # after the test: ignored
        assert read_available(read_end) == b"\n  OTA vb1a2b3c r2 rejected (busy)\n  OTA vb1a2b3c r3 failed (timeout)"
    finally:
        progress.pytest_unconfigure()
        os.close(read_end)


def test_tty_writes_redraw_in_place_within_the_width(pytestconfig: pytest.Config) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # the bytes as written, without "\n" -> "\r\n"
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    progress = LiveProgress(pytestconfig, slave)
    try:
        progress.open()
        progress.on_message(ota(1.0, state="accepted"))
        progress.on_message(downloading(2.0, 890 * KB))
        progress.close()
        first = "  OTA vb1a2b3c r1 accepted"
        second = "  OTA vb1a2b3c r1 downloading  50%  890/1780 KB  890.0 KB/s"[:39]
        assert read_available(master).decode() == f"\n{ERASE_LINE}{first}{ERASE_LINE}{second}"
    finally:
        progress.pytest_unconfigure()
        os.close(master)


# --- whole sessions --------------------------------------------------------------------------------------

SESSION_TESTS = '''
    def test_before():
        pass


    def test_ota(board, fw_server, link, firmware):
        artifact = fw_server.add(firmware.image(version="2.0.0"))
        since = link.cursor()
        link.send(board.device_id, {"type": "ota", "id": "r1", "url": artifact.url})
        link.wait_ota(board.device_id, "r1", "succeeded", timeout=40, since=since,
                      fail_on={"failed", "rejected", "rolled_back", "cancelled"})


    def test_after():
        pass
'''
PROGRESS_LINE = re.compile(r"^  OTA vb[0-9a-f]{6} r1 ")
OUTCOME_LINE = re.compile(r"^  OTA vb[0-9a-f]{6} r1 succeeded 2\.0\.0  \d+ KB  [\d.]+ KB/s$")


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    """A rootdir of its own (its pytest.ini, not the repository's) that reuses the repository's firmware build."""
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings =\n    ignore::pytest.PytestExperimentalApiWarning\n")
    (tmp_path / "test_live_ota.py").write_text(textwrap.dedent(SESSION_TESTS))
    # The plugin builds into <rootdir>/build/virtual or the repository's build/: either way the same build.
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "virtual").symlink_to(ROOT / "build" / "virtual", target_is_directory=True)
    return tmp_path


def session_command(directory: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(directory / "tmp"),
            *args, "test_live_ota.py"]


def session_env() -> dict[str, str]:
    # the caller's PYTEST_ADDOPTS (say -q) or COLUMNS would change what the session prints
    return {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "COLUMNS", "LINES")}


def run_piped(directory: Path, *args: str) -> str:
    result = subprocess.run(session_command(directory, *args), cwd=directory, env=session_env(),
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_in_pty(directory: Path, *args: str) -> str:
    """The session's terminal output, bytes as they came (pty line endings turned back into "\\n")."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(session_command(directory, *args), cwd=directory, env=session_env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([master], [], [], remaining)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every holder of the slave side closed it, i.e. the session ended
                break
            if not chunk:
                break
            output += chunk
        else:
            pytest.fail(f"the session did not end within {RUN_TIMEOUT_S} s; output so far:\n{output.decode()}")
        assert proc.wait(timeout=10) == 0, output.decode()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return output.decode().replace("\r\n", "\n")


def test_piped_verbose_session_prints_one_line_per_ota_outcome(session_dir: Path) -> None:
    out = run_piped(session_dir, "-v")
    assert "\x1b" not in out, out
    lines = out.splitlines()
    start = lines.index("test_live_ota.py::test_ota ")  # pytest's open line, ended by the outcome's line
    progress = [line for line in lines if PROGRESS_LINE.match(line)]
    assert len(progress) == 1 and OUTCOME_LINE.match(progress[0]) and lines[start + 1] == progress[0], out
    assert re.match(r"test_live_ota\.py::test_ota PASSED +\[ 66%\]$", lines[start + 2]), out
    assert re.match(r"test_live_ota\.py::test_after PASSED +\[100%\]$", lines[start + 3]), out


def test_piped_default_session_prints_the_dots_after_a_new_file_path(session_dir: Path) -> None:
    out = run_piped(session_dir)
    assert "\x1b" not in out, out
    lines = out.splitlines()
    start = lines.index("test_live_ota.py .")  # test_before's dot, then the outcome on a line of its own
    progress = [line for line in lines if PROGRESS_LINE.match(line)]
    assert len(progress) == 1 and OUTCOME_LINE.match(progress[0]) and lines[start + 1] == progress[0], out
    assert re.match(r"test_live_ota\.py \.\. +\[100%\]$", lines[start + 2]), out


def test_quiet_session_prints_no_progress(session_dir: Path) -> None:
    out = run_piped(session_dir, "-q")
    assert "OTA" not in out and "\x1b" not in out, out
    assert out.startswith("...") and "3 passed" in out, out


def test_terminal_session_redraws_the_line_in_place(session_dir: Path) -> None:
    out = run_in_pty(session_dir, "-v", "--color=no")
    lines = out.split("\n")
    start = lines.index("test_live_ota.py::test_ota ")
    drawn = lines[start + 1]  # every redraw of the test, on the one line
    assert drawn.startswith(ERASE_LINE + "  OTA vb") and drawn.count(ERASE_LINE) >= 3, repr(drawn)
    assert re.search(r"r1 downloading +\d+%  \d+/\d+ KB", drawn) and drawn.endswith(" r1 succeeded 2.0.0"), drawn
    assert re.match(r"test_live_ota\.py::test_ota PASSED +\[ 66%\]$", lines[start + 2]), out
    assert re.match(r"test_live_ota\.py::test_after PASSED +\[100%\]$", lines[start + 3]), out
