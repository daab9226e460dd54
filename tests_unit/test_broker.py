"""EmbeddedBroker, ExternalBroker and MosquittoBroker against real sockets and real paho clients."""

from __future__ import annotations

import gc
import os
import queue
import socket
import ssl
import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.broker import (
    AccessPolicy,
    BrokerError,
    BrokerUnreachableError,
    EmbeddedBroker,
    ExternalBroker,
    MosquittoBroker,
    PortInUseError,
    mqtt_probe,
)
from harness.broker.probe import _connect_packet
from harness.fwserver import FirmwareServer
from harness.net import free_port

pytestmark = pytest.mark.usefixtures("no_warnings_logged")

WAIT = 5.0


class Client:
    """A bare paho client whose callbacks only enqueue, so the test thread does the asserting."""

    def __init__(self, broker: Any, username: str | None = None, password: str | None = None,
                 will_topic: str | None = None, ca_pem: str | None = None,
                 protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311) -> None:
        self.broker = broker
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connacks: queue.Queue[mqtt.ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[mqtt.ReasonCode]] = queue.Queue()
        self.disconnected = threading.Event()
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol, reconnect_on_failure=False)
        if username:
            self.paho.username_pw_set(username, password)
        if will_topic:
            self.paho.will_set(will_topic, b"offline", retain=True)
        if ca_pem:
            self.paho.tls_set_context(ssl.create_default_context(cadata=ca_pem))
        self.paho.on_connect = lambda c, u, f, rc, p: self.connacks.put(rc)
        self.paho.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.paho.on_message = lambda c, u, msg: self.messages.put(msg)
        self.paho.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()

    def connect(self) -> mqtt.ReasonCode:
        self.paho.connect(self.broker.host, self.broker.port)
        self.paho.loop_start()
        return self.connacks.get(timeout=WAIT)

    def subscribe(self, topic: str) -> list[mqtt.ReasonCode]:
        self.paho.subscribe(topic, qos=1)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> None:
        info = self.paho.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"no PUBACK for {topic}"

    def receive(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()
        # break the callback cycle so paho's socketpair is closed now (paho closes it only in __del__)
        self.paho.on_connect = self.paho.on_subscribe = self.paho.on_message = self.paho.on_disconnect = None


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def connected(clients: list[Client], broker: Any, **kwargs: Any) -> Client:
    client = Client(broker, **kwargs)
    clients.append(client)
    rc = client.connect()
    assert not rc.is_failure, rc
    return client


def round_trip(clients: list[Client], broker: Any, topic: str = "devices/d1/status") -> None:
    sub = connected(clients, broker)
    assert not sub.subscribe(topic)[0].is_failure
    connected(clients, broker).publish(topic, b"hello")
    assert sub.receive().payload == b"hello"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- EmbeddedBroker ----------------------------------------------------------------------------------------


def test_start_returns_when_accepting_and_url_matches(clients: list[Client]) -> None:
    with EmbeddedBroker() as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        assert broker.host == "127.0.0.1" and broker.port > 0
        assert mqtt_probe(broker.host, broker.port) == 0  # a broker answers, not just a listen backlog
        round_trip(clients, broker)


def test_stop_then_start_reuses_the_same_port(clients: list[Client]) -> None:
    broker = EmbeddedBroker().start()
    try:
        port = broker.port
        broker.stop()
        assert not broker.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((broker.host, port), timeout=1).close()
        broker.start()
        assert broker.port == port
        round_trip(clients, broker)
        broker.restart()
        assert broker.port == port
        round_trip(clients, broker)
    finally:
        broker.stop()


def test_stop_closes_connected_clients(clients: list[Client]) -> None:
    broker = EmbeddedBroker().start()
    client = connected(clients, broker)
    broker.stop()
    assert client.disconnected.wait(WAIT)


def test_clients_connecting_while_others_come_and_go_keep_their_sessions(clients: list[Client]) -> None:
    """amqtt 0.12 walks its subscription table with an await per entry (retained messages for a starting
    session); others subscribing or leaving meanwhile killed the session just after its CONNACK."""
    with EmbeddedBroker() as broker:
        watcher = connected(clients, broker)
        watcher.subscribe("devices/#")  # every retained message matches it
        failures: list[BaseException] = []

        def device(n: int) -> None:
            try:
                client = connected(clients, broker)
                assert not client.subscribe(f"devices/d{n}/cmd")[0].is_failure
                client.publish(f"devices/d{n}/online", b"online", retain=True)
            except (AssertionError, OSError, queue.Empty) as exc:  # the test thread reports them
                failures.append(exc)

        for wave in range(3):
            threads = [threading.Thread(target=device, args=(wave * 12 + n,)) for n in range(12)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for client in clients[-12::2]:  # half of this wave leaves again
                client.close()
        assert not failures, failures
        # every "online" forwarded before the broker stops: a PUBACK comes before the forward, and a stop with
        # messages still queued logs "N messages not broadcasted"
        assert sorted(watcher.receive().topic for _ in range(36)) == sorted(f"devices/d{n}/online" for n in range(36))


def test_a_new_session_gets_the_retained_messages_of_its_own_subscriptions_only(clients: list[Client]) -> None:
    """amqtt 0.12 sends a starting session the retained messages matching every filter in its table, other
    clients' included: a device got the others' retained flags, a pusher another device's `offline`."""
    with EmbeddedBroker() as broker:
        watcher = connected(clients, broker)
        watcher.subscribe("devices/+/+")
        connected(clients, broker).publish("devices/other/online", b"offline", retain=True)
        device = connected(clients, broker)
        assert not device.subscribe("devices/d1/cmd")[0].is_failure
        connected(clients, broker).publish("devices/d1/cmd", b"marker")
        first = device.receive()  # anything sent at the session's start came before the marker
        assert (first.topic, first.payload) == ("devices/d1/cmd", b"marker")
        assert not device.subscribe("devices/other/online")[0].is_failure  # its own: that one it gets
        own = device.receive()
        assert (own.topic, own.payload, own.retain) == ("devices/other/online", b"offline", True)


def test_port_in_use_error_names_the_port(squatter: int) -> None:
    with pytest.raises(PortInUseError, match=rf"port {squatter} on 127\.0\.0\.1 is already in use.*port=0"):
        EmbeddedBroker(port=squatter).start()


def test_restart_fails_clearly_when_the_port_was_taken_meanwhile() -> None:
    broker = EmbeddedBroker().start()
    port = broker.port
    broker.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortInUseError, match=str(port)):
            broker.start()
    assert not broker.running
    assert not [t.name for t in threading.enumerate() if t.name.startswith("amqtt-")]


def test_embedded_broker_runs_on_uvloop() -> None:
    """Installed with the harness (pyproject.toml): without it the broker works, slower per message."""
    pytest.importorskip("uvloop")
    with EmbeddedBroker() as broker:
        assert type(broker._loop.loop).__module__.startswith("uvloop")


def test_tls_broker_serves_mqtts_with_its_ca(clients: list[Client]) -> None:
    with EmbeddedBroker(tls=True) as broker:
        assert broker.url.startswith("mqtts://")
        assert "BEGIN CERTIFICATE" in broker.ca_pem
        sub = connected(clients, broker, ca_pem=broker.ca_pem)
        assert not sub.subscribe("devices/d1/ota")[0].is_failure
        connected(clients, broker, ca_pem=broker.ca_pem).publish("devices/d1/ota", b"tls")
        assert sub.receive().payload == b"tls"


def silent_subscriber(broker: EmbeddedBroker, name: str) -> socket.socket:
    """A raw client subscribed to devices/x/# at QoS 1 that never reads what it is sent."""
    sock = socket.create_connection((broker.host, broker.port), timeout=WAIT)
    sock.sendall(_connect_packet(name))
    assert sock.recv(4)[:1] == b"\x20"
    topic = b"devices/x/#"
    body = struct.pack("!HH", 1, len(topic)) + topic + b"\x01"
    sock.sendall(bytes([0x82, len(body)]) + body)
    assert sock.recv(5)[:1] == b"\x90"
    return sock


def flood(publisher: Client, flooding: threading.Event) -> None:
    while flooding.is_set():
        for _ in range(50):
            publisher.paho.publish("devices/x/ota", b"y" * 100, qos=1)
        time.sleep(0.001)


def test_forwarding_to_clients_that_vanish_and_stopping_mid_stream_log_nothing(clients: list[Client]) -> None:
    """A write to a connection that is gone is dropped, on uvloop as on asyncio's loop (where uvloop raised
    RuntimeError, which amqtt logged as errors and which killed the forwarding task)."""
    for attempt in range(2):
        broker = EmbeddedBroker().start()
        publisher = connected(clients, broker)
        subscribers = [silent_subscriber(broker, f"silent-{attempt}-{i}") for i in range(3)]
        flooding = threading.Event()
        flooding.set()
        thread = threading.Thread(target=flood, args=(publisher, flooding))
        thread.start()
        try:
            time.sleep(0.2)
            subscribers[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            subscribers[0].close()  # a reset while messages are forwarded to it
            subscribers[1].close()  # a close that never read its messages
            time.sleep(0.1)
            broker.stop()  # with the flood still going, and one subscriber still there
        finally:
            flooding.clear()
            thread.join()
            subscribers[2].close()
            broker.stop()
    gc.collect()  # "Task exception was never retrieved" is logged when the task is collected


def test_start_stop_cycles_leave_no_threads_or_fds(clients: list[Client]) -> None:
    threads_before, fds_before = threading.active_count(), open_fds()
    for _ in range(3):
        with EmbeddedBroker() as broker, FirmwareServer() as server:
            client = connected(clients, broker)
            artifact = server.add(b"\x00" * 10_000)
            assert len(urllib.request.urlopen(artifact.url, timeout=WAIT).read()) == 10_000
            client.close()
            clients.remove(client)
            del client  # the last reference: paho frees its socketpair only when the client object goes
    assert threading.active_count() == threads_before, [t.name for t in threading.enumerate()]
    assert open_fds() == fds_before


# --- authentication and ACL ----------------------------------------------------------------------------------


@pytest.fixture
def secured() -> Iterator[EmbeddedBroker]:
    policy = AccessPolicy(operator_username="op", operator_password="op-pw", devices={"d1": "p1", "d2": "p2"})
    with EmbeddedBroker(auth=policy) as broker:
        yield broker


def test_auth_refuses_anonymous_and_wrong_passwords(secured: EmbeddedBroker, clients: list[Client]) -> None:
    assert mqtt_probe(secured.host, secured.port) == 5
    for username, password in [(None, None), ("d1", "wrong"), ("nobody", "p1"), ("op", "p1")]:
        client = Client(secured, username=username, password=password)
        clients.append(client)
        assert client.connect().is_failure, (username, password)
    connected(clients, secured, username="d1", password="p1")


def test_only_the_operator_can_command_a_device(secured: EmbeddedBroker, clients: list[Client]) -> None:
    operator = connected(clients, secured, username="op", password="op-pw")
    assert not operator.subscribe("devices/+/status")[0].is_failure
    device = connected(clients, secured, username="d1", password="p1")
    assert not device.subscribe("devices/d1/cmd")[0].is_failure
    assert not device.subscribe("devices/all/cmd")[0].is_failure
    for sender, name in [(connected(clients, secured, username="d2", password="p2"), "d2"), (device, "d1")]:
        sender.publish("devices/d1/cmd", b'{"type":"reboot"}')  # dropped (a PUBACK still comes)
        sender.publish("devices/all/cmd", b'{"type":"reboot"}')
        # amqtt handles one client's publishes in order: once this arrives, the forbidden ones were decided
        sender.publish(f"devices/{name}/status", b"{}")
        assert operator.receive().topic == f"devices/{name}/status"
    operator.publish("devices/d1/cmd", b'{"type":"status"}')
    assert device.receive().payload == b'{"type":"status"}'  # the first and only command the device got
    operator.publish("devices/all/cmd", b'{"type":"check"}')
    assert device.receive().payload == b'{"type":"check"}'
    assert device.messages.empty()


def test_device_subscriptions_are_limited_to_its_commands(secured: EmbeddedBroker, clients: list[Client]) -> None:
    device = connected(clients, secured, username="d1", password="p1")
    for topic in ["devices/#", "devices/d2/cmd", "devices/+/cmd", "devices/d1/ota", "#"]:
        assert device.subscribe(topic)[0].is_failure, topic


def test_device_publishes_only_under_its_own_topics(secured: EmbeddedBroker, clients: list[Client]) -> None:
    operator = connected(clients, secured, username="op", password="op-pw")
    assert not operator.subscribe("devices/#")[0].is_failure
    device = connected(clients, secured, username="d1", password="p1")
    device.publish("devices/d2/status", b"spoofed")
    device.publish("elsewhere/x", b"outside")
    device.publish("devices/d1/status", b"mine")
    assert operator.receive().payload == b"mine"
    assert operator.messages.empty()


def test_device_will_must_stay_in_its_own_tree(secured: EmbeddedBroker, clients: list[Client]) -> None:
    ok = Client(secured, username="d1", password="p1", will_topic="devices/d1/online")
    bad = Client(secured, username="d1", password="p1", will_topic="devices/d2/online")
    clients += [ok, bad]
    assert not ok.connect().is_failure
    assert bad.connect().is_failure


def test_devices_can_be_added_while_running(secured: EmbeddedBroker, clients: list[Client]) -> None:
    unknown = Client(secured, username="d9", password="p9")
    clients.append(unknown)
    assert unknown.connect().is_failure
    assert secured.auth is not None
    secured.auth.add_device("d9", "p9")
    connected(clients, secured, username="d9", password="p9")


@pytest.mark.parametrize("device_id", ["", "all", "a/b", "a+", "#", "op"])
def test_policy_rejects_ambiguous_device_ids(device_id: str) -> None:
    with pytest.raises(ValueError, match="device id"):
        AccessPolicy(operator_username="op", devices={device_id: "x"})


# --- ExternalBroker -----------------------------------------------------------------------------------------


def test_external_broker_checks_connectivity(clients: list[Client]) -> None:
    with EmbeddedBroker() as embedded:
        external = ExternalBroker(embedded.url).start()
        assert (external.host, external.port, external.url) == (embedded.host, embedded.port, embedded.url)
        round_trip(clients, external)
        external.stop()  # a no-op: the broker is not ours
        assert mqtt_probe(embedded.host, embedded.port) == 0


def test_external_broker_unreachable_fails_fast_with_the_url() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound, not listening: connections are refused
        started = time.monotonic()
        with pytest.raises(BrokerUnreachableError, match=rf"mqtt://127\.0\.0\.1:{port} is unreachable"):
            ExternalBroker(f"mqtt://127.0.0.1:{port}", timeout=1.0).start()
        assert time.monotonic() - started < 2.0


def test_external_broker_that_is_not_mqtt_is_reported() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts in the backlog but never answers a CONNECT
        port = silent.getsockname()[1]
        with pytest.raises(BrokerUnreachableError, match="unreachable"):
            ExternalBroker(f"mqtt://127.0.0.1:{port}", timeout=0.3).start()


# --- MosquittoBroker ----------------------------------------------------------------------------------------


def test_mosquitto_broker_runs_and_cleans_up(clients: list[Client]) -> None:
    broker = MosquittoBroker().start()
    try:
        config = broker.config_path
        assert config is not None
        text = config.read_text()
        for line in (f"listener {broker.port} 127.0.0.1", "allow_anonymous true", "max_queued_messages 0"):
            assert line in text.splitlines()
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        round_trip(clients, broker)
        # mosquitto is there for what amqtt lacks, such as MQTT 5
        v5 = connected(clients, broker, protocol=mqtt.MQTTv5)
        assert v5.subscribe("devices/d1/ota")
        port = broker.port
        broker.restart()
        assert broker.port == port
        round_trip(clients, broker)
    finally:
        broker.stop()
    assert not config.parent.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_mosquitto_on_a_free_port_taken_before_it_binds_tries_another(squatter: int, clients: list[Client],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The race under xdist: the free port probed is taken by another worker before mosquitto binds it."""
    import harness.broker.mosquitto as mosquitto_module

    probed = iter([squatter])
    monkeypatch.setattr(mosquitto_module, "free_port", lambda host: next(probed, 0) or free_port(host))
    broker = MosquittoBroker().start()
    try:
        assert broker.port != squatter
        round_trip(clients, broker)
    finally:
        broker.stop()


def test_mosquitto_on_a_port_asked_for_and_taken_fails_naming_it(squatter: int) -> None:
    with pytest.raises(PortInUseError, match=rf"port {squatter} on 127\.0\.0\.1 is already in use"):
        MosquittoBroker(port=squatter).start()


def test_mosquitto_whose_output_ends_before_it_exits_is_reported_by_its_exit(tmp_path: Path) -> None:
    """A mosquitto that failed to bind closes its output a moment before it has exited (and can be reaped): the
    start waits for the exit and takes it for the port taken (tried again, then named), rather than probing a
    port nobody serves ("does not answer MQTT"). The real mosquitto's window is too short to hit at will, so a
    script opens it wider: it prints mosquitto's line, closes stderr, and exits 0.2 s later."""
    exiting = tmp_path / "mosquitto"
    exiting.write_text('#!/bin/sh\necho "Error: Address already in use" >&2\nexec 2>&-\nsleep 0.2\nexit 1\n')
    exiting.chmod(0o755)
    with pytest.raises(PortInUseError, match=r"port \d+ on 127\.0\.0\.1 is already in use"):
        MosquittoBroker(executable=str(exiting)).start()


def test_mosquitto_start_failure_shows_its_output() -> None:
    broker = MosquittoBroker(extra_config=["no_such_option 1"])
    with pytest.raises(BrokerError, match="no_such_option"):
        broker.start()
    assert broker.config_path is None


def test_amqtt_packet_tasks_cancelled_with_their_connection_log_nothing_other_task_errors_do() -> None:
    """amqtt turns a packet task's cancellation (its connection ended mid-PUBACK) into ProtocolHandlerError, in a
    task nobody awaits: asyncio would log "Task exception was never retrieved". The broker's loop drops exactly
    that; any other unretrieved task error still goes to asyncio's default handler."""
    import asyncio

    from amqtt.errors import ProtocolHandlerError

    from harness.broker.embedded import _drop_cancelled_packet_tasks

    async def cancelled_packet() -> None:
        try:
            raise asyncio.CancelledError
        except asyncio.CancelledError as exc:
            raise ProtocolHandlerError("Packet handling was cancelled") from exc

    async def leave_a_failed_task_behind() -> None:
        task = asyncio.get_running_loop().create_task(cancelled_packet())
        await asyncio.wait([task])
        del task  # never retrieved: asyncio reports it when the task is collected
        gc.collect()

    with EmbeddedBroker() as broker:
        broker._loop.run(leave_a_failed_task_behind(), timeout=5)  # nothing logged (no_warnings_logged)

    passed_on: list[dict[str, Any]] = []

    class Loop:
        def default_exception_handler(self, context: dict[str, Any]) -> None:
            passed_on.append(context)

    other = {"message": "Task exception was never retrieved", "exception": ValueError("a real bug")}
    _drop_cancelled_packet_tasks(Loop(), other)  # type: ignore[arg-type]
    assert passed_on == [other]


def test_a_client_that_closes_before_its_connect_is_not_logged() -> None:
    """A board reset while its MQTT client connects opens a TCP connection and closes it without a CONNECT:
    amqtt logged that as an error and a warning (in the benchmarks' output, say); nothing is logged now
    (no_warnings_logged)."""
    import asyncio

    with EmbeddedBroker() as broker:

        async def connections() -> set[asyncio.Task[None]]:
            return set(broker._connections)

        before = broker._loop.run(connections(), timeout=WAIT)  # start()'s probe may not have ended yet
        silent = socket.create_connection((broker.host, broker.port), timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while not (tasks := broker._loop.run(connections(), timeout=WAIT) - before):  # the broker took it
            assert time.monotonic() < deadline, "the broker never took the connection"
            time.sleep(0.005)  # polled: the broker has no event for a connection it took
        silent.close()
        done, _ = broker._loop.run(asyncio.wait(tasks, timeout=WAIT), timeout=WAIT + 1)
        assert done == set(tasks), "the broker did not end the silent connection"


def test_the_silent_client_filter_lets_every_other_amqtt_message_through() -> None:
    import logging

    from harness.broker.embedded import _SILENT_CLIENT_FILTER

    def passes(message: str) -> bool:
        return _SILENT_CLIENT_FILTER.filter(logging.LogRecord("amqtt.broker", logging.WARNING, "", 0, message, (),
                                                              None))

    assert not passes("No data from (client @=127.0.0.1:5000) : No data to decode MQTT packet fixed header")
    assert not passes("Failed to initialize client session: No data to decode MQTT packet fixed header")
    assert passes("Failed to initialize client session: [MQTT-3.1.0-1] first packet is not a CONNECT")
    assert passes("Invalid connection from (client @=127.0.0.1:5000)")
    assert passes("Error while handling client session: No data to decode MQTT packet fixed header")
