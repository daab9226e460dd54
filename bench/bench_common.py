"""What the bench scripts share: figures printed beside their targets, a verdict, and a provisioned board.

Imported by the scripts of this folder (`python bench/<script>.py` puts it on the path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.link import DeviceLink
from harness.provision import provision
from harness.virtual import firmware
from harness.virtual.board import VirtualBoard, create_flash
from harness.virtual.flash import FlashTiming

CSV = (firmware.DEVICE_DIR / "partitions.csv").read_text()


@dataclass
class Result:
    name: str
    value: str
    target: str = ""
    ok: bool | None = None

    def line(self) -> str:
        verdict = "" if self.ok is None else ("  PASS" if self.ok else "  FAIL")
        target = f"  (target {self.target})" if self.target else ""
        return f"{self.name}: {self.value}{target}{verdict}"


RESULTS: list[Result] = []


def report(result: Result) -> None:
    RESULTS.append(result)
    print(result.line(), flush=True)


def verdict() -> int:
    """Prints how many targets were met and which were missed; the script's exit code (1 on a miss)."""
    failed = [r for r in RESULTS if r.ok is False]
    print(f"\n{len([r for r in RESULTS if r.ok])} targets met, {len(failed)} missed" +
          "".join(f"\n  MISSED {r.name}" for r in failed))
    return 1 if failed else 0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def start_board(workdir: Path, name: str, index: int, image: bytes, broker_url: str, link: DeviceLink,
                flash_timing: FlashTiming | None = None, **settings: object) -> VirtualBoard:
    """A virtual board on a new flash file, running `image`, provisioned and heard from over MQTT; its flash
    takes `flash_timing`'s time (None: none)."""
    workdir.mkdir(parents=True)
    create_flash(workdir / "flash.bin", CSV)
    board = VirtualBoard(name, workdir / "flash.bin", workdir, mac=f"240ac4{index + 1:06x}")
    board.flash_timing = flash_timing
    board.flash(image)
    board.power_on()
    try:
        since = link.cursor()
        provision(board, {"device_id": name, "broker_url": broker_url, **settings})
        link.wait_status(name, since=since, timeout=60)
    except BaseException:
        board.stop()
        raise
    return board
