"""The board farm end to end, on one machine: nothing mocked.

A virtual bench (``python -m harness farm serve``: two virtual ESP32 boards, each behind its own RFC2217
port, and their power switch), ``labgrid-coordinator`` and ``labgrid-exporter`` (publishing the bench with the
configuration the bench wrote) run as separate processes; the places are made with ``labgrid-client``. Then
``pytest tests_hil -n 2 --target esp32 --hil-farm ...`` runs catalog rows over the two places; a killed
worker leaves no place acquired; a place someone else holds is reported with its holder. labgrid is a dev
dependency (pyproject.toml): without it this fails rather than skips.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
QUIET = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
PLACES = ("vb-1", "vb-2")
ROWS = "test_update_to_new_version or test_same_version_is_refused or test_downgrade_is_refused_unless_forced"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.1):
    """Polls a condition until it holds (its value is returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(interval)


@dataclass
class Process:
    """A farm process, its output collected by a thread (so that a full pipe never blocks it)."""

    name: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start(name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Process:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    return Process(name, proc)


@dataclass
class Farm:
    address: str
    coordinator: Process
    exporter: Process
    bench: Process
    device: Path

    def client(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({"LG_USERNAME": user} if user else {})}
        return subprocess.run([str(BIN / "labgrid-client"), "-x", self.address, *args], capture_output=True,
                              text=True, timeout=30, check=False, env=env)

    def acquired(self) -> dict[str, str]:
        """place -> who holds it ("None" when free), from labgrid-client places -v."""
        out = self.client("-v", "places").stdout
        return dict(re.findall(r"Place '([^']+)':(?:.|\n)*?acquired: (\S+)", out))

    def pytest(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", *QUIET, "--target", "esp32", "--hil-farm",
                               self.address, "--hil-farm-places", "vb-*", "--app-path", str(self.device),
                               "--hil-host-ip", "127.0.0.1", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    work = tmp_path_factory.mktemp("farm")
    device = work / "device"
    made = subprocess.run([sys.executable, "-m", "harness", "farm", "builds", str(device), "--variant", "default"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0 and (device / "build_esp32_default" / "flasher_args.json").exists(), made.stderr
    address = f"127.0.0.1:{_free_port()}"
    started: list[Process] = []
    try:
        bench = _start("bench", [sys.executable, "-m", "harness", "farm", "serve", "--boards", "2", "--name", "vb",
                                 "--exporter-config", str(work / "exporter.yaml"), "--dir", str(work / "bench")],
                       ROOT)
        started.append(bench)
        coordinator = _start("coordinator", [str(BIN / "labgrid-coordinator"), "-l", address], work)
        started.append(coordinator)
        _wait(lambda: "ready" in bench.lines or bench.proc.poll() is not None, 30, "the bench starts")
        assert bench.proc.poll() is None, bench.output
        host, port = address.split(":")

        def listening() -> bool:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                return False

        _wait(listening, 30, "the coordinator listens")
        exporter = _start("exporter", [str(BIN / "labgrid-exporter"), "-c", address, "-n", "bench1",
                                       str(work / "exporter.yaml")], work)
        started.append(exporter)
        farm = Farm(address, coordinator, exporter, bench, device)
        for place in PLACES:
            for args in (("create",), ("add-match", f"bench1/{place}/*")):
                result = farm.client("-p", place, *args)
                assert result.returncode == 0, result.stdout + result.stderr
        _wait(lambda: all(f"bench1/{p}/NetworkSerialPort" in farm.client("resources").stdout for p in PLACES), 30,
              "the exporter publishes both boards")
        yield farm
    finally:
        for process in reversed(started):
            process.stop()


def test_catalog_rows_over_two_places_with_two_workers(farm: Farm) -> None:
    """Both places used (one per worker), each test's place released after it, everything released at the end."""
    result = farm.pytest("tests_hil", "-n", "2", "-k", ROWS, "-v")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "4 passed" in output  # A1 twice (the second at a chip's flash pace), same version, downgrade
    assert "vb-1 (free), vb-2 (free)" in output  # the header: the places and who holds them
    acquisitions = re.findall(r"(vb-\d): place acquired by \S+/\S+\.hil-[0-9a-f]{8}-(gw\d)", farm.coordinator.output)
    assert {place for place, _ in acquisitions} == set(PLACES), farm.coordinator.output[-3000:]
    assert {worker for _, worker in acquisitions} == {"gw0", "gw1"}
    assert farm.acquired() == {"vb-1": "None", "vb-2": "None"}


KILLED = '''
import os
import signal

from harness.farm import pytest_farm


def test_worker_killed_mid_test(board):
    """The worker dies holding its place; its agent (which sees its stdin close) releases it."""
    os.kill(os.getpid(), signal.SIGKILL)


def test_worker_and_agent_killed_mid_test(board, request):
    """The worker and its agent die; the xdist controller releases the place (pytest_testnodedown)."""
    os.kill(pytest_farm.client(request.config)._proc.pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_killed_worker_leaves_no_place_acquired(farm: Farm, tmp_path: Path) -> None:
    (tmp_path / "test_killed.py").write_text(KILLED)
    result = farm.pytest(str(tmp_path / "test_killed.py"), "--rootdir", str(tmp_path), "-n", "1", "-p", "no:randomly")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert output.count("crashed while running") >= 2, output[-4000:]
    _wait(lambda: farm.acquired() == {"vb-1": "None", "vb-2": "None"}, 15, "every place released")
    assert re.search(r"labgrid: released vb-\d, still held by worker gw\d when it went down", output), output[-4000:]


POWER = '''
def test_power_cut_through_labgrid(board, link):
    since = link.cursor()
    board.power_cut()
    board.expect(r"^rst:0x1 \\(POWERON_RESET\\)", timeout=20)
    link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since, timeout=30)
'''


def test_power_goes_through_the_places_power_port(farm: Farm, tmp_path: Path) -> None:
    """A place with a NetworkPowerPort has power control: labgrid's NetworkPowerDriver switches the bench."""
    (tmp_path / "test_power.py").write_text(POWER)
    result = farm.pytest(str(tmp_path / "test_power.py"), "--rootdir", str(tmp_path))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_places_held_by_someone_else_are_reported_with_the_holder(farm: Farm, tmp_path: Path) -> None:
    for place in PLACES:
        held = farm.client("-p", place, "acquire", user="alice")
        assert held.returncode == 0, held.stdout + held.stderr
    try:
        (tmp_path / "test_one.py").write_text("def test_one(board):\n    pass\n")
        result = farm.pytest(str(tmp_path / "test_one.py"), "--rootdir", str(tmp_path), "--hil-farm-timeout", "1")
        output = result.stdout + result.stderr
        assert result.returncode == 1, output[-3000:]
        assert re.search(r"no 1 free labgrid place\(s\) matching 'vb-\*' on \S+ within 1 s: "
                         r"vb-1 \(acquired by \S+/alice\), vb-2 \(acquired by \S+/alice\)", output), output[-3000:]
        assert "release-from" in output
    finally:
        for place in PLACES:
            farm.client("-p", place, "release", user="alice")
    assert farm.acquired() == {"vb-1": "None", "vb-2": "None"}


def test_usage_errors_name_the_fix(farm: Farm, tmp_path: Path) -> None:
    (tmp_path / "test_one.py").write_text("def test_one(board):\n    pass\n")
    nothing = farm.pytest(str(tmp_path / "test_one.py"), "--rootdir", str(tmp_path), "--hil-farm-places", "lab-*")
    assert nothing.returncode == 4
    assert "no labgrid place matches 'lab-*' with a board of target esp32 (places there: vb-1, vb-2)" in nothing.stderr
    assert "labgrid-client -x ADDRESS -p NAME create" in nothing.stderr
    gone = subprocess.run([sys.executable, "-m", "pytest", *QUIET, str(tmp_path / "test_one.py"), "--rootdir",
                           str(tmp_path), "--target", "esp32",
                           "--hil-farm", f"127.0.0.1:{_free_port()}", "--app-path", str(farm.device)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert gone.returncode == 4
    assert "cannot reach the labgrid coordinator at 127.0.0.1:" in gone.stderr and "labgrid-coordinator" in gone.stderr
    virtual = farm.pytest(str(tmp_path / "test_one.py"), "--rootdir", str(tmp_path), "--target", "linux")
    assert virtual.returncode == 4 and "add --target esp32" in virtual.stderr
