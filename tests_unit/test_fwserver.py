"""FirmwareServer against real HTTP clients (http.client, urllib) on real sockets, one test per fault."""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from harness.fwserver import Artifact, FaultPlan, FirmwareServer, RangeNotSatisfiable, parse_range

# a device giving up mid-download is routine: it must never leave a traceback in a thread
pytestmark = [pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
              pytest.mark.usefixtures("no_warnings_logged")]

DATA = os.urandom(200_000)
WAIT = 5.0


@pytest.fixture
def server() -> Iterator[FirmwareServer]:
    with FirmwareServer() as srv:
        yield srv


def connect(server: FirmwareServer, context: ssl.SSLContext | None = None) -> http.client.HTTPConnection:
    if context is not None:
        return http.client.HTTPSConnection(server.host, server.port, timeout=WAIT, context=context)
    return http.client.HTTPConnection(server.host, server.port, timeout=WAIT)


def get(server: FirmwareServer, path: str, headers: dict[str, str] | None = None
        ) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connect(server)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def read_until_cut(server: FirmwareServer, path: str, headers: dict[str, str] | None = None) -> bytes:
    """Body bytes received before the server cut the connection (asserting that it did)."""
    conn = connect(server)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    conn.close()
    return cut.value.partial


# --- serving ------------------------------------------------------------------------------------------------


def test_full_download_matches_the_artifact(server: FirmwareServer) -> None:
    artifact = server.add(DATA, name="app.bin")
    assert artifact.url == f"http://127.0.0.1:{server.port}{artifact.path}"
    assert artifact.path.endswith("/app.bin") and artifact.size == len(DATA)
    assert artifact.sha256 == hashlib.sha256(DATA).hexdigest()
    body = urllib.request.urlopen(artifact.url, timeout=WAIT).read()
    assert hashlib.sha256(body).hexdigest() == artifact.sha256
    response, _ = get(server, artifact.path)
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(DATA))
    assert response.getheader("Accept-Ranges") == "bytes"


def test_head_gets_headers_only_and_keeps_the_connection_usable(server: FirmwareServer) -> None:
    artifact = server.add(DATA)
    conn = connect(server)
    conn.request("HEAD", artifact.path)
    head = conn.getresponse()
    assert head.status == 200 and head.getheader("Content-Length") == str(len(DATA)) and head.read() == b""
    conn.request("GET", artifact.path)  # same keep-alive connection
    assert conn.getresponse().read() == DATA
    conn.close()
    assert server.wait_for_request(0, artifact=artifact).method == "HEAD"


def test_each_artifact_gets_its_own_path(server: FirmwareServer) -> None:
    first, second = server.add(b"one"), server.add(b"two")
    assert first.path != second.path
    assert get(server, first.path)[1] == b"one" and get(server, second.path)[1] == b"two"


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=1000-", 1000, len(DATA) - 1),
    ("bytes=10-19", 10, 19),
    ("bytes=-100", len(DATA) - 100, len(DATA) - 1),
    ("bytes=5-999999999", 5, len(DATA) - 1),
])
def test_range_requests_get_206(server: FirmwareServer, header: str, first: int, last: int) -> None:
    artifact = server.add(DATA)
    response, body = get(server, artifact.path, {"Range": header})
    assert response.status == 206
    assert response.getheader("Content-Range") == f"bytes {first}-{last}/{len(DATA)}"
    assert response.getheader("Content-Length") == str(last - first + 1)
    assert body == DATA[first:last + 1]
    assert server.wait_for_request(0, artifact=artifact).range == header


def test_unsatisfiable_range_gets_416(server: FirmwareServer) -> None:
    artifact = server.add(DATA)
    response, _ = get(server, artifact.path, {"Range": f"bytes={len(DATA)}-"})
    assert response.status == 416
    assert response.getheader("Content-Range") == f"bytes */{len(DATA)}"
    assert server.wait_for_request(0, artifact=artifact).status == 416


