"""Firmware built with idf.py for a real chip: one build directory per target and variant.

The builds follow ESP-IDF's ``build_<target>_<variant>`` convention under ``device/`` (the layout
``.github/workflows/firmware.yml`` produces and uploads). Each holds what ``idf.py flash`` writes,
listed in ``flasher_args.json``: the bootloader, the partition table, the app and ota_data_initial.

Other versions of the firmware are not built: they are the app image of one build with a patched
``esp_app_desc_t.version`` (``harness.app_image.patch_version``), so a release gate needs exactly one
build per variant.

Why not pytest-embedded-idf's ``IdfApp`` (and ``IdfSerial.flash``), which read the same build directory:
- Depending on it installs pytest-embedded, whose pytest11 entry point then loads into every session of
  every user, virtual board included: its options (this plugin defers to them when present, see
  harness.targets) and its autouse fixtures (``record_xml_attribute`` on every test, an experimental pytest
  API that warns). A gate that does not use pytest-embedded's ``dut`` should not carry that.
- What it would give here is little: the ELF, the flash files and settings of flasher_args.json, which this
  module reads in a few lines and checks with errors that name the idf.py command to run (a build for the
  wrong chip, an app not at ota_0). Its ``partition_table`` runs ESP-IDF's gen_esp32part.py from
  ``IDF_PATH``, which a runner that only flashes prebuilt CI artifacts does not have; the table is parsed
  here from the binary (harness.formats.partition_table).
- Its flashing writes every file of the build each time (or skips it all); between tests the bench
  restores a board to the baseline with esptool directly, erasing otadata and nvs and rewriting ota_0 only
  when its MD5 on the chip differs (harness.boards.esp32), which keeps a real-board catalog run short.
Projects that use pytest-embedded side by side keep working: the harness accepts its option names.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import panic_decoder
from harness.formats import app_image
from harness.formats import partition_table as pt
from harness.formats.signing import SigningKey

REPO_ROOT = Path(__file__).resolve().parents[1]
DEVICE_DIR = REPO_ROOT / "device"
DEFAULT_VARIANT = "default"


class FirmwareMissingError(RuntimeError):
    """A build is missing or incomplete; the message names the idf.py command that makes it."""


def build_dir_name(target: str, variant: str) -> str:
    return f"build_{target}_{variant}"


def idf_build_command(device_dir: Path, target: str, variant: str,
                      sdkconfig_defaults: Sequence[Path] | None = None) -> str:
    """The idf.py command (as the firmware CI workflow runs it) that makes one build directory.

    `sdkconfig_defaults` are the project's (hil_sdkconfig_defaults); by default this repository's layout,
    where device/'s defaults are at the repository root.
    """
    device_dir = Path(device_dir).resolve()
    defaults = (list(sdkconfig_defaults) if sdkconfig_defaults is not None
                else [device_dir.parent / "sdkconfig.defaults"])
    if variant != DEFAULT_VARIANT:
        defaults.append(device_dir / f"sdkconfig.ci.{variant}")
    name = build_dir_name(target, variant)
    sdkconfig_defaults = ";".join(str(p) for p in defaults)
    return (
        f"cd {shlex.quote(str(device_dir))} && idf.py -B {name} -DSDKCONFIG={name}/sdkconfig "
        f"-DSDKCONFIG_DEFAULTS={shlex.quote(sdkconfig_defaults)} set-target {target} build"
    )


@dataclass(frozen=True)
class FlashFile:
    offset: int
    path: Path

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class IdfBuild:
    """One ``build_<target>_<variant>`` directory, read from its flasher_args.json."""

    target: str
    variant: str
    build_dir: Path
    bootloader: FlashFile
    partition_table: FlashFile
    app: FlashFile
    partitions: tuple[pt.Partition, ...]
    flash_mode: str = "keep"
    flash_size: str = "keep"
    flash_freq: str = "keep"
    version: str = field(default="")

    @property
    def image(self) -> bytes:
        """The app image as built."""
        return self.app.data

    def image_with_version(self, version: str) -> bytes:
        """The same app reporting another version (a patched app descriptor, resealed)."""
        return app_image.patch_version(self.image, version)

    def partition(self, label: str) -> pt.Partition:
        try:
            return pt.find(list(self.partitions), label)
        except KeyError:
            raise FirmwareMissingError(f"{self.build_dir}: the partition table has no {label!r} partition") from None

    @property
    def ota_0(self) -> pt.Partition:
        slots = pt.ota_slots(list(self.partitions))
        if not slots:
            raise FirmwareMissingError(f"{self.build_dir}: the partition table has no OTA app slot")
        return slots[0]

    @property
    def otadata(self) -> pt.Partition:
        part = pt.otadata_partition(list(self.partitions))
        if part is None:
            raise FirmwareMissingError(f"{self.build_dir}: the partition table has no otadata partition")
        return part

    @property
    def nvs(self) -> pt.Partition:
        return self.partition("nvs")

    @property
    def elf(self) -> Path:
        """The app's ELF, which decodes its backtraces: project_description.json's ``app_elf``, else the app
        binary's name with .elf (idf.py names both after the project)."""
        name = _project_description(self.build_dir).get("app_elf") or Path(self.app.path.name).with_suffix(".elf")
        return self.build_dir / name

    @property
    def toolchain_prefix(self) -> str:
        """What goes before addr2line: the build's own (project_description.json's, as idf.py monitor reads it),
        else the one ESP-IDF uses for the target."""
        prefix = _project_description(self.build_dir).get("monitor_toolchain_prefix")
        return prefix if isinstance(prefix, str) and prefix else panic_decoder.toolchain_prefix_of(self.target)

    def fingerprint(self) -> str:
        """Identifies what a full flash of this build writes (bootloader, table, app)."""
        digest = hashlib.sha256()
        for f in (self.bootloader, self.partition_table, self.app):
            digest.update(f.offset.to_bytes(4, "little"))
            digest.update(hashlib.sha256(f.data).digest())
        return digest.hexdigest()[:16]


