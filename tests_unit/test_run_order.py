"""The catalog's run order (harness/run_order.py): the `waits` scenarios first, everything else as collected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collected(*args: str) -> list[str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--hil-progress=off", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return [line for line in run.stdout.splitlines() if "::" in line]


def test_the_waiting_scenarios_are_handed_out_first_and_the_rest_keep_their_order() -> None:
    order = collected("tests_hil")
    waiting = set(collected("tests_hil", "-m", "waits"))
    assert len(waiting) >= 5, waiting  # the Wi-Fi module, the last will, the healed partition
    assert set(order[:len(waiting)]) == waiting, order[:len(waiting) + 3]
    rest = order[len(waiting):]
    files = [nodeid.split("::")[0] for nodeid in rest]
    assert files == sorted(files), "the other scenarios left their files' order"
