"""ESP-IDF partition table: CSV in, binary out and back, with gen_esp32part.py's rules.

Binary format (``esp_flash_partitions.h``): 32-byte entries ``<2sBBLL16sL`` with magic 0x50AA,
then an MD5 entry (``0xEBEB``, 14 x 0xFF, MD5 of the entries before it), then 0xFF up to 0xC00
bytes. The table sits alone in one 4 KB flash sector, by default at 0x8000.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

APP_TYPE = 0x00
DATA_TYPE = 0x01
OTA_SUBTYPE_MIN = 0x10  # ota_0; ota_N is 0x10 + N
OTA_SLOT_COUNT = 16
OTADATA_SUBTYPE = 0x00
OTADATA_SIZE = 0x2000  # two sectors, one esp_ota_select_entry_t each

PARTITION_TABLE_OFFSET = 0x8000
PARTITION_TABLE_SIZE = 0x1000  # one flash sector
MAX_TABLE_LENGTH = 0xC00  # gen_esp32part's MAX_PARTITION_LENGTH; the rest is kept for a signature
MAX_ENTRIES = MAX_TABLE_LENGTH // 32
FLASH_SIZE_4MB = 0x400000

ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"
_ENTRY_FMT = "<2sBBLL16sL"
_ENTRY_SIZE = 32

FLAG_ENCRYPTED = 1 << 0
FLAG_READONLY = 1 << 1
_FLAG_NAMES = {"encrypted": FLAG_ENCRYPTED, "readonly": FLAG_READONLY}

TYPES = {"app": APP_TYPE, "data": DATA_TYPE}
SUBTYPES = {
    APP_TYPE: {"factory": 0x00, "test": 0x20, **{f"ota_{i}": OTA_SUBTYPE_MIN + i for i in range(OTA_SLOT_COUNT)}},
    DATA_TYPE: {
        "ota": 0x00,
        "phy": 0x01,
        "nvs": 0x02,
        "coredump": 0x03,
        "nvs_keys": 0x04,
        "efuse": 0x05,
        "undefined": 0x06,
        "esphttpd": 0x80,
        "fat": 0x81,
        "spiffs": 0x82,
        "littlefs": 0x83,
    },
}
# Offset alignment: apps are mapped through the 64 KB MMU pages, data only needs erase sectors.
_OFFSET_ALIGN = {APP_TYPE: 0x10000}
_DATA_ALIGN = 0x1000
_APP_SIZE_ALIGN = 0x1000  # without secure boot; apps are erased by whole sectors
_NVS_RW_MIN_SIZE = 0x3000

assert struct.calcsize(_ENTRY_FMT) == _ENTRY_SIZE


@dataclass
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def is_app(self) -> bool:
        return self.type == APP_TYPE

    @property
    def is_ota_slot(self) -> bool:
        return self.is_app and OTA_SUBTYPE_MIN <= self.subtype < OTA_SUBTYPE_MIN + OTA_SLOT_COUNT

    @property
    def ota_index(self) -> int | None:
        """N for an ota_N app slot, else None."""
        return self.subtype - OTA_SUBTYPE_MIN if self.is_ota_slot else None

    @property
    def is_factory(self) -> bool:
        return self.is_app and self.subtype == SUBTYPES[APP_TYPE]["factory"]

    @property
    def is_otadata(self) -> bool:
        return self.type == DATA_TYPE and self.subtype == OTADATA_SUBTYPE

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & FLAG_READONLY)

    def to_entry(self) -> bytes:
        label = self.label.encode()
        if len(label) > 16:
            # struct would truncate silently and IDF would then see a different name.
            raise ValueError(f"partition label {self.label!r} is longer than 16 bytes")
        return struct.pack(_ENTRY_FMT, ENTRY_MAGIC, self.type, self.subtype, self.offset, self.size, label, self.flags)

    @classmethod
    def from_entry(cls, entry: bytes) -> Partition:
        magic, ptype, subtype, offset, size, label, flags = struct.unpack(_ENTRY_FMT, entry)
        if magic != ENTRY_MAGIC:
            raise ValueError(f"invalid partition entry magic {magic!r}")
        return cls(label.split(b"\0", 1)[0].decode(errors="replace"), ptype, subtype, offset, size, flags)


# ---------------------------------------------------------------------------------------------- CSV


def _parse_int(text: str, keywords: dict[str, int] | None = None) -> int:
    """int(text, 0) with K/M suffixes and keyword names, as gen_esp32part's parse_int."""
    for suffix, multiplier in (("k", 1024), ("m", 1024 * 1024)):
        if text.lower().endswith(suffix) and len(text) > 1:
            try:
                return _parse_int(text[:-1]) * multiplier
            except ValueError:
                break  # e.g. a keyword that ends in k/m
    try:
        return int(text, 0)
    except ValueError:
        pass
    if keywords and text.lower() in keywords:
        return keywords[text.lower()]
    known = f" (known: {', '.join(keywords)})" if keywords else ""
    raise ValueError(f"invalid value {text!r}{known}")


