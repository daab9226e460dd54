"""Compressed images.

gzip and zlib images (harness.formats.app_image.compress: Python's own compressors) are inflated into the slot as
they arrive (docs/protocol.md, "Compressed images"). The command's `size` and `sha256` are the decompressed image's;
progress counts the stream's bytes (`bytes`) and the decompressed bytes written (`written`).

Every refusal leaves the device on v1 without a reboot, still answering (Ota.assert_healthy_on_base).
"""

from __future__ import annotations

import hashlib
import struct

import pytest

from harness.formats import app_image
from harness.fwserver import FaultPlan
from harness.link import DeviceLink

SLOT_SIZE = 0x1B0000  # ota_0 / ota_1 in device/partitions.csv
CUT_AT = 40_000  # compressed bytes of the first response before the connection drops
# How much a refused stream may have written before it was stopped: the image head, the first segment and
# one 32 KB dictionary's worth of output, far below the slot.
EARLY_STOP = 64 * 1024


def _progress(link: DeviceLink, device_id: str, request_id: str) -> list[dict]:
    return [e for e in link.ota_events(device_id, request_id) if e["state"] == "downloading"]


def _running_chip_id(firmware) -> int:
    return app_image.verify_image(firmware.image(), None).chip_id


@pytest.mark.parametrize("encoding", [*app_image.COMPRESSIONS, "gzip_named"])
def test_compressed_image_installs(ota, board, link: DeviceLink, fw_server, firmware, encoding: str) -> None:
    """A gzip or zlib image with the decompressed image's `sha256` and `size` installs; progress ends at the
    stream's length in `bytes` and the image's in `written`, and fewer bytes crossed the wire than the image has.

    One request, Content-Length the compressed length: percent follows the stream. `gzip_named` carries a file
    name in its header (FNAME), as the `gzip` command writes it."""
    image = firmware.image(version="2.0.0")
    if encoding == "gzip_named":
        stream = app_image.compress(image, "gzip", name="hil_ota_agent.bin")
        assert stream[3] & 0x08, "FNAME flag"
    else:
        stream = app_image.compress(image, encoding)
    artifact = fw_server.add(stream, name=f"fw.bin.{encoding}")
    ota.install(f"z-{encoding}", artifact.url, "2.0.0", sha256=hashlib.sha256(image).hexdigest(), size=len(image))
    progress = _progress(link, board.device_id, f"z-{encoding}")
    last = progress[-1]
    assert (last["bytes"], last["total"], last["percent"], last["written"]) == (len(stream), len(stream), 100,
                                                                                len(image)), last
    written = [e["written"] for e in progress]
    assert written == sorted(written), progress
    [request] = fw_server.requests_for(artifact)
    assert request.bytes_sent == len(stream) < len(image)


def test_plain_image_reports_no_written(ota, board, link: DeviceLink, fw_server, firmware) -> None:
    """The positive control of detection: a plain image (first byte 0xE9) is not taken for a compressed one:
    its progress has no `written`, and it installs as before."""
    artifact = fw_server.add(firmware.image(version="2.0.0"))
    ota.install("z-plain", artifact.url, "2.0.0")
    progress = _progress(link, board.device_id, "z-plain")
    assert progress and not any("written" in e for e in progress), progress


# What each corrupt stream's `detail` names: the check that refused it (a flip in a stored stream's block header,
# not in its data, would be invalid deflate data).
CORRUPT_DETAIL = {
    "deflate_block_type": ("invalid deflate data",),
    "in_transit": ("CRC-32", "invalid deflate data"),
    "gzip_crc32": ("CRC-32",),
    "gzip_length": ("length",),
    "zlib_adler32": ("Adler-32",),
    "bad_header": ("reserved flags",),
    "data_after_end": ("after the end",),
}


def _gzip_with_crc(stream: bytes, xor: int) -> bytes:
    """The gzip stream with its trailer's CRC-32 changed: the deflate data still inflates to the right image."""
    crc, size = struct.unpack("<II", stream[-8:])
    return stream[:-8] + struct.pack("<II", crc ^ xor, size)


