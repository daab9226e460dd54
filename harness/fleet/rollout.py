"""The rollout driver: a staged update of many devices through the device link, cohort by cohort.

`Rollout(link, devices, command, plan).run()` sends each device of a cohort its `ota` command, follows the
devices' OTA events on the link (a device is done at `succeeded`, or at `failed`, `rejected`, `rolled_back`,
`cancelled`, or when `device_timeout_s` passes first: `timed_out`), retries the failure reasons the plan
names, checks the abort rule after every outcome and the health gate after every cohort, and returns a
`RolloutResult` with a record per device and per cohort. `pause()`, `resume()` and `abort()` work from any
thread while it runs. No rollout system's library runs a device-side gate like this, so it is ours; its
knobs are theirs (harness/fleet/plan.py maps them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.fleet.plan import FAILURE_STATES, RolloutPlan
from harness.link import DeviceLink
from harness.protocol import Message

DONE_STATES = frozenset({"succeeded"}) | FAILURE_STATES
Command = Callable[[str], dict[str, Any]]  # device id -> its `ota` command (type and url; the id is set here)


@dataclass
class DeviceRecord:
    """One device's part in the rollout."""

    device_id: str
    cohort: str
    state: str = "pending"  # pending, updating, succeeded, failed, rejected, rolled_back, timed_out, cancelled,
    # or skipped (never started: the rollout stopped before its cohort)
    reason: str | None = None
    attempts: int = 0
    request_id: str | None = None
    started_at: float | None = None  # time.monotonic() of the first command
    ended_at: float | None = None
    deadline: float | None = None  # of the current attempt
    cancel_sent: bool = False

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES or self.state == "skipped"

    @property
    def seconds(self) -> float | None:
        return None if self.started_at is None or self.ended_at is None else self.ended_at - self.started_at


@dataclass
class CohortRecord:
    name: str
    devices: list[str]
    verdict: str = "not started"  # passed, failed gate (paused / aborted), aborted, not started
    succeeded: int = 0
    failed: int = 0
    started_at: float | None = None
    ended_at: float | None = None


@dataclass
class RolloutResult:
    state: str  # "succeeded" (every cohort passed its gate) or "aborted"
    reason: str | None
    cohorts: list[CohortRecord]
    devices: dict[str, DeviceRecord]

    def count(self, *states: str) -> int:
        return sum(1 for d in self.devices.values() if d.state in states)

    def table(self) -> str:
        """The per-cohort table, then one line per device that did not succeed (all of them when few)."""
        lines = [f"rollout {self.state}" + (f": {self.reason}" if self.reason else ""),
                 f"{'cohort':<12} {'devices':>7} {'succeeded':>9} {'failed':>6}  verdict"]
        lines += [f"{c.name:<12} {len(c.devices):>7} {c.succeeded:>9} {c.failed:>6}  {c.verdict}" for c in self.cohorts]
        shown = [d for d in self.devices.values() if d.state != "succeeded" or len(self.devices) <= 20]
        if shown:
            lines.append(f"{'device':<14} {'cohort':<12} {'state':<12} {'reason':<16} attempts  seconds")
            for d in shown:
                secs = f"{d.seconds:.2f}" if d.seconds is not None else "-"
                lines.append(f"{d.device_id:<14} {d.cohort:<12} {d.state:<12} {d.reason or '-':<16} "
                             f"{d.attempts:>8}  {secs}")
        return "\n".join(lines)


class RolloutAborted(RuntimeError):
    pass


@dataclass
class _Control:
    paused: bool = False
    abort_reason: str | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)


