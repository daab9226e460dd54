"""Which components an app's idf_component.yml brings into the virtual board's host build."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.formats.component_manifest import ManifestError, app_component_dirs
from harness.package_data import REFERENCE_APP_DIR

SHIPPED_AGENT = REFERENCE_APP_DIR / "components" / "ota_agent"


def component(directory: Path, manifest: str | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / "CMakeLists.txt").write_text("idf_component_register()\n")
    if manifest is not None:
        (directory / "idf_component.yml").write_text(manifest)
    return directory


def app(tmp_path: Path, manifest: str) -> Path:
    root = tmp_path / "app"
    (root / "main").mkdir(parents=True)
    (root / "main" / "idf_component.yml").write_text(manifest)
    return root


def test_path_dependencies_resolve_relative_to_their_manifest_and_transitively(tmp_path: Path) -> None:
    leaf = component(tmp_path / "libs" / "leaf")
    middle = component(tmp_path / "libs" / "middle", "dependencies:\n  leaf:\n    path: ../leaf\n")
    root = app(tmp_path, "dependencies:\n  idf: '>=5.5'\n  middle:\n    path: ../../libs/middle\n")
    assert app_component_dirs(root) == [middle.resolve(), leaf.resolve()]


def test_a_git_dependency_on_ota_agent_is_the_shipped_component_unless_idf_py_downloaded_it(tmp_path: Path) -> None:
    root = app(tmp_path, "dependencies:\n  ota_agent:\n    git: https://example.com/esp-ota-hil.git\n"
                         "    path: device/components/ota_agent\n  espressif/cjson: '^1.7.19'\n")
    assert app_component_dirs(root) == [SHIPPED_AGENT]
    downloaded = component(root / "managed_components" / "ota_agent")
    assert app_component_dirs(root) == [downloaded.resolve()]


def test_a_path_that_is_no_component_says_which_and_where(tmp_path: Path) -> None:
    root = app(tmp_path, "dependencies:\n  ota_agent:\n    path: ../../nowhere/ota_agent\n")
    with pytest.raises(ManifestError, match=r"dependency 'ota_agent' has path '../../nowhere/ota_agent', which "
                                            r"resolves to .*nowhere/ota_agent, not a component directory"):
        app_component_dirs(root)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    root = app(tmp_path, "dependencies: [unclosed\n")
    with pytest.raises(ManifestError, match=r"main/idf_component.yml: not valid YAML"):
        app_component_dirs(root)
