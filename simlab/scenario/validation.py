"""The `validate:` block: how closely a staging run must match the simulation's prediction for `simlab validate`.

`simlab validate` simulates `runs` replications of the staging form of the
scenario and takes, for each figure, the interval the runs spanned. The
observed figure passes when it lies inside that interval widened by its
tolerance (`absolute + relative × |bound|` on each side); the outcome, and
whether a detection or a rollback happened at all, pass when what staging
did happened in at least `min_share` of the runs. Schema only: the judging is
in simlab.chaos.prediction. The block changes no result, so it is left out
of the scenario's fingerprint.
"""
from __future__ import annotations

from pydantic import Field

from simlab.scenario.types import Duration, Frozen, number, whole


class CountTolerance(Frozen):
    """Slack around a predicted count of requests."""

    absolute: number(ge=0.0, le=1e12) = Field(default=10.0, description="requests either side")
    relative: number(ge=0.0, le=100.0) = Field(default=0.5, description="share of the interval's bound either side")


class TimeTolerance(Frozen):
    """Slack around a predicted time or latency."""

    absolute: Duration = Field(default=5.0, description="either side (a duration: 3s, 40ms)")
    relative: number(ge=0.0, le=100.0) = Field(default=0.1, description="share of the interval's bound either side")


class Tolerances(Frozen):
    """One tolerance per figure compared (summary keys `bad`, `detected_at_s`, `rollback_done_at_s`, `latency_p99_ms`)."""

    bad: CountTolerance = CountTolerance()
    detected_at: TimeTolerance = TimeTolerance()
    rollback_done_at: TimeTolerance = TimeTolerance()
    latency_p99: TimeTolerance = TimeTolerance(absolute=0.02, relative=0.25)


class Validation(Frozen):
    runs: whole(ge=2, le=10_000) = Field(default=20, description="replications simulated for the prediction")
    min_share: number(gt=0.0, le=1.0) = Field(
        default=0.05, description="an observed outcome (or a detection, or none) must happen in at least this share "
        "of the runs")
    tolerance: Tolerances = Tolerances()
