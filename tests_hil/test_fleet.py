"""Fleets: a staged rollout over many boards, with health gates (issue 17; harness/fleet, docs/fleet.md).

The rollout driver sends each cohort its `ota` commands through the link and follows the devices' events, as a
rollout system (AWS IoT Jobs, hawkBit, Memfault) would; the boards are the reference firmware, many at once.
A board behind a bad link gets its downloads through a fault proxy (its own URL), a board that is offline is
stopped.
"""

from __future__ import annotations

import pytest

from harness.fleet import AbortRule, RolloutPlan
from harness.link import DeviceLink
from harness.protocol import Message


def _ota(url: str, **fields: object) -> dict[str, object]:
    return {"type": "ota", "url": url, "version": "2.0.0", **fields}


def _commanded(link: DeviceLink, device_ids: list[str], since: int = 0) -> set[str]:
    """The devices among `device_ids` that were sent any command since `since`."""
    wanted = set(device_ids)
    return {m.device_id for m in link.messages[since:] if m.kind == "cmd" and m.device_id in wanted}


def _versions(link: DeviceLink, boards: list) -> dict[str, str]:
    return {b.device_id: (link.latest_status(b.device_id) or {}).get("version") for b in boards}


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
@pytest.mark.boards(100)
def test_a_good_v2_reaches_100_boards_through_canary_5_then_25_then_100_percent(fleet, rollout, broker, fw_server,
                                                                                  firmware, link: DeviceLink) -> None:
    """F1: 100 boards, a good v2, canary 5 → 25 % → 100 %: each cohort starts only after the one before passed
    its gate, and every board ends confirmed on v2 (its status says so)."""
    boards = fleet(100, heartbeat_s=0)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    result = rollout(boards, _ota(artifact.url), RolloutPlan(canary=5, steps=(25, 100), device_timeout_s=60)).run()
    assert result.state == "succeeded", result.table()
    assert [(c.name, len(c.devices), c.verdict) for c in result.cohorts] == [
        ("canary 5", 5, "passed"), ("25 %", 20, "passed"), ("100 %", 75, "passed")], result.table()
    assert result.count("succeeded") == 100, result.table()
    for before, after in zip(result.cohorts, result.cohorts[1:]):
        assert after.started_at >= before.ended_at, "a cohort started before the one before it had ended"
    # one board at a time: a predicate that looked at all 100 boards' statuses for each of the run's 1,200
    # messages held the link's lock for seconds (paho's thread waiting on it) and timed out under load
    for board in boards:
        link.wait_status(board.device_id, lambda s: s.get("version") == "2.0.0" and s.get("ota_state") == "valid",
                         since=since, timeout=15, description=f"{board.device_id}'s status on 2.0.0, confirmed")


@pytest.mark.boards(20)
def test_a_v2_that_fails_its_self_test_is_stopped_at_the_canary(fleet, rollout, fw_server, firmware,
                                                                 link: DeviceLink) -> None:
    """F2: a v2 that fails its self-test rolls back on both canaries; the gate stops the rollout there, and no
    other board is even sent a command (all 18 still run v1)."""
    boards = fleet(20, heartbeat_s=0)
    bad = fw_server.add(firmware.image("selftest_fail", version="2.0.0"))
    since = link.cursor()
    result = rollout(boards, _ota(bad.url), RolloutPlan(canary=2, steps=(25, 100), device_timeout_s=30)).run()
    assert result.state == "aborted" and "canary 2" in (result.reason or ""), result.table()
    assert [result.devices[b.device_id].state for b in boards[:2]] == ["rolled_back", "rolled_back"], result.table()
    assert result.count("skipped") == 18, result.table()
    rest = [b.device_id for b in boards[2:]]
    assert not _commanded(link, rest, since), "a board past the canary was sent a command"
    assert set(_versions(link, boards[2:]).values()) == {firmware.base_version}


