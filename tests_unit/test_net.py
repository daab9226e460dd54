"""harness.net: broker URLs, addresses and listen ports, the rules every service and client shares."""

from __future__ import annotations

import pytest

from harness.net import (
    MqttUrl,
    PortInUseError,
    check_port_free,
    format_url,
    free_port,
    local_address,
    parse_mqtt_url,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://h:1234", MqttUrl("mqtt", "h", 1234)),
    ("mqtt://h", MqttUrl("mqtt", "h", 1883)),
    ("mqtts://10.0.0.2", MqttUrl("mqtts", "10.0.0.2", 8883)),
    ("mqtt://[::1]:1884", MqttUrl("mqtt", "::1", 1884)),
    ("mqtt://ci:pa%40ss@broker", MqttUrl("mqtt", "broker", 1883, "ci", "pa@ss")),
])
def test_parse_mqtt_url(url: str, expected: MqttUrl) -> None:
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize("url", ["http://h:1", "h:1883", "mqtt://"])
def test_parse_mqtt_url_rejects_garbage(url: str) -> None:
    with pytest.raises(ValueError, match="mqtt://host:port"):
        parse_mqtt_url(url)


@pytest.mark.parametrize("url", ["mqtt://h:", "mqtt://h:0", "mqtt://h:x", "mqtt://h:70000", "mqtt://[::1]:"])
def test_parse_mqtt_url_rejects_a_bad_port(url: str) -> None:
    with pytest.raises(ValueError, match="bad port"):
        parse_mqtt_url(url)


def test_urls_and_addresses() -> None:
    assert format_url("http", "::1", 80) == "http://[::1]:80"
    assert format_url("mqtt", "10.0.0.2", 1883) == "mqtt://10.0.0.2:1883"
    assert [local_address(h) for h in ("0.0.0.0", "", "::", "10.0.0.2")] == ["127.0.0.1", "127.0.0.1", "::1",
                                                                             "10.0.0.2"]


def test_a_port_someone_listens_on_is_named_and_a_free_one_is_free(squatter: int) -> None:
    with pytest.raises(PortInUseError, match=rf"Svc: port {squatter} on 127\.0\.0\.1 is already in use"):
        check_port_free("127.0.0.1", squatter, "Svc")
    check_port_free("127.0.0.1", free_port(), "Svc")
