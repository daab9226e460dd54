"""The host port's esp_http_client and esp-mqtt at the C level, against real local servers.

device/port/linux/test/net_check.c (commands of port_check) calls the clients as an app does; the
firmware server (harness.fwserver, with its FaultPlan) and the brokers (EmbeddedBroker, mosquitto) are
the other side. Each test is about one behaviour the clients' file headers claim: redirects followed,
Range resume, -ESP_ERR_HTTP_EAGAIN on a stalled read, the outbox sent again after a reconnect, a long
message split over MQTT_EVENT_DATA events.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import BrokerError, EmbeddedBroker, MosquittoBroker, find_mosquitto
from harness.fwserver import FaultPlan, FirmwareServer
from tests_unit.port_check_app import WAIT, PortCheck, values

ESP_ERR_HTTP_EAGAIN = 0x7007  # ESP_ERR_HTTP_BASE + 7


@pytest.fixture
def fw_server() -> Iterator[FirmwareServer]:
    with FirmwareServer() as server:
        yield server


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- esp_http_client ---------------------------------------------------------------------------------------


def curl_stack(pc: PortCheck) -> set[str]:
    """The files of libcurl and of GnuTLS (one of the libraries it needs) mapped into port_check's process."""
    maps = Path(f"/proc/{pc.proc.pid}/maps").read_text().splitlines()
    names = {line.split()[-1].rsplit("/", 1)[-1] for line in maps}
    return {name for name in names if name.startswith(("libcurl.so", "libgnutls.so"))}


def test_libcurl_is_loaded_by_the_first_http_client_not_at_boot(port_check: PortCheck,
                                                                 fw_server: FirmwareServer) -> None:
    """src/host_curl.c: a boot that makes no HTTP client does not load libcurl and the libraries it needs."""
    assert curl_stack(port_check) == set()
    artifact = fw_server.add(os.urandom(1000))
    assert port_check.run(f"http_perform {artifact.url} 5000")["perform"] == "ESP_OK"
    assert {name.split(".so")[0] for name in curl_stack(port_check)} == {"libcurl", "libgnutls"}


def test_perform_follows_a_302_chain(port_check: PortCheck, fw_server: FirmwareServer) -> None:
    data = os.urandom(150_000)
    artifact = fw_server.add(data, faults=FaultPlan(redirects=3))
    result = port_check.run(f"http_perform {artifact.url} 5000")
    assert (result["perform"], result["status"], result["content_length"]) == ("ESP_OK", "200", str(len(data)))
    assert (result["body_bytes"], result["body_sha256"]) == (str(len(data)), sha256(data))
    requests = fw_server.requests_for(artifact)
    assert [r.status for r in requests] == [302, 302, 302, 200]
    assert [r.path.split("/")[3] for r in requests[:3]] == ["hop0", "hop1", "hop2"]


def test_open_and_set_redirection_follow_a_302_chain(port_check: PortCheck, fw_server: FirmwareServer) -> None:
    """esp_https_ota's way: the caller sees each 30x and calls esp_http_client_set_redirection()."""
    data = os.urandom(150_000)
    artifact = fw_server.add(data, faults=FaultPlan(redirects=3))
    start = port_check.send(f"http_stream {artifact.url} 5000 -1 1")
    port_check.expect(r"^port_check>$", since=start)
    out = port_check.lines[start:port_check.last_index]
    assert [line for line in out if line.startswith("hop=")] == ["hop=302"] * 3
    result = values(out)
    assert (result["status"], result["content_length"], result["chunked"]) == ("200", str(len(data)), "0")
    assert (result["read_end"], result["complete"]) == ("0", "1")
    assert (result["body_bytes"], result["body_sha256"]) == (str(len(data)), sha256(data))
    assert [r.status for r in fw_server.requests_for(artifact)] == [302, 302, 302, 200]