@pytest.mark.boards(20)
def test_failing_boards_abort_the_rollout_at_the_threshold_once_the_minimum_ran(fleet, rollout, fault_proxy,
                                                                                 fw_server, firmware,
                                                                                 link: DeviceLink) -> None:
    """F3: 2 of 20 boards (10 %) cannot download (their link refuses connections): with the abort rule 10 % of
    at least 5 executed, the rollout aborts when the 5th outcome comes in, not at the first failure, and the
    boards after it are never commanded."""
    boards = fleet(20, heartbeat_s=0)
    refusing = fault_proxy(fw_server.base_url, name="refusing-link")
    refusing.set_refuse(True)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    broken = {boards[0].device_id, boards[1].device_id}

    def command(device_id: str) -> dict[str, object]:
        url = refusing.url_for(artifact.url) if device_id in broken else artifact.url
        return _ota(url, retries=0)

    since = link.cursor()
    plan = RolloutPlan(canary=5, steps=(100,), success_threshold=0.0, abort=AbortRule(percent=10, min_executed=5))
    result = rollout(boards, command, plan).run()
    assert result.state == "aborted" and "2 of 5 executed devices failed" in (result.reason or ""), result.table()
    assert {d for d in broken} == {d.device_id for d in result.devices.values() if d.state == "failed"}
    assert result.count("succeeded") == 3 and result.count("skipped") == 15, result.table()
    assert not _commanded(link, [b.device_id for b in boards[5:]], since), "a board after the abort was commanded"


@pytest.mark.slow
@pytest.mark.boards(10)
@pytest.mark.virtual_only  # the 2 s device timeout is for boards that install well within it, which a chip's flash
@pytest.mark.flash_timing("none")  # (about 5 s for the reference firmware) does not: the online ones would time out
def test_offline_boards_time_out_and_are_reported_not_waited_for(fleet, rollout, fw_server, firmware) -> None:
    """F4: 2 of 10 boards are off: the rollout gives each `device_timeout_s` (2 s), reports them `timed_out`
    (AWS's TIMED_OUT), and with a success threshold of 80 % the rest install and the rollout succeeds."""
    boards = fleet(10, heartbeat_s=0)
    for board in boards[:2]:
        board.stop()
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    plan = RolloutPlan(canary=0, steps=(100,), success_threshold=0.8, abort=None, device_timeout_s=2)
    result = rollout(boards, _ota(artifact.url), plan).run()
    assert result.state == "succeeded", result.table()
    assert [result.devices[b.device_id].state for b in boards[:2]] == ["timed_out", "timed_out"], result.table()
    assert result.count("succeeded") == 8, result.table()
    for board in boards[:2]:
        assert 2 <= result.devices[board.device_id].seconds < 3, result.table()


@pytest.mark.slow
@pytest.mark.boards(3)
def test_a_retry_after_idle_timeout_succeeds(fleet, rollout, fault_proxy, fw_server, firmware,
                                            link: DeviceLink) -> None:
    """F5: one board's link goes silent mid-download: `failed`/`idle_timeout`; the plan retries that reason
    once, the link is back by then, and the second attempt installs (2 attempts, `succeeded`)."""
    boards = fleet(3, heartbeat_s=0)
    flaky_board = boards[0].device_id
    proxy = fault_proxy(fw_server.base_url, name="flaky-link")
    proxy.set_bandwidth(200_000)  # slow enough to be inside the download when it goes silent
    artifact = fw_server.add(firmware.image(version="2.0.0"))

    def flaky(m: Message) -> None:  # added before the rollout's listener, so it runs first
        if m.device_id == flaky_board and m.kind == "ota" and m.data.get("id") == "rollout":
            if m.data.get("state") == "downloading":
                proxy.set_blackhole(True)
            elif m.data.get("state") == "failed":
                proxy.set_blackhole(False)

    link.add_listener(flaky)
    try:
        def command(device_id: str) -> dict[str, object]:
            url = proxy.url_for(artifact.url) if device_id == flaky_board else artifact.url
            return _ota(url, idle_timeout_s=1, retries=0)

        plan = RolloutPlan(canary=0, steps=(100,), retries={"idle_timeout": 1}, device_timeout_s=30)
        result = rollout(boards, command, plan).run()
    finally:
        link.remove_listener(flaky)
    assert result.state == "succeeded", result.table()
    record = result.devices[flaky_board]
    assert (record.state, record.attempts) == ("succeeded", 2), result.table()
    first = next(m.data for m in link.messages if m.device_id == flaky_board and m.kind == "ota"
                 and m.data.get("id") == "rollout" and m.data.get("state") == "failed")
    assert first.get("reason") == "idle_timeout", first


@pytest.mark.boards(20)
def test_a_broadcast_updates_the_whole_fleet(fleet, fw_server, firmware, link: DeviceLink) -> None:
    """F6: one command on `<prefix>/all/cmd` updates every board of a fleet of 20; each confirms v2."""
    boards = fleet(20, heartbeat_s=0)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    link.broadcast({"type": "ota", "id": "bcast", "url": artifact.url})
    for board in boards:
        link.wait_ota(board.device_id, "bcast", "succeeded", timeout=30, since=since,
                      fail_on={"failed", "rejected", "rolled_back"})
        link.wait_status(board.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                         since=since, timeout=10)
