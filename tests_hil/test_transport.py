"""Transport.

Transport faults (C1, C2, C5, C6 and friends): the firmware retries, resumes and times out by itself.

Every failure leaves the device on v1 without a reboot, still answering (Ota.assert_healthy_on_base).
What the device asked for is read from the firmware server's request log.
"""

import socket

from harness.fwserver import FaultPlan
from harness.link import DeviceLink

CUT_AT = 100_000  # bytes of the first response before the connection drops


def _progress(link: DeviceLink, device_id: str, request_id: str) -> list[dict]:
    return [e for e in link.ota_events(device_id, request_id) if e["state"] == "downloading"]


def _event_time(link: DeviceLink, device_id: str, request_id: str, state: str) -> float:
    return next(m.t for m in link.messages if m.device_id == device_id and m.kind == "ota"
                and m.data.get("id") == request_id and m.data.get("state") == state)


def test_chunked_without_content_length_installs(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """C1: chunked, no length anywhere (no Content-Length, no size in the command): progress reports
    total -1, ends at the image size, and the image installs."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image, faults=FaultPlan(chunked=True))
    ota.install("c1", artifact.url, "2.0.0")
    progress = _progress(link, board.device_id, "c1")
    assert {(e["total"], e["percent"]) for e in progress} == {(-1, -1)}, progress
    assert progress[-1]["bytes"] == len(image)


def test_redirect_chain_installs(ota, fw_server, firmware) -> None:
    """C2: three 302 hops are followed (request log: 302, 302, 302, 200); the image is fetched once."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(redirects=3))
    ota.install("c2", artifact.url, "2.0.0")
    assert [r.status for r in fw_server.requests_for(artifact)] == [302, 302, 302, 200]


def test_dropped_connection_resumes_with_range(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """C5: connection dropped after 100 KB: the retry sends `Range: bytes=100000-`, gets 206 and only the
    rest; progress never goes back.

    The server drops the connection once; the image assembled from both parts installs."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image, faults=FaultPlan(close_after_bytes=CUT_AT, close_first_requests=1))
    ota.install("c5", artifact.url, "2.0.0")
    first, second = fw_server.requests_for(artifact)
    assert (first.range, first.status, first.bytes_sent) == (None, 200, CUT_AT)
    assert (second.range, second.status) == (f"bytes={CUT_AT}-", 206), second
    assert second.bytes_sent == len(image) - CUT_AT
    sizes = [e["bytes"] for e in _progress(link, board.device_id, "c5")]
    assert sizes == sorted(sizes) and sizes[-1] == len(image), f"progress went back: {sizes}"


def test_dropped_connection_restarts_where_range_is_ignored(ota, board, link: DeviceLink, fw_server,
                                                            firmware) -> None:
    """C5: a server that ignores Range answers the retry with 200 and the whole body; the firmware starts
    the image over from zero instead of appending it, and installs."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image, faults=FaultPlan(close_after_bytes=CUT_AT, close_first_requests=1,
                                                     ranges_honoured=False))
    ota.install("c5b", artifact.url, "2.0.0")
    first, second = fw_server.requests_for(artifact)
    assert first.bytes_sent == CUT_AT
    assert (second.range, second.status, second.bytes_sent) == (f"bytes={CUT_AT}-", 200, len(image)), second
    sizes = [e["bytes"] for e in _progress(link, board.device_id, "c5b")]
    # each attempt reports its first read, so starting over shows as a count that does not grow
    assert sizes[-1] == len(image) and sizes != sorted(set(sizes)), f"progress should restart from zero: {sizes}"


