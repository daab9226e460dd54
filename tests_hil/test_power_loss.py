"""Power loss during an OTA, at chosen flash writes and erases (virtual board only).

The host port counts the app's flash operations; the board can make power fail in the middle of
the n-th one (a torn write or a partial erase). Whatever the cut point, the board must boot a
valid image, report the version that image carries, and take a later update.
"""

import pytest

from harness.link import DeviceLink

pytestmark = [pytest.mark.virtual_only, pytest.mark.needs_power_control]

LOADED_APP = r"boot: Loaded app from partition at offset (0x[0-9a-f]+)"
CONSISTENT = {("1.0.0", "ota_0"), ("2.0.0", "ota_1")}


def _count_ota_ops(board_factory, ota_for, fw_server, firmware) -> int:
    """Flash operations of a whole update, from the command to the reboot."""
    board = board_factory()
    ota = ota_for(board)
    start = board.flash_ops()
    since = ota.start("count", fw_server.add(firmware.image(version="2.0.0")).url)
    ota.link.wait_ota(board.device_id, "count", "rebooting", timeout=20, since=since)
    total = board.flash_ops() - start
    board.stop()
    return total


def _cut_points(total: int, budget: int = 60) -> list[int]:
    """Every k-th operation, plus each of the last ones (the record and the otadata switch)."""
    stride = max(1, total // budget)
    points = set(range(1, total + 1, stride)) | set(range(max(1, total - 6), total + 1))
    return sorted(points)


@pytest.mark.slow
def test_power_cut_at_flash_operations_of_an_ota(board_factory, ota_for, link: DeviceLink, fw_server,
                                                 firmware) -> None:
    total = _count_ota_ops(board_factory, ota_for, fw_server, firmware)
    print(f"an OTA does {total} flash operations; cutting at {len(_cut_points(total))} of them")
    assert total > 100, f"an OTA of ~600 KB should take hundreds of flash operations, counted {total}"
    v2 = fw_server.add(firmware.image(version="2.0.0"))
    v3 = fw_server.add(firmware.image(version="3.0.0"))
    for n in _cut_points(total):
        board = board_factory()
        ota = ota_for(board)
        board.cut_power_at_op(board.flash_ops() + n)  # armed before the command: counted from it
        since = ota.start(f"cut{n}", v2.url)
        board.expect(r"rst:0x1 \(POWERON_RESET\)", timeout=20)
        board.expect(LOADED_APP, timeout=10)
        status = link.wait_status(board.device_id, lambda s: s["reset_reason"] == "poweron", since=since,
                                  timeout=15, description=f"status after a power cut at operation {n}")
        assert (status["version"], status["partition"]) in CONSISTENT, f"cut at {n}: {status}"
        ota.install(f"after{n}", v3.url, "3.0.0")
        board.stop()
