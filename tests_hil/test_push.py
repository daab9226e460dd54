"""Push: an image through the broker.

The `push` transfer (docs/protocol.md): the image in chunks on an MQTT topic, acknowledged by the device with
a window; the same checks, progress, confirmation and rollback as a URL update.
"""

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from harness.broker import ExternalBroker
from harness.fwserver import FaultPlan
from harness.link import DeviceLink
from harness.push import Pusher, PushError, PushFaults, PushResult
from harness.virtual.flash import Flash

NVS_RECORD_OPS = 4  # flash operations of saving one OTA result in NVS (the virtual board's format)


def _install_confirmed(link: DeviceLink, board, since: int, transfer: str, version: str) -> None:
    link.wait_ota(board.device_id, transfer, "succeeded", timeout=40, since=since,
                  fail_on={"failed", "rejected", "rolled_back", "cancelled"})
    status = link.wait_status(board.device_id, lambda s: s["version"] == version and s["ota_state"] == "valid",
                              since=since, timeout=10)
    assert status["partition"] == "ota_1", status


def test_push_installs_and_confirms(ota, link: DeviceLink, board, pusher: Pusher, firmware) -> None:
    """A push of v2: `accepted`, one acknowledgement per chunk, progress to the image size, `verifying`,
    `rebooting`; v2 boots from ota_1, passes its self-test and confirms (status v2, ota_1, valid)."""
    image = firmware.image(version="2.0.0")
    since = ota.mark()
    result = pusher.push(image, "p1", version="2.0.0")
    assert result.ok, result.describe()
    chunks = -(-len(image) // pusher.chunk)
    assert result.acks[0] == 0 and result.acks[-1] == (chunks - 1) * pusher.chunk, result.acks
    assert result.rewinds == result.stall_rewinds == 0, result
    _install_confirmed(link, board, since, "p1", "2.0.0")
    states = [e["state"] for e in link.ota_events(board.device_id, "p1")]
    assert states[0] == "accepted" and states[-3:] == ["verifying", "rebooting", "succeeded"], states
    progress = [e["bytes"] for e in link.ota_events(board.device_id, "p1") if e["state"] == "downloading"]
    assert progress[-1] == len(image) and progress == sorted(progress), progress


def _push_command(transfer: str, image: bytes, **fields: object) -> dict[str, object]:
    command: dict[str, object] = {"type": "push", "id": transfer, "size": len(image),
                                  "sha256": hashlib.sha256(image).hexdigest()}
    return {**command, **fields}


def _slot(board, label: str) -> bytes:
    part = next(p for p in board.partitions if p.label == label)
    with Flash(board.flash_path) as flash:
        return flash.read(part.offset, part.size)


def _push_in_background(pusher: Pusher, image: bytes, transfer: str, **kwargs) -> Future[PushResult]:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pusher").submit(pusher.push, image, transfer,
                                                                                 **kwargs)


def _stalled_push(ota, link: DeviceLink, board, pusher: Pusher, image: bytes, transfer: str,
                  idle_timeout_s: int = 30, timeout_s: int = 300) -> tuple[int, Future[PushResult]]:
    """A push that stops sending after 8 chunks; returns once the device reported progress."""
    since = ota.mark()
    future = _push_in_background(pusher, image, transfer, idle_timeout_s=idle_timeout_s, timeout_s=timeout_s,
                                 faults=PushFaults(stall_at=8 * pusher.chunk))
    link.wait_ota(board.device_id, transfer, "downloading", timeout=10, since=since, fail_on={"failed", "rejected"})
    return since, future


def test_push_with_a_wrong_sha256_is_refused(ota, pusher: Pusher, firmware) -> None:
    """B4 (push): the whole image arrives but its SHA-256 differs from the command's: `failed`/`sha256_mismatch`
    before the boot partition is switched; v1 keeps running from ota_0, healthy."""
    since = ota.mark()
    result = pusher.push(firmware.image(version="2.0.0"), "p-sha", faults=PushFaults(sha256="0" * 64))
    assert (result.state, result.event.get("reason")) == ("failed", "sha256_mismatch"), result.describe()
    ota.assert_healthy_on_base(since)


