"""The virtual bootloader against ESP-IDF's rules (bootloader_utility.c, v5.5.4; anti-rollback v5.5.5).

Each row: the two otadata entries before boot (seq, state; None = erased sector, "badcrc" = a
wrong CRC), which slots hold a bootable image, the slot expected to boot and the two entries
expected afterwards, and the rule it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.formats.app_image import CHIP_ID_ESP32, build_virtual_image, set_chip_id
from harness.formats.otadata import SECTOR_SIZE, OtaEntry, OtaState, read_entries
from harness.virtual.bootloader import Bootloader, BootloaderConfig
from harness.virtual.efuse import Efuses
from harness.virtual.flash import Flash

CSV = (Path(__file__).parents[1] / "device" / "partitions.csv").read_text()
N, P, V, I, A, U = (OtaState.NEW, OtaState.PENDING_VERIFY, OtaState.VALID, OtaState.INVALID,
                    OtaState.ABORTED, OtaState.UNDEFINED)

Entry = tuple[int, OtaState] | str | None  # (seq, state), "badcrc:<seq>:<state>", or None (erased)


@dataclass
class Row:
    rule: str
    before: tuple[Entry, Entry]
    bootable: tuple[bool, bool]  # ota_0, ota_1
    boots: str | None  # label, or None for "nothing bootable"
    after: tuple[Entry, Entry]


ROWS = [
    Row("blank otadata, no factory: ota_0, and set_actual_ota_seq writes {1, VALID} to entry 0",
        (None, None), (True, True), "ota_0", ((1, V), None)),
    Row("blank otadata, ota_0 not bootable: falls forward to ota_1 and writes {2, VALID}",
        (None, None), (False, True), "ota_1", ((2, V), None)),
    Row("one VALID entry selects slot (seq-1) % 2", ((1, V), None), (True, True), "ota_0", ((1, V), None)),
    Row("larger seq wins when both are VALID", ((1, V), (2, V)), (True, True), "ota_1", ((1, V), (2, V))),
    Row("seq 3 maps to slot 0", ((3, V), (2, V)), (True, True), "ota_0", ((3, V), (2, V))),
    Row("NEW becomes PENDING_VERIFY before loading", ((1, V), (2, N)), (True, True), "ota_1", ((1, V), (2, P))),
    Row("PENDING_VERIFY becomes ABORTED first, so the previous entry boots (rollback)",
        ((1, V), (2, P)), (True, True), "ota_0", ((1, V), (2, A))),
    Row("INVALID entry is skipped (app asked for rollback)", ((1, V), (2, I)), (True, True), "ota_0", ((1, V), (2, I))),
    Row("ABORTED entry is skipped", ((1, V), (2, A)), (True, True), "ota_0", ((1, V), (2, A))),
    Row("UNDEFINED state (rollback off) counts as valid", ((1, V), (2, U)), (True, True), "ota_1", ((1, V), (2, U))),
    Row("bad CRC entry is ignored", ((1, V), "badcrc:2:2"), (True, True), "ota_0", ((1, V), "badcrc:2:2")),
    Row("both invalid but not blank: ota_0, otadata not initial, nothing written",
        ((1, I), (2, A)), (True, True), "ota_0", ((1, I), (2, A))),
    Row("both invalid, ota_0 not bootable: falls forward to ota_1 without touching otadata",
        ((1, I), (2, A)), (False, True), "ota_1", ((1, I), (2, A))),
    Row("active slot not bootable: tries the others without touching otadata",
        ((1, V), (2, V)), (True, False), "ota_0", ((1, V), (2, V))),
    Row("NEW entry whose image is corrupt: marked PENDING_VERIFY, then ota_0 boots",
        ((1, V), (2, N)), (True, False), "ota_0", ((1, V), (2, P))),
    Row("nothing bootable: no app loaded", ((1, V), None), (False, False), None, ((1, V), None)),
    Row("bad CRC on both (states not INVALID): no active entry, 'will try all partitions', nothing written",
        ("badcrc:1:2", "badcrc:2:2"), (True, True), "ota_0", ("badcrc:1:2", "badcrc:2:2")),
    Row("bad CRC with an INVALID state on both: initial contents, so entry 0 becomes {1, VALID}",
        ("badcrc:1:3", "badcrc:2:4"), (True, True), "ota_0", ((1, V), "badcrc:2:4")),
]


def _entry_bytes(entry: Entry) -> bytes | None:
    if entry is None:
        return None
    if isinstance(entry, str):
        _, seq, state = entry.split(":")
        return OtaEntry(int(seq), int(state), 0xDEADBEEF).pack()
    return OtaEntry.make(entry[0], entry[1]).pack()


def _make_flash(tmp_path: Path, row: Row) -> Flash:
    flash = Flash.create(tmp_path / "flash.bin", CSV)
    parts = {p.label: p for p in flash.partitions()}
    good = build_virtual_image(b"\x7fELF-test-payload", version="1.0.0", project_name="t")
    bad = set_chip_id(good, CHIP_ID_ESP32)  # a real ESP32 image: not bootable here
    for label, ok in zip(("ota_0", "ota_1"), row.bootable, strict=True):
        flash.write(parts[label].offset, good if ok else bad)
    for i, entry in enumerate(row.before):
        data = _entry_bytes(entry)
        if data is not None:
            flash.write(parts["otadata"].offset + i * SECTOR_SIZE, data)
    return flash


@pytest.mark.parametrize("row", ROWS, ids=[r.rule for r in ROWS])
def test_boot_selection(tmp_path: Path, row: Row) -> None:
    lines: list[str] = []
    with _make_flash(tmp_path, row) as flash:
        outcome = Bootloader(flash, lambda level, msg, tag="boot": lines.append(f"{level} {msg}")).boot()
        otadata = next(p for p in flash.partitions() if p.label == "otadata")
        after = read_entries(flash.read(otadata.offset, SECTOR_SIZE),
                             flash.read(otadata.offset + SECTOR_SIZE, SECTOR_SIZE))
    assert (outcome.partition.label if outcome.partition else None) == row.boots, "\n".join(lines)
    for i, expected in enumerate(row.after):
        data = _entry_bytes(expected)
        assert after[i].pack() == (data if data is not None else b"\xff" * 32), f"entry {i}: {after[i]}"
    if row.boots is None:
        assert "E No bootable app partitions in the partition table" in lines
    else:
        offset = {"ota_0": 0x20000, "ota_1": 0x1D0000}[row.boots]
        assert f"I Loaded app from partition at offset 0x{offset:x}" in lines


# --- Every combination: both entries in every state, with three kinds of image validity. ---------
#
# The expectation comes from ESP-IDF's rules restated step by step below (bootloader_utility.c,
# v5.5.4, get_selected_boot_partition and load_boot_image), each step naming the rule, and checked
# against the bootloader emulation for all 8 x 8 x 3 cases. Entry 0 holds seq 1 (ota_0), entry 1
# seq 2 (ota_1).

STATES = {"NEW": N, "PENDING_VERIFY": P, "VALID": V, "INVALID": I, "ABORTED": A, "UNDEFINED": U,
          "blank": None, "bad_crc": "bad_crc"}
IMAGES = {"both_ok": (True, True), "ota_1_bad": (True, False), "both_bad": (False, False)}


def _entry(name: str, seq: int) -> Entry:
    state = STATES[name]
    if state is None:
        return None
    if state == "bad_crc":
        return f"badcrc:{seq}:{int(V)}"
    return (seq, state)


def _rules(e0: Entry, e1: Entry, bootable: tuple[bool, bool]) -> tuple[str | None, tuple[Entry, Entry]]:
    entries = [e0, e1]

    def seq(e: Entry) -> int:
        return 0xFFFFFFFF if e is None else (int(e.split(":")[1]) if isinstance(e, str) else e[0])

    def state(e: Entry) -> int:
        return 0xFFFFFFFF if e is None else (int(e.split(":")[2]) if isinstance(e, str) else e[1])

    def crc_ok(e: Entry) -> bool:
        return e is not None and not isinstance(e, str)

    # Rule 1 (rollback on): every PENDING_VERIFY entry is rewritten ABORTED first.
    for i, e in enumerate(entries):
        if state(e) == P:
            entries[i] = f"badcrc:{seq(e)}:{int(A)}" if isinstance(e, str) else (seq(e), A)
    invalid = [seq(e) == 0xFFFFFFFF or state(e) in (I, A) for e in entries]
    valid = [not inv and crc_ok(e) for inv, e in zip(invalid, entries, strict=True)]
    initial = False
    if all(invalid):
        # Rule 2: both invalid, no factory: "No factory image, trying OTA 0"; initial contents when
        # both are blank or have a bad CRC.
        start = 0
        initial = all(seq(e) == 0xFFFFFFFF or not crc_ok(e) for e in entries)
    elif not any(valid):
        start = -1  # Rule 5: no active entry: "will try all partitions"
    else:
        # Rule 3: the valid entry with the larger seq; NEW becomes PENDING_VERIFY before loading.
        active = max((i for i in (0, 1) if valid[i]), key=lambda i: seq(entries[i]))
        start = (seq(entries[active]) - 1) % 2
        if state(entries[active]) == N:
            entries[active] = (seq(entries[active]), P)
    # Rule 4: try start, then down to factory (none here), then up; otadata untouched, except
    # set_actual_ota_seq writing {slot+1, VALID} to entry 0 when it was initial.
    for index in [*range(start, -1, -1), *range(start + 1, 2)]:
        if index >= 0 and bootable[index]:
            if initial:
                entries[0] = (index + 1, V)
            return f"ota_{index}", (entries[0], entries[1])
    return None, (entries[0], entries[1])


COMBINATIONS = [(s0, s1, img) for s0 in STATES for s1 in STATES for img in IMAGES]


@pytest.mark.parametrize(("s0", "s1", "img"), COMBINATIONS, ids=[f"{a}-{b}-{c}" for a, b, c in COMBINATIONS])
def test_every_state_combination(tmp_path: Path, s0: str, s1: str, img: str) -> None:
    before = (_entry(s0, 1), _entry(s1, 2))
    boots, after = _rules(before[0], before[1], IMAGES[img])
    test_boot_selection(tmp_path, Row(f"{s0}/{s1}/{img}", before, IMAGES[img], boots, after))


# --- Anti-rollback (CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK, bootloader_utility.c v5.5.5) -------------

def _anti_rollback_boot(tmp_path: Path, entries: tuple[Entry, Entry], secure_versions: tuple[int, int],
                        efuse: int) -> tuple[str | None, int, list[str], list[OtaEntry]]:
    """Boots with ota_0/ota_1 holding apps of these secure_versions and the eFuse at `efuse`; returns the slot
    booted, the eFuse's secure version afterwards, the log lines and the otadata entries afterwards."""
    efuses = Efuses(tmp_path / "efuse.bin")
    efuses.create()
    efuses.burn_secure_version_bits((1 << efuse) - 1)
    flash = Flash.create(tmp_path / "flash.bin", CSV)
    parts = {p.label: p for p in flash.partitions()}
    for label, secure_version in zip(("ota_0", "ota_1"), secure_versions, strict=True):
        flash.write(parts[label].offset, build_virtual_image(b"\x7fELF", version="1.0.0", project_name="t",
                                                             secure_version=secure_version))
    for i, entry in enumerate(entries):
        if (data := _entry_bytes(entry)) is not None:
            flash.write(parts["otadata"].offset + i * SECTOR_SIZE, data)
    lines: list[str] = []
    config = BootloaderConfig(anti_rollback=True)
    with flash:
        outcome = Bootloader(flash, lambda level, msg, tag="boot": lines.append(f"{level} {tag}: {msg}"),
                             config=config, efuses=efuses).boot()
        after = read_entries(flash.read(parts["otadata"].offset, SECTOR_SIZE),
                             flash.read(parts["otadata"].offset + SECTOR_SIZE, SECTOR_SIZE))
    return (outcome.partition.label if outcome.partition else None), efuses.read_secure_version(), lines, after


