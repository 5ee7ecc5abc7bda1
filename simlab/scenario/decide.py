"""The `decide:` block: what a compare, sweep, analysis-quality or optimize report recommends by.

A policy qualifies when it stays within every limit; of those, the one with the
lowest `objective` is recommended, but only when a paired 95% interval over the
runs' common seeds separates it from the next (simlab.experiment.decision).
The limits are on the metrics `simlab optimize` knows (simlab.experiment.objectives):
`max_false_rollback` on `false_rollback`, `max_deploy_duration` on
`deploy_duration_mean`, `max_bad_promoted` on `bad_promoted`. Without the block
the defaults below apply. Schema only; the block changes no run, so it is left
out of the scenario's fingerprint (a finished compare resumes from its store
when only the block changed).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from simlab.scenario.types import Frozen, PositiveDuration, Probability

OBJECTIVES = (
    "bad_requests_added", "bad_requests_added_bad", "bad_requests_added_good", "bad_requests", "false_rollback",
    "bad_promoted", "deploy_duration_mean", "deploy_duration_p50", "deploy_duration_p95", "time_to_detect_p50",
    "error_budget_used", "extra_instance_seconds",
)
"""The metrics of simlab.experiment.objectives.METRICS, every one lower-is-better (a test keeps the two equal)."""


class Decide(Frozen):
    objective: Literal[OBJECTIVES] = Field(  # type: ignore[valid-type]
        default="bad_requests_added",
        description="minimised among the policies within the limits (a metric of `simlab optimize --minimize`)")
    max_false_rollback: Probability = Field(
        default=0.05, description="largest share of good releases a policy may roll back")
    max_deploy_duration: PositiveDuration | None = Field(
        default=None, description="longest mean deploy time of a good release (one rolled back or unfinished counts "
        "as the rest of the run); none: no limit")
    max_bad_promoted: Probability | None = Field(
        default=None, description="largest share of bad releases a policy may promote; none: no limit")
