"""harness/virtual/host_abi.py against device/port/linux/src/host_board.h, which it mirrors.

host_board.h is parsed without compiling: its ``#define HOST_*`` constants (numbers and string literals)
and the constants of its enums (implicit values counted as C counts them). Every one must be in host_abi
under its name without ``HOST_``, with the same value, and host_abi must have nothing else: a constant
changed, added or removed on either side alone fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.virtual import host_abi

ROOT = Path(__file__).resolve().parents[1]
HOST_BOARD_H = ROOT / "device" / "port" / "linux" / "src" / "host_board.h"
PREFIX = "HOST_"
C_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)[ \t]+(.+?)\s*$", re.MULTILINE)  # object-like: name, space, value
ENUM = re.compile(r"\benum\s*\w*\s*\{(.*?)\}", re.DOTALL)


def _c_value(text: str, known: dict[str, int | str]) -> int | str:
    text = text.strip()
    if m := re.fullmatch(r'"((?:[^"\\]|\\.)*)"', text):
        return m.group(1)
    if text in known:
        return known[text]
    return int(text.rstrip("uUlL"), 0)


def c_constants(header: str) -> dict[str, int | str]:
    """HOST_* constants of a C header: object-like #defines and enum constants."""
    code = C_COMMENT.sub(" ", header)
    found: dict[str, int | str] = {}
    for name, value in DEFINE.findall(code):
        if name.startswith(PREFIX):
            found[name] = _c_value(value, found)
    for body in ENUM.findall(code):
        nxt = 0
        for member in filter(None, (m.strip() for m in body.split(","))):
            name, _, value = (part.strip() for part in member.partition("="))
            current = _c_value(value, found) if value else nxt
            assert isinstance(current, int), member
            if name.startswith(PREFIX):
                found[name] = current
            nxt = current + 1
    return found


def python_constants(module: object) -> dict[str, int | str]:
    """host_abi's constants, under their C names."""
    return {PREFIX + name: value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, int | str)}


def differences(c: dict[str, int | str], py: dict[str, int | str]) -> list[str]:
    out = []
    for name in sorted(c.keys() | py.keys()):
        if name not in py:
            out.append(f"{name} = {c[name]!r} in host_board.h has no {name[len(PREFIX):]} in host_abi.py")
        elif name not in c:
            out.append(f"host_abi.{name[len(PREFIX):]} = {py[name]!r} is not in host_board.h")
        elif c[name] != py[name]:
            out.append(f"{name}: host_board.h has {c[name]!r}, host_abi.py {py[name]!r}")
    return out


def test_host_abi_matches_host_board_h() -> None:
    c = c_constants(HOST_BOARD_H.read_text())
    assert differences(c, python_constants(host_abi)) == []
    # and the parser saw all of it (a header it half-reads would compare only that half)
    assert {"HOST_ENV_FLASH_FILE", "HOST_FC_WORDS", "HOST_EXIT_PANIC", "HOST_FLASH_ERASE"} <= c.keys()  # each kind
    assert len(c) >= 23, sorted(c)  # 8 environment names, 8 words + their count, 2 flash ops, 4 exit codes


def test_the_environment_names_are_the_hil_ones() -> None:
    envs = {name: value for name, value in python_constants(host_abi).items() if name.startswith("HOST_ENV_")}
    assert all(isinstance(v, str) and v == "HIL_" + n[len("HOST_ENV_"):] for n, v in envs.items()), envs


@pytest.mark.parametrize("path", ["harness/virtual/board.py", "tests_unit/test_host_port.py"])
def test_users_take_the_abi_from_host_abi(path: str) -> None:
    """No copy of a value is left where host_abi is meant to be used."""
    code = (ROOT / path).read_text()
    assert not re.findall(r'"HIL_(?:FLASH|APP|RESET|MAC|POWER|BOOT|MQTT|BLE)\w*"', code)
    assert not re.findall(r"^\s*(?:HOST_)?(?:EXIT|FC)_\w+\s*=", code, re.MULTILINE)


# --- the check itself: a change on one side alone is reported ---

@pytest.mark.parametrize(("change", "header_edit", "python_edit"), [
    ("exit code renumbered in C", ("HOST_EXIT_POWER_CUT 4", "HOST_EXIT_POWER_CUT 6"), None),
    ("exit code added in C", ("#define HOST_EXIT_TASK_WDT  5", "#define HOST_EXIT_TASK_WDT  5\n#define HOST_EXIT_X 9"),
     None),
    ("env name changed in C", ('"HIL_MAC"', '"HIL_BOARD_MAC"'), None),
    ("word inserted in the C enum", ("    HOST_FC_ERASES,", "    HOST_FC_ERASES,\n    HOST_FC_READS,"), None),
    ("word removed from the C enum", ("    HOST_FC_LAST_LEN,  /* and length */\n", ""), None),
    ("flash op renumbered in C", ("HOST_FLASH_ERASE = 2", "HOST_FLASH_ERASE = 4"), None),
    ("exit code renumbered in Python", None, ("EXIT_PANIC", 2)),
    ("constant added in Python", None, ("EXIT_BROWNOUT", 7)),
    ("constant removed in Python", None, ("FC_POWER_CUT", None)),
    ("env name changed in Python", None, ("ENV_MQTT_TRACE", "HIL_TRACE")),
])
def test_a_change_on_one_side_alone_is_reported(
    change: str, header_edit: tuple[str, str] | None, python_edit: tuple[str, int | str | None] | None,
) -> None:
    header = HOST_BOARD_H.read_text()
    py = python_constants(host_abi)
    if header_edit:
        old, new = header_edit
        assert header.count(old) == 1, old
        header = header.replace(old, new)
    if python_edit:
        name, value = python_edit
        if value is None:
            del py[PREFIX + name]
        else:
            py[PREFIX + name] = value
    assert differences(c_constants(header), py), f"{change} went unnoticed"
