"""Which target a session runs on and which scenarios it can run: the target options and their values.

`--target` and `--port` are pytest-embedded's own options; the harness registers them only when
pytest-embedded is not installed. `linux` (the default) is the virtual ESP32. A real target
(`esp32`) uses boards from `--port` or `--hil-board-inventory` (harness/boards/esp32_bench.py runs them).
Scenarios a real board cannot do are deselected, each with its reason in the report. A real target
never falls back to the virtual board: no board is a usage error, at once.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import project
from harness.boards import inventory
from harness.boards.power import parse_power
from harness.farm import pytest_farm
from harness.idf_build import FirmwareMissingError, IdfFirmware
from harness.masking import Secret

VIRTUAL_TARGET = "linux"
REAL_BOOT_TIMEOUT_S = 45.0  # reset, Wi-Fi association, DHCP and MQTT connect on a real board
CONSOLE_TIMEOUT_S = 10.0
PROBE_BROKER_URL = "mqtt://127.0.0.1:1"  # never answers: only used to make the board join Wi-Fi
GOT_IP = r"got ip:\s*(\d+\.\d+\.\d+\.\d+)"


def real_targets() -> tuple[str, ...]:
    """Every chip esptool knows (esp32 is the one the firmware CI builds); esptool is imported for a real target
    only, not by a virtual run's processes."""
    from esptool.targets import CHIP_DEFS

    return tuple(sorted(CHIP_DEFS))


@dataclass(frozen=True)
class Requirement:
    marker: str
    reason: str


# What a marker needs that a real board (without extra equipment) does not have.
VIRTUAL_ONLY = Requirement("virtual_only", "needs the virtual board (flash access or emulation a real ESP32 lacks)")
POWER = Requirement("needs_power_control", "needs power control (a relay or uhubctl), none configured: set --hil-power "
                                           "or 'power' in the board inventory")
REAL_BOARD_LIMITS = (VIRTUAL_ONLY, POWER)

MARKERS = (
    "boards(n): the scenario needs n boards at the same time (a real target leases n boards from the pool)",
    "virtual_only: runs on the virtual board only (needs flash access or emulation a real board lacks)",
    "needs_power_control: needs a way to cut the board's power",
    ("flash_timing(name): on the virtual board, its flash takes this timing (chip: an ESP32's rates), whatever "
     "--hil-flash-timing says; a real board's flash has its own"),
)


DEFAULT_BAUD = 460800  # esptool's flashing rate here (pytest-embedded's default is 921600; CP210x bridges
# on long cables are not reliable there)


def _embedded_registers_options(pluginmanager: pytest.PytestPluginManager | None) -> bool:
    """Whether pytest-embedded's plugin is (or will be) loaded, and so owns --target and --port."""
    if pluginmanager is not None:
        if pluginmanager.has_plugin("pytest_embedded") or pluginmanager.has_plugin("pytest_embedded.plugin"):
            return True
        if pluginmanager.is_blocked("pytest_embedded"):
            return False
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return importlib.util.find_spec("pytest_embedded") is not None


def add_target_option(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager | None = None) -> None:
    """The real-board options. Those pytest-embedded also has keep its names and meaning (a runner's
    command line works for both), registered here only when pytest-embedded is absent, since two plugins
    registering one option is an error; the harness's own options carry the `--hil-` prefix."""
    group = parser.getgroup("hil")
    if not _embedded_registers_options(pluginmanager):
        group.addoption(
            "--target", default=VIRTUAL_TARGET,
            help=f"where the scenarios run: {VIRTUAL_TARGET} (virtual ESP32, default) or esp32 (a real board)",
        )
        group.addoption("--port", default=None,
                        help="serial port of the real board: a device path, a glob, or rfc2217://host:port "
                             "(default: $ESPPORT)")
        group.addoption("--port-serial-number", default=None, metavar="SERIALS",
                        help="comma-separated USB serial numbers of the boards' serial bridges")
        group.addoption("--port-mac", default=None, metavar="MACS",
                        help="comma-separated MAC addresses of the boards (their ports are found by probing)")
        group.addoption("--app-path", default=None, metavar="DIR",
                        help="the ESP-IDF project whose idf.py builds are flashed, as build_<target>_<variant>/ "
                             "(default: hil_app_dir)")
        group.addoption("--build-dir", default=None, metavar="DIR",
                        help="the build of the default variant, relative to --app-path or absolute "
                             "(default: build_<target>_default)")
        group.addoption("--esptool-baud", type=int, default=None, metavar="BAUD",
                        help=f"esptool baud rate for flashing and erasing (default: $ESPBAUD, else {DEFAULT_BAUD})")
    group.addoption("--hil-board-inventory", default=None, metavar="FILE",
                    help="TOML or YAML list of boards (port, serial_number or mac; target; capabilities; power)")
    group.addoption("--hil-wifi-ssid", default=None, metavar="SSID",
                    help="Wi-Fi network the real board joins (default: $HIL_WIFI_SSID, else the firmware's Kconfig)")
    group.addoption("--hil-wifi-password", default=None, metavar="PASSWORD",
                    help="its password (default: $HIL_WIFI_PASSWORD; prefer the variable: it stays out of "
                         "process lists); never printed")
    group.addoption("--hil-host-ip", default=None, metavar="ADDR",
                    help="address the board reaches this machine at, for the broker and firmware server "
                         "(default: found from the board's own address)")
    group.addoption("--hil-power", default=None, metavar="SPEC",
                    help="power control for --port boards: uhubctl:<hub location>:<port> or "
                         "command:<command with {action}>")
    pytest_farm.add_options(group)


