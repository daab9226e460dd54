"""Partition table: CSV parsing with gen_esp32part.py's rules, binary format and MD5 check."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from harness.formats import partition_table as pt
from harness.formats.partition_table import Partition

PROJECT_CSV = Path(__file__).resolve().parents[1] / "device" / "partitions.csv"

# Same content as ESP-IDF's partitions_two_ota.csv / partitions_two_ota_large.csv: blank offsets.
TWO_OTA_CSV = """\
# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
"""
TWO_OTA_LARGE_CSV = """\
nvs,      data, nvs,     ,        0x6000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
ota_0,    app,  ota_0,   ,        1700K,
ota_1,    app,  ota_1,   ,        1700K,
"""

# SHA-256 of the 0xC00-byte output of ESP-IDF v5.5.4 `gen_esp32part.py --flash-size 4MB`.
GEN_ESP32PART_SHA256 = {
    "project": "da06d07e2d16c3027147e49710bb754f768411d79697eb2bc9a3a7abd1def3a6",
    "two_ota": "d1c0e9d02fa9d26cd2e1984e7b5dd20157204f501ddc83ce82229e5f3175ee8b",
    "two_ota_large": "41d8ef7960bf03647249e26ca1ace2b8d35f317a87f6c2ff5bc9f4bdbdbf602b",
}

PROJECT_LAYOUT = [
    Partition("nvs", 0x01, 0x02, 0x9000, 0x6000),
    Partition("otadata", 0x01, 0x00, 0xF000, 0x2000),
    Partition("phy_init", 0x01, 0x01, 0x11000, 0x1000),
    Partition("ota_0", 0x00, 0x10, 0x20000, 0x1B0000),
    Partition("ota_1", 0x00, 0x11, 0x1D0000, 0x1B0000),
]


@pytest.fixture
def parts() -> list[Partition]:
    return pt.parse_csv(PROJECT_CSV.read_text())


def _layout(parts: list[Partition]) -> list[tuple[str, int, int]]:
    return [(p.label, p.offset, p.size) for p in parts]


def test_project_csv(parts: list[Partition]) -> None:
    assert parts == PROJECT_LAYOUT
    assert parts[-1].end == 0x380000  # fits a 4 MB flash with room to spare


def test_partition_helpers(parts: list[Partition]) -> None:
    slots = pt.ota_slots(parts)
    assert [p.label for p in slots] == ["ota_0", "ota_1"]
    assert [p.ota_index for p in slots] == [0, 1]
    assert all(p.is_app and p.is_ota_slot and not p.is_factory for p in slots)
    assert pt.find(parts, "nvs").ota_index is None
    assert not pt.find(parts, "nvs").is_app
    assert pt.otadata_partition(parts) == pt.find(parts, "otadata")
    with pytest.raises(KeyError):
        pt.find(parts, "factory")
    factory = Partition("factory", 0, 0, 0x10000, 0x100000)
    assert factory.is_factory and not factory.is_ota_slot and factory.ota_index is None
    assert not Partition("test", 0, 0x20, 0x10000, 0x1000).is_ota_slot


def test_blank_offsets_follow_gen_esp32part() -> None:
    assert _layout(pt.parse_csv(TWO_OTA_CSV)) == [
        ("nvs", 0x9000, 0x4000),
        ("otadata", 0xD000, 0x2000),
        ("phy_init", 0xF000, 0x1000),
        ("factory", 0x10000, 0x100000),
        ("ota_0", 0x110000, 0x100000),
        ("ota_1", 0x210000, 0x100000),
    ]
    # 1700K apps: ota_1 is pushed up to the next 64 KB boundary.
    assert _layout(pt.parse_csv(TWO_OTA_LARGE_CSV))[3:] == [
        ("ota_0", 0x20000, 0x1A9000),
        ("ota_1", 0x1D0000, 0x1A9000),
    ]


def test_first_free_offset_follows_the_table() -> None:
    parts = pt.parse_csv("nvs, data, nvs, , 24K\napp, app, factory, , 64K", table_offset=0x10000)
    assert _layout(parts) == [("nvs", 0x11000, 0x6000), ("app", 0x20000, 0x10000)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16K", 0x4000),
        ("16k", 0x4000),
        ("1M", 0x100000),
        ("1728K", 0x1B0000),
        ("0x6000", 0x6000),
        ("24576", 0x6000),
    ],
)
def test_sizes(text: str, expected: int) -> None:
    (part,) = pt.parse_csv(f"nvs, data, nvs, 0x9000, {text}")
    assert part.size == expected


def test_numeric_and_named_types() -> None:
    parts = pt.parse_csv(
        "a, 0x40, 0x01, 0x9000, 4K\n"
        "b, data, 0x99, , 4K\n"
        "c, DATA, NVS_KEYS, , 4K, encrypted\n"
        "d, data, efuse, , 8K, readonly\n"
        "e, data, , , 4K\n"
        "t, app, test, , 64K\n"
        "o, app, ota_15, , 64K\n"
    )
    assert [(p.type, p.subtype) for p in parts] == [
        (0x40, 0x01), (0x01, 0x99), (0x01, 0x04), (0x01, 0x05), (0x01, 0x06), (0x00, 0x20), (0x00, 0x1F)
    ]
    assert parts[2].encrypted and not parts[2].readonly
    assert parts[3].readonly and parts[3].flags == pt.FLAG_READONLY
    assert parts[6].ota_index == 15
    assert pt.from_binary(pt.to_binary(parts)) == parts


def test_negative_size_means_end_address() -> None:
    (part,) = pt.parse_csv("storage, data, fat, 0x100000, -0x400000")
    assert (part.offset, part.end) == (0x100000, 0x400000)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("a, data, nvs, 0x9000, 0x6000\nb, data, phy, 0xa000, 0x1000", "overlap"),
        ("a, data, nvs, 0x8000, 0x6000", "below 0x9000"),
        ("a, app, ota_0, 0x21000, 0x10000", "not aligned to 0x10000"),
        ("a, data, phy, 0x9800, 0x1000", "not aligned to 0x1000"),
        ("a, app, ota_0, 0x20000, 0x10100", "size 0x10100 is not aligned"),
        ("a, app, ota_0, 0x20000, 0x400000", "beyond the flash size"),
        ("a, data, nvs, , 0x6000\na, data, phy, , 0x1000", "unique"),
        ("a, code, nvs, , 0x6000", "invalid value 'code'"),
        ("a, data, nvram, , 0x6000", "invalid value 'nvram'"),
        ("a, data, nvs, , ", "size field"),
        ("a, , nvs, , 0x6000", "type"),
        ("a, app, , , 64K", "empty subtype"),
        ("a, data, nvs, , 0x6000, secret", "unknown flag"),
        ("a, data, ota, , 0x2000\nb, data, ota, , 0x2000", "multiple otadata"),
        ("a, data, ota, , 0x1000", "otadata partition must have size = 0x2000"),
        ("a, data, ota, , 0x2000, readonly", "read-write"),
        ("a, data, nvs, , 0x2000", "at least 0x3000"),
        ("a_label_longer_than_16, data, nvs, , 0x6000", "longer than 16"),
        ("a, data, nvs, , 12Q", "invalid value '12Q'"),
        ("b, bootloader, primary, 0x1000, 0x7000", "not supported"),
    ],
)
def test_bad_csv(csv: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pt.parse_csv(csv)


def test_project_table_does_not_fit_2mb() -> None:
    with pytest.raises(ValueError, match="beyond the flash size"):
        pt.parse_csv(PROJECT_CSV.read_text(), flash_size=0x200000)


def test_binary_layout(parts: list[Partition]) -> None:
    raw = pt.to_binary(parts)
    assert len(raw) == 0x1000  # a whole sector, ready to write at 0x8000
    assert struct.unpack_from("<2sBBLL16sL", raw, 3 * 32) == (
        b"\xaa\x50", 0x00, 0x10, 0x20000, 0x1B0000, b"ota_0" + b"\0" * 11, 0
    )
    md5_entry = raw[5 * 32:6 * 32]
    assert md5_entry[:16] == b"\xeb\xeb" + b"\xff" * 14
    assert md5_entry[16:] == hashlib.md5(raw[:5 * 32]).digest()
    assert raw[6 * 32:] == b"\xff" * (0x1000 - 6 * 32)


@pytest.mark.parametrize(
    ("name", "csv"), [("project", None), ("two_ota", TWO_OTA_CSV), ("two_ota_large", TWO_OTA_LARGE_CSV)]
)
def test_binary_matches_gen_esp32part(name: str, csv: str | None) -> None:
    parts = pt.parse_csv(csv or PROJECT_CSV.read_text())
    raw = pt.to_binary(parts, pad_to_sector=False)
    assert len(raw) == 0xC00
    assert hashlib.sha256(raw).hexdigest() == GEN_ESP32PART_SHA256[name]
    assert pt.to_binary(parts)[:0xC00] == raw


def test_binary_round_trip(parts: list[Partition]) -> None:
    assert pt.from_binary(pt.to_binary(parts)) == parts
    assert pt.from_binary(pt.to_binary(parts, pad_to_sector=False)) == parts
    assert pt.from_binary(pt.to_binary(parts), flash_size=0x400000) == parts
    with pytest.raises(ValueError, match="exceeds flash chip size"):
        pt.from_binary(pt.to_binary(parts), flash_size=0x200000)


@pytest.mark.parametrize("offset", [3 * 32 + 12, 4 * 32 + 8, 5 * 32 + 16, 5 * 32 + 31], ids=str)
def test_md5_detects_corruption(parts: list[Partition], offset: int) -> None:
    raw = bytearray(pt.to_binary(parts))
    raw[offset] ^= 0x01  # an entry's size/offset, or the digest itself
    with pytest.raises(ValueError, match="MD5"):
        pt.from_binary(bytes(raw))


def test_bad_binaries(parts: list[Partition]) -> None:
    raw = pt.to_binary(parts)
    with pytest.raises(ValueError, match="invalid magic"):
        pt.from_binary(b"\xff" * 0x1000)  # erased: the first entry cannot be the end marker
    with pytest.raises(ValueError, match="invalid magic"):
        pt.from_binary(raw[:64] + b"\x00" * 32 + raw[96:])
    no_md5 = b"".join(p.to_entry() for p in parts).ljust(0x1000, b"\xff")
    with pytest.raises(ValueError, match="no MD5"):
        pt.from_binary(no_md5)
    assert pt.from_binary(no_md5, require_md5=False) == parts
    with pytest.raises(ValueError, match="no terminating entry"):
        pt.from_binary(raw[:5 * 32])
    two_md5 = raw[:6 * 32] + raw[5 * 32:6 * 32]
    with pytest.raises(ValueError, match="only one MD5"):
        pt.from_binary(two_md5.ljust(0x1000, b"\xff"))


def test_too_many_partitions() -> None:
    rows = [f"p{i}, data, 0x40, , 4K" for i in range(95)]
    with pytest.raises(ValueError, match="too many"):
        pt.parse_csv("\n".join(rows))
    assert len(pt.to_binary(pt.parse_csv("\n".join(rows[:94])), pad_to_sector=False)) == 0xC00


def test_label_too_long_for_binary() -> None:
    with pytest.raises(ValueError, match="longer than 16"):
        Partition("x" * 17, 1, 2, 0x9000, 0x6000).to_entry()
    sixteen = Partition("x" * 16, 1, 2, 0x9000, 0x6000)
    assert Partition.from_entry(sixteen.to_entry()) == sixteen
