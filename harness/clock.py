"""The one clock of a test's record.

Serial lines, MQTT messages (at the embedded broker's receipt, else at the link), HTTP requests and the
test's own start are all stamped with `now()`, so the timeline can merge them by time: CLOCK_MONOTONIC,
which the virtual board's firmware process reads too.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds on the record's clock (time.monotonic())."""
    return time.monotonic()
