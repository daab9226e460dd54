"""The virtual board's eFuses: a small file the board owns, kept across boots like its flash.

Only the field anti-rollback needs is emulated: the ESP32's SECURE_VERSION (EFUSE_BLK3, 32 bits), whose
value is the number of bits set (``esp_efuse_read_secure_version``). Bits are burnt from 0 to 1 and never
cleared, in the app (device/port/linux/src/esp_efuse.c, the file named by HIL_EFUSE_FILE) and in the
virtual bootloader (harness/virtual/bootloader.py), which both follow ESP-IDF v5.5.5's
``components/efuse/src/esp_efuse_fields.c``. Layout (host_board.h): little-endian u32 words, word 0 the field.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

SECURE_VERSION_FIELD_BITS = 32  # ESP_EFUSE_SECURE_VERSION on the ESP32
EFUSE_WORDS = 1  # HOST_EFUSE_WORDS


class EfuseError(ValueError):
    """A burn that eFuses cannot do (more bits than the field has)."""


@dataclass
class Efuses:
    """The eFuse file of one board; a missing or short file is a blank chip (all bits 0)."""

    path: Path

    def create(self) -> None:
        self.path.write_bytes(bytes(4 * EFUSE_WORDS))

    def secure_version_field(self) -> int:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        return struct.unpack_from("<I", raw)[0] if len(raw) >= 4 else 0

    def burn_secure_version_bits(self, bits: int) -> None:
        """ORs `bits` into the field: an eFuse bit only goes from 0 to 1."""
        if not 0 <= bits < 1 << SECURE_VERSION_FIELD_BITS:
            raise EfuseError(f"{bits:#x} does not fit the {SECURE_VERSION_FIELD_BITS}-bit field")
        value = self.secure_version_field() | bits
        with open(self.path, "r+b" if self.path.exists() else "wb") as f:
            f.write(struct.pack("<I", value))
            f.flush()
            os.fsync(f.fileno())

    def read_secure_version(self, field_bits: int = SECURE_VERSION_FIELD_BITS) -> int:
        """esp_efuse_read_secure_version(): bits set among the first `field_bits`
        (CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD)."""
        size = min(field_bits, SECURE_VERSION_FIELD_BITS)
        return (self.secure_version_field() & ((1 << size) - 1)).bit_count()

    def check_secure_version(self, secure_version: int, field_bits: int = SECURE_VERSION_FIELD_BITS) -> bool:
        """esp_efuse_check_secure_version(): an app may run if its secure_version is at least the eFuse's."""
        return secure_version >= self.read_secure_version(field_bits)

    def update_secure_version(self, secure_version: int,
                              field_bits: int = SECURE_VERSION_FIELD_BITS) -> tuple[str, str] | None:
        """esp_efuse_update_secure_version(): raises the field to `secure_version`. Returns the line ESP-IDF
        logs with tag efuse, as (level letter, message), or None when nothing changes."""
        size = min(field_bits, SECURE_VERSION_FIELD_BITS)
        if size < secure_version:
            return "E", f"Max secure version is {size}. Given {secure_version} version can not be written."
        current = self.read_secure_version(field_bits)
        if current < secure_version:
            self.burn_secure_version_bits(((1 << secure_version) - 1) - ((1 << current) - 1))
            return "I", f"Anti-rollback is set. eFuse field is updated({secure_version})."
        if current > secure_version:
            return "E", f"Anti-rollback is not set. secure_version of app is lower that eFuse field({current})."
        return None
