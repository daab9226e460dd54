"""One proxied TCP connection: both directions forwarded under the link's faults, and the ways it is cut.

Each direction is a reader task that stamps every chunk with the time it is due at the far side (now plus
the one-way delay, never before the chunk ahead of it) and a writer task that waits for that time, for the
black hole to clear and for the bandwidth cap, then writes. The queue between them is short, so a slow or
blocked link pushes back on the sender as TCP flow control does, instead of buffering without bound.
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
    connections once it fired K times)."""

    def __init__(
        self,
        number: int,
        link: LinkState,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        on_forwarded: Callable[[Direction, int], None],
        on_cut_due: Callable[[ProxiedConnection, Direction], CutHow],
    ) -> None:
        self.number = number
        self._link = link
        self._client_reader, self._client_writer = client
        self._upstream_writer: asyncio.StreamWriter | None = None
        self._on_forwarded = on_forwarded
        self._on_cut_due = on_cut_due
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
        await self._link.wait_open()  # in a black hole, not even the SYN would reach the server
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
            self._spawn(self._pump("up", self._client_reader, self._upstream_writer)),
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

    async def _pump(self, direction: Direction, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[Chunk] = asyncio.Queue(QUEUE_CHUNKS)
        reading = self._spawn(self._read(reader, queue))
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))  # on the wire
                if not await self._send(direction, data, writer):
                    return
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()  # pass the half-close on: the other direction may still be talking
        except ConnectionError:
            self.cut("rst")  # a side that reset: the other side gets a reset too
        finally:
            reading.cancel()

    async def _read(self, reader: asyncio.StreamReader, queue: asyncio.Queue[Chunk]) -> None:
        loop = asyncio.get_running_loop()
        last_due = 0.0
        try:
            while True:
                await self._link.wait_open()  # a black hole holds data in the sender's socket buffers
                data = await reader.read(CHUNK)
                if not data:
                    await queue.put(None)
                    return
                last_due = max(loop.time() + self._link.delay_s(), last_due)  # later chunks never overtake
                await queue.put((last_due, data))
        except ConnectionError:
            self.cut("rst")

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
