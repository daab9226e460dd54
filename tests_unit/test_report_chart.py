"""The report's OTA chart (harness.report.chart_svg): what it draws, where, from a timeline made here."""

import json
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from harness.plugin import HtmlReport
from harness.report import chart_html, chart_svg
from harness.timeline import Entry, to_jsonl

SVG = "{http://www.w3.org/2000/svg}"


def _ota(t: float, state: str, **fields: object) -> Entry:
    return Entry(t, "mqtt", "devices/vb1/ota", json.dumps({"id": "u1", "state": state, **fields}))


TIMELINE = [
    Entry(0.1, "serial", "vb1", "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"),  # the set-up boot
    Entry(1.0, "mqtt", "devices/vb1/cmd", json.dumps({"type": "ota", "id": "u1", "url": "http://x/a.bin"})),
    _ota(1.1, "accepted"),
    Entry(1.15, "http", "/a.bin", "GET /a.bin range=None status=200 bytes=1000"),
    _ota(1.2, "downloading", percent=0),
    _ota(1.4, "downloading", percent=50),
    _ota(1.5, "downloading", percent=100),
    _ota(1.6, "rebooting"),
    Entry(1.7, "serial", "vb1", "rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"),
    _ota(1.9, "succeeded"),
]


def _chart(entries: list[Entry]) -> ET.Element:
    return ET.fromstring(chart_svg(entries))


def _groups(svg: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == f"series {kind}"]


def test_the_states_resets_progress_and_requests_are_drawn_in_time_order() -> None:
    svg = _chart(TIMELINE)
    labels = {t.text: float(t.get("x")) for g in _groups(svg, "labels") for t in g.iter(f"{SVG}text")}
    assert list(labels) == ["accepted", "rebooting", "succeeded"]  # progress is the line, not a label
    assert labels["accepted"] < labels["rebooting"] < labels["succeeded"]
    lines = {g.find(f"{SVG}line").get("stroke"): [float(line.get("x1")) for line in g.iter(f"{SVG}line")]
             for g in _groups(svg, "vertical-lines")}
    green, orange, red = lines["#2ca02c"], lines["#ff7f0e"], lines["#d62728"]
    assert green == [labels["succeeded"]] and orange == [labels["accepted"], labels["rebooting"]]
    # only the update's reset: the set-up boot's is before the chart's window
    assert len(red) == 1 and labels["rebooting"] < red[0] < labels["succeeded"]
    requests = [float(c.get("cx")) for c in svg.iter(f"{SVG}circle") if c.get("fill") == "#9467bd"]
    assert len(requests) == 1 and labels["accepted"] < requests[0] < labels["rebooting"]
    progress = [p for p in svg.iter(f"{SVG}path") if p.get("stroke") == "#1f77b4"]
    assert len(progress) == 1 and progress[0].get("d").count("L") == 2  # 0, 50, 100 %


def test_x_is_scaled_to_the_window_from_the_command_to_the_end() -> None:
    svg = _chart(TIMELINE)
    xs = {t.text: float(t.get("x")) for g in _groups(svg, "labels") for t in g.iter(f"{SVG}text")}
    # linear in time: accepted (1.1) to rebooting (1.6) is 5/3 of rebooting to succeeded (1.9)
    span_a, span_b = xs["rebooting"] - xs["accepted"], xs["succeeded"] - xs["rebooting"]
    assert abs(span_a / span_b - 5 / 3) < 0.01, (span_a, span_b)


def test_a_timeline_with_nothing_to_chart_says_so() -> None:
    assert "nothing to chart" in chart_svg([Entry(0.5, "serial", "vb1", "I (27) boot: ESP-IDF v5.5")])


def test_a_timeline_the_chart_cannot_read_gives_a_note_not_an_error() -> None:
    """Charts are drawn in the report hook: a progress event with a percent that is no number must not cost the
    run its report."""
    odd = [TIMELINE[1], _ota(1.2, "downloading", percent="half")]
    assert chart_html(odd).startswith("<p>(no chart: TypeError(")
    assert chart_html([]) == "<p>(no timeline)</p>"
    assert chart_html(TIMELINE).startswith("<svg")


def test_a_timeline_that_does_not_parse_costs_its_test_the_chart_not_the_page(tmp_path) -> None:
    """The controller reads each worker's timeline text in its report hook: a line that is no JSON must leave the
    page written, with every test and a note where that test's chart would be."""
    page = HtmlReport(tmp_path / "r.html")
    good, bad, odd = "t::good", "t::bad", "t::odd"
    wrong_type = json.dumps({"t": "1.0", "kind": "serial", "source": "vb1", "text": "x"}) + "\n"
    for nodeid, text in ((good, to_jsonl(TIMELINE)), (bad, "{not json\n"), (odd, wrong_type)):
        page.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, outcome="passed", duration=1.0,
                                                      hil_message="", hil_entries=None))
        page.pytest_runtest_logreport(SimpleNamespace(nodeid=nodeid, outcome="passed", duration=0.0,
                                                      hil_message=None, hil_entries=text, hil_properties={}))
    page.pytest_sessionfinish()
    written = (tmp_path / "r.html").read_text()
    assert "3 of 3 passed" in written and "<p>(no timeline: JSONDecodeError(" in written
    assert "<p>(no timeline: TypeError(" in written
    assert page.charts[good].startswith("<svg") and page.tests[good].entries == TIMELINE


def test_tick_labels_have_the_decimals_of_their_step() -> None:
    """Steps come from float differences (1000.1 - 1000.0 is 0.0999...): the labels still read 1000.1, not 1000.10."""
    command = Entry(1000.0, "mqtt", "devices/vb1/cmd", json.dumps({"type": "ota", "id": "u1", "url": "http://x/a"}))
    svg = _chart([command, _ota(1000.1, "accepted"), _ota(1000.6, "succeeded")])
    axis = next(g for g in svg.iter(f"{SVG}g") if g.get("class") == "axis bottom")
    labels = [t.text for t in axis.iter(f"{SVG}text") if t.text != "s from test start"]
    assert labels and all(len(label.split(".")[1]) == 1 for label in labels), labels


def test_the_page_of_an_interrupted_or_empty_run_says_so(tmp_path) -> None:
    page = HtmlReport(tmp_path / "r.html")
    page.pytest_sessionfinish(exitstatus=pytest.ExitCode.NO_TESTS_COLLECTED)
    assert "No scenario ran" in (tmp_path / "r.html").read_text()
    page.pytest_runtest_logreport(SimpleNamespace(nodeid="t::one", outcome="passed", duration=1.0, hil_message="",
                                                  hil_entries=None))
    page.pytest_sessionfinish(exitstatus=pytest.ExitCode.INTERRUPTED)
    written = (tmp_path / "r.html").read_text()
    assert "The run was interrupted after 1 scenario(s) had ended; the rest are not listed." in written
    assert "1 of 1 passed" in written
    page.pytest_sessionfinish(exitstatus=pytest.ExitCode.OK)
    assert "interrupted" not in (tmp_path / "r.html").read_text()
