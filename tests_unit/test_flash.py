"""NOR flash semantics of the virtual board's flash file (harness/virtual/flash.py), as on the chip
and as ESP-IDF's linux partition emulation with CONFIG_ESP_PARTITION_ERASE_CHECK."""

from pathlib import Path

import pytest

from harness.virtual.flash import FLASH_SIZE, PARTITION_TABLE_OFFSET, SECTOR_SIZE, Flash, FlashError

CSV = (Path(__file__).parents[1] / "device" / "partitions.csv").read_text()


@pytest.fixture
def flash(tmp_path: Path):
    with Flash.create(tmp_path / "flash.bin", CSV) as f:
        yield f


def test_new_flash_is_erased_except_the_partition_table(flash: Flash) -> None:
    assert flash.size == FLASH_SIZE
    assert flash.read(0x20000, 64) == b"\xff" * 64
    assert flash.read(PARTITION_TABLE_OFFSET, 2) == b"\xaa\x50"
    assert [p.label for p in flash.partitions()] == ["nvs", "otadata", "phy_init", "ota_0", "ota_1"]


def test_write_can_only_clear_bits(flash: Flash) -> None:
    flash.write(0x20000, b"\xf0")
    flash.write(0x20000, b"\x30")  # clears more bits: allowed
    assert flash.read(0x20000, 1) == b"\x30"
    with pytest.raises(FlashError, match="ESP_ERR_FLASH_OP_FAIL"):
        flash.write(0x20000, b"\x31")  # would set a bit back to 1
    assert flash.read(0x20000, 1) == b"\x30", "a refused write must not change the flash"


def test_erase_sets_whole_sectors_to_ff(flash: Flash) -> None:
    flash.write(0x20000, b"\x00" * (2 * SECTOR_SIZE))
    flash.erase(0x20000, SECTOR_SIZE)
    assert flash.read(0x20000, SECTOR_SIZE) == b"\xff" * SECTOR_SIZE
    assert flash.read(0x20000 + SECTOR_SIZE, SECTOR_SIZE) == b"\x00" * SECTOR_SIZE


@pytest.mark.parametrize(("offset", "length", "error"), [
    (0x20001, SECTOR_SIZE, "ESP_ERR_INVALID_ARG"),  # partition_linux.c: misaligned offset
    (0x20000, 100, "ESP_ERR_INVALID_SIZE"),  # misaligned size
])
def test_unaligned_erase_fails_with_the_esp_idf_code(flash: Flash, offset: int, length: int, error: str) -> None:
    with pytest.raises(FlashError, match=error):
        flash.erase(offset, length)


@pytest.mark.parametrize("op", ["read", "write", "erase"])
def test_out_of_range_is_invalid_size(flash: Flash, op: str) -> None:
    with pytest.raises(FlashError, match="ESP_ERR_INVALID_SIZE"):
        if op == "read":
            flash.read(FLASH_SIZE - 4, 8)
        elif op == "write":
            flash.write(FLASH_SIZE - 4, b"\x00" * 8)
        else:
            flash.erase(FLASH_SIZE, SECTOR_SIZE)


def test_the_partition_table_is_read_from_flash_not_the_csv(flash: Flash) -> None:
    flash.erase(PARTITION_TABLE_OFFSET, SECTOR_SIZE)
    with pytest.raises(ValueError):
        flash.partitions()
