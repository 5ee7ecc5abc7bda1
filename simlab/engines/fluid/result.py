"""Turn a fluid replication's ledgers into the summary record and Result every driver returns."""
from __future__ import annotations

import numpy as np
import pandas as pd

from simlab.engines.timeline import add_fleet_columns, utilization
from simlab.results import (CAUSES, Result, RunTotals, Summary, dependency_events, events_frame, summarize,
                            timeline_columns)


def run_summary(sim, r: int) -> Summary:
    """The summary of replication r of a lockstep run."""
    s, led, c = sim.s, sim.ledger, sim.controllers[r]
    has_ok = led.lat_n[r] > 0
    p50, p99 = led.run_quantiles(r) if has_ok else (None, None)
    min_ready = led.min_ready[r]
    totals = RunTotals(
        requests=int(led.requests[r]),
        attempts=int(led.attempts[r]),
        failed_by={cause: int(led.failed[r, i]) for i, cause in enumerate(CAUSES)},
        slow=int(led.slow[r]),
        latency_mean_s=float(led.lat_sum[r] / led.lat_n[r]) if has_ok else None,
        latency_p50_s=p50,
        latency_p99_s=p99,
        min_ready=float(min_ready) if np.isfinite(min_ready) else None,
        peak_utilization=float(led.peak_util[r]),
        instance_seconds=sim.fleets[r].instance_seconds(s.duration),
        queued_attempts=int(round(led.queued[r])),
    )
    return summarize(s, engine="fluid", seed=sim.seeds[r], controller=c, totals=totals, bad_release=bool(sim.bad[r]),
                     events=sim.fleets[r].events)


def build_result(sim, r: int) -> Result:
    """The Result of replication r of a recorded run (timeline, events, summary)."""
    s, led, c = sim.s, sim.ledger, sim.controllers[r]
    rec = led.rec
    cols: dict[str, list] = {k: [] for k in timeline_columns(s)}
    for t, counts, weight, phase, base_weight in sim.rows[r]:
        failed = led.rec_failed[r, t]
        cols["t"].append(t)
        for name in ("offered", "attempts", "succeeded", "slow"):
            cols[name].append(int(rec[name][r, t]))
        cols["failed"].append(int(failed.sum()))
        for i, cause in enumerate(CAUSES):
            cols[f"failed_{cause}"].append(int(failed[i]))
        cols["latency_p50_ms"].append(rec["p50"][r, t] * 1000.0)
        cols["latency_p99_ms"].append(rec["p99"][r, t] * 1000.0)
        add_fleet_columns(cols, counts, weight, base_weight)
        cols["utilization"].append(utilization(rec["area"][r, t], rec["capacity"][r, t]))
        cols["phase"].append(phase)
        cols["in_flight"].append(float(rec["in_flight"][r, t]))
        cols["queued"].append(int(round(rec["queued"][r, t])))
    timeline = pd.DataFrame(cols)
    events = [(e.time, e.kind, e.detail) for e in c.events] + list(sim.fleets[r].events) + dependency_events(s)
    return Result(run_summary(sim, r), timeline, events_frame(events), {"controller": c, "slo_window": s.slo.window})
