"""Turn a fluid replication's ledgers into the summary record and Result every driver returns."""
from __future__ import annotations

import numpy as np
import pandas as pd

from simlab.engines.timeline import add_fleet_columns, utilization
from simlab.metrics import error_budget_used
from simlab.results import CAUSES, TIMELINE_COLUMNS, Result, events_frame, make_summary


def _rel(t, origin):
    return None if t is None else t - origin


def summary_values(sim, r: int) -> dict:
    s, led, c = sim.s, sim.ledger, sim.controllers[r]
    release_at = s.release.at if s.release else 0.0
    requests = int(led.requests[r])
    failed_by = {cause: int(led.failed[r, i]) for i, cause in enumerate(CAUSES)}
    failed = sum(failed_by.values())
    slow = int(led.slow[r])
    bad = failed + slow
    mean_rps = requests / s.duration if s.duration else 0.0
    has_ok = led.lat_n[r] > 0
    p50, p99 = led.run_quantiles(r) if has_ok else (None, None)
    min_ready = led.min_ready[r]
    return {
        "scenario": s.name,
        "strategy": s.strategy.kind if s.release else None,
        "engine": "fluid",
        "seed": sim.seeds[r],
        "outcome": c.outcome,
        "requests": requests,
        "attempts": int(led.attempts[r]),
        "failed": failed,
        "slow": slow,
        "bad": bad,
        "bad_fraction": bad / requests if requests else 0.0,
        "latency_mean_ms": float(led.lat_sum[r] / led.lat_n[r] * 1000) if has_ok else None,
        "latency_p50_ms": p50 * 1000 if p50 is not None else None,
        "latency_p99_ms": p99 * 1000 if p99 is not None else None,
        "detected_at_s": _rel(c.detected_at, release_at),
        "rollback_done_at_s": _rel(c.rollback_done_at, release_at),
        "deploy_duration_s": _rel(c.promoted_at, release_at),
        "error_budget_used": error_budget_used(bad, mean_rps, s.slo.availability, s.slo.window),
        "min_capacity": float(min_ready / s.fleet.instances) if np.isfinite(min_ready) else None,
        "peak_utilization": float(led.peak_util[r]),
        "instance_seconds": sim.fleets[r].instance_seconds(s.duration),
        **{f"failed_{cause}": value for cause, value in failed_by.items()},
        "rollback_started_at_s": _rel(c.rollback_started_at, release_at),
        "analysis_failures": c.failures,
        "queued_attempts": int(round(led.queued[r])),
        "bad_release": bool(sim.bad[r]),
    }


def build_result(sim, r: int) -> Result:
    """The Result of replication r of a recorded run (timeline, events, summary)."""
    s, led, c = sim.s, sim.ledger, sim.controllers[r]
    rec = led.rec
    cols: dict[str, list] = {k: [] for k in TIMELINE_COLUMNS}
    for t, counts, weight, phase in sim.rows[r]:
        failed = led.rec_failed[r, t]
        cols["t"].append(t)
        for name in ("offered", "attempts", "succeeded", "slow"):
            cols[name].append(int(rec[name][r, t]))
        cols["failed"].append(int(failed.sum()))
        for i, cause in enumerate(CAUSES):
            cols[f"failed_{cause}"].append(int(failed[i]))
        cols["latency_p50_ms"].append(rec["p50"][r, t] * 1000.0)
        cols["latency_p99_ms"].append(rec["p99"][r, t] * 1000.0)
        add_fleet_columns(cols, counts, weight)
        cols["utilization"].append(utilization(rec["area"][r, t], rec["capacity"][r, t]))
        cols["phase"].append(phase)
        cols["in_flight"].append(float(rec["in_flight"][r, t]))
        cols["queued"].append(int(round(rec["queued"][r, t])))
    timeline = pd.DataFrame(cols)
    events = [(e.time, e.kind, e.detail) for e in c.events] + list(sim.fleets[r].events)
    summary = make_summary(summary_values(sim, r))
    return Result(summary, timeline, events_frame(events), {"controller": c, "slo_window": s.slo.window})
