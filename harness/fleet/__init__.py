"""Fleets of boards and staged rollouts over them (issue 17).

`plan.py` holds a rollout's plan (cohorts, health gates, the abort rule, deadlines, retries) and how its
knobs map onto AWS IoT Jobs and Eclipse hawkBit; `rollout.py` the driver that runs a plan through the device
link; `start.py` starts many boards at once through a board factory.
"""

from harness.fleet.plan import FAILURE_TYPES, AbortRule, RolloutPlan
from harness.fleet.rollout import CohortRecord, DeviceRecord, Rollout, RolloutResult
from harness.fleet.start import start_boards

__all__ = ["FAILURE_TYPES", "AbortRule", "CohortRecord", "DeviceRecord", "Rollout", "RolloutPlan", "RolloutResult",
           "start_boards"]
