"""Fixtures the unit tests of the harness's services share."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.virtual import firmware
from tests_unit.port_check_app import PortCheck


@pytest.fixture
def no_warnings_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails a test during which anything logged a warning or an error (in its set-up or call): a service
    that logs a traceback from one of its threads is broken even when the test's own checks pass."""
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")  # caplog.records is this phase only
    noisy = [f"{r.name}: {r.getMessage()}" for r in records if r.levelno >= logging.WARNING]
    assert not noisy, "warnings or errors were logged:\n" + "\n".join(noisy)


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port on 127.0.0.1 another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def port_check_exe() -> Path:
    """The host port's own test app (device/port/linux/test), built once."""
    return firmware.build_port_check()


@pytest.fixture
def port_check(port_check_exe: Path, tmp_path: Path) -> Iterator[PortCheck]:
    """port_check running on a fresh flash file, taking commands on stdin."""
    pc = PortCheck(port_check_exe, tmp_path)
    try:
        yield pc
    finally:
        pc.close()
