"""The pusher's connection errors (each says which step failed, so the user knows what to fix), and what it refuses
before it sends anything."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from harness.broker import EmbeddedBroker
from harness.broker.access import AccessPolicy
from harness.link import DeviceLink
from harness.mqtt_client import new_client
from harness.net import parse_mqtt_url
from harness.push import Pusher, PushError

WAIT_S = 5.0


@contextlib.contextmanager
def _stand_in_device(broker_url: str, device_id: str,
                     on_command: Callable[[mqtt.Client, dict[str, Any]], None]) -> Iterator[None]:
    """A paho client in the device's place (these tests are about the pusher): subscribed to its commands, it
    calls `on_command(client, command)` for each, on paho's thread."""
    endpoint = parse_mqtt_url(broker_url)
    client = new_client(endpoint, device_id, None, None, None)
    subscribed = threading.Event()
    client.on_message = lambda c, _userdata, msg: on_command(c, json.loads(msg.payload))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect(endpoint.host, endpoint.port)
    client.subscribe(f"devices/{device_id}/cmd", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(WAIT_S), "the stand-in device was not subscribed"
        yield
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_server_that_speaks_no_mqtt_is_named_as_such() -> None:
    """A TCP listener that never answers CONNECT (a wrong port, another service) is not blamed on credentials."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"mqtt://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(PushError, match="accepted a TCP connection but sent no MQTT CONNACK within 1 s"):
            Pusher(url, "d1").connect(timeout=1)


def test_a_refused_login_is_named_as_such() -> None:
    policy = AccessPolicy(operator_username="op", operator_password="op-pw", devices={"d1": "p1"})
    with EmbeddedBroker(auth=policy) as broker:
        url = broker.url.replace("mqtt://", "mqtt://op:wrong@")
        with pytest.raises(PushError, match=r"refused the pusher's connection: Not authorized \(check the user name "
                                             "and password") as refused:
            Pusher(url, "d1").connect(timeout=3)
    assert "wrong" not in str(refused.value), "the password is in the message"


def test_a_device_whose_online_flag_says_offline_fails_at_once() -> None:
    """Its session is clean, so it would never see the command: no wait for an answer that cannot come."""
    with EmbeddedBroker() as broker:
        with DeviceLink(broker.url) as device:
            device.publish("devices/ghost/online", "offline", retain=True)  # what its last will leaves
        with Pusher(broker.url, "ghost") as pusher, pytest.raises(PushError) as failed:
            started = time.monotonic()
            try:
                pusher.push(b"image", "p1", start_timeout=20)
            finally:
                waited = time.monotonic() - started
    assert waited < 10, f"waited {waited:.1f} s of the 20 s start timeout for a device known to be offline"
    assert "device ghost is offline: its online flag on devices/ghost/online says so" in str(failed.value)
    assert "push again" in str(failed.value)


def test_a_device_that_comes_back_as_the_push_starts_is_waited_for() -> None:
    """Its retained flag still says `offline` when the command goes out, but the device has just subscribed
    and says `online` a moment later: the pusher waits for its answer (here a refusal) instead of failing."""
    with EmbeddedBroker() as broker:
        with DeviceLink(broker.url) as device:
            device.publish("devices/ghost/online", "offline", retain=True)

        def on_command(client: mqtt.Client, command: dict[str, Any]) -> None:
            client.publish("devices/ghost/online", "online", qos=1, retain=True)
            client.publish("devices/ghost/ota", json.dumps({"id": command["id"], "seq": 1, "state": "rejected",
                                                             "reason": "busy"}), qos=1)

        with _stand_in_device(broker.url, "ghost", on_command), Pusher(broker.url, "ghost") as pusher:
            result = pusher.push(b"image", "p2", start_timeout=20)
    assert (result.state, result.event.get("reason")) == ("rejected", "busy"), result


@pytest.mark.parametrize("transfer_id", ["a/b", "p+1", "p#", "x" * 48])
def test_a_transfer_id_the_device_would_refuse_is_refused_before_sending(transfer_id: str) -> None:
    """Checked before the push command goes out (the pusher here is not even connected)."""
    with pytest.raises(ValueError, match="at most 47 characters, without /, \\+ or #"):
        Pusher("mqtt://127.0.0.1:1", "d1").push(b"image", transfer_id)


def test_busy_for_a_command_sent_again_is_not_the_push_s_outcome() -> None:
    """A device that had the push command after all (its answer lost with its connection) acknowledges the
    transfer when it reconnects, and answers the command the pusher sent again on its `online` with `busy`:
    that busy is about the repeat, and the push goes on to the device's real outcome."""
    with EmbeddedBroker() as broker:
        commands: list[dict[str, Any]] = []

        def on_command(client: mqtt.Client, command: dict[str, Any]) -> None:
            commands.append(command)
            if len(commands) == 1:  # reconnected: says online, acknowledges the transfer it runs
                client.publish("devices/late/online", "online", qos=1, retain=True)
                client.publish("devices/late/push_ack", json.dumps({"id": command["id"], "next": 0}), qos=1)
                return
            client.publish("devices/late/ota", json.dumps({"id": command["id"], "seq": 2, "state": "rejected",
                                                           "reason": "busy"}), qos=1)
            client.publish("devices/late/ota", json.dumps({"id": command["id"], "seq": 3, "state": "failed",
                                                           "reason": "idle_timeout"}), qos=1)

        with _stand_in_device(broker.url, "late", on_command), Pusher(broker.url, "late") as pusher:
            result = pusher.push(b"image", "p3", start_timeout=20)
    assert len(commands) == 2, commands
    assert (result.state, result.event.get("reason")) == ("failed", "idle_timeout"), result


def test_a_device_that_comes_online_after_the_push_gave_up_gets_no_old_command() -> None:
    """Once push() has raised "did not answer", a device connecting later must not receive that push: the user
    was told it failed, and a push starting behind their back would surprise them."""
    with EmbeddedBroker() as broker, DeviceLink(broker.url) as link:
        with Pusher(broker.url, "late") as pusher:
            with pytest.raises(PushError, match="did not answer"):
                pusher.push(b"image", "p4", start_timeout=0.5)
            link.publish("devices/late/online", "online", retain=True)  # the device connects, as above
            with pusher._changed:
                assert pusher._changed.wait_for(lambda: pusher._presence == b"online", WAIT_S)
            pusher._publish(pusher.topic("cmd"), json.dumps({"type": "status"}), qos=1)  # after any resend
        link.wait_for(lambda m: m.kind == "cmd" and m.data.get("type") == "status", timeout=WAIT_S)
    pushes = [m for m in link.messages if m.kind == "cmd" and m.data.get("type") == "push"]
    assert len(pushes) == 1, [m.describe() for m in pushes]


def test_a_push_that_gives_up_after_sending_again_cancels_the_transfer() -> None:
    """The command went out again on the device's `online`, and no answer came: the pusher raises, and cancels
    the transfer, so that a copy that reached the device late does not leave it waiting for chunks."""
    with EmbeddedBroker() as broker, DeviceLink(broker.url) as link:

        def on_command(client: mqtt.Client, command: dict[str, Any]) -> None:
            if command.get("type") == "push":
                client.publish("devices/mute/online", "online", qos=1, retain=True)  # and never answers

        with _stand_in_device(broker.url, "mute", on_command):
            with Pusher(broker.url, "mute") as pusher, pytest.raises(PushError, match="did not answer"):
                pusher.push(b"image", "p5", start_timeout=0.5)
            link.wait_for(lambda m: m.kind == "cmd" and m.data == {"type": "cancel", "id": "p5"}, timeout=WAIT_S,
                          description="the pusher's cancel")


def test_the_pusher_s_own_reconnect_before_an_answer_sends_the_command_again() -> None:
    """The command went out, then the pusher's connection dropped before the device answered (the broker may
    have lost the command with it): back and subscribed, the pusher sends it again, and the device's answer
    to that copy ends the push, not the start timeout."""
    with EmbeddedBroker() as broker:
        commands: list[dict[str, Any]] = []
        pusher = Pusher(broker.url, "lost")

        def drop_after_the_puback(client: mqtt.Client, *_: Any) -> None:
            # once the broker has acknowledged the command, so paho keeps no copy of it to send again itself
            client.on_publish = None
            client.socket().shutdown(socket.SHUT_RDWR)

        def on_command(client: mqtt.Client, command: dict[str, Any]) -> None:
            commands.append(command)
            if len(commands) > 1:  # the first one is taken as lost
                client.publish("devices/lost/ota", json.dumps({"id": command["id"], "seq": 1, "state": "rejected",
                                                               "reason": "same_version"}), qos=1)

        with _stand_in_device(broker.url, "lost", on_command), pusher:
            pusher._client.on_publish = drop_after_the_puback
            started = time.monotonic()
            result = pusher.push(b"image", "p6", start_timeout=20)
    assert time.monotonic() - started < 10, "waited for the start timeout"
    assert len(commands) == 2 and commands[0] == commands[1], commands
    assert (result.state, result.event.get("reason")) == ("rejected", "same_version"), result
