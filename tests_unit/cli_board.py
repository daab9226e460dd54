"""A virtual board run by the CLI (`python -m harness board run`), as a user starts one, for the CLI tests."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CliBoard:
    proc: subprocess.Popen[str]
    output: str = field(default="")  # what it printed, once stopped

    def stop(self) -> str:
        """Ctrl-C, as a user ends it (killed if it does not end); returns everything it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.output, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output, _ = self.proc.communicate()
        return self.output


@contextmanager
def cli_board(image: Path, broker_url: str, device_id: str, flash: Path, *options: str) -> Iterator[CliBoard]:
    """The board runs until the block ends (then it is stopped, whatever happened inside); `options` are more
    of board run's."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "board", "run", "--image", str(image), "--broker", broker_url,
         "--device-id", device_id, "--flash", str(flash), *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    board = CliBoard(proc)
    try:
        yield board
    finally:
        if proc.returncode is None:
            board.stop()
