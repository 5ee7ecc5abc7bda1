"""The fluid engine: the shared rollout controller over a numpy data plane in one-second ticks, at fleet scale.

`FluidEngine(scenario, seed).run()` returns the same Result as the request
engine; `simulate_batch(scenario, seeds)` runs many replications in lockstep
(arrays of shape (replications, pools) per tick, one RolloutController per
replication) and returns one summary row per run. A replication of a batch
of one is the single run with that seed.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simlab.control import RolloutController, SetWeight, StartInstances, StartMigration, StopInstances
from simlab.engines.effects import Effects
from simlab.engines.fluid_fleet import NEW, OLD, FluidFleet
from simlab.engines.fluid_plane import Plane
from simlab.engines.fluid_timeline import build_result, summary_values
from simlab.engines.traffic import OfferedLoad
from simlab.metrics import visible_until
from simlab.rng import stream
from simlab.scenario import Scenario

SUBSTEPS = 16  # samples of λ(t) within a tick, for the tick's mean rate


class View:
    """One replication's monitoring at the current tick (recorder.MonitoringView's visibility rule)."""

    __slots__ = ("ledger", "rep", "end", "window_len")

    def __init__(self, ledger, rep: int, window_len: float):
        self.ledger, self.rep, self.window_len, self.end = ledger, rep, window_len, 0.0

    def version_window(self, version: str):
        v = OLD if version == "old" else NEW
        return self.ledger.window(self.rep, (v,), self.end - self.window_len, self.end, quantiles=True)

    def total_window(self, seconds: float):
        return self.ledger.total_window(self.rep, self.end - seconds, self.end)


def batch_seed(seeds) -> int:
    """The seed of a batch's shared data-plane stream: the seed itself for a batch of one."""
    seeds = [int(s) for s in seeds]
    if len(seeds) == 1:
        return seeds[0]
    return int(np.random.SeedSequence(seeds).generate_state(1, dtype=np.uint64)[0] >> 1)


def good_release(scenario: Scenario) -> Scenario:
    """The scenario with its release's defects removed: what a good draw ships."""
    if scenario.release is None:
        return scenario
    return scenario.model_copy(update={"release": scenario.release.model_copy(update={"defects": ()})})


