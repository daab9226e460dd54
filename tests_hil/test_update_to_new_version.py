"""Version and happy path.

A1: the board runs v1 from ota_0, updates to v2 over HTTP, reboots into ota_1 and confirms it.
"""

import itertools
import math

import pytest

from harness.link import DeviceLink


def test_update_to_new_version(board, link: DeviceLink, fw_server, firmware) -> None:
    """A1: v1 → v2 over HTTP: progress strictly increasing to the image size, at most one event a second
    (first and last always), reboot into ota_1, self-test, confirmation."""
    before = link.latest_status(board.device_id)
    assert before["version"] == firmware.base_version
    assert before["partition"] == "ota_0"

    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image)
    since = link.cursor()
    board.serial.skip_to_end()
    link.send(board.device_id, {"type": "ota", "id": "r1", "url": artifact.url})

    link.wait_ota(board.device_id, "r1", "rebooting", timeout=20, since=since, fail_on={"failed", "rejected"})
    board.expect(r"rst:0xc \(SW_CPU_RESET\)", timeout=10)
    assert board.expect_loaded_app(timeout=10) == "ota_1"
    board.expect(r"app_init: App version:\s+2\.0\.0", timeout=10)
    link.wait_ota(board.device_id, "r1", "succeeded", timeout=20, since=since, fail_on={"failed", "rolled_back"})

    progress = [m for m in link.messages[since:] if m.kind == "ota" and m.data.get("id") == "r1"
                and m.data.get("state") == "downloading"]
    assert progress, "no downloading events"
    sizes = [m.data["bytes"] for m in progress]
    assert sizes == sorted(set(sizes)), f"progress not strictly increasing: {sizes}"
    assert sizes[-1] == len(image) and progress[-1].data["total"] == len(image) and progress[-1].data["percent"] == 100
    # Throttled to one a second, the first and the last always (on the virtual board's instant flash the download
    # takes a fraction of a second; a chip's flash makes it seconds: see the next scenario).
    seconds = progress[-1].t - progress[0].t  # as received: a little shorter or longer than on the device
    assert len(progress) <= 2 + math.ceil(seconds), f"{len(progress)} progress events in {seconds:.1f} s: {sizes}"

    after = link.wait_status(
        board.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid", since=since, timeout=10
    )
    assert after["partition"] == "ota_1"
    link.check_protocol()


@pytest.mark.flash_timing("chip")
@pytest.mark.waits  # seconds of the flash's time, with little CPU
def test_an_update_at_a_chip_s_flash_pace_answers_commands_and_reports_once_a_second(
        board_factory, link: DeviceLink, fw_server, firmware) -> None:
    """A1 at an ESP32's flash speed (a real board's own; the virtual board's is given an ESP32's write and erase
    rates here): the update takes seconds, most of them erasing and writing ota_1 sector by sector. A status
    command sent meanwhile is answered before `rebooting` (the commands' task is not the one writing flash), and
    the progress events come once a second, the first and the last always: all but the last at least a second
    apart (as received: 0.8 s, for the broker's and the network's jitter), so a download of several seconds has
    several."""
    board = board_factory(heartbeat_s=0)  # no heartbeat: a status message mid-update is the command's answer
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image)
    since = link.cursor()
    link.send(board.device_id, {"type": "ota", "id": "slow", "url": artifact.url})
    link.wait_ota(board.device_id, "slow", "downloading", timeout=20, since=since, fail_on={"failed", "rejected"})
    asked = link.cursor()
    link.send(board.device_id, {"type": "status"})
    answer = link.wait_for(lambda m: m.kind == "status" and m.device_id == board.device_id, timeout=10,
                           description="the status command's answer", since=asked)
    link.wait_ota(board.device_id, "slow", "rebooting", timeout=60, since=since, fail_on={"failed", "rejected"})
    rebooting = next(m for m in link.messages[since:] if m.kind == "ota" and m.data.get("state") == "rebooting")
    assert answer.index < rebooting.index, "the status command waited for the update to end"
    link.wait_ota(board.device_id, "slow", "succeeded", timeout=30, since=since, fail_on={"failed", "rolled_back"})

    progress = [m for m in link.messages[since:] if m.kind == "ota" and m.data.get("state") == "downloading"]
    assert progress[-1].data["bytes"] == len(image)
    gaps = [round(b.t - a.t, 2) for a, b in itertools.pairwise(progress[:-1])]  # the last may come any time
    assert len(progress) >= 4 and all(gap >= 0.8 for gap in gaps), f"{len(progress)} events, gaps (s): {gaps}"
    link.check_protocol()


@pytest.mark.virtual_only  # a real chip's publish times are not known: see the docstring
def test_timeline_of_an_update_is_in_causal_order(board, ota, link: DeviceLink, fw_server, firmware,
                                                   hil_record) -> None:
    """The report's chart marks come in the order they happened: `accepted` < image request < `rebooting`
    < reset line < `succeeded`.

    The report's OTA chart is drawn from the test's timeline. The device says `accepted` before it requests
    the image, says `rebooting` (and waits for the broker's PUBACK) before it restarts, and the new firmware
    says `succeeded` after that boot."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    ota.install("order", artifact.url, "2.0.0")
    entries = hil_record.timeline()

    def first(what: str, match) -> float:
        found = next((e for e in entries if match(e)), None)
        assert found is not None, f"no {what} in the timeline"
        return found.t

    def ota_state(state: str):
        return lambda e: e.kind == "mqtt" and e.source.endswith("/ota") and f'"state": "{state}"' in e.text \
            and '"id": "order"' in e.text

    serial = [e for e in entries if e.kind == "serial"]
    written = next(i for i, e in enumerate(serial) if "update order written to ota_1; rebooting" in e.text)
    reset = next(e.t for e in serial[written:] if e.text.startswith("rst:"))
    marks = {
        "accepted": first("accepted event", ota_state("accepted")),
        "HTTP request": first("image request", lambda e: e.kind == "http" and e.source == artifact.path),
        "rebooting": first("rebooting event", ota_state("rebooting")),
        "reset line": reset,
        "succeeded": first("succeeded event", ota_state("succeeded")),
    }
    assert list(marks.values()) == sorted(marks.values()), f"out of order (s from test start): {marks}"
