"""Power control for real boards: a USB hub port switched by uhubctl, or any relay command.

A back-end is named by a spec string, on the command line (``--hil-power``) or per board in the board
inventory (``power = "..."``):

    uhubctl:<hub location>:<port>     e.g. ``uhubctl:1-1.4:2`` (``uhubctl`` lists hubs and ports)
    command:<command with {action}>   e.g. ``command:usbrelay RELAY1_1={state}`` or
                                      ``command:/opt/lab/relay.sh 3 {action}``

``{action}`` becomes ``off`` or ``on``, ``{state}`` becomes ``0`` or ``1``. Commands run without a shell.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from typing import Protocol

COMMAND_TIMEOUT_S = 15.0


class PowerControlError(RuntimeError):
    pass


class PowerControl(Protocol):
    def off(self) -> None: ...

    def on(self) -> None: ...


class _Switch:
    """off() and on() through one _switch(action) a back-end provides."""

    def _switch(self, action: str) -> None:
        raise NotImplementedError

    def off(self) -> None:
        self._switch("off")

    def on(self) -> None:
        self._switch("on")


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise PowerControlError(f"{what}: {argv[0]!r} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise PowerControlError(f"{what}: {shlex.join(argv)} did not finish in {COMMAND_TIMEOUT_S:g} s") from None
    if result.returncode != 0:
        raise PowerControlError(
            f"{what}: {shlex.join(argv)} exited {result.returncode}: {(result.stderr or result.stdout).strip()[-500:]}"
        )


@dataclass(frozen=True)
class UhubctlPower(_Switch):
    """A board powered from a hub port with per-port power switching (uhubctl -l LOCATION -p PORT)."""

    location: str
    port: str

    def _switch(self, action: str) -> None:
        _run(["uhubctl", "-l", self.location, "-p", self.port, "-a", action], f"power {action} ({self})")

    def __str__(self) -> str:
        return f"uhubctl:{self.location}:{self.port}"


@dataclass(frozen=True)
class CommandPower(_Switch):
    """A relay (or anything else) switched by a command template with {action} or {state}."""

    template: str

    def _switch(self, action: str) -> None:
        argv = [part.format(action=action, state="1" if action == "on" else "0") for part in shlex.split(self.template)]
        _run(argv, f"power {action} ({self})")

    def __str__(self) -> str:
        return f"command:{self.template}"


def parse_power(spec: str | None) -> PowerControl | None:
    """A back-end from its spec string (see the module doc); None for None or an empty string."""
    if not spec:
        return None
    kind, _, rest = spec.partition(":")
    if kind == "uhubctl":
        location, _, port = rest.rpartition(":")
        if not location or not port:
            raise ValueError(f"power spec {spec!r}: expected uhubctl:<hub location>:<port>, e.g. uhubctl:1-1.4:2")
        return UhubctlPower(location, port)
    if kind == "command":
        if "{action}" not in rest and "{state}" not in rest:
            raise ValueError(f"power spec {spec!r}: the command needs {{action}} (off/on) or {{state}} (0/1)")
        return CommandPower(rest)
    raise ValueError(f"power spec {spec!r}: expected uhubctl:<location>:<port> or command:<command with {{action}}>")
