"""A mesh of virtual boards: boards of the `mesh` variant on one MeshMedium (harness/virtual/mesh.py).

The first board started is the root (it is the first to reach the router); the others join under it as
they boot. Only the root talks to the broker, so a node's first status arrives through the root: the root
is started, and has its first status, before the nodes start. Virtual boards only (a real mesh is a room of
chips): scenarios that use it are `virtual_only`.

    net = mesh(5, ip_forwarding=True)           # the `mesh` fixture
    net.medium.out_of_range(net.nodes[0].mac_text)
    link.wait_status(net.root.device_id, ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.fleet.start import start_boards
from harness.virtual.board import VirtualBoard
from harness.virtual.mesh import MeshMedium

MESH_VARIANT = "mesh"


def board_mac(board: VirtualBoard) -> str:
    """A board's station MAC as the mesh names it (aa:bb:cc:dd:ee:ff)."""
    raw = board.mac.lower()
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


@dataclass
class Mesh:
    """Boards on one mesh medium: `root` first, then `nodes` in the order they started."""

    medium: MeshMedium
    boards: list[VirtualBoard] = field(default_factory=list)

    @property
    def root(self) -> VirtualBoard:
        return self.boards[0]

    @property
    def nodes(self) -> list[VirtualBoard]:
        return self.boards[1:]

    def by_mac(self, mac: str) -> VirtualBoard:
        return next(b for b in self.boards if board_mac(b) == mac)

    def current_root(self) -> VirtualBoard | None:
        """The board that is the mesh's root now (the medium elects a new one when the root leaves)."""
        mac = self.medium.root()
        return self.by_mac(mac) if mac else None


def start_mesh(factory: Callable[..., VirtualBoard], medium: MeshMedium, count: int,
               variant: str = MESH_VARIANT, **settings: object) -> Mesh:
    """`count` boards of `variant` on `medium`: the root, then the others together. `factory` is a
    VirtualBoardFactory whose boards join `medium` (its `mesh` field)."""
    if count < 1:
        raise ValueError(f"start_mesh: count must be >= 1, not {count}")
    net = Mesh(medium)
    net.boards.append(factory(variant=variant, **settings))
    if count > 1:
        net.boards.extend(start_boards(factory, count - 1, variant=variant, **settings))  # type: ignore[arg-type]
    medium.wait_members(count, timeout=30)
    return net
