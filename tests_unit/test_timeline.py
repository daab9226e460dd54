"""The per-test timeline: merged, ordered, secrets masked, written as JSON lines, shown on failure."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from harness import timeline
from harness.masking import MASK


@dataclass
class _Line:
    t: float
    text: str


@dataclass(frozen=True)
class _Published:
    t: float
    topic: str
    payload: bytes


@dataclass
class _Board:
    name: str
    lines: list[_Line]
    secrets: set[str] = field(default_factory=set)
    publishes: list[_Published] = field(default_factory=list)

    def mqtt_publishes(self) -> list[_Published]:
        return self.publishes

    @property
    def serial(self) -> _Board:
        return self


@dataclass
class _Message:
    t: float
    topic: str
    data: object
    text: str = ""
    t_published: float | None = None  # when the broker read it; the link's reception time t if unknown
    payload: bytes = b""

    def __post_init__(self) -> None:
        if self.t_published is None:
            self.t_published = self.t


@dataclass
class _Link:
    messages: list[_Message]


@dataclass
class _Request:
    t_start: float
    path: str
    method: str = "GET"
    range: str | None = None
    status: int | None = 200
    bytes_sent: int = 10
    client_hung_up: bool = False


@dataclass
class _Server:
    requests: list[_Request]


def test_collect_orders_every_source_by_time_and_masks_it() -> None:
    board = _Board("b", [_Line(9.0, "from a previous test"), _Line(10.3, "late"), _Line(10.1, "early Pa55-word")],
                   secrets={"Pa55-word"})
    link = _Link([_Message(10.2, "devices/b/cmd", {"type": "x", "password": "p"})])
    server = _Server([_Request(10.25, "/fw/1/fw.bin?token=t0k3n")])
    entries = timeline.collect(10.0, [board], [link], [server])
    assert [(round(e.t, 2), e.kind, e.text) for e in entries] == [
        (0.1, "serial", f"early {MASK}"),
        (0.2, "mqtt", json.dumps({"type": "x", "password": MASK})),
        (0.25, "http", f"GET /fw/1/fw.bin?token={MASK} range=None status=200 bytes=10"),
        (0.3, "serial", "late"),
    ]


def test_mqtt_messages_are_placed_when_the_broker_read_them() -> None:
    """A device's `rebooting` reaches the link after the broker acknowledged it, so possibly after the reset
    line the device printed once it had the PUBACK: the timeline places it at the broker's receipt."""
    board = _Board("b", [_Line(10.30, "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)")])
    link = _Link([_Message(10.31, "devices/b/ota", {"state": "rebooting"}, t_published=10.29)])
    entries = timeline.collect(10.0, [board], [link], [])
    assert [(round(e.t, 2), e.kind) for e in entries] == [(0.29, "mqtt"), (0.3, "serial")]


def test_a_virtual_boards_messages_are_placed_when_its_firmware_published_them() -> None:
    """The firmware's own publish times (the host port's trace) win over the broker's: the device said
    `accepted` before it requested the image, whatever the broker's thread was doing meanwhile. Repeated
    payloads match in order; a message the device did not publish (a command) keeps the broker's time."""
    said = [_Published(10.10, "devices/b/ota", b"one"), _Published(10.20, "devices/b/ota", b"one")]
    board = _Board("b", [], publishes=said)
    link = _Link([_Message(10.30, "devices/b/ota", {}, payload=b"one", t_published=10.25),
                  _Message(10.31, "devices/b/ota", {}, payload=b"one", t_published=10.26),
                  _Message(10.32, "devices/b/cmd", {}, payload=b"one", t_published=10.27)])
    assert [round(e.t, 2) for e in timeline.collect(10.0, [board], [link], [])] == [0.1, 0.2, 0.27]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    entries = [timeline.Entry(0.5, "serial", "b", "hello"), timeline.Entry(0.7, "mqtt", "devices/b/ota", "{}")]
    timeline.write_jsonl(entries, tmp_path / "deep" / "t.jsonl")
    assert timeline.read_jsonl(tmp_path / "deep" / "t.jsonl") == entries


def test_tail_by_kind_keeps_the_last_of_each_kind() -> None:
    entries = [timeline.Entry(i / 10, "serial" if i % 2 else "mqtt", "s", f"line {i}") for i in range(10)]
    tails = timeline.tail_by_kind(entries, count=2)
    assert set(tails) == {"serial", "mqtt"}
    assert tails["serial"].splitlines() == ["   0.700s s: line 7", "   0.900s s: line 9"]


WIFI, BROKER, CMD = "Wifi-S3cret-1", "Broker-S3cret-2", "Cmd-S3cret-3"
FAILING = textwrap.dedent(f"""
    from harness.serial_log import ExpectTimeout

    def test_fails_after_an_update_attempt(board_factory, link, fw_server):
        board = board_factory(wifi_password="{WIFI}", broker_password="{BROKER}")
        print("provisioned", board.device_id)
        board.write("config show")
        board.expect(r"^broker_password=", timeout=5)
        artifact = fw_server.add(b"not an image" * 100)
        since = link.cursor()
        link.send(board.device_id, {{"type": "ota", "id": "x1", "url": artifact.url, "password": "{CMD}"}})
        link.wait_ota(board.device_id, "x1", "failed", timeout=20, since=since)
        raise ExpectTimeout("the console said {BROKER} and {WIFI}")
""")


def test_a_failing_scenario_reports_its_timeline_masked_and_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "test_failing.py").write_text(FAILING)
    out_dir, junit, html = tmp_path / "timelines", tmp_path / "junit.xml", tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--hil-timeline-dir", str(out_dir),
         "--junitxml", str(junit), "--hil-report", str(html), "test_failing.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout[-3000:]
    out = result.stdout
    for section in ("serial console", "MQTT messages", "HTTP requests"):
        assert f"timeline: {section} (last 40, s from test start)" in out, out[-3000:]
    assert "app_cb: on_failed reason=invalid_image" in out  # the console, up to the failure
    assert '"state": "failed", "reason": "invalid_image"' in out
    assert "Captured stdout call" in out and "provisioned vb" in out
    assert f"ExpectTimeout: the console said {MASK} and {MASK}" in out  # pytest's rendering, masked

    files = list(out_dir.glob("*.jsonl"))
    assert len(files) == 1
    entries = timeline.read_jsonl(files[0])
    assert {e.kind for e in entries} == {"serial", "mqtt", "http"}
    assert [e.t for e in entries] == sorted(e.t for e in entries) and entries[0].t >= 0
    assert any(MASK in e.text and e.kind == "mqtt" for e in entries)  # the command's password field

    # the test's source shows in the traceback: the secrets appear there only as the masked literals
    shown = {"terminal": out + result.stderr, "timeline": files[0].read_text(), "JUnit XML": junit.read_text(),
             "HTML report": html.read_text()}
    for where, text in shown.items():
        for secret in (WIFI, BROKER, CMD):
            assert secret not in text, f"{secret} in the {where}"
