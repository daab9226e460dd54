"""The real board's errors, apart from its driver: the plugin tells a lost board from a failed test on every
test, and importing the driver (esptool, pyserial) for that would cost each pytest process of a virtual run
a tenth of a second."""

from __future__ import annotations


class Esp32Error(RuntimeError):
    pass


class PortLostError(Esp32Error):
    """The serial port vanished or stopped answering (unplugged, rebooted hub, remote server gone)."""
