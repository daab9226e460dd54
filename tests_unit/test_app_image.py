"""ESP app image format: build, parse, verify, patch, damage; checked against the real esptool."""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from esptool.bin_image import ELFSection, ESP32FirmwareImage, LoadFirmwareImage

from harness.formats import app_image
from harness.formats.app_image import (
    APP_DESC_MAGIC,
    CHIP_ID_ESP32,
    CHIP_ID_VIRTUAL,
    AppDescriptor,
    AppImage,
    ImageError,
    Segment,
)

EXE = bytes(range(256)) * 4 + b"ELF-tail"  # 1032 bytes; not special, just deterministic
ODD_EXE = EXE + b"xyz"  # needs 1 byte of alignment padding


@pytest.fixture
def image() -> bytes:
    return app_image.build_virtual_image(EXE, "1.2.3", "ota-demo")


def _reason(data: bytes, chip: int | None = CHIP_ID_VIRTUAL, **kw: int) -> str:
    with pytest.raises(ImageError) as err:
        app_image.verify_image(data, chip, **kw)
    return err.value.reason


def _esptool_image(descriptor: AppDescriptor) -> bytes:
    """An image written by esptool itself, laid out like an IDF app (with MMU padding segment)."""
    img = ESP32FirmwareImage()
    img.entrypoint = 0x40080400
    img.flash_mode = 2
    img.flash_size_freq = 0x20
    img.segments = [
        ELFSection(b".flash.appdesc", 0x3F400020, descriptor.to_bytes() + b"rodata" * 20, 0),
        ELFSection(b".dram0.data", 0x3FFB0000, b"\x11" * 400, 0),
        ELFSection(b".iram0.text", 0x40080000, b"\x22" * 1000, 0),
        ELFSection(b".flash.text", 0x400D0020, b"\x33" * 5000, 0),
    ]
    return img.save(None)


# ------------------------------------------------------------------------------------ layout


def test_virtual_image_layout(image: bytes) -> None:
    assert image[0] == 0xE9
    assert image[1] == 2  # segment count
    assert image[2] == 2  # DIO
    assert image[3] == 0x20  # 4 MB, 40 MHz
    assert struct.unpack_from("<H", image, 12)[0] == CHIP_ID_VIRTUAL
    assert image[23] == 1  # hash appended
    assert struct.unpack_from("<II", image, 24) == (0x3F400020, 256)
    assert struct.unpack_from("<I", image, 0x20)[0] == APP_DESC_MAGIC
    assert image[0x30:0x36] == b"1.2.3\0"  # the firmware reads the version here
    assert image[0x50:0x59] == b"ota-demo\0"
    assert image[0x90:0x97] == b"v5.5.4\0"
    assert image[0xB0:0xD0] == hashlib.sha256(EXE).digest()
    assert struct.unpack_from("<II", image, 0x120) == (0x400D0020, len(EXE))
    assert len(image) % 16 == 0  # 16-aligned checksum block + 32-byte hash
    assert image[-32:] == hashlib.sha256(image[:-32]).digest()


def test_descriptor_field_offsets() -> None:
    desc = AppDescriptor(
        version="v1", project_name="p", time="12:34:56", date="Nov 22 2025", idf_ver="v5.5.4",
        secure_version=7, app_elf_sha256=bytes(range(32)),
    )
    raw = desc.to_bytes()
    assert len(raw) == 256
    # Offsets inside the descriptor; add 0x20 for the file offset.
    assert struct.unpack_from("<II", raw, 0) == (APP_DESC_MAGIC, 7)
    assert raw[0x10:0x13] == b"v1\0"
    assert raw[0x30:0x32] == b"p\0"
    assert raw[0x50:0x59] == b"12:34:56\0"
    assert raw[0x60:0x6C] == b"Nov 22 2025\0"
    assert raw[0x70:0x77] == b"v5.5.4\0"
    assert raw[0x90:0xB0] == bytes(range(32))
    assert AppDescriptor.from_bytes(raw) == desc


def test_descriptor_rejects_long_strings_and_bad_magic() -> None:
    AppDescriptor("x" * 31, "p").to_bytes()
    with pytest.raises(ValueError):
        AppDescriptor("x" * 32, "p").to_bytes()
    with pytest.raises(ValueError):
        AppDescriptor("1", "p", time="x" * 16).to_bytes()
    with pytest.raises(ImageError) as err:
        AppDescriptor.from_bytes(b"\xff" * 256)
    assert err.value.reason == "no_app_desc"


def test_image_error_reason_is_checked() -> None:
    with pytest.raises(ValueError):
        ImageError("nonsense", "x")


