"""The README's scenario catalog: generated from tests_hil by pytest's collection, and never stale."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from harness import catalog
from harness.project import HARNESS_ROOT

README = HARNESS_ROOT / "README.md"


@pytest.fixture(scope="module")
def scenarios() -> list[catalog.Scenario]:
    return catalog.collect()


def _readme_table(text: str) -> str:
    start, end = text.index(catalog.START), text.index(catalog.END)
    return text[start + len(catalog.START) + 1:end]


def test_readme_table_is_the_generated_one(scenarios: list[catalog.Scenario]) -> None:
    table = catalog.render(scenarios)
    assert _readme_table(README.read_text()) == table, (
        "README.md's scenario catalog is stale: run `python -m harness catalog --write README.md` and commit it")


def test_every_collected_scenario_has_a_row(scenarios: list[catalog.Scenario]) -> None:
    """One row per test function of tests_hil, each named once; every parametrized case is in an id list."""
    table = catalog.render(scenarios)
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names))
    for s in scenarios:
        assert sum(f"`{s.name}`" in line or f"`{s.name}[" in line for line in table.splitlines()) == 1, s.name
    assert sum(s.cases for s in scenarios) == _collected_count()
    assert all(len(s.ids) == s.cases for s in scenarios if s.ids)


def _collected_count() -> int:
    found = []

    class Count:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            found.append(len(session.items))

    assert pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "--hil-progress=off", "--rootdir",
                        str(HARNESS_ROOT), "-c", str(HARNESS_ROOT / "pytest.ini"), str(HARNESS_ROOT / "tests_hil")],
                       plugins=[Count()]) == 0
    return found[0]


def test_the_command_checks_a_stale_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{catalog.START}\n| old | table |\n{catalog.END}\n\nafter\n")
    assert catalog.command(check=str(stale)) == 1
    assert "stale" in capsys.readouterr().err
    assert catalog.command(write=str(stale)) == 0
    assert catalog.command(check=str(stale)) == 0
    text = stale.read_text()
    assert text.startswith(f"# x\n\n{catalog.START}\n| scenario (ID) |") and text.endswith(f"{catalog.END}\n\nafter\n")


SAMPLE = {
    "test_first.py": '''
        """Sample group.

        More about the file, not in the heading.
        """
        import pytest


        @pytest.mark.parametrize("kind", ["a", "b"])
        def test_plain(kind):
            """A1: the first paragraph,
            over two lines | with a bar.

            A second paragraph, left out.

            Needs: special build.
            """


        @pytest.mark.virtual_only
        @pytest.mark.slow
        def test_virtual():
            """B5-B8: only on the virtual board."""


        @pytest.mark.boards(2)
        @pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
        def test_two_boards(broker):
            """HTTPS stays as it is; two boards and mosquitto."""


        @pytest.mark.parametrize("n", range(9))
        def test_many(n):
            """Nine cases..."""
    ''',
    "test_second.py": '''
        """Another group."""


        def test_other():
            """Other: not an ID, so it stays."""
    ''',
    "test_third.py": '''
        """Sample group."""
        import pytest


        @pytest.mark.needs_power_control
        def test_power():
            """A0: sorts this file first in its group."""
    ''',
}


def _sample(tmp_path: Path, files: dict[str, str]) -> list[catalog.Scenario]:
    package = tmp_path / f"sample_{uuid.uuid4().hex[:8]}"  # a fresh module name for each collection
    package.mkdir()
    (package / "__init__.py").write_text("")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: slow\n")
    for name, text in files.items():
        (package / name).write_text(textwrap.dedent(text).lstrip())
    return catalog.collect([package], root=tmp_path)


def test_rows_follow_the_docstrings_and_markers(tmp_path: Path) -> None:
    table = catalog.render(_sample(tmp_path, SAMPLE))
    assert table.splitlines() == [
        "| scenario (ID) | what it proves | targets |",
        "|---|---|---|",
        "| **Sample group** (`test_third.py`, `test_first.py`) | | |",
        "| A0 `test_power` | sorts this file first in its group | virtual, esp32 (power control) |",
        ("| A1 `test_plain[a, b]` | the first paragraph, over two lines \\| with a bar "
         "| virtual, esp32 (special build) |"),
        "| B5-B8 `test_virtual` (slow) | only on the virtual board | virtual only |",
        ("| `test_two_boards` | HTTPS stays as it is; two boards and mosquitto | virtual, esp32 (2 boards; "
         "mosquitto installed) |"),
        "| `test_many[...]` (9 cases) | nine cases... | virtual, esp32 |",
        "| **Another group** (`test_second.py`) | | |",
        "| `test_other` | other: not an ID, so it stays | virtual, esp32 |",
    ]


def test_a_scenario_without_a_docstring_is_an_error(tmp_path: Path) -> None:
    scenarios = _sample(tmp_path, {"test_bare.py": '''
        """Bare."""


        def test_without_docstring():
            pass
    ''', "test_no_module_doc.py": '''
        def test_documented():
            """Documented, in a file without a heading."""
    '''})
    with pytest.raises(catalog.CatalogError) as err:
        catalog.render(scenarios)
    message = str(err.value)
    assert "test_bare.py::test_without_docstring: no docstring" in message
    assert "test_no_module_doc.py: no module docstring" in message


def test_a_collection_error_is_reported(tmp_path: Path) -> None:
    with pytest.raises(catalog.CatalogError, match="exit code 2"):
        _sample(tmp_path, {"test_broken.py": "import no_such_module_anywhere\n"})


@pytest.mark.parametrize("text", [
    "no markers at all",
    f"{catalog.END}\n{catalog.START}\n",
    f"{catalog.START}\n{catalog.START}\n{catalog.END}\n",
])
def test_replace_table_needs_one_pair_of_markers(text: str) -> None:
    with pytest.raises(catalog.CatalogError, match="needs one"):
        catalog.replace_table(text, "| t |\n", "README.md")


def test_replace_table_keeps_the_rest() -> None:
    text = f"before\n{catalog.START}\nold\n{catalog.END}\nafter\n"
    assert catalog.replace_table(text, "new\n") == f"before\n{catalog.START}\nnew\n{catalog.END}\nafter\n"
