"""Integrity (B5-B10): bad images are refused with the right reason; the device stays on v1, up."""

import hashlib
import os
import random

import pytest

from harness import images

SLOT_SIZE = 0x1B0000  # ota_0 / ota_1 in device/partitions.csv


def _bad_image(kind: str, good: bytes) -> bytes:
    if kind == "truncated":  # B5
        return images.truncate(good, len(good) // 2)
    if kind == "truncated_header":  # B6: under the 288 bytes of header + descriptor
        return images.truncate(good, 200)
    if kind == "random":  # B7: random bytes (first byte not the 0xE9 magic, so never a "valid" header)
        return b"\x5a" + random.Random(7).randbytes(64 * 1024)
    if kind == "one_byte":  # B8
        return b"\xe9"
    if kind == "not_an_image":
        return b"<html>404</html>" * 100
    if kind == "corrupt_middle":  # checksum and hash no longer match
        return images.corrupt(good, [len(good) // 2])
    raise ValueError(kind)


@pytest.mark.parametrize(("kind", "reason"), [
    ("truncated", "invalid_image"),
    ("truncated_header", "invalid_image"),
    ("random", "invalid_image"),
    ("one_byte", "invalid_image"),
    ("not_an_image", "invalid_image"),
    ("corrupt_middle", "invalid_image"),
])
def test_bad_image_is_refused(ota, fw_server, firmware, kind: str, reason: str) -> None:
    artifact = fw_server.add(_bad_image(kind, firmware.image(version="2.0.0")))
    since = ota.start(f"bad-{kind}", artifact.url)
    ota.expect_outcome(f"bad-{kind}", "failed", reason, since)
    ota.assert_healthy_on_base(since)


def test_wrong_chip_is_refused(ota, fw_server, firmware) -> None:
    """B9: an image built for a real ESP32 on the virtual board (and the reverse on a chip)."""
    running = images.verify_image(firmware.image(), None).chip_id
    other = images.CHIP_ID_VIRTUAL if running == images.CHIP_ID_ESP32 else images.CHIP_ID_ESP32
    artifact = fw_server.add(images.set_chip_id(firmware.image(version="2.0.0"), other))
    since = ota.start("chip", artifact.url)
    ota.expect_outcome("chip", "failed", "wrong_chip", since)
    ota.assert_healthy_on_base(since)


def test_image_larger_than_the_slot_is_rejected_before_erasing(ota, fw_server, firmware) -> None:
    """B10: Content-Length over the slot size: refused from the header, nothing erased."""
    big = images.build_virtual_image(os.urandom(SLOT_SIZE + 4096), version="9.0.0", project_name="big")
    artifact = fw_server.add(big)
    since = ota.start("big", artifact.url)
    ota.expect_outcome("big", "rejected", "too_large", since)
    ota.assert_healthy_on_base(since)


def test_sha256_mismatch_is_refused(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("sha", artifact.url, sha256=hashlib.sha256(b"something else").hexdigest())
    ota.expect_outcome("sha", "failed", "sha256_mismatch", since)
    ota.assert_healthy_on_base(since)


def test_matching_sha256_and_size_install(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    status = ota.install("sha-ok", artifact.url, "2.0.0", sha256=artifact.sha256, size=artifact.size)
    assert status["partition"] == "ota_1"


def test_size_mismatch_is_refused(ota, fw_server, firmware) -> None:
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("size", artifact.url, size=artifact.size + 1)
    ota.expect_outcome("size", "failed", "size_mismatch", since)
    ota.assert_healthy_on_base(since)
