"""What every service the harness runs for a test has in common: start(), stop(), a `with` block.

`ListeningService` adds the address part shared by the brokers and the firmware server: `host` is the
address put into URLs and certificates (the advertised one, for a service bound to 0.0.0.0 that a board
reaches through the LAN address), `port` is known once the service listens (port 0 picks a free one),
and `start()` is the same for all: a no-op once started, a port asked for explicitly is checked first (so a
clash names the port), and a start that fails is stopped again, leaving no thread, process or socket behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from harness.net import check_port_free


@contextlib.contextmanager
def undone_on_failure(undo: Callable[[], None]) -> Iterator[None]:
    """Runs `undo` when the block raises (anything, KeyboardInterrupt too), then lets the exception go on."""
    try:
        yield
    except BaseException:
        undo()
        raise


class Service:
    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ListeningService(Service):
    """Subclasses set `_host` (bind address), `_advertise` and `_port` (0 until known), and implement
    `_is_started()`, `_start()` (start listening) and `stop()`."""

    _host: str
    _advertise: str
    _port: int
    _error: type[Exception] = RuntimeError  # raised when the port is asked for too early

    @property
    def host(self) -> str:
        return self._advertise

    @property
    def port(self) -> int:
        if self._port == 0:
            raise self._error(f"{type(self).__name__}: the port is known only after start()")
        return self._port

    def start(self) -> Self:
        if self._is_started():
            return self
        if self._port:
            check_port_free(self._host, self._port, type(self).__name__)
        with undone_on_failure(self.stop):
            self._start()
        return self

    def _is_started(self) -> bool:
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError
