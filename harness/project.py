"""The firmware project under test: which ESP-IDF app, its variants, and its MQTT topic prefix.

A firmware repository that uses the harness says so in its pytest configuration (pytest.ini,
``[tool.pytest.ini_options]`` or tox.ini), paths relative to that file:

    [pytest]
    hil_app_dir = firmware                 # the ESP-IDF project: main/, partitions.csv, version.txt
    hil_sdkconfig_defaults = firmware/sdkconfig.defaults
    hil_variants = default selftest_fail   # each non-default one is <app>/sdkconfig.ci.<name>
    hil_topic_prefix = acme/devices

Left out, each setting is the reference firmware's (this repository's device/, shipped in the wheel as
harness/data/device: harness.package_data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness.package_data import REFERENCE_APP_DIR, REFERENCE_SDKCONFIG_DEFAULTS

HARNESS_ROOT = Path(__file__).resolve().parents[1]  # the repository in a checkout (harness.catalog reads tests_hil)
DEFAULT_VARIANT = "default"
DEFAULT_TOPIC_PREFIX = "devices"  # CONFIG_HIL_TOPIC_PREFIX's default (device/main/Kconfig.projbuild)
_TOPIC_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")  # no wildcards, no empty levels
_CMAKE_PROJECT = re.compile(r"^\s*project\s*\(\s*([A-Za-z0-9_.-]+)", re.MULTILINE)


class ProjectError(ValueError):
    """The project configuration is unusable; the message says what to fix."""


@dataclass(frozen=True)
class HilProject:
    app_dir: Path
    sdkconfig_defaults: tuple[Path, ...]
    variants: tuple[str, ...]
    topic_prefix: str

    @property
    def name(self) -> str:
        """The name in the app's ``project()`` call, as ESP-IDF writes it into esp_app_desc_t."""
        found = _CMAKE_PROJECT.search((self.app_dir / "CMakeLists.txt").read_text())
        return found.group(1) if found else self.app_dir.name

    @property
    def partitions_csv(self) -> Path:
        return self.app_dir / "partitions.csv"

    @property
    def version(self) -> str:
        """PROJECT_VER as ESP-IDF takes it from version.txt."""
        return (self.app_dir / "version.txt").read_text().strip()

    def variant_file(self, variant: str) -> Path | None:
        """The sdkconfig.ci.<variant> a variant adds on top of the defaults (None for the default build)."""
        return None if variant == DEFAULT_VARIANT else self.app_dir / f"sdkconfig.ci.{variant}"

    def check_variant(self, variant: str) -> None:
        if variant not in self.variants:
            raise ProjectError(f"firmware variant {variant!r} is not among hil_variants {list(self.variants)}; "
                               "add it to hil_variants in the pytest configuration")

    def check(self) -> None:
        """Everything a build needs is there; each problem names the file or setting to fix."""
        missing = [p for p in (self.app_dir / "main", self.app_dir / "CMakeLists.txt", self.partitions_csv,
                               self.app_dir / "version.txt", *self.sdkconfig_defaults) if not p.exists()]
        missing += [f for f in map(self.variant_file, self.variants) if f is not None and not f.exists()]
        if missing:
            raise ProjectError(f"hil_app_dir {self.app_dir}: missing {', '.join(map(str, missing))}")
        if not _TOPIC_PREFIX.fullmatch(self.topic_prefix):
            raise ProjectError(f"hil_topic_prefix {self.topic_prefix!r}: use topic levels of letters, digits, "
                               "'_', '.', '-' separated by '/', without wildcards or a leading '/'")


def reference() -> HilProject:
    """This repository's reference firmware; its defaults are beside its app directory (device/CMakeLists.txt)."""
    return HilProject(
        app_dir=REFERENCE_APP_DIR,
        sdkconfig_defaults=(REFERENCE_SDKCONFIG_DEFAULTS,),
        variants=(DEFAULT_VARIANT, *sorted(p.name.removeprefix("sdkconfig.ci.")
                                           for p in REFERENCE_APP_DIR.glob("sdkconfig.ci.*"))),
        topic_prefix=DEFAULT_TOPIC_PREFIX,
    )


def add_ini_options(parser: pytest.Parser) -> None:
    parser.addini("hil_app_dir", "the ESP-IDF project under test, relative to the configuration file "
                  "(default: the harness's reference firmware)", default="")
    parser.addini("hil_sdkconfig_defaults", "its sdkconfig defaults files (default: <hil_app_dir>/sdkconfig.defaults "
                  "when it exists)", type="args", default=[])
    parser.addini("hil_variants", "firmware variants the tests use; each but 'default' is "
                  "<hil_app_dir>/sdkconfig.ci.<name>", type="args", default=[])
    parser.addini("hil_topic_prefix", f"MQTT topic prefix of the devices (default: {DEFAULT_TOPIC_PREFIX})",
                  default="")


_KEY = pytest.StashKey[HilProject]()
SETTINGS = ("hil_app_dir", "hil_sdkconfig_defaults", "hil_variants", "hil_topic_prefix")


def is_configured(config: pytest.Config) -> bool:
    """The run names its project (a pytest run that never asks for a board needs none)."""
    return any(config.getini(name) for name in SETTINGS)


def of(config: pytest.Config) -> HilProject:
    """The project of a run, read from its configuration once."""
    if _KEY not in config.stash:
        config.stash[_KEY] = from_config(config)
    return config.stash[_KEY]


def from_config(config: pytest.Config) -> HilProject:
    """The project named by the hil_* settings, checked; a pytest.UsageError says what to fix."""
    base = config.inipath.parent if config.inipath else config.rootpath
    project = reference()
    if app := config.getini("hil_app_dir"):
        app_dir = (base / app).resolve()
        own_defaults = app_dir / "sdkconfig.defaults"
        project = HilProject(app_dir, (own_defaults,) if own_defaults.exists() else (), (DEFAULT_VARIANT,),
                             project.topic_prefix)
    if defaults := config.getini("hil_sdkconfig_defaults"):
        project = replace(project, sdkconfig_defaults=tuple((base / p).resolve() for p in defaults))
    if variants := config.getini("hil_variants"):
        project = replace(project, variants=tuple(dict.fromkeys([DEFAULT_VARIANT, *variants])))
    if prefix := config.getini("hil_topic_prefix"):
        project = replace(project, topic_prefix=prefix)
    try:
        project.check()
    except ProjectError as err:
        raise pytest.UsageError(f"{err} (settings in {config.inipath or 'the pytest configuration'})") from None
    return project
