"""`python -m harness board run`: a virtual board in the foreground, updated by mosquitto_pub."""

import json
import os
import select
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.broker import EmbeddedBroker
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.virtual import firmware
from tests_unit.cli_board import cli_board
from tests_unit.cli_lab import descendants

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")


def test_board_run_updates_itself_from_a_mosquitto_pub_command(tmp_path: Path) -> None:
    build = firmware.build()
    image = tmp_path / "v1.bin"
    image.write_bytes(build.image)
    with EmbeddedBroker() as broker, FirmwareServer() as server, DeviceLink(broker.url) as link:
        artifact = server.add(build.image_with_version("2.0.0"))
        with cli_board(image, broker.url, "cli1", tmp_path / "flash.bin") as board:
            link.wait_status("cli1", timeout=20, description="first status of the CLI board")
            since = link.cursor()
            command = json.dumps({"type": "ota", "id": "cli-ota", "url": artifact.url})
            subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
                            "-t", "devices/cli1/cmd", "-m", command], check=True, timeout=10)
            link.wait_ota("cli1", "cli-ota", "succeeded", timeout=30, since=since, fail_on={"failed", "rejected"})
            output = board.stop()
    assert board.proc.returncode == 0, output
    assert "app_init: App version:      2.0.0" in output
    assert "board stopped" in output


def _ends_within(pid: int, timeout: float) -> bool:
    """Waits for the process to end (its pidfd becomes readable), at most `timeout` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def test_the_firmware_dies_with_a_killed_harness(tmp_path: Path) -> None:
    """SIGKILL leaves the harness no time to stop its board: the app process ends with it (the host port's
    parent-death signal) rather than running on as an orphan with its flash file and broker session."""
    image = tmp_path / "v1.bin"
    image.write_bytes(firmware.build().image)
    with (EmbeddedBroker() as broker, DeviceLink(broker.url) as link,
          cli_board(image, broker.url, "cli2", tmp_path / "flash.bin") as board):
        link.wait_status("cli2", timeout=20, description="first status of the CLI board")
        apps = descendants(board.proc.pid)
        assert apps, "no firmware process under the CLI board"
        board.proc.kill()
        board.proc.wait(10)
        left = [pid for pid in apps if not _ends_within(pid, 5)]
    assert not left, f"firmware processes left running after the harness was killed: {left}"
