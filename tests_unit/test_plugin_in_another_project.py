"""The harness as a pytest plugin in other firmware projects: the sample apps of examples/.

Each sample is copied as a firmware team would have it (its own app, partition table, version, variants
and topic prefix, a conftest of at most ten lines) and its release gate is run with plain ``python -m
pytest``: the plugin arrives through its pytest11 entry point. The copy keeps the samples' layout next to
this repository's device/ (a link), where their idf_component.yml finds the ota_agent component by path.
Its app is outside the repository, so its builds go to the cache directory (harness.virtual.build_dirs),
here one of the test's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.formats import app_image
from harness.virtual.build_dirs import CACHE_ENV

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "acme_sensor"
HTTPS_SAMPLE = ROOT / "examples" / "esp_https_ota_app"


def run_pytest(project: Path, *args: str, timeout: float = 180,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HIL_"))} | (env or {})
    env.setdefault(CACHE_ENV, str(project.parent / "cache"))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def copy_sample(source: Path, tmp_path: Path) -> Path:
    """A copy of a sample project, with nothing built yet, at examples/<name> beside a device/ link."""
    (tmp_path / "device").symlink_to(ROOT / "device")
    project = tmp_path / "examples" / source.name
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    return project


def passed_and_failed(junit: Path) -> tuple[int, int]:
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return int(suite.get("tests", 0)) - failed - int(suite.get("skipped", 0)), failed


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the BLE sensor sample."""
    return copy_sample(SAMPLE, tmp_path)


def test_sample_conftest_is_at_most_ten_lines() -> None:
    assert len((SAMPLE / "conftest.py").read_text().splitlines()) <= 10


def test_release_gate_of_another_project_runs_on_its_own_settings(sample: Path) -> None:
    result = run_pytest(sample, "-v", "--junitxml", "junit.xml", "--hil-report", "report.html")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "tests/test_release.py::test_release_installs_and_confirms PASSED" in result.stdout
    assert "tests/test_release.py::test_release_with_failing_selftest_rolls_back PASSED" in result.stdout

    # Built from the sample's app directory, into the cache: one directory for the app, one per variant in it.
    [builds] = (sample.parent / "cache" / "virtual").glob("acme_sensor-*")
    image = (builds / "default" / "hil_ota_agent.bin").read_bytes()
    descriptor = app_image.read_descriptor(image)
    assert (descriptor.project_name, descriptor.version) == ("acme_sensor", "1.4.0")
    assert (builds / "broken_selftest").is_dir()
    assert not (sample / "build" / "virtual").exists()

    # The devices spoke under the configured topic prefix, and said which app they run.
    timeline = sample / "build" / "timelines" / "tests_test_release.py_test_release_installs_and_confirms.jsonl"
    entries = [json.loads(line) for line in timeline.read_text().splitlines()]
    topics = {e["source"] for e in entries if e["kind"] == "mqtt"}
    assert topics and all(t.startswith("acme/sensors/") for t in topics), topics
    statuses = [json.loads(e["text"]) for e in entries if e["kind"] == "mqtt" and e["source"].endswith("/status")]
    assert {s["project"] for s in statuses} == {"acme_sensor"}

    properties = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(sample / "junit.xml").getroot().iter("testcase")
    }
    installed = properties["test_release_installs_and_confirms"]
    assert (installed["version_before"], installed["version_after"], installed["rollback"]) == \
        ("1.4.0", "1.5.0", "none")
    rolled = properties["test_release_with_failing_selftest_rolls_back"]
    assert (rolled["version_after"], rolled["rollback"]) == ("1.4.0", "selftest_failed")
    assert "test_release_installs_and_confirms" in (sample / "report.html").read_text()


@pytest.mark.parametrize(("setting", "changed", "said"), [
    ("broken_selftest", "broken_selftest slow_flash", ["missing {s}/firmware/sdkconfig.ci.slow_flash", "pytest.ini"]),
    ("hil_app_dir = firmware", "hil_app_dir = tests", ["hil_app_dir {s}/tests: missing {s}/tests/main"]),
], ids=["a_missing_variant_file", "an_app_dir_that_is_no_esp_idf_project"])
def test_a_wrong_setting_stops_the_run_with_what_to_fix(sample: Path, setting: str, changed: str,
                                                         said: list[str]) -> None:
    ini = sample / "pytest.ini"
    ini.write_text(ini.read_text().replace(setting, changed))
    result = run_pytest(sample)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    for text in said:
        assert text.format(s=sample) in result.stderr


def test_a_variant_left_out_of_the_settings_fails_the_test_that_asks_for_it(sample: Path) -> None:
    (sample / "tests" / "test_unlisted.py").write_text(
        "def test_unlisted(firmware):\n    firmware.image('crash_on_boot')\n")
    result = run_pytest(sample, "tests/test_unlisted.py")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "firmware variant 'crash_on_boot' is not among hil_variants ['default', 'broken_selftest']; " \
        "add it to hil_variants in the pytest configuration" in result.stdout


def test_a_missing_debian_package_fails_the_tests_with_the_apt_get_line(sample: Path) -> None:
    """pkg-config looking in an empty directory finds none of the host build's libraries."""
    (sample.parent / "no-pc-files").mkdir()
    result = run_pytest(sample, "tests/test_release.py::test_release_installs_and_confirms",
                        env={"PKG_CONFIG_LIBDIR": str(sample.parent / "no-pc-files")})
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "apt-get install libmosquitto-dev libcurl4-openssl-dev libcjson-dev libssl-dev zlib1g-dev" \
        in result.stdout
    assert "Traceback" not in result.stdout and "CMake Error" not in result.stdout
    assert "another exception occurred" not in result.stdout


def test_an_app_that_installs_with_esp_https_ota_passes_the_rows_that_apply(tmp_path: Path) -> None:
    """The second sample installs its updates with esp_https_ota itself (the ota_agent's install hook): the
    catalog's transport and integrity rows it imports, and its partial download, pass."""
    project = copy_sample(HTTPS_SAMPLE, tmp_path)
    result = run_pytest(project, "-v", "--junitxml", "junit.xml")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed, failed = passed_and_failed(project / "junit.xml")
    assert (passed, failed) == (15, 0), result.stdout[-3000:]
    for row in ("test_redirect_chain_installs", "test_bad_image_is_refused[corrupt_middle]",
                "test_partial_download_fetches_the_image_in_range_requests"):
        assert f"::{row} PASSED" in result.stdout
    [builds] = (project.parent / "cache" / "virtual").glob("https_ota_meter-*")
    image = (builds / "default" / "hil_ota_agent.bin").read_bytes()
    assert app_image.read_descriptor(image).project_name == "https_ota_meter"


@pytest.mark.parametrize("source", [SAMPLE, HTTPS_SAMPLE], ids=lambda p: p.name)
def test_a_sample_is_its_own_app_with_nothing_of_device_main(source: Path) -> None:
    """No link in a sample, and no file of the reference app's main/ copied into it: it is another app,
    which takes the ota_agent component as a dependency (its idf_component.yml)."""
    files = [p for p in source.rglob("*") if "build" not in p.relative_to(source).parts]
    assert [p for p in files if p.is_symlink()] == []
    reference = {p.read_bytes() for p in (ROOT / "device" / "main").iterdir() if p.is_file()}
    assert [p for p in files if p.is_file() and p.read_bytes() in reference] == []
    assert "ota_agent" in (source / "firmware" / "main" / "idf_component.yml").read_text()
