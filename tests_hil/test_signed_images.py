"""Signed images.

F1-F6: with signed apps and no hardware secure boot (the `signed` build: CONFIG_SECURE_SIGNED_APPS_NO_SECURE_BOOT,
CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT, RSA-3072 Secure Boot V2 signature blocks, an ESP32 from v3.0),
esp_ota_end() checks the new image's signature against the key of the running app's own signature block
(ESP-IDF's secure_boot_signatures_app.c). Only an image signed with that key installs; anything else is
`failed`/`invalid_signature` and the device stays on its signed 1.0.0 in ota_0.

The keys are made for the test run (espsecure, RSA-3072) in a temporary directory, never committed or logged.
The board starts on the signed build's 1.0.0 signed with `key`, flashed as an image into ota_0, so the
scenarios run on a real ESP32 (v3.0 or later) with the default build's bootloader, which, like the signed
build's with the RSA scheme, does not check app signatures.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.boards.base import Board
from harness.formats import app_image, signing
from harness.ota import Ota

VARIANT = "signed"
TRUSTED = r"secure_boot_v2: #0 app key digest == #0 trusted key digest"
VERIFIED = r"secure_boot_v2_rsa: Signature verified successfully!"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, signing.SigningKey]:
    """Two RSA-3072 signing keys for the run: the device's and someone else's.

    Made once per run, not per module and xdist worker: a key takes espsecure 0.1 to 0.4 s of CPU, and a
    worker that came back to this module after another one made its keys again (about 30 keys a `make hil`).
    Under xdist the first worker to need them makes them in the run's temporary directory, which the workers
    share, under a lock; the others read them there."""
    base = tmp_path_factory.getbasetemp()
    where = (base.parent if hasattr(request.config, "workerinput") else base) / "signing-keys"
    where.mkdir(mode=0o700, exist_ok=True)
    with open(where / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return {name: _signing_key(where / f"{name}.pem") for name in ("device", "other")}


def _signing_key(path: Path) -> signing.SigningKey:
    """The key in `path`, made there first if it is not: written under another name and renamed, so that a
    worker killed while making it leaves no half a key for the others. What it signs is kept beside it for
    them too (SigningKey.signed_dir)."""
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        signing.generate_key(partial)
        partial.rename(path)
    return signing.SigningKey(path, signed_dir=path.with_suffix(".signed"))


@pytest.fixture
def signed_board(board_factory, firmware, keys) -> Board:
    """A board running the signed build's 1.0.0, signed with the device key."""
    return board_factory(firmware.image(VARIANT, sign_with=keys["device"]))


@pytest.fixture
def signed_ota(signed_board: Board, ota_for: Callable[[Board], Ota]) -> Ota:
    return ota_for(signed_board)


def _image_len(image: bytes) -> int:
    return app_image.verify_image(image, None).length


def test_image_signed_with_the_device_key_installs(signed_ota: Ota, signed_board: Board, fw_server, firmware,
                                                   keys) -> None:
    """B1-B4 (the good case): a 2.0.0 signed with the key the running app is signed with installs: esp_ota_end()
    finds the key trusted and the RSA-PSS signature good, and the device confirms 2.0.0 in ota_1.

    Needs: signed build."""
    artifact = fw_server.add(firmware.image(VARIANT, version="2.0.0", sign_with=keys["device"]))
    since = signed_ota.start("f1", artifact.url)
    signed_board.expect(TRUSTED, timeout=20)
    signed_board.expect(VERIFIED, timeout=5)
    status = signed_ota.link.wait_status(signed_board.device_id, lambda s: s["version"] == "2.0.0" and
                                         s["ota_state"] == "valid", since=since, timeout=40)
    assert status["partition"] == "ota_1"
    signed_ota.link.check_protocol()


def _refused(ota: Ota, board: Board, fw_server, request_id: str, image: bytes, log: str) -> None:
    """The update fails with invalid_signature (a `rebooting` fails at once), after `log` on the console."""
    since = ota.start(request_id, fw_server.add(image).url)
    ota.expect_outcome(request_id, "failed", "invalid_signature", since)
    board.expect(log, timeout=5)
    ota.assert_healthy_on_base(since)


