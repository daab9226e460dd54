"""The virtual board's UART as a pty, so pyserial, pytest-embedded or a terminal can open it.

Everything the board prints goes to the pty; lines typed into it reach the firmware's console.
Nobody has to read it: writes never block, and output is dropped when the pty buffer is full, as
a real UART's bytes are lost when no one listens.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import tty
from collections.abc import Callable


class PtyUart:
    def __init__(self, name: str, on_input_line: Callable[[str], None]) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as on a wire
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._on_input_line = on_input_line
        self._stop_r, self._stop_w = os.pipe()
        self._pending = b""
        self._thread = threading.Thread(target=self._read_input, name=f"uart-{name}", daemon=True)
        self._thread.start()

    def write_line(self, text: str) -> None:
        try:
            os.write(self._master, text.encode() + b"\r\n")
        except BlockingIOError:
            pass  # nobody reads the port and its buffer is full: the line is lost, as on a UART
        except OSError as err:
            if err.errno not in (errno.EIO, errno.EBADF):
                raise

    def _read_input(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return
            self._pending += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                # With no firmware running to take it (RuntimeError from the board), the line is
                # dropped, like bytes sent to a chip that is resetting.
                with contextlib.suppress(RuntimeError):
                    self._on_input_line(line.decode(errors="replace"))

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            os.close(fd)
