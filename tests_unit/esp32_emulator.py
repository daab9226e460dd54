"""The emulated ESP32 dev board of the --target esp32 tests (harness/farm/virtual_esp32.py, which a farm
also exports), and idf.py-like builds whose app is the virtual board's firmware (harness/farm/virtual_builds.py).
"""

from __future__ import annotations

from harness.farm.virtual_builds import esp32_bootloader_image, write_idf_build
from harness.farm.virtual_esp32 import FlashOp, RecordingFlash
from harness.farm.virtual_esp32 import VirtualEsp32 as Esp32Emulator

__all__ = ["Esp32Emulator", "FlashOp", "RecordingFlash", "esp32_bootloader_image", "write_idf_build"]