def esptool_baud(config: pytest.Config) -> int:
    """--esptool-baud, else $ESPBAUD (as pytest-embedded and idf.py read it), else DEFAULT_BAUD."""
    value = config.getoption("--esptool-baud", default=None) or os.environ.get("ESPBAUD")
    try:
        return int(value) if value else DEFAULT_BAUD
    except ValueError:
        raise pytest.UsageError(f"ESPBAUD={value!r}: give the baud rate as a number, e.g. 460800") from None


def target_of(config: pytest.Config) -> str:
    target = config.getoption("--target", default=None) or VIRTUAL_TARGET
    return VIRTUAL_TARGET if target == "linux" else target


def is_real(config: pytest.Config) -> bool:
    return target_of(config) != VIRTUAL_TARGET


# --- which boards a session has ---


def _configured_specs(config: pytest.Config) -> list[inventory.BoardSpec]:
    """Boards named by the options (no probing): inventory entries for the target, --port / ESPPORT
    entries (globs expanded), or USB serial bridges found on this machine."""
    target = target_of(config)
    if pytest_farm.farm_address(config):
        return pytest_farm.place_specs(config, target)
    path = config.getoption("--hil-board-inventory", default=None)
    if path:
        try:
            return [s for s in inventory.load_inventory(Path(path)) if s.target == target]
        except inventory.InventoryError as err:
            raise pytest.UsageError(f"--hil-board-inventory: {err}") from None
    power = config.getoption("--hil-power", default=None)
    try:
        parse_power(power)
    except ValueError as err:
        raise pytest.UsageError(f"--hil-power: {err}") from None
    by_identity = _specs_by_identity(config, target, power)
    ports = config.getoption("--port", default=None) or os.environ.get("ESPPORT")
    if by_identity and config.getoption("--port", default=None):
        raise pytest.UsageError("give the boards by --port or by --port-serial-number / --port-mac, not both")
    if by_identity:
        return by_identity
    if ports:
        return inventory.specs_from_ports(ports, target, power)
    return inventory.autodetect_specs(target, power)


def _specs_by_identity(config: pytest.Config, target: str, power: str | None) -> list[inventory.BoardSpec]:
    """Boards named by pytest-embedded's --port-serial-number and --port-mac (comma-separated lists)."""
    serials = [s for s in (config.getoption("--port-serial-number", default=None) or "").split(",") if s.strip()]
    macs = [m for m in (config.getoption("--port-mac", default=None) or "").split(",") if m.strip()]
    specs = [inventory.BoardSpec(f"serial-{s.strip()}", target, serial_number=s.strip(), power=power) for s in serials]
    try:
        specs += [inventory.BoardSpec(f"mac-{inventory.normalize_mac(m)}", target, mac=inventory.normalize_mac(m),
                                      power=power) for m in macs]
    except inventory.InventoryError as err:
        raise pytest.UsageError(f"--port-mac: {err}") from None
    return specs


def boards_of(config: pytest.Config) -> list[inventory.BoardSpec]:
    if _SPECS_KEY not in config.stash:
        config.stash[_SPECS_KEY] = _configured_specs(config)
    return config.stash[_SPECS_KEY]


_SPECS_KEY = pytest.StashKey[list[inventory.BoardSpec]]()


def boards_needed(item: pytest.Item) -> int:
    marker = item.get_closest_marker("boards")
    return int(marker.args[0]) if marker and marker.args else 1


def deselect_for_target(config: pytest.Config, items: list[pytest.Item]) -> list[tuple[str, str]]:
    """Removes what the target cannot run; returns (test id, reason) for the report."""
    if not is_real(config):
        return []
    target = target_of(config)
    specs = boards_of(config)
    count = max(1, len(specs))  # with none found the session stops before running anything
    with_power = sum(1 for s in specs if s.has_power)
    kept, dropped = [], []
    for item in items:
        reason = None
        if item.get_closest_marker(VIRTUAL_ONLY.marker):
            reason = VIRTUAL_ONLY.reason
        elif item.get_closest_marker(POWER.marker) and not with_power:
            reason = POWER.reason
        elif boards_needed(item) > count:
            reason = (f"needs {boards_needed(item)} boards at once; {len(specs)} {target} board(s) configured "
                      "(list more with --port a,b or --hil-board-inventory)")
        (dropped if reason else kept).append((item, reason))
    if dropped:
        config.hook.pytest_deselected(items=[item for item, _ in dropped])
        items[:] = [item for item, _ in kept]
    return [(item.nodeid, reason) for item, reason in dropped]


