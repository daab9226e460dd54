"""Every request the firmware server saw, as the test thread reads it and waits on it."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

from harness.fwserver.faults import Artifact


@dataclass
class RequestRecord:
    """One HTTP request as the server saw it. `status` and `t_end` are None until they are known.

    `bytes_sent` counts body bytes handed to the socket; `client_hung_up` is True when the client left
    before the response ended. Loopback socket buffers hold megabytes, so a client that leaves after
    the whole body was buffered is not seen leaving: stall or throttle to observe a hang-up reliably.
    Times are harness.clock's, comparable with the link's Message.t.
    """

    method: str
    path: str
    range: str | None
    client: str
    t_start: float
    artifact: str | None = None  # Artifact.path of the artifact this request belongs to (hops included)
    status: int | None = None
    bytes_sent: int = 0
    t_end: float | None = None
    client_hung_up: bool = False

    @property
    def completed(self) -> bool:
        return self.t_end is not None

    @property
    def duration(self) -> float | None:
        return None if self.t_end is None else self.t_end - self.t_start


class RequestLog:
    """Thread-safe request log: written on the server loop, read and awaited from the test thread."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._changed = threading.Condition()

    def begin(self, record: RequestRecord) -> None:
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def update(self, record: RequestRecord, **changes: object) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(record, key, value)
            self._changed.notify_all()

    def snapshot(self, artifact: Artifact | None = None) -> list[RequestRecord]:
        """Copies, so a test never sees a record change under it."""
        with self._changed:
            return [dataclasses.replace(r) for r in self._records if _belongs(r, artifact)]

    def wait_for(
        self, index: int, timeout: float, artifact: Artifact | None = None, completed: bool = True
    ) -> RequestRecord:
        """Wait for request number `index` (0-based, counting only `artifact`'s requests if given)."""
        deadline = time.monotonic() + timeout

        def ready() -> bool:
            matching = [r for r in self._records if _belongs(r, artifact)]
            return len(matching) > index and (matching[index].completed or not completed)

        with self._changed:
            if not self._changed.wait_for(ready, max(0.0, deadline - time.monotonic())):
                raise TimeoutError(self._timeout_message(index, timeout, artifact, completed))
            matching = [r for r in self._records if _belongs(r, artifact)]
            return dataclasses.replace(matching[index])

    def _timeout_message(self, index: int, timeout: float, artifact: Artifact | None, completed: bool) -> str:
        what = f"request #{index}" + (f" for {artifact.path}" if artifact else "")
        lines = [f"  {_describe(r)}" for r in self._records] or ["  (no requests at all)"]
        state = "completed " if completed else ""
        return f"no {state}{what} within {timeout} s; requests seen:\n" + "\n".join(lines)


def _belongs(record: RequestRecord, artifact: Artifact | None) -> bool:
    return artifact is None or record.artifact == artifact.path


def _describe(r: RequestRecord) -> str:
    end = "in progress" if r.t_end is None else f"{r.t_end - r.t_start:.3f} s"
    hung = " client hung up" if r.client_hung_up else ""
    return f"{r.method} {r.path} range={r.range} -> {r.status} {r.bytes_sent} B {end} from {r.client}{hung}"
