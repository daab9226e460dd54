"""Power loss.

E6: power lost inside a flash write or erase of an update (virtual board only).

The host port counts the app's flash writes and erases (`board.flash_ops()`), and the board can make
power fail half-way through a chosen one: a torn write or a partial erase, then a power-on boot. The
sweep measures one update, then cuts power

- inside every k-th operation of the old firmware's update (the download into the other slot), and
  inside each of its last ones: the pending record in NVS and the otadata switch;
- inside each operation of the new firmware's first boot: its confirmation (otadata, then NVS);
- inside each operation of the boot that finds an update rolled back: the outcome queued, the last result
  and the pending record cleared (NVS), and the queue emptied once it is sent.

A cut inside an erase leaves the first half of the range erased (an interrupted sector erase leaves
the sector neither old nor blank), so a cut inside a one-sector otadata erase destroys that entry.

Whatever the cut, the board must boot a valid image, report the version that slot holds and an
outcome that fits it, and take a later update.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from harness.fwserver import Artifact
from harness.link import DeviceLink

pytestmark = [pytest.mark.virtual_only, pytest.mark.needs_power_control]

MAX_UPDATE_CUTS = 150  # every operation of an update up to this many, else every k-th
TAIL = 10  # the update's last operations (NVS record, otadata switch), each one
PARALLEL_CUTS = 3
# A later update is installed after every cut outside the download, and after every 8th inside it: a torn write
# into the passive slot is the same state wherever it tears (esp_ota_begin erases the slot again), and the
# install (a download, a reboot, a confirmation) was 30 % of the sweep's time when it followed every cut.
INSTALL_EVERY_DOWNLOAD_CUT = 8


@dataclass(frozen=True)
class Cut:
    phase: str  # "update": the old firmware's update; "confirm": the new firmware's first boot
    op: int  # 1-based, counted from the command ("update") or from the boot ("confirm")
    install_after: bool = True  # then check that a later update installs

    def __str__(self) -> str:
        return f"{self.phase}-{self.op}"


@dataclass(frozen=True)
class Measured:
    update_ops: int  # command to the reboot into the new slot
    confirm_ops: int  # the new firmware's first boot, to its confirmation


def _measure(board_factory, ota_for, fw_server, firmware) -> Measured:
    board = board_factory()
    ota = ota_for(board)
    start, boots = board.flash_ops(), len(board.flash_ops_at_boot)
    since = ota.start("measure", fw_server.add(firmware.image(version="2.0.0")).url)
    ota.link.wait_ota(board.device_id, "measure", "succeeded", timeout=20, since=since, fail_on={"rolled_back"})
    board.expect(r"app: ready", timeout=10)
    # the boot into v2 splits the count: before it the update, after it the confirmation (the board reads the
    # counter as each boot begins, so however soon v2 confirms, nothing is counted on the wrong side)
    assert len(board.flash_ops_at_boot) == boots + 1, "one reboot into v2 expected"
    v2_boot = board.flash_ops_at_boot[-1]
    update, confirm = v2_boot - start, board.flash_ops() - v2_boot
    board.stop()
    return Measured(update, confirm)


def _cuts(measured: Measured) -> list[Cut]:
    total = measured.update_ops
    stride = math.ceil(total / MAX_UPDATE_CUTS)
    tail = set(range(max(1, total - TAIL + 1), total + 1))
    download = sorted(set(range(1, total + 1, stride)) - tail)
    return [Cut("update", n, install_after=i % INSTALL_EVERY_DOWNLOAD_CUT == 0 or n == download[-1])
            for i, n in enumerate(download)] + \
           [Cut("update", n) for n in sorted(tail)] + \
           [Cut("confirm", n) for n in range(1, measured.confirm_ops + 1)]


def _outcomes(base: str) -> dict[tuple[Any, ...], str]:
    """(version, partition, last_ota state, reason) after a cut -> what it means. Nothing else is consistent."""
    return {
        (base, "ota_0", None, None): "v1 kept: cut before the update was recorded",
        (base, "ota_0", "failed", "flash_error"):
            "v1 kept, the update reported failed: cut while otadata was rewritten",
        (base, "ota_0", "rolled_back", "boot_failed"): "v1 back, v2 rolled back: cut before v2 confirmed",
        ("2.0.0", "ota_1", "succeeded", None): "v2 confirmed",
    }


def _settled_status(board, link: DeviceLink, marker: str) -> dict[str, Any]:
    """The device's latest status once everything it published so far has arrived.

    A status published at connection can still be on its way when the console says `ready`, behind the
    outcome's event and status. So: a status command, then a cancel that names no update; its `rejected`
    answer comes after every earlier message, the status answer included, and the last status before it
    is the current one.
    """
    cursor = link.cursor()
    link.send(board.device_id, {"type": "status"})
    link.send(board.device_id, {"type": "cancel", "id": marker})
    answer = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "ota" and
                           m.data.get("id") == marker and m.data.get("state") == "rejected",
                           timeout=10, since=cursor, description=f"the answer to cancel {marker}")
    statuses = [m.data for m in link.messages[cursor:answer.index]
                if m.device_id == board.device_id and m.kind == "status" and isinstance(m.data, dict)]
    assert statuses, f"no status answer before the answer to cancel {marker}"
    return statuses[-1]


def _cut_and_recover(board_factory, ota_for, link: DeviceLink, v2: Artifact, v3: Artifact,
                     base: str, cut: Cut) -> str:
    """One fresh board, one cut; returns the outcome's meaning after checking it is a consistent one."""
    board = board_factory()
    try:
        ota = ota_for(board)
        request = f"cut-{cut}"
        if cut.phase == "update":
            board.cut_power_at_op(board.flash_ops() + cut.op)
        else:
            board.power_cut_at = cut.op  # taken by the next boot: the new firmware's first
        since = ota.start(request, v2.url)
        board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=20)
        power_on = next(line for line in board.serial.lines[ota.serial_mark:] if line.text.startswith("rst:0x1"))
        slot = board.expect_loaded_app(timeout=10)
        board.expect(r"app: ready", timeout=15)
        # a status of this boot has come through the broker: its session serves (commands reach the device)
        link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "status" and m.t > power_on.t,
                      timeout=15, since=since, description=f"a status after cut {cut}")
        status = _settled_status(board, link, f"sync-{cut}")
        assert (status["partition"], status["ota_state"], status["reset_reason"]) == (slot, "valid", "poweron"), \
            f"cut {cut}: booted {slot}, status {status}"
        last = status["last_ota"]
        if last is not None:
            assert (last["id"], last["version"]) == (request, "2.0.0"), f"cut {cut}: {status}"
            event = link.wait_ota(board.device_id, request, last["state"], timeout=5, since=since)
            assert event.get("reason") == last.get("reason"), f"cut {cut}: event {event}, status {status}"
        key = (status["version"], slot, *((last["state"], last.get("reason")) if last else (None, None)))
        meaning = _outcomes(base).get(key)
        assert meaning, f"cut {cut}: inconsistent outcome {key}; status {status}"
        if cut.install_after:
            ota.install(f"after-{cut}", v3.url, "3.0.0")
        return meaning
    finally:
        board.stop()


