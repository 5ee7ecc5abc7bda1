"""What a run's dry-run metrics saw (Argo's dryRun: measured, recorded, never acting), read from its analysis events:
the console's summary and the run report say it in the same words."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simlab.units import format_duration

# Keys of an analysis event's `dry_run` entry that are not a metric's value (simlab.control.analysis.as_detail).
_NOT_METRICS = {"status", "requests", "failures", "verdict", "score", "classes", "p_values"}


@dataclass(frozen=True)
class DryRunSeen:
    """What the dry-run metrics (Argo's dryRun: measured, never acting) saw over a run, read from its analysis
    events; the controller judges them together as one measurement per analysis and counts them on their own."""

    metrics: tuple[str, ...]  # as the scenario names them, in its order ('' when every measurement was too thin)
    measurements: int
    failed: int
    inconclusive: int
    first_failed_s: float | None  # after the release started
    would_roll_back_s: float | None  # the summary's dry_run_detected_at_s: their failure_limit-th counted failure
    failure_limit: int | None  # the count they reached then

    def text(self) -> str:
        """'latency_p99 failed 3 of 9 measurements, the first 2.5m after the release started; acting, they would
        have rolled the release back 3.0m after it started (failure_limit 2)', or 'passed all 9 measurements'."""
        names = self.metrics
        if len(names) > 1:
            who = ", ".join(names[:-1]) + f" and {names[-1]} (judged together)"
        else:
            who = names[0] if names else "the dry-run metrics"
        n, unclear = self.measurements, f" ({self.inconclusive} inconclusive)" if self.inconclusive else ""
        if not self.failed:
            passed = n - self.inconclusive
            return (f"{who} passed all {n} measurements" if passed == n else
                    f"{who} passed {passed} of {n} measurements{unclear} and failed none")
        text = (f"{who} failed {self.failed} of {n} measurements{unclear}, the first "
                f"{format_duration(self.first_failed_s)} after the release started")
        if self.would_roll_back_s is None:
            return text + "; too few to have rolled back"
        limit = f" (failure_limit {self.failure_limit})" if self.failure_limit else ""
        return (text + f"; acting, {'it' if len(names) == 1 else 'they'} would have rolled the release back "
                       f"{format_duration(self.would_roll_back_s)} after it started{limit}")


def _known(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def dry_run_seen(summary: dict[str, Any], events) -> DryRunSeen | None:
    """The dry-run metrics' measurements in a run's events (None when it measured none); times after the release."""
    kinds, details, times = list(events["kind"]), list(events["detail"]), list(events["time"])
    start = next((t for t, k in zip(times, kinds) if k == "release_started"), 0.0)
    dry = [(t, d["dry_run"]) for t, k, d in zip(times, kinds, details)
           if k == "analysis" and isinstance(d, dict) and isinstance(d.get("dry_run"), dict)]
    if not dry:
        return None
    names: dict[str, None] = {}
    for _, d in dry:
        for key in d:
            if key not in _NOT_METRICS:
                names[key.removesuffix("_ratio_to_baseline")] = None
    failed = [(t, d) for t, d in dry if d.get("status") == "failed"]
    at = summary.get("dry_run_detected_at_s")
    at = float(at) if _known(at) else None
    # The measurement that completed the count is the failed one at that time (the controller emits them together).
    limit = next((d.get("failures") for t, d in failed if at is not None and math.isclose(t - start, at)), None)
    return DryRunSeen(tuple(names), len(dry), len(failed), sum(d.get("status") == "inconclusive" for _, d in dry),
                      failed[0][0] - start if failed else None, at, limit)