def test_range_request_gets_206_and_the_body_from_there(port_check: PortCheck, fw_server: FirmwareServer) -> None:
    data = os.urandom(300_000)
    artifact = fw_server.add(data)
    result = port_check.run(f"http_stream {artifact.url} 5000 100000 1")
    assert (result["status"], result["content_length"]) == ("206", str(len(data) - 100_000))
    assert (result["read_end"], result["complete"]) == ("0", "1")
    assert (result["body_bytes"], result["body_sha256"]) == (str(len(data) - 100_000), sha256(data[100_000:]))
    [request] = fw_server.requests_for(artifact)
    assert (request.range, request.status, request.bytes_sent) == ("bytes=100000-", 206, len(data) - 100_000)


def test_read_returns_eagain_when_the_server_stalls(port_check: PortCheck, fw_server: FirmwareServer) -> None:
    """A stall longer than timeout_ms: each esp_http_client_read() waits timeout_ms, then returns
    -ESP_ERR_HTTP_EAGAIN (not 0, not an error), and the caller may read again."""
    data = os.urandom(200_000)
    artifact = fw_server.add(data, faults=FaultPlan(stall_after_bytes=50_000))
    start = port_check.send(f"http_stream {artifact.url} 400 -1 2")
    port_check.expect(r"^port_check>$", since=start, timeout=20)
    out = port_check.lines[start:port_check.last_index]
    eagain = [values([line]) for line in out if line.startswith("read_eagain=")]
    assert [e["read_eagain"] for e in eagain] == ["50000", "50000"], out
    for e in eagain:
        # the read timeout, not an earlier give-up nor the 5 s default (a loaded machine gets some slack)
        assert 380 <= int(e["waited_ms"]) < 2000, eagain
    result = values(out)
    assert (result["read_end"], result["complete"]) == (str(-ESP_ERR_HTTP_EAGAIN), "0")
    assert (result["body_bytes"], result["body_sha256"]) == ("50000", sha256(data[:50_000]))


# --- esp-mqtt --------------------------------------------------------------------------------------------


