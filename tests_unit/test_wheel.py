"""The harness as a firmware team installs it: a wheel in a fresh venv, far from this repository.

The wheel is built from a copy of the repository's files (tracked, or new and not ignored), so that nothing
is written into the checkout and a stale build/lib of an earlier build cannot slip into it. It is installed
into a new venv in a temporary directory, its dependencies from the package index (through pip's cache).
Then projects outside the repository run with that venv's pytest: the sample (examples/acme_sensor, its
firmware/main symlink resolved), and one without hil_app_dir, on the reference firmware the wheel ships.
The plugin, the host port and the reference agent all come from the wheel; the firmware is built in the
cache directory the test names, and nothing is written into site-packages.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.formats import app_image
from harness.project import HilProject
from harness.virtual.build_dirs import CACHE_ENV

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "acme_sensor"
HTTPS_SAMPLE = ROOT / "examples" / "esp_https_ota_app"
# What the host build compiles, as the repository has it and as the wheel must hold it (harness/package_data.py).
SHIPPED_SOURCES = ("device/", "sdkconfig.defaults")
SHIPPED_AS = "harness/data/"

pytestmark = [pytest.mark.wheel, pytest.mark.slow, pytest.mark.timeout(600)]


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def repository_files() -> list[str]:
    """The repository's files as a fresh clone plus the work in progress has them (no build output)."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    return [name for name in listed.split("\0") if name and os.path.lexists(ROOT / name)]


def copy_repository(to: Path) -> Path:
    for name in repository_files():
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, to / name, follow_symlinks=False)  # harness/data's symlinks stay symlinks
    return to


def build_wheel(source: Path, dist: Path) -> Path:
    # pip is in every venv; `pip wheel` builds in an isolated environment with pyproject's build requirements.
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, source], cwd=source)
    [wheel] = dist.glob("esp_ota_hil-*.whl")
    return wheel


def install_in_fresh_venv(wheel: Path, where: Path) -> Path:
    """A new venv with only the wheel and its dependencies; its python."""
    venv.create(where, with_pip=False)  # this pip installs into it (pip --python): no ensurepip run per test
    python = where / "bin" / "python"
    # --no-compile: byte-compiling numpy, esptool and the rest takes longer than the whole run needs;
    # the runs import from source instead (and write no .pyc: PYTHONDONTWRITEBYTECODE below).
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", wheel], cwd=where)
    return python


def tree(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under a directory, with its size and modification time."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in directory.rglob("*") if p.is_file()}


def outside_env(cache: Path) -> dict[str, str]:
    """The environment of a firmware team's shell: nothing of this repository's venv or test session."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "HIL_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not Path(p).resolve().is_relative_to(ROOT))  # an activated .venv
    env[CACHE_ENV] = str(cache)
    # pytest's assertion rewriter caches the plugin's rewritten modules beside them, in site-packages;
    # without .pyc writes, any file that appears there is the harness's own doing.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class Installed:
    """The wheel, installed in a fresh venv."""

    wheel: Path
    python: Path
    site_packages: Path

    def run_pytest(self, project: Path, cache: Path) -> ET.Element:
        """Runs a project's tests; the counts of its JUnit XML (every test passed, site-packages untouched)."""
        before = tree(self.site_packages)
        result = subprocess.run([self.python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--junitxml",
                                 "junit.xml"], cwd=project, env=outside_env(cache), capture_output=True, text=True,
                                timeout=300, check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert tree(self.site_packages) == before, "the run wrote into site-packages"
        suite = ET.parse(project / "junit.xml").getroot().find("testsuite")
        assert suite is not None
        return suite


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    workdir = tmp_path_factory.mktemp("wheel")
    assert not workdir.resolve().is_relative_to(ROOT), "the test needs a --basetemp outside the repository"
    wheel = build_wheel(copy_repository(workdir / "source"), workdir / "dist")
    python = install_in_fresh_venv(wheel, workdir / "venv")
    site_packages = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             cwd=workdir).stdout.strip())
    imported = run([python, "-c", "import harness; print(harness.__file__)"], cwd=workdir,
                   env=outside_env(workdir / "cache")).stdout
    assert Path(imported.strip()).is_relative_to(site_packages), imported
    return Installed(wheel, python, site_packages)


