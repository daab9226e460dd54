"""Regexes for what an ESP32 prints on its UART, shared by tests on real and virtual boards.

From a real ESP32 with ESP-IDF v5.5 (ROM banner, 2nd-stage bootloader, app start-up, panic
handler and task watchdog; docs/architecture.md, section 4). A test that matches these
passes on both targets; the virtual board is held to them by tests_hil/test_virtual_board_resets.py.
"""

from __future__ import annotations

ROM_RESET = r"rst:0x[0-9a-f]+ \((\w+)\),boot:"
BOOTLOADER_BANNER = r"boot: ESP-IDF (\S+) 2nd stage bootloader"
LOADED_APP = r"boot: Loaded app from partition at offset (0x[0-9a-f]+)"
NO_BOOTABLE_APP = r"boot: No bootable app partitions in the partition table"
APP_VERSION = r"app_init: App version:\s+(\S+)"
CALLING_APP_MAIN = r"main_task: Calling app_main\(\)"
GURU_MEDITATION = r"Guru Meditation Error: Core\s+\d+ panic'ed \(([^)]*)\)"
ABORT_CALLED = r"abort\(\) was called at PC 0x[0-9a-f]+ on core \d"
TASK_WDT = r"task_wdt: Task watchdog got triggered\. The following tasks/users did not reset the watchdog in time:"
TASK_WDT_TASK = r"task_wdt:  - (\S+) \(CPU ([0-9/]+)\)"
REBOOTING = r"Rebooting\.\.\."
# Every ESP_LOGx line: level letter, milliseconds since reset, tag.
LOG_LINE = r"^([EWIDV]) \((\d+)\) ([\w.-]+): "
