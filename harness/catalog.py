"""The README's scenario catalog, generated from the scenarios themselves: ``python -m harness catalog``.

The scenarios are collected by pytest (in this process, ``--collect-only``), so the table lists exactly
what ``pytest tests_hil`` runs, with the markers and parameters pytest sees. One row per test function:

- scenario: its catalog ID (a leading ``A1:`` style prefix of its docstring, also ``B5-B8:`` or
  ``A3/A4:``), its name, its parametrize ids (``[...]`` and a count when there are more than
  `MAX_IDS`), and ``(slow)`` for the ``slow`` marker;
- what it proves: the first paragraph of its docstring, without the ID prefix and the final full stop,
  an ordinary capitalised first word in lower case (as the table's cells begin);
- targets: ``virtual only`` for ``virtual_only``, else ``virtual, esp32``; in parentheses ``n boards``
  for ``boards(n)``, ``mosquitto installed`` for ``parametrize("broker", ["mosquitto"], indirect=True)``,
  ``power control`` for ``needs_power_control`` on a scenario real boards can run, and each docstring
  paragraph ``Needs: <what>.`` (what no marker says: a variant build, the embedded broker).

Rows are grouped by file under the first line of the file's module docstring; files with the same first
line form one group, in the order of their lowest ID (files without one last), each file's rows in the
order of the file. Groups come in `GROUP_ORDER`, then any other group in the order of its first file.
A scenario or file without a docstring is an error: the table would have nothing to say about it.

``--write README.md`` replaces what is between `START` and `END` in the file, nothing else.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.project import HARNESS_ROOT

START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"
MAX_IDS = 8  # more parametrize ids than this are shown as [...] and a count
GROUP_ORDER = (  # by catalog letter (A: version, B: integrity, C: transport, D: job control, E: boot and rollback,
    # F: signed images, G: anti-rollback)
    "Version and happy path",
    "Integrity",
    "Malformed input",
    "Transport",
    "Job control",
    "Manifest mode",
    "Boot, confirm, rollback",
    "Signed images",
    "Anti-rollback",
    "Power loss",
    "Console and status",
    "The virtual board itself",
)
_ID_PREFIX = re.compile(r"^(?P<id>[A-Z]\d{1,2}(?:\s*[-–/]\s*[A-Z]\d{1,2})*)\s*:\s*")
_NEEDS = re.compile(r"^Needs:\s*(?P<what>.+?)\.?$", re.DOTALL)


class CatalogError(Exception):
    """The catalog cannot be made; the message says which scenario or file to fix."""


@dataclass(frozen=True)
class Scenario:
    """One test function of the catalog, with everything its row is made of."""

    file: Path  # relative to the root the scenarios were collected from
    name: str
    doc: str  # the function's docstring, cleaned (inspect.cleandoc); "" when it has none
    module_doc: str  # the file's module docstring, cleaned
    ids: tuple[str, ...]  # parametrize ids in collection order; () when it is not parametrized
    markers: frozenset[str]
    boards: int  # the boards(n) marker's n, else 1
    brokers: tuple[str, ...]  # broker kinds it is parametrized with (indirect "broker" parameter)
    cases: int  # how many tests pytest collected for it

    @property
    def paragraphs(self) -> list[str]:
        return [" ".join(p.split()) for p in re.split(r"\n\s*\n", self.doc.strip()) if p.strip()]

    @property
    def catalog_id(self) -> str | None:
        found = _ID_PREFIX.match(self.paragraphs[0]) if self.doc else None
        return found.group("id") if found else None

    @property
    def proves(self) -> str:
        """The first paragraph without its ID prefix, in the table's style: no final full stop, and an
        ordinary first word lower-cased ("The ..." -> "the ...", "A 5xx" -> "a 5xx"; "HTTPS" stays)."""
        text = _ID_PREFIX.sub("", self.paragraphs[0], count=1) if self.doc else ""
        if re.match(r"[A-Z]([a-z]|\s)", text):
            text = text[0].lower() + text[1:]
        return text[:-1] if text.endswith(".") and not text.endswith("..") else text

    @property
    def needs(self) -> list[str]:
        return [m.group("what") for m in map(_NEEDS.match, self.paragraphs[1:]) if m]

    @property
    def targets(self) -> str:
        virtual_only = "virtual_only" in self.markers
        notes = [f"{self.boards} boards"] if self.boards > 1 else []
        notes += [f"{kind} installed" for kind in self.brokers if kind == "mosquitto"]
        if "needs_power_control" in self.markers and not virtual_only:
            notes.append("power control")
        notes += self.needs
        base = "virtual only" if virtual_only else "virtual, esp32"
        return f"{base} ({'; '.join(notes)})" if notes else base

    @property
    def sort_id(self) -> tuple[str, int] | None:
        """The first ID named, as (letter, number), for ordering: "B5-B8" -> ("B", 5)."""
        found = re.match(r"([A-Z])(\d+)", self.catalog_id or "")
        return (found.group(1), int(found.group(2))) if found else None

    @property
    def heading(self) -> str:
        lines = self.module_doc.strip().splitlines()
        return lines[0].strip().rstrip(".") if lines else ""


class _Collector:
    """A pytest plugin that keeps the collected items, before any deselection (-m, -k, --target)."""

    def __init__(self) -> None:
        self.items: list[pytest.Item] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.items = list(items)


def collect(paths: Sequence[Path] | None = None, root: Path = HARNESS_ROOT) -> list[Scenario]:
    """The scenarios under `paths` (default: root/tests_hil), one per test function, in collection order.

    `root` is pytest's rootdir, and its pytest.ini (when it has one) is the configuration, as for
    ``pytest tests_hil`` run there.
    """
    root = root.resolve()
    paths = [root / "tests_hil"] if paths is None else list(paths)
    ini = root / "pytest.ini"
    options = ["--collect-only", "-q", "-p", "no:cacheprovider", "--hil-progress=off", "--rootdir", str(root),
               *(["-c", str(ini)] if ini.exists() else []), *map(str, paths)]
    collector = _Collector()
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = pytest.main(options, plugins=[collector])
    if code != pytest.ExitCode.OK:
        raise CatalogError(f"collecting {', '.join(map(str, paths))} failed (pytest exit code {int(code)}):\n"
                           f"{output.getvalue()}")
    return _scenarios(collector.items, root)


def _scenarios(items: Iterable[pytest.Item], root: Path) -> list[Scenario]:
    by_function: dict[tuple[Path, str], list[pytest.Item]] = {}
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        by_function.setdefault((item.path, item.originalname), []).append(item)
    scenarios = []
    for (path, name), group in by_function.items():
        first = group[0]
        callspecs = [item.callspec for item in group if hasattr(item, "callspec")]
        only_broker = callspecs and all(set(c.params) == {"broker"} for c in callspecs)
        boards = first.get_closest_marker("boards")
        scenarios.append(Scenario(
            file=path.relative_to(root) if path.is_relative_to(root) else path,
            name=name,
            doc=inspect.cleandoc(first.function.__doc__ or ""),
            module_doc=inspect.cleandoc(first.module.__doc__ or "") if first.module else "",
            ids=() if only_broker else tuple(c.id for c in callspecs),
            markers=frozenset(m.name for m in first.iter_markers()),
            boards=int(boards.args[0]) if boards is not None and boards.args else 1,
            brokers=tuple(dict.fromkeys(str(c.params["broker"]) for c in callspecs if "broker" in c.params)),
            cases=len(group),
        ))
    return scenarios


def check(scenarios: Sequence[Scenario]) -> None:
    """Every scenario and every file has the docstring its row and its heading come from."""
    problems = [f"{s.file}::{s.name}: no docstring (its first paragraph is what the catalog says it proves)"
                for s in scenarios if not s.proves]
    problems += [f"{file}: no module docstring (its first line is the catalog's group heading)"
                 for file in dict.fromkeys(s.file for s in scenarios if not s.heading)]
    if problems:
        raise CatalogError("the scenario catalog needs docstrings:\n  " + "\n  ".join(problems))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _scenario_cell(s: Scenario) -> str:
    ids = ""
    if len(s.ids) > MAX_IDS:
        ids = "[...]"
    elif s.ids:
        ids = f"[{', '.join(s.ids)}]"
    cell = f"`{s.name}{ids}`"
    if len(s.ids) > MAX_IDS:
        cell += f" ({len(s.ids)} cases)"
    if "slow" in s.markers:
        cell += " (slow)"
    return _cell(f"{s.catalog_id} {cell}" if s.catalog_id else cell)


def _lowest_id(scenarios: Sequence[Scenario]) -> tuple[int, str, int]:
    ids = [s.sort_id for s in scenarios if s.sort_id is not None]
    return (0, *min(ids)) if ids else (1, "", 0)  # files without any ID after those with one


def render(scenarios: Sequence[Scenario]) -> str:
    """The markdown table: a heading row per group, then one row per scenario."""
    check(scenarios)
    groups: dict[str, list[Scenario]] = {}
    for s in scenarios:
        groups.setdefault(s.heading, []).append(s)
    known = [h for h in GROUP_ORDER if h in groups]
    order = known + [h for h in groups if h not in known]
    lines = ["| scenario (ID) | what it proves | targets |", "|---|---|---|"]
    for heading in order:
        by_file: dict[Path, list[Scenario]] = {}
        for s in groups[heading]:
            by_file.setdefault(s.file, []).append(s)
        files = sorted(by_file, key=lambda f: _lowest_id(by_file[f]))  # stable: ties keep collection order
        lines.append(f"| **{_cell(heading)}** ({', '.join(f'`{f.name}`' for f in files)}) | | |")
        lines += [f"| {_scenario_cell(s)} | {_cell(s.proves)} | {_cell(s.targets)} |"
                  for f in files for s in by_file[f]]
    return "\n".join(lines) + "\n"


def replace_table(text: str, table: str, where: str = "the file") -> str:
    """`text` with everything between the START and END markers replaced by `table`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start or text.count(START) != 1 or text.count(END) != 1:
        raise CatalogError(f"{where}: needs one {START} line and, after it, one {END} line around the table")
    return text[:start] + START + "\n" + table + text[end:]


def command(write: str | None = None, check: str | None = None) -> int:
    """``python -m harness catalog``: print the table, or write it into / check it against a file."""
    try:
        table = render(collect())
        if write is None and check is None:
            print(table, end="")
            return 0
        path = Path(write or check)
        text = path.read_text()
        updated = replace_table(text, table, str(path))
    except CatalogError as err:
        print(f"catalog: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the file to check or write into: it must exist, with the markers in it
        print(f"catalog: cannot read {err.filename}: {err.strerror} (give the README that holds the {START} and "
              f"{END} markers)", file=sys.stderr)
        return 2
    if check is not None:
        if updated != text:
            print(f"{path}: the scenario catalog is stale; run python -m harness catalog --write {path}",
                  file=sys.stderr)
            return 1
        print(f"{path}: the scenario catalog is up to date")
        return 0
    if updated != text:
        path.write_text(updated)
    print(f"{path}: {table.count(chr(10)) - 2} rows between {START} and {END}")
    return 0
