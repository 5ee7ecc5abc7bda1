"""Turn a fluid replication's ledgers into the summary record and Result every driver returns."""
from __future__ import annotations

import numpy as np
import pandas as pd

from simlab.engines.timeline import add_fleet_columns
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
    rows, columns = sim.rows[r], timeline_columns(s)
    cols: dict = {k: [] for k in columns}
    i = 0
    while i < len(rows):  # a block's seconds share one snapshot: their fleet columns are made once, then repeated
        _, counts, weight, _, base_weight = rows[i]
        j = i + 1
        while j < len(rows) and rows[j][1] is counts and rows[j][2] == weight and rows[j][4] == base_weight:
            j += 1
        one: dict = {k: [] for k in cols}
        add_fleet_columns(one, counts, weight, base_weight)
        for k, values in one.items():
            cols[k] += values * (j - i)
        i = j
    if rows:  # the recorded columns as arrays: int(x) truncates as astype does, round(x) rounds half to even as rint
        ts = [row[0] for row in rows]
        rec = {name: values[r, ts] for name, values in led.rec.items()}
        failed = led.rec_failed[r, ts]
        cols["t"] = np.array(ts, dtype=np.int64)
        for name in ("offered", "attempts", "succeeded", "slow"):
            cols[name] = rec[name].astype(np.int64)
        cols["failed"] = failed.sum(axis=1).astype(np.int64)
        for i, cause in enumerate(CAUSES):
            cols[f"failed_{cause}"] = failed[:, i].astype(np.int64)
        cols["latency_p50_ms"], cols["latency_p99_ms"] = rec["p50"] * 1000.0, rec["p99"] * 1000.0
        area, capacity = rec["area"], rec["capacity"]  # engines.timeline.utilization of each second
        busy = np.minimum(1.0, np.maximum(0.0, area / np.where(capacity != 0, capacity, 1.0)))
        cols["utilization"] = np.where(capacity != 0, busy, 0.0)
        cols["phase"] = [row[3] for row in rows]
        cols["in_flight"] = rec["in_flight"]
        cols["queued"] = np.rint(rec["queued"]).astype(np.int64)
    timeline = pd.DataFrame(cols)
    events = [(e.time, e.kind, e.detail) for e in c.events] + list(sim.fleets[r].events) + dependency_events(s)
    return Result(run_summary(sim, r), timeline, events_frame(events), {"controller": c, "slo_window": s.slo.window})
