"""The failure reasons of the protocol, held to one set in its three sources.

- docs/protocol.md: the reason table (the contract), parsed as markdown;
- harness.protocol.FAILURE_REASONS: what the harness's ProtocolChecker accepts;
- the firmware's name table in the ota_agent component's ota_reason.c, read without compiling: a regex takes the
  designated initialisers ``[OTA_REASON_X] = "x",`` and their string literals. The enum in ota_reason.h is
  read the same way, so a value added to the enum without a name (which would send "") fails too.

Any of the three gaining or losing a reason alone fails the test. The command types of commands.c's
table are held to the ones docs/protocol.md documents the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.protocol import FAILURE_REASONS, OTA_STATES

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL_MD = ROOT / "docs" / "protocol.md"
AGENT_SRC = ROOT / "device" / "components" / "ota_agent" / "src"
FIRMWARE_SOURCES = [*AGENT_SRC.glob("*.[ch]"), *(ROOT / "device" / "main").glob("*.[ch]")]
REASON_C = AGENT_SRC / "ota_reason.c"
REASON_H = AGENT_SRC / "ota_reason.h"
COMMANDS_C = AGENT_SRC / "commands.c"

NO_REASON = "OTA_REASON_NONE"  # success: in the enum and the table (as ""), not a protocol reason
NOT_A_REASON = "OTA_REASON_COUNT"  # the enum's size
C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
C_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def doc_table(markdown: str, header: list[str]) -> list[list[str]]:
    """The rows (cells, stripped) of the markdown table whose header row is exactly `header`."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if [c.strip() for c in line.strip().strip("|").split("|")] == header:
            rows = []
            for row in lines[i + 2:]:  # after the |---| line
                if not row.lstrip().startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with the header {header} in protocol.md")


def doc_reasons(markdown: str) -> set[str]:
    """Reasons of protocol.md's reason table: the first cell of each row, a `code` name."""
    reasons = set()
    for cells in doc_table(markdown, ["reason", "state", "meaning"]):
        m = re.fullmatch(r"`([a-z0-9_]+)`", cells[0])
        assert m, f"reason cell {cells[0]!r} is not one `name`"
        reasons.add(m.group(1))
    return reasons


def c_name_table(source: str) -> dict[str, str]:
    """ota_reason.c's NAMES table: enum constant -> string literal."""
    code = C_COMMENT.sub(" ", source)
    table = re.search(r"NAMES\s*\[[^\]]*\]\s*=\s*\{(.*?)\};", code, re.DOTALL)
    assert table, "no NAMES[...] = {...}; table in ota_reason.c"
    entries = re.findall(r'\[\s*(OTA_REASON_\w+)\s*\]\s*=\s*"([^"\\]*)"\s*,?', table.group(1))
    keys = [k for k, _ in entries]
    assert len(keys) == len(set(keys)), f"a reason is named twice: {keys}"
    return dict(entries)


def c_enum_members(header: str) -> list[str]:
    """The constants of ota_reason_t in ota_reason.h."""
    code = C_COMMENT.sub(" ", header)
    body = re.search(r"typedef\s+enum\s*\{(.*?)\}\s*ota_reason_t\s*;", code, re.DOTALL)
    assert body, "no typedef enum {...} ota_reason_t; in ota_reason.h"
    return re.findall(r"\b(OTA_REASON_\w+)\b\s*(?:=\s*\w+\s*)?(?:,|$)", body.group(1).strip())


def c_reasons(table: dict[str, str]) -> set[str]:
    return {name for key, name in table.items() if key != NO_REASON}


def contract_problems(doc: set[str], link: set[str], firmware: set[str]) -> list[str]:
    """What differs between the three sources, one line per reason missing somewhere."""
    sources = {"docs/protocol.md": doc, "harness.protocol.FAILURE_REASONS": link, "ota_reason.c": firmware}
    every = doc | link | firmware
    return [
        f"{reason!r} is missing from {', '.join(n for n, s in sources.items() if reason not in s)}"
        for reason in sorted(every)
        if any(reason not in s for s in sources.values())
    ]


def test_docs_link_and_firmware_have_the_same_failure_reasons() -> None:
    doc = doc_reasons(PROTOCOL_MD.read_text())
    firmware = c_reasons(c_name_table(REASON_C.read_text()))
    assert len(doc) >= 18  # the parser found the table, not an empty or half one
    assert contract_problems(doc, set(FAILURE_REASONS), firmware) == []


