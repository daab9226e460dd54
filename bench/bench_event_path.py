"""Event path figures: our firmware on the virtual board, answering commands through amqtt and mosquitto.

    .venv/bin/python bench/bench_event_path.py [--commands 1000] [--burst 10000]

The device is the reference firmware (device/) on the virtual board, never a bare client standing in
for it; the test side is a DeviceLink. One board per broker, one broker after the other, in the same run.
Every wait is event driven and has a deadline. Prints each figure with PASS/FAIL beside its target and
exits non-zero if one is missed; docs/performance.md ("Event path") records them with this command.

- command -> first OTA event: `{"type": "ota", "id": "lat-N"}` without `url` is refused by the command
  task itself (`rejected`/`bad_command`, nothing queued for the OTA task, no download); timed from just
  before `DeviceLink.send()` to the event's arrival at the link (`Message.t`, stamped in paho's thread).
  `--commands` of them, one after the other. No target; printed for both brokers.
- status round trip: `{"type": "status"}` -> the status message, timed the same way
  (target on amqtt: p50 < 2 ms, p99 < 10 ms; amqtt's p50 within 2x of mosquitto's in the same run).
  Split at the command's echo: the link subscribes to `devices/+/+`, so the broker hands it its own command
  at about the time it hands it to the device. send -> echo is one broker hop; echo -> status is the
  device's receive and answer plus the answer's hop, i.e. where the firmware's own time is.
- burst: `--burst` QoS 1 commands published through the link's paho client without waiting between them
  (paho keeps its default 20 in flight and queues the rest), alternately `{"type": "ota", "id": ...}`
  without url and `{"type": "status", "id": ...}`; then a wait until every command has had its answer:
  a `rejected` event with the command's id (`bad_command`, or `busy` when it found the command queue
  full; past 16 pending busy ids the firmware answers busy with id ""), or a status message for a status
  command. A last status command afterwards is the barrier: what arrives before it is counted, so
  duplicates would show. Targets: every command answered, 0 reboots (no "rst:" line on the serial
  console, same app process, status uptime not reset), the firmware's RSS grows by less than 8 MB.
  `--inflight N` publishes the burst from a separate paho client allowed N commands in flight instead
  (the link's client keeps paho's 20, which with a command queue of 32 never fills it): a flood that
  exercises the `busy` answers.
The board is provisioned with heartbeat_s 0, so no heartbeat counts as an answer.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from bench_common import Result, report, rss_kb, start_board, verdict
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import EmbeddedBroker, MosquittoBroker
from harness.link import DeviceLink, LinkTimeout
from harness.protocol import Message
from harness.virtual import firmware
from harness.virtual.board import VirtualBoard

ANSWER_TIMEOUT_S = 10.0  # one command's answer in the sequential loops
WARMUP = 10  # commands of each kind before the timed loops (first-use costs of the broker's routes)
RSS_GROWTH_LIMIT_KB = 8 * 1024


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def app_pid(board: VirtualBoard) -> int | None:
    """The firmware process of the running boot (None between boots)."""
    proc = board._proc
    return None if proc is None else proc.pid


# --- sequential round trips --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trip:
    ms: float  # just before send() -> the answer's arrival at the link
    echo_ms: float  # just before send() -> the command itself back at the link (it subscribes to devices/+/+)
    answer: Message


def round_trip(link: DeviceLink, device_id: str, command: dict[str, Any], answer: Callable[[Message], bool],
               what: str) -> Trip:
    since = link.cursor()
    t0 = time.monotonic()
    link.send(device_id, command)
    message = link.wait_for(answer, timeout=ANSWER_TIMEOUT_S, description=what, since=since)
    echo = link.wait_for(lambda m: m.device_id == device_id and m.kind == "cmd", timeout=ANSWER_TIMEOUT_S,
                         description="the command's echo", since=since)
    return Trip((message.t - t0) * 1000.0, (echo.t - t0) * 1000.0, message)


def command_to_event(link: DeviceLink, device_id: str, count: int, tag: str) -> list[Trip]:
    trips = []
    for i in range(count):
        request_id = f"{tag}-{i}"

        def is_answer(m: Message, request_id: str = request_id) -> bool:
            return (m.device_id == device_id and m.kind == "ota" and isinstance(m.data, dict)
                    and m.data.get("id") == request_id)

        trip = round_trip(link, device_id, {"type": "ota", "id": request_id}, is_answer,
                          f"the answer to OTA command {request_id}")
        if trip.answer.data.get("state") != "rejected" or trip.answer.data.get("reason") != "bad_command":
            raise RuntimeError(f"{request_id}: expected rejected/bad_command, got {trip.answer.text}")
        trips.append(trip)
    return trips


def is_status_of(device_id: str) -> Callable[[Message], bool]:
    return lambda m: m.device_id == device_id and m.kind == "status" and isinstance(m.data, dict)


def status_round_trip(link: DeviceLink, device_id: str, count: int) -> list[Trip]:
    return [round_trip(link, device_id, {"type": "status"}, is_status_of(device_id), "a status message")
            for _ in range(count)]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99, max."""
    return statistics.median(values), statistics.quantiles(values, n=100)[98], max(values)


