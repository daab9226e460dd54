"""The firmware sources the harness ships as package data: where they are, installed or in a checkout.

``harness/data/`` holds what the virtual board's host build compiles (pyproject.toml lists the files):

    harness/data/sdkconfig.defaults       the reference firmware's defaults, beside its app as in this repository
    harness/data/device/                  the reference firmware: main/, components/, partitions.csv, version.txt,
                                          sdkconfig.ci.<variant>
    harness/data/device/port/linux/       the host port: CMakeLists.txt, Kconfig, include/, src/, test/

In this repository ``harness/data/device`` and ``harness/data/sdkconfig.defaults`` are symlinks to ``device/``
and ``sdkconfig.defaults``; a wheel holds copies. Both are found the same way, through importlib.resources.
The symlinks are resolved, so that in a checkout every path is the repository's own, as before the harness
shipped them (the CMake caches in build/virtual record the source and app directories).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# A plain directory: the harness is installed unzipped (a wheel) or editable. Resolved as the paths it had before.
_PACKAGE_DIR = Path(str(files("harness"))).resolve()
DATA_DIR = _PACKAGE_DIR / "data"
REFERENCE_APP_DIR = (DATA_DIR / "device").resolve()
REFERENCE_SDKCONFIG_DEFAULTS = (DATA_DIR / "sdkconfig.defaults").resolve()
HOST_PORT_DIR = REFERENCE_APP_DIR / "port" / "linux"


def source_checkout() -> Path | None:
    """The repository the harness runs from when it is a source checkout (installed editable), else None.

    A checkout has the project's pyproject.toml beside the package; an installed wheel sits in site-packages,
    which never has one.
    """
    root = _PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None



def missing_host_port_files() -> list[Path]:
    """What the host build needs of the port and is not there: a wheel built without its package data."""
    needed = [HOST_PORT_DIR / name for name in ("CMakeLists.txt", "Kconfig", "include", "src")]
    return [p for p in needed if not p.exists()]
