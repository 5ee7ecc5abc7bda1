"""`simlab.capacity`: the smallest `fleet.instances` for which the SLO holds under the stated conditions.

A fleet size is judged on `runs` replications of the steady scenario it serves under the conditions
(`conditions.judged`): it holds when the mean over runs of the run's p99 latency is at most the target and the
mean availability (good requests: succeeded within `slo.latency_threshold`) at least the target. The search:
a lower bound from the offered load (a fleet whose serving workers are busier than 100% on average cannot hold a
latency target), a size that holds found by doubling, bisection between them, then a confirmation at the answer
and one below it with `runs` more replications each (independent seeds), stepping up or down if the pooled runs
disagree. Every size is run on the same seeds (common random numbers), so neighbouring sizes differ by their size.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError, SimulationError
from simlab.experiment.aggregate import mean_interval
from simlab.experiment.replication import as_scenario, replicate
from simlab.planning.conditions import Conditions, judged, serving
from simlab.planning.result import Capacity
from simlab.scenario import Scenario
from simlab.scenario.types import MAX_INSTANCES
from simlab.units import parse_duration

METRICS = ("latency_p99_ms", "availability", "utilization")


def _seconds(value: str | float, name: str) -> float:
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float(value)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{name}: {exc}") from None
    if not seconds > 0:
        raise ScenarioError(f"{name}: expected a duration above 0 (e.g. 300ms), found {value!r}")
    return seconds


class _Judge:
    """Runs and remembers the replications of each fleet size."""

    def __init__(self, s: Scenario, conditions: Conditions, p99_ms: float, availability: float, runs: int,
                 seed: int, engine: str, executor: str, duration: float | None):
        from simlab.dists import from_spec

        self.s, self.conditions, self.p99_ms, self.availability = s, conditions, p99_ms, availability
        self.runs, self.seed, self.engine, self.executor, self.duration = runs, seed, engine, executor, duration
        self.mean_service = from_spec(s.fleet.service_time).mean
        self.frames: dict[int, list[pd.DataFrame]] = {}
        self.order: list[tuple[int, str]] = []

    def _batch(self, n: int, seed: int) -> pd.DataFrame:
        k = serving(self.s, n, self.conditions)
        if k == 0:  # nothing serves: every request fails
            return pd.DataFrame({"instances": n, "serving": 0, "latency_p99_ms": [math.nan] * self.runs,
                                 "availability": 0.0, "utilization": math.nan, "peak_utilization": math.nan})
        point = judged(self.s, k, self.conditions, self.duration)
        runs = replicate(point, runs=self.runs, seed=seed, engine=self.engine, executor=self.executor)
        work = runs["attempts"].to_numpy(float) * self.mean_service
        return pd.DataFrame({
            "instances": n, "serving": k, "latency_p99_ms": runs["latency_p99_ms"].to_numpy(float),
            "availability": 100.0 * (1.0 - runs["bad_fraction"].to_numpy(float)),
            "utilization": work / (point.duration * k * point.fleet.workers),
            "peak_utilization": runs["peak_utilization"].to_numpy(float),
        })

    def runs_of(self, n: int, batches: int, stage: str) -> pd.DataFrame:
        done = self.frames.setdefault(n, [])
        if not done:
            self.order.append((n, stage))
        while len(done) < batches:
            done.append(self._batch(n, self.seed + len(done)))
        return pd.concat(done, ignore_index=True)

    def holds(self, n: int, batches: int = 1, stage: str = "bisection") -> bool:
        return self.verdict(self.runs_of(n, batches, stage))

    def verdict(self, runs: pd.DataFrame) -> bool:
        p99 = runs["latency_p99_ms"].to_numpy(float)
        if np.isnan(p99).any():  # a run with no request served in time has no p99 to hold
            return False
        return bool(p99.mean() <= self.p99_ms and runs["availability"].mean() >= self.availability)

    def table(self) -> pd.DataFrame:
        rows = []
        stages = dict(self.order)
        for n in sorted(self.frames):
            runs = pd.concat(self.frames[n], ignore_index=True)
            row = {"instances": n, "serving": int(runs["serving"].iloc[0]), "runs": len(runs)}
            for name in METRICS:
                row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean_interval(runs[name])
            row["availability_hi"] = min(row["availability_hi"], 100.0)  # a share: its interval stops at 100%
            row["availability_lo"] = max(row["availability_lo"], 0.0)
            row["peak_utilization"] = float(runs["peak_utilization"].mean())
            row["holds"], row["stage"] = self.verdict(runs), stages[n]
            rows.append(row)
        return pd.DataFrame(rows)


def _lower_bound(judge: _Judge) -> int:
    """The largest size known to fail: its serving workers are busier than 100% on average (0 if none is)."""
    from simlab.engines.traffic import OfferedLoad

    probe = judged(judge.s, 1, judge.conditions, judge.duration)
    load = OfferedLoad(probe).mean_rate(probe.duration) * judge.mean_service / judge.s.fleet.workers
    n = 0
    while n + 1 <= MAX_INSTANCES and serving(judge.s, n + 1, judge.conditions) <= load:
        n += 1
    return n


def _search(judge: _Judge, start: int) -> int:
    lo = _lower_bound(judge)
    hi = max(lo + 1, start)
    while not judge.holds(hi, stage="doubling"):
        lo = hi
        if hi >= MAX_INSTANCES:
            raise SimulationError(f"{judge.s.name}: no fleet of up to {MAX_INSTANCES:,} instances holds p99 "
                                  f"<= {judge.p99_ms:g} ms and availability >= {judge.availability:g}% under "
                                  f"{judge.conditions.describe()}")
        hi = min(MAX_INSTANCES, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if judge.holds(mid):
            hi = mid
        else:
            lo = mid
    answer = hi  # confirmation: twice the runs at the answer and one below, stepping while they disagree
    while not judge.holds(answer, 2, "confirmation"):
        answer += 1
    while answer > 1 and judge.holds(answer - 1, 2, "confirmation"):
        answer -= 1
    return answer


def capacity(
    scenario: Scenario | str | Path,
    p99: str | float,
    availability: float | None = None,
    during_rollout: bool = False,
    zone_down: bool = False,
    at_peak: bool = False,
    runs: int = 20,
    seed: int = 0,
    engine: str = "fluid",
    executor: str = "auto",
    duration: str | float | None = None,
    sizes: Iterable[int] = (),
) -> Capacity:
    """The smallest fleet.instances that keeps p99 latency at most `p99` (e.g. "300ms") and availability at least
    `availability` percent (default: the scenario's slo.availability) under the conditions, all at once.

    `runs` replications per size (twice that at the answer and one below); `duration` shortens the judged runs
    (default: the scenario's); `sizes` are judged as well, for a profile of the curve (`.plot()`). The `auto`
    executor runs the fluid engine in this process (its runs of a size are one lockstep batch, which a pool
    would not split) and the request engine on the local pool.
    """
    s = as_scenario(scenario)
    if executor == "auto":
        executor = "serial" if engine == "fluid" else "local"
    conditions = Conditions(during_rollout, zone_down, at_peak)
    conditions.check(s)
    target = _seconds(p99, "p99")
    avail = s.slo.availability if availability is None else float(availability)
    if not 0 < avail < 100:
        raise ScenarioError(f"availability: expected a percentage between 0 and 100 (e.g. 99.9), found {availability!r}")
    from simlab.dists import from_spec

    floor = from_spec(s.fleet.service_time).quantile(0.99)
    if floor >= target:
        raise ScenarioError(f"p99: the service time alone has a p99 of {floor * 1000:g} ms, at or above the "
                            f"target {target * 1000:g} ms: no fleet size is fast enough")
    judge = _Judge(s, conditions, target * 1000.0, avail, runs, seed, engine, executor,
                   None if duration is None else _seconds(duration, "duration"))
    answer = _search(judge, s.fleet.instances)
    for n in sizes:
        judge.runs_of(int(n), 1, "profile")
    meta = {"scenario": s.name, "engine": engine, "seed": seed, "runs": runs, "executor": executor,
            "duration_s": judge.duration or s.duration, "probes": [n for n, _ in judge.order]}
    return Capacity(answer, judge.table(), {"latency_p99_ms": target * 1000.0, "availability": avail},
                    conditions, meta)
