"""Anti-rollback.

G1-G3: with app anti-rollback (the `anti_rollback` build: CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK, its 1.0.0 with
`secure_version` 1), an app runs only if its `secure_version` (esp_app_desc_t) is at least the eFuse counter,
the number of bits set in the ESP32's SECURE_VERSION field. The counter is raised to a new app's
`secure_version` once that app confirms itself (esp_ota_mark_app_valid_cancel_rollback(), then the bootloader
at every boot of a VALID app); from then on no older app can run.

Virtual board only: on a chip the eFuse bits are burnt for good, so these scenarios would use up a board (the
board's eFuses here are a file it owns, `board.efuses`); and each board is flashed with the `anti_rollback`
build's bootloader, which real boards (flashed once per session with the default build) do not have.
"""

from __future__ import annotations

import pytest

from harness.boards.base import Board
from harness.link import DeviceLink

pytestmark = pytest.mark.virtual_only

VARIANT = "anti_rollback"
BASE_SECURE_VERSION = 1  # CONFIG_BOOTLOADER_APP_SECURE_VERSION in device/sdkconfig.ci.anti_rollback
EFUSE_BURN_OP = 3  # of the new app's first boot: otadata erase, otadata write (VALID), the eFuse burn


@pytest.fixture
def ar_board(board_factory) -> Board:
    """A board flashed with the anti_rollback build (its bootloader too), on its 1.0.0 (secure_version 1)."""
    board = board_factory(variant=VARIANT)
    # the bootloader raised the blank eFuse when it first booted ota_0 (set_actual_ota_seq, then update_anti_rollback)
    assert board.efuses.read_secure_version() == BASE_SECURE_VERSION
    return board


@pytest.mark.parametrize("force", [False, True])
def test_lower_secure_version_is_refused_even_with_force(ar_board: Board, ota_for, fw_server, firmware,
                                                         force: bool) -> None:
    """A5: a newer 2.0.0 with `secure_version` 0, below the eFuse's 1, is `rejected`/`secure_version` before
    anything is erased, `force` or not: the bootloader would never boot it. The eFuse is unchanged.

    Needs: anti_rollback build."""
    ota = ota_for(ar_board)
    image = firmware.image(VARIANT, version="2.0.0", secure_version=BASE_SECURE_VERSION - 1)
    since = ota.start("g1", fw_server.add(image).url, force=force)
    event = ota.expect_outcome("g1", "rejected", "secure_version", since)
    assert "below the eFuse" in event.get("detail", ""), event
    ota.assert_healthy_on_base(since)
    assert ar_board.efuses.read_secure_version() == BASE_SECURE_VERSION


def test_counter_is_raised_only_after_the_new_app_confirms(ar_board: Board, ota_for, link: DeviceLink, fw_server,
                                                           firmware) -> None:
    """A5 (the counter): an update to 2.0.0 with `secure_version` 2 leaves the eFuse at 1 through the download,
    the reboot and the new app's first boot (its bootloader still reads 1); the counter becomes 2 inside the app's
    confirmation, after it is pending verification, and then a 1.0.1 with secure_version 1 is refused even with
    force.

    Needs: anti_rollback build."""
    ota = ota_for(ar_board)
    since = ota.start_until_reboot("g2", fw_server.add(firmware.image(VARIANT, version="2.0.0",
                                                                      secure_version=2)).url)
    assert ar_board.efuses.read_secure_version() == BASE_SECURE_VERSION  # switched, not yet confirmed
    lines = [r"boot: Secure version \(from eFuse\) = 1",
             r"boot_check: new image pending verification",
             r"efuse: Anti-rollback is set\. eFuse field is updated\(2\)\.",
             r"boot_check: self-test passed; app 2\.0\.0 marked valid"]
    for pattern in lines:  # in this order: expect() searches after the previous match
        ar_board.expect(pattern, timeout=20)
    link.wait_ota(ar_board.device_id, "g2", "succeeded", timeout=20, since=since, fail_on={"rolled_back"})
    assert ar_board.efuses.read_secure_version() == 2
    ota.mark()
    since = ota.start("g2-back", fw_server.add(firmware.image(VARIANT, version="1.0.1",
                                                              secure_version=BASE_SECURE_VERSION)).url, force=True)
    ota.expect_outcome("g2-back", "rejected", "secure_version", since)
    ota.assert_healthy("2.0.0", "ota_1")


