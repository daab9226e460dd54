"""The reference firmware's module structure (device/main), read from its sources without compiling.

A module is a .c file and its .h; module A depends on B when A.c or A.h includes "B.h". The dependencies
form no cycle (the command table in commands.c is what keeps the OTA agent and the manifest apart), and
no C file outgrows 1,000 lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

MAIN = Path(__file__).resolve().parents[1] / "device" / "main"
LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.MULTILINE)
MAX_C_LINES = 1000


def module_graph(main: Path) -> dict[str, set[str]]:
    """Module name -> the other modules of main/ it includes (headers outside main/ are left out)."""
    modules = {p.stem for p in main.glob("*.[ch]")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in main.glob("*.[ch]"):
        for name in LOCAL_INCLUDE.findall(path.read_text()):
            if name in modules and name != path.stem:
                graph[path.stem].add(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One dependency cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_firmware_modules_include_each_other_without_a_cycle() -> None:
    graph = module_graph(MAIN)
    assert {"commands", "ota_agent", "manifest"} <= graph.keys()
    cycle = find_cycle(graph)
    assert cycle is None, "include cycle in device/main: " + " -> ".join(cycle or [])


def test_the_agent_does_not_know_the_manifest() -> None:
    graph = module_graph(MAIN)
    assert "manifest" not in graph["ota_agent"]
    assert {"ota_agent", "manifest", "status"} <= graph["commands"]


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
    ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
])
def test_find_cycle_itself(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert find_cycle(graph) == expected


def test_the_old_cycle_is_seen(tmp_path: Path) -> None:
    """The structure before the command table: ota_agent.c included manifest.h and manifest.c ota_agent.h."""
    (tmp_path / "ota_agent.h").write_text("#pragma once\n")
    (tmp_path / "ota_agent.c").write_text('#include "ota_agent.h"\n#include "manifest.h"\n')
    (tmp_path / "manifest.h").write_text("#pragma once\n")
    (tmp_path / "manifest.c").write_text('#include <stdio.h>\n#include "manifest.h"\n#include "ota_agent.h"\n')
    assert find_cycle(module_graph(tmp_path)) == ["manifest", "ota_agent", "manifest"]


def test_no_c_file_is_over_1000_lines() -> None:
    long = {p.name: n for p in MAIN.glob("*.c") if (n := len(p.read_text().splitlines())) > MAX_C_LINES}
    assert not long, f"C files over {MAX_C_LINES} lines: {long}"
