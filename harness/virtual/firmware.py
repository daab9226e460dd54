"""Builds the firmware for the virtual board: the host build (CMake) wrapped in an app image.

The app is a `HilProject` (harness.project; by default this repository's device/), compiled over the
host port the harness ships (harness.package_data). One build per variant (``<app>/sdkconfig.ci.<variant>``)
in ``<build root>/<variant>``: ``build/virtual`` in this repository, a cache directory for any other app
(harness.virtual.build_dirs). CMake rebuilds only what changed, so calling this at every session start is
cheap. Parallel sessions (pytest-xdist workers) serialise on a lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness import package_data
from harness.formats.app_image import build_virtual_image, patch_version
from harness.formats.component_manifest import ManifestError, app_component_dirs
from harness.project import DEFAULT_VARIANT, REFERENCE_APP_DIR, HilProject, reference
from harness.virtual import build_dirs, host_tools
from harness.virtual.bootloader import BootloaderConfig

DEVICE_DIR = REFERENCE_APP_DIR
HOST_TARGET = "hil_ota_agent"  # the executable's name in device/port/linux/CMakeLists.txt
__all__ = ["DEFAULT_VARIANT", "FirmwareBuild", "FirmwareBuildError", "build", "build_port_check"]


class FirmwareBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class FirmwareBuild:
    variant: str
    elf: Path
    image_path: Path
    version: str
    # the options of the build's bootloader (its sdkconfig)
    bootloader: BootloaderConfig = field(default_factory=BootloaderConfig)

    @property
    def image(self) -> bytes:
        return self.image_path.read_bytes()

    def image_with_version(self, version: str) -> bytes:
        """The same firmware reporting another version (a patched app descriptor)."""
        return patch_version(self.image, version)


def _cmake() -> str:
    if cmake := host_tools.find_cmake():
        return cmake
    raise FirmwareBuildError(host_tools.cmake_missing_message())


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if fix := host_tools.missing_packages_message(result.stdout + result.stderr):
            raise FirmwareBuildError(f"{what} failed: {fix}")
        raise FirmwareBuildError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def _cmake_options(project: HilProject, variant: str) -> list[str]:
    try:
        components = app_component_dirs(project.app_dir)
    except ManifestError as exc:
        raise FirmwareBuildError(f"cannot build {project.app_dir} for the virtual board: {exc}") from exc
    return [
        *host_tools.generator_options(),
        f"-DPython3_EXECUTABLE={sys.executable}",
        f"-DHIL_APP_DIR={project.app_dir}",
        f"-DHIL_SDKCONFIG_DEFAULTS={';'.join(map(str, project.sdkconfig_defaults))}",
        f"-DHIL_VARIANT={'' if variant == DEFAULT_VARIANT else variant}",
        f"-DHIL_EXTRA_COMPONENT_DIRS={';'.join(map(str, components))}",
    ]


def _check_host_port() -> None:
    if missing := package_data.missing_host_port_files():
        raise FirmwareBuildError(f"the harness's host port in {package_data.HOST_PORT_DIR} lacks "
                                 f"{', '.join(p.name for p in missing)}: this esp-ota-hil was installed without its "
                                 "package data (harness/data); reinstall it from a wheel built from its repository")


def _configure(build_dir: Path, options: list[str], variant: str) -> None:
    """Runs CMake's configure step when the build dir is new or was configured for another app."""
    stamp = build_dir / "hil-configure.json"
    cache = build_dir / "CMakeCache.txt"
    cached = _cache_entries(cache) if cache.exists() else None
    if cached is not None and (cached.get("CMAKE_GENERATOR") != _generator(options)
                               or not _same_dir(cached.get("CMAKE_HOME_DIRECTORY"), package_data.HOST_PORT_DIR)
                               or not _same_dir(cached.get("CMAKE_CACHEFILE_DIR"), build_dir)):
        # CMake refuses another generator, source or build directory in a configured one ("Does not match the
        # generator used previously", "does not match the source ... used to generate cache"): ninja installed
        # (or removed) since the last build, or a checkout copied or moved with its build/, starts it afresh
        cache.unlink()
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
    if cache.exists() and stamp.exists() and json.loads(stamp.read_text()) == options:
        return
    _run([_cmake(), "-S", str(package_data.HOST_PORT_DIR), "-B", str(build_dir), *options],
         f"configuring the {variant} firmware")
    stamp.write_text(json.dumps(options))


