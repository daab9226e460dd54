"""Which target a session runs on, and which scenarios that target cannot run.

`--target` is pytest-embedded's own option; the harness registers it only when pytest-embedded is
not installed. `linux` (the default) is the virtual ESP32. On `esp32` the scenarios a real board
cannot do are deselected, each with its reason in the report.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import pytest

VIRTUAL_TARGET = "linux"
REAL_TARGETS = ("esp32",)


@dataclass(frozen=True)
class Requirement:
    marker: str
    reason: str


# What a marker needs that a real board (without extra equipment) does not have.
REAL_BOARD_LIMITS = (
    Requirement("virtual_only", "needs the virtual board (flash access or emulation a real ESP32 lacks)"),
    Requirement("needs_power_control", "needs power control (a relay or uhubctl), none configured"),
)


def add_target_option(parser: pytest.Parser) -> None:
    if importlib.util.find_spec("pytest_embedded") is not None:
        return  # pytest-embedded registers --target (and --port); reuse it
    parser.getgroup("hil").addoption(
        "--target", default=VIRTUAL_TARGET,
        help=f"where the scenarios run: {VIRTUAL_TARGET} (virtual ESP32, default) or esp32 (a real board)",
    )


def target_of(config: pytest.Config) -> str:
    target = config.getoption("--target", default=None) or VIRTUAL_TARGET
    return VIRTUAL_TARGET if target == "linux" else target


def deselect_for_target(config: pytest.Config, items: list[pytest.Item]) -> list[tuple[str, str]]:
    """Removes what the target cannot run; returns (test id, reason) for the report."""
    if target_of(config) == VIRTUAL_TARGET:
        return []
    kept, dropped = [], []
    for item in items:
        reason = next((r.reason for r in REAL_BOARD_LIMITS if item.get_closest_marker(r.marker)), None)
        (dropped if reason else kept).append((item, reason))
    if dropped:
        config.hook.pytest_deselected(items=[item for item, _ in dropped])
        items[:] = [item for item, _ in kept]
    return [(item.nodeid, reason) for item, reason in dropped]


def check_target_usable(config: pytest.Config) -> None:
    """A real target with no back-end or board fails the session at once, never falls back."""
    target = target_of(config)
    if target == VIRTUAL_TARGET or config.option.collectonly:
        return
    if target not in REAL_TARGETS:
        raise pytest.UsageError(f"--target {target}: unknown target; use {VIRTUAL_TARGET} or esp32")
    port = config.getoption("--port", default=None)
    if not port:
        raise pytest.UsageError(
            f"--target {target}: no board named. Connect an ESP32 and name its serial port with "
            "--port /dev/ttyUSB0 (or a glob such as '/dev/serial/by-id/*Espressif*', or "
            "rfc2217://host:port?ign_set_control for a shared board). This run does not fall back "
            "to the virtual board; omit --target to use it.")
    raise pytest.UsageError(
        f"--target {target} --port {port}: this version of the harness has no real-board back-end "
        "yet (docs/runner-setup.md will describe it); run without --target for the virtual board.")
