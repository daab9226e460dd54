"""The network between the device and its servers: faults on the link itself (issue 16).

The device's MQTT or HTTP connection goes through a fault proxy (harness/fault_proxy, the `fault_proxy`
fixture); the test's own link stays directly on the broker, so only the device's side is faulted. The proxy
produces each fault here on its own, so these scenarios run on a real board too (it connects to the proxy's
ports on the runner). Every fault the proxy applied is in the test's timeline.
"""

from __future__ import annotations

import itertools
import threading

import pytest

from harness.fwserver import FaultPlan
from harness.link import DeviceLink

KEEPALIVE_S = 5  # libmosquitto, under the host port's esp-mqtt, takes no less (esp-mqtt on the chip would)
# mosquitto 2.0.11 looks for clients past 1.5 x keep-alive only every 6 s (src/keepalive.c, keepalive__check:
# `last_keepalive_check + 5 < db.now_s`), so its last will comes up to that much later than 1.5 x keep-alive.
MOSQUITTO_KEEPALIVE_SWEEP_S = 6


def _progress_times(link: DeviceLink, device_id: str, request_id: str, since: int) -> list[float]:
    return [m.t for m in link.messages[since:] if m.device_id == device_id and m.kind == "ota"
            and m.data.get("id") == request_id and m.data.get("state") == "downloading"]


def _event_time(link: DeviceLink, device_id: str, request_id: str, state: str, since: int) -> float:
    return next(m.t for m in link.messages[since:] if m.device_id == device_id and m.kind == "ota"
                and m.data.get("id") == request_id and m.data.get("state") == state)


def test_broker_partition_during_the_new_firmwares_self_test_rolls_back(board_factory, ota_for, broker, fault_proxy,
                                                                        link: DeviceLink, fw_server,
                                                                        firmware) -> None:
    """E3 (network): the device's link to the broker is partitioned (the proxy accepts and forwards nothing) as
    v2 boots: its self-test cannot reach the broker within `selftest_timeout_s`, it rolls back to v1, and once
    the partition heals v1 reports `rolled_back`/`selftest_failed`, running and answering."""
    mqtt = fault_proxy(broker.url, name="board-mqtt")
    board = board_factory(broker_url=mqtt.url_for(broker.url), selftest_timeout_s=1)
    ota = ota_for(board)
    since = ota.start_until_reboot("part", fw_server.add(firmware.image(version="2.0.0")).url)
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)  # v1 is gone; v2 connects once it has booted
    mqtt.set_blackhole(True)
    assert board.expect_loaded_app(timeout=10) == "ota_1"
    board.expect(r"boot_check: self-test failed \(broker not reachable\)", timeout=15)
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
    assert board.expect_loaded_app(timeout=10) == "ota_0"
    mqtt.set_blackhole(False)
    event = link.wait_ota(board.device_id, "part", "rolled_back", timeout=20, since=since)
    assert (event.get("reason"), event.get("version")) == ("selftest_failed", "2.0.0"), event
    ota.mark()  # from v1's boot on: no further reboot
    ota.assert_healthy(firmware.base_version, "ota_0")


@pytest.mark.slow
def test_a_64_kb_per_s_link_reports_progress_once_a_second_and_honours_timeout_s(ota, board, fault_proxy,
                                                                                 link: DeviceLink, fw_server,
                                                                                 firmware) -> None:
    """A 64 KB/s link (the proxy's cap) and `timeout_s` 2: the ~240 KB download cannot finish; progress comes
    at most once a second, and the update ends `failed`/`timeout` at 2 s (not before, not long after); v1
    healthy."""
    http = fault_proxy(fw_server.base_url, name="board-http")
    http.set_bandwidth(64_000)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("slow", http.url_for(artifact.url), timeout_s=2)
    ota.expect_outcome("slow", "failed", "timeout", since, timeout=10)
    accepted = _event_time(link, board.device_id, "slow", "accepted", since)
    failed = _event_time(link, board.device_id, "slow", "failed", since)
    assert 1.9 <= failed - accepted <= 2.6, f"timeout_s 2 ended the update after {failed - accepted:.2f} s"
    times = _progress_times(link, board.device_id, "slow", since)
    assert len(times) >= 2, f"a 2 s download at 64 KB/s reports more than its first progress: {times}"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.9, f"progress more often than once a second: gaps {gaps}"
    ota.assert_healthy_on_base(since)


