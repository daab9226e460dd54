"""ESP-IDF application image format: build, parse, verify, patch and damage app images.

Layout (``esp_app_format.h`` / ``esp_app_desc.h``, ESP-IDF v5.5.4)::

    esp_image_header_t (24 B)
    N x (esp_image_segment_header_t {u32 load_addr; u32 data_len} + data)
    zero padding + XOR checksum byte, ending on a 16-byte boundary
    SHA-256 of everything above (32 B), only when hash_appended (header byte 23) is set

The first segment starts with the 256-byte ``esp_app_desc_t`` at file offset 0x20, so the firmware
(and our C shim) can read the version from flash at partition offset + 0x30 without parsing.

Virtual images use the same format with our own chip id, ``CHIP_ID_VIRTUAL``; segment 1 holds the
Linux host executable that the virtual board runs instead of Xtensa code.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, field, replace

from harness.formats import signing

ESP_IMAGE_MAGIC = 0xE9
APP_DESC_MAGIC = 0xABCD5432
CHIP_ID_ESP32 = 0
# Not used by any Espressif chip, so the real and the virtual board each refuse the other's images.
CHIP_ID_VIRTUAL = 0xF0F0
APP_DESC_OFFSET = 0x20  # sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t)
APP_DESC_SIZE = 256
APP_VERSION_OFFSET = APP_DESC_OFFSET + 16  # 0x30, read by the firmware straight from flash

HEADER_SIZE = 24
SEGMENT_HEADER_SIZE = 8
HASH_SIZE = 32
MAX_SEGMENTS = 16  # ESP_IMAGE_MAX_SEGMENTS
MAX_SEGMENT_LEN = 0x1000000  # ESP_IMAGE_MAX_FLASH_ADDR_SIZE on ESP32 (24-bit flash addresses)
CHECKSUM_SEED = 0xEF  # ESP_ROM_CHECKSUM_INITIAL

# Header defaults of a default `idf.py build` for a 4 MB ESP32 module.
SPI_MODE_DIO = 2
SPI_SPEED_40M = 0
SPI_SIZE_4MB = 2
WP_PIN_DISABLED = 0xEE
ESP32_MAX_CHIP_REV_FULL = 399  # CONFIG_ESP32_REV_MAX_FULL

# Load addresses of a virtual image: inside the ESP32 DROM/IROM windows, so esptool labels them.
VIRTUAL_DROM_ADDR = 0x3F400020
VIRTUAL_IROM_ADDR = 0x400D0020

# What `compress` writes and the firmware inflates (docs/protocol.md, "Compressed images").
COMPRESSIONS = ("gzip", "zlib")

IMAGE_ERROR_REASONS = frozenset(
    {"invalid_magic", "truncated", "bad_segment", "checksum", "sha256", "wrong_chip", "no_app_desc"}
)

_HEADER_FMT = "<BBBBIB3sHBHH4sB"
_SEGMENT_FMT = "<II"
# reserv1[0] carries the exact payload length of a virtual image (0 in real IDF images): segment
# data is padded to 4 bytes and the virtual board must get the executable back byte for byte.
_DESC_FMT = "<IIII32s32s16s16s32s32sHHB3s72s"

assert struct.calcsize(_HEADER_FMT) == HEADER_SIZE
assert struct.calcsize(_DESC_FMT) == APP_DESC_SIZE


class ImageError(Exception):
    """An image failed a check; ``reason`` is a stable keyword, the message uses IDF's wording."""

    def __init__(self, reason: str, message: str) -> None:
        if reason not in IMAGE_ERROR_REASONS:
            raise ValueError(f"unknown image error reason {reason!r}")
        super().__init__(message)
        self.reason = reason


def _encode_cstr(value: str, size: int, name: str) -> bytes:
    """Encode a C char[size] field; it must keep a terminating NUL, as IDF static-asserts."""
    raw = value.encode()
    if len(raw) >= size or b"\0" in raw:
        raise ValueError(f"{name} {value!r} must be at most {size - 1} bytes without NUL")
    return raw.ljust(size, b"\0")


def _decode_cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


