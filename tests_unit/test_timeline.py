"""The per-test timeline: merged, ordered, secrets masked, written as JSON lines, shown on failure."""

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from harness import timeline


@dataclass
class _Line:
    t: float
    text: str


def test_mask_hides_password_values_in_text_and_data() -> None:
    assert "hunter2" not in timeline.mask_text('config set broker_password hunter2 {"wifi_password": "hunter2"}')
    assert timeline.mask_data({"a": {"broker_password": "x", "ok": [1, {"token": "y"}]}}) == \
        {"a": {"broker_password": "********", "ok": [1, {"token": "********"}]}}


def test_collect_orders_entries_from_every_source_by_time() -> None:
    class Board:
        name = "b"
        serial = type("S", (), {"lines": [_Line(10.3, "late"), _Line(10.1, "early")]})()

    entries = timeline.collect(10.0, [Board()], [], [])
    assert [(round(e.t, 1), e.text) for e in entries] == [(0.1, "early"), (0.3, "late")]


def test_a_failing_scenario_reports_its_timeline_and_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "test_failing.py").write_text(textwrap.dedent("""
        def test_fails_after_boot(board, link, fw_server):
            link.send(board.device_id, {"type": "status"})
            assert False, "deliberate failure"
    """))
    out_dir = tmp_path / "timelines"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--hil-timeline-dir", str(out_dir),
         str(tmp_path / "test_failing.py")], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "timeline: serial console" in result.stdout
    assert "timeline: MQTT messages" in result.stdout
    assert "boot: Loaded app from partition at offset 0x20000" in result.stdout
    files = list(out_dir.glob("*.jsonl"))
    assert len(files) == 1
    kinds = {json.loads(line)["kind"] for line in files[0].read_text().splitlines()}
    assert kinds == {"serial", "mqtt"}