def describe(values: list[float]) -> str:
    p50, p99, top = percentiles(values)
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {top:.2f} ms over {len(values)}"


# --- burst -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Answers to the burst's commands, fed one device message at a time."""

    device_id: str
    ids: set[str]  # ids of the commands sent
    answered: set[str] = field(default_factory=set)  # ids answered by a rejected event
    status: int = 0  # status messages
    busy: int = 0  # busy answers, named or not
    unnamed_busy: int = 0  # busy answers with id "" (more than 16 pending)
    duplicates: int = 0
    other: list[str] = field(default_factory=list)  # device messages that answer none of them

    @property
    def answers(self) -> int:
        return len(self.answered) + self.unnamed_busy + self.status

    def feed(self, m: Message) -> None:
        if m.device_id != self.device_id or not isinstance(m.data, dict):
            return
        if m.kind == "status":
            self.status += 1
            return
        if m.kind != "ota":
            return
        request_id, state, reason = m.data.get("id"), m.data.get("state"), m.data.get("reason")
        if state != "rejected" or reason not in ("bad_command", "busy"):
            self.other.append(m.text)
            return
        if reason == "busy":
            self.busy += 1
        if request_id == "" and reason == "busy":
            self.unnamed_busy += 1
        elif request_id in self.answered:
            self.duplicates += 1
        elif request_id in self.ids:
            self.answered.add(request_id)
        else:
            self.other.append(m.text)


@dataclass
class Burst:
    sent: int
    tally: Tally
    publish_s: float  # all publishes handed to paho
    acked_s: float  # all PUBACKs in
    answered_s: float | None  # every command answered (None: not by the deadline)
    reboots: int
    reboot_signs: list[str]
    rss_before_kb: int
    rss_after_kb: int


def burst_commands(count: int) -> list[tuple[str, dict[str, Any]]]:
    commands = []
    for i in range(count):
        request_id = f"burst-{i}"
        kind = "ota" if i % 2 == 0 else "status"
        commands.append((request_id, {"type": kind, "id": request_id}))
    return commands


def status_now(link: DeviceLink, device_id: str) -> tuple[dict[str, Any], int]:
    """A fresh status and its message's index."""
    message = round_trip(link, device_id, {"type": "status"}, is_status_of(device_id), "a status message").answer
    return message.data, message.index


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as DeviceLink does


def flooder(broker: EmbeddedBroker | MosquittoBroker, inflight: int, stack: ExitStack) -> mqtt.Client:
    """A paho client allowed `inflight` unacknowledged QoS 1 publishes, connected; closed with `stack`."""
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-flooder")
    client.max_inflight_messages_set(inflight)
    client.on_connect = lambda *_args: connected.set()
    client.on_socket_open = _nodelay
    client.connect(broker.host, broker.port)
    client.loop_start()
    stack.callback(client.loop_stop)
    stack.callback(client.disconnect)
    if not connected.wait(10):
        raise RuntimeError(f"no CONNACK from {broker.url}")
    return client


