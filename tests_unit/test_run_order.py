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


class _Item:
    """What waits_first reads of a pytest item: its name and its `waits` marker."""

    def __init__(self, name: str, waits: bool) -> None:
        self.name, self.waits = name, waits

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "waits" and self.waits else None


def test_under_xdist_each_worker_s_first_batch_gets_a_waiting_scenario_in_turn() -> None:
    from harness.run_order import waits_first

    items = [_Item(f"t{n}", waits=False) for n in range(200)]
    items[150:150] = [_Item(f"w{n}", waits=True) for n in range(7)]
    waits_first(items, workers=3)  # xdist's first batches: 207 // 3 // 4 = 17 scenarios each
    names = [item.name for item in items]
    batches = [names[i * 17:(i + 1) * 17] for i in range(3)]
    assert [[n for n in batch if n.startswith("w")] for batch in batches] == [["w0", "w3", "w6"], ["w1", "w4"],
                                                                               ["w2", "w5"]]
    assert [n for n in names if n.startswith("t")] == [f"t{n}" for n in range(200)]  # the rest keep their order
    assert batches[0][:3] == ["w0", "w3", "w6"]  # at the front of each batch: started at once


def test_more_waiting_scenarios_than_first_batch_places_go_right_after_the_first_batches() -> None:
    from harness.run_order import waits_first

    items = [_Item(f"w{n}", waits=True) for n in range(6)] + [_Item(f"t{n}", waits=False) for n in range(10)]
    waits_first(items, workers=2)  # batches of 16 // 2 // 4 = 2: places for four
    assert [item.name for item in items][:8] == ["w0", "w2", "w1", "w3", "w4", "w5", "t0", "t1"]
