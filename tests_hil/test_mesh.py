"""ESP-WIFI-MESH OTA: the root alone reaches the broker, relays commands to the nodes and their events and status back.

Systems 001 and 003 of the reference set (../shared/reference/systems): an `ota_trigger` published to the root with
mosquitto_pub is broadcast to every node, each node downloads the URL itself (001), and the root aggregates
the nodes' periodic status packages and publishes them (003's option 2B). The boards are the `mesh` variant of the
reference firmware (CONFIG_OTA_AGENT_MESH) on a virtual mesh (harness/virtual/mesh.py); a node's OTA events and
status reach the broker only through the root, on the node's own topics. Nodes download over the root's IP
forwarding (the medium's `ip_forwarding`: their HTTP uses the host's network, see docs/architecture.md).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from harness.fleet.mesh import Mesh, board_mac
from harness.fwserver import FaultPlan
from harness.link import DeviceLink
from harness.protocol import Message

pytestmark = pytest.mark.virtual_only

VARIANT = "mesh"
SUCCEEDED_S = 90  # a node may wait for the root to come back from its own update before it confirms


def mosquitto_pub(broker_url: str, topic: str, payload: dict[str, Any]) -> None:
    """Publishes as 001's operator does: Debian's mosquitto_pub, QoS 1."""
    host, port = broker_url.removeprefix("mqtt://").rsplit(":", 1)
    subprocess.run(["mosquitto_pub", "-h", host, "-p", port, "-q", "1", "-t", topic, "-m", json.dumps(payload)],
                   check=True, timeout=10, capture_output=True)


def aggregate(link: DeviceLink, net: Mesh, predicate: Any, timeout: float, since: int = 0) -> dict[str, Any]:
    """The first aggregate the root published on <prefix>/<root>/mesh (from `since`) that satisfies predicate."""
    def match(m: Message) -> bool:
        return m.kind == "mesh" and isinstance(m.data, dict) and predicate(m.data)
    return link.wait_for(match, timeout, f"a mesh aggregate from {net.root.device_id} as expected", since).data


def by_device(agg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["device_id"]: n for n in agg.get("nodes", [])}


@pytest.mark.parametrize("broker", ["mosquitto"], indirect=True)
def test_an_ota_trigger_to_the_root_with_mosquitto_pub_updates_every_node(mesh, broker, fw_server, firmware,
                                                                          link: DeviceLink) -> None:
    """M1: 001 end to end: `{"type": "ota_trigger", "url": ...}` published with mosquitto_pub to the root's cmd
    topic is broadcast over the mesh; every node (the root too) downloads the URL, reboots into v2 and confirms
    it, and reports `succeeded` and a v2 status through whichever node is root by then."""
    net = mesh(4, ip_forwarding=True, heartbeat_s=0)
    artifact = fw_server.add(firmware.image(VARIANT, version="2.0.0"))
    since = link.cursor()
    mosquitto_pub(broker.url, f"devices/{net.root.device_id}/cmd",
                  {"type": "ota_trigger", "id": "m1", "url": artifact.url, "sha256": artifact.sha256})
    for board in net.boards:
        done = link.wait_ota(board.device_id, "m1", "succeeded", timeout=SUCCEEDED_S, since=since,
                             fail_on={"failed", "rejected", "rolled_back"})
        assert done["version"] == "2.0.0"
    for board in net.boards:
        status = link.wait_status(board.device_id, lambda s: s.get("version") == "2.0.0"
                                  and s.get("ota_state") == "valid", timeout=30, since=since)
        assert status["partition"] == "ota_1"
    # Every node fetched the image itself (001): one download per board.
    assert len([r for r in fw_server.requests_for(artifact) if r.status in (200, 206)]) >= len(net.boards)
    link.check_protocol()


def test_the_root_publishes_every_node_s_status_and_who_left(mesh, link: DeviceLink) -> None:
    """M2: the root aggregates the nodes' periodic status packages (option 2B) and publishes them, retained, on
    <prefix>/<root>/mesh: every node with its version, state and layer; a node that leaves the mesh is shown
    not present, and present again once it is back."""
    net = mesh(4, heartbeat_s=0)
    ids = {b.device_id for b in net.boards}
    agg = aggregate(link, net, lambda a: ids <= set(by_device(a)) and a.get("count") == 4, timeout=30)
    nodes = by_device(agg)
    assert agg["root"] == net.root.device_id
    assert {n["version"] for n in nodes.values()} == {"1.0.0"}
    assert nodes[net.root.device_id]["layer"] == 1
    assert all(nodes[b.device_id]["layer"] >= 2 for b in net.nodes)
    # Each node's own status also reaches its own topic through the root, with its place in the mesh.
    for board in net.nodes:
        status = link.wait_status(board.device_id, lambda s: "mesh" in s, timeout=15)
        assert status["mesh"]["root"] is False and status["mesh"]["layer"] >= 2
    gone = net.nodes[-1]
    since = link.cursor()
    net.medium.out_of_range(board_mac(gone))
    aggregate(link, net, lambda a: by_device(a).get(gone.device_id, {}).get("present") is False, timeout=15,
              since=since)
    since = link.cursor()
    net.medium.in_range(board_mac(gone))
    aggregate(link, net, lambda a: by_device(a).get(gone.device_id, {}).get("present") is True, timeout=15,
              since=since)


def test_a_node_whose_image_fails_its_hash_is_refused_alone(mesh, fw_server, firmware, link: DeviceLink) -> None:
    """M3: an `ota` for one node (published on its own cmd topic, relayed by the root to that node only) whose
    image does not hash to the command's sha256: that node reports `failed`/`sha256_mismatch` and stays on v1,
    no other node is touched, and the mesh carries on: a broadcast v2 afterwards updates every node, that one too."""
    net = mesh(3, ip_forwarding=True, heartbeat_s=0)
    good = fw_server.add(firmware.image(VARIANT, version="2.0.0"))
    image = firmware.image(VARIANT, version="2.0.0")
    bad = fw_server.add(image, name="corrupt.bin", faults=FaultPlan(corrupt_offsets=(len(image) // 2,)))
    victim = net.nodes[0]
    since = link.cursor()
    link.send(victim.device_id, {"type": "ota", "id": "m3-bad", "url": bad.url, "sha256": bad.sha256})
    failed = link.wait_ota(victim.device_id, "m3-bad", "failed", timeout=30, since=since, fail_on={"rebooting"})
    assert failed["reason"] == "sha256_mismatch"
    assert not [m for m in link.messages[since:] if m.kind == "ota" and m.device_id != victim.device_id]
    status = link.wait_status(victim.device_id, lambda s: s.get("last_ota", {}) and s["last_ota"]["id"] == "m3-bad",
                              timeout=30, since=since)
    assert status["version"] == "1.0.0" and status["partition"] == "ota_0"
    since = link.cursor()
    link.send("all", {"type": "ota", "id": "m3-good", "url": good.url, "sha256": good.sha256})
    for board in net.boards:
        link.wait_ota(board.device_id, "m3-good", "succeeded", timeout=SUCCEEDED_S, since=since,
                      fail_on={"failed", "rejected", "rolled_back"})
