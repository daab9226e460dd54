"""What a release gate's readers want from a run: per-test OTA figures and one HTML report.

`ota_properties` turns a test's timeline into JUnit properties (target, board, versions before and
after, image SHA-256, OTA duration and throughput, reboots, rollback outcome). `write_html` makes
one self-contained page: a summary table, then per test an SVG chart of the OTA (progress over
time, state events, reboots, HTTP requests) with the serial log and MQTT transcript folded away.
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import json
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.timeline import Entry, from_jsonl

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


_Y_MIN, _Y_MAX = -10, 130  # the chart's fixed y range, in % with room for the state labels


class _ChartCanvas:
    """One figure and axes for every chart a process draws, cleared of the last chart's artists in between.

    A new figure per chart cost matplotlib about 30 ms of its 90 (the axes, their ticks and spines made again),
    and one artist per event another 20 ms: the reset and state lines are one collection per colour now, the
    HTTP requests one line of markers. Not thread-safe: charts are drawn by the chart process, or by
    write_html at the session's end, one at a time."""

    def __init__(self) -> None:
        import matplotlib

        # text as SVG text, not outlines: 15 KB a chart instead of 36, and less to draw
        matplotlib.rcParams["svg.fonttype"] = "none"
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.figure = Figure(figsize=(9, 2.6))  # no pyplot: nothing registered, nothing to close
        self.ax = self.figure.add_subplot()
        # fixed margins, where tight_layout() measured every label first: 40 % of the chart's time
        self.figure.subplots_adjust(left=0.075, right=0.985, bottom=0.2, top=0.86)
        # few ticks: each costs matplotlib about 1 ms to make and draw, most of a chart's time with its defaults
        self.ax.set_ylim(_Y_MIN, _Y_MAX)  # and no autoscaling: the charts' artists never move it
        self.ax.set_yticks([0, 50, 100])
        self.ax.xaxis.set_major_locator(MaxNLocator(6))
        self.ax.set_xlabel("s from test start (red dashed: reset, purple: HTTP request)")
        self.ax.set_ylabel("%")

    def draw(self, entries: list[Entry]) -> str:
        ax = self.ax
        for artist in [*ax.lines, *ax.texts, *ax.collections]:
            artist.remove()
        events = _ota_events(entries)
        progress = [(t, e["percent"]) for t, e in events
                    if e.get("state") == "downloading" and e.get("percent", -1) >= 0]
        if progress:
            ax.plot([t for t, _ in progress], [p for _, p in progress], marker=".", color="tab:blue")
        states = [(t, str(e.get("state", "?"))) for t, e in events if e.get("state") != "downloading"]
        # ylim is fixed, so lines from its bottom to its top span the axes as axvline's would
        ax.vlines([t for t, s in states if s == "succeeded"], _Y_MIN, _Y_MAX, color="tab:green", lw=0.8)
        ax.vlines([t for t, s in states if s != "succeeded"], _Y_MIN, _Y_MAX, color="tab:orange", lw=0.8)
        ax.vlines([e.t for e in entries if e.kind == "serial" and e.text.startswith("rst:")], _Y_MIN, _Y_MAX,
                  color="tab:red", ls="--", lw=0.8)
        for t, state in states:
            ax.text(t, 104, state, rotation=90, fontsize=7, va="bottom")
        http = [e.t for e in entries if e.kind == "http"]
        if http:
            ax.plot(http, [-6] * len(http), ls="none", marker="v", color="tab:purple", ms=4)
        ax.set_xlim(*_ota_window(entries))
        buf = io.StringIO()
        self.figure.savefig(buf, format="svg")
        svg = buf.getvalue()
        return svg[svg.index("<svg"):]


@functools.cache
def _canvas() -> _ChartCanvas:
    return _ChartCanvas()


def chart_svg(entries: list[Entry]) -> str:
    """The OTA chart of one test's timeline, as inline SVG."""
    return _canvas().draw(entries)


def _chart_of_jsonl(jsonl: str) -> str:
    return chart_svg(from_jsonl(jsonl))


class ChartRenderer:
    """Draws charts in a separate process while the tests run: matplotlib takes about 45 ms a chart, 10 s for
    the catalog, which the run would otherwise spend at its end, on one core. `spawn`, not fork: the test process
    has threads (brokers, servers, boards) whose locks a forked child would inherit held."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._charts: dict[str, Future[str]] = {}

    def submit(self, nodeid: str, jsonl: str) -> None:
        """`jsonl`: the test's timeline as timeline.to_jsonl's text (a string crosses to the process at once,
        where thousands of entries took the controller's CPU to pickle)."""
        if not jsonl:
            return
        if self._pool is None:
            # niced: the tests keep the CPU they need, the charts take what is left over
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=os.nice, initargs=(10,))
        self._charts[nodeid] = self._pool.submit(_chart_of_jsonl, jsonl)

    def results(self) -> dict[str, str]:
        """Every chart submitted (waiting for the last ones); a chart that failed is drawn again by write_html."""
        charts = {}
        for nodeid, future in self._charts.items():
            with contextlib.suppress(Exception):
                charts[nodeid] = future.result()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        return charts


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
               charts: dict[str, str] | None = None) -> None:
    """`charts`: SVG by node id, made beforehand (see ChartRenderer); the others are drawn here."""
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
        chart = charts.get(r.nodeid) or chart_svg(r.entries) if r.entries else "<p>(no timeline)</p>"
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
<h1>{html.escape(title)}</h1><p><b>{passed} of {len(reports)} passed</b></p>{failed_list}
<table><tr><th>scenario</th><th>target</th><th>result</th><th>duration</th><th>OTA</th></tr>{rows}</table>
{''.join(sections)}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
