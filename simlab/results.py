"""What a run produces: a flat summary record, a per-second timeline and an event log.

The same shapes come out of the request engine, the fluid engine and a staging
deploy, so any two runs can be put side by side key by key.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SUMMARY_KEYS = (
    "scenario", "strategy", "engine", "seed", "outcome",
    "requests", "attempts", "failed", "slow", "bad", "bad_fraction",
    "latency_mean_ms", "latency_p50_ms", "latency_p99_ms",
    "detected_at_s", "rollback_done_at_s", "deploy_duration_s",
    "error_budget_used", "min_capacity", "peak_utilization", "instance_seconds",
)
"""Every run's summary has exactly these keys first (None where not applicable); extras may follow."""

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

EVENT_COLUMNS = ("time", "kind", "detail")


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


def events_frame(rows: list[tuple[float, str, dict]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS)).sort_values("time", kind="stable").reset_index(drop=True)
