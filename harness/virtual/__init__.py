"""The virtual board: a host-process stand-in for an ESP32 with flash, bootloader and serial."""