def _parse_flags(text: str) -> int:
    flags = 0
    for name in filter(None, (f.strip() for f in text.split(":"))):
        if name not in _FLAG_NAMES:
            raise ValueError(f"unknown flag {name!r}")
        flags |= _FLAG_NAMES[name]
    return flags


@dataclass
class _Row:
    line_no: int
    label: str
    type: int
    subtype: int
    offset: int | None
    size: int
    flags: int


def _parse_row(line: str, line_no: int) -> _Row:
    fields = [f.strip() for f in (line + ",,,,").split(",")]
    label, ptype_s, subtype_s, offset_s, size_s, flags_s = fields[:6]
    if ptype_s.lower() in ("bootloader", "partition_table"):
        raise ValueError(f"partition type {ptype_s!r} is not supported here")
    if not ptype_s:
        raise ValueError("field 'type' can't be left empty")
    ptype = _parse_int(ptype_s, TYPES)
    if not subtype_s:
        if ptype == APP_TYPE:
            raise ValueError("app partition cannot have an empty subtype")
        subtype = SUBTYPES[DATA_TYPE]["undefined"]
    else:
        subtype = _parse_int(subtype_s, SUBTYPES.get(ptype, {}))
    if not size_s:
        raise ValueError("size field can't be empty")
    offset = _parse_int(offset_s) if offset_s else None
    return _Row(line_no, label, ptype, subtype, offset, _parse_int(size_s), _parse_flags(flags_s))