@dataclass
class AppDescriptor:
    """``esp_app_desc_t``: 256 bytes at the start of the first (DROM) segment."""

    version: str
    project_name: str
    time: str = ""
    date: str = ""
    idf_ver: str = "v5.5.4"
    secure_version: int = 0
    app_elf_sha256: bytes = b"\0" * 32
    min_efuse_blk_rev_full: int = 0
    max_efuse_blk_rev_full: int = 99  # CONFIG_ESP_EFUSE_BLOCK_REV_MAX_FULL on ESP32
    mmu_page_size: int = 16  # log2(64 KB)
    payload_len: int = 0  # our extension in reserv1[0], see _DESC_FMT

    def to_bytes(self) -> bytes:
        if len(self.app_elf_sha256) != 32:
            raise ValueError("app_elf_sha256 must be 32 bytes")
        return struct.pack(
            _DESC_FMT, APP_DESC_MAGIC, self.secure_version, self.payload_len, 0,
            _encode_cstr(self.version, 32, "version"), _encode_cstr(self.project_name, 32, "project_name"),
            _encode_cstr(self.time, 16, "time"), _encode_cstr(self.date, 16, "date"),
            _encode_cstr(self.idf_ver, 32, "idf_ver"), self.app_elf_sha256,
            self.min_efuse_blk_rev_full, self.max_efuse_blk_rev_full, self.mmu_page_size, b"\0" * 3, b"\0" * 72,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AppDescriptor:
        if len(data) < APP_DESC_SIZE:
            raise ImageError("no_app_desc", "Failed to fetch app description header!")
        fields = struct.unpack(_DESC_FMT, bytes(data[:APP_DESC_SIZE]))
        (magic, secure_version, payload_len, _, version, project, time, date, idf_ver, elf_sha,
         min_blk, max_blk, mmu_page_size, _, _) = fields
        if magic != APP_DESC_MAGIC:
            raise ImageError("no_app_desc", "Failed to fetch app description header!")
        version, project, time, date, idf_ver = map(_decode_cstr, (version, project, time, date, idf_ver))
        return cls(version, project, time, date, idf_ver, secure_version, elf_sha, min_blk, max_blk, mmu_page_size,
                   payload_len)


@dataclass
class Segment:
    load_addr: int
    data: bytes


@dataclass
class ImageInfo:
    """What ``verify_image`` found; ``length`` runs from the header to the end of the hash."""

    length: int
    chip_id: int
    segments: list[Segment]
    segment_offsets: list[int]  # file offset of each segment's data (the bootloader's "paddr")
    descriptor: AppDescriptor | None  # None when segment 0 has no esp_app_desc_t
    sha256: bytes | None  # the appended hash, None when hash_appended is 0


@dataclass
class _Layout:
    """Offsets found by walking an image; no checksum or hash has been checked yet."""

    chip_id: int
    hash_appended: bool
    segments: list[tuple[int, int, int]]  # (load_addr, data offset, data length)
    checksum_offset: int
    end: int  # one past the last byte of the image (hash included)


def _xor_fold(data: bytes) -> int:
    """XOR of all bytes. numpy XORs the 8-byte words (0.03 ms for a 600 KB image, where folding it as one big
    int took 1.5 to 3 ms of the test process's CPU on every virtual boot's image check), then the word's bytes
    and the tail."""
    import numpy  # here, not at import: 0.15 s that processes checking no image need not spend

    words = len(data) // 8
    folded = int(numpy.bitwise_xor.reduce(numpy.frombuffer(data, dtype="<u8", count=words))) if words else 0
    value = 0
    for byte in folded.to_bytes(8, "little") + bytes(data[8 * words:]):
        value ^= byte
    return value


def _require(data: bytes, end: int) -> None:
    # A flash slot is read past the image end on a real chip too; only running off our buffer fails.
    if end > len(data):
        raise ImageError("truncated", f"Image length {end} doesn't fit in partition length {len(data)}")


def _walk(data: bytes, offset: int = 0, expected_chip_id: int | None = None) -> _Layout:
    """Check the header and segment table in esp_image_verify's order and return the layout."""
    if len(data) < 1 or data[0] != ESP_IMAGE_MAGIC:
        raise ImageError("invalid_magic", f"image at {offset:#x} has invalid magic byte (nothing flashed here?)")
    _require(data, HEADER_SIZE)
    count = data[1]
    chip_id = struct.unpack_from("<H", data, 12)[0]
    if expected_chip_id is not None and chip_id != expected_chip_id:
        raise ImageError("wrong_chip", f"mismatch chip ID, expected {expected_chip_id}, found {chip_id}")
    if count > MAX_SEGMENTS:
        raise ImageError(
            "bad_segment", f"image at {offset:#x} segment count {count} exceeds max {MAX_SEGMENTS}"
        )
    segments = []
    pos = HEADER_SIZE
    for _ in range(count):
        _require(data, pos + SEGMENT_HEADER_SIZE)
        load_addr, length = struct.unpack_from(_SEGMENT_FMT, data, pos)
        if length % 4 or length >= MAX_SEGMENT_LEN:
            raise ImageError("bad_segment", f"invalid segment length {length:#x}")
        pos += SEGMENT_HEADER_SIZE
        _require(data, pos + length)
        segments.append((load_addr, pos, length))
        pos += length
    checksum_offset = pos | 0xF  # last byte of the 16-byte block after the segments
    hash_appended = data[23] != 0  # IDF tests the byte for non-zero
    end = checksum_offset + 1 + (HASH_SIZE if hash_appended else 0)
    _require(data, end)
    return _Layout(chip_id, hash_appended, segments, checksum_offset, end)


def _calc_checksum(data: bytes, layout: _Layout) -> int:
    checksum = CHECKSUM_SEED
    for _, start, length in layout.segments:
        checksum ^= _xor_fold(data[start:start + length])
    return checksum


def verify_image(data: bytes, expected_chip_id: int | None, *, offset: int = 0) -> ImageInfo:
    """Check an image the way esp_image_verify() does and raise ImageError on the first failure.

    Checks, in IDF's order: magic, chip id (if ``expected_chip_id`` is given), segment count and
    lengths, bounds, XOR checksum, appended SHA-256. Bytes after the image (the rest of a flash slot)
    are ignored. ``offset`` is the flash address, used only in messages. Not checked: the MMU page
    alignment of mapped segments and secure-boot signatures, which a virtual image does not need.
    """
    layout = _walk(data, offset, expected_chip_id)
    calculated = _calc_checksum(data, layout)
    stored = data[layout.checksum_offset]
    if calculated != stored:
        raise ImageError("checksum", f"Checksum failed. Calculated {calculated:#x} read {stored:#x}")
    digest = None
    if layout.hash_appended:
        digest = bytes(data[layout.checksum_offset + 1:layout.end])
        if hashlib.sha256(data[:layout.checksum_offset + 1]).digest() != digest:
            raise ImageError("sha256", "Image hash failed - image is corrupt")
    segments = [Segment(addr, bytes(data[start:start + n])) for addr, start, n in layout.segments]
    return ImageInfo(
        length=layout.end,
        chip_id=layout.chip_id,
        segments=segments,
        segment_offsets=[start for _, start, _ in layout.segments],
        descriptor=_descriptor_or_none(segments),
        sha256=digest,
    )


def _descriptor_or_none(segments: list[Segment]) -> AppDescriptor | None:
    try:
        return AppDescriptor.from_bytes(segments[0].data) if segments else None
    except ImageError:
        return None


@dataclass
class AppImage:
    """An app image as data; ``to_bytes`` seals it with a fresh checksum and SHA-256."""

    chip_id: int
    entry_addr: int
    segments: list[Segment] = field(default_factory=list)
    hash_appended: bool = True
    spi_mode: int = SPI_MODE_DIO
    spi_speed: int = SPI_SPEED_40M  # low nibble of header byte 3
    spi_size: int = SPI_SIZE_4MB  # high nibble of header byte 3
    wp_pin: int = WP_PIN_DISABLED
    spi_pin_drv: bytes = b"\0\0\0"
    min_chip_rev: int = 0
    min_chip_rev_full: int = 0
    max_chip_rev_full: int = ESP32_MAX_CHIP_REV_FULL

    def header_bytes(self) -> bytes:
        if len(self.segments) > MAX_SEGMENTS:
            raise ValueError(f"at most {MAX_SEGMENTS} segments, got {len(self.segments)}")
        return struct.pack(
            _HEADER_FMT, ESP_IMAGE_MAGIC, len(self.segments), self.spi_mode,
            (self.spi_size << 4) | (self.spi_speed & 0xF), self.entry_addr, self.wp_pin, self.spi_pin_drv,
            self.chip_id, self.min_chip_rev, self.min_chip_rev_full, self.max_chip_rev_full, b"\0" * 4,
            1 if self.hash_appended else 0,
        )

    def to_bytes(self) -> bytes:
        out = bytearray(self.header_bytes())
        checksum = CHECKSUM_SEED
        for seg in self.segments:
            # Segment lengths must be a multiple of 4 (IDF reads words); pad like esptool does.
            data = seg.data + b"\0" * (-len(seg.data) % 4)
            if len(data) >= MAX_SEGMENT_LEN:
                raise ValueError(f"segment at {seg.load_addr:#x} is {len(data)} bytes, IDF allows < 16 MB")
            out += struct.pack(_SEGMENT_FMT, seg.load_addr, len(data)) + data
            checksum ^= _xor_fold(data)
        out += b"\0" * ((len(out) | 0xF) - len(out))
        out.append(checksum)
        if self.hash_appended:
            out += hashlib.sha256(out).digest()
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes) -> AppImage:
        """Read the structure only; checksum and hash are not checked (use ``verify_image``)."""
        layout = _walk(data)
        mode, speed_size, entry, wp_pin, drv, chip_id, min_rev, min_full, max_full = struct.unpack_from(
            _HEADER_FMT, data
        )[2:11]
        return cls(
            chip_id=chip_id,
            entry_addr=entry,
            segments=[Segment(addr, bytes(data[start:start + n])) for addr, start, n in layout.segments],
            hash_appended=layout.hash_appended,
            spi_mode=mode,
            spi_speed=speed_size & 0xF,
            spi_size=speed_size >> 4,
            wp_pin=wp_pin,
            spi_pin_drv=drv,
            min_chip_rev=min_rev,
            min_chip_rev_full=min_full,
            max_chip_rev_full=max_full,
        )

    @property
    def descriptor(self) -> AppDescriptor:
        if not self.segments:
            raise ImageError("no_app_desc", "Failed to fetch app description header!")
        return AppDescriptor.from_bytes(self.segments[0].data)

    def with_descriptor(self, descriptor: AppDescriptor) -> AppImage:
        """A copy whose segment 0 starts with ``descriptor`` instead of the current one."""
        _ = self.descriptor  # raises if there is no descriptor to replace
        first = Segment(self.segments[0].load_addr, descriptor.to_bytes() + self.segments[0].data[APP_DESC_SIZE:])
        return replace(self, segments=[first, *self.segments[1:]])


