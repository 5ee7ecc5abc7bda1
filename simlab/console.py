"""Terminal rendering of results (rich); used by the CLI only."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simlab.results import Result
from simlab.units import format_duration


def _num(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def _percent(share: float) -> str:
    """A share as a percent with the digits small values need (0.0018%, 2.49%)."""
    value = share * 100
    if value == 0 or value >= 0.1:
        return f"{value:.2f}%"
    return f"{value:.2g}%"


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


def summary_lines(result: Result) -> list[tuple[str, str]]:
    """(label, value) pairs in the words an SRE uses."""
    s = result.summary.to_dict()
    budget = s["error_budget_used"]
    return [
        ("outcome", f"{s['outcome']} ({s['strategy'] or 'no release'}, engine {s['engine']}, seed {s['seed']})"),
        ("user requests", _num(s["requests"]) + f"  ({_num(s['attempts'])} attempts with retries)"),
        ("bad requests", f"{_num(s['bad'])}  = {_num(s['failed'])} failed + {_num(s['slow'])} slow"
                         f"  ({_percent(s['bad_fraction'])})"),
        ("failed by cause", ", ".join(f"{c} {_num(s.get('failed_' + c))}" for c in ("error", "rejected", "timeout", "reset"))),
        ("latency (ok)", f"mean {_num(s['latency_mean_ms'], 1)} ms, p50 {_num(s['latency_p50_ms'], 1)} ms, "
                         f"p99 {_num(s['latency_p99_ms'], 1)} ms"),
        ("time to detect", format_duration(s["detected_at_s"]) + " after the release started"),
        ("rolled back at", format_duration(s["rollback_done_at_s"])),
        ("deploy duration", format_duration(s["deploy_duration_s"])),
        ("error budget used", "-" if budget is None else f"{_percent(budget)} of the {format_duration(result.extras.get('slo_window', 30 * 86400))} budget"),
        ("min capacity", "-" if s["min_capacity"] is None else f"{s['min_capacity'] * 100:.0f}% of the fleet ready"),
        ("peak utilization", "-" if s["peak_utilization"] is None else f"{s['peak_utilization'] * 100:.0f}%"),
        ("instance-seconds", _num(s["instance_seconds"])),
    ] + ([("engine auto", s["engine_reason"])] if s.get("engine_reason") else []) + _dry_run_line(s, result.events)


def _dry_run_line(summary: dict[str, Any], events) -> list[tuple[str, str]]:
    seen = dry_run_seen(summary, events) if len(events) else None
    return [("dry-run (never acting)", seen.text())] if seen is not None else []


def print_summary(result: Result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"simlab run: {result.summary['scenario']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in summary_lines(result):
        table.add_row(label, value)
    Console().print(table)
