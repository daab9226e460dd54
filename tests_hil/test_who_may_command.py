"""Who may command a device: mqtts, per-device credentials and the broker's per-device access rules (issue 21).

The broker is the embedded one with TLS and its access policy (harness/broker/access.py, the `secured` kind):
the test's link is the operator; each device logs in with its own id and password and may subscribe only to
its own command topic and the broadcast one. The device checks the broker's certificate against
`broker_ca_cert`. A command that must not reach the device is followed by a status request from the operator:
its answer comes after anything the device would have done with the first, so "nothing happened" is checked
without waiting for a time to pass.
"""

from __future__ import annotations

import secrets
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from harness import commands
from harness.link import DeviceLink
from harness.mqtt_client import new_client
from harness.net import parse_mqtt_url
from harness.provision import ca_cert_value
from harness.tls_ca import unrelated_ca_pem

pytestmark = pytest.mark.parametrize("broker", ["secured"], indirect=True)


def _device(board_factory, broker, **settings: object):
    """A board with its own credentials on the secured broker; returns (board, password)."""
    device_id = f"sd{uuid.uuid4().hex[:6]}"
    password = secrets.token_urlsafe(12)
    broker.auth.add_device(device_id, password)
    board = board_factory(device_id=device_id, broker_username=device_id, broker_password=password,
                          broker_ca_cert=ca_cert_value(broker.ca_pem), **settings)
    return board, password


def _client(broker, username: str | None, password: str | None) -> tuple[mqtt.Client, mqtt.ReasonCode]:
    """A paho client on the broker with these credentials (or none); returns it and the CONNACK's code."""
    endpoint = parse_mqtt_url(broker.url)
    client = new_client(endpoint, f"rogue-{uuid.uuid4().hex[:6]}", username, password, broker.ca_pem)
    connacks: list[mqtt.ReasonCode] = []
    answered = threading.Event()

    def on_connect(_client: mqtt.Client, _userdata: object, _flags: object, code: mqtt.ReasonCode,
                   _properties: object) -> None:
        connacks.append(code)
        answered.set()

    client.on_connect = on_connect
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    assert answered.wait(5), "the broker did not answer the CONNECT"
    return client, connacks[0]


def _answered_after(link: DeviceLink, device_id: str) -> int:
    """The operator asks for a status and waits for it: every earlier command has been dealt with."""
    cursor = link.cursor()
    link.send(device_id, commands.status())
    link.wait_status(device_id, since=cursor, timeout=10, description="the barrier status")
    return link.cursor()


def _reactions(link: DeviceLink, device_id: str, request_id: str, since: int) -> list:
    return [m for m in link.messages[since:] if m.device_id == device_id and m.kind == "ota"
            and m.data.get("id") == request_id]


def test_the_operators_command_installs_over_mqtts(board_factory, broker, ota_for, fw_server, firmware) -> None:
    """H1: the device on `mqtts://` with its own credentials and the broker's CA: the operator's `ota` installs
    v2, which comes back on the secured broker and confirms."""
    board, _ = _device(board_factory, broker)
    status = ota_for(board).install("h1", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    assert status["partition"] == "ota_1", status


@pytest.mark.virtual_only
def test_the_host_ports_copy_of_the_ca_lives_in_the_board_and_goes_at_each_boot(board_factory, broker,
                                                                                link: DeviceLink) -> None:
    """Virtual board: libmosquitto reads a CA only from a file, so the host port's esp-mqtt writes the broker's
    CA to one (a chip keeps it in RAM), readable by the app alone, in the board's TMPDIR; a reset, after which
    the app removes nothing, leaves only the new boot's copy, none in the machine's /tmp.

    Needs: the virtual board's TMPDIR.
    """
    board, _ = _device(board_factory, broker)
    first = sorted(board.app_tmpdir.iterdir())
    assert [f.name[:len("esp_mqtt_ca_")] for f in first] == ["esp_mqtt_ca_"], first
    assert first[0].stat().st_mode & 0o077 == 0, oct(first[0].stat().st_mode)
    since = link.cursor()
    board.reset()
    link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "online" and m.payload == b"online"
                  and not m.retain, timeout=15, since=since, description="the device online after the reset")
    second = sorted(board.app_tmpdir.iterdir())
    assert len(second) == 1 and second != first, (first, second)


