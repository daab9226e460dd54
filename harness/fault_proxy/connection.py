"""One proxied TCP connection: both directions forwarded under the link's faults, and the ways it is cut.

Each direction is a reader task that stamps every chunk with the time it is due at the far side (now plus
the one-way delay, never before the chunk ahead of it) and a writer task that waits for that time, for the
black hole to clear and for the bandwidth cap, then writes. The queue between them is short, so a slow or
blocked link pushes back on the sender as TCP flow control does, instead of buffering without bound.

In a black hole what the board sends is held, as a live TCP stack keeps retransmitting it until the partition
heals. A board that closes its side meanwhile has rebooted or lost power (the virtual board's process ended,
which closes its sockets): a chip keeps no TCP state across a reset, so nothing it had sent may arrive after
the partition. Its held data is dropped; an upstream connection it had is reset once the partition heals (the
chip's answer to the server's next segment), and one it never had is not made.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from harness.fault_proxy.faults import CutHow, Direction
from harness.fault_proxy.link_state import LinkState

T = TypeVar("T")
CHUNK = 64 * 1024
# chunks queued per direction: memory stays bounded, and with latency L a stream still carries a few
# hundred KiB per L (some MiB/s at 100 ms), as a TCP window bounds what a long link carries
QUEUE_CHUNKS = 4
FLUSH_TIMEOUT_S = 1.0  # a cut at byte N waits this long for the N bytes to reach the receiver before a reset
_FLUSH_POLL_S = 0.002

Chunk = tuple[float, bytes] | None  # (due on the loop's clock, data), None at EOF


class ProxiedConnection:
    """`on_forwarded(direction, n)` counts bytes; `on_cut_due(connection, direction)` is called when a cut at
    byte N has been reached and says how to cut (the proxy records it, counts it, clears a cut of K
    connections once it fired K times); `on_gone(connection, dropped)` when the board closed it in a black
    hole, with the bytes it had sent there (dropped)."""

    def __init__(
        self,
        number: int,
        link: LinkState,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        on_forwarded: Callable[[Direction, int], None],
        on_cut_due: Callable[[ProxiedConnection, Direction], CutHow],
        on_gone: Callable[[ProxiedConnection, int], None],
    ) -> None:
        self.number = number
        self._link = link
        self._client_reader, self._client_writer = client
        self._upstream_writer: asyncio.StreamWriter | None = None
        self._on_forwarded = on_forwarded
        self._on_cut_due = on_cut_due
        self._on_gone = on_gone
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        # bytes left before a cut at byte N, per direction (None: no cut); the proxy sets them
        self.budget: dict[Direction, int | None] = {"up": None, "down": None}
        peer = self._client_writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    def __repr__(self) -> str:
        return f"connection #{self.number} from {self.peer}"

    async def run(self, upstream_host: str, upstream_port: int) -> str | None:
        """Forward until both sides are done or the connection is cut; an error reaching upstream is returned.

        The work runs in a task of its own that cut() cancels, wherever it waits (in a black hole, connecting,
        forwarding): so nobody cancels the task asyncio's server runs this in, which on Python 3.11 logs a
        spurious "Exception in callback" when it ends cancelled.
        """
        body = self._spawn(self._run(upstream_host, upstream_port))
        await asyncio.wait([body])
        return None if body.cancelled() else body.result()

    async def _run(self, upstream_host: str, upstream_port: int) -> str | None:
        held = await self._hold(self._client_reader, b"")  # in a black hole not even the SYN gets there
        if held is None:  # the board went away during the partition: the server never hears of it
            self.cut("rst")
            return None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError as exc:
            self.cut("rst")  # what the device would see from a server that is not there
            return f"{upstream_host}:{upstream_port}: {exc.strerror or exc}"
        if self.closed:  # cut while connecting
            reset(upstream_writer)
            return None
        self._upstream_writer = upstream_writer
        pumps = [
            self._spawn(self._pump("up", self._client_reader, self._upstream_writer, held)),
            self._spawn(self._pump("down", upstream_reader, self._client_writer)),
        ]
        try:
            await asyncio.wait(pumps)
        finally:
            for task in pumps:
                task.cancel()
            self.close()
        return None

    def cut(self, how: CutHow) -> None:
        """Close both sides now: "rst" resets them (unsent data is dropped), "fin" closes after what is written."""
        if self.closed:
            return
        self.closed = True
        for writer in self._writers():
            if how == "rst":
                reset(writer)
            else:
                writer.close()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    def close(self) -> None:
        """Close both sides gracefully (both directions finished)."""
        self.cut("fin")

    # --- one direction ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(self, direction: Direction, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    held: bytes = b"") -> None:
        """`held`: what the board sent before the upstream connection was made (up only), forwarded first."""
        queue: asyncio.Queue[Chunk] = asyncio.Queue(QUEUE_CHUNKS)
        reading = self._spawn(self._read(direction, reader, queue, held))
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))  # on the wire
                if not await self._send(direction, data, writer):
                    return
            await self._link.wait_open()  # a FIN crosses no partition either
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()  # pass the half-close on: the other direction may still be talking
        except ConnectionError:
            self.cut("rst")  # a side that reset: the other side gets a reset too
        finally:
            reading.cancel()

    async def _read(self, direction: Direction, reader: asyncio.StreamReader, queue: asyncio.Queue[Chunk],
                    held: bytes) -> None:
        loop = asyncio.get_running_loop()
        last_due = 0.0
        try:
            while True:
                if direction == "down":
                    await self._link.wait_open()  # a black hole holds the server's data in its socket buffers
                    data: bytes | None = await reader.read(CHUNK)
                else:
                    data, held = await self._board_data(reader, held), b""
                if data is None:  # the board went away during the partition: reset, now that it healed
                    self.cut("rst")
                    return
                if not data:
                    await queue.put(None)
                    return
                last_due = max(loop.time() + self._link.delay_s(), last_due)  # later chunks never overtake
                await queue.put((last_due, data))
        except ConnectionError:
            await self._link.wait_open()  # the server's reset reaches the board once the partition heals
            self.cut("rst")

    async def _board_data(self, reader: asyncio.StreamReader, held: bytes) -> bytes | None:
        """The board's next data (b"" at its EOF) once no black hole is on; None when it went away in one."""
        while True:
            if (held_now := await self._hold(reader, held)) is None:
                return None
            if held_now:
                return held_now
            try:
                data = await reader.read(CHUNK)
            except ConnectionError:
                if not self._link.faults.blackhole:
                    raise
                data = b""
            if not self._link.faults.blackhole:
                return data
            if not data:  # read as a black hole began, and the board closed: gone
                await self._gone_until_healed(0)
                return None
            held = data  # held with what follows

    async def _hold(self, reader: asyncio.StreamReader, held: bytes) -> bytes | None:
        """While a black hole is on, hold what the board sends after `held` (see the module docstring): all of
        it once the hole heals, or None when the board closed meanwhile. At once when no hole is on."""
        held = bytearray(held)
        while self._link.faults.blackhole and len(held) < CHUNK:  # a chunk held: a sender whose window is full
            reading = self._spawn(reader.read(CHUNK - len(held)))
            healing = self._spawn(self._link.wait_open())
            await asyncio.wait([reading, healing], return_when=asyncio.FIRST_COMPLETED)
            healing.cancel()
            if not reading.done():
                reading.cancel()  # a read cancelled while it waits takes nothing from the buffer
                await asyncio.wait([reading])  # and the reader takes another read only once it has ended
                break
            try:
                data = reading.result()
            except ConnectionError:  # the board reset its side: gone as well
                data = b""
            if not data:
                await self._gone_until_healed(len(held))
                return None
            held += data
        await self._link.wait_open()
        return bytes(held)

    async def _gone_until_healed(self, dropped: int) -> None:
        """The board closed in the black hole: say so now, and return once the hole heals (the caller then
        resets what is left of the connection, as the rebooted chip would answer the server)."""
        self._on_gone(self, dropped)
        await self._link.wait_open()

    async def _send(self, direction: Direction, data: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write `data` under the cap, the black hole and a cut at byte N; False once the connection is cut."""
        view, sent = memoryview(data), 0
        bucket = self._link.bucket(direction)
        while sent < len(data):
            await self._link.wait_open()
            budget = self.budget[direction]
            if budget == 0:
                await self._cut_at_byte(direction)
                return False
            n = bucket.piece(len(data) - sent)
            n = n if budget is None else min(n, budget)
            wait = bucket.reserve(n)
            if wait > 0:
                await self._link.sleep_or_change(wait)  # the cap may be lifted meanwhile: look again
                continue
            writer.write(view[sent : sent + n])
            sent += n
            self._on_forwarded(direction, n)
            if budget is not None:
                self.budget[direction] = budget - n
            await writer.drain()
        if self.budget[direction] == 0:  # exactly N bytes forwarded: cut now, not when more arrives
            await self._cut_at_byte(direction)
            return False
        return True

    async def _cut_at_byte(self, direction: Direction) -> None:
        how = self._on_cut_due(self, direction)
        writer = self._upstream_writer if direction == "up" else self._client_writer
        if how == "rst" and writer is not None:
            await flushed(writer)  # the receiver gets its N bytes before the reset
        self.cut(how)

    def _writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self._client_writer, self._upstream_writer) if w is not None]


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN: SO_LINGER with a zero timeout, then close at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def flushed(writer: asyncio.StreamWriter, timeout: float = FLUSH_TIMEOUT_S) -> None:
    """Wait until what was written has left this side's buffers and the kernel's send queue (the receiver
    took it), or `timeout`: a reset drops whatever is still queued, and a cut at byte N must deliver N."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sock = writer.get_extra_info("socket")
    while loop.time() < deadline and not writer.is_closing():
        if writer.transport.get_write_buffer_size() == 0 and _unsent(sock) == 0:
            return
        await asyncio.sleep(_FLUSH_POLL_S)  # the kernel tells no one when its queue empties: poll it


def _unsent(sock: socket.socket | None) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (Linux SIOCOUTQ; 0 if unknown)."""
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])
