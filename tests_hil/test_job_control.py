"""Job control.

D1, D5: cancel, busy, and the order of events of a successful update; streams and bursts of commands.
"""

import itertools
import time

import pytest

from harness.fwserver import FaultPlan
from harness.link import DeviceLink

DOWNLOAD_S = 8  # the throttled downloads below would take this long; every test ends them early
CANCEL_WITHIN_S = 3.0  # the firmware checks for a cancel between reads of at most 250 ms


def _slow(fw_server, image: bytes):
    return fw_server.add(image, faults=FaultPlan(throttle_bps=max(1, len(image) // DOWNLOAD_S)))


def test_cancel_during_download_then_a_new_update_succeeds(ota, link: DeviceLink, board, fw_server,
                                                           firmware) -> None:
    """D1: `cancel` mid-download: the device stops reading, reports `cancelled`, switches nothing and
    stays up; the next request installs."""
    slow = _slow(fw_server, firmware.image(version="2.0.0"))
    since = ota.start("d1", slow.url)
    link.wait_ota(board.device_id, "d1", "downloading", timeout=10, since=since, fail_on={"failed", "rejected"})
    cancel_at, sent = link.cursor(), time.monotonic()
    link.send(board.device_id, {"type": "cancel", "id": "d1"})
    ota.expect_outcome("d1", "cancelled", "cancelled", since, timeout=10)
    events = link.ota_events(board.device_id, "d1")
    cancelled = next(m for m in link.messages[cancel_at:] if m.kind == "ota" and m.data.get("state") == "cancelled")
    assert cancelled.t - sent < CANCEL_WITHIN_S, "the cancel was not acted on during the download"
    progress = [e["bytes"] for e in events if e["state"] == "downloading"]
    assert progress[-1] < slow.size, f"the download had finished: {progress}"
    assert "verifying" not in [e["state"] for e in events]
    request = fw_server.wait_for_request(0, timeout=10, artifact=slow)  # the device hung up
    assert request.bytes_sent < slow.size, request
    ota.assert_healthy_on_base(since)
    ota.install("d1-next", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")


def test_commands_while_an_update_runs(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """A second update and a reboot are `rejected`/`busy`, a cancel for another id is refused, none of
    them disturbs the running update (one request); a cancel without an id then stops it."""
    slow = _slow(fw_server, firmware.image(version="2.0.0"))
    since = ota.start("first", slow.url)
    link.wait_ota(board.device_id, "first", "downloading", timeout=10, since=since, fail_on={"failed", "rejected"})
    link.send(board.device_id, {"type": "ota", "id": "second", "url": slow.url})
    assert link.wait_ota(board.device_id, "second", "rejected", timeout=10, since=since)["reason"] == "busy"
    link.send(board.device_id, {"type": "reboot"})
    assert link.wait_ota(board.device_id, "", "rejected", timeout=10, since=since)["reason"] == "busy"
    cursor = link.cursor()
    link.send(board.device_id, {"type": "cancel", "id": "second"})
    assert link.wait_ota(board.device_id, "second", "rejected", timeout=10, since=cursor)["reason"] == "bad_command"
    assert [e["state"] for e in link.ota_events(board.device_id, "first")][-1] == "downloading"
    link.send(board.device_id, {"type": "cancel"})
    ota.expect_outcome("first", "cancelled", "cancelled", since, timeout=10)
    ota.assert_healthy_on_base(since)
    assert len(fw_server.requests_for(slow)) == 1, "the busy request was downloaded too"


def test_events_arrive_in_protocol_order(ota, link: DeviceLink, board, fw_server, firmware) -> None:
    """D5: `accepted`, `downloading`..., `verifying`, `rebooting` from the old firmware with consecutive
    `seq`, then `succeeded` from the new one with its seq restarted; progress climbs to exactly the image
    size."""
    image = firmware.image(version="2.0.0")
    since = link.cursor()
    ota.install("d5", fw_server.add(image).url, "2.0.0")
    events = [m.data for m in link.messages[since:] if m.device_id == board.device_id and m.kind == "ota"]
    assert {e["id"] for e in events} == {"d5"}, events
    states = [e["state"] for e in events]
    collapsed = [state for state, _ in itertools.groupby(states)]
    assert collapsed == ["accepted", "downloading", "verifying", "rebooting", "succeeded"], states
    old_boot, succeeded = events[:-1], events[-1]
    seqs = [e["seq"] for e in old_boot]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert succeeded["seq"] < seqs[-1] and succeeded["version"] == "2.0.0", succeeded
    progress = [e for e in old_boot if e["state"] == "downloading"]
    sizes = [e["bytes"] for e in progress]
    assert sizes == sorted(set(sizes)) and sizes[-1] == len(image), sizes
    assert {e["total"] for e in progress} == {len(image)} and progress[-1]["percent"] == 100, progress
    link.check_protocol()


def test_update_while_the_new_firmware_verifies_itself_is_busy(ota, link: DeviceLink, board, fw_server,
                                                                firmware) -> None:
    """An update sent during a new image's self-test (still `pending_verify`) is `busy` with no download;
    after `succeeded` it installs.

    esp_ota_begin() would refuse to write while the running image is unconfirmed, so the firmware says
    `busy` before downloading anything.

    Needs: slow_selftest build."""
    first = fw_server.add(firmware.image("slow_selftest", version="2.0.0"))
    since = ota.start("r1", first.url)
    link.wait_ota(board.device_id, "r1", "rebooting", timeout=20, since=since, fail_on={"failed", "rejected"})
    board.expect(r"self-test: application checks take \d+ ms", timeout=15)
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "online" and m.payload == b"online",
                  timeout=10, since=since, description="the new firmware online (subscribed to its commands)")
    asked = link.cursor()
    link.send(board.device_id, {"type": "status"})  # answered: the new firmware is listening for commands
    pending = link.wait_status(board.device_id, since=asked, timeout=10, description="a status while pending")
    assert (pending["version"], pending["ota_state"]) == ("2.0.0", "pending_verify"), pending

    second = fw_server.add(firmware.image(version="3.0.0"))
    link.send(board.device_id, {"type": "ota", "id": "r2", "url": second.url})
    event = link.wait_ota(board.device_id, "r2", "rejected", timeout=10, since=asked, fail_on={"accepted"})
    assert event["reason"] == "busy", event
    board.write("selftest go")  # the variant's self-test waits for this (or 20 s)
    board.expect(r"^OK selftest go", timeout=5)
    link.wait_ota(board.device_id, "r1", "succeeded", timeout=20, since=since, fail_on={"rolled_back"})
    assert fw_server.requests_for(second) == [], "the busy request was downloaded"

    assert ota.install("r3", second.url, "3.0.0")["partition"] == "ota_0"


QUEUE_FULL = "command queue full; send it again later"


def _wait_answers(link: DeviceLink, device_id: str, ids: list[str], since: int,
                  timeout: float) -> tuple[dict[str, dict], list[dict]]:
    """Waits until every command has its answer: its `rejected` event under its id, or a `busy` with an empty
    id (the device keeps the ids of at most 64 commands that found the queue full at once). Returns the
    answers by id, and the unnamed ones."""
    named: dict[str, dict] = {}
    unnamed: list[dict] = []
    wanted = set(ids)

    def all_answered(m) -> bool:
        if m.device_id == device_id and m.kind == "ota" and m.data.get("state") == "rejected":
            request_id = m.data.get("id")
            if request_id in wanted:
                assert request_id not in named, f"{request_id} answered twice: {named[request_id]}, {m.data}"
                named[request_id] = m.data
            elif request_id == "" and m.data.get("reason") == "busy":
                unnamed.append(m.data)
        return len(named) + len(unnamed) >= len(wanted)

    link.wait_for(all_answered, timeout=timeout, since=since, description=f"an answer to each of {len(ids)} commands")
    return named, unnamed


def test_a_stream_of_one_command_per_millisecond_is_answered_without_busy(ota, link: DeviceLink, board) -> None:
    """500 commands at one per millisecond: each gets its own answer (here `bad_command`: an update with
    no url), none is `busy` (the device's command queue never fills), and the device carries on."""
    since = ota.mark()
    ids = [f"paced-{i}" for i in range(500)]
    start = time.monotonic()
    for i, request_id in enumerate(ids):
        link.send(board.device_id, {"type": "ota", "id": request_id})
        time.sleep(max(0.0, start + (i + 1) / 1000 - time.monotonic()))  # pacing: one command per ms at most
    answers, unnamed = _wait_answers(link, board.device_id, ids, since, timeout=20)
    assert not unnamed and len(answers) == len(ids), unnamed
    assert {(a["state"], a["reason"]) for a in answers.values()} == {("rejected", "bad_command")}, answers
    ota.assert_healthy_on_base(since)


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)  # amqtt forwards slower than the device answers
def test_a_burst_of_commands_is_answered_in_full(ota, link: DeviceLink, board, broker) -> None:
    """1,000 commands in flight at once through mosquitto: each is answered once, with its own answer or
    `busy` "command queue full"; none is dropped, and the device carries on.

    mosquitto forwards them faster than the device handles them, so the command queue fills."""
    since = ota.mark()
    ids = [f"burst-{i}" for i in range(1000)]
    link.send_burst(board.device_id, [{"type": "ota", "id": request_id} for request_id in ids])
    answers, unnamed = _wait_answers(link, board.device_id, ids, since, timeout=20)
    assert len(answers) + len(unnamed) == len(ids)
    kinds = {(a["state"], a["reason"], a.get("detail") if a["reason"] == "busy" else None)
             for a in [*answers.values(), *unnamed]}
    assert kinds == {("rejected", "bad_command", None), ("rejected", "busy", QUEUE_FULL)}, \
        f"expected some commands answered and some refused with a full queue: {kinds}"
    ota.assert_healthy_on_base(since)