def reseal(data: bytes) -> bytes:
    """Recompute the checksum byte and the appended SHA-256 in place of the stored ones.

    Everything else, including bytes after the image, is kept. Use it after editing segment data
    on purpose; a secure-boot signature after the hash would be invalid afterwards.
    """
    buf = bytearray(data)
    layout = _walk(buf)
    buf[layout.checksum_offset] = _calc_checksum(buf, layout)
    if layout.hash_appended:
        ck = layout.checksum_offset
        buf[ck + 1:ck + 1 + HASH_SIZE] = hashlib.sha256(buf[:ck + 1]).digest()
    return bytes(buf)


def _require_descriptor_in_segment0(data: bytes) -> None:
    layout = _walk(data)
    if not layout.segments or layout.segments[0][2] < APP_DESC_SIZE:
        raise ImageError("no_app_desc", "Failed to fetch app description header!")
    read_descriptor(data)


def read_descriptor(data: bytes) -> AppDescriptor:
    """Read esp_app_desc_t at offset 0x20, as esp_ota_get_partition_description() does.

    Like IDF, only the descriptor magic is checked, not the image header.
    """
    return AppDescriptor.from_bytes(data[APP_DESC_OFFSET:APP_DESC_OFFSET + APP_DESC_SIZE])


def patch_version(data: bytes, version: str) -> bytes:
    """Rewrite the descriptor's version and reseal; raises ValueError above 31 bytes.

    The checksum and hash are recomputed over the whole image, so a corrupt input comes out valid.
    """
    encoded = _encode_cstr(version, 32, "version")
    _require_descriptor_in_segment0(data)
    buf = bytearray(data)
    buf[APP_VERSION_OFFSET:APP_VERSION_OFFSET + 32] = encoded
    return reseal(bytes(buf))


