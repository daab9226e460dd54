"""The mesh medium: the ESP-WIFI-MESH network around virtual boards, run by the harness.

Each board's firmware is a process; the host port's `esp_mesh` (device/port/linux/src/esp_mesh.c) connects,
at esp_mesh_start(), to this medium's Unix socket (named in HIL_MESH, device/port/linux/src/host_board.h)
and sends it every esp_mesh_send(). The medium holds the tree and the radio, and tells each node what its
mesh stack would know: its parent, its layer, the root, its children, its routing table (its sub-network,
itself included), whether it has IP; the port turns every change into the MESH_EVENT_* a chip posts.

Why one hub (a SOCK_SEQPACKET server on a loop thread of the harness) rather than a socket per node pair:
the tree, the election of a root and the airtime of each radio are one shared state; a hub computes them
in one place, in one order, so a run is repeatable, and the test changes the world (a node out of range, a
lossy hop, a new root) with one call. SEQPACKET keeps message boundaries (a mesh packet is one record) and
tells the hub at once when a firmware process ends, which is a node leaving the mesh (a reboot, a crash, a
power cut), as its neighbours notice on a chip.

The tree: the first node with the router in reach (the broker's network) is the root (layer 1); the others
join in the order they started, each under its preferred parent (`prefer_parent`) or the node it had before
if that one is still there, else the shallowest node with a free slot (`mesh_ap.max_connection`, default 6;
ESP-WIFI-MESH's parent selection also prefers shallow layers and free capacity), down to `max_layer`.
When the root leaves, its children lose their parent, the network is rootless for `healing_s` (the vote),
then the next router-capable node in join order becomes root and the tree is rebuilt.

The radio: every node has one transmitter (half duplex, shared by all its links); a frame occupies it for
(payload + FRAME_OVERHEAD) * 8 / rate, then arrives `latency_s` later. A unicast frame with MESH_TOS_P2P is
retransmitted on its hop up to RETRY_LIMIT times (802.11's short retry limit; each attempt costs airtime)
and is lost only if every attempt is; MESH_TOS_DEF frames and broadcasts go once per hop (group-addressed
802.11 frames are not acknowledged). A broadcast (to ff:ff:ff:ff:ff:ff) goes up to the root and down the
tree; each node sends it down once for all its children, and each child may miss it alone. The loss,
rate and latency of a hop are those of the child's link to its parent (`set_hop`), or the medium's
defaults (`Hop`). `drop_next(mac, n)` loses the next n frames a node would hear on its uplink hop, for
scenarios that need a loss exactly there.

Counters per node (`stats`): frames and bytes sent and received over the air, and what was lost; the root's
are the traffic over its link.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from harness.loop_thread import LoopThread

log = logging.getLogger(__name__)

BROADCAST = b"\xff" * 6
TO_ROOT = b"\x00" * 6  # esp_mesh_send(NULL, ...): to the root
ROUTER_BSSID = bytes([0x02, 0x48, 0x49, 0x4C, 0x41, 0x50])  # esp_wifi.c's AP_BSSID: the router
MESH_MPS = 1472
FRAME_OVERHEAD = 64  # 802.11 MAC header + FCS + the mesh header, per frame
RETRY_LIMIT = 7  # 802.11 short retry limit: attempts of an acknowledged (P2P) frame per hop
MESH_TOS_P2P = 0
MESH_TOS_DEF = 2
DEFAULT_MAX_CONNECTION = 6  # mesh_ap_cfg_t.max_connection's default
REASON_BEACON_TIMEOUT = 200  # WIFI_REASON_BEACON_TIMEOUT: the parent went quiet

# Records on the socket (little-endian). Node -> medium:
#   'J' mac[6] mesh_id[6] max_connection u8          esp_mesh_start(): the node joins
#   'D' to[6] flag u16 proto u8 tos u8 payload       esp_mesh_send()
#   'T' reachable u8                                 esp_mesh_post_toDS_state() on the root
# Medium -> node:
#   'S' is_root u8 has_ip u8 toDS u8 reason u8 layer u16 parent[6] root[6] total u16
#       n_children u8 children[6]... n_rt u16 routing_table[6]...
#   'X' from[6] flag u16 proto u8 tos u8 payload     a packet for this node
DATA_HEADER = struct.Struct("<6sHBB")
STATE_HEADER = struct.Struct("<BBBBH6s6sH")


@dataclass(frozen=True)
class Hop:
    """One mesh hop's radio: throughput at the application's level, one-way latency, frame loss."""

    rate_bps: float = 1_000_000.0
    latency_s: float = 0.010
    loss: float = 0.0

    def airtime(self, size: int) -> float:
        return (size + FRAME_OVERHEAD) * 8 / self.rate_bps


@dataclass
class NodeStats:
    """What one node's radio carried (bytes are mesh payloads; frames count every attempt)."""

    tx_frames: int = 0
    tx_bytes: int = 0
    rx_frames: int = 0
    rx_bytes: int = 0
    lost: int = 0  # frames this node should have heard and did not
    delivered: int = 0  # packets handed to this node's app


