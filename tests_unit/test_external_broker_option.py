"""--hil-broker URL: the catalog runs against an external broker (a real mosquitto here); a wrong option or
an unreachable broker stops the run before any test, once, with a message that says what to do; a
broker that dies mid-session fails the waiting test within seconds and stops the session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[1]
USAGE_ERROR = 4


def _pytest(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, **(env or {})})


def test_an_update_runs_end_to_end_through_mosquitto() -> None:
    with MosquittoBroker() as broker:
        result = _pytest("tests_hil/test_update_to_new_version.py", "tests_hil/test_rollback_when_selftest_fails.py",
                         "--hil-broker", broker.url)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 passed" in result.stdout  # A1, at a chip's flash pace, its timeline order, the self-test rollback


def test_unreachable_broker_stops_the_run_once_before_any_test() -> None:
    started = time.monotonic()
    result = _pytest("tests_hil/test_update_to_new_version.py", "tests_hil/test_versions.py",
                     "--hil-broker", "mqtt://127.0.0.1:9")
    assert time.monotonic() - started < 30
    assert result.returncode == USAGE_ERROR, result.stdout[-2000:]
    assert result.stderr.count("mqtt://127.0.0.1:9 is unreachable") == 1, result.stderr
    assert "leave --hil-broker out to use the embedded broker" in result.stderr
    assert " passed" not in result.stdout and "error" not in result.stdout  # no test started


@pytest.mark.parametrize(("url", "says"), [
    ("http://127.0.0.1:1883", "must look like mqtt://host:port"),
    ("127.0.0.1:1883", "must look like mqtt://host:port"),
    ("mqtt://127.0.0.1:99999", "port from 1 to 65535"),
    ("mqtt://ci:hunter22@127.0.0.1:1883", "give the harness a listener that accepts anonymous clients"),
])
def test_a_wrong_broker_option_is_a_usage_error(url: str, says: str) -> None:
    result = _pytest("tests_hil/test_update_to_new_version.py", "--hil-broker", url)
    assert result.returncode == USAGE_ERROR
    assert says in result.stderr, result.stderr
    assert "hunter22" not in result.stdout + result.stderr  # the password in the URL is masked


def test_a_timeline_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "timelines"
    not_a_dir.write_text("")
    result = _pytest("tests_hil/test_update_to_new_version.py", "--hil-timeline-dir", str(not_a_dir))
    assert result.returncode == USAGE_ERROR
    assert "is not a directory" in result.stderr


@pytest.mark.parametrize("option", ["--hil-report", "--hil-timeline-dir"])
def test_an_output_path_that_cannot_be_written_is_a_usage_error_before_the_run(tmp_path: Path, option: str) -> None:
    """Found only at the end before: a run that passed lost its report to a traceback, and every test got an
    error at its teardown for its timeline."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    where = blocker / "sub" / ("r.html" if option == "--hil-report" else "timelines")
    result = _pytest("tests_hil/test_update_to_new_version.py", option, str(where))
    assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
    assert f"{option}: cannot make the directory" in result.stderr and "give a path you can write to" in result.stderr


BROKER_DIES = textwrap.dedent("""
    import os
    import signal

    def test_the_broker_dies_while_the_test_waits(broker, link):
        since = link.cursor()
        os.kill(int(os.environ["HIL_TEST_MOSQUITTO_PID"]), signal.SIGKILL)
        link.wait_for(lambda m: False, timeout=60, since=since, description="an event that never comes")

    def test_the_next_test_finds_no_broker(broker):
        pass

    def test_never_runs(broker):
        pass
""")


def test_an_external_broker_that_dies_mid_session_fails_fast_and_stops_the_session(tmp_path: Path) -> None:
    (tmp_path / "test_dies.py").write_text(BROKER_DIES)
    with MosquittoBroker() as broker:
        started = time.monotonic()
        result = _pytest("test_dies.py", "--hil-broker", broker.url, cwd=tmp_path,
                         env={"HIL_TEST_MOSQUITTO_PID": str(broker.pid)})
        took = time.monotonic() - started
    out = result.stdout
    assert took < 20, f"{took:.1f} s: the wait ran to its 60 s deadline?\n{out[-2000:]}"
    assert f"BrokerLost: lost the MQTT broker {broker.url} while waiting for an event that never comes" in out, \
        out[-3000:]
    assert "the external broker went away" in out  # the session stopped
    assert out.startswith("FE\n") and re.search(r"\b1 failed\b.*\b1 error\b", out)  # the third never ran
