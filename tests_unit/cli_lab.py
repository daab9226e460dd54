"""`python -m harness lab` run as a user starts it, for the live-view tests: its output read as it comes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """The pids under a process, from /proc (children, their children, ...)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(p) for p in children.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


@dataclass
class CliLab:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _ended: bool = False  # the reader's end of output was taken from the queue

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line (from the start) matching `pattern`; fails with everything printed so far."""
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                self._ended = True
                raise AssertionError(f"lab exited ({self.proc.wait()}) before printing {pattern!r}:\n"
                                     + "\n".join(self.lines))
            self.lines.append(line)
            if match := regex.search(line):
                return match
        raise AssertionError(f"lab did not print {pattern!r} within {timeout} s:\n" + "\n".join(self.lines))

    def descendants(self) -> list[int]:
        """The pids under the lab's process (the boards' firmware processes, a mosquitto)."""
        return descendants(self.proc.pid)

    def stop(self, timeout: float = 20.0) -> str:
        """Ctrl-C, as a user ends it (killed if it does not end); returns everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # its threads' stacks into the output: what it waits on
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while not self._ended:
            line = self._queue.get(timeout=5)
            if line is None:
                self._ended = True
            else:
                self.lines.append(line)
        return "\n".join(self.lines)


@contextmanager
def cli_lab(*args: str, background: bool = False, own_group: bool = False) -> Iterator[CliLab]:
    """The lab runs until the block ends (then it is stopped, whatever happened inside). `background`: started
    with SIGINT ignored, as a script's or CI job's `cmd &` starts it. `own_group`: in a process group of its own
    (pgid = its pid), as a shell starts a foreground job, for a Ctrl-C sent to the whole group."""
    command = [sys.executable, "-m", "harness", "lab", *args]
    if background:  # what a non-interactive shell does to `cmd &`: SIGINT ignored, kept across exec
        command = ["sh", "-c", 'trap "" INT; exec "$0" "$@"', *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, process_group=0 if own_group else None)
    lab = CliLab(proc)
    try:
        yield lab
    finally:
        if proc.returncode is None:
            lab.stop()
