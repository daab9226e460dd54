"""Console and status.

The serial console (provisioning) and the status reports.
"""

from harness.link import DeviceLink


def test_config_show_masks_secrets_and_values_survive_a_reboot(board, link: DeviceLink) -> None:
    """Provisioned values persist in NVS across a reboot; secrets show as `********` and never appear on
    the console."""
    board.console("config set broker_password s3cr3t-value")
    board.write("reboot")
    board.expect(r"app: ready", timeout=15)
    board.serial.skip_to_end()
    board.write("config show")
    shown = board.expect(r"^broker_password=(.*)$", timeout=5).group(1)
    assert shown == "********"
    assert not any("s3cr3t-value" in line for line in board.serial.tail(500))
    board.write("config get selftest_timeout_s")
    board.expect(r"^selftest_timeout_s=\d+$", timeout=5)


def test_console_errors_are_lines_not_crashes(board, link: DeviceLink) -> None:
    """Unknown commands, keys, bad values (each error says what a valid one looks like; a broker_url that is no
    MQTT URL, a device_id or topic_prefix that is no topic level among them) and a 5000-character line get error
    lines: no reboot, nothing published."""
    since = link.cursor()
    board.serial.skip_to_end()
    mark = board.serial.mark()
    board.write("format_everything now")
    board.expect(r"^Unrecognized command$", timeout=5)
    board.write("config set no_such_key 1")
    board.expect(r"^ERROR unknown key 'no_such_key'", timeout=5)
    board.write("config set selftest_timeout_s banana")
    board.expect(r"^ERROR invalid value for 'selftest_timeout_s': expected an integer from 1 to 3600$", timeout=5)
    for not_a_url in ("127.0.0.1:1883", "http://broker:1883", "mqtt://", "mqtt://broker:port", "mqtt://b:99999"):
        board.write(f"config set broker_url {not_a_url}")  # saved, it would fail esp_mqtt_client_init at each boot
        board.expect(r"^ERROR invalid value for 'broker_url': expected mqtt://host\[:port\]", timeout=5)
    for not_a_level in ("a/b", "dev#1", "+"):  # saved, it would move the topics or fail CONNECT at each boot
        board.write(f"config set device_id {not_a_level}")
        board.expect(r"^ERROR invalid value for 'device_id': expected one topic level: without /, \+ or #",
                     timeout=5)
    for not_a_prefix in ("/devices", "devices/", "fleet/+"):
        board.write(f"config set topic_prefix {not_a_prefix}")
        board.expect(r"^ERROR invalid value for 'topic_prefix': expected topic levels without \+ or #", timeout=5)
    for url in ("mqtt://user:pw@broker.local:1883", "mqtts://[::1]:8883", "ws://broker/mqtt"):
        board.console(f"config set broker_url {url}", expect=r"^OK broker_url set")  # applied at a reboot only
    board.console(f"config set broker_url {board.console('config get broker_url', expect=r'^broker_url=(.*)$')[1]}",
                  expect=r"^OK broker_url set")  # the running one back for the next boot
    board.write("config " + "x" * 5000)
    board.expect(r"^Command line too long", timeout=5)
    board.write("status")
    board.expect(r"^version=\S+ partition=ota_0 ota_state=valid reset_reason=\w+ mqtt=connected$", timeout=5)
    assert not [line for line in board.serial.lines[mark:] if line.text.startswith("rst:")], "rebooted"
    assert link.cursor() == since, "console errors must not change state or publish anything"


def test_status_heartbeat(board_factory, link: DeviceLink) -> None:
    """The status carries every contract field and repeats every `heartbeat_s`."""
    board = board_factory(heartbeat_s=1)
    boot = [m for m in link.messages if m.device_id == board.device_id and m.kind == "status"][-1]  # at connect
    beat = link.wait_for(lambda m: m.device_id == board.device_id and m.kind == "status", since=boot.index + 1,
                         timeout=5, description="the first heartbeat after the status at connect")
    assert beat.t - boot.t >= 0.9, f"a heartbeat {beat.t - boot.t:.2f} s after the last status, heartbeat_s is 1"
    assert beat.data["uptime_s"] >= boot.data["uptime_s"]
    assert set(beat.data) >= {"device_id", "version", "project", "partition", "ota_state", "reset_reason",
                              "uptime_s", "free_heap", "rssi", "last_ota"}


def test_online_flag_is_retained(board, link: DeviceLink) -> None:
    """The device publishes `online` on `<prefix>/<id>/online` once connected."""
    assert any(m.device_id == board.device_id and m.kind == "online" and m.payload == b"online"
               for m in link.messages)
