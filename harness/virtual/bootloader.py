"""ESP-IDF's 2nd-stage bootloader slot selection and rollback, on a virtual flash.

Rule for rule from ESP-IDF v5.5.4 ``components/bootloader_support/src/bootloader_utility.c``
(``bootloader_utility_get_selected_boot_partition`` and ``bootloader_utility_load_boot_image``),
with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y and, by default, no anti-rollback:

1. With rollback on, every PENDING_VERIFY entry is rewritten ABORTED before anything else, so an
   image that did not confirm itself gets exactly one boot.
2. Both entries invalid (or no OTA slots): factory if there is one, else ota_0; if both are blank
   or have a bad CRC the otadata is "initial" and the boot writes {seq=slot+1, VALID} to entry 0.
3. Otherwise the valid entry with the larger seq picks slot (seq-1) % app_count; NEW becomes
   PENDING_VERIFY before the image is loaded.
4. The chosen slot is verified; if it is not bootable, the loader tries the slots below it down to
   factory, then the slots above it, without touching otadata (set_actual_ota_seq aside).
5. Nothing bootable: "No bootable app partitions in the partition table" and a reset.

The build's bootloader options come in a `BootloaderConfig` (from the build's sdkconfig, as the chip's
bootloader is built with the app's). With CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK (v5.5.5, the same file):

- it logs "Enabled a check secure version of app for anti rollback" and the eFuse's secure version;
- otadata is "initial" only when both entries are blank or have a bad CRC (no factory app is allowed),
  and then no slot is preferred: the slots are tried from ota_0 up;
- an entry is a candidate only if its slot's app has secure_version >= the eFuse's
  (``get_active_otadata_with_check_anti_rollback``), and every slot tried must pass the same check;
- the chosen entry being VALID, the eFuse is raised to its app's secure_version (``update_anti_rollback``),
  and so is it after ``set_actual_ota_seq``: an app that confirmed itself but lost power before
  esp_ota_mark_app_valid_cancel_rollback() burnt the eFuse gets it burnt at the next boot.

Signatures: with the RSA (Secure Boot V2) scheme and no hardware secure boot, ESP-IDF's bootloader does
not check app signatures (CONFIG_SECURE_SIGNED_ON_BOOT_NO_SECURE_BOOT exists for the ECDSA V1 scheme
only); it only requires the signature sector to fit in the partition (``process_appended_hash_and_sig``
with CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT). The virtual bootloader does the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from harness.formats.app_image import CHIP_ID_VIRTUAL, ImageError, ImageInfo, read_descriptor, verify_image
from harness.formats.otadata import SECTOR_SIZE, OtaEntry, OtaState, active_index, read_entries
from harness.formats.partition_table import Partition
from harness.formats.signing import signature_sector_offset
from harness.virtual.efuse import SECURE_VERSION_FIELD_BITS, Efuses
from harness.virtual.flash import Flash

FACTORY_INDEX = -1
SIGNATURE_SECTOR_SIZE = 4096  # sizeof(ets_secure_boot_signature_t)


class LogFn(Protocol):
    """Prints a bootloader line: level letter, message, and the ESP-IDF tag (boot, efuse)."""

    def __call__(self, level: str, message: str, tag: str = "boot") -> None: ...


@dataclass(frozen=True)
class BootloaderConfig:
    """The options the bootloader was built with (the build's sdkconfig)."""

    rollback: bool = True  # CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
    anti_rollback: bool = False  # CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
    secure_version_bits: int = SECURE_VERSION_FIELD_BITS  # CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD
    signed_apps: bool = False  # CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT: the signature sector must fit

    @classmethod
    def from_sdkconfig(cls, text: str) -> BootloaderConfig:
        """From an sdkconfig file's text (``CONFIG_X=y`` lines; ``# CONFIG_X is not set`` is off)."""
        values = dict(re.findall(r"^CONFIG_(\w+)=(.*)$", text, re.MULTILINE))
        return cls(
            rollback=values.get("BOOTLOADER_APP_ROLLBACK_ENABLE") == "y",
            anti_rollback=values.get("BOOTLOADER_APP_ANTI_ROLLBACK") == "y",
            secure_version_bits=int(values.get("BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD", SECURE_VERSION_FIELD_BITS)),
            signed_apps=values.get("SECURE_SIGNED_APPS_NO_SECURE_BOOT") == "y",
        )


@dataclass
class BootOutcome:
    """Which partition the bootloader loaded (None: nothing bootable) and its image."""

    partition: Partition | None
    image: ImageInfo | None


class Bootloader:
    def __init__(self, flash: Flash, log: LogFn, chip_id: int = CHIP_ID_VIRTUAL, rollback: bool = True,
                 config: BootloaderConfig | None = None, efuses: Efuses | None = None) -> None:
        self.flash = flash
        self.log = log
        self.chip_id = chip_id
        self.config = config or BootloaderConfig(rollback=rollback)
        self.rollback = self.config.rollback
        if self.config.anti_rollback and efuses is None:
            raise ValueError("anti-rollback needs the board's eFuses")
        self.efuses = efuses
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
        if self.config.anti_rollback:
            return self._select_anti_rollback(entries)
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
        return self._select_active(entries, active), False

    def _select_active(self, entries: list[OtaEntry], active: int) -> int:
        entry = entries[active]
        if self.rollback and entry.state == OtaState.NEW:
            self._write_entry(active, OtaEntry(entry.seq, OtaState.PENDING_VERIFY, entry.crc, entry.label))
        index = ((entry.seq - 1) & 0xFFFFFFFF) % len(self.slots)
        if self.config.anti_rollback and entry.state == OtaState.VALID:
            self._update_anti_rollback(self.slots[index])
        return index

    # --- anti-rollback ---

    def _select_anti_rollback(self, entries: list[OtaEntry]) -> tuple[int, bool]:
        """The CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK branch of get_selected_boot_partition."""
        assert self.efuses is not None
        self.log("I", "Enabled a check secure version of app for anti rollback")
        efuse_version = self.efuses.read_secure_version(self.config.secure_version_bits)
        self.log("I", f"Secure version (from eFuse) = {efuse_version}")
        if all(e.seq == 0xFFFFFFFF or not e.crc_ok for e in entries):
            self.log("I", "otadata[0..1] in initial state")
            return FACTORY_INDEX, True
        candidates = [i for i, e in enumerate(entries) if e.is_valid and
                      self._check_anti_rollback(self.slots[((e.seq - 1) & 0xFFFFFFFF) % len(self.slots)])]
        active = active_index([e if i in candidates else OtaEntry.blank() for i, e in enumerate(entries)])
        if active is None:
            if self.factory is not None:
                self.log("E", "ota data partition invalid, falling back to factory")
            else:
                self.log("E", "ota data partition invalid and no factory, will try all partitions")
            return FACTORY_INDEX, False
        return self._select_active(entries, active), False

    def _secure_version(self, part: Partition) -> int | None:
        try:
            return read_descriptor(self.flash.read(part.offset, 0x200)).secure_version
        except ImageError:
            return None

    def _check_anti_rollback(self, part: Partition) -> bool:
        """check_anti_rollback(): the slot's app may run if its secure_version is at least the eFuse's."""
        if not self.config.anti_rollback:
            return True
        assert self.efuses is not None
        secure_version = self._secure_version(part)
        if secure_version is None:
            self.log("E", f"Failed to get partition description {0x105}")  # ESP_ERR_NOT_FOUND
            return False
        return self.efuses.check_secure_version(secure_version, self.config.secure_version_bits)

    def _update_anti_rollback(self, part: Partition) -> None:
        assert self.efuses is not None
        secure_version = self._secure_version(part)
        if secure_version is None:
            self.log("E", f"Failed to get partition description {0x105}")
            return
        if line := self.efuses.update_secure_version(secure_version, self.config.secure_version_bits):
            self.log(line[0], line[1], "efuse")

    # --- loading ---

    def _partition(self, index: int) -> Partition | None:
        if index == FACTORY_INDEX:
            return self.factory
        return self.slots[index] if 0 <= index < len(self.slots) else None

    def _try_load(self, part: Partition) -> ImageInfo | None:
        if not self._check_anti_rollback(part):
            return None
        try:
            info = verify_image(self.flash.read(part.offset, part.size), self.chip_id, offset=part.offset)
        except ImageError as err:
            self.log("E", str(err))
            return None
        if self.config.signed_apps:  # the signature is not checked, but its sector must fit
            full = signature_sector_offset(info.length) + SIGNATURE_SECTOR_SIZE
            if full > part.size:
                self.log("E", f"Image length {full} doesn't fit in partition length {part.size}")
                return None
        self.log("I", f"Loaded app from partition at offset 0x{part.offset:x}")
        return info

    def _set_actual_ota_seq(self, index: int, initial: bool) -> None:
        if index > FACTORY_INDEX and initial:
            self._write_entry(0, OtaEntry.make(index + 1, OtaState.VALID))
            self.log("I", f"Set actual ota_seq={index + 1} in otadata[0]")
            if self.config.anti_rollback:
                self._update_anti_rollback(self.slots[index])

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