def _project_description(build_dir: Path) -> dict[str, object]:
    """idf.py's build/project_description.json ({} when missing or unreadable: it only adds details)."""
    try:
        data = json.loads((build_dir / "project_description.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _offset(text: str) -> int:
    return int(str(text), 0)


def load_build(device_dir: Path, target: str, variant: str = DEFAULT_VARIANT,
               sdkconfig_defaults: Sequence[Path] | None = None, build_dir: Path | None = None) -> IdfBuild:
    """Read ``<device_dir>/build_<target>_<variant>`` (or the given build_dir, pytest-embedded's
    --build-dir); FirmwareMissingError says how to make it."""
    device_dir = Path(device_dir)
    build_dir = Path(build_dir) if build_dir is not None else device_dir / build_dir_name(target, variant)
    how = f"Build it with:\n    {idf_build_command(device_dir, target, variant, sdkconfig_defaults)}"
    if variant != DEFAULT_VARIANT and not (device_dir / f"sdkconfig.ci.{variant}").exists():
        raise FirmwareMissingError(f"unknown firmware variant {variant!r}: {device_dir}/sdkconfig.ci.{variant} "
                                   "does not exist")
    args_path = build_dir / "flasher_args.json"
    if not args_path.exists():
        raise FirmwareMissingError(f"no {target} build of the {variant!r} firmware: {args_path} is missing. {how}")
    try:
        args = json.loads(args_path.read_text())
        chip = args.get("extra_esptool_args", {}).get("chip", target)
        entries = {key: args[key] for key in ("bootloader", "partition-table", "app")}
    except (ValueError, KeyError) as err:
        raise FirmwareMissingError(f"{args_path} is not an idf.py flasher_args.json ({err!r}). {how}") from None
    if chip != target:
        raise FirmwareMissingError(f"{build_dir} was built for {chip}, not {target}. {how}")
    files = {}
    for key, entry in entries.items():
        path = build_dir / entry["file"]
        if not path.exists():
            raise FirmwareMissingError(f"{path} is missing (listed in {args_path}). {how}")
        files[key] = FlashFile(_offset(entry["offset"]), path)
    try:
        partitions = tuple(pt.from_binary(files["partition-table"].data))
    except ValueError as err:
        raise FirmwareMissingError(
            f"{files['partition-table'].path}: not a valid partition table ({err}). {how}") from None
    app = files["app"]
    try:
        version = app_image.read_descriptor(app.data).version
    except app_image.ImageError as err:
        raise FirmwareMissingError(f"{app.path}: not an app image ({err}). {how}") from None
    settings = args.get("flash_settings", {})
    build = IdfBuild(
        target=target,
        variant=variant,
        build_dir=build_dir,
        bootloader=files["bootloader"],
        partition_table=files["partition-table"],
        app=app,
        partitions=partitions,
        flash_mode=settings.get("flash_mode", "keep"),
        flash_size=settings.get("flash_size", "keep"),
        flash_freq=settings.get("flash_freq", "keep"),
        version=version,
    )
    if app.offset != build.ota_0.offset:
        raise FirmwareMissingError(
            f"{args_path}: the app is flashed at {app.offset:#x} but ota_0 starts at {build.ota_0.offset:#x}; "
            "the harness expects a table with ota_0 and ota_1 and no factory app (device/partitions.csv)"
        )
    return build


class IdfFirmware:
    """The ``firmware`` fixture for a real target: the same interface as the virtual builds."""

    def __init__(self, device_dir: Path, target: str, sdkconfig_defaults: Sequence[Path] | None = None,
                 default_build: Path | None = None) -> None:
        self.device_dir = Path(device_dir)
        self.target = target
        self.sdkconfig_defaults = sdkconfig_defaults
        self.default_build = default_build  # the default variant's build dir, when not build_<target>_default
        self.builds: dict[str, IdfBuild] = {}

    def build(self, variant: str = DEFAULT_VARIANT) -> IdfBuild:
        if variant not in self.builds:
            build_dir = self.default_build if variant == DEFAULT_VARIANT else None
            self.builds[variant] = load_build(self.device_dir, self.target, variant, self.sdkconfig_defaults,
                                              build_dir)
        return self.builds[variant]

    def image(self, variant: str = DEFAULT_VARIANT, version: str | None = None, *,
              secure_version: int | None = None, sign_with: SigningKey | None = None) -> bytes:
        return app_image.derive_image(self.build(variant).image, version, secure_version, sign_with)

    @property
    def base_version(self) -> str:
        return self.build().version

    def panic_symbols(self) -> panic_decoder.Symbols:
        """For decoding backtraces: the ELF of every build used so far (which one ran is told by the ELF SHA256
        the app prints at boot), the target's addr2line and, if $ESP_ROM_ELF_DIR has it, the ROM ELF."""
        builds = list(self.builds.values())
        prefix = builds[0].toolchain_prefix if builds else panic_decoder.toolchain_prefix_of(self.target)
        return panic_decoder.Symbols(
            elfs=tuple(build.elf for build in builds),
            toolchain_prefix=prefix,
            rom_elf=panic_decoder.rom_elf_of(self.target),
            how_to_get_toolchain="ESP-IDF's toolchain: run . $IDF_PATH/export.sh, or $IDF_PATH/install.sh "
                                 f"{self.target}",
        )
