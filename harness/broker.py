"""MQTT brokers for the harness: embedded amqtt, an external URL, or a mosquitto subprocess.

All three offer the same small interface (`MqttBroker`): `start()`, `stop()`, `host`, `port`, `url`,
and use as a context manager, so a test or fixture never cares which one it got.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import urlsplit

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from harness.broker_receipts import ReceiptLog, ReceiptStreamReader

try:
    from uvloop import new_event_loop as _fast_event_loop  # see EmbeddedBroker: amqtt's loop runs on libuv
except ImportError:  # a platform uvloop does not build for: the same broker, a little slower
    _fast_event_loop = asyncio.new_event_loop

T = TypeVar("T")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_STREAM_LIMIT = 2**16  # asyncio.start_server's default buffer limit


class BrokerError(RuntimeError):
    """A broker could not be started, stopped or reached."""


class PortInUseError(BrokerError):
    """The requested listen port is already taken by another socket."""


class BrokerUnreachableError(BrokerError):
    """An external broker did not answer an MQTT CONNECT."""


class MqttBroker(Protocol):
    """What fixtures and tests rely on, whichever broker runs."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    @property
    def receipts(self) -> ReceiptLog | None:
        """When the broker read each PUBLISH (the embedded broker only), for the timeline's clock."""
        ...

    def start(self) -> MqttBroker: ...

    def stop(self) -> None: ...


WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def local_address(bind_host: str) -> str:
    """An address to reach a socket bound to `bind_host` from this machine (wildcards -> loopback)."""
    if bind_host in WILDCARD_HOSTS:
        return "::1" if bind_host == "::" else "127.0.0.1"
    return bind_host


def format_url(scheme: str, host: str, port: int) -> str:
    """`scheme://host:port`, with brackets around IPv6 literals."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


# ---------------------------------------------------------------------------------------------------------
# A minimal MQTT 3.1.1 CONNECT/CONNACK exchange. A TCP connect alone only proves the kernel accepted the
# SYN (the listen backlog does that even when no loop serves the socket); a CONNACK proves a broker answers.


def _mqtt_string(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect_packet(client_id: str) -> bytes:
    # protocol name, level 4 (3.1.1), flags 0x02 (clean session), keepalive 10 s
    variable = _mqtt_string("MQTT") + bytes([4, 0x02]) + (10).to_bytes(2, "big")
    body = variable + _mqtt_string(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed before CONNACK")
        data += chunk
    return data


def mqtt_probe(host: str, port: int, timeout: float = 2.0, tls: ssl.SSLContext | None = None) -> int:
    """Send an anonymous MQTT CONNECT and return the CONNACK return code (0 = accepted, 5 = not authorized).

    Raises OSError when nothing answers. Any return code proves a broker is serving the port.
    """
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        try:
            sock.sendall(_connect_packet(f"harness-probe-{uuid.uuid4().hex[:8]}"))
            header = _recv_exact(sock, 4)
            if header[0] != 0x20:
                raise ConnectionError(f"expected CONNACK, got packet type 0x{header[0]:02x}")
            if header[3] == 0:
                sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker does not publish a will or log an error
            return header[3]
        finally:
            if sock is not raw:
                sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (callers that cannot bind port 0 themselves must retry on a race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise PortInUseError, naming the port, if another socket listens on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # the same option asyncio uses, so a port in TIME_WAIT from our own previous run counts as free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                f"{what}: port {port} on {host} is already in use by another process "
                f"(a broker left running, or a previous test run); stop it (`ss -ltnp 'sport = :{port}'` "
                "shows who holds it) or use port=0 to get a free port"
            ) from exc


# ---------------------------------------------------------------------------------------------------------
# Event loop thread


class LoopThread:
    """An asyncio event loop running in its own thread.

    Test code blocks (Event.wait, serial reads); a server on the test thread's loop would starve. Shared by
    the broker and the firmware server (it would live in its own module, but only named files were allowed).
    """

    def __init__(self, name: str,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop) -> None:
        self._name = name
        self._loop_factory = loop_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self._name}: event loop is not running")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        loop = self._loop_factory()
        ready = threading.Event()
        thread = threading.Thread(target=self._run, args=(loop, ready), name=self._name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread = loop, thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run a coroutine on the loop and wait for its result (re-raising its exception here)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self._name}: operation did not finish within {timeout} s") from None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; leftover tasks are cancelled and the loop closed in its own thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._name}: event loop thread did not stop within {timeout} s")
        self._loop = self._thread = None

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            _drain(loop)
            loop.close()


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left so closing the loop leaves no pending task, executor thread or socket behind."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())


# ---------------------------------------------------------------------------------------------------------
# Authentication and per-device topic ACL


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


# ---------------------------------------------------------------------------------------------------------
# Embedded amqtt broker


@dataclass(frozen=True)
class _Tls:
    context: ssl.SSLContext
    ca_pem: str


def _make_tls(*hosts: str) -> _Tls:
    import trustme  # only needed for TLS brokers

    ca = trustme.CA()
    names = dict.fromkeys([*hosts, "localhost", "127.0.0.1"])
    leaf = ca.issue_cert(*(name for name in names if name not in WILDCARD_HOSTS))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return _Tls(context, ca.cert_pem.bytes().decode())


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


class EmbeddedBroker:
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
        self._tls = _make_tls(self._advertise, host) if tls else None
        self._start_timeout = start_timeout
        # uvloop: amqtt spends most of its time per message in the event loop's machinery (tasks, futures,
        # transports), and in C that machinery costs less; the loop's socket writes also keep the GIL, which
        # the test's threads (paho's, the test's own) would otherwise take at every send
        self._loop = LoopThread(f"amqtt-{host}:{port}", _fast_event_loop)
        self._broker: Broker | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._receipts = ReceiptLog()  # kept across restarts: one test's record

    # --- interface -----------------------------------------------------------------------------------

    @property
    def receipts(self) -> ReceiptLog:
        return self._receipts

    @property
    def host(self) -> str:
        return self._advertise

    @property
    def port(self) -> int:
        if self._port == 0:
            raise BrokerError("EmbeddedBroker: the port is known only after start()")
        return self._port

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

    def start(self) -> Self:
        if self._broker is not None:
            return self
        if self._port:
            check_port_free(self._host, self._port, "EmbeddedBroker")
        self._loop.start()
        try:
            self._broker = self._loop.run(self._start_broker(), self._start_timeout)
            self._wait_ready()
        except BaseException:
            self._shutdown()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker and its thread; connected clients see their connection closed."""
        self._shutdown()

    def restart(self) -> None:
        """Stop and start again on the same port (retained messages and sessions are lost, as on a reboot)."""
        self._shutdown()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port else f"{self._host}:?"
        return f"EmbeddedBroker({where}, {'running' if self.running else 'stopped'})"

    # --- internals -----------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        if self._auth is None:
            plugins: dict[str, Any] = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        else:
            plugins = {
                f"{__name__}.DeviceAuthPlugin": {"policy": self._auth},
                f"{__name__}.DeviceTopicPlugin": {"policy": self._auth},
            }
        # listing plugins replaces amqtt's defaults ($SYS every 20 s, packet logger), which tests do not want
        return {"listeners": {"default": {"type": "external"}}, "plugins": plugins}

    async def _start_broker(self) -> Broker:
        broker = Broker(self._config(), loop=asyncio.get_running_loop())
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


