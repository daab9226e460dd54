"""The host port's esp_mesh over the harness's mesh medium, at the C level: several port_check processes, one
node each, on one MeshMedium (harness/virtual/mesh.py).

device/port/linux/test/mesh_check.c brings the mesh up with the call sequence of ESP-IDF's
examples/mesh/internal_communication and prints every MESH_EVENT its handler gets. Each test is one
behaviour src/esp_mesh.c's header claims: the tree and the events of joining, the routing table, packets
to a node, to the root and to everyone, only the root with IP, a node leaving and the root changing, a hop's
loss and rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.virtual import host_abi as abi
from harness.virtual.mesh import Hop, MeshMedium, mac_bytes
from tests_unit.port_check_app import PortCheck, values

MACS = [f"24:0a:c4:00:10:{i:02x}" for i in range(1, 9)]
ROUTER = "02:48:49:4c:41:50"


@pytest.fixture
def medium() -> Iterator[MeshMedium]:
    with MeshMedium(healing_s=0.3) as m:
        yield m


NodeFactory = Callable[..., PortCheck]


@pytest.fixture
def node(port_check_exe: Path, tmp_path: Path, medium: MeshMedium) -> Iterator[NodeFactory]:
    started: list[PortCheck] = []

    def start(index: int, max_connection: int = 6, join: bool = True) -> PortCheck:
        work = tmp_path / f"node{index}"
        work.mkdir()
        pc = PortCheck(port_check_exe, work, env={abi.ENV_MESH: str(medium.path),
                                                  abi.ENV_MAC: MACS[index].replace(":", "")})
        started.append(pc)
        if join:
            result = pc.run(f"mesh_start {max_connection}")
            assert result["mesh_start"] == "ESP_OK", result
            assert result["mac"] == MACS[index]
        return pc
    try:
        yield start
    finally:
        for pc in started:
            pc.close()


def event(pc: PortCheck, pattern: str, since: int = 0, timeout: float = 10.0) -> dict[str, str]:
    return values([pc.expect(pattern, since=since, timeout=timeout).string])


def test_the_first_node_is_root_with_the_router_as_parent_and_an_ip(node: NodeFactory) -> None:
    root = node(0)
    root.expect(r"^mesh_event=STARTED ")
    connected = event(root, r"^mesh_event=PARENT_CONNECTED ")
    assert connected["layer"] == "1" and connected["parent"] == ROUTER and connected["root"] == "1"
    assert event(root, r"^mesh_event=ROOT_ADDRESS ")["root"] == MACS[0]
    root.expect(r"^ip_event=GOT_IP ")
    info = root.run("mesh_info")
    assert (info["is_root"], info["layer"], info["rt_size"], info["total"]) == ("1", "1", "1", "1")


def test_a_node_joins_under_the_root_and_both_see_it(node: NodeFactory) -> None:
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    child = node(1)
    connected = event(child, r"^mesh_event=PARENT_CONNECTED ")
    assert (connected["layer"], connected["parent"], connected["root"]) == ("2", MACS[0], "0")
    assert event(child, r"^mesh_event=ROOT_ADDRESS ")["root"] == MACS[0]
    assert event(root, r"^mesh_event=CHILD_CONNECTED ")["child"] == MACS[1]
    added = event(root, r"^mesh_event=ROUTING_TABLE_ADD ")
    assert (added["change"], added["new"]) == ("1", "2")
    assert root.run("mesh_rt")["size"] == "2"
    assert root.run("mesh_info")["total"] == "2"
    # Only the root has IP: the node never gets an address.
    assert not any(line.startswith("ip_event=GOT_IP") for line in child.lines)


def test_the_tree_fills_the_root_then_the_next_layer_and_tables_cover_subnetworks(
        node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0, max_connection=2)
    root.expect(r"^ip_event=GOT_IP ")
    nodes = [node(i, max_connection=2) for i in range(1, 5)]
    medium.wait_members(5)
    layers = [event(pc, r"^mesh_event=PARENT_CONNECTED ")["layer"] for pc in nodes]
    assert layers == ["2", "2", "3", "3"]
    # Node 1 (the first in layer 2) took both layer-3 nodes: its table is itself and them; node 2's is itself.
    assert nodes[0].run("mesh_rt")["size"] == "3"
    assert nodes[1].run("mesh_rt")["size"] == "1"
    root.expect(r"^mesh_event=ROUTING_TABLE_ADD .*new=5")


def test_packets_reach_a_node_the_root_and_everyone(node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0, max_connection=1)
    root.expect(r"^ip_event=GOT_IP ")
    mid, leaf = node(1, max_connection=1), node(2)
    medium.wait_members(3)
    leaf.expect(r"^mesh_event=PARENT_CONNECTED .*layer=3")
    root.expect(r"^mesh_event=ROUTING_TABLE_ADD .*new=3")  # the root's own view, which arrives on its own
    assert root.run(f"mesh_send {MACS[2]} p2p hello-leaf")["mesh_send"] == "ESP_OK"
    got = leaf.run("mesh_recv 5000")
    assert (got["mesh_recv"], got["from"], got["text"]) == ("ESP_OK", MACS[0], "hello-leaf")
    assert leaf.run("mesh_send root p2p up-to-root")["mesh_send"] == "ESP_OK"
    got = root.run("mesh_recv 5000")
    assert (got["from"], got["text"], got["flag"]) == (MACS[2], "up-to-root", "8")  # MESH_DATA_TODS
    assert leaf.run("mesh_send all def to-everyone")["mesh_send"] == "ESP_OK"
    for pc in (root, mid):
        assert pc.run("mesh_recv 5000")["text"] == "to-everyone"
    assert leaf.run("mesh_recv 300")["mesh_recv"] == "ESP_ERR_MESH_TIMEOUT"  # not back to its sender


def test_send_errors_are_esp_idf_s(node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    assert root.run("mesh_send 24:0a:c4:99:99:99 p2p x")["mesh_send"] == "ESP_ERR_MESH_NO_ROUTE_FOUND"
    assert root.run("mesh_flood all 1 1473")["mesh_flood"] == "ESP_ERR_MESH_EXCEED_MTU"
    assert root.run("mesh_recv 100")["mesh_recv"] == "ESP_ERR_MESH_TIMEOUT"
    lone = node(1, join=False)
    assert lone.run("mesh_send root p2p x")["mesh_send"] == "ESP_ERR_MESH_NOT_START"


def test_a_node_moved_to_another_parent_hears_the_root_s_tods_state_again(node: NodeFactory) -> None:
    """A node's app forgets the toDS state with its parent (it may be another mesh's now, as mesh_link.c does) and
    must hear it again on its new parent, or it never sends upstream (a node whose parent rebooted kept its
    status and events for ever in a 100-node p2p run)."""
    root = node(0, max_connection=1)
    root.expect(r"^ip_event=GOT_IP ")
    assert root.run("mesh_tods 1")["mesh_tods"] == "ESP_OK"
    middle, leaf = node(1), node(2)
    event(leaf, r"^mesh_event=PARENT_CONNECTED layer=3 ")
    assert event(leaf, r"^mesh_event=TODS_STATE ")["state"] == "1"  # MESH_TODS_REACHABLE
    since = len(leaf.lines)
    middle.close()  # its parent is gone: the leaf moves up under the root in the same rebuild
    event(leaf, r"^mesh_event=PARENT_DISCONNECTED ", since)
    moved = leaf.expect(r"^mesh_event=PARENT_CONNECTED ", since=since).string
    assert values([moved])["layer"] == "2"
    after = leaf.lines.index(moved, since)
    assert event(leaf, r"^mesh_event=TODS_STATE ", after)["state"] == "1"


def test_a_node_out_of_range_leaves_and_rejoins(node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    child = node(1)
    child.expect(r"^mesh_event=PARENT_CONNECTED ")
    root.expect(r"^mesh_event=ROUTING_TABLE_ADD ")
    since_root, since_child = len(root.lines), len(child.lines)
    medium.out_of_range(MACS[1])
    assert event(child, r"^mesh_event=PARENT_DISCONNECTED ", since_child)["reason"] == "200"
    assert event(root, r"^mesh_event=CHILD_DISCONNECTED ", since_root)["child"] == MACS[1]
    assert event(root, r"^mesh_event=ROUTING_TABLE_REMOVE ", since_root)["new"] == "1"
    assert child.run("mesh_send root p2p x")["mesh_send"] == "ESP_ERR_MESH_DISCONNECTED"
    since_child = len(child.lines)
    medium.in_range(MACS[1])
    assert event(child, r"^mesh_event=PARENT_CONNECTED ", since_child)["layer"] == "2"


def test_the_root_leaving_makes_the_next_node_root(node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    second, third = node(1), node(2)
    medium.wait_members(3)
    since = len(second.lines), len(third.lines)
    root.close()  # the process ends: the node is gone, as a power cut takes a chip away
    assert event(second, r"^mesh_event=PARENT_DISCONNECTED ", since[0])["reason"] == "200"
    assert event(second, r"^mesh_event=NETWORK_STATE ", since[0])["rootless"] == "1"
    connected = event(second, r"^mesh_event=PARENT_CONNECTED ", since[0])
    assert (connected["layer"], connected["parent"], connected["root"]) == ("1", ROUTER, "1")
    second.expect(r"^ip_event=GOT_IP ", since[0])
    event(third, rf"^mesh_event=ROOT_ADDRESS root={MACS[1]}", since[1])
    event(third, rf"^mesh_event=PARENT_CONNECTED layer=2 parent={MACS[1]}", since[1])
    assert medium.root() == MACS[1]


def test_a_root_elected_and_gone_while_the_last_vote_s_heal_was_queued_still_gets_a_successor(
        node: NodeFactory, medium: MeshMedium) -> None:
    """On a busy loop (a mass reboot of 100 nodes) a join's rebuild can elect a root after the vote's end but
    before the vote's own heal has run; when that root leaves at once, the next vote must still end in a root.
    Played on the medium's loop in one go, so the order is exact: nothing can run in between."""
    for i in range(3):
        node(i)
    medium.wait_for(lambda m: m.root() == MACS[0] and len(m.members()) == 3, 10, "a three-node mesh")
    first, second = (mac_bytes(m) for m in MACS[:2])

    def race() -> None:
        medium._leave(medium._nodes[first])  # the root goes: a vote, whose heal is now queued
        medium._rootless_until = medium._thread.loop.time()  # the loop was busy until past the vote's end...
        medium._rebuild()  # ...and a join's rebuild ran before the heal: the next node is elected
        assert medium._root == second
        # and leaves: a new vote while the old heal is still queued, due before the new vote ends (in the
        # 100-node run it came 15 ms into it; a longer vote gives the same order without waiting on the loop)
        medium.healing_s *= 4
        medium._leave(medium._nodes[second])
    medium._call(race)
    medium.wait_for(lambda m: m.root() == MACS[2], 10 * medium.healing_s, "the third node elected root")