@pytest.mark.virtual_only
def test_push_larger_than_the_slot_is_refused_before_erasing(ota, board, pusher: Pusher, firmware) -> None:
    """B10 (push): a push announcing more bytes than the passive slot holds is `rejected`/`too_large` before the
    device asks for a chunk: ota_1 is not touched (not a byte of it changes), and the only flash operations are
    the NVS record of the outcome; v1 healthy.

    Needs: the virtual board's flash file and flash operation count.
    """
    since = ota.mark()
    ops, slot_before = board.flash_ops(), _slot(board, "ota_1")
    result = pusher.push(firmware.image(version="2.0.0"), "p-big", faults=PushFaults(size=8 * 1024 * 1024))
    assert (result.state, result.event.get("reason")) == ("rejected", "too_large"), result.describe()
    assert result.acks == [] and result.chunks_sent == 0, result
    ota.assert_healthy_on_base(since)
    assert _slot(board, "ota_1") == slot_before, "the device erased or wrote ota_1 for an image it refused"
    # the outcome's NVS record: a few writes, far from the slot's erase and the 300+ writes of an image
    assert board.flash_ops() - ops <= NVS_RECORD_OPS, "more flash operations than recording the outcome takes"


def test_push_idle_deadline_between_chunks(ota, link: DeviceLink, board, pusher: Pusher, firmware) -> None:
    """The pusher stops sending after 8 chunks: `failed`/`idle_timeout` once `idle_timeout_s` (1 s) passes
    without a chunk; v1 healthy."""
    since, future = _stalled_push(ota, link, board, pusher, firmware.image(version="2.0.0"), "p-idle",
                                  idle_timeout_s=1)
    result = future.result(timeout=15)
    assert (result.state, result.event.get("reason")) == ("failed", "idle_timeout"), result.describe()
    assert result.duration_s >= 1, result
    ota.assert_healthy_on_base(since)


def test_push_overall_deadline(ota, link: DeviceLink, board, pusher: Pusher, firmware) -> None:
    """The whole push may take `timeout_s` (1 s here, the idle deadline 30 s): a pusher that stalls is ended
    `failed`/`timeout`; v1 healthy."""
    since, future = _stalled_push(ota, link, board, pusher, firmware.image(version="2.0.0"), "p-deadline",
                                  timeout_s=1)
    result = future.result(timeout=15)
    assert (result.state, result.event.get("reason")) == ("failed", "timeout"), result.describe()
    ota.assert_healthy_on_base(since)


def test_push_of_the_running_version_is_refused(ota, pusher: Pusher, firmware) -> None:
    """A3 (push): the image's head names the running version: `rejected`/`same_version` once its first chunk
    is in, before the slot is erased; v1 healthy."""
    since = ota.mark()
    result = pusher.push(firmware.image(version=firmware.base_version), "p-same")
    assert (result.state, result.event.get("reason")) == ("rejected", "same_version"), result.describe()
    ota.assert_healthy_on_base(since)


def test_cancel_during_a_push(ota, link: DeviceLink, board, pusher: Pusher, firmware) -> None:
    """D1 (push): `cancel` with the transfer's id mid-push ends it `cancelled` at once; nothing switched, v1
    healthy; a new push then installs."""
    since, future = _stalled_push(ota, link, board, pusher, firmware.image(version="2.0.0"), "p-cancel")
    link.send(board.device_id, {"type": "cancel", "id": "p-cancel"})
    result = future.result(timeout=10)
    assert (result.state, result.event.get("reason")) == ("cancelled", "cancelled"), result.describe()
    assert result.duration_s < 10, result
    ota.assert_healthy_on_base(since)
    since = ota.mark()
    assert pusher.push(firmware.image(version="2.0.0"), "p-after").ok
    _install_confirmed(link, board, since, "p-after", "2.0.0")