def _place(rows: list[_Row], table_offset: int) -> list[Partition]:
    """Fill blank offsets and negative sizes the way gen_esp32part's from_csv does."""
    last_end = table_offset + PARTITION_TABLE_SIZE
    parts = []
    for row in rows:
        if row.offset is not None and row.offset < last_end:
            raise ValueError(
                f"line {row.line_no}: partitions overlap, offset {row.offset:#x} is below {last_end:#x}"
            )
        offset = row.offset
        if offset is None:
            align = _OFFSET_ALIGN.get(row.type, _DATA_ALIGN)
            offset = -(-last_end // align) * align
        # A negative size means "up to this address", as in gen_esp32part.
        size = -row.size - offset if row.size < 0 else row.size
        last_end = offset + size
        parts.append(Partition(row.label, row.type, row.subtype, offset, size, row.flags))
    return parts


def _check_one(p: Partition) -> None:
    align = _OFFSET_ALIGN.get(p.type, _DATA_ALIGN)
    if p.offset % align:
        raise ValueError(f"partition {p.label!r}: offset {p.offset:#x} is not aligned to {align:#x}")
    if p.size <= 0:
        raise ValueError(f"partition {p.label!r}: size {p.size:#x} must be positive")
    if p.is_app and p.size % _APP_SIZE_ALIGN:
        raise ValueError(f"partition {p.label!r}: size {p.size:#x} is not aligned to {_APP_SIZE_ALIGN:#x}")
    if not 0 <= p.type <= 0xFE or not 0 <= p.subtype <= 0xFE:
        raise ValueError(f"partition {p.label!r}: type/subtype out of range")
    if len(p.label.encode()) > 16:
        raise ValueError(f"partition label {p.label!r} is longer than 16 bytes")
    if p.is_otadata and p.readonly:
        raise ValueError(f"partition {p.label!r}: otadata is always read-write")
    is_nvs = p.type == DATA_TYPE and p.subtype == SUBTYPES[DATA_TYPE]["nvs"]
    if is_nvs and p.size < _NVS_RW_MIN_SIZE and not p.readonly:
        raise ValueError(f"partition {p.label!r}: a read/write NVS needs at least {_NVS_RW_MIN_SIZE:#x} bytes")


def verify(
    parts: list[Partition], flash_size: int = FLASH_SIZE_4MB, table_offset: int = PARTITION_TABLE_OFFSET
) -> None:
    """gen_esp32part's verify() and size check; raises ValueError with the first problem."""
    for p in parts:
        _check_one(p)
    labels = [p.label for p in parts]
    duplicates = sorted({name for name in labels if labels.count(name) > 1})
    if duplicates:
        raise ValueError(f"partition names must be unique: {', '.join(duplicates)}")
    previous = None
    for p in sorted(parts, key=lambda x: x.offset):
        if p.offset < table_offset + PARTITION_TABLE_SIZE:
            raise ValueError(f"partition offset {p.offset:#x} is below {table_offset + PARTITION_TABLE_SIZE:#x}")
        if previous is not None and p.offset < previous.end:
            raise ValueError(
                f"partition at {p.offset:#x} overlaps {previous.offset:#x}-{previous.end - 1:#x}"
            )
        previous = p
    otadata = [p for p in parts if p.is_otadata]
    if len(otadata) > 1:
        raise ValueError("found multiple otadata partitions")
    if otadata and otadata[0].size != OTADATA_SIZE:
        raise ValueError(f"otadata partition must have size = {OTADATA_SIZE:#x}")
    end = max((p.end for p in parts), default=0)
    if end > flash_size:
        raise ValueError(f"partitions end at {end:#x}, beyond the flash size {flash_size:#x}")
    if len(parts) > MAX_ENTRIES - 2:  # the MD5 entry and an end marker must still fit in 0xC00
        raise ValueError(f"too many partitions ({len(parts)})")


def parse_csv(
    text: str, flash_size: int = FLASH_SIZE_4MB, table_offset: int = PARTITION_TABLE_OFFSET
) -> list[Partition]:
    """Parse a partitions.csv, fill blank offsets, and verify the table.

    Unlike gen_esp32part, ``$VARIABLES`` are not expanded and bootloader/partition_table entries
    are refused: neither is used by this project.
    """
    rows = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rows.append(_parse_row(line, line_no))
        except ValueError as err:
            raise ValueError(f"line {line_no}: {err}") from None
    parts = _place(rows, table_offset)
    verify(parts, flash_size, table_offset)
    return parts


# ------------------------------------------------------------------------------------------- binary


def to_binary(parts: list[Partition], pad_to_sector: bool = True) -> bytes:
    """The binary table; 0x1000 bytes ready for flash, or gen_esp32part's 0xC00 without padding."""
    body = b"".join(p.to_entry() for p in parts)
    body += MD5_MAGIC + b"\xff" * 14 + hashlib.md5(body).digest()
    if len(body) >= MAX_TABLE_LENGTH:
        raise ValueError(f"binary partition table length ({len(body)}) longer than max")
    size = PARTITION_TABLE_SIZE if pad_to_sector else MAX_TABLE_LENGTH
    return body.ljust(size, b"\xff")


def from_binary(data: bytes, require_md5: bool = True, flash_size: int | None = None) -> list[Partition]:
    """Read a binary table as esp_partition_table_verify() does; ValueError if it is not valid.

    The bootloader accepts a table without MD5 entry (CONFIG_PARTITION_TABLE_MD5=n); we refuse it
    unless ``require_md5`` is False, since our tables always carry one.
    """
    parts: list[Partition] = []
    md5_seen = False
    for index in range(MAX_ENTRIES):
        entry = bytes(data[index * _ENTRY_SIZE:(index + 1) * _ENTRY_SIZE])
        if len(entry) < _ENTRY_SIZE:
            break
        if entry[:2] == ENTRY_MAGIC:
            part = Partition.from_entry(entry)
            if flash_size is not None and part.end > flash_size:
                raise ValueError(f"partition {index} invalid - exceeds flash chip size {flash_size:#x}")
            parts.append(part)
        elif entry[:2] == MD5_MAGIC:
            _check_md5(data, index, entry, md5_seen)
            md5_seen = True
        elif index and entry[:4] == b"\xff\xff\xff\xff":  # magic 0xFFFF, type and subtype 0xFF
            if require_md5 and not md5_seen:
                raise ValueError("partition table has no MD5 entry")
            return parts
        else:
            raise ValueError(f"partition {index} invalid magic number 0x{entry[1]:02x}{entry[0]:02x}")
    raise ValueError("partition table has no terminating entry, not valid")


def _check_md5(data: bytes, index: int, entry: bytes, md5_seen: bool) -> None:
    if md5_seen:
        raise ValueError("only one MD5 checksum is allowed")
    digest = hashlib.md5(data[:index * _ENTRY_SIZE]).digest()
    if entry[16:] != digest:
        raise ValueError(f"incorrect MD5 checksum (computed {digest.hex()}, stored {entry[16:].hex()})")


# ------------------------------------------------------------------------------------------ lookups


def find(parts: list[Partition], label: str) -> Partition:
    for p in parts:
        if p.label == label:
            return p
    raise KeyError(label)


def ota_slots(parts: list[Partition]) -> list[Partition]:
    """OTA app slots by index, as esp_ota_get_app_partition_count()/the bootloader count them."""
    return sorted((p for p in parts if p.is_ota_slot), key=lambda p: p.subtype)


def otadata_partition(parts: list[Partition]) -> Partition | None:
    return next((p for p in parts if p.is_otadata), None)