def set_secure_version(data: bytes, secure_version: int) -> bytes:
    """Rewrite the descriptor's secure_version (anti-rollback, a u32 at offset 0x24) and reseal."""
    if not 0 <= secure_version <= 0xFFFFFFFF:
        raise ValueError(f"secure_version {secure_version} does not fit in 32 bits")
    _require_descriptor_in_segment0(data)
    buf = bytearray(data)
    struct.pack_into("<I", buf, APP_DESC_OFFSET + 4, secure_version)
    return reseal(bytes(buf))


def derive_image(image: bytes, version: str | None = None, secure_version: int | None = None,
                 sign_with: signing.SigningKey | None = None) -> bytes:
    """A build's image as a scenario wants it: another version and secure_version (a patched, resealed
    descriptor), then signed with `sign_with` (harness.formats.signing: espsecure's Secure Boot V2 sector),
    in that order, as an idf.py build signs the image it made."""
    if version is not None:
        image = patch_version(image, version)
    if secure_version is not None:
        image = set_secure_version(image, secure_version)
    if sign_with is not None:
        image = signing.sign(image, sign_with)
    return image


def set_chip_id(data: bytes, chip_id: int) -> bytes:
    """Rewrite the header chip id; only the SHA-256 covers the header, the checksum does not."""
    if not 0 <= chip_id <= 0xFFFF:
        raise ValueError(f"chip id {chip_id} does not fit in 16 bits")
    buf = bytearray(data)
    _walk(buf)
    struct.pack_into("<H", buf, 12, chip_id)
    return reseal(bytes(buf))