@pytest.mark.slow
# mosquitto, not the embedded broker: the sweep connects about 360 boots of its boards, each of which took amqtt
# (in this process) milliseconds of the worker's CPU; 5.9 s of the test's own CPU on amqtt, 3.9 s on mosquitto
@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
@pytest.mark.flash_timing("none")  # ~90 cuts, each a boot and an update: counted flash operations, not their time
def test_power_cut_at_flash_operations_of_an_ota(board_factory, ota_for, link: DeviceLink, fw_server,
                                                 firmware, broker) -> None:
    """E6: power cut inside up to 150 evenly spaced of the ~310 flash writes/erases of an update (every
    3rd), each of its last 10 (NVS record, otadata switch) and each of the new firmware's confirmation: a
    valid image always boots, the status matches its slot, the outcome fits the phase (download: v1,
    nothing to report; record and otadata switch: v1, `failed`; the confirmation's otadata rewrite: v1,
    `failed`; after it: v2 confirmed), and v3 installs afterwards (after every 8th cut of the download, after
    each of the others)."""
    measured = _measure(board_factory, ota_for, fw_server, firmware)
    assert measured.update_ops > 100, f"an update of ~600 KB takes hundreds of flash operations, counted {measured}"
    assert measured.confirm_ops >= 2, f"a confirmation rewrites otadata at least, counted {measured}"
    cuts = _cuts(measured)
    print(f"{measured}; cutting power inside {len(cuts)} of them")
    v2 = fw_server.add(firmware.image(version="2.0.0"))
    v3 = fw_server.add(firmware.image(version="3.0.0"))
    base = firmware.base_version
    # Each cut has a board of its own, so they run a few at a time (boards boot and update independently).
    with ThreadPoolExecutor(max_workers=PARALLEL_CUTS) as pool:
        meanings = pool.map(lambda cut: _cut_and_recover(board_factory, ota_for, link, v2, v3, base, cut), cuts)
        results = dict(zip(cuts, meanings, strict=True))
    print("\n".join(f"  {count:4} x {meaning}" for meaning, count in Counter(results.values()).most_common()))
    outcomes = _outcomes(base)
    kept, failed = outcomes[(base, "ota_0", None, None)], outcomes[(base, "ota_0", "failed", "flash_error")]
    confirmed = outcomes[("2.0.0", "ota_1", "succeeded", None)]
    # The update: cut in the download, v1 stays with nothing to report; cut from the pending record on
    # (the record, the otadata switch), v1 stays and reports the update failed.
    assert {meaning for cut, meaning in results.items() if cut.phase == "update"} == {kept, failed}, results
    # The new firmware's confirmation rewrites the active otadata entry in place (erase, then write, as
    # esp_ota_mark_app_valid_cancel_rollback does). Cut there, no valid new entry is left: the bootloader
    # takes the older one, v1, without marking v2 aborted, so v1 reports failed/flash_error. Once the
    # entry is written, v2 stays confirmed whatever comes next (the NVS record).
    confirm = [results[cut] for cut in cuts if cut.phase == "confirm"]
    assert confirm[:2] == [failed, failed] and set(confirm[2:]) == {confirmed}, confirm
    link.check_protocol()


