"""--target esp32: real-board selection and the no-board error (run as a separate pytest)."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_collect_only_on_esp32_deselects_virtual_only_scenarios_with_the_reason() -> None:
    result = _pytest("tests_hil", "--target", "esp32", "--collect-only", "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("deselected tests_hil/test_power_loss.py::test_power_cut_at_flash_operations_of_an_ota[mosquitto]: "
            "needs the virtual board") in result.stdout
    assert "test_update_to_new_version" in result.stdout  # the rest stays selected


def test_esp32_without_a_board_fails_fast_and_says_how_to_name_a_port() -> None:
    start = time.monotonic()
    result = _pytest("tests_hil", "--target", "esp32", "-q")
    assert time.monotonic() - start < 10
    assert result.returncode != 0
    assert "--port /dev/ttyUSB0" in result.stdout + result.stderr
    assert "does not fall back to the virtual board" in result.stdout + result.stderr


def test_virtual_target_is_the_default() -> None:
    result = _pytest("tests_hil/test_update_to_new_version.py", "--collect-only", "-q")
    assert result.returncode == 0 and "deselected" not in result.stdout