def burst(link: DeviceLink, board: VirtualBoard, device_id: str, count: int, timeout: float,
          sender: mqtt.Client | None = None) -> Burst:
    """`sender`: the paho client that publishes the commands (default: the link's own)."""
    before, _ = status_now(link, device_id)
    pid = app_pid(board)
    if pid is None:
        raise RuntimeError(f"{board.name}: no firmware process is running")
    rss_before = rss_kb(pid)
    boots = board.boot_count
    serial_mark = board.serial.mark()
    commands = burst_commands(count)
    payloads = [json.dumps(command).encode() for _, command in commands]
    topic = f"{link.prefix}/{device_id}/cmd"
    tally = Tally(device_id, {request_id for request_id, _ in commands})
    client = sender or link._require_client()  # DeviceLink.send waits for each PUBACK; the burst must not

    since = link.cursor()
    t0 = time.monotonic()
    deadline = t0 + timeout
    infos = []
    for payload in payloads:
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
        infos.append(info)
    publish_s = time.monotonic() - t0
    for info in infos:  # each wait is event driven (paho's condition), all within the one deadline
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
    acked_s = time.monotonic() - t0
    unacked = sum(1 for info in infos if not info.is_published())
    if unacked:
        print(f"  {unacked} of {count} commands were not acknowledged by the broker", flush=True)

    def all_answered(m: Message) -> bool:
        tally.feed(m)
        return tally.answers >= count

    answered_s: float | None = None
    try:
        link.wait_for(all_answered, timeout=max(0.0, deadline - time.monotonic()),
                      description=f"answers to all {count} burst commands", since=since)
        answered_s = time.monotonic() - t0
    except LinkTimeout:
        print(f"  by the deadline ({timeout:g} s): {tally.answers} answers of {count}", flush=True)

    # barrier: what came before this status's answer is the burst's; a recount shows duplicates too
    after, barrier = status_now(link, device_id)
    final = Tally(device_id, tally.ids)
    for m in link.messages[since:barrier]:
        final.feed(m)
    pid_after = app_pid(board)
    rss_after = rss_kb(pid_after) if pid_after is not None else 0

    signs = [line.text for line in board.serial.lines[serial_mark:] if "rst:" in line.text]
    if board.boot_count != boots:
        signs.append(f"boot count {boots} -> {board.boot_count}")
    if pid_after != pid:
        signs.append(f"app process {pid} -> {pid_after}")
    elapsed = int(time.monotonic() - t0)
    if after.get("uptime_s", 0) < before.get("uptime_s", 0) + elapsed - 1:
        signs.append(f"uptime {before.get('uptime_s')} s -> {after.get('uptime_s')} s over {elapsed} s")
    if after.get("reset_reason") != before.get("reset_reason"):
        signs.append(f"reset_reason {before.get('reset_reason')} -> {after.get('reset_reason')}")
    rst_lines = sum(1 for s in signs if "rst:" in s)
    reboots = max(rst_lines, board.boot_count - boots, 1 if signs else 0)
    return Burst(count, final, publish_s, acked_s, answered_s, reboots, signs, rss_before, rss_after)


