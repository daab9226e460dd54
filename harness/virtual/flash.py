"""The virtual board's SPI flash: one file, with NOR semantics.

An erase sets whole 4 KB sectors to 0xFF; a write can only clear bits, and writing over bytes
that were not erased fails, as on the chip (and as ESP-IDF's linux partition emulation with
CONFIG_ESP_PARTITION_ERASE_CHECK). The app (host port) maps the same file, so what the
bootloader writes here is what the firmware reads, and the other way round.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from harness.formats import partition_table
from harness.formats.partition_table import Partition

FLASH_SIZE = 0x400000  # 4 MB, a common ESP32 module
SECTOR_SIZE = 0x1000
PARTITION_TABLE_OFFSET = 0x8000
# A blank flash is written in blocks of this many erased bytes, one buffer for every write: 4 MB in one write
# took 12.5 ms (the kernel copying from a source larger than the CPU's caches), in 256 KB blocks 1 ms, and
# every board of a run starts with a blank flash.
_ERASED_BLOCK = b"\xff" * 0x40000


@dataclass(frozen=True)
class FlashTiming:
    """How fast the firmware's flash writes and erases go (HIL_FLASH_TIMING, the host port's esp_partition.c).

    The virtual board's flash takes no time by default; with a timing, every write and erase the firmware
    does lasts its length at these rates, as on a chip, where an update's flash time is most of its time.
    """

    write_bytes_per_s: float
    erase_bytes_per_s: float

    def __post_init__(self) -> None:
        if self.write_bytes_per_s <= 0 or self.erase_bytes_per_s <= 0:
            raise ValueError(f"flash rates must be positive: {self}")

    def env_value(self) -> str:
        return f"{self.write_bytes_per_s:.6g} {self.erase_bytes_per_s:.6g}"


# An ESP32's flash, from ESP-IDF's own measurements: its ESP32 thresholds for the esp_flash driver
# (components/idf_test/include/esp32/idf_performance_target.h, removed in 1cbf9506b25, 2022) were set at 70 % of
# the measured rates: writes in 2 KB pieces 754 KB/s (70 % of the average), 4 KB sector erases 45.3 KB/s (70 %
# of the slowest vendor's chip). These are those measurements: 1 MiB written in about 1 s, erased in 16 s. The
# erase rate is the slow end of the chips a module may carry (others erase a sector in half the time or less),
# which is the side a release gate wants: deadlines that hold there hold on faster flash. Sector erases are
# what an update does: esp_ota_write() with OTA_WITH_SEQUENTIAL_WRITES erases the sectors each write reaches.
CHIP_TIMING = FlashTiming(write_bytes_per_s=754_000 / 0.7, erase_bytes_per_s=45_300 / 0.7)
# The timings a user names (--hil-flash-timing, `board run --flash-timing`, the benchmarks' --flash).
TIMINGS: dict[str, FlashTiming | None] = {"none": None, "chip": CHIP_TIMING}
TIMINGS_HELP = ("the virtual board's flash: none (writes and erases take no time: the default, fast runs) or "
                "chip (an ESP32's rates: an update waits for its flash as on a chip, about 5 s for 300 KB)")


class FlashError(Exception):
    """A flash operation the chip would refuse; ``code`` is the ESP-IDF error name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Flash:
    """A flash image file, mapped for reading and NOR-semantics writing."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR)
        self.size = os.fstat(self._fd).st_size
        self._map = mmap.mmap(self._fd, self.size)

    @classmethod
    def create(cls, path: Path, partitions_csv: str, size: int = FLASH_SIZE) -> Flash:
        """A blank (all 0xFF) flash with the partition table from a CSV at 0x8000."""
        parts = partition_table.parse_csv(partitions_csv, flash_size=size)
        with open(path, "wb") as f:
            f.writelines(_ERASED_BLOCK[: size - start] for start in range(0, size, len(_ERASED_BLOCK)))
        flash = cls(path)
        flash.write(PARTITION_TABLE_OFFSET, partition_table.to_binary(parts))
        return flash

    def close(self) -> None:
        # No msync (mmap.flush): the firmware and every later reader map or read the same file through the page
        # cache, so what was written is there for them, and a killed firmware process (a power cut) loses none
        # of it. Forcing it to disk only cost a 4 MB write per new board (9 s of worker time per make hil).
        if not self._map.closed:
            self._map.close()
            os.close(self._fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_range(self, offset: int, length: int) -> None:
        """The argument checks of partition_linux.c (v5.5.4), for the whole flash as one partition."""
        if offset < 0 or offset > self.size:
            raise FlashError("ESP_ERR_INVALID_ARG", f"offset 0x{offset:x} is outside the {self.size:#x} flash")
        if length < 0 or offset + length > self.size:
            raise FlashError("ESP_ERR_INVALID_SIZE", f"0x{offset:x}+0x{length:x} ends outside the {self.size:#x} flash")

    def read(self, offset: int, length: int) -> bytes:
        self._check_range(offset, length)
        return bytes(self._map[offset : offset + length])

    def erase(self, offset: int, length: int) -> None:
        """Sets whole 4 KB sectors to 0xFF (esp_partition_erase_range)."""
        # Same order as partition_linux.c: the offset (range, alignment), then the length.
        if offset % SECTOR_SIZE and 0 <= offset <= self.size:
            raise FlashError("ESP_ERR_INVALID_ARG", f"erase offset 0x{offset:x} is not 4 KB aligned")
        if length % SECTOR_SIZE and 0 <= offset <= self.size:
            raise FlashError("ESP_ERR_INVALID_SIZE", f"erase length 0x{length:x} is not a multiple of 4 KB")
        self._check_range(offset, length)
        self._map[offset : offset + length] = b"\xff" * length

    def write(self, offset: int, data: bytes) -> None:
        """Programs bytes: bits can only go from 1 to 0, so every target byte must cover data's 1 bits."""
        self._check_range(offset, len(data))
        current = int.from_bytes(self._map[offset : offset + len(data)], "little")
        # A bit set in data but clear in flash would need an erase first (CONFIG_ESP_PARTITION_ERASE_CHECK).
        if int.from_bytes(data, "little") & ~current:
            raise FlashError("ESP_ERR_FLASH_OP_FAIL", f"write at 0x{offset:x} over bytes that were not erased")
        self._map[offset : offset + len(data)] = data

    def erase_and_write(self, offset: int, data: bytes) -> None:
        """Erases the sectors that data covers, then writes it (what esptool write-flash does)."""
        end = offset + len(data)
        start = offset - offset % SECTOR_SIZE
        stop = end + (-end) % SECTOR_SIZE
        self.erase(start, stop - start)
        self.write(offset, data)

    def partitions(self) -> list[Partition]:
        """The partition table, read from flash (never from the CSV), verified like the bootloader does."""
        return partition_table.from_binary(self.read(PARTITION_TABLE_OFFSET, SECTOR_SIZE), flash_size=self.size)
