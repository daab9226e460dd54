"""Transport.

HTTPS downloads: the right CA installs, a wrong CA is refused as tls_failed.
"""

import pytest

from harness.fixtures import server_address
from harness.fwserver import FirmwareServer
from harness.link import DeviceLink
from harness.provision import ca_cert_value


@pytest.fixture
def tls_server(request):
    server = FirmwareServer(tls=True, **server_address(request)).start()  # reachable from a real board
    yield server
    server.stop()


def test_https_with_the_right_ca_installs(board_factory, link: DeviceLink, tls_server, firmware) -> None:
    """C8: HTTPS against the provisioned CA (`ota_ca_cert`) installs."""
    board = board_factory(ota_ca_cert=ca_cert_value(tls_server.ca_pem))
    artifact = tls_server.add(firmware.image(version="2.0.0"))
    assert artifact.url.startswith("https://")
    since = link.cursor()
    link.send(board.device_id, {"type": "ota", "id": "tls1", "url": artifact.url})
    link.wait_ota(board.device_id, "tls1", "succeeded", timeout=30, since=since, fail_on={"failed", "rejected"})


def test_https_with_a_wrong_ca_is_refused(board_factory, link: DeviceLink, tls_server, firmware) -> None:
    """C8: a server certificate from another CA is `failed`/`tls_failed`; v1 keeps running."""
    board = board_factory(ota_ca_cert=ca_cert_value(tls_server.wrong_ca_pem))
    artifact = tls_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    link.send(board.device_id, {"type": "ota", "id": "tls2", "url": artifact.url, "retries": 0})
    event = link.wait_ota(board.device_id, "tls2", "failed", timeout=30, since=since, fail_on={"rebooting"})
    assert event["reason"] == "tls_failed"
    status = link.wait_status(board.device_id, lambda s: s["last_ota"] is not None, since=since)
    assert status["version"] == firmware.base_version