def publish(broker: EmbeddedBroker, topic: str, payload: bytes) -> None:
    """A QoS 1 message from another client, acknowledged by the broker before this returns."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, reconnect_on_failure=False)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(WAIT)
    finally:
        client.disconnect()
        client.loop_stop()


def mqtt_lines(pc: PortCheck, since: int, event: str) -> list[dict[str, str]]:
    return [values([line]) for line in pc.lines[since:] if line.startswith(f"mqtt_event={event} ")]


def test_qos1_published_while_disconnected_is_sent_after_reconnecting(port_check: PortCheck) -> None:
    broker = EmbeddedBroker().start()
    try:
        start = port_check.send(f"mqtt_start {broker.url} 1024 300 -")
        port_check.expect(r"^mqtt_event=CONNECTED", since=start)
        broker.stop()
        port_check.expect(r"^mqtt_event=DISCONNECTED", since=start)
        msg_id = int(port_check.run("mqtt_pub t/offline 1 queued-while-offline")["mqtt_pub"])
        assert msg_id > 0  # queued, not refused: esp-mqtt returns the id of a message it will send
        assert int(port_check.run("mqtt_outbox")["mqtt_outbox"]) > 0
        time.sleep(0.5)  # reconnect attempts fail meanwhile; nothing may get lost
        reconnect = len(port_check.lines)
        broker.start()  # the same port again
        port_check.expect(r"^mqtt_event=CONNECTED", since=reconnect)
        port_check.expect(rf"^mqtt_event=PUBLISHED msg_id={msg_id}$", since=reconnect)
        assert broker.receipts.reader().time_of("t/offline", b"queued-while-offline") is not None
        assert port_check.run("mqtt_outbox")["mqtt_outbox"] == "0"
        port_check.run("mqtt_stop")
    finally:
        broker.stop()


def test_unacknowledged_qos1_is_sent_again_after_the_broker_restarts(port_check: PortCheck) -> None:
    """Sent while the broker is frozen (no PUBACK), then the broker dies: the message is resent on the
    next connection, to the new broker, under the id esp_mqtt_client_publish() returned."""
    try:
        find_mosquitto()
    except BrokerError as exc:
        pytest.skip(str(exc))
    broker = MosquittoBroker().start()
    try:
        # the handler subscribes to t/echo on every CONNECTED, so a message that reaches the broker comes back
        start = port_check.send(f"mqtt_start {broker.url} 1024 300 t/echo")
        port_check.expect(r"^mqtt_event=SUBSCRIBED", since=start)
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)  # the TCP connection stays up, nothing is read or answered
        msg_id = int(port_check.run("mqtt_pub t/echo 1 sent-but-unacked")["mqtt_pub"])
        assert msg_id > 0
        time.sleep(0.5)
        assert not mqtt_lines(port_check, start, "PUBLISHED"), "acknowledged by a frozen broker?"
        assert int(port_check.run("mqtt_outbox")["mqtt_outbox"]) > 0
        broker.kill()  # SIGKILL ends it frozen: the connection is reset
        port_check.expect(r"^mqtt_event=DISCONNECTED", since=start)
        reconnect = len(port_check.lines)
        broker.restart()
        port_check.expect(r"^mqtt_event=CONNECTED", since=reconnect)
        port_check.expect(rf"^mqtt_event=PUBLISHED msg_id={msg_id}$", since=reconnect)
        echo = port_check.expect(r"^mqtt_event=DATA .*topic=t/echo data=(\w+)$", since=reconnect)
        assert bytes.fromhex(echo.group(1)) == b"sent-but-unacked"
        assert port_check.run("mqtt_outbox")["mqtt_outbox"] == "0"
        port_check.run("mqtt_stop")
    finally:
        if broker.running and broker.pid is not None:
            os.kill(broker.pid, signal.SIGCONT)  # a frozen mosquitto would not answer the SIGTERM of stop()
        broker.stop()


def test_a_long_message_is_split_over_data_events(port_check: PortCheck) -> None:
    """buffer.size 256: the first MQTT_EVENT_DATA has the topic and what fits after the PUBLISH header in
    the buffer, the next ones up to 256 bytes each with no topic; current_data_offset and total_data_len
    let the handler put the message together."""
    buffer_size, topic = 256, "t/long"
    payload = os.urandom(1000)
    with EmbeddedBroker() as broker:
        start = port_check.send(f"mqtt_start {broker.url} {buffer_size} 300 {topic}")
        port_check.expect(r"^mqtt_event=SUBSCRIBED", since=start)
        publish(broker, topic, payload)
        port_check.expect(r"^mqtt_event=DATA .* offset=(\d+) len=(\d+) total=1000 .*$", since=start)
        deadline = time.monotonic() + WAIT
        while sum(int(e["len"]) for e in mqtt_lines(port_check, start, "DATA")) < len(payload):
            assert time.monotonic() < deadline, mqtt_lines(port_check, start, "DATA")
            time.sleep(0.05)
        events = mqtt_lines(port_check, start, "DATA")
        port_check.run("mqtt_stop")
    # fixed header (1 + 2 bytes of remaining length), topic length and topic, packet id (QoS 1)
    header = 1 + 2 + 2 + len(topic) + 2
    first, *rest = events
    assert (first["topic"], first["topic_len"], first["offset"]) == (topic, str(len(topic)), "0")
    assert int(first["len"]) == buffer_size - header
    assert rest and all((e["topic"], e["topic_len"]) == ("", "0") for e in rest)
    offset = int(first["len"])
    for e in rest:
        assert int(e["offset"]) == offset
        assert int(e["len"]) == min(buffer_size, len(payload) - offset)
        offset += int(e["len"])
    assert all(e["total"] == str(len(payload)) for e in events)
    assert b"".join(bytes.fromhex(e["data"]) for e in events) == payload
