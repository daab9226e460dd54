"""A broker the harness does not run (`--hil-broker mqtt://host:port`): only checked to answer MQTT."""

from __future__ import annotations

import ssl
from typing import Self

from harness.broker.interface import BrokerUnreachableError
from harness.broker.probe import mqtt_probe
from harness.net import format_url, parse_mqtt_url
from harness.service import Service


class ExternalBroker(Service):
    """A broker the harness does not run (`--hil-broker mqtt://host:port`); start() only checks it answers."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        parsed = parse_mqtt_url(url)
        self._scheme, self._host, self._port = parsed.scheme, parsed.host, parsed.port
        self._timeout = timeout

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return format_url(self._scheme, self._host, self._port)

    @property
    def receipts(self) -> None:
        return None  # not our broker: messages are timed where the link receives them

    def start(self) -> Self:
        self.check()
        return self

    def stop(self) -> None:
        """Nothing to stop: the broker belongs to someone else."""

    def check(self) -> None:
        """Fail fast, with the URL in the message, when nothing answers MQTT there."""
        tls = None
        if self._scheme == "mqtts":
            # reachability only: trust is the client's business, checked where it connects for real
            tls = ssl.create_default_context()
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        try:
            mqtt_probe(self._host, self._port, timeout=self._timeout, tls=tls)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnreachableError(
                f"external MQTT broker {self.url} is unreachable ({exc}); check --hil-broker, that the broker runs "
                "and that a firewall lets this machine in"
            ) from exc

    def __repr__(self) -> str:
        return f"ExternalBroker({self.url})"
