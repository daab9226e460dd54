"""The run's HTML report and JUnit properties, from a run with one passing and one failing scenario, in one
process and under pytest-xdist (the workers' results merged in the controller's report)."""

import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SCENARIOS = textwrap.dedent("""
    def test_update_passes(board, link, fw_server, firmware):
        a = fw_server.add(firmware.image(version="2.0.0"))
        c = link.cursor()
        link.send(board.device_id, {"type": "ota", "id": "ok", "url": a.url})
        link.wait_ota(board.device_id, "ok", "succeeded", timeout=20, since=c)

    def test_update_fails_deliberately(board, link, fw_server, firmware):
        a = fw_server.add(firmware.image(version="2.0.0")[:5000])
        c = link.cursor()
        link.send(board.device_id, {"type": "ota", "id": "bad", "url": a.url})
        link.wait_ota(board.device_id, "bad", "succeeded", timeout=20, since=c, fail_on={"failed"})
""")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one_process", "xdist"])
def test_report_shows_both_scenarios_with_timelines_and_junit_has_properties(
        tmp_path: Path, workers: list[str]) -> None:
    (tmp_path / "test_two.py").write_text(SCENARIOS)
    html_path, junit_path = tmp_path / "report.html", tmp_path / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *workers, "test_two.py",
         "--hil-report", str(html_path), "--junitxml", str(junit_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout[-2000:]
    assert f"HTML report: {html_path}" in result.stdout

    page = html_path.read_text()
    assert "1 of 2 passed" in page
    failed_list = re.search(r"<p class='failed' id='failed'>(.*?)</p>", page)  # above the table, linked
    failed_link = r"<b>Failed:</b> <a href='#(t\d)'>test_two.py::test_update_fails_deliberately</a>"
    assert failed_list and re.fullmatch(failed_link, failed_list.group(1)), failed_list
    for name, outcome in (("test_update_passes", "passed"), ("test_update_fails_deliberately", "failed")):
        section = re.search(rf"<section id='t\d'><h2 class='{outcome}'>test_two.py::{name}.*?</section>", page,
                            re.DOTALL)
        assert section, f"no {outcome} section for {name}"
        assert "<svg" in section.group(0), f"no timeline chart for {name}"
        assert "boot: Loaded app from partition" in section.group(0)
        assert "devices/" in section.group(0)  # the MQTT transcript
    assert "invalid_image" in page

    props = {}
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        props[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    ok = props["test_update_passes"]
    assert (ok["target"], ok["version_before"], ok["version_after"], ok["rollback"]) == \
        ("linux", "1.0.0", "2.0.0", "none")
    assert float(ok["ota_duration_s"]) > 0 and float(ok["ota_throughput_kBps"]) > 0
    assert ok["reboots"] == "1" and len(ok["image_sha256"]) == 64
    assert props["test_update_fails_deliberately"]["ota_result"] == "failed (invalid_image)"
