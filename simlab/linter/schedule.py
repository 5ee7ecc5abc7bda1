"""The rollout of a good release as the controller would run it, in closed form: when each step starts, when its
share of traffic reaches the new version, when it ends, and when the analysis measures.

Every measurement is assumed to pass (a good release), so a gated bake ends at its bake time or at the first
measurement after it began, whichever is later, as `simlab/control/plans.py` and the controller decide. New
instances are up `fleet.startup` after they are asked for and in rotation after `healthy_after` health checks
more; every plan waits for the instances it asked for to be in rotation before it moves traffic or goes on (a
canary step for its instances, a rolling round for its batch, blue-green for the green fleet), so each wait is
start-up plus those checks. Times are seconds of the
run. This is a schedule for a linter's arithmetic, not a simulation: crashes, retries and queues are left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simlab.scenario import Scenario
from simlab.scenario.strategy import BigBang, BlueGreen, Canary, Rolling
from simlab.scenario.types import resolve_count


@dataclass(frozen=True)
class Stage:
    """A stretch of the rollout with one share of traffic on the new version."""

    field: str  # where the stage is written: strategy.steps[1], strategy.batch, strategy.keep_old
    label: str  # step 1 (10%), batch 2 (10 of 20), green
    start: float  # its instances are asked for
    traffic_at: float  # its share reaches the new version
    share: float  # fraction of requests on the new version from traffic_at
    bake: float
    end: float  # the next stage starts (or the rollout is promoted)
    judged: bool  # the analysis runs during it and gates it


@dataclass(frozen=True)
class Schedule:
    stages: tuple[Stage, ...]
    analysis_from: float | None  # the analysis is switched on (None: no analysis)
    analysis_until: float | None
    interval: float | None
    promoted_at: float
    baseline_at: float  # the controller keeps the old version's window at the release's start

    @property
    def measurements(self) -> np.ndarray:
        """Times of the analysis measurements: every interval after it is switched on, until it is switched off."""
        if self.analysis_from is None:
            return np.zeros(0)
        count = int(math.floor((self.analysis_until - self.analysis_from) / self.interval + 1e-9))
        return self.analysis_from + self.interval * np.arange(1, count + 1)

    def share(self, t: np.ndarray) -> np.ndarray:
        """Fraction of requests on the new version at each time."""
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        for stage in self.stages:  # later stages overwrite earlier ones from their traffic_at
            out = np.where(t >= stage.traffic_at, stage.share, out)
        return out

    def stage_at(self, t: float) -> Stage | None:
        current = None
        for stage in self.stages:
            if t >= stage.traffic_at:
                current = stage
        return current


def analysed(s: Scenario) -> bool:
    """Whether measurements gate this rollout: acting metrics, a strategy with analysis, not a big bang."""
    spec = s.analysis
    return (spec is not None and bool(spec.acting) and not isinstance(s.strategy, BigBang)
            and bool(getattr(s.strategy, "analysis", False)))


def schedule(s: Scenario) -> Schedule | None:
    """The good release's rollout (None without a release)."""
    if s.release is None:
        return None
    fleet, strategy = s.fleet, s.strategy
    rotation = fleet.health_check.healthy_after * fleet.health_check.interval  # checks after it is up
    up = fleet.startup + rotation  # asked for -> in rotation: what every plan waits for
    t0 = s.release.at + (s.release.migration.duration if s.release.migration is not None else 0.0)
    gate = analysed(s)
    interval = s.analysis.interval if gate else None

    def passed_after(x: float, since: float) -> float:
        """The first measurement at or after x of an analysis switched on at `since`."""
        return since + interval * max(1, math.ceil((x - since) / interval - 1e-9))

    if isinstance(strategy, Canary):
        stages, t, alive, n = [], t0, 0, fleet.instances
        for i, step in enumerate(strategy.steps):
            want = n if step.weight >= 100 else max(1, math.ceil(n * step.weight / 100))
            ready = t + up if want > alive else t  # the weight moves once the step's instances are in rotation
            traffic, end = ready, ready
            if step.bake > 0:
                end = max(ready + step.bake, passed_after(ready, t0)) if gate else ready + step.bake
            stages.append(Stage(f"strategy.steps[{i}]", f"step {i} ({step.weight:g}%)", t, traffic,
                                step.weight / 100, step.bake, end, gate and step.bake > 0))
            alive, t = max(alive, want), end
        return Schedule(tuple(stages), t0 if gate else None, t if gate else None, interval, t, s.release.at)
    if isinstance(strategy, Rolling):
        n = fleet.instances
        surge = resolve_count(strategy.max_surge, n, round_up=True)
        unavailable = resolve_count(strategy.max_unavailable, n, round_up=False)
        per_round = max(1, surge + unavailable) if surge or unavailable else 1
        batch = max(1, resolve_count(strategy.batch, n, round_up=True))
        stages, t, target, k = [], t0, 0, 0
        while target < n:
            new = min(n, target + batch) - target
            target += new
            ready = t + math.ceil(new / per_round) * up
            end = max(ready + strategy.bake, passed_after(ready, t0)) if gate else ready + strategy.bake
            stages.append(Stage("strategy.batch", f"batch {k} ({target} of {n})", t, ready, target / n,
                                strategy.bake, end, gate))
            t, k = end, k + 1
        return Schedule(tuple(stages), t0 if gate else None, t if gate else None, interval, t, s.release.at)
    if isinstance(strategy, BlueGreen):
        switch = t0 + up + strategy.warmup
        until = switch + strategy.keep_old
        stage = Stage("strategy.keep_old", "green", t0, switch, 1.0, strategy.keep_old,
                      until, gate)
        return Schedule((stage,), switch if gate else None, until if gate else None, interval, switch, s.release.at)
    stage = Stage("strategy.kind", "every instance replaced", t0, t0 + up, 1.0, 0.0, t0 + up, False)
    return Schedule((stage,), None, None, None, t0 + up, s.release.at)
