"""`python -m harness lab`: a bench of boards on the desk, watched and updated from the browser.

`Lab.start()` brings up, in this order, the live page (first, so a port already taken fails before anything
else starts), the MQTT broker, the firmware server, the device link, and the boards: N virtual boards
through the virtual target's factory and `start_boards`, or real ESP32 boards on serial ports, provisioned
the same way the tests' are (harness/session/baseline.py). The page's buttons land here (`LiveActions`):
an image is uploaded or built (a variant, patched to a version) into the firmware server, then sent to one
board, a selection or all of them as `ota` commands, or rolled out in stages by the fleet driver; cancel
stops both. `stop()` takes everything down in the reverse order, leaving no process, port or file.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from harness import commands, masking
from harness import project as project_mod
from harness.boards.base import Board
from harness.broker import EmbeddedBroker, MosquittoBroker, MqttBroker
from harness.fleet import Rollout, RolloutPlan, start_boards
from harness.formats import app_image
from harness.fwserver import FaultPlan, FirmwareServer
from harness.fwserver.faults import Artifact
from harness.link import DeviceLink
from harness.live.server import DEFAULT_PORT, ActionError, LiveServer
from harness.live.state import LiveState, SerialTap
from harness.session.record import TestRecord

CHIPS = {app_image.CHIP_ID_ESP32: "esp32", app_image.CHIP_ID_VIRTUAL: "linux"}


class LabError(RuntimeError):
    """The lab cannot start; the message says what to change."""


@dataclass
class LabConfig:
    """What `python -m harness lab` was asked for (its options, one field each)."""

    boards: int = 3
    target: str = "linux"  # or "esp32": real boards on `ports`
    ports: list[str] = field(default_factory=list)
    bind: str = "127.0.0.1"  # the page's address
    port: int = DEFAULT_PORT  # the page's port
    broker: str = "embedded"  # or "mosquitto"
    variant: str = project_mod.DEFAULT_VARIANT  # the boards' firmware
    throttle_bps: int | None = None  # the firmware server's speed for every image (bytes/s), to watch bars move
    host_ip: str | None = None  # real boards: the address they reach this machine at
    wifi_ssid: str | None = None
    wifi_password: str | None = field(default=None, repr=False)
    device_timeout_s: float = 120.0  # a rollout's deadline per device


@dataclass
class _Image:
    number: int
    artifact: Artifact
    version: str | None


class _NoCancelledTracebacks(logging.Filter):
    """amqtt logs its broadcast loop's CancelledError as an error with a traceback when its loop stops before
    the broker started (Ctrl-C during the lab's start): noise, nothing the user can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


class Lab:
    """The lab session: services, boards and the live page; a context manager."""

    def __init__(self, config: LabConfig, project: project_mod.HilProject | None = None,
                 announce: Callable[[str], None] | None = None) -> None:
        """`announce(url)` is called once the page is up, before the boards start."""
        self.config = config
        self._announce = announce or (lambda _url: None)
        self.project = project or project_mod.reference()
        logging.getLogger("amqtt.broker").addFilter(_NoCancelledTracebacks())
        self.masker = masking.Masker()
        self.masker.add(config.wifi_password)
        self.state = LiveState(self.masker, title=f"esp-ota-hil lab: {config.target}")
        self.server = LiveServer(self.state, self, host=config.bind, port=config.port)
        self.record = TestRecord(masker=self.masker)
        self.record.board_listeners.append(self._on_board)
        self.boards: list[Board] = []
        self.broker: MqttBroker | None = None
        self.fw_server: FirmwareServer | None = None
        self.link: DeviceLink | None = None
        self._firmware: Any = None  # VirtualFirmware or IdfFirmware
        self._factory: Any = None
        self._taps: list[SerialTap] = []
        self._images: list[_Image] = []
        self._requests = 0
        self._lock = threading.Lock()
        self._rollout: Rollout | None = None
        self._rollout_thread: threading.Thread | None = None
        self._workdir = Path(tempfile.mkdtemp(prefix="hil-lab-"))
        self._stopped = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def workdir(self) -> Path:
        """The boards' flash files and the like, removed by stop()."""
        return self._workdir

    # --- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Everything up; on any failure what was started is stopped again and the error raised."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        real = config.target != "linux"
        if real and not config.ports:
            raise LabError(f"--target {config.target}: give the boards' serial ports with --port (one per board)")
        if not real and config.boards < 1:
            raise LabError(f"--boards {config.boards}: at least one board")
        bind, advertise = (self._real_address() if real else ("127.0.0.1", "127.0.0.1"))
        self.server.start()  # first: a port taken stops the lab before any board starts
        self.state.set_info(target=config.target, actions=True, page=self.server.url)
        self._announce(self.server.url)
        self.state.note(f"starting: {len(config.ports) if real else config.boards} {config.target} board(s)")
        self.broker = (MosquittoBroker(host=bind, advertise_host=advertise) if config.broker == "mosquitto"
                       else EmbeddedBroker(host=bind, advertise_host=advertise))
        self.broker.start()
        self.fw_server = FirmwareServer(host=bind, advertise_host=advertise).start()
        self.link = DeviceLink(self.broker.url, prefix=self.project.topic_prefix,
                               receipts=self.broker.receipts).connect()
        self.link.add_listener(self.state.on_message)
        self.state.set_info(broker=self.broker.url, fw_server=self.fw_server.base_url)
        if real:
            self._start_real_boards()
        else:
            self._start_virtual_boards()
        self.state.set_info(variants=list(self.project.variants), base_version=self._base_version())
        self.state.note(f"ready: {len(self.boards)} board(s)")

    def stop(self) -> None:
        """Stops everything started, in reverse order; safe to call twice and after a failed start."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[BaseException] = []

        def attempt(step: Any) -> None:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - every step runs; the first error is raised at the end
                errors.append(exc)

        try:
            rollout, thread = self._rollout, self._rollout_thread
            if rollout is not None and thread is not None and thread.is_alive():
                attempt(lambda: rollout.abort("the lab is stopping"))
                thread.join(5)
            for tap in self._taps:
                attempt(tap.detach)
            if self._factory is not None:
                attempt(self._factory.stop_all)
            for board in self.boards if self._factory is None else ():
                attempt(board.stop)
            for service in (self.link, self.fw_server, self.broker):
                if service is not None:
                    attempt(service.close if isinstance(service, DeviceLink) else service.stop)
            attempt(self.server.stop)
        finally:  # even when a second Ctrl-C cuts the steps short: the boards' files never stay behind
            attempt(lambda: shutil.rmtree(self._workdir))
        if errors:
            raise errors[0]

    # --- boards --------------------------------------------------------------------------------------

    def _on_board(self, board: Board) -> None:
        """A factory's new board, before it boots: its console into the page from its first line."""
        self._taps.append(SerialTap(self.state, board))

    def _start_virtual_boards(self) -> None:
        from harness.virtual.factory import VirtualBoardFactory, VirtualFirmware

        self._firmware = VirtualFirmware(self.project)
        try:
            base = self._image_of(self.config.variant, None)  # built here, once, before the boards start
        except ActionError as err:
            raise LabError(f"the {self.config.variant} firmware: {err}") from None
        assert self.broker is not None and self.link is not None
        self._factory = VirtualBoardFactory(self._workdir, self._firmware, self.broker.url, self.link, self.record)
        image = None if self.config.variant == project_mod.DEFAULT_VARIANT else base
        self.boards = start_boards(self._factory, self.config.boards, image=image)

    def _start_real_boards(self) -> None:
        from harness.boards.esp32 import Esp32Board, Esp32Error
        from harness.idf_build import IdfFirmware
        from harness.session.baseline import BaselineError, bring_up
        from harness.targets import CONSOLE_TIMEOUT_S, REAL_BOOT_TIMEOUT_S

        assert self.broker is not None and self.link is not None
        self._firmware = IdfFirmware(self.project.app_dir, self.config.target, self.project.sdkconfig_defaults)
        wifi = {k: v for k, v in (("wifi_ssid", self.config.wifi_ssid),
                                  ("wifi_password", masking.Secret(self.config.wifi_password or ""))) if v}
        for index, port in enumerate(self.config.ports):
            board = Esp32Board(f"board{index}", port, target=self.config.target)
            board.add_secrets([self.config.wifi_password or ""])
            try:
                board.open()
            except Esp32Error as err:
                raise LabError(f"--port {port}: {err}") from None
            board.device_id = f"e{uuid.uuid4().hex[:7]}"
            self.boards.append(board)
            self.record.add_board(board)
            settings = {"device_id": board.device_id, "broker_url": self.broker.url,
                        "topic_prefix": self.project.topic_prefix, **wifi}
            try:
                bring_up(board, self.link, settings, boot_timeout=REAL_BOOT_TIMEOUT_S,
                         console_timeout=CONSOLE_TIMEOUT_S)
            except (AssertionError, BaselineError, Esp32Error) as err:
                raise LabError(f"--port {port}: the board did not come up with the lab's broker ({err}). Is the "
                               "firmware under test flashed (idf.py flash), and are --wifi-ssid/--wifi-password "
                               "and --host-ip right?") from None

    def _real_address(self) -> tuple[str, str]:
        """(bind, advertise) for the broker and firmware server real boards reach over the LAN."""
        if not self.config.host_ip:
            raise LabError("--target esp32: give --host-ip ADDRESS, this machine's address on the boards' Wi-Fi "
                           "network (the broker and the firmware server are advertised there)")
        try:  # the broker is advertised there and the lab's own link connects there: it must be this machine's
            with socket.socket(socket.AF_INET6 if ":" in self.config.host_ip else socket.AF_INET) as probe:
                probe.bind((self.config.host_ip, 0))
        except OSError as err:
            raise LabError(f"--host-ip {self.config.host_ip} is not an address of this machine ({err.strerror}); "
                           "give this machine's address on the boards' Wi-Fi network (ip -br address shows "
                           "them)") from None
        return "0.0.0.0", self.config.host_ip

    def _base_version(self) -> str | None:
        try:
            return str(self._firmware.base_version)
        except Exception:  # noqa: BLE001 - a real target without an idf.py build: the header just shows none
            return None

    def _image_of(self, variant: str, version: str | None) -> bytes:
        """A built image of the boards' firmware (a variant, patched to `version`); errors say what to fix."""
        if variant not in self.project.variants:
            raise ActionError(f"unknown variant {variant!r}; the project's are {', '.join(self.project.variants)}")
        try:
            return bytes(self._firmware.image(variant, version))
        except pytest.fail.Exception as err:  # VirtualFirmware's build errors, meant for a pytest run
            raise ActionError(str(err.msg)) from None
        except (RuntimeError, ValueError, app_image.ImageError) as err:  # idf.py build missing, bad version
            raise ActionError(str(err)) from None

    # --- the page's actions (LiveActions; called in the server's worker threads) ----------------------

    def upload(self, data: bytes, name: str) -> dict[str, Any]:
        try:
            info = app_image.verify_image(data, None)
        except app_image.ImageError as err:
            raise ActionError(f"{name} is not a valid app image ({err.reason}): {err}") from None
        chip = CHIPS.get(info.chip_id, f"chip id {info.chip_id:#06x}")
        if chip != self.config.target:
            self.state.note(f"{name} is an image for {chip}: the {self.config.target} boards will refuse it "
                            "(wrong_chip)", level="warning")
        version = info.descriptor.version if info.descriptor is not None else None
        return self._add_image(data, name, version)

    def build_image(self, variant: str, version: str) -> dict[str, Any]:
        data = self._image_of(variant, version)
        name = f"{variant}-{version}.bin"
        return self._add_image(data, name, version)

    def _add_image(self, data: bytes, name: str, version: str | None) -> dict[str, Any]:
        assert self.fw_server is not None
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "fw.bin"
        faults = FaultPlan(throttle_bps=self.config.throttle_bps) if self.config.throttle_bps else None
        artifact = self.fw_server.add(data, safe, faults=faults)
        with self._lock:
            image = _Image(len(self._images) + 1, artifact, version)
            self._images.append(image)
        shown = {"id": image.number, "name": safe, "version": version, "size": artifact.size,
                 "sha256": artifact.sha256}
        self.state.add_artifact(shown)
        self.state.note(f"image #{image.number}: {safe}, version {version}, {artifact.size} bytes")
        return shown

    def _image(self, number: int) -> _Image:
        with self._lock:
            for image in self._images:
                if image.number == number:
                    return image
        raise ActionError(f"no image #{number}: upload one or pick a built variant first")

    def _devices(self, devices: list[str] | None) -> list[str]:
        known = [b.device_id for b in self.boards]
        if devices is None:
            return known
        unknown = [d for d in devices if d not in known]
        if unknown:
            raise ActionError(f"unknown board(s) {', '.join(unknown)}; the lab's are {', '.join(known)}")
        return devices

    def _command(self, image: _Image, force: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {"sha256": image.artifact.sha256, "size": image.artifact.size}
        if image.version:
            fields["version"] = image.version
        if force:
            fields["force"] = True
        return commands.ota(image.artifact.url, **fields)

    def update(self, artifact: int, devices: list[str] | None, force: bool = False) -> dict[str, Any]:
        image = self._image(artifact)
        ids = self._devices(devices)
        assert self.link is not None
        with self._lock:
            self._requests += 1
            request_id = f"live{self._requests}"
        for device_id in ids:
            self.link.send(device_id, {**self._command(image, force), "id": request_id})
        self.state.note(f"update {request_id}: image #{image.number} ({image.version}) to {len(ids)} board(s)")
        return {"request_id": request_id, "devices": ids}

    def rollout(self, artifact: int, devices: list[str] | None, canary: int, steps: list[float],
                max_in_flight: int | None) -> dict[str, Any]:
        image = self._image(artifact)
        ids = self._devices(devices)
        assert self.link is not None
        try:
            plan = RolloutPlan(canary=canary, steps=tuple(steps), max_in_flight=max_in_flight,
                               device_timeout_s=self.config.device_timeout_s)
        except ValueError as err:
            raise ActionError(str(err)) from None
        with self._lock:
            if self._rollout_thread is not None and self._rollout_thread.is_alive():
                raise ActionError("a rollout is under way: cancel it first, or wait for its end")
            self._requests += 1
            job_id = f"rollout{self._requests}"
            rollout = Rollout(self.link, ids, self._command(image), plan, job_id,
                              on_note=lambda text: self.state.note(f"{job_id}: {text}"))
            thread = threading.Thread(target=self._run_rollout, args=(rollout, job_id), name=job_id, daemon=True)
            self._rollout, self._rollout_thread = rollout, thread
        thread.start()
        return {"job_id": job_id, "cohorts": [c.name for c in rollout.cohorts]}

    def _run_rollout(self, rollout: Rollout, job_id: str) -> None:
        try:
            result = rollout.run()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the lab goes on
            self.state.note(f"{job_id}: stopped by an error: {exc}", level="error")
            return
        self.state.note(f"{job_id}: {result.state}" + (f" ({result.reason})" if result.reason else ""),
                        level="info" if result.state == "succeeded" else "error")

    def cancel(self, devices: list[str] | None) -> dict[str, Any]:
        ids = self._devices(devices)
        assert self.link is not None
        rollout = self._rollout
        aborted = rollout is not None and self._rollout_thread is not None and self._rollout_thread.is_alive()
        if aborted and rollout is not None:
            rollout.abort("cancelled from the live page")
        for device_id in ids:
            self.link.send(device_id, commands.cancel())
        self.state.note(f"cancel sent to {len(ids)} board(s)" + ("; rollout aborted" if aborted else ""))
        return {"devices": ids, "rollout_aborted": aborted}


def run(config: LabConfig, stop: threading.Event, project: project_mod.HilProject | None = None) -> None:
    """Runs a lab until `stop` is set (SIGTERM) or Ctrl-C; raises LabError or PortInUseError. Ctrl-C while the
    boards start stops what has started; once it is up, Ctrl-C (SIGINT) ends the wait the same way."""
    def announce(url: str) -> None:
        print(f"live view: {url}  (starting the boards; Ctrl-C stops the lab)", flush=True)

    lab = Lab(config, project, announce=announce).start()  # Ctrl-C here: what has started is stopped again
    # from here Ctrl-C only asks the lab to stop, also while it stops: a second one (a terminal's Ctrl-C reaches
    # the process more than once when sent to its group, as `timeout -s INT` does) must not cut its clean-up short
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        print(f"lab ready: {len(lab.boards)} {config.target} board(s) on {lab.broker.url if lab.broker else '-'}; "
              f"their files in {lab.workdir} (removed at the end)", flush=True)
        stop.wait()
    finally:
        try:
            lab.stop()
        finally:
            signal.signal(signal.SIGINT, previous)
