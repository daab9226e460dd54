"""Boards: one interface over the virtual ESP32 and real ESP32 boards."""
