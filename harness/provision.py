"""Provisioning over the serial console, the same way for virtual and real boards.

Values go in with `config set`, persist in NVS, and apply after a `reboot`. Secret values are
never written to a log or a report: failures name the key, not the value.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.boards.base import Board
from harness.masking import MASK, is_secret_key

CONSOLE_READY = r"^hil>$"


def provision(board: Board, settings: Mapping[str, str | int | bool], timeout: float = 10.0) -> None:
    """Sets each key on the console, then reboots the board so the values apply."""
    board.expect(CONSOLE_READY, timeout)
    for key, value in settings.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if any(c.isspace() for c in text):
            raise ValueError(f"provisioning {key}: values must not contain spaces")
        board.write(f"config set {key} {text}")
        reply = board.expect(r"^(OK|ERROR)\b.*", timeout)
        if reply.group(1) == "ERROR":
            shown = MASK if is_secret_key(key) else text
            raise AssertionError(f"{board.name}: 'config set {key} {shown}' failed: {reply.group(0)}")
    board.write("reboot")


def ca_cert_value(pem: str) -> str:
    """A CA certificate as the firmware's ota_ca_cert takes it: the PEM body on one line."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    body = [line for line in lines if line and not line.startswith("-----")]
    if not body or not lines[0].startswith("-----BEGIN CERTIFICATE"):
        raise ValueError("expected one PEM certificate (-----BEGIN CERTIFICATE----- ...)")
    return "".join(body)