@pytest.mark.parametrize(("rule", "entries", "secure_versions", "efuse", "boots", "efuse_after"), [
    ("initial otadata: the slots from ota_0 up, and the eFuse raised to the app's", (None, None), (2, 0), 0,
     "ota_0", 2),
    ("initial otadata, ota_0 below the eFuse: ota_1", (None, None), (0, 3), 1, "ota_1", 3),
    ("the newer entry's app is below the eFuse: the older entry is the active one", ((1, V), (2, V)), (2, 1), 2,
     "ota_0", 2),
    ("a VALID active entry raises the eFuse to its app's secure_version", ((1, V), (2, V)), (1, 3), 1, "ota_1", 3),
    ("a NEW entry is not confirmed: PENDING_VERIFY, and the eFuse stays", ((1, V), (2, N)), (1, 3), 1, "ota_1", 1),
    ("a PENDING_VERIFY entry is aborted: the previous app, the eFuse stays", ((1, V), (2, P)), (1, 3), 1,
     "ota_0", 1),
    ("every app below the eFuse: nothing boots", ((1, V), (2, V)), (0, 1), 2, None, 2),
])
def test_anti_rollback(tmp_path: Path, rule: str, entries: tuple[Entry, Entry], secure_versions: tuple[int, int],
                       efuse: int, boots: str | None, efuse_after: int) -> None:
    booted, counter, lines, _ = _anti_rollback_boot(tmp_path, entries, secure_versions, efuse)
    assert (booted, counter) == (boots, efuse_after), "\n".join(lines)
    assert "I boot: Enabled a check secure version of app for anti rollback" in lines
    assert f"I boot: Secure version (from eFuse) = {efuse}" in lines
    if counter > efuse:
        assert f"I efuse: Anti-rollback is set. eFuse field is updated({counter})." in lines


