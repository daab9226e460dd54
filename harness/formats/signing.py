"""Secure Boot V2 (RSA-3072) app signatures, as ESP-IDF makes and checks them without hardware secure boot.

Images are signed with esptool's ``espsecure`` (``sign_data --version 2``): the image is padded with 0xFF to
a 4 KB boundary and a 4 KB signature sector follows, whose first 1216-byte block is
``ets_secure_boot_sig_block_t`` (``components/esp_rom/esp32/include/esp32/rom/secure_boot.h``)::

    u8 magic 0xE7, u8 version 2 (RSA), 2 reserved, u8 image_digest[32],
    ets_rsa_pubkey_t key {u8 n[384], u32 e, u8 rinv[384], u32 mdash} (bignums little-endian),
    u8 signature[384] (little-endian), u32 crc32 of the 1196 bytes before it, 16 bytes of padding

The rest of the sector is 0xFF. The signature is RSA-PSS (SHA-256, MGF1-SHA-256, salt 32) over the SHA-256
of everything before the sector. ESP-IDF trusts a key by the SHA-256 of ``key`` (776 bytes); without
hardware secure boot the trusted digests are those of the running app's own blocks.

Keys are made at test time (`generate_key`) in a test's temporary directory and never logged: a
`SigningKey` shows its file name only. `verify` is the host-side check the virtual bootloader and the
bench use (the firmware's own is device/port/linux/src/esp_secure_boot.c).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.serialization import load_pem_private_key

SECTOR_SIZE = 4096
SIG_BLOCK_SIZE = 1216
SIG_BLOCK_MAGIC = 0xE7
SIG_BLOCK_VERSION_RSA = 2
CRC_SIGN_BLOCK_LEN = 1196
KEY_OFFSET, KEY_SIZE = 36, 776  # ets_rsa_pubkey_t inside a block
SIGNATURE_OFFSET, SIGNATURE_SIZE = KEY_OFFSET + KEY_SIZE, 384
CRC_OFFSET = CRC_SIGN_BLOCK_LEN
_BLOCK_FMT = "<BBxx32s384sI384sI384sI16x"
assert struct.calcsize(_BLOCK_FMT) == SIG_BLOCK_SIZE


class SigningError(Exception):
    """An image could not be signed, or a signature sector is not where ESP-IDF looks for it."""


@dataclass(frozen=True)
class SigningKey:
    """An RSA-3072 private key in a PEM file (espsecure's format). Its repr names the file, never the key.

    `signed_dir`: where `sign` keeps what it signed with this key, by the key's and the image's SHA-256, for the other
    processes of a run (xdist workers) that sign the same image: espsecure spends 0.16 s loading an RSA-3072
    key (OpenSSL's key check) for a 4 ms signature. None: every image is signed afresh."""

    path: Path
    signed_dir: Path | None = None

    def __repr__(self) -> str:
        return f"SigningKey({self.path.name})"

    def public_key(self) -> rsa.RSAPublicKey:
        key = load_pem_private_key(self.path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningError(f"{self.path.name} is not an RSA key")
        return key.public_key()


def _quietly() -> contextlib.ExitStack:
    """espsecure prints what it did (file names, never keys); a test's output has no use for it."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def generate_key(path: Path) -> SigningKey:
    """``espsecure generate-signing-key --version 2 --scheme rsa3072 path`` (the file must not exist)."""
    import espsecure

    with _quietly():
        espsecure.generate_signing_key("2", "rsa3072", str(path))
    path.chmod(0o600)
    return SigningKey(Path(path))


def sign(image: bytes, key: SigningKey) -> bytes:
    """``espsecure sign-data --version 2 --keyfile key``: the image padded to 4 KB plus its signature sector.

    An image that already ends in a signature sector is signed afresh over all of its bytes (the old sector
    becomes part of the signed data), as espsecure does without ``--append-signatures``.
    """
    if key.signed_dir is None:
        return _espsecure_sign(image, key)
    # by the key's file too: a signed_dir shared by two keys, or kept while its key was made anew, mixes none
    kept = key.signed_dir / (f"{hashlib.sha256(key.path.read_bytes()).hexdigest()[:16]}-"
                             f"{hashlib.sha256(image).hexdigest()}.bin")
    key.signed_dir.mkdir(parents=True, exist_ok=True)
    # under a lock: the workers of a run start on the same scenarios at once, and would all sign
    with open(key.signed_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not kept.exists():
            partial = kept.with_suffix(".partial")  # renamed whole: a worker killed here leaves no half image
            partial.write_bytes(_espsecure_sign(image, key))
            partial.replace(kept)
        return kept.read_bytes()


def _espsecure_sign(image: bytes, key: SigningKey) -> bytes:
    import espsecure

    with tempfile.TemporaryDirectory(prefix="hil-sign-") as tmp:
        src, out = Path(tmp) / "image.bin", Path(tmp) / "signed.bin"
        src.write_bytes(image)
        with _quietly(), open(key.path, "rb") as keyfile, open(src, "rb") as datafile:
            espsecure.sign_data("2", [keyfile], str(out), False, False, None, [], [], datafile)
        return out.read_bytes()


@dataclass(frozen=True)
class SignatureBlock:
    """One parsed ets_secure_boot_sig_block_t."""

    raw: bytes
    magic: int
    version: int
    image_digest: bytes
    n: int
    e: int
    signature: bytes  # big-endian, as RSA libraries take it
    crc: int

    @property
    def crc_ok(self) -> bool:
        return self.crc == zlib.crc32(self.raw[:CRC_SIGN_BLOCK_LEN]) & 0xFFFFFFFF

    @property
    def valid(self) -> bool:
        """validate_signature_block(): magic, CRC and the RSA scheme's version."""
        return self.magic == SIG_BLOCK_MAGIC and self.crc_ok and self.version == SIG_BLOCK_VERSION_RSA

    @property
    def key_digest(self) -> bytes:
        """SHA-256 of the block's ets_rsa_pubkey_t: what ESP-IDF compares with a trusted digest."""
        return hashlib.sha256(self.raw[KEY_OFFSET:KEY_OFFSET + KEY_SIZE]).digest()


def parse_block(raw: bytes) -> SignatureBlock:
    magic, version, digest, n, e, _rinv, _mdash, sig, crc = struct.unpack(_BLOCK_FMT, raw[:SIG_BLOCK_SIZE])
    return SignatureBlock(bytes(raw[:SIG_BLOCK_SIZE]), magic, version, digest, int.from_bytes(n, "little"), e,
                          sig[::-1], crc)


def signature_sector_offset(image_len: int) -> int:
    """Where ESP-IDF reads the signature sector of an image of `image_len` bytes (its hash included)."""
    return -(-image_len // SECTOR_SIZE) * SECTOR_SIZE


def first_block(data: bytes, image_len: int) -> SignatureBlock:
    """Block 0 of the sector after an image of `image_len` bytes, in `data` (the image or its flash slot)."""
    offset = signature_sector_offset(image_len)
    if offset + SIG_BLOCK_SIZE > len(data):
        raise SigningError(f"no signature sector at {offset:#x}: the data ends at {len(data):#x}")
    return parse_block(data[offset:offset + SIG_BLOCK_SIZE])


def key_digest(key: SigningKey) -> bytes:
    """The trusted-key digest of `key`, as its signature blocks carry it: sign an empty image and read it."""
    return first_block(sign(b"", key), 0).key_digest


def verify(data: bytes, image_len: int, trusted_key_digests: list[bytes]) -> bool:
    """esp_secure_boot_verify_sbv2_signature_block() for block 0 (an ESP32 has one): valid, trusted, and an
    RSA-PSS signature of the SHA-256 of everything up to the sector."""
    offset = signature_sector_offset(image_len)
    try:
        block = first_block(data, image_len)
    except SigningError:
        return False
    if not block.valid or block.key_digest not in trusted_key_digests:
        return False
    digest = hashlib.sha256(data[:offset]).digest()
    try:
        public = rsa.RSAPublicNumbers(block.e, block.n).public_key()
        public.verify(block.signature, digest, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                           salt_length=padding.PSS.AUTO),
                      utils.Prehashed(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def tamper_block(signed: bytes, image_len: int, offset_in_block: int, *, fix_crc: bool) -> bytes:
    """Flips one byte of block 0 (at `offset_in_block`); with `fix_crc` the block's CRC is made to match
    again, so only the RSA check can tell."""
    start = signature_sector_offset(image_len)
    buf = bytearray(signed)
    buf[start + offset_in_block] ^= 0x01
    if fix_crc:
        crc = zlib.crc32(bytes(buf[start:start + CRC_SIGN_BLOCK_LEN])) & 0xFFFFFFFF
        struct.pack_into("<I", buf, start + CRC_OFFSET, crc)
    return bytes(buf)