def test_unknown_path_is_404_and_logged(server: FirmwareServer) -> None:
    response, _ = get(server, "/nope.bin")
    assert response.status == 404
    record = server.wait_for_request(0)
    assert (record.path, record.status, record.artifact) == ("/nope.bin", 404, None)


def test_request_log_fields(server: FirmwareServer) -> None:
    artifact = server.add(DATA)
    conn = connect(server)
    conn.request("GET", artifact.path, headers={"Range": "bytes=100-"})
    local_port = conn.sock.getsockname()[1]
    conn.getresponse().read()
    conn.close()
    record = server.wait_for_request(0, artifact=artifact)
    assert record.method == "GET" and record.path == artifact.path and record.artifact == artifact.path
    assert record.range == "bytes=100-" and record.status == 206 and record.bytes_sent == len(DATA) - 100
    assert record.client == f"127.0.0.1:{local_port}"
    assert record.t_end is not None and record.t_start <= record.t_end <= time.monotonic()
    assert record.completed and not record.client_hung_up
    assert server.requests == [record] == server.requests_for(artifact)


def test_wait_for_request_timeout_lists_what_was_seen(server: FirmwareServer) -> None:
    artifact = server.add(DATA)
    get(server, artifact.path)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"(?s)no completed request #1 for {artifact.path}.*GET {artifact.path}"):
        server.wait_for_request(1, timeout=0.1, artifact=artifact)
    assert time.monotonic() - started < 1.0


def test_stalled_download_does_not_block_others(server: FirmwareServer) -> None:
    stalled = server.add(DATA, faults=FaultPlan(stall_after_bytes=10))
    fine = server.add(DATA)
    conn = connect(server)
    conn.request("GET", stalled.path)
    conn.getresponse().read(10)
    started = time.monotonic()
    assert get(server, fine.path)[1] == DATA
    assert time.monotonic() - started < 1.0
    conn.close()


# --- faults -------------------------------------------------------------------------------------------------


def test_throttle(server: FirmwareServer) -> None:
    artifact = server.add(DATA[:64 * 1024], faults=FaultPlan(throttle_bps=256 * 1024))  # ideal: 0.25 s
    started = time.monotonic()
    _, body = get(server, artifact.path)
    elapsed = time.monotonic() - started
    assert body == DATA[:64 * 1024]
    assert 0.2 <= elapsed < 1.5, elapsed


def test_finite_stall_then_the_rest(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(stall_after_bytes=1000, stall_seconds=0.3))
    conn = connect(server)
    conn.request("GET", artifact.path)
    response = conn.getresponse()
    started = time.monotonic()
    assert response.read(1000) == DATA[:1000]
    assert time.monotonic() - started < 0.2
    assert response.read() == DATA[1000:]
    assert time.monotonic() - started >= 0.25
    conn.close()
    record = server.wait_for_request(0, artifact=artifact)
    assert record.bytes_sent == len(DATA) and record.duration is not None and record.duration >= 0.25


def test_endless_stall_and_the_client_gives_up(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(stall_after_bytes=1000))
    conn = connect(server)
    conn.request("GET", artifact.path)
    assert conn.getresponse().read(1000) == DATA[:1000]
    in_progress = server.wait_for_request(0, artifact=artifact, completed=False)
    assert in_progress.t_end is None and in_progress.status == 200
    conn.close()  # the device's idle timeout fires
    record = server.wait_for_request(0, artifact=artifact)
    assert record.client_hung_up and record.bytes_sent == 1000


def test_stop_does_not_hang_on_an_endless_stall() -> None:
    server = FirmwareServer().start()
    artifact = server.add(DATA, faults=FaultPlan(stall_after_bytes=1000))
    conn = connect(server)
    conn.request("GET", artifact.path)
    response = conn.getresponse()
    assert response.read(1000) == DATA[:1000]
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
    record = server.requests[0]
    assert record.completed and not record.client_hung_up and record.bytes_sent == 1000