def test_503_a_few_times_then_success(ota, fw_server, firmware) -> None:
    """A 5xx is retried with backoff: 503, 503, 200, installed."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=503, status_first_requests=2))
    ota.install("c503", artifact.url, "2.0.0", retries=3)
    assert [r.status for r in fw_server.requests_for(artifact)] == [503, 503, 200]


def test_retries_exhausted(ota, fw_server, firmware) -> None:
    """C6: 503 every time with `retries` 2: exactly 3 requests, then `failed`/`http_status` 503."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=503))
    since = ota.start("c6", artifact.url, retries=2)
    event = ota.expect_outcome("c6", "failed", "http_status", since)
    assert event["http_status"] == 503
    fw_server.wait_for_request(2, artifact=artifact)  # the device may give up before the server logged the 503
    assert [r.status for r in fw_server.requests_for(artifact)] == [503, 503, 503]
    ota.assert_healthy_on_base(since)


def test_stalled_server_gives_idle_timeout(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """The server stalls for ever after 50 KB: the firmware's own no-data deadline (`idle_timeout_s` 1)
    ends it, not earlier and not a socket default; it hangs up; one request; v1 stays."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(stall_after_bytes=50_000))
    since = ota.start("stall", artifact.url, idle_timeout_s=1, retries=0)
    ota.expect_outcome("stall", "failed", "idle_timeout", since, timeout=15)
    request = fw_server.wait_for_request(0, artifact=artifact, timeout=5)
    assert request.bytes_sent == 50_000 and request.client_hung_up, request
    waited = _event_time(link, board.device_id, "stall", "failed") - request.t_start
    assert waited >= 0.95, f"idle_timeout after {waited:.2f} s, before the 1 s without data"
    assert len(fw_server.requests_for(artifact)) == 1
    ota.assert_healthy_on_base(since)


def test_slow_server_gives_overall_timeout(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """Data keeps trickling (50 KB/s for a 600 KB image): the overall deadline (`timeout_s` 1) fires
    although the no-data one never does."""
    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image, faults=FaultPlan(throttle_bps=50_000))
    since = ota.start("slow", artifact.url, timeout_s=1, idle_timeout_s=30)
    ota.expect_outcome("slow", "failed", "timeout", since, timeout=15)
    waited = _event_time(link, board.device_id, "slow", "failed") - _event_time(link, board.device_id, "slow",
                                                                                 "accepted")
    assert waited >= 0.95, f"timeout after {waited:.2f} s, before timeout_s"
    progress = _progress(link, board.device_id, "slow")
    assert progress and progress[-1]["bytes"] < len(image), progress
    ota.assert_healthy_on_base(since)


def test_404_fails_without_retrying(ota, fw_server, firmware) -> None:
    """A 4xx is final: one request, `failed`/`http_status` 404, although retries were allowed."""
    artifact = fw_server.add(firmware.image(version="2.0.0"), faults=FaultPlan(status=404))
    since = ota.start("c404", artifact.url, retries=3)
    assert ota.expect_outcome("c404", "failed", "http_status", since)["http_status"] == 404
    assert len(fw_server.requests_for(artifact)) == 1
    ota.assert_healthy_on_base(since)


def test_unreachable_host_gives_connect_failed(ota, fw_server) -> None:
    """C6: host down, a closed port on the server's host: `failed`/`connect_failed` after the retries, the
    detail naming the error as esp_err_to_name() does (the reference firmware's is esp-tls's
    ESP_ERR_ESP_TLS_FAILED_CONNECT_TO_HOST, an app on esp_https_ota gets ESP_ERR_HTTP_CONNECT)."""
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind((fw_server.host, 0))
        port = s.getsockname()[1]
    since = ota.start("down", f"http://{fw_server.host}:{port}/fw.bin", retries=1)
    event = ota.expect_outcome("down", "failed", "connect_failed", since)
    assert str(event.get("detail")).startswith("ESP_ERR_"), event
    ota.assert_healthy_on_base(since)


def test_plain_http_refused_when_https_is_required(board_factory, ota_for, fw_server, firmware) -> None:
    """C8: with `require_https` provisioned, an `http://` URL is `rejected`/`bad_command` and never
    requested."""
    ota = ota_for(board_factory(require_https=True))
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("plain", artifact.url)
    ota.expect_outcome("plain", "rejected", "bad_command", since)
    ota.assert_healthy_on_base(since)
    assert fw_server.requests_for(artifact) == []
