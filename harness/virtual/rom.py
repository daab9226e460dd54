"""What the ESP32 ROM and the 2nd-stage bootloader print at a reset, and the reset codes.

Lines as a real ESP32 (ESP-IDF v5.5) prints them: the ROM banner with the reset cause
(``components/esp_rom/esp32/include/esp32/rom/rtc.h``), then the bootloader's INFO lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ResetReason(IntEnum):
    """``esp_reset_reason_t`` (components/esp_system/include/esp_system.h)."""

    POWERON = 1
    EXT = 2
    SW = 3
    PANIC = 4
    INT_WDT = 5
    TASK_WDT = 6
    WDT = 7


@dataclass(frozen=True)
class RomReset:
    code: int  # the ROM's RESET_REASON, printed as rst:0x..
    name: str
    app_reason: ResetReason  # what esp_reset_reason() tells the app


POWERON = RomReset(0x1, "POWERON_RESET", ResetReason.POWERON)
# esp_restart() and the panic handler both end in a CPU reset; the app tells them apart from a
# hint stored before the reset (port/soc/esp32/reset_reason.c).
SW_CPU = RomReset(0xC, "SW_CPU_RESET", ResetReason.SW)
PANIC = RomReset(0xC, "SW_CPU_RESET", ResetReason.PANIC)
TASK_WDT = RomReset(0xC, "SW_CPU_RESET", ResetReason.TASK_WDT)
SYSTEM_RESET = RomReset(0x3, "SW_RESET", ResetReason.SW)  # bootloader_reset()


def rom_banner(reset: RomReset) -> list[str]:
    return [
        "ets Jun  8 2016 00:22:57",
        "",
        f"rst:0x{reset.code:x} ({reset.name}),boot:0x13 (SPI_FAST_FLASH_BOOT)",
        "configsip: 0, SPIWP:0xee",
        "clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00",
        "mode:DIO, clock div:2",
        "load:0x3fff0030,len:6276",
        "load:0x40078000,len:15748",
        "load:0x40080400,len:4",
        "entry 0x40080658",
    ]


def bootloader_banner(idf_version: str = "v5.5.4") -> list[tuple[str, str]]:
    """(tag, message) pairs of the INFO lines before the partition table."""
    return [
        ("boot", f"ESP-IDF {idf_version} 2nd stage bootloader"),
        ("boot", "compile time Jan  1 2026 00:00:00"),
        ("boot", "Multicore bootloader"),
        ("boot", "chip revision: v3.0"),
        ("boot.esp32", "SPI Speed      : 40MHz"),
        ("boot.esp32", "SPI Mode       : DIO"),
        ("boot.esp32", "SPI Flash Size : 4MB"),
        ("boot", "Enabling RNG early entropy source..."),
    ]
