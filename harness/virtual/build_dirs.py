"""Where the virtual board's firmware builds go: in this repository's tree, or in a cache directory.

- An app inside the harness's own source checkout (the reference firmware, examples/ run in place) builds in
  the tree, in ``<root>/build/virtual/<variant>``, as `make hil`, `make test` and `python -m harness build`
  always had it (`<root>` is pytest's rootdir, or the checkout for the command line).
- Any other app (a firmware team's project, or the reference firmware of an installed wheel) builds in
  ``<cache>/virtual/<project name>-<key>/<variant>``. The key hashes the app directory, its sdkconfig defaults
  and the host port it is compiled over, so two projects, or one project under two installations of the
  harness, never share a build directory (CMake refuses a build directory made from another source), and
  nothing is written beside an installed harness.

The cache is the first of: the ``HIL_CACHE_DIR`` environment variable (one run's choice wins), the
``hil_cache_dir`` setting (relative to the pytest configuration file), ``$XDG_CACHE_HOME/esp-ota-hil``,
``~/.cache/esp-ota-hil``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from harness.package_data import HOST_PORT_DIR, source_checkout
from harness.project import HilProject

CACHE_ENV = "HIL_CACHE_DIR"
CACHE_INI = "hil_cache_dir"
CACHE_NAME = "esp-ota-hil"


def cache_dir(setting: Path | None = None) -> Path:
    """The cache directory: HIL_CACHE_DIR, else `setting` (hil_cache_dir), else the XDG cache home's."""
    if value := os.environ.get(CACHE_ENV):
        return Path(value).expanduser().absolute()
    if setting is not None:
        return setting
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG base directory spec: a relative XDG_CACHE_HOME is invalid and is to be ignored.
    home = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return home / CACHE_NAME


def project_key(project: HilProject) -> str:
    """Names a project's builds in the cache: its name (for people) and a hash of what its builds are made from."""
    made_from = [str(project.app_dir), [str(p) for p in project.sdkconfig_defaults], str(HOST_PORT_DIR)]
    digest = hashlib.sha256(json.dumps(made_from).encode()).hexdigest()[:12]
    return f"{project.name}-{digest}"


def build_root(project: HilProject, in_tree_root: Path | None = None, cache: Path | None = None) -> Path:
    """The directory holding a project's variant builds (one subdirectory each)."""
    checkout = source_checkout()
    if checkout is not None and project.app_dir.resolve().is_relative_to(checkout):
        return (in_tree_root or checkout) / "build" / "virtual"
    return (cache or cache_dir()) / "virtual" / project_key(project)


def add_ini_option(parser: pytest.Parser) -> None:
    parser.addini(CACHE_INI, f"where the virtual board's firmware builds of an app outside the harness's repository "
                  f"go, relative to the configuration file (default: ${CACHE_ENV}, else "
                  f"$XDG_CACHE_HOME/{CACHE_NAME}, else ~/.cache/{CACHE_NAME})", default="")


def build_root_of(config: pytest.Config, project: HilProject) -> Path:
    """The build directory of a pytest run's project: in the tree under its rootdir, or in the cache."""
    setting = config.getini(CACHE_INI)
    base = config.inipath.parent if config.inipath else config.rootpath
    return build_root(project, config.rootpath, cache_dir((base / setting).resolve() if setting else None))