class Rollout:
    """Runs `plan` over `devices` (in that order), sending `command(device_id)` with the request id set."""

    def __init__(self, link: DeviceLink, devices: list[str], command: Command | dict[str, Any], plan: RolloutPlan,
                 job_id: str = "rollout", on_note: Callable[[str], None] | None = None) -> None:
        if len(set(devices)) != len(devices):
            raise ValueError("Rollout: a device is listed twice")
        self.link = link
        self.plan = plan
        self.job_id = job_id
        self._command = command if callable(command) else (lambda _device, c=dict(command): dict(c))
        self._note = on_note or (lambda _text: None)
        self.cohorts = [CohortRecord(name, ids) for name, ids in plan.cohorts(devices)]
        self.devices = {d: DeviceRecord(d, c.name) for c in self.cohorts for d in c.devices}
        self._by_request: dict[tuple[str, str], DeviceRecord] = {}
        self._control = _Control()
        # Commands decided under the control lock, sent by the run loop without it: a send waits for its
        # PUBACK, which paho's thread delivers, and that thread takes the lock in _on_message.
        self._outbox: list[tuple[str, dict[str, Any]]] = []

    # --- control, from any thread ---------------------------------------------------------------------

    def pause(self) -> None:
        """Start no more devices until resume(); the ones updating go on."""
        with self._control.changed:
            self._control.paused = True
            self._control.changed.notify_all()
        self._note("paused")

    def resume(self) -> None:
        with self._control.changed:
            self._control.paused = False
            self._control.changed.notify_all()
        self._note("resumed")

    def abort(self, reason: str = "aborted by the operator") -> None:
        """Start no more devices and cancel the updates under way (AWS's CANCEL)."""
        with self._control.changed:
            if self._control.abort_reason is None:
                self._control.abort_reason = reason
            self._control.changed.notify_all()

    @property
    def paused(self) -> bool:
        return self._control.paused

    # --- the run --------------------------------------------------------------------------------------

    def run(self) -> RolloutResult:
        self.link.add_listener(self._on_message)
        try:
            for cohort in self.cohorts:
                if not self._wait_while_paused():
                    break
                self._run_cohort(cohort)
                if self._control.abort_reason is not None:
                    break
                if not self._gate(cohort):
                    break
            else:
                self._wait_while_paused()  # a gate that paused after the last cohort: until resume() or abort()
        finally:
            self.link.remove_listener(self._on_message)
        return self._result()

    def _run_cohort(self, cohort: CohortRecord) -> None:
        cohort.started_at = time.monotonic()
        self._note(f"cohort {cohort.name}: {len(cohort.devices)} devices")
        waiting = list(cohort.devices)
        while True:
            with self._control.changed:
                self._expire_deadlines()
                if self._control.abort_reason is not None:
                    self._cancel_updating()
                    waiting.clear()
                updating = sum(1 for d in cohort.devices if self.devices[d].state == "updating")
                limit = self.plan.max_in_flight or len(waiting) + updating
                while waiting and updating < limit and not self._control.paused:
                    self._start(self.devices[waiting.pop(0)])
                    updating += 1
                if not waiting and updating == 0 and not self._outbox:
                    break
                if not self._outbox:
                    self._control.changed.wait(self._next_deadline())
                outbox, self._outbox = self._outbox, []
            for device_id, command in outbox:
                self.link.send(device_id, command)
        cohort.ended_at = time.monotonic()

    def _gate(self, cohort: CohortRecord) -> bool:
        """The health gate after a cohort: True to go on with the next."""
        records = [self.devices[d] for d in cohort.devices]
        cohort.succeeded = sum(1 for r in records if r.state == "succeeded")
        cohort.failed = sum(1 for r in records if r.state in FAILURE_STATES)
        if cohort.succeeded >= self.plan.success_threshold * len(records):
            cohort.verdict = "passed"
            self._note(f"cohort {cohort.name}: gate passed ({cohort.succeeded} of {len(records)} succeeded)")
            return True
        why = (f"cohort {cohort.name}: {cohort.succeeded} of {len(records)} succeeded, below the success "
               f"threshold {self.plan.success_threshold:.0%}")
        if self.plan.on_gate_failure == "pause":
            cohort.verdict = "failed gate, paused"
            self._note(why + "; paused")
            self.pause()
            return True  # _wait_while_paused holds the next cohort until resume() or abort()
        cohort.verdict = "failed gate, aborted"
        self.abort(why)
        return False

    def _wait_while_paused(self) -> bool:
        with self._control.changed:
            self._control.changed.wait_for(lambda: not self._control.paused or self._control.abort_reason)
            return self._control.abort_reason is None

    # --- devices (the control lock held) --------------------------------------------------------------

    def _start(self, record: DeviceRecord) -> None:
        record.attempts += 1
        record.request_id = self.job_id if record.attempts == 1 else f"{self.job_id}.{record.attempts}"
        now = time.monotonic()
        record.started_at = record.started_at or now
        record.deadline = now + self.plan.device_timeout_s
        record.state, record.reason = "updating", None
        self._by_request[(record.device_id, record.request_id)] = record
        self._outbox.append((record.device_id, {**self._command(record.device_id), "id": record.request_id}))

    def _end(self, record: DeviceRecord, state: str, reason: str | None) -> None:
        retries = self.plan.retries.get(reason or state, 0)
        if (state in FAILURE_STATES and state != "cancelled" and record.attempts <= retries
                and self._control.abort_reason is None):
            self._note(f"{record.device_id}: {state} ({reason}); retry {record.attempts} of {retries}")
            self._start(record)
            return
        record.state, record.reason, record.ended_at = state, reason, time.monotonic()
        self._check_abort()

    def _check_abort(self) -> None:
        rule = self.plan.abort
        if rule is None or self._control.abort_reason is not None:
            return
        ended = [d for d in self.devices.values() if d.state in DONE_STATES]
        failures = sum(1 for d in ended if d.state in rule.states())
        if rule.trips(len(ended), failures):
            self._control.abort_reason = (f"{failures} of {len(ended)} executed devices failed, at or above the "
                                          f"abort threshold {rule.percent:g} % (min {rule.min_executed} executed)")
            self._note(f"abort: {self._control.abort_reason}")

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        for record in self.devices.values():
            if record.state == "updating" and record.deadline is not None and now >= record.deadline:
                self._end(record, "timed_out", "timed_out")

    def _next_deadline(self) -> float:
        deadlines = [r.deadline for r in self.devices.values() if r.state == "updating" and r.deadline]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else 1.0

    def _cancel_updating(self) -> None:
        """Cancel each update under way, once (the cohort's loop then waits for them to end)."""
        for record in self.devices.values():
            if record.state == "updating" and record.request_id is not None and not record.cancel_sent:
                record.cancel_sent = True
                self._outbox.append((record.device_id, {"type": "cancel", "id": record.request_id}))

    def _result(self) -> RolloutResult:
        for record in self.devices.values():
            if record.state == "pending":
                record.state = "skipped"
        reason = self._control.abort_reason
        for cohort in self.cohorts:
            if cohort.verdict == "not started" and cohort.started_at is not None:
                cohort.verdict = "aborted"
            records = [self.devices[d] for d in cohort.devices]
            cohort.succeeded = sum(1 for r in records if r.state == "succeeded")
            cohort.failed = sum(1 for r in records if r.state in FAILURE_STATES)
        result = RolloutResult("aborted" if reason else "succeeded", reason, self.cohorts, self.devices)
        self._note(result.table())
        return result

    # --- the link's thread ----------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if message.kind != "ota" or not isinstance(message.data, dict) or message.device_id is None:
            return
        with self._control.changed:
            record = self._by_request.get((message.device_id, str(message.data.get("id"))))
            if record is None or record.request_id != message.data.get("id") or record.state != "updating":
                return
            state = message.data.get("state")
            if state in DONE_STATES:
                self._end(record, state, message.data.get("reason"))
                self._control.changed.notify_all()
