"""Bad input to the harness services fails fast, with a message that says what to do.

A port already in use, a broker that dies mid-test (embedded or a mosquitto process), an unreachable
external broker. Wrong command-line options are in test_external_broker_option.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from harness.broker import (
    BrokerUnreachableError,
    EmbeddedBroker,
    ExternalBroker,
    MosquittoBroker,
    PortInUseError,
)
from harness.fwserver import FirmwareServer
from harness.link import BrokerLost, DeviceLink, LinkTimeout

LOST_AFTER = 1.0  # the link's grace period in these tests (3 s by default)
FAST = 1.5  # seconds: what "at once" means for a failure that needs no waiting


def _fails_fast(call: object, error: type[BaseException], match: str) -> BaseException:
    started = time.monotonic()
    with pytest.raises(error, match=match) as raised:
        call()  # type: ignore[operator]
    assert time.monotonic() - started < FAST
    return raised.value


# --- a port already in use -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", [EmbeddedBroker, FirmwareServer, MosquittoBroker])
def test_a_port_in_use_names_the_port_and_the_way_out(service: type, squatter: int) -> None:
    threads = threading.active_count()
    err = _fails_fast(lambda: service(port=squatter).start(), PortInUseError, rf"port {squatter} on 127\.0\.0\.1")
    assert "already in use" in str(err) and "port=0" in str(err)
    assert threading.active_count() == threads  # nothing left running after the failed start


# --- a broker that dies mid-test -------------------------------------------------------------------------


def _device_says(broker_url: str, topic: str, payload: dict[str, object]) -> None:
    with DeviceLink(broker_url, prefix="other") as device:
        device.publish(topic, json.dumps(payload))


def _wait_while_the_broker_dies(link: DeviceLink, kill: object) -> BrokerLost:
    since = link.cursor()
    threading.Timer(0.2, kill).start()  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(BrokerLost) as raised:
        link.wait_ota("d1", "r1", "succeeded", timeout=60, since=since)
    waited = time.monotonic() - started
    assert waited < 0.2 + LOST_AFTER + 1.0, f"the wait took {waited:.1f} s; the broker was gone after 0.2 s"
    return raised.value


def test_a_wait_ends_soon_after_the_embedded_broker_dies() -> None:
    broker = EmbeddedBroker().start()
    try:
        with DeviceLink(broker.url, lost_after=LOST_AFTER) as link:
            err = _wait_while_the_broker_dies(link, broker.stop)
    finally:
        broker.stop()
    text = str(err)
    assert f"lost the MQTT broker {broker.url}" in text
    assert "OTA event state='succeeded'" in text  # what the test was waiting for
    assert "check that it still runs" in text and "link.wait_connection()" in text  # what to do


def test_a_wait_ends_soon_after_mosquitto_crashes() -> None:
    with MosquittoBroker() as broker, DeviceLink(broker.url, lost_after=LOST_AFTER) as link:
        err = _wait_while_the_broker_dies(link, broker.kill)
        assert not broker.running
    assert f"lost the MQTT broker {broker.url}" in str(err)


def test_a_broker_restart_within_the_grace_period_is_not_a_failure() -> None:
    with EmbeddedBroker() as broker, DeviceLink(broker.url, lost_after=LOST_AFTER) as link:
        since = link.cursor()
        broker.restart()
        link.wait_connection(timeout=5)
        _device_says(broker.url, "devices/d1/ota", {"id": "r1", "seq": 1, "state": "succeeded"})
        assert link.wait_ota("d1", "r1", "succeeded", timeout=5, since=since)["seq"] == 1


def test_a_wait_that_starts_while_the_broker_is_down_gets_the_whole_grace_period() -> None:
    """As in the rollback scenarios: the broker is stopped, the test watches the serial console for longer
    than the grace period, restarts the broker and waits on the link at once."""
    with EmbeddedBroker() as broker, DeviceLink(broker.url, lost_after=LOST_AFTER) as link:
        broker.stop()
        link.wait_connection(connected=False, timeout=5)
        time.sleep(LOST_AFTER)  # stands for the serial-console phase: the link has been down this long
        since = link.cursor()

        def broker_back() -> None:
            broker.start()
            link.wait_connection(timeout=5)
            _device_says(broker.url, "devices/d1/ota", {"id": "r1", "seq": 1, "state": "succeeded"})

        threading.Thread(target=broker_back).start()
        link.wait_ota("d1", "r1", "succeeded", timeout=5, since=since)


def test_without_a_grace_period_a_wait_runs_to_its_deadline() -> None:
    broker = EmbeddedBroker().start()
    with DeviceLink(broker.url, lost_after=None) as link:
        broker.stop()
        link.wait_connection(connected=False, timeout=5)
        with pytest.raises(LinkTimeout, match="NOT connected"):
            link.wait_for(lambda m: True, timeout=0.5, since=link.cursor())


# --- an unreachable external broker ----------------------------------------------------------------------


def test_a_refused_external_broker_fails_at_once() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"mqtt://127.0.0.1:{placeholder.getsockname()[1]}"
        err = _fails_fast(ExternalBroker(url).start, BrokerUnreachableError, "unreachable")
    assert url in str(err) and "check --hil-broker" in str(err)


def test_an_external_broker_that_never_answers_fails_at_its_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; no broker ever sends a CONNACK
        url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}"
        err = _fails_fast(ExternalBroker(url, timeout=0.5).start, BrokerUnreachableError, "unreachable")
    assert url in str(err) and "that the broker runs" in str(err)
