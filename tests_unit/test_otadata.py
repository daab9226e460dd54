"""otadata entries: CRC, validity, active entry, and the seq/sector esp_rewrite_ota_data writes."""

from __future__ import annotations

import struct

import pytest

from harness.formats import otadata as od
from harness.formats.otadata import OtaEntry, OtaState


def _rom_crc32_le(crc: int, data: bytes) -> int:
    """Bit-wise esp_rom_crc32_le (reflected poly 0xEDB88320, inverted in and out), for cross-checking."""
    crc = ~crc & 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return ~crc & 0xFFFFFFFF


def _c_next_seq(active_seq: int, slot: int, n: int) -> int:
    """The while loop of esp_rewrite_ota_data, transliterated."""
    i = 0
    while active_seq > (slot + 1) % n + i * n:
        i += 1
    return (slot + 1) % n + i * n


def entries(*pairs: tuple[int, OtaState] | None) -> list[OtaEntry]:
    return [OtaEntry.blank() if p is None else OtaEntry.make(*p) for p in pairs]


# -------------------------------------------------------------------------------------- CRC


@pytest.mark.parametrize(("seq", "crc"), [(1, 0x4743989A), (2, 0x55F63774)])
def test_crc_vectors(seq: int, crc: int) -> None:
    assert od.ota_crc(seq) == crc
    assert OtaEntry.make(seq, OtaState.VALID).crc == crc


@pytest.mark.parametrize("seq", [0, 1, 2, 3, 17, 0x12345678, 0xFFFFFFFE, 0xFFFFFFFF])
def test_crc_matches_rom_algorithm(seq: int) -> None:
    assert od.ota_crc(seq) == _rom_crc32_le(0xFFFFFFFF, struct.pack("<I", seq))


# ---------------------------------------------------------------------------------- entries


def test_pack_layout_and_round_trip() -> None:
    entry = OtaEntry.make(1, OtaState.PENDING_VERIFY, label=b"L" * 20)
    raw = entry.pack()
    assert raw == struct.pack("<I", 1) + b"L" * 20 + struct.pack("<II", 1, 0x4743989A)
    assert OtaEntry.unpack(raw) == entry
    sector = entry.sector()
    assert len(sector) == 0x1000 and sector[32:] == b"\xff" * (0x1000 - 32)
    with pytest.raises(ValueError):
        OtaEntry.unpack(raw[:31])
    with pytest.raises(ValueError):
        OtaEntry(1, OtaState.NEW, 0, label=b"x").pack()


def test_erased_entry() -> None:
    erased = OtaEntry.unpack(b"\xff" * 32)
    assert erased == OtaEntry.blank()
    assert erased.state is OtaState.UNDEFINED
    assert not erased.crc_ok and erased.is_invalid and not erased.is_valid


def test_unknown_state_number_survives() -> None:
    raw = struct.pack("<I20sII", 1, b"\xff" * 20, 7, od.ota_crc(1))
    entry = OtaEntry.unpack(raw)
    assert entry.state == 7 and not isinstance(entry.state, OtaState)
    assert entry.is_valid  # IDF only rules out INVALID and ABORTED
    assert entry.pack() == raw


@pytest.mark.parametrize(
    ("state", "valid"),
    [
        (OtaState.NEW, True),
        (OtaState.PENDING_VERIFY, True),
        (OtaState.VALID, True),
        (OtaState.UNDEFINED, True),  # rollback disabled writes UNDEFINED; it still boots
        (OtaState.INVALID, False),
        (OtaState.ABORTED, False),
    ],
)
def test_validity_by_state(state: OtaState, valid: bool) -> None:
    assert OtaEntry.make(5, state).is_valid is valid


def test_bad_crc_is_not_valid() -> None:
    entry = OtaEntry(1, OtaState.VALID, 0x4743989A ^ 1)
    assert not entry.is_invalid  # "invalid" in IDF's sense ignores the CRC ...
    assert not entry.is_valid  # ... "valid" does not


def test_read_entries_from_sectors() -> None:
    a, b = OtaEntry.make(1, OtaState.VALID), OtaEntry.make(2, OtaState.NEW)
    assert od.read_entries(a.sector(), b.sector()) == [a, b]
    assert od.split_partition(a.sector() + b.sector()) == [a, b]
    assert od.split_partition(b"\xff" * 0x2000) == [OtaEntry.blank(), OtaEntry.blank()]


# ---------------------------------------------------------------------------- active entry


