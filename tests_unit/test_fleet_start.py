"""harness.fleet.start: boards started a few at a time, and Ctrl-C while they start."""

from __future__ import annotations

import threading

import pytest

from harness.fleet.start import start_boards


def test_every_board_asked_for_is_started() -> None:
    made = iter(range(10))
    lock = threading.Lock()

    def factory() -> int:
        with lock:
            return next(made)
    assert sorted(start_boards(factory, 10, workers=3)) == list(range(10))


def test_ctrl_c_while_boards_start_starts_no_more_of_them() -> None:
    """The interrupt reaches the waiting thread (here: through the first start); the starts not yet begun are
    dropped, so the lab's or the test's stop does not wait for boards nobody wants any more."""
    calls = []

    def factory() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return object()
    with pytest.raises(KeyboardInterrupt):
        start_boards(factory, 20, workers=1)
    assert len(calls) < 20, "every queued board was started after Ctrl-C"
