"""Local (path) dependencies of an ESP-IDF component manifest, ``idf_component.yml``.

The virtual board's host build compiles an app's components itself (ESP-IDF's component manager runs only
inside ``idf.py``), so it needs the directories of the components a manifest pulls in by path::

    dependencies:
      ota_agent:
        path: ../../esp-ota-hil/device/components/ota_agent    # relative to the manifest's directory

Registry and git dependencies are left to the real build: the host port provides what the harness's
firmware needs from the registry (esp-mqtt, cJSON) itself. The YAML is read with PyYAML.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class ManifestError(ValueError):
    """The manifest is not valid YAML or names a path dependency that does not exist."""


def path_dependencies(manifest: Path) -> list[Path]:
    """The resolved directories of the manifest's ``path:`` dependencies, in the manifest's order."""
    try:
        data = yaml.safe_load(manifest.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"{manifest}: not valid YAML: {exc}") from exc
    dependencies = data.get("dependencies") or {}
    found: list[Path] = []
    for name, spec in dependencies.items():
        if not isinstance(spec, dict) or "path" not in spec:
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
            for directory in path_dependencies(manifest):
                if directory not in seen:
                    seen.append(directory)
                pending.append(directory)
    return seen
