"""paho-mqtt clients as the harness makes them: MQTT 3.1.1, Nagle's algorithm off, TLS trusting a given CA.

The device link's client comes from `new_client`; so does the second client that `publish_all` floods a
topic through (paho fixes how many QoS 1 messages a client has in flight, 20 by default, when it connects).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.net import MqttUrl, parse_mqtt_url

PAHO_INFLIGHT = 20  # paho's default number of QoS 1 messages in flight


class LinkError(RuntimeError):
    """The link could not connect, subscribe or publish."""


def disable_nagle(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """paho leaves Nagle's algorithm on: a command sent right after the PUBACK of a device's message would wait
    for the broker's delayed ACK (~40 ms) before it leaves, and so would every back-to-back command."""
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)  # ssl.SSLSocket is a socket
    if isinstance(raw, socket.socket) and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(endpoint: MqttUrl, client_id: str, username: str | None, password: str | None,
               ca_pem: str | None) -> mqtt.Client:
    """A clean-session client for `endpoint`, not connected yet."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                         clean_session=True)
    if username is not None:
        client.username_pw_set(username, password)
    if endpoint.scheme == "mqtts":
        client.tls_set_context(ssl.create_default_context(cadata=ca_pem))
    client.on_socket_open = disable_nagle
    return client


def publish_all(sender: mqtt.Client, url: str, topic: str, payloads: list[bytes], timeout: float) -> None:
    """Connect `sender` to `url`, publish every payload (QoS 1) at once, wait for every PUBACK, disconnect."""
    endpoint = parse_mqtt_url(url)
    sender.max_inflight_messages_set(max(PAHO_INFLIGHT, len(payloads)))
    sender.max_queued_messages_set(0)
    try:
        sender.connect(endpoint.host, endpoint.port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"cannot connect a burst sender to {url}: {exc}") from exc
    sender.loop_start()
    try:
        infos = [sender.publish(topic, payload, qos=1) for payload in payloads]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        unacked = sum(not info.is_published() for info in infos)
        if unacked:
            raise LinkError(f"{unacked} of {len(infos)} commands to {topic} not acknowledged within {timeout} s")
    finally:
        sender.disconnect()
        sender.loop_stop()