# ------------------------------------------------------------------------- build / parse round trip


def test_build_parse_round_trip(image: bytes) -> None:
    parsed = AppImage.parse(image)
    assert parsed.chip_id == CHIP_ID_VIRTUAL
    assert parsed.entry_addr == app_image.VIRTUAL_IROM_ADDR
    assert [s.load_addr for s in parsed.segments] == [0x3F400020, 0x400D0020]
    assert parsed.descriptor.version == "1.2.3"
    assert parsed.descriptor.project_name == "ota-demo"
    assert (parsed.spi_mode, parsed.spi_speed, parsed.spi_size) == (2, 0, 2)
    assert parsed.to_bytes() == image


def test_app_image_with_descriptor_and_no_hash() -> None:
    app = AppImage(CHIP_ID_ESP32, 0x40080400, [Segment(0x3F400020, AppDescriptor("a", "b").to_bytes())])
    app2 = app.with_descriptor(AppDescriptor("b", "b"))
    assert app2.descriptor.version == "b"
    unhashed = AppImage(CHIP_ID_ESP32, 0x40080400, app.segments, hash_appended=False).to_bytes()
    info = app_image.verify_image(unhashed, CHIP_ID_ESP32)
    assert info.sha256 is None and info.length == len(unhashed)
    # Without the hash only segment data is protected: a header change goes unnoticed, as in IDF.
    app_image.verify_image(app_image.corrupt(unhashed, [4]), CHIP_ID_ESP32)
    assert _reason(app_image.corrupt(unhashed, [0x40]), CHIP_ID_ESP32) == "checksum"


def test_segment_data_is_padded_to_four_bytes() -> None:
    raw = AppImage(CHIP_ID_ESP32, 0, [Segment(0x3FFB0000, b"abcde")], hash_appended=False).to_bytes()
    assert struct.unpack_from("<II", raw, 24) == (0x3FFB0000, 8)
    assert raw[32:40] == b"abcde\0\0\0"


@pytest.mark.parametrize("extra", range(5))
def test_virtual_payload_round_trip(extra: int) -> None:
    exe = EXE + b"\0" * extra  # trailing zeros must survive the 4-byte padding
    assert app_image.virtual_payload(app_image.build_virtual_image(exe, "1", "p")) == exe


def test_verify_returns_info_and_ignores_slot_tail(image: bytes) -> None:
    slot = image + b"\xff" * 0x3000
    info = app_image.verify_image(slot, CHIP_ID_VIRTUAL)
    assert info.length == len(image)
    assert info.chip_id == CHIP_ID_VIRTUAL
    assert info.segment_offsets == [0x20, 0x128]
    assert info.segments[1].data == EXE
    assert info.descriptor is not None and info.descriptor.version == "1.2.3"
    assert info.sha256 == image[-32:]
    app_image.verify_image(slot, None)  # no chip check asked for


# ------------------------------------------------------------------------------ bad images


def test_flipped_segment_byte_fails_checksum(image: bytes) -> None:
    with pytest.raises(ImageError, match=r"^Checksum failed\. Calculated 0x[0-9a-f]+ read 0x[0-9a-f]+$") as err:
        app_image.verify_image(app_image.corrupt(image, [0x200]), CHIP_ID_VIRTUAL)
    assert err.value.reason == "checksum"


@pytest.mark.parametrize(
    "offsets",
    [[4], [0x200, 0x201], [-1], [-32]],
    ids=["header-not-in-checksum", "xor-cancels-out", "hash-last-byte", "hash-first-byte"],
)
def test_changes_the_checksum_misses_fail_sha256(image: bytes, offsets: list[int]) -> None:
    damaged = app_image.corrupt(image, [o % len(image) for o in offsets])
    with pytest.raises(ImageError, match="^Image hash failed - image is corrupt$") as err:
        app_image.verify_image(damaged, CHIP_ID_VIRTUAL)
    assert err.value.reason == "sha256"


@pytest.mark.parametrize("cut", [1, 16, 31, 0x60, 0x124, 0x300, -17, -1])
def test_truncation_is_detected(image: bytes, cut: int) -> None:
    keep = cut if cut > 0 else len(image) + cut
    assert _reason(app_image.truncate(image, keep)) == "truncated"


def test_truncated_download_in_an_erased_slot_fails(image: bytes) -> None:
    # In flash the missing tail reads as 0xFF, like on a chip after an interrupted OTA.
    slot = app_image.truncate(image, len(image) - 200) + b"\xff" * 0x1000
    assert _reason(slot) in {"checksum", "sha256"}


