"""Fixtures the unit tests share."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def no_warnings_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if anything (a broker, a server, a link) logged a warning or an error during it: a
    service that works must work quietly, and a warning in a log is how a real problem first shows."""
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")  # caplog.records is this phase only
    noisy = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.WARNING]
    assert not noisy, "warnings or errors were logged:\n" + "\n".join(noisy)
