"""A host build that cannot run says what to install (harness.virtual.host_tools), not CMake's whole log."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import package_data, project
from harness.virtual import firmware, host_tools

PKGCONF = """-- Checking for modules 'libmosquitto;libcurl;libcjson;openssl;zlib'
--   Package 'libmosquitto', required by 'virtual:world', not found
--   Package 'libcjson', required by 'virtual:world', not found
CMake Error at /usr/share/cmake-3.25/Modules/FindPkgConfig.cmake:607 (message):
  A required package was not found
"""
FREEDESKTOP_PKG_CONFIG = "-- Checking for modules 'libmosquitto;zlib'\n--   No package 'zlib' found\n"


def test_missing_pkg_config_modules_are_read_from_either_pkg_config() -> None:
    assert host_tools.missing_modules(PKGCONF) == ["libmosquitto", "libcjson"]
    assert host_tools.missing_modules(FREEDESKTOP_PKG_CONFIG) == ["zlib"]
    assert host_tools.missing_modules("-- Configuring done\n") == []


def test_the_fix_names_the_debian_packages() -> None:
    message = host_tools.missing_packages_message(PKGCONF)
    assert message is not None
    assert "apt-get install libmosquitto-dev libcjson-dev" in message
    tools = host_tools.missing_packages_message("Could NOT find PkgConfig (missing: PKG_CONFIG_EXECUTABLE)")
    assert tools is not None and "apt-get install pkg-config" in tools
    assert host_tools.missing_packages_message("error: unknown type name 'foo'") is None


def test_a_configure_step_without_the_libraries_names_the_apt_get_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A real configure step, with pkg-config looking in an empty directory: every library is missing."""
    (tmp_path / "no-pc-files").mkdir()
    monkeypatch.setenv("PKG_CONFIG_LIBDIR", str(tmp_path / "no-pc-files"))
    with pytest.raises(firmware.FirmwareBuildError) as failure:
        firmware.build(build_root=tmp_path / "build")
    packages = " ".join(host_tools.DEBIAN_PACKAGE_OF_MODULE.values())
    assert f"apt-get install {packages}" in str(failure.value)


def test_no_cmake_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(host_tools.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(firmware.FirmwareBuildError, match=r"apt-get install cmake\n"):
        firmware.build(build_root=tmp_path / "build")


def test_a_harness_installed_without_its_package_data_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package_data, "HOST_PORT_DIR", tmp_path / "port" / "linux")
    with pytest.raises(firmware.FirmwareBuildError, match="installed without its package data"):
        firmware.build(build_root=tmp_path / "build")


@pytest.mark.skipif(shutil.which("ninja") is None, reason="needs ninja (Debian's ninja-build)")
def test_a_build_dir_made_with_make_is_configured_again_for_ninja(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """ninja installed after a first build: CMake refuses a second generator in one directory unless it starts
    afresh, so the configure step clears the old cache."""
    options = firmware._cmake_options(project.reference(), project.DEFAULT_VARIANT)
    assert options[:2] == ["-G", "Ninja"]
    make_options = options[2:]
    build_dir = tmp_path / "default"
    firmware._configure(build_dir, make_options, "default")
    assert firmware._cache_entries(build_dir / "CMakeCache.txt")["CMAKE_GENERATOR"] == "Unix Makefiles"
    firmware._configure(build_dir, options, "default")
    assert firmware._cache_entries(build_dir / "CMakeCache.txt")["CMAKE_GENERATOR"] == "Ninja"
    assert (build_dir / "build.ninja").exists()


def test_a_build_dir_copied_to_another_place_is_configured_afresh(tmp_path: Path) -> None:
    """A checkout copied or moved with its build/ (a CI cache restored elsewhere): CMake refuses a cache made for
    another build directory ("does not match the source ... used to generate cache"), so it starts afresh."""
    options = firmware._cmake_options(project.reference(), project.DEFAULT_VARIANT)
    first = tmp_path / "first" / "default"
    firmware._configure(first, options, "default")
    moved = tmp_path / "moved" / "default"
    shutil.copytree(first, moved)
    firmware._configure(moved, options, "default")
    assert firmware._cache_entries(moved / "CMakeCache.txt")["CMAKE_CACHEFILE_DIR"] == str(moved)
    firmware._run([firmware._cmake(), "--build", str(moved), "--target", "help"], "the moved build")


def test_a_missing_build_program_names_its_package() -> None:
    ninja = 'CMake Error: CMake was unable to find a build program corresponding to "Ninja".  CMAKE_MAKE_PROGRAM is'
    make = 'CMake Error: CMake was unable to find a build program corresponding to "Unix Makefiles".  CMAKE_MAKE'
    assert "apt-get install ninja-build" in (host_tools.missing_packages_message(ninja) or "")
    assert "apt-get install make" in (host_tools.missing_packages_message(make) or "")


def test_the_generator_in_the_environment_is_cmake_s_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMAKE_GENERATOR", "Unix Makefiles")
    assert host_tools.generator_options() == ["-G", "Unix Makefiles"]
    monkeypatch.delenv("CMAKE_GENERATOR")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert host_tools.generator_options() == []