def _rolled_back_published(board, request: str) -> list[float]:
    """When the firmware published `rolled_back` for `request` (its own trace: also what a cut kept from the
    broker)."""
    events = [(p.t, json.loads(p.payload)) for p in board.mqtt_publishes() if p.topic.endswith("/ota")]
    return [t for t, event in events if (event.get("id"), event.get("state")) == (request, "rolled_back")]


def _measure_report_boot(board_factory, ota_for, crashing: Artifact) -> int:
    """The flash operations of v1's boot after a v2 that crashes before confirming (the bootloader rolls back)."""
    board = board_factory()
    ota = ota_for(board)
    boots = len(board.flash_ops_at_boot)
    since = ota.start_until_reboot("measure-report", crashing.url)
    ota.link.wait_ota(board.device_id, "measure-report", "rolled_back", timeout=20, since=since)
    board.expect(r"app: ready", timeout=10)
    assert len(board.flash_ops_at_boot) == boots + 2, "v2's crashing boot, then v1's, expected"
    ops = board.flash_ops() - board.flash_ops_at_boot[-1]
    board.stop()
    return ops


def _cut_in_report_boot(board_factory, ota_for, link: DeviceLink, crashing: Artifact, base: str, op: int) -> int:
    """One fresh board whose v1 loses power at `op` of the boot that reports v2's rollback; returns how many
    times the firmware published the `rolled_back` (twice only if the cut came after it was sent)."""
    board = board_factory()
    try:
        ota = ota_for(board)
        request = f"report-{op}"
        board.power_cut_at, board.power_cut_boots_ahead = op, 1  # v2's crashing run goes by, then v1's: cut
        since = ota.start(request, crashing.url)
        board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=20)
        power_on = next(line for line in board.serial.lines[ota.serial_mark:] if line.text.startswith("rst:0x1"))
        assert board.expect_loaded_app(timeout=10) == "ota_0"
        board.expect(r"app: ready", timeout=15)
        event = link.wait_ota(board.device_id, request, "rolled_back", timeout=10, since=since)
        assert (event.get("reason"), event.get("version")) == ("boot_failed", "2.0.0"), f"cut {op}: {event}"
        status = _settled_status(board, link, f"sync-report-{op}")
        assert (status["version"], status["partition"], status["ota_state"]) == (base, "ota_0", "valid"), \
            f"cut {op}: {status}"
        assert status["last_ota"] == {"id": request, "state": "rolled_back", "reason": "boot_failed",
                                      "version": "2.0.0"}, f"cut {op}: {status}"
        sent = _rolled_back_published(board, request)
        before_cut = sum(t < power_on.t for t in sent)
        # Decided once: the boot after the cut sends it once; or not again, when the cut boot had sent it and
        # emptied its queue; or again, when the cut came between the send and the queue's removal.
        assert (before_cut, len(sent) - before_cut) in {(0, 1), (1, 0), (1, 1)}, \
            f"cut {op}: rolled_back published at {sent}, power back at {power_on.t}"
        return len(sent)
    finally:
        board.stop()