@pytest.mark.virtual_only  # on a chip the flash (about 60 KB/s with its erases), not a 500 KB/s link, sets the pace
@pytest.mark.flash_timing("none")
def test_a_500_kb_per_s_link_gives_the_updates_duration_and_throughput(ota, board, fault_proxy, fw_server,
                                                                       firmware, hil_record) -> None:
    """A 500 KB/s link (a typical ESP32 on Wi-Fi): the update installs, and the throughput the report gives
    it (the `ota_throughput_kBps` property) is the link's: at most the cap (+20 %), and the download no
    quicker than the cap allows. A loaded machine may run it slower, so the floor is loose."""
    from harness import report

    http = fault_proxy(fw_server.base_url, name="board-http")
    http.set_bandwidth(500_000)
    image = firmware.image(version="2.0.0")
    ota.install("wifi", http.url_for(fw_server.add(image).url), "2.0.0")
    props = report.ota_properties(hil_record.timeline(), "", [])
    expected_s = len(image) / 500_000
    assert 125 <= props["ota_throughput_kBps"] <= 600, props
    assert props["ota_duration_s"] >= expected_s * 0.8, (props, expected_s)


def test_a_half_open_connection_is_caught_by_the_idle_deadline(ota, board, fault_proxy, link: DeviceLink,
                                                              fw_server, firmware) -> None:
    """The download's connection goes silent mid-transfer without being closed (the proxy stops forwarding:
    a half-open connection, no FIN, no RST): `idle_timeout_s` (1 s) ends it `failed`/`idle_timeout`; v1
    healthy."""
    http = fault_proxy(fw_server.base_url, name="board-http")
    http.set_bandwidth(100_000)  # slow enough to be inside the download when the link goes silent
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("half", http.url_for(artifact.url), idle_timeout_s=1, retries=0)
    link.wait_ota(board.device_id, "half", "downloading", timeout=10, since=since, fail_on={"failed"})
    http.set_blackhole(True)
    ota.expect_outcome("half", "failed", "idle_timeout", since, timeout=10)
    http.set_blackhole(False)
    ota.assert_healthy_on_base(since)


@pytest.mark.slow
@pytest.mark.waits
def test_a_partition_healed_after_3_s_mid_download_lets_it_finish(ota, board, fault_proxy, link: DeviceLink,
                                                                   fw_server, firmware) -> None:
    """The device's download link is partitioned mid-transfer for 3 s (what a real board sees of a short Wi-Fi
    outage, within the 6 s beacon timeout): the connection stalls, carries on once healed and v2 installs over
    one request, no Range. On the virtual board tests_hil/test_wifi.py takes the access point itself away."""
    http = fault_proxy(fw_server.base_url, name="board-http")
    http.set_bandwidth(100_000)  # a ~2.5 s download, so the partition lands inside it
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("p3", http.url_for(artifact.url))
    link.wait_ota(board.device_id, "p3", "downloading", timeout=10, since=since, fail_on={"failed"})
    http.set_blackhole(True)
    heal = threading.Timer(3.0, http.set_blackhole, args=(False,))  # the outage's length is the scenario
    heal.start()
    try:
        link.wait_ota(board.device_id, "p3", "succeeded", timeout=30, since=since,
                      fail_on={"failed", "rejected", "rolled_back"})
    finally:
        heal.cancel()
    assert [(r.status, r.range) for r in fw_server.requests_for(artifact)] == [(200, None)]


