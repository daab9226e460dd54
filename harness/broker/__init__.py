"""MQTT brokers for the harness: embedded amqtt, an external URL, or a mosquitto subprocess.

All three offer the same small interface (`MqttBroker`): `start()`, `stop()`, `host`, `port`, `url`,
and use as a context manager, so a test or fixture never cares which one it got.

- interface.py: the `MqttBroker` interface and the broker errors
- embedded.py: `EmbeddedBroker`, amqtt in its own thread; access.py: who may connect and use which topic
- receipts.py: when the embedded broker read each PUBLISH, the timeline's clock for MQTT messages
- mosquitto.py: `MosquittoBroker`, a mosquitto subprocess
- external.py: `ExternalBroker`, someone else's broker; probe.py: does a broker answer MQTT on a port?
"""

from harness.broker.access import AccessPolicy, DeviceAuthPlugin, DeviceTopicPlugin
from harness.broker.embedded import EmbeddedBroker
from harness.broker.external import ExternalBroker
from harness.broker.interface import BrokerError, BrokerUnreachableError, MqttBroker
from harness.broker.mosquitto import MosquittoBroker, find_mosquitto
from harness.broker.probe import mqtt_probe
from harness.net import PortInUseError
from harness.publish_log import PublishLog

__all__ = [
    "AccessPolicy", "BrokerError", "BrokerUnreachableError", "DeviceAuthPlugin", "DeviceTopicPlugin",
    "EmbeddedBroker", "ExternalBroker", "MosquittoBroker", "MqttBroker", "PortInUseError", "PublishLog",
    "find_mosquitto", "mqtt_probe",
]
