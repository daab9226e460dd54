"""--broker URL: the catalog runs against an external broker (a real mosquitto here), and a bad
URL or an unreachable broker stops the run at once with a message that says what to do."""

import subprocess
import sys
import time
from pathlib import Path

from harness.broker import MosquittoBroker

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)


def test_an_update_runs_end_to_end_through_mosquitto() -> None:
    with MosquittoBroker() as broker:
        result = _pytest("tests_hil/test_update_to_new_version.py", "tests_hil/test_rollback_when_selftest_fails.py",
                         "--broker", broker.url)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout


def test_unreachable_broker_fails_fast_with_the_url() -> None:
    start = time.monotonic()
    result = _pytest("tests_hil/test_update_to_new_version.py", "--broker", "mqtt://127.0.0.1:9")
    assert time.monotonic() - start < 30
    assert result.returncode != 0
    assert "mqtt://127.0.0.1:9" in result.stdout


def test_bad_broker_url_is_a_usage_error() -> None:
    result = _pytest("tests_hil/test_update_to_new_version.py", "--broker", "http://127.0.0.1:1883")
    assert result.returncode != 0
    assert "mqtt://" in result.stdout + result.stderr
