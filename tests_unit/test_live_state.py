"""The live view's model (harness/live/state.py) and the page of a pytest run (`--hil-live`): rows from the
protocol's messages, secrets masked, events in order; a whole pytest session serving its page."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.live.state import LiveState
from harness.masking import MASK, Masker
from harness.protocol import Message, parse_topic

ROOT = Path(__file__).resolve().parents[1]


def message(topic: str, payload: bytes | dict[str, Any] | str, retain: bool = False) -> Message:
    raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload.encode() \
        if isinstance(payload, str) else payload
    device, kind = parse_topic(topic, "devices")
    data = json.loads(raw) if raw.startswith(b"{") else None
    return Message(index=0, topic=topic, payload=raw, data=data, retain=retain, t=0.0, device_id=device, kind=kind)


def test_rows_come_from_status_online_and_ota_events() -> None:
    state, events = LiveState(), []
    state.subscribe(events.append)
    state.on_message(message("devices/vb1/online", "online", retain=True))
    state.on_message(message("devices/vb1/status", {"version": "1.0.0", "partition": "ota_0", "ota_state": "valid",
                                                    "reset_reason": "poweron", "last_ota": None}, retain=True))
    state.on_message(message("devices/vb1/ota", {"id": "r1", "seq": 1, "state": "accepted"}))
    state.on_message(message("devices/vb1/ota", {"id": "r1", "seq": 2, "state": "downloading", "bytes": 50,
                                                 "total": 200, "percent": 25}))
    row = state.row("vb1")
    assert row is not None
    assert (row.version, row.slot, row.ota_state, row.reset_reason, row.online) == ("1.0.0", "ota_0", "valid",
                                                                                    "poweron", True)
    assert (row.request_id, row.ota, row.percent) == ("r1", "downloading", 25)
    state.on_message(message("devices/vb1/ota", {"id": "r1", "seq": 3, "state": "succeeded", "version": "2.0.0"}))
    state.on_message(message("devices/vb1/online", "offline", retain=True))
    row = state.row("vb1")
    assert row is not None and (row.last_outcome, row.percent, row.online) == ("succeeded 2.0.0", 100, False)
    state.on_message(message("devices/vb1/ota", {"id": "r2", "seq": 1, "state": "failed", "reason": "http_status",
                                                 "http_status": 404}))
    row = state.row("vb1")
    assert row is not None and row.last_outcome == "failed (http_status 404)" and row.percent is None
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e["type"] for e in events if e["type"] == "board"], "row changes are pushed"


def test_secrets_are_masked_in_lines_payloads_and_notes() -> None:
    state = LiveState(Masker({"hunter2-known"}))
    events: list[dict[str, Any]] = []
    state.subscribe(events.append)
    state.on_serial("vb1", "config set wifi_password s3cret-typed")
    state.on_serial("vb1", "I (5) app: joined with hunter2-known")
    state.on_message(message("devices/vb1/cmd", {"type": "ota", "url": "https://u:pw-in-url@h/fw.bin",
                                                 "token": "abc-token-value"}))
    state.note("provisioned broker_password=p4ss")
    shown = json.dumps(events) + json.dumps(state.logs("vb1")) + json.dumps(state.snapshot())
    for secret in ("s3cret-typed", "hunter2-known", "pw-in-url", "abc-token-value", "p4ss"):
        assert secret not in shown
    assert MASK in shown


def test_push_chunks_and_other_prefixes_stay_out() -> None:
    state = LiveState()
    state.on_message(message("devices/vb1/push/t1/0", b"\xe9" * 64))
    state.on_message(message("other/vb2/status", {"version": "1"}))
    state.on_message(message("devices/all/cmd", {"type": "status"}))
    assert state.board_ids() == []


# --- a pytest run's page ----------------------------------------------------------------------------------

SESSION_TESTS = '''
    import json
    import urllib.request

    from harness.live import pytest_live
    from harness.live.client import wait_event


    def page(config, path="api/state"):
        with urllib.request.urlopen(pytest_live.of(config).url + path, timeout=5) as response:
            return json.loads(response.read())


    def row_shown(event, check):
        rows = event["boards"] if event["type"] == "snapshot" else [event["board"]] if event["type"] == "board" else []
        return any(check(row) for row in rows)


    def test_first():
        pass


    def test_updates_on_the_page(request, board, link, fw_server, firmware):
        artifact = fw_server.add(firmware.image(version="2.0.0"))
        since = link.cursor()
        link.send(board.device_id, {"type": "ota", "id": "r1", "url": artifact.url})
        link.wait_ota(board.device_id, "r1", "succeeded", timeout=40, since=since, fail_on={"failed", "rejected"})

        # the page's model is fed by the link's listener, which may run just after wait_ota returned
        on_2 = (board.device_id, "2.0.0", "ota_1", "succeeded 2.0.0")
        wait_event(pytest_live.of(request.config).url, lambda e: row_shown(
            e, lambda r: (r["device_id"], r["version"], r["slot"], r["last_outcome"]) == on_2), 10, "the row on 2.0.0")
        state = page(request.config)
        assert [r["device_id"] for r in state["boards"]] == [board.device_id], state["boards"]
        outcomes = {s["nodeid"]: s["outcome"] for s in state["scenarios"]}
        assert outcomes == {"test_live_run.py::test_first": "passed",
                            "test_live_run.py::test_updates_on_the_page": "running",
                            "test_live_run.py::test_last": "pending"}, outcomes
        assert state["info"]["test"] == "test_live_run.py::test_updates_on_the_page"
        assert state["info"]["actions"] is False
        serial = page(request.config, f"api/boards/{board.device_id}")["serial"]
        assert any("App version:      2.0.0" in line["text"] for line in serial)


    def test_last(request):
        state = page(request.config)
        assert state["boards"] == [], "a new test starts with its own boards"
        outcomes = {s["nodeid"]: s["outcome"] for s in state["scenarios"]}
        assert outcomes["test_live_run.py::test_updates_on_the_page"] == "passed"
'''


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nfilterwarnings =\n    ignore::pytest.PytestExperimentalApiWarning\n")
    (tmp_path / "test_live_run.py").write_text(textwrap.dedent(SESSION_TESTS))
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "virtual").symlink_to(ROOT / "build" / "virtual", target_is_directory=True)
    return tmp_path


def run_session(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp",
                           str(directory / "tmp"), "test_live_run.py", *args], cwd=directory, capture_output=True,
                          text=True, timeout=120, check=False)


def test_hil_live_serves_the_running_tests_boards_and_the_scenarios(session_dir: Path) -> None:
    result = run_session(session_dir, "-v", "--hil-live=0")
    assert result.returncode == 0, result.stdout + result.stderr
    url = re.search(r"^live view: (http://127\.0\.0\.1:(\d+)/)$", result.stdout, re.MULTILINE)
    assert url, result.stdout
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(url.group(2)))) != 0, "the page's port is closed after the run"


def test_hil_live_port_taken_is_a_usage_error_naming_the_option(session_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_session(session_dir, f"--hil-live={port}")
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"--hil-live {port}: port {port} on 127.0.0.1 is already in use" in result.stderr
    result = run_session(session_dir, "--hil-live", "tests")
    assert result.returncode == 4 and "--hil-live tests: not a port" in result.stderr, result.stderr


@pytest.mark.parametrize("bind", ["192.0.2.1", "no-such-host.invalid"])
def test_hil_live_bind_to_an_address_not_of_this_machine_is_a_usage_error(session_dir: Path, bind: str) -> None:
    """It was an INTERNALERROR with the socket's traceback (exit 3)."""
    result = run_session(session_dir, "--hil-live=0", "--hil-live-bind", bind)
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"--hil-live-bind {bind}: the page cannot listen there" in result.stderr, result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
