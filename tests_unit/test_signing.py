"""harness.formats.signing: espsecure's Secure Boot V2 sector, parsed and checked as ESP-IDF checks it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from harness.formats import app_image, signing


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[signing.SigningKey, signing.SigningKey]:
    where = tmp_path_factory.mktemp("keys")
    return signing.generate_key(where / "a.pem"), signing.generate_key(where / "b.pem")


@pytest.fixture(scope="module")
def image() -> bytes:
    return app_image.build_virtual_image(b"\x7fELF" + bytes(range(256)) * 40, version="1.0.0", project_name="t")


def test_signed_layout(keys, image: bytes) -> None:
    """The image, 0xFF up to 4 KB, then a 4 KB sector: block 0 valid (magic, version 2, CRC), the rest 0xFF."""
    signed = signing.sign(image, keys[0])
    n = len(image)
    start = signing.signature_sector_offset(n)
    assert signed[:n] == image and set(signed[n:start]) <= {0xFF} and len(signed) == start + signing.SECTOR_SIZE
    block = signing.first_block(signed, n)
    assert block.valid and block.key_digest == signing.key_digest(keys[0]) != signing.key_digest(keys[1])
    assert set(signed[start + signing.SIG_BLOCK_SIZE:]) == {0xFF}
    assert app_image.verify_image(signed, None).length == n  # still a good image in front of its sector


def test_verify_like_esp_idf(keys, image: bytes) -> None:
    a, b = keys
    signed = signing.sign(image, a)
    n = len(image)
    trusted = [signing.key_digest(a)]
    assert signing.verify(signed, n, trusted)
    assert not signing.verify(image + b"\xff" * 8192, n, trusted)  # unsigned
    assert not signing.verify(signing.sign(image, b), n, trusted)  # another key
    assert not signing.verify(signing.tamper_block(signed, n, signing.SIGNATURE_OFFSET, fix_crc=True), n, trusted)
    assert not signing.first_block(signing.tamper_block(signed, n, signing.SIGNATURE_OFFSET, fix_crc=False),
                                   n).valid
    modified = app_image.patch_version(signed, "1.0.1")
    assert modified[n:] == signed[n:] and not signing.verify(modified, n, trusted)


def test_espsecure_agrees(keys, image: bytes, tmp_path: Path) -> None:
    """espsecure's own verify-signature accepts what sign() made (the same tool, through its CLI)."""
    signed = tmp_path / "signed.bin"
    signed.write_bytes(signing.sign(image, keys[0]))
    result = subprocess.run([sys.executable, "-m", "espsecure", "verify-signature", "--version", "2", "--keyfile",
                             str(keys[0].path), str(signed)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_key_is_never_shown(keys) -> None:
    assert repr(keys[0]) == "SigningKey(a.pem)" and "PRIVATE" not in repr(keys[0])


def test_derive_image_order(keys, image: bytes) -> None:
    """Version and secure_version are patched first, then the result is signed."""
    out = app_image.derive_image(image, version="2.0.0", secure_version=3, sign_with=keys[0])
    desc = app_image.read_descriptor(out)
    n = app_image.verify_image(out, None).length
    assert (desc.version, desc.secure_version) == ("2.0.0", 3)
    assert signing.verify(out, n, [signing.key_digest(keys[0])])


def test_a_key_with_a_signed_dir_signs_each_image_once(keys, image: bytes, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    key = signing.SigningKey(keys[0].path, signed_dir=tmp_path / "signed")
    first = signing.sign(image, key)
    assert signing.verify(first, len(image), [signing.key_digest(keys[0])])
    other_key = signing.SigningKey(keys[1].path, signed_dir=tmp_path / "signed")  # the same directory
    by_other = signing.sign(image, other_key)
    assert signing.verify(by_other, len(image), [signing.key_digest(keys[1])])
    assert not signing.verify(by_other, len(image), [signing.key_digest(keys[0])])

    def espsecure_again(*args: object) -> bytes:
        raise AssertionError("signed again: the signed_dir's copy was not used")

    monkeypatch.setattr(signing, "_espsecure_sign", espsecure_again)
    assert signing.sign(image, key) == first  # another process of the run reads the same file
    assert signing.sign(image, other_key) == by_other
    kept = sorted(p.name for p in (tmp_path / "signed").iterdir() if not p.name.startswith("."))  # not the lock
    assert len(kept) == 2 and all(name.endswith(f"-{hashlib.sha256(image).hexdigest()}.bin") for name in kept)
    with pytest.raises(AssertionError, match="signed again"):
        signing.sign(image + b"\xff" * 16, key)  # another image is signed
