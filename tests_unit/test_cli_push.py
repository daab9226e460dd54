"""`python -m harness push`: a CLI-run virtual board on a real mosquitto installs v2 from the pusher."""

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.broker import MosquittoBroker
from harness.link import DeviceLink
from harness.virtual import firmware
from tests_unit.cli_board import cli_board

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto not installed")


def _v1_and_v2(tmp_path: Path) -> tuple[Path, Path]:
    """The base build as v1.bin (for the board) and at 2.0.0 as v2.bin (to push)."""
    build = firmware.build()
    v1, v2 = tmp_path / "v1.bin", tmp_path / "v2.bin"
    v1.write_bytes(build.image)
    v2.write_bytes(build.image_with_version("2.0.0"))
    return v1, v2


def test_push_command_installs_v2_on_a_cli_board_over_mosquitto(tmp_path: Path) -> None:
    v1, v2 = _v1_and_v2(tmp_path)
    broker = MosquittoBroker()
    broker.start()
    try:
        with DeviceLink(broker.url) as link, cli_board(v1, broker.url, "cli-push", tmp_path / "flash.bin") as board:
            link.wait_status("cli-push", timeout=20, description="first status of the CLI board")
            since = link.cursor()
            pushed = subprocess.run(
                [sys.executable, "-m", "harness", "push", "--broker", broker.url, "--device", "cli-push",
                 str(v2), "--version", "2.0.0"], check=False, capture_output=True, text=True, timeout=60)
            assert pushed.returncode == 0, pushed.stdout + pushed.stderr
            link.wait_status("cli-push", lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                             since=since, timeout=30)
    finally:
        broker.stop()
    assert "app_init: App version:      2.0.0" in board.output
    deciles = [line for line in pushed.stdout.splitlines() if line.startswith("pushed ") and "%" in line]
    assert deciles[0].startswith("pushed 0%") and deciles[-1].startswith("pushed 100%"), pushed.stdout
    # without a terminal, one line per 10 % reached: 16 KiB chunks may step over a decile, never repeat one
    percents = [int(line.split()[1].rstrip("%")) // 10 for line in deciles]
    assert percents == sorted(set(percents)) and len(percents) >= 6, pushed.stdout
    assert "the device is rebooting" in pushed.stdout


def test_push_command_says_what_to_do_when_no_device_answers(tmp_path: Path) -> None:
    image = tmp_path / "v2.bin"
    image.write_bytes(firmware.build().image_with_version("2.0.0"))
    broker = MosquittoBroker()
    broker.start()
    try:
        pushed = subprocess.run(
            [sys.executable, "-m", "harness", "push", "--broker", broker.url, "--device", "nobody", str(image)],
            check=False, capture_output=True, text=True, timeout=60)
    finally:
        broker.stop()
    assert pushed.returncode == 1
    assert "did not answer the push" in pushed.stderr and "is it online" in pushed.stderr, pushed.stderr
    assert "The broker holds no online flag on devices/nobody/online" in pushed.stderr, pushed.stderr


def test_ctrl_c_during_a_push_cancels_it_on_the_device(tmp_path: Path) -> None:
    """Ctrl-C in the middle of `python -m harness push` sends the device a `cancel` for the transfer: it answers
    `cancelled` and keeps v1, and the next push is not refused as `busy` (without the cancel the device would
    hold the transfer until its idle deadline, 30 s)."""
    v1, v2 = _v1_and_v2(tmp_path)
    broker = MosquittoBroker()
    broker.start()
    try:
        with DeviceLink(broker.url) as link, cli_board(v1, broker.url, "cli-cancel", tmp_path / "flash.bin"):
            link.wait_status("cli-cancel", timeout=20, description="first status of the CLI board")
            since = link.cursor()
            push = subprocess.Popen(  # 512-byte chunks one at a time: a push long enough to interrupt
                [sys.executable, "-m", "harness", "push", "--broker", broker.url, "--device", "cli-cancel", str(v2),
                 "--id", "p-interrupted", "--chunk", "512", "--window", "1"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert push.stdout is not None
            for line in push.stdout:
                if line.startswith("pushed 10%"):
                    push.send_signal(signal.SIGINT)
                    break
            out, err = push.communicate(timeout=30)
            assert push.returncode == 130, out + err
            assert "cancelled: the device keeps its running firmware" in err, err
            link.wait_ota("cli-cancel", "p-interrupted", "cancelled", since=since, timeout=10,
                          fail_on={"rebooting"})
            again = subprocess.run(
                [sys.executable, "-m", "harness", "push", "--broker", broker.url, "--device", "cli-cancel", str(v2)],
                check=False, capture_output=True, text=True, timeout=60)
            assert again.returncode == 0, again.stdout + again.stderr
    finally:
        broker.stop()


@pytest.mark.parametrize(("args", "expected"), [
    (["--id", "a/b"], "argument --id: 'a/b': at most 47 characters, without /, + or #"),
    (["--id", "p+1"], "argument --id: 'p+1': at most 47 characters, without /, + or #"),
    (["--id", "x" * 48], "at most 47 characters"),
    (["--timeout", "0"], "argument --timeout: 0 is not from 1 to 86400"),
])
def test_push_command_refuses_what_the_device_would(tmp_path: Path, args: list[str], expected: str) -> None:
    """An id the device could not subscribe its chunks under, or a deadline out of its range, is refused before
    anything is sent (exit status 2), not after the device started the transfer (or, for an id with a wildcard,
    by paho after the start command, leaving the device busy)."""
    image = tmp_path / "v2.bin"
    image.write_bytes(firmware.build().image_with_version("2.0.0"))
    pushed = subprocess.run(
        [sys.executable, "-m", "harness", "push", "--broker", "mqtt://127.0.0.1:1", "--device", "d", *args,
         str(image)], check=False, capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 2 and expected in pushed.stderr, pushed.stderr


def test_push_command_with_a_broker_url_without_scheme_is_a_usage_error(tmp_path: Path) -> None:
    image = tmp_path / "v2.bin"
    image.write_bytes(firmware.build().image_with_version("2.0.0"))
    pushed = subprocess.run([sys.executable, "-m", "harness", "push", "--broker", "127.0.0.1:1883", "--device", "d",
                             str(image)], check=False, capture_output=True, text=True, timeout=60)
    assert pushed.returncode == 2, pushed.stderr
    assert pushed.stderr.strip() == "push: broker URL '127.0.0.1:1883' must look like mqtt://host:port or mqtts://host:port"


@pytest.mark.parametrize(("damage", "expected"), [
    ("flip", "is not a valid app image (Checksum failed."),
    ("version", "carries version 2.0.0, not --version 9.9.9: give the image built at 9.9.9, or --version 2.0.0"),
])
def test_push_command_checks_the_image_before_it_sends_anything(tmp_path: Path, damage: str, expected: str) -> None:
    """A damaged image, or one that is not the --version asked for, is refused before the pusher connects (exit
    status 2; the broker URL here answers nothing). The device would find the first only after the whole image
    went through the broker, and install the second without a word; --no-verify sends either anyway."""
    data = bytearray(firmware.build().image_with_version("2.0.0"))
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF  # in a segment: the checksum no longer matches
    image = tmp_path / "v2.bin"
    image.write_bytes(bytes(data))
    version = ["--version", "9.9.9"] if damage == "version" else []
    command = [sys.executable, "-m", "harness", "push", "--broker", "mqtt://127.0.0.1:1", "--device", "d", *version,
               str(image)]
    refused = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and expected in refused.stderr, refused.stderr
    sent = subprocess.run([*command, "--no-verify"], check=False, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 1 and "cannot connect to the MQTT broker" in sent.stderr, sent.stderr


@pytest.mark.parametrize(("variant", "code", "said"), [
    ("default", 0, "confirmed: cli-verdict runs 2.0.0 and marked it valid"),
    ("selftest_fail", 1, "rolled back (selftest_failed): cli-verdict runs its previous firmware again"),
])
def test_push_command_with_confirm_timeout_exits_on_the_new_firmware_s_verdict(
        tmp_path: Path, variant: str, code: int, said: str) -> None:
    """Without --confirm-timeout the push ends at `rebooting`, before the new firmware has tested itself; with it,
    the exit status is the self-test's: 0 once v2 confirms itself, 1 when the device rolls back to v1."""
    v1 = tmp_path / "v1.bin"
    v1.write_bytes(firmware.build().image)
    v2 = tmp_path / "v2.bin"
    v2.write_bytes(firmware.build(variant).image_with_version("2.0.0"))
    broker = MosquittoBroker()
    broker.start()
    try:
        with DeviceLink(broker.url) as link, cli_board(v1, broker.url, "cli-verdict", tmp_path / "flash.bin"):
            link.wait_status("cli-verdict", timeout=20, description="first status of the CLI board")
            pushed = subprocess.run(
                [sys.executable, "-m", "harness", "push", "--broker", broker.url, "--device", "cli-verdict", str(v2),
                 "--confirm-timeout", "30"], check=False, capture_output=True, text=True, timeout=90)
    finally:
        broker.stop()
    assert pushed.returncode == code, pushed.stdout + pushed.stderr
    assert said in pushed.stdout + pushed.stderr, pushed.stdout + pushed.stderr
    assert "waiting up to 30 s for the new firmware's self-test" in pushed.stdout, pushed.stdout