def test_url_update_during_a_push_is_busy(ota, link: DeviceLink, board, pusher: Pusher, fw_server,
                                          firmware) -> None:
    """A URL `ota` while a push runs is `rejected`/`busy` (one update at a time), so is a second push, and the
    push goes on; then cancelled, v1 healthy."""
    image = firmware.image(version="2.0.0")
    since, future = _stalled_push(ota, link, board, pusher, image, "p-first")
    artifact = fw_server.add(image)
    link.send(board.device_id, {"type": "ota", "id": "url-second", "url": artifact.url})
    assert link.wait_ota(board.device_id, "url-second", "rejected", timeout=10, since=since)["reason"] == "busy"
    link.send(board.device_id, _push_command("p-third", image))
    assert link.wait_ota(board.device_id, "p-third", "rejected", timeout=10, since=since)["reason"] == "busy"
    assert [e["state"] for e in link.ota_events(board.device_id, "p-first")][-1] == "downloading"
    link.send(board.device_id, {"type": "cancel", "id": "p-first"})
    assert future.result(timeout=10).state == "cancelled"
    assert not fw_server.requests_for(artifact), "the busy URL update was downloaded"
    ota.assert_healthy_on_base(since)


def test_push_during_a_url_update_is_busy(ota, link: DeviceLink, board, pusher: Pusher, fw_server,
                                          firmware) -> None:
    """A push while a URL update downloads is `rejected`/`busy` before any chunk is asked for; the URL update
    is cancelled, v1 healthy."""
    image = firmware.image(version="2.0.0")
    slow = fw_server.add(image, faults=FaultPlan(throttle_bps=len(image) // 8))
    since = ota.start("url-first", slow.url)
    link.wait_ota(board.device_id, "url-first", "downloading", timeout=10, since=since, fail_on={"failed", "rejected"})
    result = pusher.push(image, "p-second")
    assert (result.state, result.event.get("reason")) == ("rejected", "busy"), result.describe()
    assert result.acks == [] and result.chunks_sent == 0, result
    link.send(board.device_id, {"type": "cancel", "id": "url-first"})
    ota.expect_outcome("url-first", "cancelled", "cancelled", since, timeout=10)
    ota.assert_healthy_on_base(since)


def test_the_running_push_s_command_sent_again_is_acknowledged_not_refused(ota, link: DeviceLink, board,
                                                                           pusher: Pusher, firmware) -> None:
    """A pusher that sends its command again (its first answer lost, or the device not yet connected when it
    went out) reaches a device already receiving that transfer: the same id, size and SHA-256 are acknowledged
    again where the transfer is, not answered `busy`, and the push goes on to install v2."""
    image = firmware.image(version="2.0.0")
    since, future = _stalled_push(ota, link, board, pusher, image, "p-again")
    stalled_at = 8 * pusher.chunk

    def ack_at_stall(m) -> bool:
        return m.kind == "push_ack" and m.data.get("id") == "p-again" and m.data.get("next") == stalled_at

    link.wait_for(ack_at_stall, timeout=10, since=since, description="the acknowledgement of the 8th chunk")
    again = ota.mark()
    link.send(board.device_id, _push_command("p-again", image, window=pusher.window, chunk=pusher.chunk))
    link.wait_for(ack_at_stall, timeout=10, since=again, description="the acknowledgement sent again")
    pusher.resume()
    result = future.result(timeout=40)
    assert result.ok, result.describe()
    refused = [e for e in link.ota_events(board.device_id, "p-again") if e["state"] == "rejected"]
    assert not refused, refused
    _install_confirmed(link, board, since, "p-again", "2.0.0")


def test_dropped_duplicated_and_reordered_chunks_do_not_corrupt_the_slot(link: DeviceLink, board, pusher: Pusher,
                                                                         ota, firmware) -> None:
    """C5 (push): chunks 3 and 10 dropped, each pair of chunks sent in reverse order, every chunk twice: the
    device writes only the chunk at its `next`, the pusher goes back to it when told (go-back-N: a dropped chunk
    is asked for again), and the image installs and confirms (its SHA-256 checked)."""
    image = firmware.image(version="2.0.0")
    since = ota.mark()
    result = pusher.push(image, "p-faults", faults=PushFaults(drop=frozenset({3, 10}), duplicate=True, reorder=True))
    assert result.ok, result.describe()
    assert result.rewinds >= 2 and result.chunks_sent > 2 * (len(image) // pusher.chunk), result
    assert result.stall_rewinds == 0, f"the device did not ask for the dropped chunks; the pusher timed out: {result}"
    _install_confirmed(link, board, since, "p-faults", "2.0.0")


def test_copies_of_chunks_never_send_the_pusher_back(link: DeviceLink, board, pusher: Pusher, ota, firmware) -> None:
    """C5 (push, copies): every chunk sent twice: the device queues only the chunks in order (copies never take a
    place in its chunk queue of window + 2) and answers a copy, once the chunk it copies is written, with `ignored`
    below `next`, which never sends the pusher back; the image installs and confirms."""
    since = ota.mark()
    result = pusher.push(firmware.image(version="2.0.0"), "p-copies", faults=PushFaults(duplicate=True))
    assert result.ok, result.describe()
    acks = [m.data for m in link.messages[since:] if m.kind == "push_ack" and m.data.get("id") == "p-copies"]
    go_backs = [a for a in acks if a.get("ignored", -1) >= a["next"]]
    assert acks and not go_backs, f"copies answered as gaps: {go_backs[:3]}"
    assert any(0 <= a.get("ignored", -1) < a["next"] for a in acks), f"no copy was answered: {acks}"
    assert result.rewinds == 0 and result.stall_rewinds == 0, result
    _install_confirmed(link, board, since, "p-copies", "2.0.0")


@pytest.mark.flash_timing("chip")
@pytest.mark.waits  # seconds of the flash's time, with little CPU
def test_a_push_at_a_chip_s_flash_pace_waits_on_the_window_without_a_resend(link: DeviceLink, board, pusher: Pusher,
                                                                           ota, firmware) -> None:
    """On a chip the flash, not the broker, is the slow side (the virtual board is given an ESP32's flash rates
    here): each 16 KiB chunk takes about a quarter of a second to erase and write, so the pusher fills its
    window and waits for the device (a tenth of a second a chunk at the least). The device's chunk queue
    (window + 2) holds all the window lets through: no chunk is turned away and asked for again, the pusher
    never goes back, and v2 installs and confirms."""
    image = firmware.image(version="2.0.0")
    since = ota.mark()
    result = pusher.push(image, "p-slow", version="2.0.0")
    assert result.ok, result.describe()
    chunks = -(-len(image) // pusher.chunk)
    assert result.duration_s >= 0.1 * chunks, f"{chunks} chunks in {result.duration_s:.2f} s: the flash took no time"
    acks = [m.data for m in link.messages[since:] if m.kind == "push_ack" and m.data.get("id") == "p-slow"]
    turned_away = [a for a in acks if "ignored" in a]
    assert acks and not turned_away, f"chunks turned away by a full queue: {turned_away[:3]}"
    assert result.rewinds == 0 and result.stall_rewinds == 0, result
    _install_confirmed(link, board, since, "p-slow", "2.0.0")


def test_lost_acknowledgements_are_recovered_by_the_pusher_s_timer(link: DeviceLink, board, pusher: Pusher, ota,
                                                                   firmware) -> None:
    """C5 (push, lost acknowledgements): the first window's acknowledgements never reach the pusher (as when its
    connection drops): after `ack_timeout` it sends the window again, the device answers those copies with its
    `next`, and the push goes on, long before the idle deadline."""
    pusher.ack_timeout = 0.5
    since = ota.mark()
    result = pusher.push(firmware.image(version="2.0.0"), "p-lost", idle_timeout_s=5,
                         faults=PushFaults(lose_acks=pusher.window))
    assert result.ok, result.describe()
    assert result.stall_rewinds >= 1, f"no acknowledgement was lost: {result}"
    acks = [m.data for m in link.messages[since:] if m.kind == "push_ack" and m.data.get("id") == "p-lost"]
    assert any(0 <= a.get("ignored", -1) < a["next"] for a in acks), f"the device did not answer the copies: {acks}"
    _install_confirmed(link, board, since, "p-lost", "2.0.0")


def test_push_at_qos_0(link: DeviceLink, board, broker, ota, firmware) -> None:
    """A push whose chunks go at QoS 0 (no PUBACK, nothing retransmitted by MQTT) installs and confirms."""
    since = ota.mark()
    with Pusher(broker.url, board.device_id, prefix=link.prefix, qos=0) as pusher:
        result = pusher.push(firmware.image(version="2.0.0"), "p-qos0")
    assert result.ok, result.describe()
    _install_confirmed(link, board, since, "p-qos0", "2.0.0")


def test_push_in_4_kib_chunks(link: DeviceLink, board, broker, ota, firmware) -> None:
    """A push in 4096-byte chunks, window 8 (the protocol's defaults: each chunk fits esp-mqtt's buffer and
    arrives as one MQTT_EVENT_DATA, where the pusher's 16 KiB chunks arrive in several and are assembled)
    installs and confirms, one acknowledgement per chunk, and the acknowledgements carry that chunk and window."""
    image = firmware.image(version="2.0.0")
    since = ota.mark()
    with Pusher(broker.url, board.device_id, prefix=link.prefix, window=8, chunk=4096) as pusher:
        result = pusher.push(image, "p-defaults")
    assert result.ok, result.describe()
    first_ack = link.wait_for(lambda m: m.kind == "push_ack", timeout=1, since=since, description="the first ack")
    assert first_ack.data["chunk"] == 4096 and first_ack.data["window"] == 8, first_ack.data
    assert len(result.acks) == -(-len(image) // 4096), result.acks
    _install_confirmed(link, board, since, "p-defaults", "2.0.0")


def test_push_resumes_after_a_broker_restart(ota, link: DeviceLink, board, pusher: Pusher, broker,
                                             firmware) -> None:
    """C5 (push): the broker restarts mid-push; both ends reconnect, the device acknowledges its `next` again and
    the pusher goes on from that last acknowledged offset (no chunk before it sent again, at most one window
    twice); the image installs.

    Needs: the embedded broker (it is stopped and started).
    """
    if isinstance(broker, ExternalBroker):
        pytest.skip("restarts the broker: needs the embedded broker, not --hil-broker URL")
    image = firmware.image(version="2.0.0")
    since, future = _stalled_push(ota, link, board, pusher, image, "p-restart")
    stalled_at = link.wait_for(lambda m: m.kind == "push_ack" and m.data.get("next") == 8 * pusher.chunk,
                               timeout=10, since=since, description="the acknowledgement of the 8th chunk")
    broker.stop()
    broker.start()
    link.wait_connection(timeout=10)
    resent = link.wait_for(lambda m: m.kind == "push_ack", timeout=15, since=stalled_at.index + 1,
                           description="the device's acknowledgement after reconnecting")
    assert resent.data["next"] == 8 * pusher.chunk and "ignored" not in resent.data, resent.data
    pusher.resume()
    result = future.result(timeout=30)
    assert result.ok, result.describe()
    before, after = result.offsets[:8], result.offsets[8:]  # the stall came after 8 chunks, all acknowledged
    assert before == [i * pusher.chunk for i in range(8)], result.offsets[:10]
    assert after and min(after) == 8 * pusher.chunk, f"not resumed from the acknowledged offset: {after[:10]}"
    # chunks in flight when the device's repeated acknowledgement arrives may be sent once more: one window at most
    assert result.chunks_sent <= -(-len(image) // pusher.chunk) + pusher.window, result
    _install_confirmed(link, board, since, "p-restart", "2.0.0")


@pytest.mark.parametrize(("fields", "detail"), [
    ({"size": None}, "size is required"),
    ({"size": 0}, "size is required"),
    ({"sha256": None}, "sha256 is required"),
    ({"sha256": "12ab"}, "sha256 is required"),
    ({"window": 17}, "window must be"),
    ({"window": 0}, "window must be"),
    ({"chunk": 511}, "chunk must be"),
    ({"chunk": 16385}, "chunk must be"),
    ({"window": 8, "chunk": 16384}, "window x chunk must be at most 65536"),
    ({"id": "p/bad"}, "id must not contain /, + or #"),
    ({"id": "p+bad"}, "id must not contain /, + or #"),
    ({"timeout_s": 0}, "timeout_s must be an integer from 1 to 86400"),
], ids=["no_size", "zero_size", "no_sha256", "short_sha256", "window_17", "window_0", "chunk_511", "chunk_16385",
        "window_x_chunk_128k", "id_with_slash", "id_with_plus", "timeout_0"])
def test_malformed_push_is_a_bad_command(ota, link: DeviceLink, board, firmware, fields: dict, detail: str) -> None:
    """B11 (push): a push without a valid `size` or `sha256`, with a window outside 1..16, a chunk outside
    512..16384 bytes, more than 64 KiB in flight, an id that could not name its chunks' topics (`/`, `+`, `#`)
    or a deadline out of range, is `rejected`/`bad_command` with a detail naming the field; nothing starts, v1
    healthy."""
    command = {k: v for k, v in {**_push_command("p-bad", firmware.image(version="2.0.0")), **fields}.items()
               if v is not None}
    since = ota.send(command)
    event = ota.expect_outcome(command["id"], "rejected", "bad_command", since, timeout=10)
    assert detail in event["detail"], event
    assert not [m for m in link.messages[since:] if m.kind == "push_ack"], "the device asked for chunks"
    ota.assert_healthy_on_base(since)


@pytest.mark.virtual_only
def test_a_push_started_before_the_device_connects_is_sent_again_when_it_does(ota, link: DeviceLink, board,
                                                                              pusher: Pusher, firmware) -> None:
    """`harness push` run while the board is still starting (no online flag on the broker yet): the push command
    finds no device subscribed and is lost, as the device's session is clean; the `online` it publishes once
    connected makes the pusher send the command again, and v2 installs.

    Needs: a board kept off while the push starts (virtual board).
    """
    image = firmware.image(version="2.0.0")
    online = f"devices/{board.device_id}/online"
    since = ota.mark()
    board.stop()
    link.wait_for(lambda m: m.topic == online and m.payload == b"offline", timeout=10, since=since,
                  description="the board's last will")
    link.publish(online, b"", retain=True)  # as on a broker that never saw the device: no flag at all
    since = ota.mark()
    future = _push_in_background(pusher, image, "p-late", start_timeout=20)
    link.wait_for(lambda m: m.kind == "cmd" and m.data.get("id") == "p-late", timeout=10, since=since,
                  description="the push command")
    board.power_on()
    result = future.result(timeout=40)
    assert result.ok, result.describe()
    starts = [m for m in link.messages[since:] if m.kind == "cmd" and m.data.get("id") == "p-late"]
    assert len(starts) >= 2, [m.describe() for m in starts]  # the first, lost, and one per `online` since
    _install_confirmed(link, board, since, "p-late", "2.0.0")


@pytest.mark.virtual_only
@pytest.mark.needs_power_control
def test_power_cut_during_a_push(ota, link: DeviceLink, board, pusher: Pusher, firmware) -> None:
    """E6 (push): power fails inside a flash write of the pushed image: the pusher stops with an error that
    says the device went offline, the board boots v1 from ota_0 (valid), and a new push installs.

    Needs: power cuts at a flash operation (virtual board).
    """
    image = firmware.image(version="2.0.0")
    since = ota.mark()
    board.cut_power_at_op(board.flash_ops() + 20)
    with pytest.raises(PushError, match="went offline during the push"):
        pusher.push(image, "p-cut")
    board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=20)
    assert board.expect_loaded_app(timeout=10) == "ota_0"
    link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron" and s["partition"] == "ota_0" and
                     s["ota_state"] == "valid" and s["version"] == firmware.base_version, since=since, timeout=20)
    since = ota.mark()
    assert pusher.push(image, "p-after-cut").ok
    _install_confirmed(link, board, since, "p-after-cut", "2.0.0")