def report_burst(name: str, b: Burst) -> None:
    t = b.tally
    answered = "not all answered" if b.answered_s is None else f"all answered {b.answered_s:.2f} s"
    report(Result(f"burst, {name}: answers / sent", f"{t.answers} / {b.sent} ({t.busy} busy, {t.unnamed_busy} of "
                  f"them with id \"\"; {t.status} status messages; {t.duplicates} duplicates; published in "
                  f"{b.publish_s:.2f} s, acked {b.acked_s:.2f} s, {answered} after the first publish)",
                  f"{b.sent} / {b.sent}", t.answers == b.sent and t.duplicates == 0 and not t.other))
    if t.other:
        print(f"  {len(t.other)} unexpected device messages, first: {t.other[0]}", flush=True)
    report(Result(f"burst, {name}: reboots", f"{b.reboots}" + (f" ({'; '.join(b.reboot_signs[:3])})"
                                                              if b.reboot_signs else ""), "0", b.reboots == 0))
    growth = b.rss_after_kb - b.rss_before_kb
    report(Result(f"burst, {name}: firmware RSS growth", f"{growth / 1024:+.1f} MB ({b.rss_before_kb / 1024:.1f} -> "
                  f"{b.rss_after_kb / 1024:.1f} MB)", "< 8 MB", growth < RSS_GROWTH_LIMIT_KB))


# --- one broker --------------------------------------------------------------------------------------------


@dataclass
class Figures:
    command_event: list[Trip]
    status: list[float]
    burst: Burst


def measure(name: str, broker: EmbeddedBroker | MosquittoBroker, index: int, image: bytes, workdir: Path,
            args: argparse.Namespace) -> Figures:
    device_id = f"evpath{index}"
    with ExitStack() as stack:
        stack.enter_context(broker)
        link = stack.enter_context(DeviceLink(broker.url))
        board = start_board(workdir / device_id, device_id, index, image, broker.url, link, heartbeat_s=0)
        stack.callback(board.stop)
        print(f"== {name}: board {device_id} up ({load()})", flush=True)

        command_to_event(link, device_id, WARMUP, "warm")
        status_round_trip(link, device_id, WARMUP)
        t0 = time.monotonic()
        event = command_to_event(link, device_id, args.commands, "lat")
        report(Result(f"command -> first OTA event, {name}", describe([t.ms for t in event])))
        trips = status_round_trip(link, device_id, args.commands)
        status = [t.ms for t in trips]
        p50, p99, _ = percentiles(status)
        if isinstance(broker, EmbeddedBroker):
            report(Result(f"status round trip, {name}", describe(status), "p50 < 2 ms, p99 < 10 ms",
                          p50 < 2.0 and p99 < 10.0))
        else:
            report(Result(f"status round trip, {name}", describe(status)))
        report(Result(f"  of which: send -> the status command's echo at the link (one broker hop), {name}",
                      describe([t.echo_ms for t in trips])))
        report(Result(f"  and: echo -> status (device receive + answer + the answer's broker hop), {name}",
                      describe([t.ms - t.echo_ms for t in trips])))
        print(f"   ({time.monotonic() - t0:.1f} s)", flush=True)

        t0 = time.monotonic()
        sender = flooder(broker, args.inflight, stack) if args.inflight else None
        result = burst(link, board, device_id, args.burst, args.burst_timeout, sender)
        report_burst(name, result)
        print(f"   ({time.monotonic() - t0:.1f} s, {load()})", flush=True)
        link.check_protocol()
        return Figures(event, status, result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=1000, help="commands per sequential latency loop")
    parser.add_argument("--burst", type=int, default=10000, help="commands in the burst")
    parser.add_argument("--inflight", type=int, default=0,
                        help="publish the burst from a separate paho client with this many in flight (0: the link's)")
    parser.add_argument("--burst-timeout", type=float, default=300.0, help="deadline for the burst's answers (s)")
    args = parser.parse_args()
    image = firmware.build().image
    print(f"start: {load()} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        amqtt = measure("amqtt (embedded)", EmbeddedBroker(), 0, image, Path(tmp), args)
        mosquitto = measure("mosquitto", MosquittoBroker(), 1, image, Path(tmp), args)
    ratio = statistics.median(amqtt.status) / statistics.median(mosquitto.status)
    report(Result("status round trip p50, amqtt / mosquitto", f"{ratio:.2f}", "<= 2", ratio <= 2.0))
    print(f"end: {load()}")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
