"""otadata: the two ``esp_ota_select_entry_t`` records that pick the boot slot.

Rules from ESP-IDF v5.5.4: ``bootloader_common_loader.c`` (CRC, validity, active entry) and
``app_update/esp_ota_ops.c`` (``esp_rewrite_ota_data``). The otadata partition has two 4 KB
sectors; entry 0 starts sector 0 and entry 1 starts sector 1, the rest of each sector stays 0xFF.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum

ENTRY_SIZE = 32
SECTOR_SIZE = 0x1000
SEQ_BLANK = 0xFFFFFFFF  # erased flash
_U32 = 0xFFFFFFFF
_ENTRY_FMT = "<I20sII"

assert struct.calcsize(_ENTRY_FMT) == ENTRY_SIZE


class OtaState(IntEnum):
    """``esp_ota_img_states_t``."""

    NEW = 0
    PENDING_VERIFY = 1
    VALID = 2
    INVALID = 3
    ABORTED = 4
    UNDEFINED = 0xFFFFFFFF


def ota_crc(seq: int) -> int:
    """``esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4)``; zlib's CRC-32 with that start value matches."""
    return binascii.crc32(struct.pack("<I", seq & _U32), _U32)


def _as_state(value: int) -> int:
    # Flash may hold any number; keep unknown ones as plain ints instead of failing.
    try:
        return OtaState(value)
    except ValueError:
        return value


@dataclass
class OtaEntry:
    seq: int
    state: int  # an OtaState, or whatever number flash held
    crc: int
    label: bytes = b"\xff" * 20  # seq_label: unused by IDF, left as erased

    @classmethod
    def make(cls, seq: int, state: int, label: bytes = b"\xff" * 20) -> OtaEntry:
        """An entry with a correct CRC, as rewrite_ota_seq() writes it."""
        return cls(seq, _as_state(state), ota_crc(seq), label)

    @classmethod
    def blank(cls) -> OtaEntry:
        """What an erased sector reads as."""
        return cls(SEQ_BLANK, OtaState.UNDEFINED, _U32)

    def pack(self) -> bytes:
        if len(self.label) != 20:
            raise ValueError("seq_label must be 20 bytes")
        return struct.pack(_ENTRY_FMT, self.seq, self.label, self.state, self.crc)

    @classmethod
    def unpack(cls, data: bytes) -> OtaEntry:
        if len(data) < ENTRY_SIZE:
            raise ValueError(f"otadata entry needs {ENTRY_SIZE} bytes, got {len(data)}")
        seq, label, state, crc = struct.unpack(_ENTRY_FMT, bytes(data[:ENTRY_SIZE]))
        return cls(seq, _as_state(state), crc, label)

    def sector(self) -> bytes:
        """The 4 KB sector as esp_partition_erase_range + esp_partition_write leave it."""
        return self.pack().ljust(SECTOR_SIZE, b"\xff")

    @property
    def crc_ok(self) -> bool:
        return self.crc == ota_crc(self.seq)

    @property
    def is_invalid(self) -> bool:
        """bootloader_common_ota_select_invalid(): blank, INVALID or ABORTED (CRC not looked at)."""
        return self.seq == SEQ_BLANK or self.state in (OtaState.INVALID, OtaState.ABORTED)

    @property
    def is_valid(self) -> bool:
        """bootloader_common_ota_select_valid(): not invalid and the CRC matches."""
        return not self.is_invalid and self.crc_ok


def read_entries(sector0: bytes, sector1: bytes) -> list[OtaEntry]:
    """Both entries, from the start of each otadata sector."""
    return [OtaEntry.unpack(sector0), OtaEntry.unpack(sector1)]


def split_partition(otadata: bytes) -> list[OtaEntry]:
    """Both entries from the whole otadata partition contents (two sectors)."""
    return read_entries(otadata[:SECTOR_SIZE], otadata[SECTOR_SIZE:2 * SECTOR_SIZE])


def active_index(entries: list[OtaEntry]) -> int | None:
    """bootloader_common_get_active_otadata(): larger seq of two valid entries (tie: 0), else the valid one."""
    valid = [e.is_valid for e in entries[:2]]
    if all(valid):
        return 0 if entries[0].seq >= entries[1].seq else 1
    if valid[0]:
        return 0
    if valid[1]:
        return 1
    return None


def slot_for_seq(seq: int, app_count: int) -> int:
    """``(ota_seq - 1) % app_count`` in uint32 arithmetic, as the bootloader computes it."""
    if app_count <= 0:
        raise ValueError("app_count must be positive")
    return ((seq - 1) & _U32) % app_count


def next_seq(entries: list[OtaEntry], target_slot: int, app_count: int) -> tuple[int, int]:
    """(new ota_seq, sector index) that esp_rewrite_ota_data() writes to boot ``target_slot``.

    With an active entry: the smallest ``(slot + 1) % n + i * n`` that is >= the active seq, written
    to the other sector ``(~active) & 1`` so the old entry survives as the rollback target. The new
    seq may equal the active one (re-selecting the running slot). Without an active entry (blank or
    all invalid): ``slot + 1`` into sector 0.
    """
    if app_count <= 0 or not 0 <= target_slot < app_count:
        raise ValueError(f"slot {target_slot} is not one of {app_count} OTA slots")  # ESP_ERR_INVALID_ARG
    active = active_index(entries)
    if active is None:
        return target_slot + 1, 0
    base = (target_slot + 1) % app_count
    seq = entries[active].seq
    steps = max(0, -(-(seq - base) // app_count))  # smallest i with base + i * n >= seq
    return (base + steps * app_count) & _U32, (~active) & 1


def rewrite_entry(
    entries: list[OtaEntry], target_slot: int, app_count: int, rollback_enabled: bool = True
) -> tuple[int, OtaEntry]:
    """(sector index, entry) written by esp_ota_set_boot_partition() for an OTA slot.

    The state is NEW with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, else UNDEFINED; seq_label keeps
    what that sector held, because IDF rewrites its in-memory copy of the entry.
    """
    seq, sector = next_seq(entries, target_slot, app_count)
    state = OtaState.NEW if rollback_enabled else OtaState.UNDEFINED
    return sector, OtaEntry.make(seq, state, entries[sector].label)