def test_unsigned_image_is_refused(signed_ota: Ota, signed_board: Board, fw_server, firmware) -> None:
    """B1: an unsigned 2.0.0 (otherwise a good image: checksum and SHA-256 right) is
    `failed`/`invalid_signature`: its first signature block is not valid (no 0xE7 magic, no CRC).

    Needs: signed build."""
    _refused(signed_ota, signed_board, fw_server, "f2", firmware.image(VARIANT, version="2.0.0"),
             r"esp_image: Secure boot signature verification failed")


def test_image_signed_with_another_key_is_refused(signed_ota: Ota, signed_board: Board, fw_server, firmware,
                                                  keys) -> None:
    """B2: a 2.0.0 properly signed with another key is `failed`/`invalid_signature`: its key's digest is not
    the running app's, so no RSA check is even tried.

    Needs: signed build."""
    image = firmware.image(VARIANT, version="2.0.0", sign_with=keys["other"])
    _refused(signed_ota, signed_board, fw_server, "f3", image, r"esp_image: Secure boot signature verification failed")
    said = [line.text for line in signed_board.serial.lines[signed_ota.serial_mark:]]
    assert not [t for t in said if "trusted key digest" in t or "Verifying with RSA-PSS" in t], said


@pytest.mark.parametrize("what", ["signature", "signature_crc_stale", "key"])
def test_tampered_signature_block_is_refused(signed_ota: Ota, signed_board: Board, fw_server, firmware, keys,
                                             what: str) -> None:
    """B3: a properly signed 2.0.0 whose signature block was changed afterwards is `failed`/`invalid_signature`:
    one signature byte with the block's CRC redone (the RSA-PSS check fails), the same with the CRC left
    stale (the block is not valid), or one byte of the key's modulus with the CRC redone (not the trusted key).

    Needs: signed build."""
    signed = firmware.image(VARIANT, version="2.0.0", sign_with=keys["device"])
    n = _image_len(signed)
    offset = signing.SIGNATURE_OFFSET + 100 if what.startswith("signature") else signing.KEY_OFFSET + 100
    image = signing.tamper_block(signed, n, offset, fix_crc=what != "signature_crc_stale")
    log = {"signature": r"secure_boot_v2_rsa: Failed mbedtls_rsa_rsassa_pss_verify, err: -\d+",
           "signature_crc_stale": r"esp_image: Secure boot signature verification failed",
           "key": r"esp_image: Secure boot signature verification failed"}[what]
    _refused(signed_ota, signed_board, fw_server, f"f4-{what}", image, log)


def test_valid_signature_over_a_modified_image_is_refused(signed_ota: Ota, signed_board: Board, fw_server,
                                                          firmware, keys) -> None:
    """B4: a 2.0.0 signed with the device key, then changed (its version patched to 2.0.1 and its checksum and
    SHA-256 redone, so it is a well-formed image with an intact signature block) is `failed`/`invalid_signature`:
    the signature is the key's, but over other bytes.

    Needs: signed build."""
    signed = firmware.image(VARIANT, version="2.0.0", sign_with=keys["device"])
    modified = app_image.patch_version(signed, "2.0.1")  # reseals the image, keeps the signature sector
    assert len(modified) == len(signed) and modified[_image_len(signed):] == signed[_image_len(signed):]
    _refused(signed_ota, signed_board, fw_server, "f5", modified,
             r"secure_boot_v2_rsa: Failed mbedtls_rsa_rsassa_pss_verify, err: -17280")


def test_unsigned_running_app_refuses_every_update(board_factory, ota_for, fw_server, firmware, keys) -> None:
    """B1 (the chip's trap): a device running an unsigned app built with signed-on-update refuses every update,
    even one signed with the right key (`failed`/`invalid_signature`): the trusted keys are those of the
    running app's own signature block, and it has none ("No signatures were found for the running app").
    Sign the first image you flash, or the device can never be updated over the air.

    Needs: signed build."""
    board = board_factory(firmware.image(VARIANT))
    _refused(ota_for(board), board, fw_server, "f6",
             firmware.image(VARIANT, version="2.0.0", sign_with=keys["device"]),
             r"secure_boot_v2: No signatures were found for the running app")
