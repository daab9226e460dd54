"""What a release gate's readers want from a run: per-test OTA figures and one HTML report.

`ota_properties` turns a test's timeline into JUnit properties (target, board, versions before and
after, image SHA-256, OTA duration and throughput, reboots, rollback outcome). `write_html` makes
one self-contained page: a summary table, then per test an SVG chart of the OTA (progress over
time, state events, reboots, HTTP requests) with the serial log and MQTT transcript folded away.
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import leather

from harness.timeline import Entry

FINAL_STATES = ("succeeded", "failed", "rejected", "cancelled", "rolled_back")


@dataclass
class TestReport:
    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    message: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)


def _ota_events(entries: list[Entry]) -> list[tuple[float, dict[str, Any]]]:
    events = []
    for e in entries:
        if e.kind == "mqtt" and e.source.endswith("/ota"):
            try:
                events.append((e.t, json.loads(e.text)))
            except (ValueError, TypeError):
                continue
    return events


def _statuses(entries: list[Entry]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if e.kind == "mqtt" and e.source.endswith("/status"):
            try:
                out.append(json.loads(e.text))
            except (ValueError, TypeError):
                continue
    return out


def _version_after(entries: list[Entry]) -> str | None:
    """The version the device runs at the end: its last status's, or that of a later `succeeded` (the new
    firmware confirms itself, then publishes its status, which a test that ends at `succeeded` may not see)."""
    version = None
    for e in entries:
        if e.kind != "mqtt" or not e.source.endswith(("/status", "/ota")):
            continue
        try:
            data = json.loads(e.text)
        except (ValueError, TypeError):
            continue
        if isinstance(data, dict) and (e.source.endswith("/status") or data.get("state") == "succeeded"):
            version = data.get("version", version)
    return version


def ota_properties(entries: list[Entry], target: str, image_sha256: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {"target": target}
    statuses = [s for s in _statuses(entries) if isinstance(s, dict)]
    if statuses:
        props["board"] = ",".join(sorted({str(s.get("device_id")) for s in statuses}))
        props["version_before"] = statuses[0].get("version")
        props["version_after"] = _version_after(entries)
    if image_sha256:
        props["image_sha256"] = ",".join(image_sha256)
    events = _ota_events(entries)
    accepted = next((t for t, e in events if e.get("state") == "accepted"), None)
    downloads = [(t, e) for t, e in events if e.get("state") == "downloading"]
    final = next(((t, e) for t, e in events if e.get("state") in FINAL_STATES), None)
    if accepted is not None and final is not None:
        props["ota_duration_s"] = round(final[0] - accepted, 3)
        props["ota_result"] = final[1].get("state") + (f" ({final[1]['reason']})" if final[1].get("reason") else "")
    if len(downloads) >= 2:  # from the first progress to the last: the transfer, not the connection's set-up
        (t_first, first), (t_last, last) = downloads[0], downloads[-1]
        seconds = max(t_last - t_first, 1e-3)
        props["ota_throughput_kBps"] = round((last.get("bytes", 0) - first.get("bytes", 0)) / 1000 / seconds, 1)
    elif accepted is not None and downloads:
        seconds = max(downloads[-1][0] - accepted, 1e-3)
        props["ota_throughput_kBps"] = round(downloads[-1][1].get("bytes", 0) / 1000 / seconds, 1)
    # Reboots during the scenario: those after the first OTA command (set-up boots do not count).
    start = accepted if accepted is not None else float("inf")
    props["reboots"] = sum(1 for e in entries if e.kind == "serial" and e.text.startswith("rst:") and e.t >= start)
    rolled = [e for _, e in events if e.get("state") == "rolled_back"]
    props["rollback"] = rolled[-1].get("reason", "yes") if rolled else "none"
    return props


def _ota_window(entries: list[Entry]) -> tuple[float, float]:
    """The chart's time range: from the first OTA command (or event) to the end, so the set-up boots
    before it do not squeeze a sub-second update into the chart's edge."""
    end = max(e.t for e in entries)
    ota = [e.t for e in entries if e.kind == "mqtt" and e.source.endswith(("/cmd", "/ota"))]
    start = min(ota) if ota else min(e.t for e in entries)
    pad = max((end - start) * 0.05, 0.01)
    return start - pad, end + pad


_Y_MIN, _Y_MAX = -10, 170  # the chart's fixed y range, in %, with room above 100 for the state names
_WIDTH, _HEIGHT = 900, 320
# leather is themed through its module's settings ("setting any of these variables will change how charts are
# rendered"): the report's font, smaller than its defaults
for _setting in ("title", "legend", "axis_title", "tick"):
    setattr(leather.theme, f"{_setting}_font_family", "sans-serif")
    setattr(leather.theme, f"{_setting}_font_size", 11)
    setattr(leather.theme, f"{_setting}_font_char_width", 6)
    setattr(leather.theme, f"{_setting}_font_char_height", 11)
_BLUE, _GREEN, _ORANGE, _RED, _PURPLE = "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd"


