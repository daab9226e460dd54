"""Builders for the commands of the protocol (docs/protocol.md), so scenarios name fields, not JSON keys.

Each returns the command as a dict for `DeviceLink.send()`; optional fields are left out unless given,
as the firmware then applies its Kconfig defaults.
"""

from __future__ import annotations

from typing import Any


def ota(url: str, request_id: str = "", **fields: Any) -> dict[str, Any]:
    """An update: `url` and optionally version, sha256, size, force, timeout_s, idle_timeout_s, retries."""
    return {"type": "ota", "id": request_id, "url": url, **fields}


def cancel(request_id: str | None = None) -> dict[str, Any]:
    """Stop the running update (the one named, or whichever runs)."""
    return {"type": "cancel"} if request_id is None else {"type": "cancel", "id": request_id}


def status() -> dict[str, Any]:
    """Publish the status now."""
    return {"type": "status"}


def reboot() -> dict[str, Any]:
    return {"type": "reboot"}


def check() -> dict[str, Any]:
    """Fetch the manifest now and update if it names a newer version."""
    return {"type": "check"}
