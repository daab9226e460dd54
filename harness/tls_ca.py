"""The throwaway certificate authority of the harness's TLS servers (trustme).

A TLS broker or firmware server gets a certificate from a CA made for it alone, valid for the names a board
or client may use to reach it (its advertised and bind addresses, localhost, 127.0.0.1; never a wildcard
address). The CA's PEM is what a device is provisioned with. `unrelated_ca_pem` is a CA that signed nothing
the harness serves: a device that trusts only it must refuse the server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from harness.net import WILDCARD_HOSTS


@dataclass(frozen=True)
class ServerTls:
    context: ssl.SSLContext  # the server side, holding the certificate and its key
    ca_pem: str  # the CA that signed it: what clients and devices must trust


def server_tls(*hosts: str) -> ServerTls:
    """A new CA and a server certificate from it for `hosts`, localhost and 127.0.0.1."""
    import trustme  # only needed for TLS servers

    ca = trustme.CA()
    names = dict.fromkeys([*hosts, "localhost", "127.0.0.1"])
    leaf = ca.issue_cert(*(name for name in names if name not in WILDCARD_HOSTS))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return ServerTls(context, ca.cert_pem.bytes().decode())


def unrelated_ca_pem() -> str:
    """The PEM of a CA that signed nothing of ours."""
    import trustme

    return trustme.CA().cert_pem.bytes().decode()
