"""port_check (device/port/linux/test/port_check.c) as the host-port tests drive it: one process with its stdin
open, commands in one line at a time, every output line kept and waited on with a deadline."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.formats.app_image import build_virtual_image
from harness.virtual import firmware
from harness.virtual.board import VirtualBoard, create_flash
from harness.virtual.flash import Flash

CSV = (firmware.DEVICE_DIR / "partitions.csv").read_text()
WAIT = 10.0
RUNNING_APP_OFFSET = 0x20000  # ota_0: the partition port_check is told it was booted from


class PortCheck:
    """port_check with its stdin open: commands go in one line at a time, every output line is kept."""

    def __init__(
        self, exe: Path, tmp_path: Path, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> None:
        """`prefix`: a command that runs port_check (its argv follows), e.g. in a namespace of its own."""
        self.flash_path = flash = tmp_path / "flash.bin"
        Flash.create(flash, CSV).close()
        self.proc = subprocess.Popen(
            [*prefix, str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace",
            env={"HIL_FLASH_FILE": str(flash), "HIL_APP_OFFSET": hex(RUNNING_APP_OFFSET), **(env or {})},
        )
        self.lines: list[str] = []
        self.last_index = 0  # just after the line the last expect() matched
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True, name="port_check-stdout")
        self._reader.start()
        self.expect(r"^port_check>$")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def send(self, command: str) -> int:
        """Sends one command; returns the index of the next output line, for expect(since=...)."""
        with self._changed:
            cursor = len(self.lines)
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return cursor

    def expect(self, pattern: str, since: int = 0, timeout: float = WAIT) -> re.Match[str]:
        """The first output line from index `since` on that matches `pattern`, waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            index = since
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        self.last_index = index
                        return match
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = "\n".join(self.lines[since:][-60:])
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s; output:\n{tail}")
                self._changed.wait(left)

    def run_lines(self, command: str, timeout: float = WAIT) -> list[str]:
        """Runs a command to its prompt; returns the lines it printed."""
        start = self.send(command)
        self.expect(r"^port_check>$", since=start, timeout=timeout)
        with self._changed:
            return self.lines[start:self.last_index]

    def run(self, command: str, timeout: float = WAIT) -> dict[str, str]:
        """Runs a command to its prompt; returns the key=value pairs it printed (later ones win)."""
        return values(self.run_lines(command, timeout))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def values(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        found.update(re.findall(r"(\w+)=(\S*)", line))
    return found


@contextmanager
def port_check_board(exe: Path, tmp_path: Path, name: str) -> Iterator[VirtualBoard]:
    """A virtual board running port_check as its app, at its prompt (stopped when the block ends)."""
    create_flash(tmp_path / "flash.bin", CSV)
    board = VirtualBoard(name, tmp_path / "flash.bin", tmp_path)
    board.flash(build_virtual_image(exe.read_bytes(), version="0.0.1-check", project_name="port_check"))
    board.power_on()
    try:
        board.expect(r"^port_check>$", timeout=15)
        yield board
    finally:
        board.stop()