@pytest.mark.parametrize("case", list(CORRUPT_DETAIL))
def test_corrupt_stream_is_refused(ota, fw_server, firmware, case: str) -> None:
    """A stream that does not inflate is `failed`/`corrupt_stream`, nothing switched: invalid deflate data, a
    byte flipped on the way, a gzip CRC-32 or length that does not match, a zlib Adler-32 that does not, a gzip
    header with reserved flags, or bytes after the end.

    A flip in Huffman-coded data may inflate to anything, even past the image (then `too_large`), so the flip on
    the way is in a stored (level 0) stream: one output byte changes, and only the CRC-32 can tell. In the checksum
    cases the deflate data are intact and inflate to the right image, so only the stream's own check refuses
    them (no `sha256` in the command, and esp_ota_end would accept the image)."""
    image = firmware.image(version="2.0.0")
    gz, zl = app_image.compress(image, "gzip"), app_image.compress(image, "zlib")
    faults = FaultPlan()
    if case == "deflate_block_type":  # the first block's BTYPE set to 11, which RFC 1951 reserves
        stream = gz[:10] + bytes([gz[10] | 0b110]) + gz[11:]
    elif case == "in_transit":  # the server flips a byte in the middle of a stored stream
        stream = app_image.compress(image, "gzip", level=0)
        faults = FaultPlan(corrupt_offsets=(len(stream) // 2,))
    elif case == "gzip_crc32":
        stream = _gzip_with_crc(gz, 0x1)
    elif case == "gzip_length":
        stream = gz[:-4] + struct.pack("<I", len(image) + 1)
    elif case == "zlib_adler32":
        stream = zl[:-1] + bytes([zl[-1] ^ 0x1])
    elif case == "bad_header":  # FLG with a reserved bit set (RFC 1952: must be refused)
        stream = gz[:3] + bytes([gz[3] | 0x80]) + gz[4:]
    else:
        stream = gz + b"\0" * 16
    artifact = fw_server.add(stream, faults=faults)
    since = ota.start(f"zc-{case}", artifact.url)
    event = ota.expect_outcome(f"zc-{case}", "failed", "corrupt_stream", since)
    assert any(words in event["detail"] for words in CORRUPT_DETAIL[case]), event
    ota.assert_healthy_on_base(since)


@pytest.mark.parametrize("where", ["deflate_data", "trailer"])
def test_truncated_stream_is_refused(ota, fw_server, firmware, where: str) -> None:
    """A compressed stream cut short (half of it, or inside its 8-byte trailer) and served whole (its
    Content-Length the cut length) is `failed`/`corrupt_stream`: it ends before its end."""
    stream = app_image.compress(firmware.image(version="2.0.0"), "gzip")
    keep = len(stream) // 2 if where == "deflate_data" else len(stream) - 3
    artifact = fw_server.add(stream, faults=FaultPlan(truncate_to=keep))
    since = ota.start(f"zt-{where}", artifact.url)
    event = ota.expect_outcome(f"zt-{where}", "failed", "corrupt_stream", since)
    assert "truncated" in event.get("detail", ""), event
    ota.assert_healthy_on_base(since)


def _oversized_image(firmware, payload: bytes) -> bytes:
    """A well-formed, newer image for this chip whose second segment is `payload`."""
    image = app_image.build_virtual_image(payload, version="9.0.0", project_name="oversized")
    return app_image.set_chip_id(image, _running_chip_id(firmware))


@pytest.mark.parametrize("case", ["segment_past_the_slot", "data_past_the_image", "size_in_command"])
def test_stream_inflating_beyond_the_slot_is_refused(ota, board, link: DeviceLink, fw_server, firmware,
                                                     case: str) -> None:
    """A few KB of gzip that inflate to more than the slot are `too_large` before the slot fills: an image
    whose segment ends past the slot (refused at its header), a small image followed by megabytes of zeros
    (refused at the image's end), or the command's `size` over the slot (rejected before any erase).

    `written` in the outcome says how much reached the slot: at most 64 KB, where filling the slot first
    would write 1.7 MB."""
    if case == "segment_past_the_slot":
        plain, state = _oversized_image(firmware, bytes(SLOT_SIZE + 4096)), "failed"
        fields: dict[str, int] = {}
    elif case == "data_past_the_image":
        plain, state = _oversized_image(firmware, bytes(4096)) + bytes(SLOT_SIZE), "failed"
        fields = {}
    else:
        plain, state = _oversized_image(firmware, bytes(SLOT_SIZE + 4096)), "rejected"
        fields = {"size": SLOT_SIZE + 4096 + 1024}
    stream = app_image.compress(plain, "gzip")
    assert len(stream) < 16 * 1024 and len(plain) > SLOT_SIZE
    artifact = fw_server.add(stream)
    since = ota.start(f"zb-{case}", artifact.url, **fields)
    event = ota.expect_outcome(f"zb-{case}", state, "too_large", since)
    assert 0 <= event["written"] <= (0 if state == "rejected" else EARLY_STOP), event
    assert all(e["written"] <= EARLY_STOP for e in _progress(link, board.device_id, f"zb-{case}"))
    ota.assert_healthy_on_base(since)


def test_dropped_connection_resumes_the_compressed_stream(ota, board, link: DeviceLink, fw_server,
                                                          firmware) -> None:
    """A compressed download dropped after 40 KB of the stream goes on with `Range: bytes=40000-` (206, only
    the rest) from the decompressor's state kept in RAM; nothing is fetched or written twice, and the image
    installs with its `sha256`.

    Progress never goes back, neither `bytes` (the stream's) nor `written` (the image's)."""
    image = firmware.image(version="2.0.0")
    stream = app_image.compress(image, "gzip")
    artifact = fw_server.add(stream, faults=FaultPlan(close_after_bytes=CUT_AT, close_first_requests=1))
    ota.install("zr", artifact.url, "2.0.0", sha256=hashlib.sha256(image).hexdigest())
    first, second = fw_server.requests_for(artifact)
    assert (first.range, first.status, first.bytes_sent) == (None, 200, CUT_AT)
    assert (second.range, second.status, second.bytes_sent) == (f"bytes={CUT_AT}-", 206, len(stream) - CUT_AT)
    progress = _progress(link, board.device_id, "zr")
    for key in ("bytes", "written"):
        values = [e[key] for e in progress]
        assert values == sorted(values), f"{key} went back: {values}"
    assert (progress[-1]["bytes"], progress[-1]["written"]) == (len(stream), len(image))


def test_dropped_connection_restarts_the_stream_where_range_is_ignored(ota, board, link: DeviceLink, fw_server,
                                                                       firmware) -> None:
    """A server that ignores Range answers the retry of a compressed download with 200 and the whole stream:
    stream, decompressor and slot start over from zero (progress goes back), and the image installs."""
    image = firmware.image(version="2.0.0")
    stream = app_image.compress(image, "zlib")
    artifact = fw_server.add(stream, faults=FaultPlan(close_after_bytes=CUT_AT, close_first_requests=1,
                                                      ranges_honoured=False))
    ota.install("zr0", artifact.url, "2.0.0", sha256=hashlib.sha256(image).hexdigest(), size=len(image))
    first, second = fw_server.requests_for(artifact)
    assert first.bytes_sent == CUT_AT
    assert (second.range, second.status, second.bytes_sent) == (f"bytes={CUT_AT}-", 200, len(stream)), second
    written = [e["written"] for e in _progress(link, board.device_id, "zr0")]
    # each attempt reports its first read, so starting over shows as a count that does not grow
    assert written[-1] == len(image) and written != sorted(set(written)), f"written should restart: {written}"
