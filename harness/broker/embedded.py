"""The embedded amqtt broker, in its own thread and event loop (uvloop's where it is installed)."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Iterator
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.errors import ProtocolHandlerError

from harness.broker.access import AccessPolicy, DeviceAuthPlugin, DeviceTopicPlugin
from harness.broker.interface import BrokerError
from harness.broker.probe import mqtt_probe
from harness.broker.receipts import ReceiptStreamReader
from harness.loop_thread import LoopThread
from harness.net import PortInUseError, format_url, local_address
from harness.publish_log import PublishLog
from harness.service import ListeningService
from harness.tls_ca import server_tls

try:
    from uvloop import new_event_loop as _fast_event_loop  # see EmbeddedBroker: amqtt's loop runs on libuv
except ImportError:  # a platform uvloop does not build for: the same broker, a little slower
    _fast_event_loop = asyncio.new_event_loop

_STREAM_LIMIT = 2**16  # asyncio.start_server's default buffer limit


def _import_path(plugin: type) -> str:
    """How amqtt's configuration names a plugin class: the dotted path it imports it from."""
    return f"{plugin.__module__}.{plugin.__qualname__}"


class _SubscriptionTable(dict):
    """amqtt 0.12's subscription table (`Broker._subscriptions`), walked over a snapshot.

    amqtt walks the table with awaits inside the loop: retained messages for a client whose session
    starts, and every broadcast. Another client subscribing or leaving meanwhile raised "dictionary
    changed size during iteration": the new session died right after its CONNACK (the device believed
    it was connected while its messages and the commands sent to it went nowhere until it reconnected,
    a second later), or a broadcast was dropped. Boards booting while others come and go hit it.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(dict.__iter__(self)))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(dict.items(self))



class _Broker(Broker):
    """amqtt 0.12's broker, sending a session only the retained messages of its own subscriptions.

    When a session starts, amqtt sends it the retained messages that match every topic filter in its table
    (the loop after `handler.start()` in Broker.client_connected, meant for a resumed session's own): those of
    every other client's subscriptions too. A new device got other devices' retained status and online flags
    before it subscribed to anything, and a pusher took another device's `offline` for its own device's.
    """

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Any) -> None:
        if any(subscriber is session for subscriber, _qos in self._subscriptions.get(subscription[0], ())):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class _WriterAdapter(StreamWriterAdapter):
    """amqtt's writer adapter, dropping what is written to a connection already gone, as asyncio's own loop does.

    uvloop's transports raise RuntimeError on a write once the connection is closed (the client reset it, or
    stop() aborted it), where asyncio's drop the data; amqtt logs that as an unhandled exception, and the task
    forwarding a message to a client that just left, or answering it, dies with it ("Task exception was never
    retrieved", "Task failed during broadcast shutdown").
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self._transport = writer.transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            super().write(data)

    async def close(self) -> None:
        if self._transport.is_closing():  # nothing to flush or half-close any more
            self.is_closed = True
            return
        await super().close()

class EmbeddedBroker(ListeningService):
    """amqtt broker in its own thread and event loop.

    `start()` returns once the broker answers an MQTT CONNECT. The first start binds port 0 (or the given
    port); `stop()` then `start()` (or `restart()`) bind the same port again, so devices configured with
    the URL reconnect to the same address: the "new firmware cannot reach the broker" scenario.

    The listening socket is ours, handed to amqtt as an "external" listener: amqtt's own shutdown can hang
    for ever on Python 3.11 (a cancelled reader task whose `wait_for` swallows the cancel when a packet
    arrives at the same moment), so stop() first closes every client connection itself, letting amqtt's
    readers end on EOF. It also gives the bound port and TLS without amqtt's private attributes or cert files.

    `host` is the bind address; `advertise_host` (default: host) goes into `url` and the certificate, for a
    broker bound to 0.0.0.0 that a board reaches through the LAN address.
    """

    _error = BrokerError

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        auth: AccessPolicy | None = None,
        tls: bool = False,
        advertise_host: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self._host = host
        self._advertise = advertise_host or host
        self._port = port
        self._auth = auth
        self._tls = server_tls(self._advertise, host) if tls else None
        self._start_timeout = start_timeout
        # uvloop: amqtt spends most of its time per message in the event loop's machinery (tasks, futures,
        # transports), and in C that machinery costs less; the loop's socket writes also keep the GIL, which
        # the test's threads (paho's, the test's own) would otherwise take at every send
        self._loop = LoopThread(f"amqtt-{host}:{port}", _fast_event_loop)
        self._broker: Broker | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._receipts = PublishLog()  # kept across restarts: one test's record

    # --- interface -----------------------------------------------------------------------------------

    @property
    def receipts(self) -> PublishLog:
        return self._receipts

    @property
    def url(self) -> str:
        return format_url("mqtts" if self._tls else "mqtt", self._advertise, self.port)

    @property
    def running(self) -> bool:
        return self._broker is not None

    @property
    def auth(self) -> AccessPolicy | None:
        return self._auth

    @property
    def ca_pem(self) -> str:
        """PEM of the CA that signed the broker certificate (tls=True only), to hand to devices and clients."""
        if self._tls is None:
            raise BrokerError("EmbeddedBroker: ca_pem exists only with tls=True")
        return self._tls.ca_pem

    def stop(self) -> None:
        """Stop the broker and its thread; connected clients see their connection closed."""
        self._shutdown()

    def restart(self) -> None:
        """Stop and start again on the same port (retained messages and sessions are lost, as on a reboot)."""
        self._shutdown()
        self.start()

    def __repr__(self) -> str:
        where = self.url if self._port else f"{self._host}:?"
        return f"EmbeddedBroker({where}, {'running' if self.running else 'stopped'})"

    # --- internals -----------------------------------------------------------------------------------

    def _is_started(self) -> bool:
        return self._broker is not None

    def _start(self) -> None:
        logging.getLogger("amqtt.broker").addFilter(_SILENT_CLIENT_FILTER)  # the same filter twice is added once
        self._loop.start()
        self._broker = self._loop.run(self._start_broker(), self._start_timeout)
        self._wait_ready()

    def _config(self) -> dict[str, Any]:
        if self._auth is None:
            plugins: dict[str, Any] = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        else:
            plugins = {
                _import_path(DeviceAuthPlugin): {"policy": self._auth},
                _import_path(DeviceTopicPlugin): {"policy": self._auth},
            }
        # listing plugins replaces amqtt's defaults ($SYS every 20 s, packet logger), which tests do not want
        return {"listeners": {"default": {"type": "external"}}, "plugins": plugins}

    async def _start_broker(self) -> Broker:
        asyncio.get_running_loop().set_exception_handler(_drop_cancelled_packet_tasks)
        broker = _Broker(self._config(), loop=asyncio.get_running_loop())
        broker._subscriptions = _SubscriptionTable()  # see _SubscriptionTable
        await broker.start()
        loop = asyncio.get_running_loop()

        def connection() -> asyncio.StreamReaderProtocol:
            # what asyncio.start_server builds, with a reader that stamps each PUBLISH as it arrives
            reader = ReceiptStreamReader(self._receipts, limit=_STREAM_LIMIT, loop=loop)
            return asyncio.StreamReaderProtocol(reader, lambda r, w: self._serve_client(broker, r, w), loop=loop)

        try:
            self._server = await loop.create_server(connection, self._host, self._port,
                                                    ssl=self._tls.context if self._tls else None, reuse_address=True)
        except OSError as exc:
            await broker.shutdown()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(f"EmbeddedBroker: port {self._port} on {self._host} was taken while "
                                     "starting; stop the other process or use port=0") from exc
            raise BrokerError(f"EmbeddedBroker cannot listen on {self._host}:{self._port}: {exc}") from exc
        self._port = self._server.sockets[0].getsockname()[1]
        return broker

    async def _serve_client(self, broker: Broker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await broker.external_connected(StreamReaderAdapter(reader), _WriterAdapter(writer), "default")
        except ConnectionError:
            pass  # a client vanishing mid-handshake is routine for a test broker, not an error to log
        finally:
            del self._connections[task]
            writer.transport.abort()

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cadata=self._tls.ca_pem) if self._tls else None
        code = mqtt_probe(local_address(self._host), self._port, timeout=self._start_timeout, tls=context)
        if code not in (0, 5):  # 5: not authorized, expected when auth is on
            raise BrokerError(f"EmbeddedBroker on {self.url} answered CONNACK code {code}")

    async def _stop_broker(self, broker: Broker) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._connections.values()):
            writer.transport.abort()  # amqtt's readers see EOF and end by themselves (see the class doc)
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5.0)
        await asyncio.wait_for(broker.shutdown(), timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _shutdown(self) -> None:
        broker, self._broker = self._broker, None
        try:
            if broker is not None:
                self._loop.run(self._stop_broker(broker), timeout=15.0)
        finally:
            self._loop.stop()  # even after a failed shutdown: never leave a thread or socket behind
            self._server = None


class _NoSilentClientNoise(logging.Filter):
    """amqtt logs a client that opens a TCP connection and closes it before its CONNECT twice, as an error ("No
    data from ...") and a warning ("Failed to initialize client session: No data to decode ..."). A test broker
    sees that routinely: a board reset or rebooted after provisioning while its MQTT client was connecting, a
    port probe. Nothing went wrong and nobody can act on it, so those two lines are dropped; amqtt's other
    messages pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("No data from ") or (
            message.startswith("Failed to initialize client session: ") and "No data to decode" in message))


_SILENT_CLIENT_FILTER = _NoSilentClientNoise()


def _drop_cancelled_packet_tasks(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: amqtt's ProtocolHandler turns the cancellation of a packet task it never
    awaits (a client's connection closed, or the broker stopping, while a PUBACK was being sent) into
    ProtocolHandlerError("Packet handling was cancelled"), which asyncio then logs as "Task exception was never
    retrieved". That is a connection ending, not an error: it is dropped; everything else is logged as usual."""
    exc = context.get("exception")
    if isinstance(exc, ProtocolHandlerError) and isinstance(exc.__cause__, asyncio.CancelledError):
        return
    loop.default_exception_handler(context)
