"""Transport faults (C1-C6 and friends): the firmware retries, resumes, times out by itself."""

import socket

from harness.fwserver import FaultPlan


def test_chunked_without_content_length_installs(ota, fw_server, firmware) -> None:
    """C1: no Content-Length; progress has no total, the image still verifies and installs."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(chunked=True))
    ota.install("c1", artifact.url, "2.0.0")


def test_redirect_chain_installs(ota, fw_server, firmware) -> None:
    """C2: three 302 hops before the image."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(redirects=3))
    ota.install("c2", artifact.url, "2.0.0")
    assert [r.status for r in fw_server.requests_for(artifact)][:4] == [302, 302, 302, 200]


def test_dropped_connection_resumes_with_range(ota, fw_server, firmware) -> None:
    """C5: cut after 100 KB once; the retry asks for the rest with Range and gets 206."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image, faults=FaultPlan(close_after_bytes=100_000, close_first_requests=1))
    ota.install("c5", artifact.url, "2.0.0")
    second = fw_server.requests_for(artifact)[1]
    assert second.range is not None and second.range.startswith("bytes=") and second.range != "bytes=0-"
    assert second.status == 206


def test_dropped_connection_restarts_where_range_is_ignored(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"),
                             faults=FaultPlan(close_after_bytes=100_000, close_first_requests=1, ranges_honoured=False))
    ota.install("c5b", artifact.url, "2.0.0")
    second = fw_server.requests_for(artifact)[1]
    assert second.status == 200 and second.bytes_sent == artifact.size


def test_503_a_few_times_then_success(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=503, status_first_requests=2))
    ota.install("c503", artifact.url, "2.0.0", retries=3)
    assert [r.status for r in fw_server.requests_for(artifact)] == [503, 503, 200]


def test_retries_exhausted(ota, fw_server, firmware) -> None:
    """C6: 503 every time: retries + 1 requests, then failed with the status."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=503))
    since = ota.start("c6", artifact.url, retries=2)
    event = ota.expect_outcome("c6", "failed", "http_status", since)
    assert event["http_status"] == 503
    assert len(fw_server.requests_for(artifact)) == 3
    ota.assert_healthy_on_base(since)


def test_stalled_server_gives_idle_timeout(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(stall_after_bytes=50_000))
    since = ota.start("stall", artifact.url, idle_timeout_s=2, retries=0)
    ota.expect_outcome("stall", "failed", "idle_timeout", since, timeout=15)
    ota.assert_healthy_on_base(since)


def test_slow_server_gives_overall_timeout(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(throttle_bps=50_000))
    since = ota.start("slow", artifact.url, timeout_s=2, idle_timeout_s=30)
    ota.expect_outcome("slow", "failed", "timeout", since, timeout=15)
    ota.assert_healthy_on_base(since)


def test_404_fails_without_retrying(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=404))
    since = ota.start("c404", artifact.url, retries=3)
    assert ota.expect_outcome("c404", "failed", "http_status", since)["http_status"] == 404
    assert len(fw_server.requests_for(artifact)) == 1
    ota.assert_healthy_on_base(since)


def test_unreachable_host_gives_connect_failed(ota) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    since = ota.start("down", f"http://127.0.0.1:{port}/fw.bin", retries=1)
    ota.expect_outcome("down", "failed", "connect_failed", since)
    ota.assert_healthy_on_base(since)


def test_plain_http_refused_when_https_is_required(board_factory, ota_for, fw_server, firmware) -> None:
    ota = ota_for(board_factory(require_https=True))
    since = ota.start("plain", fw_server.add(firmware.image(version="2.0.0")).url)
    ota.expect_outcome("plain", "rejected", "bad_command", since)
    ota.assert_healthy_on_base(since)