@dataclass(frozen=True)
class NodeState:
    """A node's place in the mesh, as its mesh stack knows it (what an 'S' record carries)."""

    is_root: bool = False
    has_ip: bool = False
    to_ds: bool = False
    reason: int = 0
    layer: int = 0
    parent: bytes = b"\x00" * 6
    root: bytes = b"\x00" * 6
    total: int = 0
    children: tuple[bytes, ...] = ()
    routing_table: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        head = STATE_HEADER.pack(self.is_root, self.has_ip, self.to_ds, self.reason, self.layer,
                                 self.parent, self.root, self.total)
        return (b"S" + head + bytes([len(self.children)]) + b"".join(self.children)
                + struct.pack("<H", len(self.routing_table)) + b"".join(self.routing_table))


@dataclass
class _Node:
    mac: bytes
    conn: socket.socket
    order: int
    max_connection: int
    in_range: bool = True
    state: NodeState = field(default_factory=NodeState)
    radio_free_at: float = 0.0
    drop_next: int = 0
    outbox: deque[bytes] = field(default_factory=deque)
    to_ds: bool = False
    epoch: int = 0  # bumped each time the node goes away (leaves, out of range)
    gone_at: float | None = None  # when it last went away: its frames not yet on the air then are lost


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(mac: str) -> bytes:
    raw = bytes.fromhex(mac.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"{mac!r}: not a MAC address")
    return raw


