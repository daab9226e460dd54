"""A virtual bench: virtual ESP32 boards in one long-running process, exported to a labgrid farm.

``python -m harness farm serve --boards 2 --exporter-config exporter.yaml`` runs each board behind its own
RFC2217 port (harness/farm/virtual_esp32.py) and one HTTP power switch for all of them, and writes the
labgrid exporter configuration that publishes them: per board a group (its name) with a
``NetworkSerialPort`` (the RFC2217 port) and a ``NetworkPowerPort`` (model ``simplerest``). ``labgrid-exporter
exporter.yaml`` then publishes the virtual boards exactly as USB boards shared with ``esp_rfc2217_server``
are published, and a place matching ``*/<name>/*`` is one board. The boards outlive any test: a run
acquires a place, flashes the board over RFC2217 with esptool, resets it through RTS and releases it.

The power switch: ``GET /<board>/power/1`` and ``/0`` switch, ``GET /<board>/power`` answers ``1`` or ``0``
(the URL labgrid's simplerest back-end builds from ``host: http://.../<board>/power/{value}``).
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from harness.farm.virtual_esp32 import VirtualEsp32
from harness.virtual.flash import CHIP_TIMING, FlashTiming


@dataclass
class BenchBoard:
    name: str
    esp: VirtualEsp32
    power_url: str  # simplerest's host template, with {value}


class VirtualBench:
    """`count` virtual boards named <prefix>-1 ... on `host`, with an HTTP power switch."""

    def __init__(self, workdir: Path, count: int = 2, prefix: str = "vb", host: str = "127.0.0.1",
                 first_port: int = 0, power_port: int = 0, flash_timing: FlashTiming | None = CHIP_TIMING) -> None:
        self.workdir = Path(workdir)
        self.host = host
        self.boards: dict[str, BenchBoard] = {}
        self._power = ThreadingHTTPServer((host, power_port), self._handler())
        self._power.daemon_threads = True
        power_host = f"[{host}]" if ":" in host else host
        for i in range(1, count + 1):
            name = f"{prefix}-{i}"
            esp = VirtualEsp32(self.workdir / name, mac=f"240ac4f0{i:04x}", name=name, host=host,
                               port=first_port + i - 1 if first_port else 0, flash_timing=flash_timing)
            url = f"http://{power_host}:{self._power.server_address[1]}/{name}/power/{{value}}"
            self.boards[name] = BenchBoard(name, esp, url)
        self._thread = threading.Thread(target=self._power.serve_forever, name="bench-power", daemon=True)
        self._thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        bench = self

        class PowerHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                board = bench.boards.get(parts[0]) if parts else None
                if board is None or len(parts) not in (2, 3) or parts[1] != "power":
                    self.send_error(404, "expected /<board>/power[/0|1]")
                    return
                if len(parts) == 3:
                    if parts[2] not in ("0", "1"):
                        self.send_error(400, "power value must be 0 or 1")
                        return
                    (board.esp.power_on if parts[2] == "1" else board.esp.power_off)()
                body = b"1" if board.esp.powered else b"0"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return PowerHandler

    def exporter_config(self) -> dict:
        """labgrid-exporter's configuration: one group per board."""
        return {
            b.name: {
                "NetworkSerialPort": {"host": self.host, "port": b.esp.port, "speed": 115200},
                "NetworkPowerPort": {"model": "simplerest", "host": b.power_url, "index": 0},
            }
            for b in self.boards.values()
        }

    def write_exporter_config(self, path: Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.exporter_config(), sort_keys=False))

    def close(self) -> None:
        self._power.shutdown()
        self._power.server_close()
        for board in self.boards.values():
            with contextlib.suppress(Exception):
                board.esp.close()


def serve(count: int, prefix: str, host: str, workdir: str | None, exporter_config: str | None,
          first_port: int = 0, power_port: int = 0, flash_timing: FlashTiming | None = CHIP_TIMING) -> int:
    """The CLI's `farm serve`: runs until SIGINT or SIGTERM; prints one line per board, then `ready`. The boards'
    directory is removed at the end unless it was given (`workdir`)."""
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hil-bench-"))
    try:
        return _serve(directory, count, prefix, host, exporter_config, first_port, power_port, flash_timing)
    finally:
        if not workdir:
            shutil.rmtree(directory, ignore_errors=True)


def _serve(directory: Path, count: int, prefix: str, host: str, exporter_config: str | None, first_port: int,
           power_port: int, flash_timing: FlashTiming | None) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        bench = VirtualBench(directory, count, prefix, host, first_port, power_port, flash_timing)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            asked = ", ".join(f"{name} {port}" for name, port in (("--first-port", first_port),
                                                                  ("--power-port", power_port)) if port)
            print(f"farm serve: a port is already in use ({asked or 'a free one was taken meanwhile'}): stop the "
                  "process that holds it, or leave --first-port and --power-port at 0 for free ones",
                  file=sys.stderr)
        else:
            print(f"farm serve: {err}", file=sys.stderr)
        return 1
    try:
        if exporter_config:
            bench.write_exporter_config(Path(exporter_config))
        for board in bench.boards.values():
            print(f"{board.name}: {board.esp.url} power {board.power_url}", flush=True)
        if exporter_config:
            print(f"exporter configuration: {exporter_config}", flush=True)
        print("ready", flush=True)
        stop.wait()
    finally:
        bench.close()
    return 0
