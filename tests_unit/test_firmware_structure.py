"""The reference firmware's module structure, read from its sources without compiling.

The OTA agent is a component (device/components/ota_agent): a module is a .c file of its src/ and its .h;
module A depends on B when A.c or A.h includes "B.h". The dependencies form no cycle (the command table in
commands.c is what keeps the updater and the manifest apart), and no C file outgrows 1,000 lines. The app
(device/main) uses the component through its public header only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DEVICE = Path(__file__).resolve().parents[1] / "device"
MAIN = DEVICE / "main"
AGENT = DEVICE / "components" / "ota_agent"
AGENT_SRC = AGENT / "src"
LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.MULTILINE)
MAX_C_LINES = 1000


def module_graph(main: Path) -> dict[str, set[str]]:
    """Module name -> the other modules of the directory it includes (headers from elsewhere are left out)."""
    modules = {p.stem for p in main.glob("*.[ch]")}
    headers = {p.stem for p in main.glob("*.h")}  # a header from elsewhere (a public include/) is no edge
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in main.glob("*.[ch]"):
        for name in LOCAL_INCLUDE.findall(path.read_text()):
            if name in headers and name != path.stem:
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
    graph = module_graph(AGENT_SRC)
    assert {"commands", "ota_updater", "manifest", "ota_agent"} <= graph.keys()
    cycle = find_cycle(graph)
    assert cycle is None, "include cycle in the ota_agent component: " + " -> ".join(cycle or [])


def test_the_updater_does_not_know_the_manifest() -> None:
    graph = module_graph(AGENT_SRC)
    assert "manifest" not in graph["ota_updater"]
    assert {"ota_updater", "manifest", "status"} <= graph["commands"]


def test_the_app_uses_the_component_through_its_public_header_only() -> None:
    """device/main includes ota_agent.h (include/) and none of the component's own headers (src/)."""
    private = {p.stem for p in AGENT_SRC.glob("*.h")}
    public = {p.stem for p in (AGENT / "include").glob("*.h")}
    included = {name for path in MAIN.glob("*.[ch]") for name in LOCAL_INCLUDE.findall(path.read_text())}
    assert "ota_agent" in public & included
    assert included & private == set()


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
    sources = [*MAIN.glob("*.c"), *AGENT_SRC.glob("*.c")]
    long = {p.name: n for p in sources if (n := len(p.read_text().splitlines())) > MAX_C_LINES}
    assert not long, f"C files over {MAX_C_LINES} lines: {long}"
