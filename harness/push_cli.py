"""`python -m harness push`: the pusher on the command line, with a progress line and one message per failure."""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness.formats import app_image
from harness.push import Pusher, PushError, PushResult

BAR_WIDTH = 30
CANCEL_WAIT_S = 5.0  # after Ctrl-C, how long to wait for the device's `cancelled`

# What to do about each refusal or failure the device can report for a push (docs/protocol.md).
ADVICE = {
    "busy": "retry once the device is free",  # its detail says why: another update, a self-test, a full queue
    "too_large": "the image does not fit the device's OTA slot",
    "same_version": "the device runs this version already (--force installs it anyway)",
    "downgrade": "the image is older than the running firmware (--force installs it anyway)",
    "wrong_chip": "the image was built for another chip",
    "sha256_mismatch": "the image arrived altered (check the broker, or push again)",
    "invalid_image": "the device refused the image as not a valid app image",
    "idle_timeout": "no chunk reached the device in time; check the broker's connection and limits",
    "timeout": "the push took longer than --timeout",
    "bad_command": "the device refused the push command",
    "flash_error": "the device could not write its flash",
}


@dataclass
class Progress:
    """A bar redrawn in place on a terminal; elsewhere one line per 10 %."""

    out: TextIO
    tty: bool
    last_decile: int = -1
    widths: list[int] = field(default_factory=list)

    def __call__(self, done: int, total: int) -> None:
        percent = done * 100 // total if total > 0 else 0
        if self.tty:
            filled = BAR_WIDTH * percent // 100
            self.out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}% {done}/{total} bytes")
            self.out.flush()
        elif percent // 10 > self.last_decile:
            self.last_decile = percent // 10
            print(f"pushed {percent}% ({done}/{total} bytes)", file=self.out, flush=True)

    def end(self) -> None:
        if self.tty:
            self.out.write("\n")


def failure_message(result: PushResult) -> str:
    reason = result.event.get("reason", "")
    advice = ADVICE.get(reason, "see the device's serial console")
    return f"push {result.describe()}: {advice}"


def interrupted(pusher: Pusher, transfer: str) -> int:
    """Ctrl-C during a push: cancel it on the device, which would otherwise hold the update (and refuse others as
    busy) until its idle deadline."""
    print(f"push interrupted: cancelling {transfer} on {pusher.device_id}...", file=sys.stderr, flush=True)
    try:
        outcome = pusher.cancel(timeout=CANCEL_WAIT_S)
    except KeyboardInterrupt:
        outcome = None
    if outcome is None and not pusher.answered():
        print(f"{pusher.device_id} had not answered the push, nor the cancel within {CANCEL_WAIT_S:.0f} s: if it got "
              "the push, it ends it at its idle deadline (idle_timeout_s) and keeps its running firmware",
              file=sys.stderr)
    elif outcome is None:
        print(f"the device did not confirm the cancel within {CANCEL_WAIT_S:.0f} s; it ends the transfer at its idle "
              "deadline (idle_timeout_s) and keeps its running firmware", file=sys.stderr)
    elif outcome.get("state") == "cancelled":
        print("cancelled: the device keeps its running firmware", file=sys.stderr)
    else:
        print(f"the push had ended already: {outcome.get('state')}/{outcome.get('reason', '')}", file=sys.stderr)
    return 130  # the shell's code for "stopped by SIGINT"


def image_problem(image: bytes, version: str | None) -> str | None:
    """Why the device would refuse `image` at its end (not an app image, a bad checksum or hash), or why it is not
    the --version asked for; None when neither. Checked before anything is sent: the device would find the first
    only after the whole image went through the broker."""
    try:
        info = app_image.verify_image(image, None)
    except app_image.ImageError as err:
        return (f"is not a valid app image ({err}); python -m harness build makes one, and --no-verify sends a "
                "damaged one anyway, to test the device's own checks")
    carried = info.descriptor.version if info.descriptor is not None else None
    if version is not None and carried is not None and carried != version:
        return (f"carries version {carried}, not --version {version}: give the image built at {version}, or "
                f"--version {carried}")
    return None


def confirmed(pusher: Pusher, args: argparse.Namespace, size: int, duration_s: float) -> int:
    """--confirm-timeout: after the reboot, the new firmware's verdict on itself decides the exit status."""
    print(f"pushed {size} bytes to {args.device} in {duration_s:.1f} s; waiting up to {args.confirm_timeout:g} s for "
          "the new firmware's self-test...", flush=True)
    try:
        verdict = pusher.wait_verdict(args.confirm_timeout)
    except KeyboardInterrupt:
        print("interrupted: the device decides by itself (its self-test, then confirm or roll back)", file=sys.stderr)
        return 130
    if verdict is None:
        print(f"no verdict from {args.device} within {args.confirm_timeout:g} s of the reboot: see its serial console "
              "(it may still be in its self-test, or not have come back)", file=sys.stderr)
        return 1
    if verdict.get("state") == "succeeded":
        print(f"confirmed: {args.device} runs {verdict.get('version', 'the new image')} and marked it valid")
        return 0
    print(f"rolled back ({verdict.get('reason', 'no reason given')}): {args.device} runs its previous firmware "
          "again", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        image = Path(args.image).read_bytes()
    except OSError as exc:
        print(f"cannot read the image {args.image}: {exc.strerror}", file=sys.stderr)
        return 2
    if not image:
        print(f"the image {args.image} is empty: give an app image (python -m harness build makes one)",
              file=sys.stderr)
        return 2
    problem = None if args.no_verify else image_problem(image, args.version)
    if problem is not None:
        print(f"push: the image {args.image} {problem}", file=sys.stderr)
        return 2
    progress = Progress(sys.stdout, sys.stdout.isatty())
    transfer = args.id or f"push-{uuid.uuid4().hex[:8]}"
    try:
        with Pusher(args.broker, args.device, prefix=args.prefix, qos=args.qos, window=args.window, chunk=args.chunk,
                    on_progress=progress) as pusher:
            try:
                result = pusher.push(image, transfer, version=args.version, force=args.force, timeout_s=args.timeout)
            except KeyboardInterrupt:
                progress.end()
                return interrupted(pusher, transfer)
            progress.end()
            if result.ok and args.confirm_timeout > 0:
                return confirmed(pusher, args, len(image), result.duration_s)
    except ValueError as exc:  # what it was given: the broker URL, the window and chunk
        print(f"push: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while connecting: nothing was sent yet
        progress.end()
        print("push interrupted before anything was sent", file=sys.stderr)
        return 130
    except PushError as exc:
        progress.end()
        print(f"push failed: {exc}", file=sys.stderr)
        return 1
    if not result.ok:
        print(failure_message(result), file=sys.stderr)
        return 1
    print(f"pushed {len(image)} bytes to {args.device} in {result.duration_s:.1f} s; the device is rebooting "
          "into the new image")
    return 0