def test_a_connection_the_network_cuts_mid_download_resumes_with_range(ota, board, fault_proxy, fw_server,
                                                                       firmware) -> None:
    """The network resets the download's connection after 100 KB (the proxy, not the server): the firmware
    resumes with Range from what it had and v2 installs."""
    http = fault_proxy(fw_server.base_url, name="board-http")
    http.cut_after_bytes(100_000, direction="down", connections=1)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    ota.install("cut", http.url_for(artifact.url), "2.0.0")
    first, resumed = fw_server.requests_for(artifact)
    assert first.status == 200 and resumed.status == 206, (first, resumed)
    resumed_at = int((resumed.range or "bytes=-1-").removeprefix("bytes=").split("-")[0])
    assert 0 < resumed_at <= 100_000, resumed


@pytest.mark.slow
@pytest.mark.waits
@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
def test_the_broker_publishes_the_last_will_within_1_5_keepalives_of_a_partition(board_factory, broker, fault_proxy,
                                                                               link: DeviceLink) -> None:
    """MQTT keep-alive (`mqtt_keepalive_s` 5): the device's link is partitioned; mosquitto, hearing nothing
    from it, drops it once 1.5 x keep-alive has passed and publishes its last will `offline` (not sooner; at
    most its 6 s keep-alive sweep later); healed, the device is `online` again."""
    mqtt = fault_proxy(broker.url, name="board-mqtt")
    board = board_factory(broker_url=mqtt.url_for(broker.url), mqtt_keepalive_s=KEEPALIVE_S)
    since = link.cursor()
    mqtt.set_blackhole(True)
    partitioned_at = mqtt.events[-1].t
    offline = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "online"
                            and m.payload == b"offline" and not m.retain, timeout=20, since=since,
                            description="the last will after the partition")
    silent_s = offline.t - partitioned_at
    assert 1.5 * KEEPALIVE_S <= silent_s <= 1.5 * KEEPALIVE_S + MOSQUITTO_KEEPALIVE_SWEEP_S + 1, \
        f"last will {silent_s:.2f} s after the partition, keep-alive {KEEPALIVE_S} s"
    mqtt.set_blackhole(False)
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "online" and m.payload == b"online",
                  timeout=15, since=offline.index + 1, description="the device back online")


def test_an_expired_url_between_a_drop_and_the_resume_fails_then_a_fresh_one_installs(board_factory, ota_for,
                                                                                     link: DeviceLink, fw_server,
                                                                                     firmware) -> None:
    """Pre-signed URLs (../shared/reference/systems/004: S3, valid for an hour): the connection drops mid-
    download and the URL has expired by the Range resume: 403, `failed`/`http_status` 403, v1 kept. Then a
    manifest check (`{"type": "check"}`) hands out a fresh URL, and that installs."""
    image = firmware.image(version="2.0.0")
    expiring = fw_server.add(image, faults=FaultPlan(close_after_bytes=len(image) // 3, expire_after_requests=1))
    fresh = fw_server.add(image)
    manifest = fw_server.add(f'{{"version": "2.0.0", "url": "{fresh.url}", "sha256": "{fresh.sha256}"}}'.encode(),
                             name="manifest.json")
    board = board_factory(manifest_url=manifest.url, manifest_delay_s=86400)  # checked only when told
    ota = ota_for(board)
    since = ota.start("s3", expiring.url, retries=2)
    event = ota.expect_outcome("s3", "failed", "http_status", since, timeout=15)
    assert event.get("http_status") == 403, event
    first, resume = fw_server.requests_for(expiring)
    assert (first.status, first.bytes_sent) == (200, len(image) // 3), first
    assert (resume.range, resume.status) == (f"bytes={len(image) // 3}-", 403), resume
    ota.assert_healthy_on_base(since)
    since = ota.send({"type": "check"})
    link.wait_ota(board.device_id, "manifest", "succeeded", timeout=30, since=since,
                  fail_on={"failed", "rejected", "rolled_back"})
    assert [r.status for r in fw_server.requests_for(fresh)] == [200]
