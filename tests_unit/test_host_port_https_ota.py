"""The host port's esp_https_ota at the C level, against the harness's firmware server.

device/port/linux/test/https_ota_check.c (port_check's https_ota command) drives esp_https_ota as an app
does, with the one-call esp_https_ota() and with begin / get_img_desc / perform / is_complete_data_received /
finish; harness.fwserver serves real app images (harness.formats.app_image) under its fault plans. Each test
is one behaviour of ESP-IDF v5.5.4's component: the events and their data, Range requests of
max_http_request_size, what an incomplete, corrupt or foreign image does to the result and to the boot
partition. The flash file is read back here (otadata, the staged image), not only what the port prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.formats import otadata
from harness.formats.app_image import CHIP_ID_ESP32, CHIP_ID_VIRTUAL, AppImage, build_virtual_image, set_chip_id
from harness.fwserver import FaultPlan, FirmwareServer
from harness.virtual.flash import Flash
from tests_unit.port_check_app import PortCheck, values

VERSION = "2.0.0"
PROJECT = "https-ota-check"
# Small enough for dozens of 1 KB WRITE_FLASH events, large enough for several Range requests.
IMAGE = build_virtual_image(os.urandom(40_000), version=VERSION, project_name=PROJECT)
OTA_BUF = 1024  # DEFAULT_OTA_BUF_SIZE: what one esp_https_ota_perform() reads with buffer_size 0
SUBTYPE_OTA_1 = 0x11
INSTALLED = ["START", "CONNECTED", "GET_IMG_DESC", "VERIFY_CHIP_ID", "VERIFY_CHIP_REVISION", "WRITE_FLASH",
             "UPDATE_BOOT_PARTITION", "FINISH"]


@dataclass
class OtaRun:
    """What one https_ota command printed: every line, its key=value results and its events in order."""

    lines: list[str]

    @property
    def result(self) -> dict[str, str]:
        return values([line for line in self.lines if not line.startswith("ota_event=")])

    @property
    def events(self) -> list[dict[str, str]]:
        return [values([line]) for line in self.lines if line.startswith("ota_event=")]

    @property
    def event_names(self) -> list[str]:
        """Event names with each run of WRITE_FLASH events shown once."""
        names: list[str] = []
        for event in self.events:
            if not (names and names[-1] == event["ota_event"] == "WRITE_FLASH"):
                names.append(event["ota_event"])
        return names

    @property
    def written(self) -> list[int]:
        return [int(e["written"]) for e in self.events if e["ota_event"] == "WRITE_FLASH"]

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.fixture
def server() -> Iterator[FirmwareServer]:
    with FirmwareServer() as srv:
        yield srv


def run_ota(pc: PortCheck, url: str, *options: str, timeout: float = 30.0) -> OtaRun:
    lines = pc.run_lines(" ".join(["https_ota", url, *options]), timeout=timeout)
    assert any(line == "ota_done" for line in lines), lines
    assert not any(line.startswith("drain=") for line in lines), "events still queued after the OTA"
    return OtaRun(lines)


def partition(flash: Flash, label: str) -> tuple[int, int]:
    [found] = [p for p in flash.partitions() if p.label == label]
    return found.offset, found.size


def boot_label(flash_path: Path) -> str:
    """The slot the bootloader would pick, from otadata as it is in the flash file (ota_0 when blank)."""
    with Flash(flash_path) as flash:
        offset, _ = partition(flash, "otadata")
        entries = otadata.split_partition(flash.read(offset, 2 * otadata.SECTOR_SIZE))
    active = otadata.active_index(entries)
    return "ota_0" if active is None else f"ota_{otadata.slot_for_seq(entries[active].seq, 2)}"


def staged(flash_path: Path, length: int) -> bytes:
    with Flash(flash_path) as flash:
        offset, _ = partition(flash, "ota_1")
        return flash.read(offset, length)


def assert_not_installed(pc: PortCheck, run: OtaRun) -> None:
    assert "UPDATE_BOOT_PARTITION" not in run.event_names
    assert run.result["boot"] == "ota_0"
    assert boot_label(pc.flash_path) == "ota_0"


# --- a good image -------------------------------------------------------------------------------------------


def test_begin_perform_finish_installs_the_image(port_check: PortCheck, server: FirmwareServer) -> None:
    artifact = server.add(IMAGE)
    run = run_ota(port_check, artifact.url)
    result = run.result
    assert (result["ota_begin"], result["img_desc"], result["version"], result["project"]) == (
        "ESP_OK", "ESP_OK", VERSION, PROJECT)
    assert (result["image_size"], result["status_code"]) == (str(len(IMAGE)), "200")
    assert (result["perform"], result["len_read"], result["complete"]) == ("ESP_OK", str(len(IMAGE)), "1")
    assert result["ota_finish"] == "ESP_OK"
    assert run.event_names == INSTALLED
    chip_id, chip_rev, boot, _ = [e for e in run.events if e["ota_event"] != "WRITE_FLASH"][3:]
    assert (chip_id["chip_id"], chip_rev["min_chip_rev_full"], boot["subtype"]) == (
        str(CHIP_ID_VIRTUAL), "0", str(SUBTYPE_OTA_1))
    # the header first (IMAGE_HEADER_SIZE), then one buffer per perform, up to the whole image
    assert run.written[0] == OTA_BUF and run.written[-1] == len(IMAGE)
    assert all(0 < b - a <= OTA_BUF for a, b in zip(run.written, run.written[1:], strict=False))
    assert result["boot"] == "ota_1" and boot_label(port_check.flash_path) == "ota_1"
    assert staged(port_check.flash_path, len(IMAGE)) == IMAGE
    assert run.logged("I (") and run.logged("esp_https_ota: Starting OTA...")
    assert run.logged("esp_https_ota: Writing to <ota_1> partition at offset 0x1d0000")
    [request] = server.requests_for(artifact)
    assert (request.method, request.range, request.status) == ("GET", None, 200)


def test_one_call_esp_https_ota_follows_redirects_and_installs(port_check: PortCheck, server: FirmwareServer) -> None:
    artifact = server.add(IMAGE, faults=FaultPlan(redirects=2))
    run = run_ota(port_check, artifact.url, "api=oneshot")
    assert run.result["ota"] == "ESP_OK"
    assert run.event_names == [name for name in INSTALLED if name != "GET_IMG_DESC"]
    assert run.result["boot"] == "ota_1" and boot_label(port_check.flash_path) == "ota_1"
    assert staged(port_check.flash_path, len(IMAGE)) == IMAGE
    assert [r.status for r in server.requests_for(artifact)] == [302, 302, 200]


def test_https_with_the_servers_ca(port_check: PortCheck, tmp_path: Path) -> None:
    with FirmwareServer(tls=True) as server:
        ca = tmp_path / "ca.pem"
        ca.write_text(server.ca_pem)
        run = run_ota(port_check, server.add(IMAGE).url, "api=oneshot", f"cert={ca}")
    assert run.result["ota"] == "ESP_OK"
    assert not run.logged("Continuing with insecure option")  # a CA was given: no ALLOW_HTTP warning
    assert boot_label(port_check.flash_path) == "ota_1"


# --- partial download ---------------------------------------------------------------------------------------


def test_partial_download_asks_for_max_http_request_size_bytes_at_a_time(
        port_check: PortCheck, server: FirmwareServer) -> None:
    size = 8192
    artifact = server.add(IMAGE)
    run = run_ota(port_check, artifact.url, "partial=1", f"max_req={size}")
    assert (run.result["ota_finish"], run.result["complete"]) == ("ESP_OK", "1")
    assert run.result["image_size"] == str(len(IMAGE))  # from the HEAD's Content-Length
    requests = server.requests_for(artifact)
    assert (requests[0].method, requests[0].status) == ("HEAD", 200)
    starts = range(0, len(IMAGE), size)
    # ESP-IDF: "bytes=<from>-<to>" while more than one request is left, then "bytes=<from>-"
    wanted = [f"bytes={s}-{s + size - 1}" for s in starts[:-1]] + [f"bytes={starts[-1]}-"]
    assert [r.range for r in requests[1:]] == wanted
    assert all((r.method, r.status) == ("GET", 206) for r in requests[1:])
    assert sum(r.bytes_sent for r in requests) == len(IMAGE)
    assert staged(port_check.flash_path, len(IMAGE)) == IMAGE
    assert boot_label(port_check.flash_path) == "ota_1"


def test_partial_download_of_an_image_within_one_request_sends_no_range(
        port_check: PortCheck, server: FirmwareServer) -> None:
    artifact = server.add(IMAGE)
    run = run_ota(port_check, artifact.url, "partial=1", f"max_req={len(IMAGE)}")
    assert run.result["ota_finish"] == "ESP_OK"
    assert [(r.method, r.range, r.status) for r in server.requests_for(artifact)] == [
        ("HEAD", None, 200), ("GET", None, 200)]


# --- downloads that must not install -----------------------------------------------------------------------


@pytest.mark.parametrize(("faults", "complete"), [
    # the connection is cut after 20000 of the bytes Content-Length announced: the read fails
    (FaultPlan(close_after_bytes=20_000), "0"),
    # the file itself is short: Content-Length matches, only the image check can tell
    (FaultPlan(truncate_to=20_000), "1"),
], ids=["cut", "short_file"])
def test_a_truncated_download_does_not_switch_the_boot_partition(
        port_check: PortCheck, server: FirmwareServer, faults: FaultPlan, complete: str) -> None:
    run = run_ota(port_check, server.add(IMAGE, faults=faults).url)
    result = run.result
    assert (result["len_read"], result["complete"]) == ("20000", complete)
    assert result["perform"] == ("ESP_FAIL" if complete == "0" else "ESP_OK")
    assert result["ota_finish"] == "ESP_ERR_OTA_VALIDATE_FAILED"
    assert run.event_names[-1] == "FINISH"
    assert_not_installed(port_check, run)


def test_a_cut_download_is_resumed_from_the_bytes_written(port_check: PortCheck, server: FirmwareServer) -> None:
    """ota_resumption: the app gives esp_https_ota_get_image_len_read() of the aborted attempt as
    ota_image_bytes_written; the next attempt asks for the rest and finishes the same image."""
    artifact = server.add(IMAGE, faults=FaultPlan(close_after_bytes=20_000, close_first_requests=1))
    first = run_ota(port_check, artifact.url, "end=abort")
    assert (first.result["len_read"], first.result["ota_abort"]) == ("20000", "ESP_OK")
    assert first.event_names[-1] == "ABORT"
    second = run_ota(port_check, artifact.url, "resume=20000")
    assert (second.result["ota_finish"], second.result["status_code"]) == ("ESP_OK", "206")
    assert second.written[-1] == len(IMAGE)
    assert [r.range for r in server.requests_for(artifact)] == [None, "bytes=20000-"]
    assert staged(port_check.flash_path, len(IMAGE)) == IMAGE
    assert boot_label(port_check.flash_path) == "ota_1"


@pytest.mark.parametrize(("options", "line"), [
    ((), "esp_https_ota: File not found(404)"),
    (("partial=1",), "esp_https_ota: Received incorrect http status 404"),  # the HEAD
], ids=["get", "partial_head"])
def test_a_404_fails_at_begin(port_check: PortCheck, server: FirmwareServer, options: tuple[str, ...],
                              line: str) -> None:
    run = run_ota(port_check, f"{server.base_url}/fw/none/fw.bin", *options)
    assert (run.result["ota_begin"], run.result["handle_null"]) == ("ESP_FAIL", "1")
    assert run.event_names == ["START"]
    assert run.logged(line)
    assert_not_installed(port_check, run)


@pytest.mark.parametrize("api", ["steps", "oneshot"])
def test_a_corrupt_image_fails_at_finish(port_check: PortCheck, server: FirmwareServer, api: str) -> None:
    artifact = server.add(IMAGE, faults=FaultPlan(corrupt_offsets=(30_000,)))  # in the payload segment
    run = run_ota(port_check, artifact.url, f"api={api}")
    key = "ota_finish" if api == "steps" else "ota"
    assert run.result[key] == "ESP_ERR_OTA_VALIDATE_FAILED"
    assert run.written[-1] == len(IMAGE)  # all of it was written: only the image check refuses it
    assert run.logged("esp_ota_ops: New image failed verification")
    assert_not_installed(port_check, run)


def test_an_image_for_another_chip_is_refused_before_anything_is_written(
        port_check: PortCheck, server: FirmwareServer) -> None:
    run = run_ota(port_check, server.add(set_chip_id(IMAGE, CHIP_ID_ESP32)).url, "api=oneshot")
    assert run.result["ota"] == "ESP_ERR_INVALID_VERSION"
    assert run.event_names == ["START", "CONNECTED", "VERIFY_CHIP_ID", "ABORT"]
    assert run.events[2]["chip_id"] == str(CHIP_ID_ESP32)
    assert run.logged(f"esp_https_ota: Mismatch chip id, expected {CHIP_ID_VIRTUAL}, found {CHIP_ID_ESP32}")
    assert_not_installed(port_check, run)


def test_an_image_for_a_later_chip_revision_is_refused(port_check: PortCheck, server: FirmwareServer) -> None:
    """The virtual board is an ESP32 v3.0; an image needing v3.1 fails bootloader_common's check."""
    image = AppImage.parse(IMAGE)
    image.min_chip_rev, image.min_chip_rev_full = 3, 301
    run = run_ota(port_check, server.add(image.to_bytes()).url)
    assert run.result["perform"] == "ESP_ERR_INVALID_VERSION" and run.result["perform_calls"] == "1"
    assert run.result["ota_finish"] == "ESP_ERR_INVALID_ARG"  # esp_ota_end() of an update with nothing written
    assert run.events[-2:] == [{"ota_event": "VERIFY_CHIP_REVISION", "min_chip_rev_full": "301"},
                               {"ota_event": "FINISH"}]
    assert run.logged("boot_comm: chip revision check failed. Required >= v3.1, found v3.0.")
    assert not run.written
    assert_not_installed(port_check, run)
