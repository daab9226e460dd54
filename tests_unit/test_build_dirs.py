"""Where the virtual firmware builds go (harness.virtual.build_dirs): in the tree, or in the cache."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from harness import project
from harness.virtual import build_dirs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No cache setting from the caller's environment; HOME is a directory of the test's own."""
    monkeypatch.delenv(build_dirs.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def outside_app(tmp_path: Path) -> project.HilProject:
    """The sample's app, copied out of the repository (main/ symlink resolved)."""
    app = tmp_path / "acme" / "firmware"
    shutil.copytree(ROOT / "examples" / "acme_sensor" / "firmware", app)
    return project.HilProject(app, (app / "sdkconfig.defaults",), (project.DEFAULT_VARIANT,), "acme")


def test_the_reference_firmware_builds_in_the_repository_s_build_dir(clean_env: Path) -> None:
    assert build_dirs.build_root(project.reference()) == ROOT / "build" / "virtual"
    assert build_dirs.build_root(project.reference(), in_tree_root=clean_env) == clean_env / "build" / "virtual"


def test_an_app_outside_the_repository_builds_in_the_xdg_cache(clean_env: Path,
                                                               outside_app: project.HilProject,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_dirs.build_root(outside_app, in_tree_root=clean_env)
    assert root.parent == clean_env / "home" / ".cache" / "esp-ota-hil" / "virtual"
    assert root.name.startswith("acme_sensor-")
    monkeypatch.setenv("XDG_CACHE_HOME", str(clean_env / "xdg"))
    assert build_dirs.build_root(outside_app).parent == clean_env / "xdg" / "esp-ota-hil" / "virtual"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    assert build_dirs.cache_dir() == clean_env / "home" / ".cache" / "esp-ota-hil"


def test_the_environment_variable_wins_over_the_setting(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setting = clean_env / "from-ini"
    assert build_dirs.cache_dir(setting) == setting
    monkeypatch.setenv(build_dirs.CACHE_ENV, str(clean_env / "from-env"))
    assert build_dirs.cache_dir(setting) == clean_env / "from-env"


def test_two_projects_never_share_a_build(clean_env: Path, outside_app: project.HilProject, tmp_path: Path) -> None:
    other_copy = tmp_path / "other" / "firmware"
    shutil.copytree(outside_app.app_dir, other_copy)
    same_name_elsewhere = replace(outside_app, app_dir=other_copy)
    other_defaults = replace(outside_app, sdkconfig_defaults=())
    roots = {build_dirs.build_root(p) for p in (outside_app, same_name_elsewhere, other_defaults)}
    assert len(roots) == 3
    assert build_dirs.build_root(outside_app) == build_dirs.build_root(replace(outside_app, variants=("x",)))


@dataclass
class FakeConfig:
    """The part of a pytest.Config that build_root_of reads."""

    inipath: Path
    rootpath: Path
    ini: dict[str, str]

    def getini(self, name: str) -> str:
        return self.ini.get(name, "")


def test_the_setting_is_relative_to_the_configuration_file(clean_env: Path, outside_app: project.HilProject) -> None:
    config = FakeConfig(clean_env / "acme" / "pytest.ini", clean_env / "acme", {"hil_cache_dir": ".hil-cache"})
    root = build_dirs.build_root_of(config, outside_app)  # type: ignore[arg-type]
    assert root.parent == clean_env / "acme" / ".hil-cache" / "virtual"
    in_repo = FakeConfig(ROOT / "pytest.ini", ROOT, {"hil_cache_dir": ".hil-cache"})
    assert build_dirs.build_root_of(in_repo, project.reference()) == ROOT / "build" / "virtual"  # type: ignore[arg-type]
