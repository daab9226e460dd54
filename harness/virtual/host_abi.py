"""The ABI between the host port and the virtual board: device/port/linux/src/host_board.h, in Python.

The board (board.py) starts the firmware with the environment variables below, shares the flash-control
words with it through a file, and reads why it stopped from its exit code. Every name here is the C name
without its ``HOST_`` prefix (``HOST_EXIT_PANIC`` is ``EXIT_PANIC``), with the same value;
tests_unit/test_host_abi.py parses host_board.h and fails when either side changes alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

# Environment the board sets before it starts the app.
ENV_FLASH_FILE = "HIL_FLASH_FILE"  # path of the 4 MB flash image
ENV_APP_OFFSET = "HIL_APP_OFFSET"  # flash offset of the partition the bootloader loaded
ENV_RESET_REASON = "HIL_RESET_REASON"  # esp_reset_reason_t of this boot, as a number
ENV_MAC = "HIL_MAC"  # factory MAC, 12 hex digits
ENV_POWER_CUT_AT = "HIL_POWER_CUT_AT"  # lose power at this value of FC_OPS (1-based)
ENV_FLASH_CONTROL = "HIL_FLASH_CONTROL"  # file of FC_WORDS little-endian u32s shared with the app
ENV_BOOT_TIME_US = "HIL_BOOT_TIME_US"  # µs since reset when the app starts (ROM + bootloader)
ENV_MQTT_TRACE = "HIL_MQTT_TRACE"  # file each MQTT publish of the app is appended to (mqtt_trace.py)
ENV_BLE_AIR = "HIL_BLE_AIR"  # file of the BLE advertisements around the board (ble_air.py)
ENV_WIFI_AP = "HIL_WIFI_AP"  # file of the board's Wi-Fi access point: on the air or not, RSSI (wifi_ap.py)
ENV_EFUSE_FILE = "HIL_EFUSE_FILE"  # the board's eFuses (efuse.py)
ENV_MESH = "HIL_MESH"  # Unix socket of the mesh medium (mesh.py)
ENV_BOARD_PID = "HIL_BOARD_PID"  # pid of the harness process running the board: the app dies with it
ENV_FLASH_TIMING = "HIL_FLASH_TIMING"  # "<write bytes/s> <erase bytes/s>": flash takes a chip's time (flash.py)

# The eFuse file: little-endian u32 words; word 0 is the ESP32's SECURE_VERSION field.
EFUSE_WORDS = 1

# Words of the flash-control file (little-endian u32, in this order).
FC_OPS = 0  # writes + erases since the board made the file (every boot counts on)
FC_WRITES = 1
FC_ERASES = 2
FC_CUT_AT = 3  # power is lost during this operation (1-based; 0: never)
FC_LAST_KIND = 4  # FLASH_WRITE or FLASH_ERASE: the last operation
FC_LAST_ADDR = 5  # its absolute flash address
FC_LAST_LEN = 6  # and length
FC_POWER_CUT = 7  # 1 once the counter cut the power
FC_WORDS = 8  # the file's size in words

# host_flash_op_t: the kind of a flash operation (FC_LAST_KIND).
FLASH_WRITE = 1
FLASH_ERASE = 2
EFUSE_BURN = 3  # an eFuse burn: counted with the flash operations, so a power cut can land on it

# Exit codes: how the board tells a restart from a crash from a power cut.
EXIT_RESTART = 0  # esp_restart()
EXIT_PANIC = 3  # abort(), a fatal signal: the panic handler ran
EXIT_POWER_CUT = 4  # the flash operation counter reached ENV_POWER_CUT_AT
EXIT_TASK_WDT = 5  # the task watchdog fired


def append_record(path: Path, record: str) -> None:
    """Appends one record to a file the host port follows (the BLE air, the Wi-Fi AP: host_board.h gives
    their formats), stamped with CLOCK_MONOTONIC ns. One write() with O_APPEND: the firmware never reads half
    a record, even from two writers."""
    line = f"{time.monotonic_ns()} {record}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