def test_a_hop_s_rate_and_latency_set_the_transfer_time(node: NodeFactory, medium: MeshMedium) -> None:
    medium.default_hop = Hop(rate_bps=1_000_000, latency_s=0.010)
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    child = node(1)
    medium.wait_members(2)
    child.expect(r"^mesh_event=PARENT_CONNECTED ")
    # 100 packets of 1000 bytes: (1000 + 64) * 8 bits at 1 Mbit/s each = 0.85 s of airtime, plus 10 ms.
    start = child.send("mesh_count 100 10000")
    assert root.run(f"mesh_flood {MACS[1]} 100 1000")["mesh_flood"] == "ESP_OK"
    result = values([child.expect(r"^mesh_count=", since=start, timeout=15).string])
    assert result["mesh_count"] == "100"
    assert 0.75 <= int(result["last_ms"]) / 1000 <= 1.3, result
    assert medium.stats(MACS[0]).tx_bytes == 100_000


def test_a_lossy_hop_loses_broadcasts_but_retries_unicast(node: NodeFactory, medium: MeshMedium) -> None:
    root = node(0)
    root.expect(r"^ip_event=GOT_IP ")
    child = node(1)
    medium.wait_members(2)
    child.expect(r"^mesh_event=PARENT_CONNECTED ")
    medium.drop_next(MACS[1], 4)  # the next 4 frames the node would hear from its parent are lost
    for i in range(3):
        assert root.run(f"mesh_send all def lost-{i}")["mesh_send"] == "ESP_OK"
    assert root.run(f"mesh_send {MACS[1]} p2p retried")["mesh_send"] == "ESP_OK"
    assert child.run("mesh_recv 3000")["text"] == "retried"
    assert child.run("mesh_recv 300")["mesh_recv"] == "ESP_ERR_MESH_TIMEOUT"
    assert medium.stats(MACS[1]).lost == 4  # 3 broadcasts and the unicast's first attempt
