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
from simlab.engines.fluid import single
from simlab.engines.fluid.common_draws import Uniforms, slots
from simlab.engines.fluid.fleet import FluidFleet
from simlab.engines.versions import OLD, index
from simlab.engines.fluid.ledger import BLOCK_MAX
from simlab.engines.fluid.monitoring import Monitoring, View
from simlab.engines.fluid.plane import Plane
from simlab.engines.fluid.result import build_result, run_summary
from simlab.engines.traffic import OfferedLoad
from simlab.metrics import visible_until
from simlab.rng import stream
from simlab.scenario import Scenario

SUBSTEPS = 16  # samples of λ(t) within a tick, for the tick's mean rate


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
                 exact_control: bool = False, releases: list[Scenario] | None = None):
        """`releases`: each replication's concrete scenario (as draw_release makes it: good or bad, its drawn
        defects), which may differ from `scenario` only in its release; else the release is drawn with p_bad
        (or the scenario's bad_probability) between the scenario's and a good one."""
        s = scenario
        self.s, self.seeds, self.R = s, [int(x) for x in seeds], len(seeds)
        self.exact = exact_control
        self.n = int(math.ceil(s.duration))
        load = OfferedLoad(s)
        sub = (np.arange(self.n)[:, None] + (np.arange(SUBSTEPS) + 0.5)[None, :] / SUBSTEPS).ravel()
        lam = load.rates(sub).reshape(self.n, SUBSTEPS).mean(axis=1) if self.n else np.zeros(0)
        if releases is not None:  # one Effects per distinct concrete release, in order of first use
            distinct: dict[str, int] = {}
            concretes, kinds = [], np.zeros(self.R, dtype=np.int64)
            for r, c in enumerate(releases):
                key = c.model_dump_json()
                if key not in distinct:
                    distinct[key] = len(concretes)
                    concretes.append(c)
                kinds[r] = distinct[key]
            self.bad = np.array([bool(c.release is not None and c.release.bad) for c in releases])
            effects = [Effects(c, load) for c in concretes]
        else:
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
                           arrivals.astype(np.int64), record, Uniforms(self.seeds, slots(s.traffic.retries.max)))
        self.ledger = self.plane.ledger
        self.fleets = [FluidFleet(s, r, self.plane, effects[kinds[r]], stream(seed, "failures"), stream(seed, "defects"))
                       for r, seed in enumerate(self.seeds)]
        self.controllers = [RolloutController(s) for _ in range(self.R)]
        mon = s.monitoring
        self.monitoring = Monitoring(self.ledger, mon.window, self.seeds)  # the due replications' windows, computed together
        self.views = [View(self.monitoring, r) for r in range(self.R)]
        self.wake = np.zeros(self.R)
        self.wake_other = np.zeros(self.R)  # the controller's next wake leaving out its alert check
        self.alert_at = np.full(self.R, np.inf)  # its next alert check
        alert = s.slo.alert
        self.alert_rule = (alert.long_window, alert.short_window, alert.burn_rate, 1.0 - s.slo.availability / 100.0)
        self.quiet_checks = 0  # alert checks found quiet here instead of by a controller tick
        self.trace: dict = {"quiet": [], "acted": set()}  # (rep, second) pairs, kept when recording
        self.block_ticks = 0  # ticks drawn in blocks (Plane.tick_block), for tests and profiles
        self.record = record
        self.rows: list[list] = [[] for _ in range(self.R)] if record else []
        self.snaps: list = [None] * self.R  # each fleet's last snapshot, until its instances may have moved
        for fleet in self.fleets:
            fleet.launch_ready(OLD, s.fleet.instances, 0.0)
        self.next_ev = np.array([f.next_time() for f in self.fleets])

    def _advance(self, until: float, inclusive: bool) -> None:
        if single.scalar(self.R):  # one replication: the same test on its fleet's next event as a float
            nxt = self.next_ev.item(0)
            if nxt <= until if inclusive else nxt < until:
                self.fleets[0].advance(until, inclusive)
                self.snaps[0] = None
                self.next_ev[0] = self.fleets[0].next_time()
            return
        due = self.next_ev <= until if inclusive else self.next_ev < until
        for r in np.nonzero(due)[0]:
            fleet = self.fleets[r]
            fleet.advance(until, inclusive)
            self.next_ev[r] = fleet.next_time()
            self.snaps[r] = None

    def run(self) -> "Lockstep":
        s, plane = self.s, self.plane
        mon = s.monitoring
        t = 0
        one = single.scalar(self.R)  # a single run: tests below read its one element first (the same comparisons)
        while t < self.n:
            done = (plane.mig == 1) & (plane.mig_done_at <= t) if not one or plane.mig.item(0) == 1 else None
            if done is not None and np.count_nonzero(done):
                plane.mig[done] = 2
                plane.changed[done] = True
                for r in np.nonzero(done)[0]:
                    self.fleets[r].migration = "done"
            self._advance(float(t), inclusive=True)
            end = visible_until(float(t), mon.scrape_interval, mon.delay)
            if self.exact:
                due = np.arange(self.R)
            elif one and not (self.wake.item(0) <= t or plane.changed.item(0)):
                due = ()
            else:
                due_mask = (self.wake <= t) | plane.changed
                quiet = self._quiet_alerts(t, end, due_mask) if np.count_nonzero(due_mask) else None
                due = () if quiet is None else np.nonzero(due_mask & ~quiet)[0]
            self.monitoring.open(due)
            for r in due:
                self._control(r, t, end)
            plane.live_avg[:] = plane.live
            plane.dead_avg[:] = plane.dead
            plane.tick_end = t + 1.0
            self._advance(t + 1.0, inclusive=False)
            k, quiet = self._through_quiet_alerts(t, self._block_length(t))
            if k > 1 and plane.tick_block(t, k):
                self._commit_quiet(quiet)
                self._quiet_seconds(t, k)
                self.block_ticks += k
            else:
                k = 1
                plane.tick(t, self.fleets)
            if self.record:
                for r in range(self.R):
                    c, w, snap = self.controllers[r], plane.weight[r], self.snaps[r] or self._snapshot(r)
                    b = plane.base_weight[r] * 100.0
                    self.rows[r] += [(u, snap, None if np.isnan(w) else w * 100.0, c.phase, b) for u in range(t, t + k)]
            t += k
        return self

    def _block_length(self, t: int, wake: np.ndarray | None = None) -> int:
        """Ticks from t on in which no replication has a fleet event, a controller wake or a migration end.

        Computed from deadlines only (not from which controllers were ticked), so ticking every
        controller every second gives the same blocks and the same draws.
        """
        plane = self.plane
        if np.count_nonzero(plane.changed):
            return 1
        wake = self.wake if wake is None else wake
        if single.scalar(self.R):  # the same minimum of the same values, read as floats
            end = min(t + BLOCK_MAX, self.n, wake.item(0), np.floor(self.next_ev.item(0)))
        else:
            end = min(t + BLOCK_MAX, self.n, wake.min(), np.floor(self.next_ev.min()))
        running = plane.mig == 1
        if np.count_nonzero(running):
            end = min(end, np.ceil(plane.mig_done_at[running].min()))
        return max(1, int(end) - t)

    def _through_quiet_alerts(self, t: int, k: int) -> tuple[int, tuple]:
        """Lengthen a block across alert checks already known to be quiet.

        A check at u sees monitoring data up to visible_until(u); when that is at most t, the data were
        drawn before this block, so the check can be judged now, exactly as it would be at u. While the
        block stops only for such checks and none may fire, it goes on to the next stop. The decision reads
        deadlines and data only, so exact control (every controller ticked every second) makes the same
        blocks; there the controllers make the checks themselves, elsewhere `_commit_quiet` records them
        once the block is drawn.
        """
        mon, plane = self.s.monitoring, self.plane
        if single.scalar(self.R):  # the loop's first stops below, read as floats: most blocks end there
            u = t + k
            if not u < min(t + BLOCK_MAX, self.n) or plane.changed.item(0) or not self.wake.item(0) <= u \
                    or self.wake_other.item(0) <= u or self.alert_at.item(0) > u:
                return k, ((), None, None)
        wake, alert_at, checks = self.wake.copy(), self.alert_at.copy(), []
        while t + k < min(t + BLOCK_MAX, self.n) and not np.count_nonzero(plane.changed):
            u = t + k
            due = wake <= u
            if not np.count_nonzero(due) or (due & ((self.wake_other <= u) | (alert_at > u))).any():
                break  # stopped by a fleet event, a migration, or a wake other than an alert check
            end = visible_until(float(u), mon.scrape_interval, mon.delay)
            if end > t or (self._may_fire(end) & due).any():
                break  # not decidable yet, or one may fire: its controller is ticked at u as usual
            idx = np.nonzero(due)[0]
            self._checked_quiet(idx, u, wake, alert_at)
            checks.append((u, idx))
            k = self._block_length(t, wake)
        return k, (checks, wake, alert_at)

    def _commit_quiet(self, quiet: tuple) -> None:
        """Record the alert checks a block was drawn across (see _through_quiet_alerts)."""
        checks, wake, alert_at = quiet
        if not checks or self.exact:
            return
        last = np.full(self.R, -1)  # each replication's last quiet check in the block
        for u, idx in checks:
            last[idx] = u
            self.quiet_checks += len(idx)
            if self.record:
                self.trace["quiet"] += [(int(r), u) for r in idx]
        # A quiet check only schedules the next one (alert_checked_quiet), so the last check of each
        # replication leaves its controller as all of them in turn would.
        told = np.flatnonzero(last >= 0)
        for r, u in zip(told.tolist(), last[told].tolist()):
            self.controllers[r].alert_checked_quiet(float(u))
        self.wake, self.alert_at = wake, alert_at

    def _checked_quiet(self, idx, u: float, wake: np.ndarray, alert_at: np.ndarray) -> None:
        """After a quiet alert check at u: the next check a scrape later, the wake the earlier of it and the rest
        (as `alert_checked_quiet` schedules it in the controller)."""
        alert_at[idx] = u + self.s.monitoring.scrape_interval
        wake[idx] = np.minimum(self.wake_other[idx], np.ceil(np.maximum(alert_at[idx], u + 1.0) - 1e-9))

    def _may_fire(self, end: float) -> np.ndarray:
        """Replications whose burn-rate alert may fire on the windows ending at `end` (within 1e-9)."""
        long_s, short_s, threshold, budget = self.alert_rule
        if single.scalar(self.R):  # the same test in Python numbers (int / int divides as numpy's doubles do below 2**53)
            fire = True
            for seconds in (long_s, short_s):
                requests, errors, slow = self.ledger.total_counts(end - seconds, end)[0].tolist()
                burn = ((errors + slow) / requests if requests > 0 else 0.0) / budget
                fire = fire and requests > 0 and burn >= threshold * (1.0 - 1e-9)
            return np.array([fire])
        may_fire = np.ones(self.R, dtype=bool)
        for seconds in (long_s, short_s):
            counts = self.ledger.total_counts(end - seconds, end)
            requests = counts[:, 0]
            burn = np.divide(counts[:, 1] + counts[:, 2], requests, out=np.zeros(self.R), where=requests > 0) / budget
            may_fire &= (requests > 0) & (burn >= threshold * (1.0 - 1e-9))
        return may_fire

    def _quiet_seconds(self, t: int, k: int) -> None:
        """Inside a block, tick every controller each second if asked to (exact control); none may act."""
        if not self.exact:
            return
        mon = self.s.monitoring
        for u in range(t + 1, t + k):
            end = visible_until(float(u), mon.scrape_interval, mon.delay)
            self.monitoring.open(np.arange(self.R))
            for r in range(self.R):
                if self._control(r, u, end):
                    raise RuntimeError(f"replication {r}'s controller acted at {u}s inside a block of unchanged ticks")

    def _quiet_alerts(self, t: int, end: float, due: np.ndarray) -> np.ndarray:
        """Replications due only for an alert check that cannot fire: checked here for all at once.

        Their controllers' ticks would only schedule the next check (`alert_checked_quiet`); a window
        within a relative 1e-9 of the threshold is left to the controller to judge.
        """
        plane = self.plane
        cand = due & ~plane.changed & (self.wake_other > t) & (self.alert_at <= t)
        if not np.count_nonzero(cand):
            return cand
        quiet = cand & ~self._may_fire(end)
        idx = np.nonzero(quiet)[0]
        for r in idx:
            self.controllers[r].alert_checked_quiet(float(t))
        self._checked_quiet(idx, t, self.wake, self.alert_at)
        self.quiet_checks += len(idx)
        if self.record:
            self.trace["quiet"] += [(int(r), t) for r in idx]
        return quiet

    def _control(self, r: int, t: int, end: float) -> int:
        """Tick replication r's controller at t and carry out its actions; returns how many there were."""
        c, fleet, plane, view = self.controllers[r], self.fleets[r], self.plane, self.views[r]
        self.snaps[r] = None  # actions may start or stop instances
        view.end = end
        plane.changed[r] = False
        n_events = len(c.events)
        actions = c.tick(float(t), fleet.fleet_state(), view)
        if self.record and (actions or len(c.events) > n_events):
            self.trace["acted"].add((r, t))
        for action in actions:
            if isinstance(action, StartInstances):
                fleet.launch_many(index(action.version), action.count, float(t))
                if fleet.leaky_alive:
                    plane.leaky_reps.add(r)
            elif isinstance(action, StopInstances):
                fleet.stop(index(action.version), action.count, float(t))
            elif isinstance(action, SetWeight):
                plane.weight[r] = np.nan if action.new_percent is None else action.new_percent / 100.0
                plane.base_weight[r] = action.baseline_percent / 100.0
            elif isinstance(action, StartMigration):
                plane.mig[r] = 1
                plane.mig_done_at[r] = t + self.s.release.migration.duration
                fleet.migration = "running"
                plane.changed[r] = True
        self.next_ev[r] = fleet.next_time()
        # next_wakeup(t) is the earlier of its wake without the alert check and that check (or t + 1)
        self.wake_other[r] = other = np.ceil(c.next_wakeup(float(t), alert=False) - 1e-9)
        self.alert_at[r] = alert = c.next_alert_check()
        self.wake[r] = min(other, np.ceil(max(alert, t + 1.0) - 1e-9))
        return len(actions)

    def _snapshot(self, r: int) -> dict:
        self.snaps[r] = self.fleets[r].snapshot()
        return self.snaps[r]

    # -- results -------------------------------------------------------------
    def summary(self, r: int) -> dict:
        return run_summary(self, r).values

    def result(self, r: int):
        return build_result(self, r)


class FluidEngine:
    """One replication on the fluid engine; same Result shape as the request engine."""

    name = "fluid"

    def __init__(self, scenario: Scenario, seed: int, exact_control: bool = False):
        self.s, self.seed, self.exact = scenario, seed, exact_control

    def run(self):
        return Lockstep(self.s, [self.seed], record=True, exact_control=self.exact).run().result(0)


def simulate_batch(scenario: Scenario, seeds, p_bad: float | None = None,
                   releases: list[Scenario] | None = None) -> pd.DataFrame:
    """R replications in lockstep: one row per seed with every summary key (and `bad_release` as drawn);
    `releases` gives each replication's concrete scenario (see Lockstep)."""
    sim = Lockstep(scenario, list(seeds), p_bad=p_bad, releases=releases).run()
    return pd.DataFrame([sim.summary(r) for r in range(sim.R)])
