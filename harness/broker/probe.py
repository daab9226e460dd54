"""A minimal MQTT 3.1.1 CONNECT/CONNACK exchange: does a broker answer on host:port?

A TCP connect alone only proves the kernel accepted the SYN (the listen backlog does that even when no loop
serves the socket); a CONNACK proves a broker answers. Every broker's start() and the --hil-broker check use it.
"""

from __future__ import annotations

import socket
import ssl
import uuid


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
