"""A staged rollout's plan: cohorts, the health gate after each, the abort rule, deadlines and retries.

The knobs are those of the rollout systems firmware teams release through (../shared/reference/peers_2026.md,
section 2), so a team can mirror its production rollout in the gate before the real one starts; the table in
docs/fleet.md maps each onto AWS IoT Jobs and Eclipse hawkBit. A device's outcome counts as AWS's failure
types do: `failed` (and `rolled_back`: the new image did not stick) is FAILED, `rejected` (the device
refused the command: same version, busy, a bad command) is REJECTED, no outcome within `device_timeout_s`
is TIMED_OUT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# AWS IoT Jobs' failure types, and the device outcomes each covers.
FAILURE_TYPES = {"FAILED": frozenset({"failed", "rolled_back"}), "REJECTED": frozenset({"rejected"}),
                 "TIMED_OUT": frozenset({"timed_out"}), "CANCELLED": frozenset({"cancelled"})}
FAILURE_STATES = frozenset().union(*FAILURE_TYPES.values())


@dataclass(frozen=True)
class AbortRule:
    """Abort the rollout once at least `min_executed` devices ended and `percent` % of those ended in a
    failure of the `counts` types (AWS's abortConfig criterion)."""

    percent: float = 10.0
    min_executed: int = 5
    counts: frozenset[str] = frozenset({"FAILED", "REJECTED", "TIMED_OUT"})

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise ValueError(f"AbortRule.percent must be in (0, 100], not {self.percent}")
        if self.min_executed < 1:
            raise ValueError(f"AbortRule.min_executed must be >= 1 (AWS minNumberOfExecutedThings), not "
                             f"{self.min_executed}")
        unknown = set(self.counts) - set(FAILURE_TYPES)
        if unknown:
            raise ValueError(f"AbortRule.counts: unknown failure types {sorted(unknown)}; use {sorted(FAILURE_TYPES)}")

    def states(self) -> frozenset[str]:
        return frozenset().union(*(FAILURE_TYPES[t] for t in self.counts))

    def trips(self, executed: int, failures: int) -> bool:
        return executed >= self.min_executed and failures * 100 >= self.percent * executed


@dataclass(frozen=True)
class RolloutPlan:
    """Cohorts: `canary` devices first, then each of `steps` (cumulative percentages of the fleet, the last
    normally 100), then whatever is left. After each cohort the gate needs `success_threshold` of it to have
    succeeded; otherwise the rollout pauses or aborts (`on_gate_failure`). `abort` is checked after every
    device outcome, whatever the cohort."""

    canary: int = 1
    steps: tuple[float, ...] = (100.0,)
    success_threshold: float = 1.0
    on_gate_failure: str = "abort"  # or "pause": resume() goes on with the next cohort
    abort: AbortRule | None = field(default_factory=AbortRule)
    device_timeout_s: float = 60.0
    retries: dict[str, int] = field(default_factory=dict)  # failure reason -> extra attempts
    max_in_flight: int | None = None  # devices updating at once (None: a whole cohort)

    def __post_init__(self) -> None:
        if self.canary < 0:
            raise ValueError(f"RolloutPlan.canary must be >= 0 devices, not {self.canary}")
        if any(not 0 < s <= 100 for s in self.steps) or list(self.steps) != sorted(self.steps):
            raise ValueError(f"RolloutPlan.steps must be increasing percentages in (0, 100], not {self.steps}")
        if not 0 <= self.success_threshold <= 1:
            raise ValueError(f"RolloutPlan.success_threshold is a fraction 0..1, not {self.success_threshold}")
        if self.on_gate_failure not in ("abort", "pause"):
            raise ValueError(f"RolloutPlan.on_gate_failure must be 'abort' or 'pause', not {self.on_gate_failure!r}")
        if self.device_timeout_s <= 0:
            raise ValueError(f"RolloutPlan.device_timeout_s must be > 0, not {self.device_timeout_s}")
        if any(n < 0 or n > 10 for n in self.retries.values()):
            raise ValueError(f"RolloutPlan.retries: 0..10 attempts per reason (as AWS's numberOfRetries), not "
                             f"{self.retries}")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError(f"RolloutPlan.max_in_flight must be >= 1, not {self.max_in_flight}")

    def cohorts(self, devices: list[str]) -> list[tuple[str, list[str]]]:
        """The devices in rollout order, cut into named cohorts; none is empty, every device is in one."""
        cohorts: list[tuple[str, list[str]]] = []
        done = min(self.canary, len(devices))
        if done:
            cohorts.append((f"canary {done}", devices[:done]))
        for percent in self.steps:
            upto = max(done, min(len(devices), math.ceil(len(devices) * percent / 100)))
            if upto > done:
                cohorts.append((f"{percent:g} %", devices[done:upto]))
                done = upto
        if done < len(devices):
            cohorts.append(("the rest", devices[done:]))
        return cohorts
