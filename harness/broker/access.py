"""Who may connect to the embedded broker, and which topics each identity may use.

`AccessPolicy` holds the rules; `DeviceAuthPlugin` and `DeviceTopicPlugin` are the amqtt plugins that apply
them to every CONNECT, PUBLISH, SUBSCRIBE and delivery.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session


@dataclass
class AccessPolicy:
    """Who may connect to the embedded broker, and which topics each identity may use.

    The operator (the harness) may do anything. A device logs in with its device id as the username; it may
    publish only under `<prefix>/<id>/...` (never a `cmd` topic) and subscribe only to its own command topic
    and the broadcast one. A device's will topic is held to the same publish rule, because amqtt publishes
    wills without asking the topic plugins.
    """

    operator_username: str = "operator"
    operator_password: str = "operator"
    devices: dict[str, str] = field(default_factory=dict)  # device id (= username) -> password
    prefix: str = "devices"

    def __post_init__(self) -> None:
        for device_id in self.devices:
            self._check_device_id(device_id)

    def add_device(self, device_id: str, password: str) -> None:
        """Allow one more device; takes effect on its next CONNECT, also while the broker runs."""
        self._check_device_id(device_id)
        self.devices[device_id] = password

    def authenticate(self, username: str | None, password: str | None) -> bool:
        if username is None:
            return False
        expected = self._password_of(username)
        # compare_digest: constant time, and a habit worth keeping even in a test broker
        return expected is not None and hmac.compare_digest((password or "").encode(), expected.encode())

    def may_publish(self, username: str | None, topic: str) -> bool:
        if username == self.operator_username:
            return True
        if username not in self.devices:
            return False
        return topic.startswith(f"{self.prefix}/{username}/") and not self._is_command_topic(topic)

    def may_subscribe(self, username: str | None, topic_filter: str) -> bool:
        if username == self.operator_username:
            return True
        if username not in self.devices:
            return False
        return topic_filter in (f"{self.prefix}/{username}/cmd", f"{self.prefix}/all/cmd")

    def may_receive(self, username: str | None, topic: str) -> bool:
        # defence in depth: even a subscription that slipped through delivers only the device's own commands
        return self.may_subscribe(username, topic)

    def _password_of(self, username: str) -> str | None:
        if username == self.operator_username:
            return self.operator_password
        return self.devices.get(username)

    def _is_command_topic(self, topic: str) -> bool:
        return topic.startswith(f"{self.prefix}/") and topic.rsplit("/", 1)[-1] == "cmd"

    def _check_device_id(self, device_id: str) -> None:
        if not device_id or device_id == "all" or any(c in device_id for c in "/+#"):
            raise ValueError(f"invalid device id {device_id!r}: must be non-empty, not 'all', no '/', '+', '#'")
        if device_id == self.operator_username:
            raise ValueError(f"device id {device_id!r} clashes with the operator username")


@dataclass
class _PolicyConfig:
    # amqtt builds each plugin's Config with dacite; `Any` lets the live policy object through uncopied,
    # so add_device() on a running broker takes effect
    policy: Any = None


class DeviceAuthPlugin(BaseAuthPlugin):
    """amqtt auth plugin backed by an AccessPolicy (plain compare: FileAuthPlugin's argon2 costs ~135 ms)."""

    Config = _PolicyConfig

    async def authenticate(self, *, session: Session) -> bool:
        policy: AccessPolicy = self.config.policy
        if not policy.authenticate(session.username, session.password):
            return False
        # amqtt publishes wills without asking topic plugins, so the will topic is checked here
        return not session.will_flag or policy.may_publish(session.username, session.will_topic or "")


class DeviceTopicPlugin(BaseTopicPlugin):
    """amqtt topic plugin enforcing an AccessPolicy for publish, subscribe and delivery."""

    Config = _PolicyConfig

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        policy: AccessPolicy = self.config.policy
        username = session.username if session else None
        if topic is None:
            return False
        if action == Action.PUBLISH:
            return policy.may_publish(username, topic)
        if action == Action.SUBSCRIBE:
            return policy.may_subscribe(username, topic)
        return policy.may_receive(username, topic)
