"""What a test or fixture relies on, whichever broker runs: the `MqttBroker` interface and the errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.publish_log import PublishLog


class BrokerError(RuntimeError):
    """A broker could not be started, stopped or reached."""


class BrokerUnreachableError(BrokerError):
    """An external broker did not answer an MQTT CONNECT."""


class MqttBroker(Protocol):
    """What fixtures and tests rely on, whichever broker runs."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    @property
    def receipts(self) -> PublishLog | None:
        """When the broker read each PUBLISH (the embedded broker only), for the timeline's clock."""
        ...

    def start(self) -> MqttBroker: ...

    def stop(self) -> None: ...
