"""Debian's mosquitto as a subprocess of the harness, for what amqtt cannot serve (MQTT 5, interop)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from harness.broker.interface import BrokerError
from harness.broker.probe import mqtt_probe
from harness.net import PortInUseError, format_url, free_port, local_address
from harness.service import ListeningService


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return found


class MosquittoBroker(ListeningService):
    """Debian's mosquitto as a subprocess, for MQTT 5, keepalive and interop scenarios amqtt cannot serve.

    mosquitto cannot bind port 0 (`listener 0 X` makes a unix socket), so a free port is probed and the
    start retried on the rare race. `max_queued_messages 0`: the default (1000) silently drops QoS 1
    messages to a slow Python subscriber.
    """

    _ATTEMPTS = 3
    _error = BrokerError

    def __init__(
        self,
        host: str = "127.0.0.1",
        executable: str | None = None,
        extra_config: Sequence[str] = (),
        start_timeout: float = 5.0,
        advertise_host: str | None = None,
        port: int = 0,
    ) -> None:
        self._host = host
        self._advertise = advertise_host or local_address(host)
        self._executable = executable or find_mosquitto()
        self._extra_config = list(extra_config)
        self._start_timeout = start_timeout
        self._port = port  # 0: a free one is picked
        self._dir: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: list[str] = []
        self._running_line = threading.Event()
        self._output_ended = threading.Event()  # its stderr reached EOF: the process is ending

    @property
    def url(self) -> str:
        return format_url("mqtt", self._advertise, self.port)

    @property
    def receipts(self) -> None:
        return None  # a separate process: messages are timed where the link receives them

    @property
    def pid(self) -> int | None:
        """The mosquitto process id while one was started and not stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """The mosquitto process is alive (False after stop(), kill() or a crash)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def config_path(self) -> Path | None:
        """The generated mosquitto.conf while the broker runs (removed with its temp dir on stop)."""
        return self._dir / "mosquitto.conf" if self._dir else None

    @property
    def output(self) -> list[str]:
        """mosquitto's log lines so far (diagnostics for a failing test)."""
        return list(self._output)

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self._stop_process()
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="harness-mosquitto-"))
        self._launch(self._port)
        self._wait_ready()

    def kill(self) -> None:
        """SIGKILL mosquitto, as a crash would: clients see their connections reset. stop() still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)

    def stop(self) -> None:
        self._stop_process()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __repr__(self) -> str:
        return f"MosquittoBroker({self._host}:{self._port or '?'}, {'running' if self._proc else 'stopped'})"

    def _is_started(self) -> bool:
        return self._proc is not None

    def _start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="harness-mosquitto-"))
        self._start_with_retries()

    def _start_with_retries(self) -> None:
        # a port asked for, or the one an earlier start bound (clients have its URL): that one or an error;
        # else a free one, another on the race where something takes it between the probe and mosquitto's bind
        fixed = self._port
        for attempt in range(self._ATTEMPTS):
            self._launch(fixed or free_port(self._host))
            try:
                self._wait_ready()
                return
            except PortInUseError:
                self._stop_process()
                if fixed or attempt == self._ATTEMPTS - 1:
                    raise

    def _launch(self, port: int) -> None:
        assert self._dir is not None
        config = self._dir / "mosquitto.conf"
        lines = [
            f"listener {port} {self._host}",
            "allow_anonymous true",
            "max_queued_messages 0",
            "persistence false",
            # mosquitto leaves Nagle's algorithm on by default: a forwarded message that follows a PUBACK on
            # the same connection would wait ~40 ms for the client's delayed ACK
            "set_tcp_nodelay true",
            "log_dest stderr",  # stderr is unbuffered; stdout would hold the "running" line back
            *self._extra_config,
        ]
        config.write_text("\n".join(lines) + "\n")
        self._port = port
        self._output.clear()
        self._running_line.clear()
        self._output_ended.clear()
        self._proc = subprocess.Popen(
            [self._executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # a reader thread drains the pipe (a full pipe would block mosquitto) and signals readiness
        self._reader = threading.Thread(target=self._read_output, args=(self._proc,), daemon=True,
                                        name=f"mosquitto-{port}-log")
        self._reader.start()

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._output.append(line.rstrip("\n"))
            if " running" in line:
                self._running_line.set()
        self._output_ended.set()
        self._running_line.set()  # EOF: the process ended, wake the waiter to look at its exit

    def _wait_ready(self) -> None:
        assert self._proc is not None
        self._running_line.wait(self._start_timeout)
        if self._output_ended.is_set():
            # it is exiting, but may not have been reaped yet: poll() would still say None
            try:
                self._proc.wait(self._start_timeout)
            except subprocess.TimeoutExpired:
                pass
        if self._proc.poll() is not None:
            log = self._log()
            if "Address already in use" in log:
                raise PortInUseError(f"mosquitto: port {self._port} on {self._host} is already in use; stop the "
                                     f"process that holds it or leave port=0 for a free one:\n{log}")
            raise BrokerError(f"mosquitto exited with code {self._proc.returncode}:\n{log}")
        try:
            code = mqtt_probe(local_address(self._host), self._port, timeout=self._start_timeout)
        except OSError as exc:
            raise BrokerError(f"mosquitto on {self.url} does not answer MQTT ({exc}):\n{self._log()}") from exc
        if code != 0:
            raise BrokerError(f"mosquitto on {self.url} refused an anonymous CONNECT (code {code})")

    def _log(self) -> str:
        return "\n".join(self._output)

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