def test_close_first_request_then_resume_with_range(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(close_after_bytes=5000, close_first_requests=1))
    first = read_until_cut(server, artifact.path)
    assert first == DATA[:5000]
    response, rest = get(server, artifact.path, {"Range": f"bytes={len(first)}-"})
    assert response.status == 206
    assert hashlib.sha256(first + rest).hexdigest() == artifact.sha256
    server.wait_for_request(1, artifact=artifact)  # the client may finish reading before the log is written
    records = server.requests_for(artifact)
    assert [(r.status, r.bytes_sent) for r in records] == [(200, 5000), (206, len(DATA) - 5000)]


def test_close_every_request_when_not_limited(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(close_after_bytes=3000))
    assert read_until_cut(server, artifact.path) == DATA[:3000]
    assert read_until_cut(server, artifact.path, {"Range": "bytes=3000-"}) == DATA[3000:6000]


def test_truncate_serves_a_short_but_complete_file(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(truncate_to=1234))
    response, body = get(server, artifact.path)
    assert response.status == 200 and response.getheader("Content-Length") == "1234"
    assert body == DATA[:1234]
    assert artifact.size == len(DATA) and artifact.sha256 == hashlib.sha256(DATA).hexdigest()


def test_corrupt_flips_exactly_the_given_bytes(server: FirmwareServer) -> None:
    offsets = (0, 4096, len(DATA) - 1)
    artifact = server.add(DATA, faults=FaultPlan(corrupt_offsets=offsets))
    _, body = get(server, artifact.path)
    assert len(body) == len(DATA)
    assert [i for i in range(len(DATA)) if body[i] != DATA[i]] == list(offsets)
    assert all(body[i] == DATA[i] ^ 0xFF for i in offsets)
    assert hashlib.sha256(body).hexdigest() != artifact.sha256


@pytest.mark.parametrize("status", [404, 500])
def test_status_on_every_request(server: FirmwareServer, status: int) -> None:
    artifact = server.add(DATA, faults=FaultPlan(status=status))
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(artifact.url, timeout=WAIT)
    assert error.value.code == status
    error.value.close()
    assert get(server, artifact.path)[0].status == status
    assert server.wait_for_request(1, artifact=artifact).status == status
    assert [r.status for r in server.requests_for(artifact)] == [status, status]


def test_status_on_first_requests_only(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(status_first_requests=2))
    statuses = [get(server, artifact.path)[0].status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert get(server, artifact.path)[1] == DATA


def test_url_expires_after_n_requests_with_s3s_answer(server: FirmwareServer) -> None:
    """A pre-signed URL past its expiry: 403 with S3's AccessDenied / Request has expired, from then on."""
    artifact = server.add(DATA, faults=FaultPlan(expire_after_requests=2))
    answers = [get(server, artifact.path) for _ in range(4)]
    assert [response.status for response, _ in answers] == [200, 200, 403, 403]
    assert answers[0][1] == DATA
    response, body = answers[2]
    assert response.getheader("Content-Type", "").startswith("application/xml")
    assert b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body


def test_url_expires_after_t_seconds(server: FirmwareServer) -> None:
    fresh = server.add(DATA, faults=FaultPlan(expire_after_s=3600))
    expired = server.add(DATA, faults=FaultPlan(expire_after_s=0))
    assert get(server, fresh.path)[0].status == 200
    assert get(server, expired.path)[0].status == 403


def test_redirect_chain(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(redirects=2))
    response, _ = get(server, artifact.path)
    assert response.status == 302
    assert response.getheader("Location", "").startswith(f"http://127.0.0.1:{server.port}/")
    body = urllib.request.urlopen(artifact.url, timeout=WAIT).read()
    assert body == DATA
    server.wait_for_request(3, artifact=artifact)
    records = server.requests_for(artifact)
    assert [r.status for r in records] == [302, 302, 302, 200]
    assert records[0].path == records[1].path == artifact.path
    assert records[3].path.endswith("/fw.bin") and "hop" not in records[3].path


def test_ranges_not_honoured(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(ranges_honoured=False))
    response, body = get(server, artifact.path, {"Range": "bytes=1000-"})
    assert response.status == 200 and body == DATA
    assert response.getheader("Accept-Ranges") == "none"
    assert response.getheader("Content-Range") is None


def test_chunked_has_no_content_length(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(chunked=True))
    response, body = get(server, artifact.path)
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert body == DATA


def test_header_delay(server: FirmwareServer) -> None:
    artifact = server.add(DATA, faults=FaultPlan(header_delay_s=0.3))
    conn = connect(server)
    started = time.monotonic()
    conn.request("GET", artifact.path)
    conn.getresponse().read()
    assert 0.28 <= time.monotonic() - started < 1.5
    conn.close()


def test_faults_combine(server: FirmwareServer) -> None:
    plan = FaultPlan(throttle_bps=200_000, close_after_bytes=20_000, corrupt_offsets=(5,), header_delay_s=0.05)
    artifact = server.add(DATA, faults=plan)
    started = time.monotonic()
    partial = read_until_cut(server, artifact.path)
    assert 0.1 <= time.monotonic() - started < 1.5  # 20 kB at 200 kB/s, plus the header delay
    assert len(partial) == 20_000 and partial[5] == DATA[5] ^ 0xFF and partial[6:] == DATA[6:20_000]


@pytest.mark.parametrize("bad", [
    {"throttle_bps": 0}, {"stall_after_bytes": -1}, {"redirects": -1}, {"close_first_requests": -2},
])
def test_fault_plan_rejects_nonsense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="FaultPlan"):
        FaultPlan(**bad)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-", (0, 99)), ("bytes=10-20", (10, 20)), ("bytes=-10", (90, 99)),
    ("bytes=90-200", (90, 99)), ("items=0-5", None), ("bytes=1-2,5-6", None), ("bytes=x-", None),
    ("bytes=20-10", None), ("bytes=-", None),
])
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)