class MeshMedium:
    """An ESP-WIFI-MESH network for virtual boards: start(), hand `path` to each board (HIL_MESH), then
    change its world: out_of_range()/in_range(), set_hop(), drop_next(), prefer_parent(), no_router()."""

    def __init__(self, hop: Hop = Hop(), max_layer: int = 25, healing_s: float = 0.5,
                 ip_forwarding: bool = False, seed: int = 0) -> None:
        self.default_hop = hop
        self.max_layer = max_layer
        self.healing_s = healing_s
        # True: non-root nodes have IP through the root (mesh_netif's IP forwarding; their TCP does not
        # cross this medium, see docs/architecture.md); False: only the root has IP.
        self.ip_forwarding = ip_forwarding
        self._rng = random.Random(seed)
        self._dir = Path(tempfile.mkdtemp(prefix="hil-mesh-"))  # AF_UNIX paths are short: not under tmp_path
        self.path = self._dir / "mesh.sock"
        self._thread = LoopThread("mesh-medium")
        self._server: socket.socket | None = None
        self._nodes: dict[bytes, _Node] = {}
        self._order = 0
        self._hops: dict[bytes, Hop] = {}
        self._preferred: dict[bytes, bytes] = {}
        self._no_router: set[bytes] = set()
        self._stats: dict[bytes, NodeStats] = {}
        self._root: bytes | None = None
        self._rootless_until = 0.0
        self._heal_handle: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()  # guards what the test thread reads: states, stats
        self._changed = threading.Condition(self._lock)
        self.listeners: list[Callable[[str, bytes], None]] = []  # ("join"|"leave"|"root", mac), on the loop

    # --- service -------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        self._thread.run(self._listen(), timeout=5)
        return self

    def stop(self) -> None:
        if self._thread.running:
            self._thread.run(self._close(), timeout=5)
            self._thread.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        srv.bind(str(self.path))
        srv.listen(256)
        srv.setblocking(False)
        self._server = srv
        self._thread.loop.add_reader(srv.fileno(), self._accept)

    async def _close(self) -> None:
        loop = self._thread.loop
        if self._server is not None:
            loop.remove_reader(self._server.fileno())
            self._server.close()
        for node in list(self._nodes.values()):
            self._drop_conn(node.conn)

    # --- the test's controls (thread-safe) ---------------------------------------------------------------
    def _call(self, fn: Callable[[], None]) -> None:
        async def run() -> None:
            fn()
        self._thread.run(run(), timeout=5)

    def set_hop(self, mac: str, hop: Hop | None = None, **changes: float) -> None:
        """The radio of the hop between node `mac` and its parent from now on (a Hop, or fields to change)."""
        key = mac_bytes(mac)
        self._call(lambda: self._hops.__setitem__(key, hop or replace(self._hops.get(key, self.default_hop),
                                                                       **changes)))

    def drop_next(self, mac: str, count: int) -> None:
        """Node `mac` misses the next `count` frames it would hear on its uplink hop (from its parent)."""
        key = mac_bytes(mac)

        def run() -> None:
            if key in self._nodes:
                self._nodes[key].drop_next += count
            else:
                raise KeyError(f"{mac}: not in the mesh")
        self._call(run)

    def prefer_parent(self, mac: str, parent: str | None) -> None:
        """Node `mac` attaches under `parent` whenever that node is in the mesh (None: its own choice)."""
        key = mac_bytes(mac)

        def run() -> None:
            if parent is None:
                self._preferred.pop(key, None)
            else:
                self._preferred[key] = mac_bytes(parent)
            self._rebuild()
        self._call(run)

    def no_router(self, mac: str) -> None:
        """Node `mac` cannot reach the router, so it is never elected root."""
        key = mac_bytes(mac)
        self._call(lambda: self._no_router.add(key))

    def out_of_range(self, mac: str) -> None:
        """Node `mac` hears nobody and nobody hears it (its process runs on): it leaves the mesh."""
        self._set_range(mac_bytes(mac), False)

    def in_range(self, mac: str) -> None:
        """Node `mac` is back in range: it joins again."""
        self._set_range(mac_bytes(mac), True)

    def _set_range(self, key: bytes, in_range: bool) -> None:
        def run() -> None:
            node = self._nodes.get(key)
            if node is None:
                raise KeyError(f"{mac_text(key)}: not in the mesh")
            if not in_range:
                self._gone(node)
            node.in_range = in_range
            self._rebuild()
        self._call(run)

    # --- what the test reads ------------------------------------------------------------------------------
    def state(self, mac: str) -> NodeState | None:
        with self._lock:
            node = self._nodes.get(mac_bytes(mac))
            return node.state if node else None

    def root(self) -> str | None:
        with self._lock:
            return mac_text(self._root) if self._root else None

    def members(self) -> list[str]:
        """Nodes attached to the mesh with a root (the root included), in join order."""
        with self._lock:
            return [mac_text(n.mac) for n in sorted(self._nodes.values(), key=lambda n: n.order)
                    if n.state.layer > 0 and self._root is not None]

    def stats(self, mac: str) -> NodeStats:
        with self._lock:
            return replace(self._stats.setdefault(mac_bytes(mac), NodeStats()))

    def wait_for(self, predicate: Callable[[MeshMedium], bool], timeout: float, what: str) -> None:
        """Waits until predicate(self) holds (checked at every change of the tree), up to timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self):  # the tree's changes wake the wait; the counters' are polled
            left = deadline - time.monotonic()
            if left <= 0:
                with self._lock:
                    tree = self._describe()
                raise AssertionError(f"mesh: {what} not within {timeout} s; tree: {tree}")
            with self._changed:
                self._changed.wait(min(left, 0.1))

    def wait_members(self, count: int, timeout: float = 10.0) -> None:
        self.wait_for(lambda m: len(m.members()) >= count, timeout, f"{count} nodes in the mesh")

    def _describe(self) -> str:
        return ", ".join(f"{mac_text(n.mac)}@L{n.state.layer}<{mac_text(n.state.parent)[-5:]}"
                         for n in self._nodes.values())

    # --- the loop thread ------------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._server is not None
        try:
            conn, _ = self._server.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self._thread.loop.add_reader(conn.fileno(), self._on_readable, conn)

    def _node_of(self, conn: socket.socket) -> _Node | None:
        for node in self._nodes.values():
            if node.conn is conn:
                return node
        return None

    def _on_readable(self, conn: socket.socket) -> None:
        try:
            record = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            record = b""
        if not record:
            node = self._node_of(conn)
            self._drop_conn(conn)
            if node is not None:
                self._leave(node)
            return
        kind, body = record[:1], record[1:]
        node = self._node_of(conn)
        if kind == b"J" and len(body) >= 13:
            self._join(conn, body[:6], body[12] or DEFAULT_MAX_CONNECTION)
        elif kind == b"D" and node is not None and len(body) >= DATA_HEADER.size:
            to, flag, proto, tos = DATA_HEADER.unpack_from(body)
            self._send(node, to, flag, proto, tos, body[DATA_HEADER.size:])
        elif kind == b"T" and node is not None and body:
            node.to_ds = bool(body[0])
            self._publish_states()
        else:
            log.warning("mesh: record %r not understood", record[:16])

    def _drop_conn(self, conn: socket.socket) -> None:
        loop = self._thread.loop
        try:
            loop.remove_reader(conn.fileno())
            loop.remove_writer(conn.fileno())
        except (ValueError, OSError):
            pass
        conn.close()

    def _join(self, conn: socket.socket, mac: bytes, max_connection: int) -> None:
        old = self._nodes.get(mac)
        if old is not None and old.conn is not conn:  # the same board again: its old process is gone
            self._drop_conn(old.conn)
            self._nodes.pop(mac)
        self._order += 1
        with self._lock:
            self._nodes[mac] = _Node(mac, conn, self._order, max_connection)
            self._stats.setdefault(mac, NodeStats())
        for listener in self.listeners:
            listener("join", mac)
        self._rebuild()

    def _gone(self, node: _Node) -> None:
        """The node's radio stops: what it had queued but not yet begun to send never goes out."""
        now = self._thread.loop.time()
        node.gone_at = now
        node.epoch += 1
        node.radio_free_at = now

    def _leave(self, node: _Node) -> None:
        self._gone(node)
        with self._lock:
            if self._nodes.get(node.mac) is node:
                del self._nodes[node.mac]
        for listener in self.listeners:
            listener("leave", node.mac)
        self._rebuild()

    # The tree ----------------------------------------------------------------------------------------------
    def _rebuild(self) -> None:
        now = self._thread.loop.time()
        present = sorted((n for n in self._nodes.values() if n.in_range), key=lambda n: n.order)
        root = self._nodes.get(self._root) if self._root else None
        if root is not None and not root.in_range:
            root = None
        if root is None and self._root is not None:  # the root left: a vote before a new one
            self._root = None
            self._rootless_until = now + self.healing_s
        if root is None and now >= self._rootless_until:
            root = next((n for n in present if n.mac not in self._no_router), None)
            if root is not None:
                self._root = root.mac
                for listener in self.listeners:
                    listener("root", root.mac)
        self._schedule_heal(rootless=root is None and now < self._rootless_until)
        parent: dict[bytes, bytes | None] = {}
        layer: dict[bytes, int] = {}
        if root is not None:
            parent[root.mac], layer[root.mac] = None, 1
            remaining = [n for n in present if n is not root]
            while remaining:
                placed = self._place_known(remaining, parent, layer)
                if not placed:
                    best = self._shallowest(parent, layer)
                    if best is None:
                        break
                    node = remaining.pop(0)
                    parent[node.mac], layer[node.mac] = best, layer[best] + 1
        else:  # rootless: the nodes under the old root keep their parents while those are still there
            for n in present:
                p = n.state.parent if n.state.layer > 1 else None
                if p is not None and p in self._nodes and self._nodes[p].in_range:
                    parent[n.mac], layer[n.mac] = p, 0
        self._apply(present, parent, layer, root)

    def _place_known(self, remaining: list[_Node], parent: dict[bytes, bytes | None],
                     layer: dict[bytes, int]) -> bool:
        """Places, in join order, the nodes whose wanted parent (preferred, else previous) is placed."""
        placed = False
        for node in list(remaining):
            want = self._preferred.get(node.mac) or (node.state.parent if node.state.layer > 1 else None)
            if want in layer and layer[want] < self.max_layer and self._free_slots(want, parent) > 0:
                parent[node.mac], layer[node.mac] = want, layer[want] + 1
                remaining.remove(node)
                placed = True
        return placed

    def _free_slots(self, mac: bytes, parent: dict[bytes, bytes | None]) -> int:
        used = sum(1 for p in parent.values() if p == mac)
        return self._nodes[mac].max_connection - used

    def _shallowest(self, parent: dict[bytes, bytes | None], layer: dict[bytes, int]) -> bytes | None:
        candidates = [m for m in layer if layer[m] < self.max_layer and self._free_slots(m, parent) > 0]
        if not candidates:
            return None
        return min(candidates, key=lambda m: (layer[m], self._nodes[m].order))

    def _schedule_heal(self, rootless: bool) -> None:
        """While the vote runs, one rebuild is due at its end (`_rootless_until`), and none otherwise.

        The due time follows the current vote: on a busy loop a join can elect a root before the previous
        vote's heal runs, and that root can leave again; a heal left at the old time then found the new vote
        unfinished and nothing came after it, so the mesh stayed rootless until some node joined or left
        (29 s in a 100-node mass reboot, past the nodes' self-test deadline)."""
        handle = self._heal_handle
        if handle is not None and (not rootless or handle.when() != self._rootless_until):
            handle.cancel()
            self._heal_handle = handle = None
        if rootless and handle is None:
            def heal() -> None:
                self._heal_handle = None
                self._rebuild()  # schedules itself again if the loop ran it a hair early
            self._heal_handle = self._thread.loop.call_at(self._rootless_until, heal)

    def _apply(self, present: list[_Node], parent: dict[bytes, bytes | None], layer: dict[bytes, int],
               root: _Node | None) -> None:
        children: dict[bytes, list[bytes]] = {}
        for mac, p in parent.items():
            if p is not None:
                children.setdefault(p, []).append(mac)
        attached = root is not None

        def subtree(mac: bytes) -> list[bytes]:
            out = [mac]
            for c in children.get(mac, []):
                out.extend(subtree(c))
            return out
        total = len(parent) if attached else 0
        to_ds = bool(root and root.to_ds)
        for node in self._nodes.values():
            mac = node.mac
            if mac in parent and (attached or parent[mac] is not None):
                is_root = attached and root is not None and mac == root.mac
                state = NodeState(
                    is_root=is_root, has_ip=is_root or (attached and self.ip_forwarding), to_ds=to_ds,
                    layer=layer[mac] if attached else node.state.layer,
                    parent=ROUTER_BSSID if is_root else (parent[mac] or b"\x00" * 6),
                    root=root.mac if root is not None else b"\x00" * 6, total=total,
                    children=tuple(children.get(mac, [])), routing_table=tuple(subtree(mac)))
            else:
                state = NodeState(reason=REASON_BEACON_TIMEOUT if node.state.layer else 0,
                                  children=tuple(children.get(mac, [])), routing_table=tuple(subtree(mac)))
            if state != node.state:
                with self._lock:
                    node.state = state
                self._send_record(node, state.encode())
        with self._changed:
            self._changed.notify_all()

    def _publish_states(self) -> None:
        self._rebuild()

    # The radio ------------------------------------------------------------------------------------------
    def _hop(self, child: bytes) -> Hop:
        return self._hops.get(child, self.default_hop)

    def _path(self, src: bytes, dst: bytes) -> list[bytes] | None:
        """The nodes a packet crosses from src to dst over the tree (both ends included)."""
        def up(mac: bytes) -> list[bytes]:
            chain = [mac]
            while True:
                node = self._nodes.get(chain[-1])
                if node is None or node.state.layer <= 1:
                    return chain
                chain.append(node.state.parent)
        if dst not in self._nodes or self._nodes[dst].state.layer == 0:
            return None
        a, b = up(src), up(dst)
        if a[-1] != b[-1]:
            return None
        common = next(m for m in a if m in b)
        return a[:a.index(common) + 1] + list(reversed(b[:b.index(common)]))

    def _send(self, node: _Node, to: bytes, flag: int, proto: int, tos: int, payload: bytes) -> None:
        header = node.mac, flag, proto, tos
        if to == BROADCAST:
            self._broadcast_from(node.mac, None, header, payload, self._thread.loop.time(), up=True)
            return
        dst = self._root if to == TO_ROOT else to
        path = self._path(node.mac, dst) if dst else None
        if not path:
            log.debug("mesh: %s -> %s: no route", mac_text(node.mac), mac_text(to))
            return
        self._hop_forward(path, 0, header, payload, self._thread.loop.time())

    def _later(self, at: float, sender: bytes, end: float, hop: Hop, size: int, fn: Callable[..., None],
               receiver: bytes, *args: object) -> None:
        """At `at`, `receiver` has heard the frame (ending at `end`): counts it and runs fn(receiver, *args),
        unless `sender` went away before the frame began (it was still in its radio's queue)."""
        node = self._nodes.get(sender)
        epoch, begin = (node.epoch if node else 0), end - hop.airtime(size)

        def run() -> None:
            if node is not None and node.epoch != epoch and node.gone_at is not None and begin >= node.gone_at:
                return  # queued in a radio that went silent before it was sent
            with self._lock:
                stats = self._stats.setdefault(receiver, NodeStats())
                stats.rx_frames += 1
                stats.rx_bytes += size
            fn(receiver, *args)
        self._thread.loop.call_at(at, run)

    def _transmit(self, sender: bytes, size: int, hop: Hop, start: float) -> float:
        """Occupies sender's radio for one frame from `start`; returns when the frame has left."""
        node = self._nodes.get(sender)
        begin = max(start, node.radio_free_at if node else start)
        end = begin + hop.airtime(size)
        if node:
            node.radio_free_at = end
        with self._lock:
            stats = self._stats.setdefault(sender, NodeStats())
            stats.tx_frames += 1
            stats.tx_bytes += size
        return end

    def _heard(self, receiver: bytes, hop: Hop, size: int) -> bool:
        """Whether `receiver` hears one frame on its hop; counts it either way."""
        node = self._nodes.get(receiver)
        lost = False
        if node is not None and node.drop_next > 0:
            node.drop_next -= 1
            lost = True
        elif hop.loss > 0 and self._rng.random() < hop.loss:
            lost = True
        if lost:
            with self._lock:
                self._stats.setdefault(receiver, NodeStats()).lost += 1
        return not lost  # a frame heard is counted when it arrives (_later)

    def _hop_forward(self, path: list[bytes], i: int, header: tuple[bytes, int, int, int], payload: bytes,
                     at: float) -> None:
        if i == len(path) - 1:
            self._deliver(path[i], header, payload)
            return
        sender, receiver = path[i], path[i + 1]
        child = receiver if self._nodes.get(receiver) and self._nodes[receiver].state.parent == sender else sender
        hop = self._hop(child)
        attempts = RETRY_LIMIT if header[3] == MESH_TOS_P2P else 1
        end = at
        for _ in range(attempts):
            end = self._transmit(sender, len(payload), hop, end)
            if self._heard(receiver, hop, len(payload)):
                arrive = end + hop.latency_s
                self._later(arrive, sender, end, hop, len(payload), self._arrive_at, receiver, path, i + 1, header,
                            payload)
                return
        log.debug("mesh: a frame %s -> %s lost after %d attempts", mac_text(sender), mac_text(receiver), attempts)

    def _arrive_at(self, receiver: bytes, path: list[bytes], i: int, header: tuple[bytes, int, int, int],
                   payload: bytes) -> None:
        self._arrive(path, i, header, payload)

    def _arrive(self, path: list[bytes], i: int, header: tuple[bytes, int, int, int], payload: bytes) -> None:
        here, dst = path[i], path[-1]
        if here not in self._nodes or not self._nodes[here].in_range:
            return
        if i < len(path) - 1:  # re-route from here: the tree may have changed while the frame flew
            rest = self._path(here, dst)
            if not rest:
                return
            path, i = rest, 0
        self._hop_forward(path, i, header, payload, self._thread.loop.time())

    def _broadcast_from(self, here: bytes, came_from: bytes | None, header: tuple[bytes, int, int, int],
                        payload: bytes, at: float, up: bool) -> None:
        node = self._nodes.get(here)
        if node is None or not node.in_range:
            return
        if here != header[0]:
            self._deliver(here, header, payload)  # a frame heard is heard, whatever happened to its sender since
        if node.state.layer == 0:
            return  # detached: it forwards nothing
        size = len(payload)
        if up and node.state.layer > 1:  # towards the root first: unicast to the parent, acknowledged
            parent = node.state.parent
            hop = self._hop(here)
            end = at
            for _ in range(RETRY_LIMIT):
                end = self._transmit(here, size, hop, end)
                if self._heard(parent, hop, size):
                    self._later(end + hop.latency_s, here, end, hop, size, self._broadcast_from, parent, here,
                                header, payload, end + hop.latency_s, True)
                    break
        down = [c for c in node.state.children if c != came_from]
        if down:  # one group frame for all the children, heard by each on its own hop
            slowest = min((self._hop(c) for c in down), key=lambda h: h.rate_bps)
            end = self._transmit(here, size, slowest, at)
            for child in down:
                hop = self._hop(child)
                if self._heard(child, hop, size):
                    self._later(end + hop.latency_s, here, end, slowest, size, self._broadcast_from, child, here,
                                header, payload, end + hop.latency_s, False)

    def _deliver(self, mac: bytes, header: tuple[bytes, int, int, int], payload: bytes) -> None:
        node = self._nodes.get(mac)
        if node is None or not node.in_range:
            return
        src, flag, proto, tos = header
        with self._lock:
            self._stats.setdefault(mac, NodeStats()).delivered += 1
        self._send_record(node, b"X" + DATA_HEADER.pack(src, flag, proto, tos) + payload)

    def _send_record(self, node: _Node, record: bytes) -> None:
        if node.outbox:
            node.outbox.append(record)
            return
        try:
            node.conn.send(record)
        except BlockingIOError:
            node.outbox.append(record)
            self._thread.loop.add_writer(node.conn.fileno(), self._flush, node)
        except OSError:
            pass  # the process is gone: its reader sees the hang-up

    def _flush(self, node: _Node) -> None:
        while node.outbox:
            try:
                node.conn.send(node.outbox[0])
            except BlockingIOError:
                return
            except OSError:
                node.outbox.clear()
                break
            node.outbox.popleft()
        try:
            self._thread.loop.remove_writer(node.conn.fileno())
        except (ValueError, OSError):
            pass

