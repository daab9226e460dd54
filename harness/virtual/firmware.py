"""Builds the firmware for the virtual board: the host build (CMake) wrapped in an app image.

One build per variant (``device/sdkconfig.ci.<variant>``) under ``build/virtual/<variant>``;
CMake rebuilds only what changed, so calling this at every session start is cheap. Parallel
sessions (pytest-xdist workers) serialise on a lock file.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.images import build_virtual_image, patch_version

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVICE_DIR = REPO_ROOT / "device"
PROJECT_NAME = "hil_ota_agent"
DEFAULT_VARIANT = "default"


class FirmwareBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class FirmwareBuild:
    variant: str
    elf: Path
    image_path: Path
    version: str

    @property
    def image(self) -> bytes:
        return self.image_path.read_bytes()

    def image_with_version(self, version: str) -> bytes:
        """The same firmware reporting another version (a patched app descriptor)."""
        return patch_version(self.image, version)


def project_version(device_dir: Path = DEVICE_DIR) -> str:
    """PROJECT_VER as ESP-IDF takes it from version.txt."""
    return (device_dir / "version.txt").read_text().strip()


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FirmwareBuildError(
            f"{what} failed (exit {result.returncode}): {' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def build(variant: str = DEFAULT_VARIANT, build_root: Path | None = None) -> FirmwareBuild:
    """Builds (incrementally) the host firmware for a variant and wraps it as an app image."""
    build_root = build_root or REPO_ROOT / "build" / "virtual"
    build_dir = build_root / variant
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (build_dir / "CMakeCache.txt").exists():
            _run(
                [
                    "cmake", "-S", str(DEVICE_DIR / "port" / "linux"), "-B", str(build_dir),
                    f"-DPython3_EXECUTABLE={sys.executable}",
                    f"-DHIL_VARIANT={'' if variant == DEFAULT_VARIANT else variant}",
                ],
                f"configuring the {variant} firmware",
            )
        _run(["cmake", "--build", str(build_dir), f"-j{os.cpu_count() or 2}"], f"building the {variant} firmware")
        elf = build_dir / PROJECT_NAME
        version = project_version()
        image_path = build_dir / f"{PROJECT_NAME}.bin"
        if not image_path.exists() or image_path.stat().st_mtime < elf.stat().st_mtime:
            image = build_virtual_image(elf.read_bytes(), version=version, project_name=PROJECT_NAME)
            tmp = image_path.with_suffix(".tmp")
            tmp.write_bytes(image)
            tmp.rename(image_path)
    return FirmwareBuild(variant, elf, image_path, version)


def build_port_check(variant: str = DEFAULT_VARIANT, build_root: Path | None = None) -> Path:
    """The host port's own check app (device/port/linux/test/port_check.c), built on demand.

    It runs the port's pieces one by one (flash semantics, reset reasons, task watchdog) for
    the harness's tests of the port; it is never part of the firmware.
    """
    fw = build(variant, build_root)  # configures, and regenerates the build files if needed
    build_dir = fw.elf.parent
    with open(build_dir.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _run(["cmake", "--build", str(build_dir), "--target", "hil_port_check"], "building port_check")
    return build_dir / "hil_port_check"