# ---------------------------------------------------------------------------------------------------------
# External broker


def parse_broker_url(url: str) -> tuple[str, str, int]:
    """Split `mqtt://host:port` (or mqtts://) into (scheme, host, port), with the scheme's default port."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0 or (port is None and _hostport(parts.netloc).endswith(":")):
        raise ValueError(f"broker URL {url!r} has a bad port: use mqtt://host:port with a port from 1 to 65535")
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _hostport(netloc: str) -> str:
    """The `host:port` part of a netloc: no user info, and for an IPv6 literal only what follows `]`."""
    hostport = netloc.rpartition("@")[2]
    return hostport.rpartition("]")[2] if hostport.startswith("[") else hostport


class ExternalBroker:
    """A broker the harness does not run (`--broker mqtt://host:port`); start() only checks it answers."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self._scheme, self._host, self._port = parse_broker_url(url)
        self._timeout = timeout

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return format_url(self._scheme, self._host, self._port)

    @property
    def receipts(self) -> None:
        return None  # not our broker: messages are timed where the link receives them

    def start(self) -> Self:
        self.check()
        return self

    def stop(self) -> None:
        """Nothing to stop: the broker belongs to someone else."""

    def check(self) -> None:
        """Fail fast, with the URL in the message, when nothing answers MQTT there."""
        tls = None
        if self._scheme == "mqtts":
            # reachability only: trust is the client's business, checked where it connects for real
            tls = ssl.create_default_context()
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        try:
            mqtt_probe(self._host, self._port, timeout=self._timeout, tls=tls)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerUnreachableError(
                f"external MQTT broker {self.url} is unreachable ({exc}); check --broker, that the broker runs "
                "and that a firewall lets this machine in"
            ) from exc

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ExternalBroker({self.url})"


# ---------------------------------------------------------------------------------------------------------
# mosquitto subprocess


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return found


