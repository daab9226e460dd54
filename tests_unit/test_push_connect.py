"""The pusher's connection errors: each says which step failed, so the user knows what to fix."""

from __future__ import annotations

import socket

import pytest

from harness.broker import EmbeddedBroker
from harness.broker.access import AccessPolicy
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
