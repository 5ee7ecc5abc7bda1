"""What a run produces: a flat summary record, a per-second timeline and an event log.

The same shapes come out of the request engine, the fluid engine and a staging
deploy, so any two runs can be put side by side key by key.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simlab.metrics import error_budget_used

if TYPE_CHECKING:  # pragma: no cover
    from simlab.scenario import Scenario

SUMMARY_KEYS = (
    "scenario", "strategy", "engine", "seed", "outcome",
    "requests", "attempts", "failed", "slow", "bad", "bad_fraction",
    "latency_mean_ms", "latency_p50_ms", "latency_p99_ms",
    "detected_at_s", "rollback_done_at_s", "deploy_duration_s",
    "error_budget_used", "min_capacity", "peak_utilization", "instance_seconds",
)
"""Every run's summary has exactly these keys first (None where not applicable); extras may follow.

Extras every driver adds (`summarize`): failed_<cause>, rollback_started_at_s, analysis_failures and
analysis_inconclusive (acting measurements that failed, that were inconclusive), rollback_cause (what
triggered the rollback: the analysis metrics that failed, joined by +, `inconclusive`, `alert` or `deadline`;
ROLLBACK_CAUSES), rollback_by (`controller` or `on_call`), rollback_trigger (what made the metric cross:
`defect`, `failure`, `crash` or `noise`; simlab.attribution), dry_run_detected_at_s (when the dry-run metrics
alone would have rolled back), bad_release."""

ROLLBACK_CAUSES = ("alert", "deadline", "inconclusive")
"""The causes of a rollback other than an analysis metric's name (`error_rate`, `latency_p99+error_rate`, ...)."""

OUTCOMES = ("promoted", "rolled_back", "no_release", "incomplete")

CAUSES = ("error", "rejected", "timeout", "reset")
"""Why a failed request failed: the instance answered an error, rejected it (queue full, no backend), the client's
timeout passed, or its instance crashed under it (connection reset)."""

TIMELINE_COLUMNS = (
    "t",  # second since the start of the run (rows are [t, t+1))
    "offered",  # user requests that arrived in this second (retries not counted)
    "attempts",  # attempts sent to the load balancer, retries included
    "succeeded", "failed",  # outcome of this second's user requests (so offered == succeeded + failed)
    "failed_error", "failed_rejected", "failed_timeout", "failed_reset",  # failed split by cause
    "slow",  # succeeded but slower than slo.latency_threshold
    "latency_p50_ms", "latency_p99_ms",  # of this second's successful user requests
    "new_weight",  # percent of traffic routed to the new version
    # instances by version and state: ready (in rotation), starting (or not yet through health checks),
    # down (crashed or restarting), draining (told to stop, finishing in-flight requests)
    "old_ready", "old_starting", "old_down", "old_draining", "new_ready", "new_starting", "new_down", "new_draining",
    "utilization",  # busy workers / workers of ready instances
    "phase",  # controller phase: stable, migrating, rollout, promoted, rolling_back, rolled_back
    "in_flight",  # user requests in the system at the end of the second (queued, in service, awaiting retry)
    "queued",  # attempts sent this second that had to wait in an instance queue
)

BASELINE_COLUMNS = (
    "baseline_weight",  # percent of traffic routed to the canary's baseline
    "baseline_ready", "baseline_starting", "baseline_down", "baseline_draining",  # its instances, as old_* and new_*
)
"""The columns a run with a canary baseline (strategy.canary.baseline) adds after TIMELINE_COLUMNS; its instances
are of the old version but not in old_*, which stay the stable fleet."""

EVENT_COLUMNS = ("time", "kind", "detail")


def timeline_columns(scenario: "Scenario") -> tuple[str, ...]:
    """A run's timeline columns: TIMELINE_COLUMNS, and BASELINE_COLUMNS when its canary has a baseline."""
    baseline = getattr(scenario.strategy, "baseline", False) and scenario.release is not None
    return TIMELINE_COLUMNS + (BASELINE_COLUMNS if baseline else ())


def ready_instances(timeline: pd.DataFrame) -> pd.Series:
    """Instances in rotation each second: old and new, and a canary baseline's when the timeline has them."""
    ready = timeline["old_ready"] + timeline["new_ready"]
    return ready + timeline["baseline_ready"] if "baseline_ready" in timeline else ready


def clean(value: Any) -> Any:
    """JSON-safe scalar: numpy types to Python, NaN to None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


@dataclass
class Summary:
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> dict[str, Any]:
        return {k: clean(v) for k, v in self.values.items()}


@dataclass
class Result:
    summary: Summary
    timeline: pd.DataFrame
    events: pd.DataFrame
    extras: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> Path:
        """Write summary.json, timeline.csv and events.csv into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(self.summary.to_dict(), indent=2) + "\n")
        self.timeline.to_csv(out / "timeline.csv", index=False)
        events = self.events.copy()
        events["detail"] = events["detail"].map(lambda d: json.dumps(d, default=clean, sort_keys=True))
        events.to_csv(out / "events.csv", index=False)
        return out


