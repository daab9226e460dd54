"""A board's serial output as timestamped lines, with pytest-embedded style ``expect``.

``expect`` consumes: each call searches from just after the previous match, so a test reads the
console forward, as it would on a real UART. Waiting is event driven, with a deadline.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import clock


@dataclass
class SerialLine:
    t: float  # clock.now() when the line arrived
    text: str


class ExpectTimeout(AssertionError):
    """No line matched before the deadline; the message shows what the console said."""


class SerialLog:
    def __init__(self, name: str, on_line: Callable[[SerialLine], None] | None = None) -> None:
        self.name = name
        self.lines: list[SerialLine] = []
        self._cursor = 0
        self._changed = threading.Condition()
        self._on_line = on_line
        self._listeners: list[Callable[[SerialLine], None]] = []

    def add(self, text: str) -> None:
        line = SerialLine(clock.now(), text)
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()
        if self._on_line is not None:
            self._on_line(line)
        for listener in list(self._listeners):
            listener(line)

    def add_listener(self, listener: Callable[[SerialLine], None]) -> None:
        """Call `listener(line)` for every line from now on, in the thread that read it (the live view's
        serial tail); keep it quick, it holds up the board's reader."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[SerialLine], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def mark(self) -> int:
        """The index the next expect() starts from after skip_to(mark)."""
        with self._changed:
            return len(self.lines)

    def skip_to_end(self) -> None:
        """Forgets everything printed so far: the next expect() sees only new lines."""
        with self._changed:
            self._cursor = len(self.lines)

    def expect(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                while self._cursor < len(self.lines):
                    match = regex.search(self.lines[self._cursor].text)
                    self._cursor += 1
                    if match:
                        return match
                self._check_alive(regex)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ExpectTimeout(self._timeout_message(regex, timeout))
                self._changed.wait(remaining)

    def _check_alive(self, regex: re.Pattern[str]) -> None:
        """Called under the lock while expect() waits: raise to end the wait at once (a lost port)."""

    def _timeout_message(self, regex: re.Pattern[str], timeout: float) -> str:
        tail = "\n".join(f"    {line.text}" for line in self.lines[-15:])
        return f"{self.name}: no serial line matched {regex.pattern!r} within {timeout:g} s. Last lines:\n{tail}"

    def tail(self, count: int = 30) -> list[str]:
        with self._changed:
            return [line.text for line in self.lines[-count:]]