def test_invalid_magic_uses_idf_wording(image: bytes) -> None:
    with pytest.raises(ImageError) as err:
        app_image.verify_image(b"\xff" * 0x1000, CHIP_ID_VIRTUAL, offset=0x20000)
    assert err.value.reason == "invalid_magic"
    assert str(err.value) == "image at 0x20000 has invalid magic byte (nothing flashed here?)"
    assert _reason(app_image.corrupt(image, [0])) == "invalid_magic"
    assert _reason(b"") == "invalid_magic"


def test_bad_segment_table(image: bytes) -> None:
    too_many = bytearray(image)
    too_many[1] = 17
    with pytest.raises(ImageError, match="segment count 17 exceeds max 16") as err:
        app_image.verify_image(bytes(too_many), CHIP_ID_VIRTUAL)
    assert err.value.reason == "bad_segment"
    unaligned = bytearray(image)
    struct.pack_into("<I", unaligned, 28, 255)
    with pytest.raises(ImageError, match="^invalid segment length 0xff$"):
        app_image.verify_image(bytes(unaligned), CHIP_ID_VIRTUAL)


def test_wrong_chip(image: bytes) -> None:
    with pytest.raises(ImageError, match="^mismatch chip ID, expected 0, found 61680$") as err:
        app_image.verify_image(image, CHIP_ID_ESP32)
    assert err.value.reason == "wrong_chip"
    esp32 = app_image.set_chip_id(image, CHIP_ID_ESP32)
    app_image.verify_image(esp32, CHIP_ID_ESP32)  # resealed: only the chip is wrong
    with pytest.raises(ImageError, match="^mismatch chip ID, expected 61680, found 0$"):
        app_image.verify_image(esp32, CHIP_ID_VIRTUAL)
    # The chip is checked before the segments, as in esp_image_verify.
    assert _reason(app_image.corrupt(image, [0x200]), CHIP_ID_ESP32) == "wrong_chip"


def test_helpers_validate_arguments(image: bytes) -> None:
    with pytest.raises(ValueError):
        app_image.truncate(image, len(image) + 1)
    with pytest.raises(ValueError):
        app_image.set_chip_id(image, 0x10000)
    assert app_image.corrupt(image, [5], mask=0x01)[5] == image[5] ^ 0x01


# --------------------------------------------------------------------------------- patching


def test_patch_version_round_trip(image: bytes) -> None:
    slot = image + b"\xff" * 64
    patched = app_image.patch_version(slot, "2.0.0-test")
    assert len(patched) == len(slot) and patched[len(image):] == slot[len(image):]
    info = app_image.verify_image(patched, CHIP_ID_VIRTUAL)
    assert info.descriptor is not None and info.descriptor.version == "2.0.0-test"
    assert app_image.read_descriptor(patched).project_name == "ota-demo"
    changed = [i for i in range(len(image)) if patched[i] != image[i]]
    checksum_at = len(image) - 33
    assert all(0x30 <= i < 0x50 or i == checksum_at or i >= len(image) - 32 for i in changed)
    assert app_image.virtual_payload(patched) == EXE
    assert app_image.read_descriptor(app_image.patch_version(patched, "1.2.3")) == app_image.read_descriptor(image)
    assert app_image.patch_version(patched, "1.2.3") == slot


def test_patch_version_limits(image: bytes) -> None:
    assert app_image.read_descriptor(app_image.patch_version(image, "v" * 31)).version == "v" * 31
    with pytest.raises(ValueError):
        app_image.patch_version(image, "v" * 32)
    no_desc = AppImage(CHIP_ID_ESP32, 0, [Segment(0x3FFB0000, b"\0" * 300)]).to_bytes()
    with pytest.raises(ImageError) as err:
        app_image.patch_version(no_desc, "2")
    assert err.value.reason == "no_app_desc"
    with pytest.raises(ImageError):
        app_image.read_descriptor(b"\xff" * 0x1000)


def test_reseal_repairs_a_deliberate_edit(image: bytes) -> None:
    # The IDF anti-rollback example zeroes secure_version at file offset 36 without fixing anything.
    bumped = app_image.corrupt(app_image.build_virtual_image(EXE, "1", "p", secure_version=2), [0x24], mask=0x02)
    assert _reason(bumped) == "checksum"
    assert app_image.read_descriptor(app_image.reseal(bumped)).secure_version == 0
    app_image.verify_image(app_image.reseal(bumped), CHIP_ID_VIRTUAL)


# ---------------------------------------------------------------------------- real esptool


