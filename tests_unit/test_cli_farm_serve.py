"""`python -m harness farm serve`: what it leaves behind, and a port already taken."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from harness.virtual import firmware


def _serve(tmpdir: Path, *args: str) -> subprocess.Popen[str]:
    firmware.build()  # the bench's boards run the default build; built here, not inside the command's deadline
    return subprocess.Popen([sys.executable, "-m", "harness", "farm", "serve", "--boards", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)})


def test_farm_serve_removes_its_boards_directory_when_it_stops(tmp_path: Path) -> None:
    """Without --dir the boards' flash files (4 MB each) go in a temporary directory, removed at Ctrl-C."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    bench = _serve(tmpdir)
    assert bench.stdout is not None
    lines = []
    for line in bench.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    assert [p.name[:10] for p in tmpdir.iterdir()] == ["hil-bench-"], lines
    bench.send_signal(signal.SIGINT)
    out, err = bench.communicate(timeout=30)
    assert bench.returncode == 0, out + err
    assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())


def test_farm_serve_on_a_power_port_in_use_names_it_and_leaves_nothing(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bench = _serve(tmpdir, "--power-port", str(port))
        out, err = bench.communicate(timeout=60)
    assert bench.returncode == 1, out + err
    assert f"a port is already in use (--power-port {port})" in err and "Traceback" not in err, err
    assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())