@pytest.mark.slow
def test_power_cut_in_the_boot_that_reports_a_rollback(board_factory, ota_for, link: DeviceLink, fw_server,
                                                       firmware) -> None:
    """E6 + E2: v2 crashes before confirming, and power fails inside each flash operation of v1's boot that
    finds it rolled back (the outcome queued, the last result and the pending record cleared in NVS, the queue
    emptied once sent): v1 always boots, reports `rolled_back`/`boot_failed` for it (its status says so too),
    and publishes it once, twice only when the cut fell between the send and the queue's removal."""
    crashing = fw_server.add(firmware.image("crash_on_boot", version="2.0.0"))
    ops = _measure_report_boot(board_factory, ota_for, crashing)
    assert ops >= 3, f"the outcome, the last result and the pending record are written in NVS; counted {ops}"
    with ThreadPoolExecutor(max_workers=PARALLEL_CUTS) as pool:
        published = list(pool.map(
            lambda op: _cut_in_report_boot(board_factory, ota_for, link, crashing, firmware.base_version, op),
            range(1, ops + 1)))
    print(f"{ops} flash operations; rolled_back published per cut: {published}")
    assert published.count(1) > len(published) // 2, published


def test_power_cut_in_the_otadata_switch_keeps_v1(board_factory, ota_for, link: DeviceLink, fw_server,
                                                  firmware) -> None:
    """E6: the sweep's key point, in the quick run too: a cut inside the otadata write (the update's last
    flash operation) keeps v1, which reports `failed`/`flash_error` and updates again."""
    measured = _measure(board_factory, ota_for, fw_server, firmware)
    v2 = fw_server.add(firmware.image(version="2.0.0"))
    v3 = fw_server.add(firmware.image(version="3.0.0"))
    meaning = _cut_and_recover(board_factory, ota_for, link, v2, v3, firmware.base_version,
                               Cut("update", measured.update_ops))
    assert meaning == _outcomes(firmware.base_version)[(firmware.base_version, "ota_0", "failed", "flash_error")]
    link.check_protocol()