class _ExactScale(leather.Scale):
    """A linear scale over exactly [lo, hi] with ticks at multiples of a 1-2-5 step. leather's Linear widens its
    domain to the ticks its ScoreTicker finds, which took 7 ms a scale (trying Decimal candidates): most of a
    chart's time."""

    def __init__(self, lo: float, hi: float, ticks: list[float] | None = None) -> None:
        self._lo, self._hi = lo, (hi if hi > lo else lo + 1)
        self._ticks = ticks if ticks is not None else _round_ticks(self._lo, self._hi)
        # as many decimals as the step between ticks needs: 1000.125 and 1000.25, not 1000.12 and 1000.25
        step = min((b - a for a, b in zip(self._ticks, self._ticks[1:], strict=False)), default=1.0)
        # rounded first: a step of 0.1 taken from 1000.1 - 1000.0 is 0.0999..., whose floor(log10) is -2
        self._decimals = max(0, -math.floor(round(math.log10(step), 6))) if step > 0 else 0

    def contains(self, v: float) -> bool:
        return self._lo <= v <= self._hi

    def project(self, value: float, range_min: float, range_max: float) -> float:
        return range_min + (value - self._lo) / (self._hi - self._lo) * (range_max - range_min)

    def ticks(self) -> list[float]:
        return self._ticks

    def format_tick(self, value: float, i: int, count: int) -> str:
        return f"{value:.{self._decimals}f}"


def _round_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Ticks in [lo, hi] at multiples of 1, 2 or 5 times a power of ten, at most `most` steps apart over it."""
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / most))
    step = next(step * m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= most)
    first = math.ceil(lo / step)
    return [round(k * step, 9) for k in range(first, math.floor(hi / step) + 1)]


class _VerticalLines(leather.Shape):
    """A line across the chart at each datum's x: a state event or a reset (leather draws no such thing)."""

    def __init__(self, color: str, dashed: bool = False) -> None:
        self._stroke_color = color  # the name Shape.legend_to_svg takes the legend's colour from
        self._dashed = dashed

    def validate_series(self, series: leather.Series) -> None:
        pass

    def to_svg(self, width: float, height: float, x_scale: Any, y_scale: Any, series: leather.Series,
               palette: Any) -> ET.Element:
        group = ET.Element("g", {"class": "series vertical-lines"})
        for d in series.data():
            x = f"{x_scale.project(d.x, 0, width):.1f}"
            line = ET.SubElement(group, "line", x1=x, x2=x, y1="0", y2=f"{height:.1f}", stroke=self._stroke_color)
            line.set("stroke-width", "0.8")
            if self._dashed:
                line.set("stroke-dasharray", "4 3")
        return group


class _Labels(leather.Shape):
    """Each datum's third column written upwards at its (x, y): the state names over their lines."""

    def validate_series(self, series: leather.Series) -> None:
        pass

    def legend_to_svg(self, series: leather.Series, palette: Any) -> list[Any]:
        return []  # the names are on the chart

    def to_svg(self, width: float, height: float, x_scale: Any, y_scale: Any, series: leather.Series,
               palette: Any) -> ET.Element:
        group = ET.Element("g", {"class": "series labels"})
        for d in series.data():
            x, y = x_scale.project(d.x, 0, width), y_scale.project(d.y, height, 0)
            text = ET.SubElement(group, "text", x=f"{x:.1f}", y=f"{y:.1f}", transform=f"rotate(-90 {x:.1f} {y:.1f})")
            text.set("font-size", "9")
            text.set("font-family", "sans-serif")
            text.set("dominant-baseline", "central")
            text.text = d.row[2]
        return group


class _Points(leather.Dots):
    """The progress line's points, under the line's legend entry."""

    def legend_to_svg(self, series: leather.Series, palette: Any) -> list[Any]:
        return []


def chart_svg(entries: list[Entry]) -> str:
    """The OTA chart of one test's timeline, as inline SVG: download progress, a line at each state event
    (green: succeeded) and reset (red, dashed), a mark at each HTTP request (purple).

    Drawn with leather, 2 to 4 ms a chart, where matplotlib took 40 to 45 ms (its text and tick layout):
    about 9 s of CPU a `make hil` that the tests' two cores were short of. Only what lies in the chart's time
    window is drawn (leather does not clip)."""
    lo, hi = _ota_window(entries)
    events = [(t, e) for t, e in _ota_events(entries) if lo <= t <= hi]
    # leather warns of values outside the scale: a percent past 0..100 (a device's bug) is not drawn
    progress = [(t, e["percent"]) for t, e in events
                if e.get("state") == "downloading" and 0 <= e.get("percent", -1) <= 100]
    states = [(t, str(e.get("state", "?"))) for t, e in events if e.get("state") != "downloading"]
    resets = [e.t for e in entries if e.kind == "serial" and e.text.startswith("rst:") and lo <= e.t <= hi]
    http = [e.t for e in entries if e.kind == "http" and lo <= e.t <= hi]
    if not (progress or states or resets or http):
        return "<p>(nothing to chart: no OTA event, reset or HTTP request from the first OTA command on)</p>"
    chart = leather.Chart()
    chart.set_x_scale(_ExactScale(lo, hi))
    chart.set_y_scale(_ExactScale(_Y_MIN, _Y_MAX, ticks=[0, 50, 100]))  # the axis' ticks are the scale's
    chart.add_x_axis(name="s from test start")
    chart.add_y_axis(name="%")
    if progress:
        chart.add_line(progress, name="download %", stroke_color=_BLUE, width=1.5)
        chart.add_series(leather.Series(progress), _Points(fill_color=_BLUE, radius=2))
    for times, name, shape in (([t for t, s in states if s == "succeeded"], "succeeded", _VerticalLines(_GREEN)),
                               ([t for t, s in states if s != "succeeded"], "other state", _VerticalLines(_ORANGE)),
                               (resets, "reset", _VerticalLines(_RED, dashed=True))):
        if times:
            chart.add_series(leather.Series([(t, 0) for t in times], name=name), shape)
    if states:
        chart.add_series(leather.Series([(t, 104, state) for t, state in states]), _Labels())
    if http:
        chart.add_dots([(t, -6) for t in http], name="HTTP request", fill_color=_PURPLE, radius=3)
    return chart.to_svg(width=_WIDTH, height=_HEIGHT)


