"""The host port's miniz tinfl (device/port/linux/src/miniz.c) keeps the ROM API's contract that ota_inflate.c
relies on: streaming input in any chunks, a wrapping power-of-two output buffer, the statuses and their order,
Adler-32 checking of zlib streams, every byte of input taken, DONE at the end and nothing consumed past it."""

from __future__ import annotations

import random
import re
import zlib
from pathlib import Path

import pytest

from harness.virtual import firmware
from tests_unit.test_host_port import _run

NEEDS_MORE_INPUT, HAS_MORE_OUTPUT, DONE, FAILED, ADLER32_MISMATCH, BAD_PARAM = 1, 2, 0, -1, -2, -3
DICT = 32768


@pytest.fixture(scope="module")
def port_check() -> Path:
    return firmware.build_port_check()


def _data() -> bytes:
    rng = random.Random(5)
    return b"".join(rng.choice([b"esp32 ", b"ota ", rng.randbytes(7), bytes(40)]) for _ in range(40_000))


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _inflate(exe: Path, tmp_path: Path, stream: bytes, zlib_header: bool, in_chunk: int = 4096,
             out_size: int = DICT) -> tuple[list[int], dict[str, str]]:
    path = tmp_path / "stream.bin"
    path.write_bytes(stream)
    out = _run(exe, tmp_path, f"inflate {path} {int(zlib_header)} {in_chunk} {out_size}\n").stdout
    statuses = re.search(r"^statuses=(\S*)$", out, re.MULTILINE)
    result = re.search(r"^status=(\S+) in=(\d+) out=(\d+) crc=([0-9a-f]+)$", out, re.MULTILINE)
    assert statuses and result, out
    fields = dict(zip(("status", "in", "out", "crc"), result.groups(), strict=True))
    return [int(s) for s in statuses.group(1).split(",") if s], fields


@pytest.mark.parametrize("in_chunk", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("zlib_header", [False, True])
def test_streams_inflate_in_any_chunks(port_check: Path, tmp_path: Path, zlib_header: bool, in_chunk: int) -> None:
    """Raw deflate (gzip's body) and zlib streams inflate whole whatever the input chunks, through a 32 KB wrapping
    buffer that fills (HAS_MORE_OUTPUT) many times; every input byte is taken."""
    data = _data()
    stream = zlib.compress(data, 9) if zlib_header else _raw_deflate(data)
    statuses, result = _inflate(port_check, tmp_path, stream, zlib_header, in_chunk)
    assert result == {"status": str(DONE), "in": str(len(stream)), "out": str(len(data)),
                      "crc": f"{zlib.crc32(data):08x}"}
    assert HAS_MORE_OUTPUT in statuses and statuses[-1] == DONE, statuses


def test_bytes_after_the_end_are_not_consumed(port_check: Path, tmp_path: Path) -> None:
    """A raw deflate stream followed by a gzip-like trailer: DONE, and `in` stops at the stream's end, so the
    caller gets the trailer back (the ROM's miniz 1.x may keep up to 3 bytes in its bit buffer instead)."""
    data = _data()
    stream = _raw_deflate(data)
    _, result = _inflate(port_check, tmp_path, stream + b"TRAILER!", False, in_chunk=1 << 20)
    assert (result["status"], result["in"], result["out"]) == (str(DONE), str(len(stream)), str(len(data)))


def test_a_bad_adler32_and_bad_data_fail(port_check: Path, tmp_path: Path) -> None:
    """A zlib stream with its Adler-32 changed is ADLER32_MISMATCH; a reserved block type is FAILED."""
    stream = zlib.compress(_data(), 9)
    assert _inflate(port_check, tmp_path, stream[:-1] + bytes([stream[-1] ^ 1]), True)[1]["status"] == str(
        ADLER32_MISMATCH)
    raw = _raw_deflate(_data())
    assert _inflate(port_check, tmp_path, bytes([raw[0] | 0b110]) + raw[1:], False)[1]["status"] == str(FAILED)


def test_a_wrapping_buffer_must_be_a_power_of_two(port_check: Path, tmp_path: Path) -> None:
    """tinfl's rule: without TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF the output buffer's size is a power of two."""
    statuses, result = _inflate(port_check, tmp_path, _raw_deflate(_data()), False, out_size=DICT - 1)
    assert statuses == [BAD_PARAM] and result["out"] == "0", (statuses, result)
