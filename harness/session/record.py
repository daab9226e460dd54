"""What a test used, so its timeline, its report and a failure's report can show each one's log."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness import clock, masking, timeline


@dataclass
class TestRecord:
    """The boards, links and firmware servers of one test, what services noted (faults), and the secrets.

    `masker` knows the secrets of the test (what its boards were provisioned with); the timeline and the
    test's report go through it.
    """

    __test__ = False  # not a test class, whatever pytest's collection of `Test*` names thinks

    t0: float = field(default_factory=clock.now)
    boards: list[Any] = field(default_factory=list)
    links: list[Any] = field(default_factory=list)
    servers: list[Any] = field(default_factory=list)
    notes: list[timeline.Note] = field(default_factory=list)
    masker: masking.Masker = field(default_factory=masking.Masker, repr=False)
    # set at the end of the test (hil_record's teardown), for the HTML report
    properties: dict[str, Any] | None = None
    timeline_jsonl: str | None = None  # the timeline as its file has it (timeline.to_jsonl)
    # called with each board as a factory adds it (add_board), before it boots: the live view (harness/live)
    board_listeners: list[Any] = field(default_factory=list, repr=False)

    def add_board(self, board: Any) -> None:
        """A factory's new board, its device_id set: recorded, and handed to the board listeners."""
        self.boards.append(board)
        for listener in list(self.board_listeners):
            listener(board)

    def timeline(self) -> list[timeline.Entry]:
        return timeline.collect(self.t0, self.boards, self.links, self.servers, self.masker, self.notes)

    def note(self, kind: str, source: str, text: str, t: float | None = None) -> None:
        """Put an entry in the timeline (from any thread): what a service did, e.g. a fault it applied."""
        if kind not in timeline.KINDS:
            raise ValueError(f"TestRecord.note: kind {kind!r} is not one of {timeline.KINDS}")
        self.notes.append(timeline.Note(clock.now() if t is None else t, kind, source, text))

    def full_masker(self) -> masking.Masker:
        """The masker plus the secrets real boards learnt on their own (typed on their console)."""
        masker = masking.Masker(set(self.masker.secrets))
        for board in self.boards:
            masker.add(*getattr(board, "secrets", ()))
        return masker


RECORD_KEY = pytest.StashKey[TestRecord]()
_RUN_MASKER_KEY = pytest.StashKey[masking.Masker]()


def timeline_path(config: pytest.Config, nodeid: str) -> Path:
    base = Path(config.getoption("--hil-timeline-dir") or config.rootpath / "build" / "timelines")
    return base / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid) + ".jsonl")


def run_masker(config: pytest.Config) -> masking.Masker:
    """Secrets known for the whole run: passwords given on the command line or in the environment."""
    if _RUN_MASKER_KEY not in config.stash:
        masker = masking.Masker()
        url = config.getoption("--hil-broker", default=None)
        if url:
            with contextlib.suppress(ValueError):
                masker.add(urlsplit(url).password)
        masker.add(config.getoption("--hil-wifi-password", default=None), os.environ.get("HIL_WIFI_PASSWORD"))
        config.stash[_RUN_MASKER_KEY] = masker
    return config.stash[_RUN_MASKER_KEY]