class MosquittoBroker:
    """Debian's mosquitto as a subprocess, for MQTT 5, keepalive and interop scenarios amqtt cannot serve.

    mosquitto cannot bind port 0 (`listener 0 X` makes a unix socket), so a free port is probed and the
    start retried on the rare race. `max_queued_messages 0`: the default (1000) silently drops QoS 1
    messages to a slow Python subscriber.
    """

    _ATTEMPTS = 3

    def __init__(
        self,
        host: str = "127.0.0.1",
        executable: str | None = None,
        extra_config: Sequence[str] = (),
        start_timeout: float = 5.0,
        advertise_host: str | None = None,
        port: int = 0,
    ) -> None:
        self._host = host
        self._advertise = advertise_host or local_address(host)
        self._executable = executable or find_mosquitto()
        self._extra_config = list(extra_config)
        self._start_timeout = start_timeout
        self._port = port  # 0: a free one is picked
        self._dir: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: list[str] = []
        self._running_line = threading.Event()

    @property
    def host(self) -> str:
        return self._advertise

    @property
    def port(self) -> int:
        if self._port == 0:
            raise BrokerError("MosquittoBroker: the port is known only after start()")
        return self._port

    @property
    def url(self) -> str:
        return format_url("mqtt", self._advertise, self.port)

    @property
    def receipts(self) -> None:
        return None  # a separate process: messages are timed where the link receives them

    @property
    def pid(self) -> int | None:
        """The mosquitto process id while one was started and not stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """The mosquitto process is alive (False after stop(), kill() or a crash)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def config_path(self) -> Path | None:
        """The generated mosquitto.conf while the broker runs (removed with its temp dir on stop)."""
        return self._dir / "mosquitto.conf" if self._dir else None

    @property
    def output(self) -> list[str]:
        """mosquitto's log lines so far (diagnostics for a failing test)."""
        return list(self._output)

    def start(self) -> Self:
        if self._proc is not None:
            return self
        if self._port:
            check_port_free(self._host, self._port, "MosquittoBroker")
        self._dir = Path(tempfile.mkdtemp(prefix="harness-mosquitto-"))
        try:
            self._start_with_retries()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self._stop_process()
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="harness-mosquitto-"))
        self._launch(self._port)
        self._wait_ready()

    def kill(self) -> None:
        """SIGKILL mosquitto, as a crash would: clients see their connections reset. stop() still cleans up."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)

    def stop(self) -> None:
        self._stop_process()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MosquittoBroker({self._host}:{self._port or '?'}, {'running' if self._proc else 'stopped'})"

    def _start_with_retries(self) -> None:
        for attempt in range(self._ATTEMPTS):
            port = self._port or free_port(self._host)
            self._launch(port)
            try:
                self._wait_ready()
                return
            except PortInUseError:
                self._stop_process()
                if attempt == self._ATTEMPTS - 1 or self._port:
                    raise

    def _launch(self, port: int) -> None:
        assert self._dir is not None
        config = self._dir / "mosquitto.conf"
        lines = [
            f"listener {port} {self._host}",
            "allow_anonymous true",
            "max_queued_messages 0",
            "persistence false",
            # mosquitto leaves Nagle's algorithm on by default: a forwarded message that follows a PUBACK on
            # the same connection would wait ~40 ms for the client's delayed ACK
            "set_tcp_nodelay true",
            "log_dest stderr",  # stderr is unbuffered; stdout would hold the "running" line back
            *self._extra_config,
        ]
        config.write_text("\n".join(lines) + "\n")
        self._port = port
        self._output.clear()
        self._running_line.clear()
        self._proc = subprocess.Popen(
            [self._executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # a reader thread drains the pipe (a full pipe would block mosquitto) and signals readiness
        self._reader = threading.Thread(target=self._read_output, args=(self._proc,), daemon=True,
                                        name=f"mosquitto-{port}-log")
        self._reader.start()

    def _read_output(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._output.append(line.rstrip("\n"))
            if " running" in line:
                self._running_line.set()
        self._running_line.set()  # EOF: the process ended, wake the waiter to look at its exit

    def _wait_ready(self) -> None:
        assert self._proc is not None
        self._running_line.wait(self._start_timeout)
        if self._proc.poll() is not None:
            log = self._log()
            if "Address already in use" in log:
                raise PortInUseError(f"mosquitto: port {self._port} on {self._host} is already in use; stop the "
                                     f"process that holds it or leave port=0 for a free one:\n{log}")
            raise BrokerError(f"mosquitto exited with code {self._proc.returncode}:\n{log}")
        try:
            code = mqtt_probe(local_address(self._host), self._port, timeout=self._start_timeout)
        except OSError as exc:
            raise BrokerError(f"mosquitto on {self.url} does not answer MQTT ({exc}):\n{self._log()}") from exc
        if code != 0:
            raise BrokerError(f"mosquitto on {self.url} refused an anonymous CONNECT (code {code})")

    def _log(self) -> str:
        return "\n".join(self._output)

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