def sample_app(project: Path) -> HilProject:
    """The app a project's pytest.ini names (hil_app_dir), for its name and version."""
    ini = configparser.ConfigParser()
    ini.read(project / "pytest.ini")
    return HilProject(project / ini["pytest"]["hil_app_dir"], (), (), "")


def project_names(build_root: Path) -> set[str]:
    """The projects whose images a build directory holds."""
    return {app_image.read_descriptor(p.read_bytes()).project_name for p in build_root.glob("*/hil_ota_agent.bin")}


def passed(suite: ET.Element) -> int:
    counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    assert counts["failures"] == counts["errors"] == counts["skipped"] == 0, counts
    return counts["tests"]


def test_the_wheel_holds_every_source_of_the_host_build(installed: Installed) -> None:
    shipped = {name.removeprefix(SHIPPED_AS) for name in zipfile.ZipFile(installed.wheel).namelist()
               if name.startswith(SHIPPED_AS)}
    in_repository = {name for name in repository_files() if name.startswith(SHIPPED_SOURCES)}
    left_out, added = sorted(in_repository - shipped), sorted(shipped - in_repository)
    assert not left_out and not added, (f"pyproject.toml's [tool.setuptools.package-data] leaves out {len(left_out)} "
                                        f"files {left_out[:5]}... and adds {added[:5]}")


def as_a_team_has_it(sample: Path, to: Path) -> Path:
    """A copy of a sample project on its own, taking the ota_agent component from git as a firmware team
    would (in this repository the samples name it by path)."""
    project = to / sample.name
    shutil.copytree(sample, project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    manifest = project / "firmware" / "main" / "idf_component.yml"
    text = manifest.read_text()
    assert "path: ../../../../device/components/ota_agent" in text
    manifest.write_text(text.replace("path: ../../../../device/components/ota_agent",
                                     "git: https://github.com/example/esp-ota-hil.git\n"
                                     "    path: device/components/ota_agent"))
    return project


@pytest.mark.parametrize("sample", [SAMPLE, HTTPS_SAMPLE], ids=lambda p: p.name)
def test_a_firmware_project_s_release_gate_passes_with_the_wheel(installed: Installed, tmp_path: Path,
                                                                 sample: Path) -> None:
    """The sample's tests (its own, and the catalog rows it imports from the wheel's tests_hil) pass, with
    the ota_agent component the wheel ships standing in for the git dependency."""
    project = as_a_team_has_it(sample, tmp_path)
    assert passed(installed.run_pytest(project, tmp_path / "cache")) > 0

    # Built in the run's cache directory, one directory for the app; not in the project nor in the repository.
    app = sample_app(project)
    [builds] = (tmp_path / "cache" / "virtual").glob(f"{app.name}-*")
    descriptor = app_image.read_descriptor((builds / "default" / "hil_ota_agent.bin").read_bytes())
    assert (descriptor.project_name, descriptor.version) == (app.name, app.version)
    assert not (project / "build" / "virtual").exists()
    assert app.name not in project_names(ROOT / "build" / "virtual")


REFERENCE_TEST = '''
def test_the_reference_firmware_boots(board, firmware):
    assert firmware.base_version == "{version}"
'''


def test_without_hil_app_dir_the_reference_firmware_comes_from_the_wheel(installed: Installed,
                                                                          tmp_path: Path) -> None:
    """`python -m harness build`, then a project with no hil_* setting, both on the wheel's reference firmware."""
    version = (ROOT / "device" / "version.txt").read_text().strip()
    before = tree(installed.site_packages)
    built = run([installed.python, "-m", "harness", "build", "default"], cwd=tmp_path,
                env=outside_env(tmp_path / "cache")).stdout
    assert tree(installed.site_packages) == before, "python -m harness build wrote into site-packages"
    [builds] = (tmp_path / "cache" / "virtual").glob("hil_ota_agent-*")
    assert built.strip() == f"default: {builds / 'default' / 'hil_ota_agent.bin'} (version {version})"

    project = tmp_path / "plain"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_reference.py").write_text(REFERENCE_TEST.format(version=version))
    assert passed(installed.run_pytest(project, tmp_path / "cache")) == 1
    assert [p.name for p in (tmp_path / "cache" / "virtual").iterdir()] == [builds.name]  # the same build