def _no_board_message(target: str, detail: str) -> str:
    return (f"--target {target}: {detail}\nThis run does not fall back to the virtual board; omit --target to use "
            f"it.\n{inventory.HOW_TO_NAME_A_PORT}")


# What only a real target reads: given with the virtual one, they would be ignored without a word.
REAL_BOARD_OPTIONS = ("--port", "--port-serial-number", "--port-mac", "--app-path", "--build-dir", "--esptool-baud",
                      "--hil-board-inventory", "--hil-power", "--hil-wifi-ssid", "--hil-wifi-password", "--hil-host-ip")


def check_target_usable(config: pytest.Config) -> None:
    """A real target with no board, or no build, fails the session at once; never falls back."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    target = target_of(config)
    farm = pytest_farm.farm_address(config)
    if farm and (config.getoption("--hil-board-inventory", default=None) or config.getoption("--port", default=None)):
        raise pytest.UsageError("--hil-farm: the boards come from the farm's places; leave out --port and "
                                "--hil-board-inventory")
    if target == VIRTUAL_TARGET:
        if farm:
            raise pytest.UsageError(f"--hil-farm {farm}: a farm's places are real targets (USB boards or exported "
                                    "virtual ones); add --target esp32")
        given = [option for option in REAL_BOARD_OPTIONS if config.getoption(option, default=None) not in (None, "")]
        if given:  # a green run on the virtual board must not pass for one on the hardware, or on another app
            raise pytest.UsageError(f"{', '.join(given)}: for a real board, but the target is {VIRTUAL_TARGET} (the "
                                    "virtual ESP32, the default, which runs hil_app_dir's firmware); add --target "
                                    "esp32 to run on the board, or leave them out")
        return
    if target not in real_targets():
        raise pytest.UsageError(f"--target {target}: unknown target; use {VIRTUAL_TARGET} (the virtual ESP32) "
                                "or esp32 (a real board)")
    if config.getoption("--hil-flash-timing", default="none") != "none":
        raise pytest.UsageError(f"--hil-flash-timing: for the virtual board, but the target is {target}: a real "
                                "board's flash takes its own time; leave it out")
    if config.option.collectonly or hasattr(config, "workerinput") or config.option.help:
        return  # collection alone needs no board; xdist workers trust the controller's check
    specs = boards_of(config)  # with a farm: its matching places (none is a usage error naming the coordinator)
    if not specs:
        raise pytest.UsageError(_no_board_message(target, "no board named and no ESP32 USB serial bridge found."))
    present = farm or [s for s in specs if s.mac and not (s.port or s.serial_number)
                       or _answers(inventory.resolve_port(s))]
    if not present:
        where = ", ".join(s.where() for s in specs)
        raise pytest.UsageError(_no_board_message(target, f"no board found at {where}."))
    try:
        idf_firmware(config).build()
    except FirmwareMissingError as err:
        raise pytest.UsageError(f"--target {target}: {err}") from None
    ssid = wifi_credentials(config).ssid
    if ssid is not None and any(c.isspace() for c in ssid):
        raise pytest.UsageError("--hil-wifi-ssid: an SSID with spaces cannot be provisioned over the console yet")


def _answers(url: str | None) -> bool:
    """A local port exists (resolve_port checked); a network port accepts a connection within 3 s."""
    if url is None or "://" not in url:
        return url is not None
    hostport = url.split("://", 1)[1].split("?", 1)[0].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


# --- option values of a real target ---


@dataclass(frozen=True)
class WifiCredentials:
    ssid: str | None
    password: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"WifiCredentials(ssid={self.ssid!r}, password={'********' if self.password else None})"

    def settings(self) -> dict[str, str]:
        values = {}
        if self.ssid:
            values["wifi_ssid"] = self.ssid
        if self.password:
            values["wifi_password"] = Secret(self.password)
        return values


def wifi_credentials(config: pytest.Config) -> WifiCredentials:
    return WifiCredentials(
        ssid=config.getoption("--hil-wifi-ssid", default=None) or os.environ.get("HIL_WIFI_SSID"),
        password=config.getoption("--hil-wifi-password", default=None) or os.environ.get("HIL_WIFI_PASSWORD"),
    )


def idf_firmware(config: pytest.Config) -> IdfFirmware:
    if _FIRMWARE_KEY not in config.stash:
        app = project.of(config)
        device_dir = Path(config.getoption("--app-path", default=None) or app.app_dir)
        build_dir = config.getoption("--build-dir", default=None)
        default_build = (device_dir / build_dir) if build_dir else None  # an absolute build_dir stays absolute
        config.stash[_FIRMWARE_KEY] = IdfFirmware(device_dir, target_of(config), app.sdkconfig_defaults,
                                                  default_build=default_build)
    return config.stash[_FIRMWARE_KEY]


_FIRMWARE_KEY = pytest.StashKey[IdfFirmware]()

