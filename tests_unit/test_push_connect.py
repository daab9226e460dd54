"""The pusher's connection errors (each says which step failed, so the user knows what to fix), and what it refuses
before it sends anything."""

from __future__ import annotations

import socket
import time

import pytest

from harness.broker import EmbeddedBroker
from harness.broker.access import AccessPolicy
from harness.link import DeviceLink
from harness.push import Pusher, PushError


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


@pytest.mark.parametrize("transfer_id", ["a/b", "p+1", "p#", "x" * 48])
def test_a_transfer_id_the_device_would_refuse_is_refused_before_sending(transfer_id: str) -> None:
    """Checked before the push command goes out (the pusher here is not even connected)."""
    with pytest.raises(ValueError, match="at most 47 characters, without /, \\+ or #"):
        Pusher("mqtt://127.0.0.1:1", "d1").push(b"image", transfer_id)