def _esptool_image_info(path: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "esptool", "--chip", "esp32", "image-info", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("patched", [False, True], ids=["built", "patched"])
def test_esptool_image_info_accepts_our_image(tmp_path: Path, image: bytes, patched: bool) -> None:
    data = app_image.patch_version(image, "2.0.0-test") if patched else image
    version = "2.0.0-test" if patched else "1.2.3"
    path = tmp_path / "app.bin"
    path.write_bytes(data)
    out = _esptool_image_info(path)
    assert re.search(r"^Checksum: 0x[0-9a-f]{2} \(valid\)$", out, re.MULTILINE), out
    assert f"Validation hash: {data[-32:].hex()} (valid)" in out, out
    assert re.search(rf"^App version: {re.escape(version)}$", out, re.MULTILINE), out
    assert "Project name: ota-demo" in out
    assert "ESP-IDF: v5.5.4" in out
    assert "Chip ID: 61680 (Unknown ID)" in out
    assert re.search(r"^\s+0\s+0x00100\s+0x3f400020\s+0x00000018\s+DROM$", out, re.MULTILINE), out
    assert re.search(r"^\s+1\s+0x00408\s+0x400d0020\s+0x00000120\s+IROM$", out, re.MULTILINE), out


def test_esptool_image_info_flags_our_corruption(tmp_path: Path, image: bytes) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(app_image.corrupt(image, [0x200]))
    out = _esptool_image_info(path)
    assert re.search(r"^Checksum: 0x[0-9a-f]{2} \(invalid - calculated 0x[0-9a-f]{2}\)$", out, re.MULTILINE), out
    assert re.search(r"^Validation hash: [0-9a-f]{64} \(invalid\)$", out, re.MULTILINE), out


def test_esptool_parser_reads_our_image(tmp_path: Path) -> None:
    data = app_image.build_virtual_image(ODD_EXE, "3.4.5", "ota-demo")
    path = tmp_path / "app.bin"
    path.write_bytes(data)
    img = LoadFirmwareImage("esp32", str(path))
    assert [(s.addr, len(s.data)) for s in img.segments] == [(0x3F400020, 256), (0x400D0020, len(ODD_EXE) + 1)]
    assert img.segments[1].data[: len(ODD_EXE)] == ODD_EXE
    assert img.chip_id == CHIP_ID_VIRTUAL
    assert img.entrypoint == app_image.VIRTUAL_IROM_ADDR
    assert (img.flash_mode, img.flash_size_freq) == (2, 0x20)
    assert img.checksum == img.calculate_checksum()
    assert img.append_digest and img.stored_digest == img.calc_digest
    assert img.data_length == len(data) - 32


def test_we_read_and_patch_an_image_esptool_wrote() -> None:
    original = _esptool_image(AppDescriptor("1.0.0", "from-esptool"))
    info = app_image.verify_image(original, CHIP_ID_ESP32)
    assert info.length == len(original)
    assert [s.load_addr for s in info.segments][-2:] == [0, 0x400D0020]  # esptool's MMU padding segment
    assert info.segment_offsets[-1] % 0x10000 == 0x20  # flash segment lands on its MMU page offset
    assert AppImage.parse(original).to_bytes() == original
    patched = app_image.patch_version(original, "1.0.1")
    img = LoadFirmwareImage("esp32", patched)
    assert img.checksum == img.calculate_checksum()
    assert img.stored_digest == img.calc_digest
    assert app_image.read_descriptor(patched).version == "1.0.1"


@pytest.mark.parametrize(("encoding", "name", "magic"), [
    ("gzip", None, b"\x1f\x8b"), ("gzip", "fw.bin", b"\x1f\x8b"), ("zlib", None, b"\x78\xda"),
])
def test_compress_writes_real_streams_that_decompress_back(encoding: str, name: str | None, magic: bytes) -> None:
    """compress() writes what gzip/zlib readers take (the same bytes every time), and decompress() inverts it;
    a plain image starts with 0xE9 and is none of them."""
    image = app_image.build_virtual_image(bytes(range(256)) * 64, version="1.0.0", project_name="z")
    stream = app_image.compress(image, encoding, name=name)
    assert stream[:2] == magic and len(stream) < len(image) // 4
    assert stream == app_image.compress(image, encoding, name=name)
    assert app_image.decompress(stream) == image and app_image.decompress(image) == image
    if name is not None:
        assert stream[3] & 0x08 and stream[10:10 + len(name) + 1] == name.encode() + b"\0"
    with pytest.raises(ValueError, match="encoding"):
        app_image.compress(image, "lz4")
