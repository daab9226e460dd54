"""The fixtures' prefixed names and their short aliases (harness.fixtures, harness.fixture_aliases).

Another plugin may define `board`, `link` or `firmware` too; a project then switches the aliases off and
keeps both plugins' fixtures apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OTHER_PLUGIN = '''
import pytest

@pytest.fixture
def board():
    return "the other plugin's board"
'''

TESTS = '''
def test_both_plugins(board, hil_board, hil_ota, hil_link, hil_fw_server, hil_firmware):
    assert board == "the other plugin's board"
    artifact = hil_fw_server.add(hil_firmware.image(version="2.0.0"))
    assert hil_ota.install("p1", artifact.url, "2.0.0")["partition"] == "ota_1"
    assert hil_link.latest_status(hil_board.device_id)["version"] == "2.0.0"
'''


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "other_plugin.py").write_text(OTHER_PLUGIN)
    (tmp_path / "test_names.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(tmp_path)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pytest.ini"),
                           "--rootdir", str(ROOT), "-p", "other_plugin", *args, str(tmp_path / "test_names.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_without_the_aliases_another_plugin_s_board_and_the_harness_s_fixtures_coexist(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "-p", "no:esp_ota_hil_aliases")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_with_the_aliases_the_short_name_is_the_harness_s(tmp_path: Path) -> None:
    """Both plugins define `board`: which one wins is pytest's plugin order, so the test that relies on the
    other plugin's fails; the point of switching the aliases off."""
    result = run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "assert <harness" in result.stdout or "VirtualBoard" in result.stdout, result.stdout[-3000:]