def test_every_enum_value_has_its_name_in_the_table() -> None:
    members = c_enum_members(REASON_H.read_text())
    table = c_name_table(REASON_C.read_text())
    assert members[0] == NO_REASON and members[-1] == NOT_A_REASON, members
    assert set(members) - {NOT_A_REASON} == set(table), "ota_reason_t and NAMES differ"
    assert table[NO_REASON] == ""
    for key, name in table.items():  # OTA_REASON_BAD_COMMAND <-> "bad_command": greppable both ways
        if key != NO_REASON:
            assert key == "OTA_REASON_" + name.upper(), (key, name)


def test_firmware_writes_reasons_through_the_enum_only() -> None:
    """No reason string is spelled out in the firmware beyond ota_reason.c (states and the http_status field
    share some names, so those are left out)."""
    shared = OTA_STATES | {"http_status"}
    reasons = c_reasons(c_name_table(REASON_C.read_text())) - shared
    literals = {
        path.name: sorted(set(C_STRING.findall(C_COMMENT.sub(" ", path.read_text()))) & reasons)
        for path in sorted(FIRMWARE_SOURCES) if path != REASON_C
    }
    assert {name: found for name, found in literals.items() if found} == {}
    # the "reason" field: OTA events get it from ota_event_add_reason(), the status from the stored record
    writers = sorted(path.name for path in FIRMWARE_SOURCES
                     if path.suffix == ".c" and '"reason"' in C_COMMENT.sub(" ", path.read_text()))
    assert writers == ["ota_events.c", "status.c"]


def test_commands_table_has_the_documented_command_types() -> None:
    code = C_COMMENT.sub(" ", COMMANDS_C.read_text())
    table = re.search(r"COMMANDS\s*\[\s*\]\s*=\s*\{(.*?)\};", code, re.DOTALL)
    assert table, "no COMMANDS[] = {...}; in commands.c"
    in_firmware = re.findall(r'\{\s*"(\w+)"\s*,\s*\w+\s*\}', table.group(1))
    commands_section = PROTOCOL_MD.read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r'"type":\s*"(\w+)"', commands_section))
    assert len(in_firmware) == len(set(in_firmware)), in_firmware
    assert set(in_firmware) == documented


# --- the checks themselves: each source gaining or losing a reason alone is reported ---

def _sources() -> tuple[str, set[str], str]:
    return PROTOCOL_MD.read_text(), set(FAILURE_REASONS), REASON_C.read_text()


def _problems(markdown: str, link: set[str], c_source: str) -> list[str]:
    return contract_problems(doc_reasons(markdown), link, c_reasons(c_name_table(c_source)))


def _without(text: str, line_pattern: str) -> str:
    """`text` less its first line matching `line_pattern` (which must be there)."""
    out = re.sub(rf"^{line_pattern}.*\n", "", text, count=1, flags=re.MULTILINE)
    assert out != text, line_pattern
    return out


def _with_before(text: str, anchor: str, line: str) -> str:
    """`text` with `line` inserted before `anchor` (which must be there)."""
    assert anchor in text, anchor
    return text.replace(anchor, f"{line}\n{anchor}", 1)


def _drop_doc_row(markdown: str, reason: str) -> str:
    return _without(markdown, rf"\| `{reason}` \|")


def _add_doc_row(markdown: str, reason: str) -> str:
    return _with_before(markdown, "| `boot_failed` |", f"| `{reason}` | failed | new |")


def _drop_c_entry(source: str, reason: str) -> str:
    return _without(source, rf'\s*\[OTA_REASON_{reason.upper()}\] = "{reason}",')


def _add_c_entry(source: str, reason: str) -> str:
    return _with_before(source, "    [OTA_REASON_BOOT_FAILED]", f'    [OTA_REASON_{reason.upper()}] = "{reason}",')


@pytest.mark.parametrize("change", [
    "docs_loses", "docs_gains", "link_loses", "link_gains", "firmware_loses", "firmware_gains", "firmware_renames",
])
def test_a_change_to_one_source_alone_is_reported(change: str) -> None:
    markdown, link, c_source = _sources()
    assert _problems(markdown, link, c_source) == []
    if change == "docs_loses":
        markdown = _drop_doc_row(markdown, "wrong_chip")
    elif change == "docs_gains":
        markdown = _add_doc_row(markdown, "disk_full")
    elif change == "link_loses":
        link = link - {"busy"}
    elif change == "link_gains":
        link = link | {"disk_full"}
    elif change == "firmware_loses":
        c_source = _drop_c_entry(c_source, "tls_failed")
    elif change == "firmware_gains":
        c_source = _add_c_entry(c_source, "disk_full")
    else:
        c_source = c_source.replace('"idle_timeout"', '"idle_time_out"')
    problems = _problems(markdown, link, c_source)
    assert problems, f"{change} went unnoticed"
    assert len(problems) <= 2