def build_virtual_image(
    executable: bytes,
    version: str,
    project_name: str,
    idf_ver: str = "v5.5.4",
    *,
    secure_version: int = 0,
    time: str = "00:00:00",
    date: str = "Jan  1 2000",
    app_elf_sha256: bytes | None = None,
) -> bytes:
    """An image for the virtual board: segment 0 the descriptor, segment 1 the host executable.

    ``time`` and ``date`` default to fixed values so the same inputs give the same bytes.
    ``app_elf_sha256`` defaults to the SHA-256 of the executable, so the payload is identifiable.
    """
    elf_sha256 = app_elf_sha256 or hashlib.sha256(executable).digest()
    descriptor = AppDescriptor(version, project_name, time, date, idf_ver, secure_version, elf_sha256,
                               payload_len=len(executable))
    image = AppImage(
        chip_id=CHIP_ID_VIRTUAL,
        entry_addr=VIRTUAL_IROM_ADDR,
        segments=[Segment(VIRTUAL_DROM_ADDR, descriptor.to_bytes()), Segment(VIRTUAL_IROM_ADDR, executable)],
    )
    return image.to_bytes()


def virtual_payload(data: bytes) -> bytes:
    """The host executable of a virtual image (segment 1), without its 4-byte alignment padding."""
    layout = _walk(data)
    if len(layout.segments) < 2:
        raise ImageError("bad_segment", f"virtual image needs 2 segments, found {len(layout.segments)}")
    _, start, length = layout.segments[1]
    payload = bytes(data[start:start + length])
    try:
        wanted = read_descriptor(data).payload_len
    except ImageError:
        wanted = 0
    if wanted and length - 4 < wanted <= length:
        return payload[:wanted]
    return payload


def truncate(data: bytes, n: int) -> bytes:
    """The first ``n`` bytes: an image cut short, as by an interrupted download."""
    if not 0 <= n <= len(data):
        raise ValueError(f"cannot keep {n} of {len(data)} bytes")
    return bytes(data[:n])


def corrupt(data: bytes, offsets: list[int], mask: int = 0xFF) -> bytes:
    """Flip the bits in ``mask`` at each offset; checksum and hash are left stale on purpose."""
    buf = bytearray(data)
    for off in offsets:
        buf[off] ^= mask
    return bytes(buf)


def compress(data: bytes, encoding: str = "gzip", level: int = 9, *, name: str | None = None) -> bytes:
    """``data`` compressed by Python's gzip or zlib (the real compressors), as a server would host it.

    gzip: RFC 1952 with mtime 0 (so the same image gives the same bytes) and no file name, or with ``name`` as
    its FNAME field, as the ``gzip`` command writes it; zlib: RFC 1950. The firmware tells them from a plain
    image by their first bytes (1f 8b, or a zlib header) and inflates them into the slot; the command's
    ``size`` and ``sha256`` stay those of ``data``."""
    if encoding not in COMPRESSIONS:
        raise ValueError(f"encoding must be one of {COMPRESSIONS}, got {encoding!r}")
    return _compressed(bytes(data), encoding, level, name)


# The same bytes give the same stream, and the catalog compresses the same few images again and again (a level 9
# pass over an image takes 60 ms of CPU, 0.1 s under load): each is compressed once per process.
@functools.lru_cache(maxsize=16)
def _compressed(data: bytes, encoding: str, level: int, name: str | None) -> bytes:
    if encoding == "gzip" and name is not None:
        buf = io.BytesIO()
        with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, compresslevel=level, mtime=0) as f:
            f.write(data)
        return buf.getvalue()
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=level, mtime=0)
    return zlib.compress(data, level)


def decompress(data: bytes) -> bytes:
    """The image inside a stream made by `compress` (gzip or zlib, told by its magic); a plain image as it is."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0:
        return zlib.decompress(data)
    return bytes(data)
