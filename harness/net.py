"""Networking helpers of the harness's services and clients: URLs, addresses, listen ports.

The brokers, the firmware server and the device link all name endpoints as URLs (`mqtt://host:port`,
`http://[::1]:8080`), bind to wildcard or concrete addresses, and either take a port they are given or
find a free one. Those rules live here once.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class PortInUseError(RuntimeError):
    """The requested listen port is already taken by another socket."""


@dataclass(frozen=True)
class MqttUrl:
    """A broker URL taken apart; the port is the scheme's default when the URL has none."""

    scheme: str  # "mqtt" or "mqtts"
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttUrl:
    """`mqtt://[user[:password]@]host[:port]` (or mqtts://); ValueError, saying what is wrong, otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"broker URL {url!r} must look like mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0 or (port is None and _hostport(parts.netloc).endswith(":")):
        raise ValueError(f"broker URL {url!r} has a bad port: use mqtt://host:port with a port from 1 to 65535")
    return MqttUrl(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme],
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


def _hostport(netloc: str) -> str:
    """The `host:port` part of a netloc: no user info, and for an IPv6 literal only what follows `]`."""
    hostport = netloc.rpartition("@")[2]
    return hostport.rpartition("]")[2] if hostport.startswith("[") else hostport


def format_url(scheme: str, host: str, port: int) -> str:
    """`scheme://host:port`, with brackets around IPv6 literals."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def local_address(bind_host: str) -> str:
    """An address to reach a socket bound to `bind_host` from this machine (wildcards -> loopback)."""
    if bind_host in WILDCARD_HOSTS:
        return "::1" if bind_host == "::" else "127.0.0.1"
    return bind_host


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (callers that cannot bind port 0 themselves must retry on a race)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise PortInUseError, naming the port, if another socket listens on host:port."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
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