def test_efuse_bits_are_write_once(tmp_path: Path) -> None:
    """The field counts bits set; a burn only ORs bits in; a lower version is refused, not written."""
    efuses = Efuses(tmp_path / "efuse.bin")
    assert efuses.read_secure_version() == 0  # no file: a blank chip
    efuses.create()
    assert efuses.update_secure_version(3) == ("I", "Anti-rollback is set. eFuse field is updated(3).")
    assert (efuses.secure_version_field(), efuses.read_secure_version()) == (0b111, 3)
    assert efuses.update_secure_version(3) is None
    assert efuses.update_secure_version(1)[0] == "E" and efuses.read_secure_version() == 3
    efuses.burn_secure_version_bits(0b1000_0000)  # a stray bit counts too: the version is the number of bits
    assert efuses.read_secure_version() == 4 and efuses.read_secure_version(field_bits=4) == 3
    assert not efuses.check_secure_version(3) and efuses.check_secure_version(4)
    assert efuses.update_secure_version(33)[0] == "E"


def test_bootloader_config_from_sdkconfig() -> None:
    text = ("CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y\nCONFIG_BOOTLOADER_APP_ANTI_ROLLBACK=y\n"
            "CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD=16\n"
            "# CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT is not set\n")
    assert BootloaderConfig.from_sdkconfig(text) == BootloaderConfig(True, True, 16, False)
    assert BootloaderConfig.from_sdkconfig("") == BootloaderConfig(rollback=False)