class Lockstep:
    """R replications of one scenario advanced tick by tick together."""

    def __init__(self, scenario: Scenario, seeds, p_bad: float | None = None, record: bool = False,
                 exact_control: bool = False):
        s = scenario
        self.s, self.seeds, self.R = s, [int(x) for x in seeds], len(seeds)
        self.exact = exact_control
        self.n = int(math.ceil(s.duration))
        load = OfferedLoad(s)
        sub = (np.arange(self.n)[:, None] + (np.arange(SUBSTEPS) + 0.5)[None, :] / SUBSTEPS).ravel()
        lam = load.rates(sub).reshape(self.n, SUBSTEPS).mean(axis=1) if self.n else np.zeros(0)
        if p_bad is None and s.release is not None:
            p_bad = getattr(s.release, "bad_probability", None)
        if p_bad is None:
            self.bad = np.full(self.R, bool(s.release and s.release.bad))
            kinds = np.ones(self.R, dtype=np.int64)
        else:
            self.bad = np.array([stream(seed, "release").random() < p_bad for seed in self.seeds])
            kinds = self.bad.astype(np.int64)
        effects = [Effects(good_release(s), load), Effects(s, load)]
        arrivals = np.stack([stream(seed, "arrivals").poisson(lam) for seed in self.seeds]) if self.n else np.zeros((self.R, 0))
        self.plane = Plane(s, self.R, stream(batch_seed(self.seeds), "fluid.plane"), effects, kinds, lam,
                           arrivals.astype(np.int64), record)
        self.ledger = self.plane.ledger
        self.fleets = [FluidFleet(s, r, self.plane, effects[kinds[r]], stream(seed, "failures"), stream(seed, "defects"))
                       for r, seed in enumerate(self.seeds)]
        self.controllers = [RolloutController(s) for _ in range(self.R)]
        mon = s.monitoring
        self.views = [View(self.ledger, r, mon.window) for r in range(self.R)]
        self.wake = np.zeros(self.R)
        self.record = record
        self.rows: list[list] = [[] for _ in range(self.R)] if record else []
        for fleet in self.fleets:
            fleet.launch_ready(OLD, s.fleet.instances, 0.0)
        self.next_ev = np.array([f.next_time() for f in self.fleets])

    def _advance(self, until: float, inclusive: bool) -> None:
        due = self.next_ev <= until if inclusive else self.next_ev < until
        for r in np.nonzero(due)[0]:
            fleet = self.fleets[r]
            fleet.advance(until, inclusive)
            self.next_ev[r] = fleet.next_time()

    def run(self) -> "Lockstep":
        s, plane = self.s, self.plane
        mon = s.monitoring
        for t in range(self.n):
            done = (plane.mig == 1) & (plane.mig_done_at <= t)
            if done.any():
                plane.mig[done] = 2
                plane.changed[done] = True
                for r in np.nonzero(done)[0]:
                    self.fleets[r].migration = "done"
            self._advance(float(t), inclusive=True)
            end = visible_until(float(t), mon.scrape_interval, mon.delay)
            due = np.arange(self.R) if self.exact else np.nonzero((self.wake <= t) | plane.changed)[0]
            for r in due:
                self._control(r, t, end)
            plane.live_avg[:] = plane.live
            plane.dead_avg[:] = plane.dead
            plane.tick_end = t + 1.0
            self._advance(t + 1.0, inclusive=False)
            plane.tick(t, self.fleets)
            if self.record:
                for r in range(self.R):
                    c = self.controllers[r]
                    w = plane.weight[r]
                    self.rows[r].append((t, self.fleets[r].snapshot(), None if np.isnan(w) else w * 100.0, c.phase))
        return self

    def _control(self, r: int, t: int, end: float) -> None:
        c, fleet, plane, view = self.controllers[r], self.fleets[r], self.plane, self.views[r]
        view.end = end
        plane.changed[r] = False
        for action in c.tick(float(t), fleet.fleet_state(), view):
            if isinstance(action, StartInstances):
                v = NEW if action.version == "new" else OLD
                for _ in range(action.count):
                    fleet.launch(v, float(t))
                if fleet.leaky_alive:
                    plane.leaky_reps.add(r)
            elif isinstance(action, StopInstances):
                fleet.stop(NEW if action.version == "new" else OLD, action.count, float(t))
            elif isinstance(action, SetWeight):
                plane.weight[r] = np.nan if action.new_percent is None else action.new_percent / 100.0
            elif isinstance(action, StartMigration):
                plane.mig[r] = 1
                plane.mig_done_at[r] = t + self.s.release.migration.duration
                fleet.migration = "running"
                plane.changed[r] = True
        self.next_ev[r] = fleet.next_time()
        self.wake[r] = np.ceil(c.next_wakeup(float(t)) - 1e-9)

    # -- results -------------------------------------------------------------
    def summary(self, r: int) -> dict:
        return summary_values(self, r)

    def result(self, r: int):
        return build_result(self, r)


class FluidEngine:
    """One replication on the fluid engine; same Result shape as the request engine."""

    name = "fluid"

    def __init__(self, scenario: Scenario, seed: int, exact_control: bool = False):
        self.s, self.seed, self.exact = scenario, seed, exact_control

    def run(self):
        return Lockstep(self.s, [self.seed], record=True, exact_control=self.exact).run().result(0)


def simulate_batch(scenario: Scenario, seeds, p_bad: float | None = None) -> pd.DataFrame:
    """R replications in lockstep: one row per seed with every summary key (and `bad_release` as drawn)."""
    sim = Lockstep(scenario, list(seeds), p_bad=p_bad).run()
    return pd.DataFrame([sim.summary(r) for r in range(sim.R)])
