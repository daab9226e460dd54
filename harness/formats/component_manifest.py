"""Local (path) dependencies of an ESP-IDF component manifest, ``idf_component.yml``.

The virtual board's host build compiles an app's components itself (ESP-IDF's component manager runs only
inside ``idf.py``), so it needs the directories of the components a manifest pulls in by path::

    dependencies:
      ota_agent:
        path: ../../esp-ota-hil/device/components/ota_agent    # relative to the manifest's directory

A git or registry dependency is taken from ``<app>/managed_components/`` when ``idf.py`` has downloaded it
there (``<namespace>__<name>``); else a dependency on the ota_agent component (``ota_agent`` from git, or
``<namespace>/ota_agent``) is the copy the harness ships, so that a project using it from git runs on the
virtual board without an ESP-IDF install. Other registry components (espressif/mqtt, espressif/cjson) are
left to the real build: the host port provides what the firmware needs of them. YAML is read with PyYAML.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.package_data import REFERENCE_APP_DIR


class ManifestError(ValueError):
    """The manifest is not valid YAML or names a path dependency that does not exist."""


OTA_AGENT = "ota_agent"


def _managed_dir(app_dir: Path, name: str) -> Path | None:
    """Where idf.py's component manager put a downloaded dependency, if it did."""
    directory = app_dir / "managed_components" / name.replace("/", "__")
    return directory if (directory / "CMakeLists.txt").is_file() else None


def _fetched_dependency(app_dir: Path, name: str) -> Path | None:
    """A git or registry dependency's directory: downloaded by idf.py, or the harness's own ota_agent."""
    managed = _managed_dir(app_dir, name)
    if managed is not None:
        return managed
    if name.rsplit("/", 1)[-1] == OTA_AGENT:
        return REFERENCE_APP_DIR / "components" / OTA_AGENT  # the wheel's copy, or this repository's
    return None


def path_dependencies(manifest: Path, app_dir: Path | None = None) -> list[Path]:
    """The directories of the manifest's local components: its ``path:`` dependencies, resolved, and (given
    the app's directory) its git and registry ones found as the module docstring says, in order."""
    try:
        # libyaml's loader when PyYAML has it (it does on PyPI's wheels): every pytest process reads the
        # manifests when it checks the firmware, and the pure-Python loader takes six times as long
        data = yaml.load(manifest.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"{manifest}: not valid YAML: {exc}") from exc
    dependencies = data.get("dependencies") or {}
    found: list[Path] = []
    for name, spec in dependencies.items():
        if name == "idf":
            continue
        if not isinstance(spec, dict) or "path" not in spec or "git" in spec:  # git: path is in the repository
            fetched = _fetched_dependency(app_dir, str(name)) if app_dir is not None else None
            if fetched is not None:
                found.append(fetched)
            continue
        directory = (manifest.parent / str(spec["path"])).resolve()
        if not (directory / "CMakeLists.txt").is_file():
            raise ManifestError(f"{manifest}: dependency {name!r} has path {spec['path']!r}, which resolves to "
                                f"{directory}, not a component directory (no CMakeLists.txt there)")
        found.append(directory)
    return found


def app_component_dirs(app_dir: Path) -> list[Path]:
    """The components an app pulls in by path: those of main/ and of its own components, transitively."""
    seen: list[Path] = []
    pending = [app_dir / "main", *sorted(p for p in (app_dir / "components").glob("*") if p.is_dir())]
    visited: set[Path] = set()
    while pending:
        component = pending.pop(0).resolve()
        if component in visited:
            continue
        visited.add(component)
        manifest = component / "idf_component.yml"
        if manifest.is_file():
            for directory in path_dependencies(manifest, app_dir):
                if directory not in seen:
                    seen.append(directory)
                pending.append(directory)
    return seen