def _confirm_ops(board_factory, ota_for, fw_server, firmware, v2_url: str) -> int:
    """Flash operations (eFuse burn included) of 2.0.0's first boot, up to its confirmation and record."""
    board = board_factory(variant=VARIANT)
    try:
        ota = ota_for(board)
        since = ota.start("measure", v2_url)
        ota.link.wait_ota(board.device_id, "measure", "succeeded", timeout=20, since=since, fail_on={"rolled_back"})
        board.expect(r"app: ready", timeout=10)
        return board.flash_ops() - board.flash_ops_at_boot[-1]
    finally:
        board.stop()


@pytest.mark.needs_power_control
def test_power_cut_around_the_counter_update_keeps_a_bootable_device(board_factory, ota_for, link: DeviceLink,
                                                                    fw_server, firmware) -> None:
    """A5 + E6: power cut inside each flash operation of 2.0.0's (secure_version 2) first boot, its otadata
    confirmation, the eFuse burn and the NVS record: the device always boots an app the eFuse allows and
    answers. Cut before its VALID entry is written: 1.0.0 comes back and the eFuse stays 1. Cut inside the
    burn (half of the new bits burnt) or after: 2.0.0 stays confirmed and the eFuse ends at 2, burnt by the
    bootloader at the next boot when the app could not.

    Needs: anti_rollback build."""
    v2 = fw_server.add(firmware.image(VARIANT, version="2.0.0", secure_version=2))
    total = _confirm_ops(board_factory, ota_for, fw_server, firmware, v2.url)
    assert total >= 3, f"otadata erase and write, then the eFuse burn: counted {total}"
    results: dict[int, tuple[str, int]] = {}
    for op in range(1, total + 1):
        board = board_factory(variant=VARIANT)
        try:
            ota = ota_for(board)
            board.power_cut_at = op  # taken by the next boot: 2.0.0's first
            since = ota.start(f"cut-{op}", v2.url)
            board.expect(r"^rst:0x1 \(POWERON_RESET\)", timeout=20)
            slot = board.expect_loaded_app(timeout=10)
            texts = [line.text for line in board.serial.lines]
            power_on = max(i for i, t in enumerate(texts) if t.startswith("rst:0x1"))
            loaded = next(i for i in range(power_on, len(texts)) if "Loaded app from partition" in texts[i])
            # the bootloader of the boot after the cut burnt the eFuse (update_anti_rollback, before loading)
            by_bootloader = any("efuse: Anti-rollback is set" in t for t in texts[power_on:loaded])
            board.expect(r"app: ready", timeout=15)
            version = {"ota_0": "1.0.0", "ota_1": "2.0.0"}[slot]
            link.wait_for(lambda m, b=board, s=slot: m.device_id == b.device_id and m.kind == "status" and
                          m.data.get("partition") == s, timeout=15, since=since,
                          description=f"a status after cut {op}")
            ota.mark()  # this boot's: no reboot from here on
            status = ota.assert_healthy(version, slot)
            counter = board.efuses.read_secure_version()
            results[op] = (status["version"], counter)
            assert by_bootloader == (op == EFUSE_BURN_OP), f"cut {op}: the bootloader burnt the eFuse: {by_bootloader}"
            assert counter <= (2 if version == "2.0.0" else BASE_SECURE_VERSION), (op, status, counter)
            if version == "2.0.0":
                assert counter == 2, f"cut {op}: 2.0.0 confirmed but the eFuse reads {counter}"
                link.wait_ota(board.device_id, f"cut-{op}", "succeeded", timeout=10, since=since)
        finally:
            board.stop()
    print(results)
    # the first two operations are the otadata entry's erase and write: cut there, 1.0.0 and the eFuse's 1
    assert [results[op] for op in (1, 2)] == [("1.0.0", 1), ("1.0.0", 1)], results
    assert all(results[op] == ("2.0.0", 2) for op in range(3, total + 1)), results
    link.check_protocol()
