"""An asyncio event loop in a thread of its own, for the services the harness runs next to a test.

Test code blocks (Event.wait, serial reads); a server on the test thread's loop would starve. The embedded
broker and the firmware server each run on a `LoopThread`, and the test thread hands them coroutines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop running in its own thread; `loop_factory` makes the loop (uvloop's, say)."""

    def __init__(self, name: str,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> None:
        self._name = name
        self._loop_factory = loop_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self._name}: event loop is not running")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        loop = self._loop_factory()
        ready = threading.Event()
        thread = threading.Thread(target=self._run, args=(loop, ready), name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop and wait for its result (re-raising its exception here)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self._name}: operation did not finish within {timeout} s") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; leftover tasks are cancelled and the loop closed in its own thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._name}: event loop thread did not stop within {timeout} s")
        self._loop = self._thread = None

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            _drain(loop)
            loop.close()


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left so closing the loop leaves no pending task, executor thread or socket behind."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
