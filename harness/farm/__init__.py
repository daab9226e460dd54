"""A board farm with labgrid: boards from a coordinator's places, virtual boards exported like USB ones.

- ``virtual_esp32``: a virtual ESP32 behind its own RFC2217 port (esptool's port manager, the ROM loader
  for flashing, the virtual board for the app), power switched over HTTP.
- ``bench``: ``python -m harness farm serve``: virtual boards in one long-running process, and the
  labgrid exporter configuration that publishes them.
- ``client``: the coordinator seen from a test session: places matching a pattern, acquired for a test and
  released after, who holds each; the boards built from a place's NetworkSerialPort and power port.
- ``pytest_farm``: ``--hil-farm`` and ``--hil-farm-places``, the places of a dead xdist worker released by the
  controller, labgrid's own pytest plugin kept from replacing pytest-embedded's ``target`` fixture.

docs/runner-setup.md ("A board farm with labgrid") is the set-up; docs/architecture.md section 5 the design.
"""