@pytest.mark.parametrize(
    ("pair", "active"),
    [
        ((None, None), None),
        (((1, OtaState.VALID), None), 0),
        ((None, (1, OtaState.VALID)), 1),
        (((1, OtaState.VALID), (2, OtaState.NEW)), 1),
        (((3, OtaState.VALID), (2, OtaState.VALID)), 0),
        (((4, OtaState.VALID), (4, OtaState.NEW)), 0),  # a tie goes to entry 0 (MAX == otadata[0])
        (((1, OtaState.VALID), (2, OtaState.ABORTED)), 0),  # the unconfirmed update rolled back
        (((1, OtaState.VALID), (2, OtaState.INVALID)), 0),
        (((1, OtaState.INVALID), (2, OtaState.ABORTED)), None),
    ],
)
def test_active_index(pair: tuple, active: int | None) -> None:
    assert od.active_index(entries(*pair)) == active


def test_active_index_ignores_bad_crc() -> None:
    good, bad = OtaEntry.make(1, OtaState.VALID), OtaEntry(2, OtaState.VALID, 0)
    assert od.active_index([good, bad]) == 0


@pytest.mark.parametrize(
    ("seq", "count", "slot"),
    [(1, 2, 0), (2, 2, 1), (3, 2, 0), (4, 2, 1), (7, 3, 0), (0, 2, 1), (0, 3, 0)],
)
def test_slot_for_seq(seq: int, count: int, slot: int) -> None:
    # seq 0 wraps in uint32 arithmetic: (0 - 1) % n == 0xFFFFFFFF % n.
    assert od.slot_for_seq(seq, count) == slot


def test_slot_for_seq_needs_slots() -> None:
    with pytest.raises(ValueError):
        od.slot_for_seq(1, 0)


# ------------------------------------------------------------------ esp_rewrite_ota_data


def test_next_seq_on_blank_otadata_writes_sector_0() -> None:
    blank = entries(None, None)
    assert od.next_seq(blank, 0, 2) == (1, 0)
    assert od.next_seq(blank, 1, 2) == (2, 0)
    # All-invalid counts as "no active entry" too, so sector 0 gets slot + 1.
    assert od.next_seq(entries((3, OtaState.INVALID), (4, OtaState.ABORTED)), 1, 2) == (2, 0)


def test_worked_example_two_slots() -> None:
    # First boot: the bootloader's set_actual_ota_seq writes [0] = {1, VALID}.
    state = entries((1, OtaState.VALID), None)
    # OTA to ota_1: seq 2 into the other sector, the running entry stays as rollback target.
    sector, entry = od.rewrite_entry(state, 1, 2)
    assert (sector, entry.seq, entry.state) == (1, 2, OtaState.NEW)
    state[sector] = entry
    assert od.active_index(state) == 1 and od.slot_for_seq(state[1].seq, 2) == 1
    # Confirmed, then OTA back to ota_0: seq 3 into sector 0.
    state[1] = OtaEntry.make(2, OtaState.VALID)
    assert od.next_seq(state, 0, 2) == (3, 0)
    state[0] = OtaEntry.make(3, OtaState.NEW)
    assert od.next_seq(state, 1, 2) == (4, 1)
    # Selecting the slot that already runs keeps the seq and writes the other sector.
    state[1] = OtaEntry.make(4, OtaState.VALID)
    assert od.next_seq(state, 1, 2) == (4, 0)


def test_rollback_then_new_update_reuses_the_aborted_sector() -> None:
    state = entries((1, OtaState.VALID), (2, OtaState.ABORTED))
    assert od.next_seq(state, 1, 2) == (2, 1)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 16])
def test_next_seq_matches_the_c_loop(count: int) -> None:
    for active_seq in range(40):
        for slot in range(count):
            state = entries(None, (active_seq, OtaState.VALID))
            seq, sector = od.next_seq(state, slot, count)
            assert seq == _c_next_seq(active_seq, slot, count)
            assert sector == 0  # ~1 & 1
            assert seq >= active_seq and seq - active_seq < count
            if seq:
                assert od.slot_for_seq(seq, count) == slot


def test_next_seq_rejects_unknown_slot() -> None:
    with pytest.raises(ValueError):
        od.next_seq(entries(None, None), 2, 2)
    with pytest.raises(ValueError):
        od.next_seq(entries(None, None), 0, 0)


def test_rewrite_entry_state_and_label() -> None:
    old = OtaEntry.make(1, OtaState.VALID)
    other = OtaEntry(0xFFFFFFFF, OtaState.UNDEFINED, 0xFFFFFFFF, label=b"kept-from-flash-1234")
    sector, entry = od.rewrite_entry([old, other], 1, 2, rollback_enabled=False)
    assert sector == 1
    assert entry == OtaEntry(2, OtaState.UNDEFINED, 0x55F63774, b"kept-from-flash-1234")
    assert entry.is_valid  # UNDEFINED boots when rollback is off
