"""What the virtual board's host build needs on the machine, and the fix to name when something is missing.

The firmware is compiled by CMake and gcc against Debian libraries that CMake finds with pkg-config
(``pkg_check_modules`` in device/port/linux/CMakeLists.txt). In this repository ``make deps`` installs them
(the Makefile's APT_PACKAGES); a firmware team with only the wheel installed gets, instead of CMake's own
output, the apt-get line that installs what is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

# The Debian package with each pkg-config module the host CMakeLists asks for (as the Makefile installs them).
DEBIAN_PACKAGE_OF_MODULE = {
    "libmosquitto": "libmosquitto-dev",
    "libcurl": "libcurl4-openssl-dev",
    "libcjson": "libcjson-dev",
    "openssl": "libssl-dev",
    "zlib": "zlib1g-dev",
}
# pkgconf's and freedesktop pkg-config's words for a missing module.
_MISSING_MODULE = re.compile(r"Package '([^']+)', required by '[^']*', not found|No package '([^']+)' found")
# CMake's words when a tool of the build is missing, and the Debian package that brings it.
_MISSING_TOOL = {
    "Could NOT find PkgConfig": "pkg-config",
    "No CMAKE_C_COMPILER could be found": "gcc",
    'unable to find a build program corresponding to "Ninja"': "ninja-build",
    'unable to find a build program corresponding to "Unix Makefiles"': "make",
}


def apt_get_install(packages: list[str]) -> str:
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {' '.join(packages)}"


def find_cmake() -> str | None:
    """cmake on PATH, or beside this Python (`pip install cmake` into a venv that is not activated)."""
    return shutil.which("cmake") or shutil.which("cmake", path=str(Path(sys.executable).parent))


def generator_options() -> list[str]:
    """CMake's generator for the host build: Ninja where it is installed, else CMake's default (Unix Makefiles).

    Every pytest process checks every firmware variant it uses at its start, 20 to 30 checks a `make hil`:
    Ninja finds nothing to do in about 0.04 s, Make in about 0.14 s (it re-reads the whole makefile tree).
    A generator chosen in the environment (CMAKE_GENERATOR) wins, passed on as `-G`, so that the build dir's
    generator is known (firmware._configure) whichever was chosen.
    """
    if os.environ.get("CMAKE_GENERATOR"):
        return ["-G", os.environ["CMAKE_GENERATOR"]]
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def cmake_missing_message() -> str:
    return ("the virtual board's firmware is built with CMake (3.16 or newer), and cmake is neither on PATH nor "
            f"beside {sys.executable}. Install it with:\n    {apt_get_install(['cmake'])}\n"
            "(or `pip install cmake` into this environment)")


def missing_modules(cmake_output: str) -> list[str]:
    """The pkg-config modules a failed configure step did not find, in the order CMake named them."""
    found = (a or b for a, b in _MISSING_MODULE.findall(cmake_output))
    return list(dict.fromkeys(found))


def debian_package_of(module: str) -> str:
    return DEBIAN_PACKAGE_OF_MODULE.get(module, f"<the -dev package with {module}.pc>")


def missing_packages_message(cmake_output: str) -> str | None:
    """The fix for a configure step that failed on a missing Debian package, or None if that was not it."""
    packages = [debian_package_of(m) for m in missing_modules(cmake_output)]
    packages += [package for words, package in _MISSING_TOOL.items() if words in cmake_output]
    if not packages:
        return None
    return ("the virtual board's host build needs Debian packages that are not installed: "
            f"{', '.join(packages)}. Install them with:\n    {apt_get_install(packages)}")