def _generator(options: list[str]) -> str:
    return options[options.index("-G") + 1] if "-G" in options else "Unix Makefiles"


def _same_dir(cached: str | None, path: Path) -> bool:
    return cached is not None and Path(cached).resolve() == path.resolve()


def _cache_entries(cache: Path) -> dict[str, str]:
    """A CMakeCache.txt's INTERNAL entries by name, read once per configure check."""
    entries = {}
    for line in cache.read_text(errors="replace").splitlines():
        name, internal, value = line.partition(":INTERNAL=")
        if internal:
            entries[name] = value
    return entries


def _without_debug_info(elf: Path) -> bytes:
    """The executable the image carries: the ELF without its debug sections, as an ESP-IDF app's .bin holds
    the code and data but not the .elf's DWARF. The descriptor keeps the full ELF's SHA-256 (what the app
    prints at boot), so a backtrace is decoded with the ELF beside the build (harness.panic_decoder)."""
    stripped = elf.with_name(elf.name + ".stripped")
    _run(["objcopy", "--strip-debug", str(elf), str(stripped)], "stripping the firmware's debug info")
    return stripped.read_bytes()


def build(variant: str = DEFAULT_VARIANT, build_root: Path | None = None,
          project: HilProject | None = None) -> FirmwareBuild:
    """Builds (incrementally) the host firmware of a project's variant and wraps it as an app image."""
    _check_host_port()
    project = project or reference()
    build_root = build_root or build_dirs.build_root(project)
    build_dir = build_root / variant
    try:
        build_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FirmwareBuildError(f"cannot make the firmware build directory {build_dir}: {err.strerror}; set "
                                 f"{build_dirs.CACHE_ENV} to a directory you can write") from None
    with open(build_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _configure(build_dir, _cmake_options(project, variant), variant)
        _run([_cmake(), "--build", str(build_dir), f"-j{os.cpu_count() or 2}"], f"building the {variant} firmware")
        elf = build_dir / HOST_TARGET
        version = project.version
        sdkconfig = (build_dir / "sdkconfig").read_text()
        secure_version = _secure_version(sdkconfig)
        image_path = build_dir / f"{HOST_TARGET}.bin"
        stamp = build_dir / "hil-image.json"  # what the image was made with: a new version.txt remakes it
        made_with = {"version": version, "name": project.name, "elf_mtime_ns": elf.stat().st_mtime_ns,
                     "secure_version": secure_version}
        if not image_path.exists() or not stamp.exists() or json.loads(stamp.read_text()) != made_with:
            image = build_virtual_image(_without_debug_info(elf), version=version, project_name=project.name,
                                        app_elf_sha256=hashlib.sha256(elf.read_bytes()).digest(),
                                        secure_version=secure_version)
            tmp = image_path.with_suffix(".tmp")
            tmp.write_bytes(image)
            tmp.rename(image_path)
            stamp.write_text(json.dumps(made_with))
    return FirmwareBuild(variant, elf, image_path, version, BootloaderConfig.from_sdkconfig(sdkconfig))


def _secure_version(sdkconfig: str) -> int:
    """esp_app_desc_t.secure_version: CONFIG_BOOTLOADER_APP_SECURE_VERSION with anti-rollback, else 0."""
    for line in sdkconfig.splitlines():
        if line.startswith("CONFIG_BOOTLOADER_APP_SECURE_VERSION="):
            return int(line.split("=", 1)[1], 0)
    return 0


def build_port_check(variant: str = DEFAULT_VARIANT, build_root: Path | None = None) -> Path:
    """The host port's own check app (device/port/linux/test/port_check.c), built on demand.

    It runs the port's pieces one by one (flash semantics, reset reasons, task watchdog) for
    the harness's tests of the port; it is never part of the firmware.
    """
    fw = build(variant, build_root)  # configures, and regenerates the build files if needed
    build_dir = fw.elf.parent
    with open(build_dir.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run([_cmake(), "--build", str(build_dir), "--target", "hil_port_check"], "building port_check")
    return build_dir / "hil_port_check"
