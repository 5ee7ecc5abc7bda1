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
    rows = sim.rows[r]
    ts = [row[0] for row in rows]
    # each recorded second's values as Python numbers up front: the same values, without a numpy scalar each
    rec_t = {name: rec[name][r, ts].tolist() for name in ("offered", "attempts", "succeeded", "slow", "p50", "p99",
                                                           "area", "capacity", "in_flight", "queued")}
    failed_t = led.rec_failed[r, ts]
    failed_sum, failed_by = failed_t.sum(axis=1).tolist(), failed_t.tolist()
    for i, (t, counts, weight, phase, base_weight) in enumerate(rows):
        failed = failed_by[i]
        cols["t"].append(t)
        for name in ("offered", "attempts", "succeeded", "slow"):
            cols[name].append(int(rec_t[name][i]))
        cols["failed"].append(int(failed_sum[i]))
        for j, cause in enumerate(CAUSES):
            cols[f"failed_{cause}"].append(int(failed[j]))
        cols["latency_p50_ms"].append(rec_t["p50"][i] * 1000.0)
        cols["latency_p99_ms"].append(rec_t["p99"][i] * 1000.0)
        add_fleet_columns(cols, counts, weight, base_weight)
        cols["utilization"].append(utilization(rec_t["area"][i], rec_t["capacity"][i]))
        cols["phase"].append(phase)
        cols["in_flight"].append(float(rec_t["in_flight"][i]))
        cols["queued"].append(int(round(rec_t["queued"][i])))
    timeline = pd.DataFrame(cols)
    events = [(e.time, e.kind, e.detail) for e in c.events] + list(sim.fleets[r].events) + dependency_events(s)
    return Result(run_summary(sim, r), timeline, events_frame(events), {"controller": c, "slo_window": s.slo.window})
