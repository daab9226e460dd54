"""`Backtrace:` lines of a serial console, decoded to function, file and line, for a failure report.

A panicking ESP32 prints its call stack as PC:SP pairs (``Backtrace: 0x400d1234:0x3ffb5e00 ...``); the
virtual board's panic handler prints the same line with PCs of the host executable
(device/port/linux/src/esp_system.c). Decoding is esp-idf-panic-decoder's (what idf.py monitor uses): it
keeps the addresses that fall in an ELF's code and runs ``<toolchain prefix>addr2line -fiaC`` on them.

What decoding needs (`Symbols`): the ELF files of the firmware builds that may have run, the toolchain
prefix of their addr2line (``xtensa-esp32-elf-`` for an ESP32, ``""`` for the virtual board's host build)
and, optionally, the chip's ROM ELF. Without addr2line or any ELF nothing is decoded, and the report says
which one is missing.

Which build ran: builds of different variants put different code at the same address, and the decoder
takes the first ELF whose code holds an address. So for each `Backtrace:` line the ELF is the one whose
SHA-256 starts with the ``ELF file SHA256:`` the app printed at its boot (the app descriptor carries it,
on a chip as on the virtual board); when no such line was printed or none matches, all are used and the
report says the names may be wrong.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.timeline import Entry

if TYPE_CHECKING:  # the decoder itself is imported at the first Backtrace line (see _decoder_class)
    from esp_idf_panic_decoder import PcAddressDecoder
    from esp_idf_panic_decoder.pc_address_decoder import PcAddressLocation

BACKTRACE_MARK = "Backtrace:"
ELF_SHA256 = re.compile(r"ELF file SHA256:\s+([0-9a-f]{8,64})")
MAX_BACKTRACES = 5  # per board: a crash loop prints the same trace at every boot
SECTION_TITLE = "decoded backtrace ({board})"

# targets whose cores are Xtensa (xtensa-<target>-elf- toolchains); every other ESP target is RISC-V
XTENSA_TARGETS = frozenset({"esp32", "esp32s2", "esp32s3"})
RISCV_TOOLCHAIN_PREFIX = "riscv32-esp-elf-"
ROM_ELF_DIR_VARIABLE = "ESP_ROM_ELF_DIR"  # set by ESP-IDF's export script, read by esp-idf-monitor too
# addr2line of a 64-bit ELF (the host build) prints 16-digit addresses; a chip's have 8, and only those
# are what the library's parser splits its output at
_WIDE_ADDRESS = re.compile(r"^0x0{8}([0-9a-f]{8})$", re.MULTILINE)


def toolchain_prefix_of(target: str) -> str:
    """The prefix of ESP-IDF's GCC toolchain for a chip: xtensa-esp32-elf- for esp32, riscv32-esp-elf- for esp32c3."""
    return f"xtensa-{target}-elf-" if target in XTENSA_TARGETS else RISCV_TOOLCHAIN_PREFIX


def rom_elf_of(target: str, rom_elf_dir: str | None = None) -> Path | None:
    """The chip's ROM ELF from $ESP_ROM_ELF_DIR (ESP-IDF's esp-rom-elfs), when only one revision is there.

    Several revisions of one chip (esp32_rev0_rom.elf, esp32_rev300_rom.elf) would need the chip revision
    matched the way ESP-IDF's roms.json does; then none is used and ROM addresses stay undecoded.
    """
    directory = rom_elf_dir if rom_elf_dir is not None else os.environ.get(ROM_ELF_DIR_VARIABLE)
    if not directory:
        return None
    found = sorted(Path(directory).glob(f"{target}_rev*_rom.elf"))
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Symbols:
    """What decoding a session's backtraces needs.

    `elfs`: the firmware ELF files that may have run (one per variant built); `toolchain_prefix`: what goes
    before ``addr2line``; `how_to_get_toolchain`: told when that addr2line is not on PATH.
    """

    elfs: tuple[Path, ...]
    toolchain_prefix: str
    rom_elf: Path | None = None
    how_to_get_toolchain: str = ""

    @property
    def addr2line(self) -> str:
        return f"{self.toolchain_prefix}addr2line"

    def present_elfs(self) -> tuple[Path, ...]:
        return tuple(elf for elf in self.elfs if elf.is_file())

    def missing(self) -> str | None:
        """Why nothing can be decoded (addr2line or the ELF missing), or None when decoding can go ahead."""
        if shutil.which(self.addr2line) is None:
            hint = f" ({self.how_to_get_toolchain})" if self.how_to_get_toolchain else ""
            return f"not decoded: {self.addr2line} is not on PATH{hint}"
        if not self.present_elfs():
            wanted = ", ".join(map(str, self.elfs)) or "no firmware was built in this session"
            return f"not decoded: the firmware's ELF file is missing ({wanted})"
        return None