def make_summary(values: dict[str, Any]) -> Summary:
    """A summary with every key of SUMMARY_KEYS present (missing ones as None), extras after."""
    ordered = {k: values.get(k) for k in SUMMARY_KEYS}
    ordered.update({k: v for k, v in values.items() if k not in ordered})
    if ordered["outcome"] not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {ordered['outcome']!r}")
    return Summary(ordered)


def dependency_events(scenario: "Scenario") -> list[tuple[float, str, dict]]:
    """The scenario's dependency failures as a simulated run's events, as staging writes them when it injects
    one: `dependency_failure_started` (with its add_latency and error_rate) and `dependency_failure_ended`
    (left out when the failure outlasts the run), so reports shade the same windows for both."""
    from simlab.scenario.release import Dependency

    out: list[tuple[float, str, dict]] = []
    for f in scenario.failures:
        if isinstance(f, Dependency) and f.at < scenario.duration:
            out.append((float(f.at), "dependency_failure_started", {"add_latency": f.add_latency, "error_rate": f.error_rate}))
            if f.at + f.duration < scenario.duration:
                out.append((float(f.at + f.duration), "dependency_failure_ended", {}))
    return out


def events_frame(rows: list[tuple[float, str, dict]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS)).sort_values("time", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class RunTotals:
    """What a driver counted over a whole run; `summarize` turns it into the summary every driver returns."""

    requests: int  # user requests offered (retries not counted)
    attempts: int  # attempts sent, retries included
    failed_by: dict[str, int]  # failed user requests by cause (CAUSES)
    slow: int  # succeeded but slower than slo.latency_threshold
    latency_mean_s: float | None  # of successful user requests; None when none succeeded
    latency_p50_s: float | None
    latency_p99_s: float | None
    min_ready: float | None  # fewest instances in rotation from the release on (None: no such second)
    peak_utilization: float | None
    instance_seconds: float
    queued_attempts: int | None = None  # attempts that waited in an instance queue (None: not measured)


def summarize(scenario: "Scenario", *, engine: str, seed: int, controller, totals: RunTotals,
              bad_release: bool, extras: dict[str, Any] | None = None, events=()) -> Summary:
    """The summary record of one run, the same keys and meanings for the request engine, the fluid engine and staging.

    Times are relative to the release (`detected_at_s` is the time to detect); the error budget is the SLO
    window's at the run's mean rate. `events`: the run's (time, kind, detail) rows, of which the instance
    crashes go into `rollback_trigger` (simlab.attribution).
    """
    from simlab.attribution import capacity_taken, crash_times, decided_at, rollback_trigger

    s, c, n = scenario, controller, totals
    release_at = s.release.at if s.release else 0.0

    def rel(t: float | None) -> float | None:
        return None if t is None else t - release_at

    failed = sum(n.failed_by[cause] for cause in CAUSES)
    bad = failed + n.slow
    mean_rps = n.requests / s.duration if s.duration else 0.0
    ms = lambda v: None if v is None else float(v) * 1000.0  # noqa: E731
    values = {
        "scenario": s.name,
        "strategy": s.strategy.kind if s.release else None,
        "engine": engine,
        "seed": seed,
        "outcome": c.outcome,
        "requests": n.requests,
        "attempts": n.attempts,
        "failed": failed,
        "slow": n.slow,
        "bad": bad,
        "bad_fraction": bad / n.requests if n.requests else 0.0,
        "latency_mean_ms": ms(n.latency_mean_s),
        "latency_p50_ms": ms(n.latency_p50_s),
        "latency_p99_ms": ms(n.latency_p99_s),
        "detected_at_s": rel(c.detected_at),
        "rollback_done_at_s": rel(c.rollback_done_at),
        "deploy_duration_s": rel(c.promoted_at),
        "error_budget_used": error_budget_used(bad, mean_rps, s.slo.availability, s.slo.window),
        "min_capacity": None if n.min_ready is None else float(n.min_ready / s.fleet.instances),
        "peak_utilization": None if n.peak_utilization is None else float(n.peak_utilization),
        "instance_seconds": n.instance_seconds,
        **{f"failed_{cause}": int(n.failed_by[cause]) for cause in CAUSES},
        "rollback_started_at_s": rel(c.rollback_started_at),
        "analysis_failures": c.failures,
        "analysis_inconclusive": c.inconclusive,
        "rollback_cause": c.rollback_cause,
        "rollback_by": c.rollback_by,
        "rollback_trigger": rollback_trigger(s, decided_at(s, c), c.rollback_cause, bad_release, crash_times(events),
                                             capacity_taken(s, c.promoted_at, decided_at(s, c))),
        "dry_run_detected_at_s": rel(c.dry_run_detected_at),
    }
    if n.queued_attempts is not None:
        values["queued_attempts"] = n.queued_attempts
    values["bad_release"] = bool(bad_release)
    values.update(extras or {})
    return make_summary(values)