# --- Signed apps without secure boot: the bootloader does not check signatures (RSA scheme) ------

def test_signed_apps_bootloader_boots_unsigned_images_but_needs_room_for_the_signature(tmp_path: Path) -> None:
    """With CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT and the RSA scheme, ESP-IDF's bootloader checks no
    signature (only esp_ota_end() does), but the signature sector after the image must fit in the slot."""
    config = BootloaderConfig(signed_apps=True)
    flash = Flash.create(tmp_path / "flash.bin", CSV)
    parts = {p.label: p for p in flash.partitions()}
    flash.write(parts["ota_0"].offset, build_virtual_image(b"\x7fELF", version="1.0.0", project_name="t"))
    lines: list[str] = []
    with flash:
        outcome = Bootloader(flash, lambda level, msg, tag="boot": lines.append(msg), config=config).boot()
        assert outcome.partition is not None and outcome.partition.label == "ota_0", lines
        # an image that fills the slot up to its last 4 KB leaves no room for the signature sector
        flash.erase(parts["ota_0"].offset, parts["ota_0"].size)
        flash.erase(parts["otadata"].offset, parts["otadata"].size)
        size = parts["ota_0"].size
        # it ends inside the slot's last 4 KB
        big = build_virtual_image(b"\0" * (size - 4096 - 200), version="1.0.0", project_name="t")
        flash.write(parts["ota_0"].offset, big)
        lines.clear()
        outcome = Bootloader(flash, lambda level, msg, tag="boot": lines.append(msg), config=config).boot()
    assert outcome.partition is None
    assert any(line.startswith("Image length ") and "doesn't fit in partition length" in line for line in lines)