@dataclass(frozen=True)
class DecodedBacktrace:
    line: str  # the Backtrace: line as the board printed it
    elfs: tuple[Path, ...]  # what it was decoded with
    frames: list[tuple[str, list[PcAddressLocation]]]  # (address, its location and the ones it was inlined in)
    note: str = ""  # when which build ran is not known for sure

    def text(self) -> str:
        lines = [self.line, f"  decoded with {', '.join(map(str, self.elfs))}"]
        if self.note:
            lines.append(f"  {self.note}")
        if not self.frames:
            lines.append("  no address of this line is in the code of that ELF")
        for address, locations in self.frames:
            first, *inlined_in = locations
            lines.append(f"  {address}: {_location(first)}")
            lines += [f"    (inlined by) {_location(location)}" for location in inlined_in]
        return "\n".join(lines)


@dataclass
class BacktraceReport:
    """The decoded `Backtrace:` lines of one board's console, or the reason they could not be decoded."""

    backtraces: list[DecodedBacktrace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join([*self.notes, *(b.text() for b in self.backtraces)])


def _location(location: PcAddressLocation) -> str:
    if location.path == "ROM":
        return f"{location.func} in ROM"
    return f"{location.func} at {location.path}" + (f":{location.line}" if location.line else "")


@functools.cache
def _decoder_class() -> type[PcAddressDecoder]:
    """esp-idf-panic-decoder's decoder, with addr2line's failures told to the caller instead of printed, and 64-bit
    ELFs' addresses narrowed to the 8 digits its parser expects (the parsing itself stays the library's).
    Made at the first Backtrace line: the library (and pyelftools) would cost every pytest process of a run
    50 ms to import, for the few tests whose board crashes."""
    from esp_idf_panic_decoder import PcAddressDecoder

    class _Decoder(PcAddressDecoder):
        def perform_addr2line(self, addresses: list[str], elf_file: str,
                              is_rom: bool = False) -> dict[str, list[PcAddressLocation]]:
            cmd = [f"{self.toolchain_prefix}addr2line", "-fiaC", "-e", elf_file, *addresses]
            try:
                result = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=True,
                                        timeout=30)
            except (OSError, subprocess.SubprocessError) as err:
                raise DecodeError(f"{' '.join(cmd[:4])} ...: {err}") from err
            return self.parse_addr2line_output(_WIDE_ADDRESS.sub(r"0x\1", result.stdout), is_rom=is_rom)

    return _Decoder


class DecodeError(RuntimeError):
    pass


@functools.cache
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _elf_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path, stat.st_mtime_ns, stat.st_size)


def _running_elfs(lines: Sequence[str], index: int, elfs: tuple[Path, ...]) -> tuple[tuple[Path, ...], str]:
    """The ELF(s) of the app that printed lines[index]: by the last ELF SHA256 printed before it."""
    printed = next((m.group(1) for line in reversed(lines[:index]) if (m := ELF_SHA256.search(line))), None)
    if len(elfs) == 1 and printed is None:
        return elfs, ""
    if printed is None:
        return elfs, "which build ran is unknown (no 'ELF file SHA256' line before it): function names may be wrong"
    matching = tuple(elf for elf in elfs if _elf_sha256(elf).startswith(printed))
    if matching:
        return matching, ""
    return elfs, (f"the app's ELF SHA256 {printed} is none of these builds': function names may be wrong "
                  "(was the board flashed with another build?)")


def decode_console(lines: Sequence[str], symbols: Symbols) -> BacktraceReport | None:
    """The decoded `Backtrace:` lines of one console (the last MAX_BACKTRACES), None when it printed none."""
    indexes = [i for i, line in enumerate(lines) if BACKTRACE_MARK in line]
    if not indexes:
        return None
    missing = symbols.missing()
    if missing is not None:
        return BacktraceReport(notes=[missing])
    report = BacktraceReport()
    if len(indexes) > MAX_BACKTRACES:
        report.notes.append(f"{len(indexes) - MAX_BACKTRACES} earlier Backtrace line(s) not shown")
    elfs = symbols.present_elfs()
    rom = str(symbols.rom_elf) if symbols.rom_elf is not None else None
    for index in indexes[-MAX_BACKTRACES:]:
        running, note = _running_elfs(lines, index, elfs)
        decoder = _decoder_class()(symbols.toolchain_prefix, [str(elf) for elf in running], rom)
        try:
            frames = decoder.translate_addresses(lines[index])
        except DecodeError as err:
            report.notes.append(f"not decoded: {err}")
            break
        report.backtraces.append(DecodedBacktrace(lines[index], running, frames, note))
    return report


def report_sections(entries: Iterable[Entry], symbols: Symbols) -> list[tuple[str, str]]:
    """("decoded backtrace (<board>)", text) for each board whose serial console printed a Backtrace line."""
    consoles: dict[str, list[str]] = {}
    for entry in entries:
        if entry.kind == "serial":
            consoles.setdefault(entry.source, []).append(entry.text)
    sections = []
    for board, lines in consoles.items():
        decoded = decode_console(lines, symbols)
        if decoded is not None:
            sections.append((SECTION_TITLE.format(board=board), decoded.text()))
    return sections
