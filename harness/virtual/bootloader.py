"""ESP-IDF's 2nd-stage bootloader slot selection and rollback, on a virtual flash.

Rule for rule from ESP-IDF v5.5.4 ``components/bootloader_support/src/bootloader_utility.c``
(``bootloader_utility_get_selected_boot_partition`` and ``bootloader_utility_load_boot_image``),
with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y and no anti-rollback:

1. With rollback on, every PENDING_VERIFY entry is rewritten ABORTED before anything else, so an
   image that did not confirm itself gets exactly one boot.
2. Both entries invalid (or no OTA slots): factory if there is one, else ota_0; if both are blank
   or have a bad CRC the otadata is "initial" and the boot writes {seq=slot+1, VALID} to entry 0.
3. Otherwise the valid entry with the larger seq picks slot (seq-1) % app_count; NEW becomes
   PENDING_VERIFY before the image is loaded.
4. The chosen slot is verified; if it is not bootable, the loader tries the slots below it down to
   factory, then the slots above it, without touching otadata (set_actual_ota_seq aside).
5. Nothing bootable: "No bootable app partitions in the partition table" and a reset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.formats.app_image import CHIP_ID_VIRTUAL, ImageError, ImageInfo, verify_image
from harness.formats.otadata import SECTOR_SIZE, OtaEntry, OtaState, active_index, read_entries
from harness.formats.partition_table import Partition
from harness.virtual.flash import Flash

FACTORY_INDEX = -1

LogFn = Callable[[str, str], None]  # (level letter, message)


@dataclass
class BootOutcome:
    """Which partition the bootloader loaded (None: nothing bootable) and its image."""

    partition: Partition | None
    image: ImageInfo | None


class Bootloader:
    def __init__(self, flash: Flash, log: LogFn, chip_id: int = CHIP_ID_VIRTUAL, rollback: bool = True) -> None:
        self.flash = flash
        self.log = log
        self.chip_id = chip_id
        self.rollback = rollback
        self.parts = flash.partitions()
        self.otadata = next((p for p in self.parts if p.is_otadata), None)
        self.factory = next((p for p in self.parts if p.is_factory), None)
        slots = sorted((p for p in self.parts if p.is_ota_slot), key=lambda p: p.ota_index or 0)
        self.slots = slots

    # --- otadata ---

    def _read_otadata(self) -> list[OtaEntry]:
        base = self.otadata.offset
        return read_entries(self.flash.read(base, SECTOR_SIZE), self.flash.read(base + SECTOR_SIZE, SECTOR_SIZE))

    def _write_entry(self, index: int, entry: OtaEntry) -> None:
        offset = self.otadata.offset + SECTOR_SIZE * index
        self.flash.erase(offset, SECTOR_SIZE)
        self.flash.write(offset, entry.pack())

    def select(self) -> tuple[int, bool]:
        """bootloader_utility_get_selected_boot_partition: (slot index, otadata is initial)."""
        if self.otadata is None:
            return FACTORY_INDEX, False
        entries = self._read_otadata()
        if self.rollback:
            for i, entry in enumerate(entries):
                if entry.state == OtaState.PENDING_VERIFY:
                    entries[i] = OtaEntry(entry.seq, OtaState.ABORTED, entry.crc, entry.label)
                    self._write_entry(i, entries[i])
        app_count = len(self.slots)
        if all(e.is_invalid for e in entries) or app_count == 0:
            if self.factory is not None:
                self.log("I", "Defaulting to factory image")
                return FACTORY_INDEX, False
            self.log("I", "No factory image, trying OTA 0")
            initial = all(e.seq == 0xFFFFFFFF or not e.crc_ok for e in entries)
            return 0, initial
        active = active_index(entries)
        if active is None:
            if self.factory is not None:
                self.log("E", "ota data partition invalid, falling back to factory")
            else:
                self.log("E", "ota data partition invalid and no factory, will try all partitions")
            return FACTORY_INDEX, False
        entry = entries[active]
        if self.rollback and entry.state == OtaState.NEW:
            self._write_entry(active, OtaEntry(entry.seq, OtaState.PENDING_VERIFY, entry.crc, entry.label))
        return ((entry.seq - 1) & 0xFFFFFFFF) % app_count, False

    # --- loading ---

    def _partition(self, index: int) -> Partition | None:
        if index == FACTORY_INDEX:
            return self.factory
        return self.slots[index] if 0 <= index < len(self.slots) else None

    def _try_load(self, part: Partition) -> ImageInfo | None:
        try:
            info = verify_image(self.flash.read(part.offset, part.size), self.chip_id, offset=part.offset)
        except ImageError as err:
            self.log("E", str(err))
            return None
        self.log("I", f"Loaded app from partition at offset 0x{part.offset:x}")
        return info

    def _set_actual_ota_seq(self, index: int, initial: bool) -> None:
        if index > FACTORY_INDEX and initial:
            self._write_entry(0, OtaEntry.make(index + 1, OtaState.VALID))
            self.log("I", f"Set actual ota_seq={index + 1} in otadata[0]")

    def _not_bootable(self, index: int) -> None:
        if index == FACTORY_INDEX:
            self.log("E", "Factory app partition is not bootable")
        else:
            self.log("E", f"OTA app partition slot {index} is not bootable")

    def boot(self) -> BootOutcome:
        """Selects and loads an app, updating otadata exactly as the real bootloader does."""
        start, initial = self.select()
        order = list(range(start, FACTORY_INDEX - 1, -1)) + list(range(start + 1, len(self.slots)))
        for index in order:
            part = self._partition(index)
            if part is None or part.size == 0:
                continue
            info = self._try_load(part)
            if info is not None:
                self._set_actual_ota_seq(index, initial)
                return BootOutcome(part, info)
            self._not_bootable(index)
        self.log("E", "No bootable app partitions in the partition table")
        return BootOutcome(None, None)
