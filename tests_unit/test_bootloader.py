"""The virtual bootloader against ESP-IDF's rules (bootloader_utility.c, v5.5.4).

Each row: the two otadata entries before boot (seq, state; None = erased sector, "badcrc" = a
wrong CRC), which slots hold a bootable image, the slot expected to boot and the two entries
expected afterwards, and the rule it checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.images import CHIP_ID_ESP32, build_virtual_image, set_chip_id
from harness.virtual.bootloader import Bootloader
from harness.virtual.flash import Flash
from harness.virtual.otadata import SECTOR_SIZE, OtaEntry, OtaState, read_entries

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
        outcome = Bootloader(flash, lambda level, msg: lines.append(f"{level} {msg}")).boot()
        otadata = next(p for p in flash.partitions() if p.label == "otadata")
        after = read_entries(flash.read(otadata.offset, SECTOR_SIZE), flash.read(otadata.offset + SECTOR_SIZE, SECTOR_SIZE))
    assert (outcome.partition.label if outcome.partition else None) == row.boots, "\n".join(lines)
    for i, expected in enumerate(row.after):
        data = _entry_bytes(expected)
        assert after[i].pack() == (data if data is not None else b"\xff" * 32), f"entry {i}: {after[i]}"
    if row.boots is None:
        assert "E No bootable app partitions in the partition table" in lines
    else:
        offset = {"ota_0": 0x20000, "ota_1": 0x1D0000}[row.boots]
        assert f"I Loaded app from partition at offset 0x{offset:x}" in lines
