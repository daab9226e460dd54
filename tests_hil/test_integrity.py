"""Integrity.

B5-B10: bad images are refused with the right reason; the device stays on v1, up.

Every refusal is checked the same way: the outcome event names the reason, there is no reboot (no
ROM banner on the serial console), and the device still answers a status command from 1.0.0 in ota_0.
"""

import hashlib
import random

import pytest

from harness.formats import app_image
from harness.fwserver import FaultPlan

SLOT_SIZE = 0x1B0000  # ota_0 / ota_1 in device/partitions.csv


def _bad_image(kind: str, good: bytes) -> bytes:
    if kind == "truncated":  # B5: the first 64 KB only
        return app_image.truncate(good, 64 * 1024)
    if kind == "truncated_by_one":  # the appended SHA-256 is one byte short
        # Past the download the slot reads as erased flash (0xFF), on a chip too: an image whose hash ends in
        # 0xFF bytes (1 in 256 builds) is whole in flash without them. Short by one byte that is not 0xFF.
        return app_image.truncate(good, len(good.rstrip(b"\xff")) - 1)
    if kind == "truncated_header":  # B6: under the 288 bytes of header + descriptor
        return app_image.truncate(good, 180)
    if kind == "random":  # B7: random bytes (first byte not the 0xE9 magic, so never a "valid" header)
        return b"\x5a" + random.Random(7).randbytes(64 * 1024)
    if kind == "one_byte":  # B8
        return b"\xe9"
    if kind == "not_an_image":
        return b"<html>404</html>" * 100
    if kind == "corrupt_middle":  # one byte flipped: checksum and hash no longer match
        return app_image.corrupt(good, [len(good) // 2])
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated", "truncated_by_one", "truncated_header", "random", "one_byte",
                                  "not_an_image", "corrupt_middle"])
def test_bad_image_is_refused(ota, fw_server, firmware, kind: str) -> None:
    """B5-B8: a truncated, random, one-byte, non-image or corrupted download is refused by esp_ota_end
    (or the header check before it): `failed`/`invalid_image`, v1 kept."""
    artifact = fw_server.add(_bad_image(kind, firmware.image(version="2.0.0")))
    since = ota.start(f"bad-{kind}", artifact.url)
    ota.expect_outcome(f"bad-{kind}", "failed", "invalid_image", since)
    ota.assert_healthy_on_base(since)


def _running_chip_id(firmware) -> int:
    return app_image.verify_image(firmware.image(), None).chip_id


def test_wrong_chip_is_refused(ota, fw_server, firmware) -> None:
    """B9: an image for another chip id is `failed`/`wrong_chip`: an ESP32 image on the virtual board,
    a virtual one on a chip."""
    running = _running_chip_id(firmware)
    other = app_image.CHIP_ID_VIRTUAL if running == app_image.CHIP_ID_ESP32 else app_image.CHIP_ID_ESP32
    artifact = fw_server.add(app_image.set_chip_id(firmware.image(version="2.0.0"), other))
    since = ota.start("chip", artifact.url)
    ota.expect_outcome("chip", "failed", "wrong_chip", since)
    ota.assert_healthy_on_base(since)


@pytest.mark.parametrize(("delivery", "state"), [
    ("content_length", "rejected"),  # the length is known from the response headers
    ("chunked_with_size", "rejected"),  # no Content-Length, but the command's size says it
    ("chunked", "failed"),  # nothing tells the length: refused once the slot is full
])
def test_image_larger_than_the_slot_is_refused(ota, fw_server, firmware, delivery: str, state: str) -> None:
    """B10: `too_large`: rejected before any erase when the length is known (Content-Length or the
    command's size), failed when the slot fills otherwise.

    The image is well-formed, for this chip and newer, but 4 KB over the slot. Where its length is known
    it is rejected before esp_ota_begin erases anything."""
    payload = random.Random(10).randbytes(SLOT_SIZE + 4096)
    big = app_image.set_chip_id(app_image.build_virtual_image(payload, version="9.0.0", project_name="oversized"),
                             _running_chip_id(firmware))
    artifact = fw_server.add(big, faults=FaultPlan(chunked=delivery != "content_length"))
    fields = {"size": len(big)} if delivery == "chunked_with_size" else {}
    since = ota.start(f"big-{delivery}", artifact.url, **fields)
    ota.expect_outcome(f"big-{delivery}", state, "too_large", since)
    ota.assert_healthy_on_base(since)


def _tampered(good: bytes) -> bytes:
    """A different image that is itself well-formed (resealed): only the command's SHA-256 can tell."""
    return app_image.reseal(app_image.corrupt(good, [len(good) // 2]))


@pytest.mark.parametrize("case", ["other_data", "tampered_valid_image", "corrupted_in_transit"])
def test_sha256_mismatch_is_refused(ota, fw_server, firmware, case: str) -> None:
    """The command's SHA-256 is checked before the boot partition is switched, even for a well-formed
    image: `failed`/`sha256_mismatch`.

    The hash is checked before esp_ota_end: the data may be other bytes, a valid image resealed after a
    change, or the right image corrupted on the way."""
    good = firmware.image(version="2.0.0")
    if case == "other_data":
        artifact, sha = fw_server.add(good), hashlib.sha256(b"something else").hexdigest()
    elif case == "tampered_valid_image":
        artifact, sha = fw_server.add(_tampered(good)), hashlib.sha256(good).hexdigest()
    else:  # the server flips a byte; the artifact keeps the sha256 of the original, as a manifest would
        artifact = fw_server.add(good, faults=FaultPlan(corrupt_offsets=(len(good) // 3,)))
        sha = artifact.sha256
    since = ota.start(f"sha-{case}", artifact.url, sha256=sha)
    ota.expect_outcome(f"sha-{case}", "failed", "sha256_mismatch", since)
    ota.assert_healthy_on_base(since)


def test_matching_sha256_and_size_install(ota, fw_server, firmware) -> None:
    """The positive control for the SHA-256 and size checks: the command's `sha256` (in upper-case hex)
    and `size` match, and the image installs."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    status = ota.install("sha-ok", artifact.url, "2.0.0", sha256=artifact.sha256.upper(), size=artifact.size)
    assert status["partition"] == "ota_1"


@pytest.mark.parametrize("delta", [1, -1])
def test_size_mismatch_is_refused(ota, fw_server, firmware, delta: int) -> None:
    """The command's `size` is enforced: a download one byte longer or shorter than it is
    `failed`/`size_mismatch`."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    since = ota.start("size", artifact.url, size=artifact.size + delta)
    ota.expect_outcome("size", "failed", "size_mismatch", since)
    ota.assert_healthy_on_base(since)
