"""Turn an engine's ledgers into the Result every driver returns (timeline, events, summary)."""
from __future__ import annotations

import math

import pandas as pd

from simlab.engines.timeline import add_fleet_columns, utilization
from simlab.results import (CAUSES, Result, RunTotals, dependency_events, events_frame, ready_instances, summarize,
                            timeline_columns)


def build_result(engine) -> Result:
    s, rec, c = engine.s, engine.rec, engine.controller
    n = int(math.ceil(s.duration))
    rec.close_user_seconds(n)  # the run is over: every request has its outcome
    p50, p99 = rec.user_p50, rec.user_p99
    rows = engine.rows
    cols: dict[str, list] = {k: [] for k in timeline_columns(s)}
    for sec, counts, area, capacity, weight, phase, in_flight, base_weight in rows:
        failed = [rec.failed[cause][sec] for cause in CAUSES]
        cols["t"].append(sec)
        cols["offered"].append(rec.offered[sec])
        cols["attempts"].append(rec.offered[sec] + rec.retried[sec])
        cols["succeeded"].append(rec.succeeded[sec])
        cols["failed"].append(sum(failed))
        for cause, value in zip(CAUSES, failed):
            cols[f"failed_{cause}"].append(value)
        cols["slow"].append(rec.slow[sec])
        cols["latency_p50_ms"].append(p50[sec] * 1000.0)
        cols["latency_p99_ms"].append(p99[sec] * 1000.0)
        add_fleet_columns(cols, counts, weight, base_weight)
        cols["utilization"].append(utilization(area, capacity))
        cols["phase"].append(phase)
        cols["in_flight"].append(in_flight)
        cols["queued"].append(rec.queued[sec])
    timeline = pd.DataFrame(cols)

    events = [(e.time, e.kind, e.detail) for e in c.events] + list(engine.events) + dependency_events(s)
    release_at = s.release.at if s.release else 0.0
    after = timeline[timeline["t"] >= release_at] if s.release else timeline
    instance_seconds = 0.0
    for inst in engine.instances:
        end = s.duration if inst.stopped_at is None else min(inst.stopped_at, s.duration)
        instance_seconds += max(0.0, end - inst.created_at)
    totals = RunTotals(
        requests=int(sum(rec.offered[:n])),
        attempts=int(sum(rec.offered[:n]) + sum(rec.retried[:n])),
        failed_by={cause: int(sum(rec.failed[cause][:n])) for cause in CAUSES},
        slow=int(sum(rec.slow[:n])),
        latency_mean_s=rec.latency_mean(),
        latency_p50_s=rec.run_latency.quantile(0.50),  # within histogram.RELATIVE_ERROR of the exact quantile
        latency_p99_s=rec.run_latency.quantile(0.99),
        min_ready=float(ready_instances(after).min()) if len(after) else None,
        peak_utilization=float(timeline["utilization"].max()) if len(timeline) else None,
        instance_seconds=instance_seconds,
        queued_attempts=int(sum(rec.queued[:n])),
    )
    # what rolling back code could not fix (e.g. a migration the old version cannot read)
    after_rollback = (
        int(timeline.loc[timeline["t"] >= c.rollback_done_at, "failed"].sum()) if c.rollback_done_at is not None else None
    )
    summary = summarize(s, engine=engine.name, seed=engine.seed, controller=c, totals=totals,
                        bad_release=bool(s.release and s.release.bad), extras={"failed_after_rollback": after_rollback},
                        events=events)
    return Result(summary, timeline, events_frame(events), {"controller": c, "slo_window": s.slo.window})
