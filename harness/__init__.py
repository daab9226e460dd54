"""Hardware-in-the-loop test harness for ESP-IDF OTA firmware."""
