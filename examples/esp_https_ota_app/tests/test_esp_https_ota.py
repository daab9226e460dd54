"""What this app does with esp_https_ota beyond the shared rows: its partial download and its logs."""

from harness.link import DeviceLink

REQUEST_SIZE = 65536  # CONFIG_APP_OTA_HTTP_REQUEST_SIZE of sdkconfig.ci.partial_download


def test_update_logs_esp_https_ota_events(ota, board, fw_server, firmware) -> None:
    """An update goes through esp_https_ota: its events (start, image description, boot partition
    updated) are on the console before the reboot, and the new image confirms itself."""
    artifact = fw_server.add(firmware.image(version="1.4.0"))
    ota.start_until_reboot("e1", artifact.url)
    board.expect(r"rst:0x", timeout=10)  # the old image has printed all it will
    printed = "\n".join(line.text for line in board.serial.lines[ota.serial_mark:])
    # esp_https_ota's events are logged from the event loop task, so not in a fixed order with the rest
    for line in ("https_installer: OTA started", "https_installer: Reading image description",
                 "https_installer: Boot partition updated", "https_installer: ESP_HTTPS_OTA upgrade successful"):
        assert line in printed, line
    assert ota.link.wait_status(board.device_id, lambda s: s["version"] == "1.4.0" and s["ota_state"] == "valid",
                                timeout=30)["partition"] == "ota_1"


def test_partial_download_fetches_the_image_in_range_requests(board_factory, ota_for, link: DeviceLink,
                                                              fw_server, firmware) -> None:
    """With partial_http_download (sdkconfig.ci.partial_download), the image arrives in Range requests of
    64 KB after a HEAD, and installs.

    Needs: partial_download build (its base firmware runs on the board)."""
    board = board_factory(firmware.image("partial_download"))
    ota = ota_for(board)
    image = firmware.image("partial_download", version="1.4.0")
    artifact = fw_server.add(image)
    status = ota.install("p1", artifact.url, "1.4.0")
    assert status["partition"] == "ota_1"
    requests = fw_server.requests_for(artifact)
    ranges = [r.range for r in requests if r.method == "GET"]
    assert len(ranges) == -(-len(image) // REQUEST_SIZE), ranges
    assert ranges[1] == f"bytes={REQUEST_SIZE}-{2 * REQUEST_SIZE - 1}", ranges
