"""Transport.

The firmware against a real mosquitto, not only the embedded amqtt broker.

amqtt differs from mainstream brokers (QoS upgrade, no keepalive, MQTT 3.1.1 only), so an update that
works through amqtt alone proves less than it seems. Here the same board and the same OTA run through
Debian's mosquitto (a subprocess on a free port), from v1 to v2 and the confirmation, end to end.
"""

from __future__ import annotations

import pytest

from harness.link import DeviceLink

pytestmark = pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)

FINAL = {"failed", "rejected", "rolled_back", "cancelled"}


def test_update_through_mosquitto_end_to_end(broker, board, link: DeviceLink, fw_server, firmware) -> None:
    """The A1 update through a real mosquitto instead of amqtt; the retained status and `online` are seen
    by a late client."""
    assert broker.url.startswith("mqtt://") and type(broker).__name__ == "MosquittoBroker"
    before = link.latest_status(board.device_id)
    assert (before["version"], before["partition"]) == (firmware.base_version, "ota_0")

    image = firmware.image(version="2.0.0")
    artifact = fw_server.add(image)
    since = link.cursor()
    board.serial.skip_to_end()
    link.send(board.device_id, {"type": "ota", "id": "m1", "url": artifact.url, "version": "2.0.0",
                                "sha256": artifact.sha256, "size": artifact.size})

    link.wait_ota(board.device_id, "m1", "rebooting", timeout=20, since=since, fail_on=FINAL)
    assert board.expect_loaded_app(timeout=10) == "ota_1"
    board.expect(r"app_init: App version:\s+2\.0\.0", timeout=10)
    link.wait_ota(board.device_id, "m1", "succeeded", timeout=20, since=since, fail_on=FINAL)
    after = link.wait_status(board.device_id, lambda s: s["version"] == "2.0.0" and s["ota_state"] == "valid",
                             since=since, timeout=10)
    assert after["partition"] == "ota_1"

    states = [e["state"] for e in link.ota_events(board.device_id, "m1")]
    assert states[0] == "accepted" and states[-1] == "succeeded", states
    assert {"downloading", "verifying", "rebooting"} <= set(states), states
    link.check_protocol()

    # mosquitto keeps what the firmware published as retained: a client joining now sees v2 online
    with DeviceLink(broker.url) as late:
        status = late.wait_status(board.device_id, lambda s: s["version"] == "2.0.0", timeout=5)
        assert status["ota_state"] == "valid"
        late.wait_for(lambda m: m.topic == f"devices/{board.device_id}/online" and m.retain, timeout=5,
                      description="the retained online message")
        assert late.messages[0].retain  # delivered on subscribe, not published anew