# --- HTTPS --------------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server() -> Iterator[FirmwareServer]:
    with FirmwareServer(tls=True) as srv:
        yield srv


def test_https_with_the_right_and_the_wrong_ca(tls_server: FirmwareServer) -> None:
    artifact: Artifact = tls_server.add(DATA)
    assert artifact.url.startswith("https://127.0.0.1:")
    good = ssl.create_default_context(cadata=tls_server.ca_pem)
    assert urllib.request.urlopen(artifact.url, timeout=WAIT, context=good).read() == DATA
    wrong = ssl.create_default_context(cadata=tls_server.wrong_ca_pem)
    assert tls_server.wrong_ca_pem != tls_server.ca_pem
    with pytest.raises(urllib.error.URLError) as error:
        urllib.request.urlopen(artifact.url, timeout=WAIT, context=wrong)
    assert isinstance(error.value.reason, ssl.SSLCertVerificationError)


def test_https_client_hanging_up_is_quiet(tls_server: FirmwareServer) -> None:
    artifact = tls_server.add(DATA, faults=FaultPlan(stall_after_bytes=1000))
    conn = connect(tls_server, ssl.create_default_context(cadata=tls_server.ca_pem))
    conn.request("GET", artifact.path)
    assert conn.getresponse().read(1000) == DATA[:1000]
    conn.close()
    assert tls_server.wait_for_request(0, artifact=artifact).client_hung_up


def test_many_clients_hanging_up_mid_body_leave_no_trace() -> None:
    fds_before, threads_before = len(os.listdir("/proc/self/fd")), threading.active_count()
    with FirmwareServer() as server:
        # a plain body may fit in the kernel's socket buffers (then the server saw a complete response);
        # a stalled one is certainly cut by the client
        plain, stalled = server.add(DATA * 5), server.add(DATA, faults=FaultPlan(stall_after_bytes=1000))
        for artifact in [plain, stalled] * 5:
            conn = connect(server)
            conn.request("GET", artifact.path)
            conn.getresponse().read(1)
            conn.close()
        for index in range(5):
            assert server.wait_for_request(index, artifact=plain).completed
            assert server.wait_for_request(index, artifact=stalled).client_hung_up
    # counted after stop: a hung-up connection's socket may close just after its request is logged
    assert len(os.listdir("/proc/self/fd")) == fds_before and threading.active_count() == threads_before
