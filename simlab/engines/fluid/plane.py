"""The fluid data plane: one tick of R replications as numpy arrays of shape (R, pools).

Per tick: Poisson arrivals (drawn up front per replication), a split over
(old live, old dead, new live, new dead, no backend) as the load balancer
would make it (routing.py), binomial rejections, timeouts and errors, retries
within the token budget, and a queue per version pool: a station (station.py)
whose mean number in system moves toward the stationary law of the tick's
arrival rate, and whose law at that state gives the tick's rejections,
timeouts and waits. Latency is kept as CDFs on the grid of latency.py;
effect states shared by many replications are cached.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from simlab.engines.versions import NEW, RUNS, version_count
from simlab.engines.fluid.common_draws import ranks
from simlab.engines.fluid.latency import NO_WAIT, LatencyModel
from simlab.engines.fluid import single
from simlab.engines.fluid.ledger import Ledger
from simlab.engines.fluid.memo import ArrayMemo, ElementMemo
from simlab.engines.fluid.routing import Router, split
from simlab.engines.fluid.slowdown import pool_slowdown
from simlab.engines.fluid.station_tables import SETTLED, Stations, pool_kinds
from simlab.scenario.release import Dependency

MIGRATION = ("none", "running", "done")


class Plane:
    def __init__(self, scenario, reps: int, rng, effects: list, kinds: np.ndarray, lam: np.ndarray,
                 arrivals: np.ndarray, record: bool, uniforms):
        s, fleet, traffic = scenario, scenario.fleet, scenario.traffic
        self.s, self.R, self.rng = s, reps, rng
        self.effects, self.kinds = effects, kinds  # Effects per kind (a release: good, bad, drawn); kind per rep
        self.lam, self.arrivals = lam, arrivals
        self.workers, self.queue_limit, self.timeout = fleet.workers, fleet.queue_limit, traffic.timeout
        self.retries = traffic.retries
        self.balancer = fleet.load_balancer
        self.redispatch = bool(getattr(fleet, "redispatch", False))
        self.pooled = self.balancer in ("least_outstanding", "power_of_two")
        self.model = LatencyModel(fleet.service_time, s.slo.latency_threshold, traffic.timeout)
        self.V = V = version_count(s)  # version pools: old, new (and a canary's baseline)
        self.live_cols = list(range(0, 2 * V, 2))  # each pool's live column in the router's shares
        z = lambda: np.zeros((reps, V))  # noqa: E731
        self.live, self.dead, self.up = z(), z(), z()
        self.live_avg, self.dead_avg = z(), z()
        self.lq = z()  # requests waiting in each version's pool (mean)
        self.L = z()  # requests in each version's pool, waiting or in service (mean): the queue's state
        self.stations = Stations.shared()
        self._responses: dict = {}
        self.held_reset = z()  # in-flight work failed by crashes this tick
        self.last_mean = np.full((reps, V), self.model.dist.mean)
        self.last_rate = z()
        self.weight = np.full(reps, np.nan)
        self.base_weight = np.zeros(reps)  # the canary baseline's share (versions.BASELINE)
        self.mig = np.zeros(reps, dtype=np.int64)
        self.mig_done_at = np.full(reps, np.inf)
        self.changed = np.ones(reps, dtype=bool)  # the controller's FleetState may differ
        self.tick_end = 0.0
        self.tokens = np.full(reps, max(10.0, self.retries.budget * traffic.rps * 10.0))
        self.token_cap = self.tokens[0]
        self.retry_factor = np.zeros(reps)
        self.leak = np.ones((reps, V))
        self.leaky_reps: set = set()
        self.warming: dict = {}  # replication -> when its last instance to come up is warm (fleet.warmup)
        self._keys: dict = {}
        self._table: list = []
        self._grow_table()
        self.ledger = Ledger(scenario, reps, self.model, record, uniforms)
        # Most ticks change nothing a formula reads: cache what only depends on slowly changing inputs.
        self._kind_memo = ElementMemo(functools.partial(pool_kinds, self))
        self._law_memo = ArrayMemo(self.stations.law)
        self.router = Router(reps=reps, balancer=self.balancer, workers=self.workers, redispatch=self.redispatch,
                             versions=V)
        self._share_memo = ArrayMemo(self.router.shares)
        times = [_effect_change_times(fx.scenario) for fx in effects]  # each kind's release (a mixed batch)
        self._effect_times = None if None in times else sorted(set().union(*times))
        self._ek: tuple | None = None  # (combo, keys, valid until)

    # -- effect states, cached by key ----------------------------------------
    def _grow_table(self) -> None:
        rows = self._table
        self.k_mean = np.array([r[0] for r in rows] or [0.0])
        self.k_scv = np.array([r[1] for r in rows] or [0.0])
        self.k_err = np.array([r[2] for r in rows] or [0.0])
        self.k_cdf = np.array([r[3] for r in rows]) if rows else np.zeros((1, len(self.model.grid)))
        self.k_at_t, self.k_at_s = self.k_cdf[:, self.model.i_timeout], self.k_cdf[:, self.model.i_threshold]

    def key(self, eff) -> int:
        k = self._keys.get(eff)
        if k is None:
            comps, mean, scv, cdf = self.model.service(eff)
            k = self._keys[eff] = len(self._table)
            self._table.append((mean, scv, eff.error, cdf, eff))
            self._grow_table()
        return k

    def effect_keys(self, t: int) -> np.ndarray:
        """(R, V) key of the effect state each replication's versions are in at second t.

        Effects change only with the migration state and at a few known seconds (defect onsets,
        dependency failures), so the keys of one second hold until the next of those.
        """
        combo = self.kinds * 3 + self.mig
        if self._ek is not None and t < self._ek[2] and combo.tobytes() == self._ek[0].tobytes():  # (R,) ints
            return self._ek[1]
        times = self._effect_times
        until = t + 1 if times is None else min([x for x in times if x > t], default=math.inf)
        self._ek = (combo, self._effect_keys(t, combo), until)
        return self._ek[1]

    def _effect_keys(self, t: int, combo: np.ndarray) -> np.ndarray:
        out = np.empty((self.R, self.V), dtype=np.int64)
        for c in np.unique(combo):
            fx = self.effects[c // 3]
            mask = combo == c
            for v in range(self.V):
                out[mask, v] = self.key(fx.at(RUNS[v], float(t), MIGRATION[c % 3]))
        return out

    # -- called by the fleet -------------------------------------------------
    def fleet_changed(self, rep, version, dlive, ddead, dup, t, visible) -> None:
        """Counts moved at time t; mid-tick changes weigh into the tick's averages by the share of the tick left."""
        if dup:
            self.up[rep, version] += dup
        if dlive or ddead:  # adding zero changes nothing: skip the scalar array updates
            w = min(1.0, max(0.0, self.tick_end - t))
            if dlive:
                self.live[rep, version] += dlive
                self.live_avg[rep, version] += dlive * w
            if ddead:
                self.dead[rep, version] += ddead
                self.dead_avg[rep, version] += ddead * w
        if visible:  # alive or in-rotation counts moved: the controller's FleetState differs
            self.changed[rep] = True

    def fleet_changed_many(self, rep, version, dlive, ddead, dup, times, visible) -> None:
        """fleet_changed(rep, version, dlive[i], ddead[i], 0, times[i], visible) for each i in turn, and `up` by
        dup: the tick's averages add each weighted change in that order (np.cumsum adds in sequence)."""
        if dup:
            self.up[rep, version] += dup
        w = np.minimum(1.0, np.maximum(0.0, self.tick_end - times))
        for count, avg, d in ((self.live, self.live_avg, dlive), (self.dead, self.dead_avg, ddead)):
            moved = None if d is None else np.flatnonzero(d)
            if moved is not None and len(moved):
                count[rep, version] += d[moved].sum()
                avg[rep, version] = np.cumsum(np.concatenate(([avg[rep, version]], d[moved] * w[moved])))[-1]
        if visible:
            self.changed[rep] = True

    def fail_held(self, rep, version, t) -> None:
        """A crash fails what one instance holds: its share of the pool's in-service and queued work."""
        n = max(self.live[rep, version], 1.0)
        share = self.L[rep, version] / n
        self.held_reset[rep, version] += share
        self.L[rep, version] -= share
        self.lq[rep, version] -= self.lq[rep, version] / n

    # -- the queue of each version pool --------------------------------------
    def queue_step(self, keys, lam_v, h: float = 1.0):
        """Move each pool's queue through one tick at arrival rate lam_v; the law its arrivals meet (R = 1:
        single.queue_step)."""
        n_live = self.live_avg
        kinds, per, cmu = self._kind_memo(keys, self.leak, np.maximum(n_live, 1e-9))
        live = n_live > 1e-9
        u = self.stations.u_of(lam_v / per / cmu)
        L_ss = self.stations.level(kinds, u)
        if (np.abs(self.L / per - L_ss) > SETTLED * np.maximum(L_ss, 1.0)).any():  # a queue still moving
            L1, u = self.stations.step(kinds, self.L / per, lam_v / per, cmu, h)
        else:
            L1 = L_ss
        law = self.stations.law(kinds, u)
        self.L = np.where(live, L1 * per, 0.0)
        self.lq = np.where(live, law["Lq"] * per, 0.0)
        return law

    def tick(self, t: int, fleets) -> None:
        if single.scalar(self.R):  # a single run: the same tick in Python numbers where its arrays have one row
            return single.tick(self, t, fleets)
        R = self.R
        rng = self.rng
        led = self.ledger
        A = self.arrivals[:, t]
        keys = self.effect_keys(t)
        mean, scv, err = self.service_at(t, fleets, keys)
        lam_att = self.lam[t] * (1.0 + self.retry_factor)
        share = self._share_memo(lam_att, self.live_avg, self.dead_avg, self.weight, self.last_mean, self.base_weight)
        lam_v = lam_att[:, None] * share[:, self.live_cols]
        law = self.queue_step(keys, lam_v)
        pw, p_rej = law["pw"], law["B"]
        lat_keys, cdfs, p_to, p_slow, mean_latency = self._latency(keys, law, by_key=False)
        led.set_latency(lat_keys, (pw < NO_WAIT) & (self.leak == 1.0), cdfs, self, mean_latency)
        # -- draws: split, outcomes, retries -----------------------------------------
        led.begin_tick(t, A, ranks(share[:, self.live_cols]))
        self.tokens = np.minimum(self.token_cap, self.tokens + self.retries.budget * A)
        attempts = A.astype(np.int64)
        for level in range(self.retries.max + 1):
            failed = led.outcomes(split(rng, attempts, share), p_rej, p_to, err, p_slow, rng, level)
            if level < self.retries.max:
                attempts = led.retry(failed, self.tokens, level)
                self.tokens = self.tokens - attempts
                if not np.count_nonzero(attempts):
                    break
            else:
                led.final(failed)
        retried = led.crash_failures(self.held_reset, self.tokens if self.retries.max else None)
        self.tokens = self.tokens - retried
        self.held_reset[:] = 0.0
        self.retry_factor = np.divide(led.tick_attempts - A, np.maximum(A, 1), out=np.zeros(R))
        self.last_mean, self.last_rate = mean, lam_v
        led.end_tick(t, mean, pw, self.L.sum(axis=1), self.up, self.live)

    def service_at(self, t: int, fleets, keys):
        """(R, V) mean, SCV and error rate of each pool's service at tick t, with its slowdown (leak, warm-up)."""
        mean, scv, err = self.k_mean[keys], self.k_scv[keys], self.k_err[keys]
        slow = (NEW,) if not self.warming else range(self.V)  # the versions whose slowdown can change
        for r in self.leaky_reps | self._warm_reps(t):
            for v in slow:
                f = pool_slowdown(fleets[r], v, t + 0.5)
                if f != 1.0:
                    _, m1, s2, _ = self.model.service(self._table[keys[r, v]][4], f)
                    mean[r, v], scv[r, v], self.leak[r, v] = m1, s2, f
                else:
                    self.leak[r, v] = 1.0
        return mean, scv, err

    # -- blocks of unchanged ticks ------------------------------------------
    def tick_block(self, t: int, k: int) -> bool:
        """Ticks t .. t+k-1 of every replication at once; False (nothing done) where a block would not be exact.

        Between fleet events, controller wakes, migration ends and effect changes,
        a tick's inputs are the previous tick's. When, in addition, no pool waits
        noticeably (P(wait) below NO_WAIT, no fluid backlog), retries are off and no
        memory leak or crash is pending, a tick's outcome depends on its own draws
        only (the queue relaxes deterministically), so the k ticks need one set of
        numpy calls instead of k. The draws have the same distribution as k single
        ticks, in another layout: other numbers for a seed, the same ones for the
        same seed.
        """
        keys = self._block_keys(t, k)
        if keys is None:
            return False
        if single.scalar(self.R):
            return single.tick_block(self, t, k, keys)
        mean, err = self.k_mean[keys], self.k_err[keys]
        lam_att = self.lam[t] * (1.0 + self.retry_factor)
        share = self._share_memo(lam_att, self.live_avg, self.dead_avg, self.weight, self.last_mean, self.base_weight)
        lam_v = lam_att[:, None] * share[:, self.live_cols]
        kinds, per, cmu = self._kind_memo(keys, self.leak, np.maximum(self.live_avg, 1e-9))
        law = self._law_memo(kinds, self.stations.u_of(lam_v / per / cmu))
        settled = np.abs(self.L - law["L"] * per) <= SETTLED * np.maximum(law["L"] * per, 1.0)
        if not settled.all():  # a queue still moving: its law changes tick by tick
            return False
        block, pw = law["B"], law["pw"]
        live = self.live_avg > 1e-9
        self.L = np.where(live, law["L"] * per, 0.0)
        self.lq = np.where(live, law["Lq"] * per, 0.0)
        lq = np.broadcast_to(self.lq[:, None, :], (self.R, k, self.V))
        # each pool's response-time law holds for the k ticks: a waiting pool's is counted under its own key
        lat_keys, _, p_to, p_slow, mean_latency = self._latency(keys, law, by_key=True)
        led = self.ledger
        led.set_latency(lat_keys, np.ones(keys.shape, dtype=bool), {}, self, mean_latency)
        A = self.arrivals[:, t:t + k]
        self.tokens = np.minimum(self.token_cap, self.tokens + self.retries.budget * A.sum(axis=1))
        groups = split(self.rng, A, share, sparse=True)
        led.block(t, k, A, groups, ranks(share[:, self.live_cols]), block, p_to, err, p_slow, self.rng, mean, pw, lam_v, lq, self.up, self.live)
        self.retry_factor = np.zeros(self.R)  # attempts equal arrivals without retries
        self.last_mean, self.last_rate = mean, lam_v
        return True

    def _block_keys(self, t: int, k: int):
        """The effect keys of ticks t .. t+k-1 if nothing but the queues may keep them from one block, else None."""
        if self.retries.max or self.leaky_reps or np.count_nonzero(self.held_reset) or self._effect_times is None:
            return None
        if self._warm_reps(t):
            return None
        lam = self.lam[t:t + k]
        if len(lam) < k or (lam != lam[0]).any():
            return None
        keys = self.effect_keys(t)
        return None if self._ek[2] < t + k else keys  # else an attempt's effects change inside the block

    def _warm_reps(self, t: int) -> set:
        """Replications with an instance still warming up at tick t (one tick more, to set its slowdown back to 1)."""
        if not self.warming:
            return set()
        done = [r for r, until in self.warming.items() if until + 1.0 <= t]
        for r in done:
            del self.warming[r]
        return set(self.warming)

    def _latency(self, keys, law, by_key: bool):
        """Latency keys, CDFs, P(timeout), P(slow | done) and served mean of each pool under its station's law.

        A pool that waits (or leaks) gets its response-time CDF of the requests served in time: in `cdfs` by
        (replication, version) for one tick, or, `by_key` for a block of ticks at a settled law, under a
        latency key of its own (effect state and wait law) that the ledger counts by, as it does a pool's
        that does not wait. P(timeout) is the deadline law's where it binds, else the CDF's mass past it."""
        if single.scalar(self.R):
            lat_keys, cdfs, p_to, p_slow, mean_latency = single.latency(self, keys, law, by_key)
            return lat_keys, cdfs, np.array([p_to]), np.array([p_slow]), mean_latency
        pw = law["pw"]
        lat_keys = keys.copy()
        cdf_t, cdf_s = self.k_at_t[keys], self.k_at_s[keys]
        mean_latency = self.k_mean[keys] * self.leak
        cdfs = {}
        for r, v in np.argwhere((pw >= NO_WAIT) | (self.leak != 1.0)):
            ck, (at_t, at_s, served, served_mean) = self._response(
                keys[r, v], self.leak[r, v], pw[r, v], law["theta"][r, v], law["trunc"][r, v], law["shape"][r, v])
            if by_key:
                lat_keys[r, v] = self._law_key(ck, keys[r, v], served, served_mean)
            else:
                cdfs[(r, v)] = served
            cdf_t[r, v], cdf_s[r, v], mean_latency[r, v] = at_t, at_s, served_mean
        p_to = _unit(np.where(np.isnan(law["pto"]), 1.0 - cdf_t, law["pto"]))
        p_slow = _unit(np.divide(cdf_t - cdf_s, cdf_t, out=np.zeros_like(cdf_t), where=cdf_t > 0))
        return lat_keys, cdfs, p_to, p_slow, mean_latency

    def _law_key(self, ck, key, served, served_mean) -> int:
        k = self._keys.get(ck)
        if k is None:
            _, scv, err, _, eff = self._table[key]
            k = self._keys[ck] = len(self._table)
            self._table.append((served_mean, scv, err, served, eff))
            self._grow_table()
        return k

    def _response(self, key, leak, pw, theta, trunc, shape):
        """The response-time CDF at the timeout and at the slow threshold, and the CDF and mean of the requests
        that complete in time, with their cache key (effect state and rounded wait law: most ticks repeat them)."""
        ck = (int(key), round(float(leak), 3), float(f"{pw:.4g}"), float(f"{theta:.4g}"), float(trunc),
              round(float(shape), 3))
        hit = self._responses.get(ck)
        if hit is None:
            comps = self.model.service(self._table[key][4], ck[1])[0]
            hit = self._responses[ck] = self.model.response(comps, *ck[2:])
            if len(self._responses) > 20_000:
                self._responses.clear()
        return ("law",) + ck, hit


def _unit(x: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum(x, 0.0), 1.0)  # np.clip(x, 0, 1)'s values, without its slow wrapper


def _effect_change_times(scenario) -> list[int] | None:
    """Seconds at which an attempt's effects can change other than by migration; None: any second."""
    release, times = scenario.release, []
    for d in (release.defects if release else ()):
        if getattr(d, "only_above_rps", None) is not None:
            return None
        onset = getattr(d, "onset", None)
        if onset is not None:
            times.append(release.at + onset.after)
    for f in scenario.failures:
        if isinstance(f, Dependency):
            times += [f.at, f.at + f.duration]
    return sorted({int(math.floor(x)) for x in times} | {int(math.ceil(x)) for x in times})