@pytest.mark.parametrize("who", ["no credentials", "a wrong password"])
def test_a_client_the_broker_does_not_know_cannot_command_the_device(board_factory, broker, link: DeviceLink,
                                                                    fw_server, firmware, who: str) -> None:
    """H2: a client without credentials, or with a wrong password, is refused at CONNECT; the device never
    hears of the update it wanted (no event, no download)."""
    board, _ = _device(board_factory, broker)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    username, password = (None, None) if who == "no credentials" else (board.device_id, "not-the-password")
    client, code = _client(broker, username, password)
    try:
        assert code.is_failure, f"the broker let {who} in: {code}"
        client.publish(f"{link.prefix}/{board.device_id}/cmd", f'{{"type":"ota","id":"rogue","url":"{artifact.url}"}}')
    finally:
        client.loop_stop()
        client.disconnect()
    _answered_after(link, board.device_id)
    assert not _reactions(link, board.device_id, "rogue", since) and not fw_server.requests_for(artifact)


def test_another_devices_credentials_cannot_command_a_device(board_factory, broker, link: DeviceLink, fw_server,
                                                             firmware) -> None:
    """H3: device B's own credentials log in, but B may not publish on A's command topic: the broker drops it,
    A never hears of it (no event, no download), and B is not disconnected for trying."""
    board_a, _ = _device(board_factory, broker)
    board_b, password_b = _device(board_factory, broker)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    client, code = _client(broker, board_b.device_id, password_b)
    try:
        assert not code.is_failure, f"device B's own credentials were refused: {code}"
        info = client.publish(f"{link.prefix}/{board_a.device_id}/cmd",
                              f'{{"type":"ota","id":"from-b","url":"{artifact.url}"}}', qos=1)
        info.wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    _answered_after(link, board_a.device_id)
    assert not _reactions(link, board_a.device_id, "from-b", since) and not fw_server.requests_for(artifact)


def test_a_command_on_another_devices_topic_does_not_reach_a_device(board_factory, broker, link: DeviceLink,
                                                                     fw_server, firmware) -> None:
    """H4: the operator's command on B's topic installs on B only: A, on the same broker, neither answers nor
    downloads (it may subscribe only to its own command topic and the broadcast one)."""
    board_a, _ = _device(board_factory, broker)
    board_b, _ = _device(board_factory, broker)
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = link.cursor()
    link.send(board_b.device_id, {"type": "ota", "id": "for-b", "url": artifact.url})
    link.wait_ota(board_b.device_id, "for-b", "succeeded", timeout=30, since=since, fail_on={"failed", "rejected"})
    _answered_after(link, board_a.device_id)
    assert not _reactions(link, board_a.device_id, "for-b", since)
    assert len({r.client.rsplit(":", 1)[0] for r in fw_server.requests_for(artifact)}) == 1
    assert (link.latest_status(board_a.device_id) or {}).get("version") == "1.0.0"


def test_a_broker_certificate_from_another_ca_is_refused_by_the_firmware(board_factory, broker,
                                                                        link: DeviceLink) -> None:
    """H5: the device told to trust another CA (`broker_ca_cert`) refuses the broker's certificate at the TLS
    handshake: it never connects (no `online`), and says so on its console."""
    board, _ = _device(board_factory, broker)
    board.console(f"config set broker_ca_cert {ca_cert_value(unrelated_ca_pem())}", expect=r"^OK ")
    since = link.cursor()
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.write("reboot")
    board.expect(r"^rst:0xc \(SW_CPU_RESET\)", timeout=10)
    board.expect(r"mqtt_link: (MQTT error event|disconnected from the broker)", timeout=15)
    failures = [line.text for line in board.serial.lines[mark:] if "certificate" in line.text.lower()
                or "tls" in line.text.lower() or "ssl" in line.text.lower()]
    assert failures, "no TLS failure on the console"
    assert not [m for m in link.messages[since:] if m.device_id == board.device_id and m.kind == "online"
                and m.payload == b"online"], "the device connected through a certificate it should not trust"


def test_no_credential_appears_in_any_log(board_factory, broker, ota_for, link: DeviceLink, fw_server, firmware,
                                          hil_record) -> None:
    """H6: after provisioning and an update, neither the device's password nor the operator's appears on the
    console, in the MQTT transcript or in the test's timeline (which the HTML report and JUnit are made from);
    the console shows the device's password masked."""
    board, password = _device(board_factory, broker)
    ota_for(board).install("h6", fw_server.add(firmware.image(version="2.0.0")).url, "2.0.0")
    shown = board.console("config get broker_password", expect=r"^broker_password=(\S*)")
    assert shown.group(1) == "********", shown.string
    operator = broker.auth.operator_password
    console = "\n".join(line.text for line in board.serial.lines)
    transcript = "\n".join(m.topic + " " + m.payload.decode(errors="replace") for m in link.messages)
    timeline = "\n".join(e.text for e in hil_record.timeline())
    for secret in (password, operator):
        assert secret not in console and secret not in transcript and secret not in timeline