def chart_html(entries: list[Entry]) -> str:
    """chart_svg's chart, or why there is none: a timeline the chart cannot read must not cost the run its
    report (charts are drawn in the controller's report hook)."""
    if not entries:
        return "<p>(no timeline)</p>"
    try:
        return chart_svg(entries)
    except Exception as err:  # noqa: BLE001 - any failure becomes a note on the page, the rest of it stands
        return f"<p>(no chart: {html.escape(repr(err))})</p>"


def _log(entries: list[Entry], kind: str) -> str:
    lines = [f"{e.t:8.3f}s {e.source}: {e.text}" for e in entries if e.kind == kind]
    return html.escape("\n".join(lines) or "(none)")


def _rollout(entries: list[Entry]) -> str:
    """A rollout's steps and its final table (harness.fleet), open, when the test ran one."""
    notes = [e for e in entries if e.kind == "rollout"]
    if not notes:
        return ""
    steps = "\n".join(f"{e.t:8.3f}s {e.text}" for e in notes[:-1])
    return (f"<details open><summary>rollout</summary><pre>{html.escape(notes[-1].text)}</pre>"
            f"<pre>{html.escape(steps)}</pre></details>")


def write_html(reports: list[TestReport], path: Path, title: str = "OTA release gate",
               charts: dict[str, str] | None = None, notice: str = "") -> None:
    """`charts`: SVG by node id, drawn beforehand (as each test's report came); the others are drawn here.
    `notice`: said above the summary (an interrupted run, one that ran nothing)."""
    charts = charts or {}
    passed = sum(r.outcome == "passed" for r in reports)
    rows = "".join(
        f"<tr class='{r.outcome}'><td><a href='#t{i}'>{html.escape(r.nodeid)}</a></td>"
        f"<td>{html.escape(str(r.properties.get('target', '')))}</td><td>{r.outcome}</td>"
        f"<td>{r.duration:.1f} s</td><td>{html.escape(str(r.properties.get('ota_result', '')))}</td></tr>"
        for i, r in enumerate(reports))
    failed = [f"<a href='#t{i}'>{html.escape(r.nodeid)}</a>" for i, r in enumerate(reports) if r.outcome == "failed"]
    failed_list = f"<p class='failed' id='failed'><b>Failed:</b> {', '.join(failed)}</p>" if failed else ""
    sections = []
    for i, r in enumerate(reports):
        props = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in r.properties.items())
        chart = charts.get(r.nodeid) or chart_html(r.entries)
        failure = f"<pre class='failure'>{html.escape(r.message)}</pre>" if r.message else ""
        sections.append(
            f"<section id='t{i}'><h2 class='{r.outcome}'>{html.escape(r.nodeid)}: {r.outcome}</h2>{failure}"
            f"<table class='props'>{props}</table>{chart}"
            f"<details><summary>serial console</summary><pre>{_log(r.entries, 'serial')}</pre></details>"
            f"<details><summary>MQTT transcript</summary><pre>{_log(r.entries, 'mqtt')}</pre></details>"
            f"<details><summary>HTTP requests</summary><pre>{_log(r.entries, 'http')}</pre></details>"
            f"<details><summary>faults applied</summary><pre>{_log(r.entries, 'fault')}</pre></details>"
            f"{_rollout(r.entries)}</section>")
    page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}} .passed{{color:#176d17}}
.failed{{color:#b00020}} tr.failed td{{background:#fde7ea}} pre{{background:#f6f6f6;padding:8px;overflow:auto;
max-height:30em}} pre.failure{{background:#fde7ea}} svg{{max-width:100%;height:auto}}</style></head><body>
<h1>{html.escape(title)}</h1>{f"<p class='failed'><b>{html.escape(notice)}</b></p>" if notice else ""}
<p><b>{passed} of {len(reports)} passed</b></p>{failed_list}
<table><tr><th>scenario</th><th>target</th><th>result</th><th>duration</th><th>OTA</th></tr>{rows}</table>
{''.join(sections)}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
