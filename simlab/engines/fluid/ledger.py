"""Accounting of the fluid engine: the user's and the servers' ledgers, as recorder.py keeps them, for R replications.

Server-side counts go into a ring of cumulative totals so any monitoring
window is one subtraction; latency is kept as counts per cached effect state
(or a CDF where the state is not cached), so a window's or a run's
percentiles come from one mixture of grid CDFs.
"""
from __future__ import annotations

import functools
import math
from functools import reduce
from operator import add

import numpy as np

from simlab.control.observations import WindowStats
from simlab.engines.fluid.common_draws import CRASH, slot, take
from simlab.engines.versions import version_count

ERROR, REJECTED, TIMEOUT, RESET = 0, 1, 2, 3  # recorder.CAUSES order
BLOCK_MAX = 64  # longest block of ticks drawn at once (fluid_block)
RECORDED = ("offered", "attempts", "succeeded", "slow", "queued", "in_flight", "area", "capacity", "p50", "p99")


class Ledger:
    def __init__(self, scenario, reps: int, model, record: bool, uniforms):
        s, mon = scenario, scenario.monitoring
        self.R, self.model, self.record = reps, model, record
        self.uniforms = uniforms  # each replication's pools' outcome uniforms (common_draws.Uniforms)
        self.n = int(math.ceil(s.duration))
        self.release_at = s.release.at if s.release else 0.0
        self.workers = s.fleet.workers
        self.V = V = version_count(s)  # version slots; the server counts' last slot is the requests no version took
        z = lambda *shape: np.zeros((reps,) + shape)  # noqa: E731
        self.requests, self.attempts, self.succeeded, self.slow, self.queued = z(), z(), z(), z(), z()
        self.failed = z(4)
        self.lat_sum, self.lat_n = z(), z()
        self.peak_util = z()
        self.min_ready = np.full(reps, np.inf)
        alert = s.slo.alert
        longest = max(mon.window, alert.long_window, alert.short_window)
        # + BLOCK_MAX: a block writes that many seconds ahead of the windows read inside it
        self.Lc = int(math.ceil(mon.delay + mon.scrape_interval + longest)) + 4 + BLOCK_MAX
        self.Lq = int(math.ceil(mon.delay + mon.scrape_interval + mon.window)) + 4 + BLOCK_MAX
        self.cum = np.zeros((reps, self.Lc, V + 1, 3))  # cumulative (version, requests/errors/slow) before each second
        self.running = z(V + 1, 3)
        self.K = 8
        self.acc_keys = z(self.K)
        self.acc_slow = z(len(model.grid))
        # successes by (version, cached effect state), cumulative before each second: whole numbers, so a
        # window's counts are one exact subtraction (like `cum`)
        self.qrun = np.zeros((reps, V, self.K))
        self.qcum = np.zeros((reps, self.Lq, V, self.K))
        self.qsum = np.zeros((reps, self.Lq, V))
        self.qslow: list[dict] = [dict() for _ in range(reps)]
        self._totals: dict = {}
        if record:
            self.rec = {name: np.zeros((reps, self.n)) for name in RECORDED}
            self.rec_failed = np.zeros((reps, self.n, 4))

    # -- per tick ------------------------------------------------------------
    def begin_tick(self, t: int, offered: np.ndarray, ranks: np.ndarray) -> None:
        """ranks: (R, V) each pool's rank by its share of the tick's traffic, whose uniforms it draws at."""
        R = self.R
        self.t = t
        self.ranks = ranks
        self.tick_offered = offered
        self.tick_attempts = np.zeros(R, dtype=np.int64)
        self.tick_failed = np.zeros((R, 4), dtype=np.int64)
        self.tick_ok = np.zeros((R, self.V), dtype=np.int64)
        self.tick_slow = np.zeros(R, dtype=np.int64)
        self.tick_served = np.zeros((R, self.V), dtype=np.int64)
        self.srv = np.zeros((R, self.V + 1, 3))
        self._totals = {}  # windows of all replications, computed once per tick (see total_window)

    def outcomes(self, groups, p_rej, p_to, err, p_slow, rng, level: int = 0) -> np.ndarray:
        """Draw what happens to this round of attempts (retry round `level`); returns failures by cause (R, 4).
        Each pool's counts are drawn at its own uniforms (common_draws)."""
        failed = np.zeros((self.R, 4), dtype=np.int64)
        self.tick_attempts += groups.sum(axis=1)
        for v, il, idd in ((v, 2 * v, 2 * v + 1) for v in range(self.V)):
            n = groups[:, il]
            dead = groups[:, idd]
            if not np.count_nonzero(n):  # no attempt reached the pool: no draw, nothing served (zeros add nothing)
                self.srv[:, -1, :2] += dead[:, None]
                failed[:, RESET] += dead
                continue
            u = functools.partial(self.uniforms.tick, self.t, self.ranks[:, v])
            rej, rest = take(rng, n, p_rej[:, v], u, slot(level, 0))
            to, rest = take(rng, rest, p_to[:, v], u, slot(level, 1))
            e, ok = take(rng, rest, err[:, v], u, slot(level, 2))
            sl, _ = take(rng, ok, p_slow[:, v], u, slot(level, 3))
            srv = self.srv[:, v]
            srv[:, 0] += n
            srv[:, 1] += rej + to + e
            self.srv[:, -1, :2] += dead[:, None]  # a refused connection has no version's response (request.py)
            srv[:, 2] += sl
            failed[:, ERROR] += e
            failed[:, REJECTED] += rej
            failed[:, TIMEOUT] += to
            failed[:, RESET] += dead
            self.tick_ok[:, v] += ok
            self.tick_served[:, v] += ok + e + to
            self.tick_slow += sl
        none = groups[:, -1]
        self.srv[:, -1, 0] += none
        self.srv[:, -1, 1] += none
        failed[:, REJECTED] += none
        return failed

    def retry(self, failed, tokens, level) -> np.ndarray:
        """Retry what the budget allows (proportionally across causes); the rest fails for the user."""
        total = failed.sum(axis=1)
        allowed = np.minimum(total, np.floor(np.maximum(tokens, 0.0))).astype(np.int64)
        frac = np.divide(allowed, total, out=np.zeros(self.R), where=total > 0)
        retried = np.floor(failed * frac[:, None]).astype(np.int64)
        self.tick_failed += failed - retried
        return retried.sum(axis=1)

    def final(self, failed) -> None:
        self.tick_failed += failed

    def crash_failures(self, held, retry_tokens=None) -> np.ndarray:
        """In-flight work of crashed instances: resets on the server side instead of the successes they would
        have been; as on the request engine, the client retries them while `retry_tokens` (R,) last (None: no
        retries), and a retried request is counted as the success its retry most likely is; a pool's fractional
        share rounds at its CRASH uniform (common_draws). Returns the retries sent per replication."""
        if not np.count_nonzero(held):
            return np.zeros(self.R, dtype=np.int64)
        u = np.stack([self.uniforms.tick(self.t, self.ranks[:, v], CRASH) for v in range(self.V)], axis=1)
        h = np.floor(held + u).astype(np.int64)
        h = np.minimum(h, self.tick_ok)
        self.srv[:, :self.V, 1] += h
        total = h.sum(axis=1)
        retried = np.zeros(self.R, dtype=np.int64)
        if retry_tokens is not None:
            retried = np.minimum(total, np.floor(np.maximum(retry_tokens, 0.0)).astype(np.int64))
        lost = total - retried  # the user requests whose attempt was reset and not retried
        share = np.divide(h, np.maximum(total, 1)[:, None])
        take = np.minimum(h, np.rint(share * lost[:, None]).astype(np.int64))
        self.tick_ok -= take
        self.tick_failed[:, RESET] += take.sum(axis=1)
        self.tick_attempts += retried
        return retried

    def set_latency(self, keys, fast, cdfs, plane, mean_latency) -> None:
        self.keys, self.fast, self.cdfs, self.plane, self.mean_latency = keys, fast, cdfs, plane, mean_latency

    def end_tick(self, t, mean, pw, in_flight, up, live) -> None:
        R = self.R
        ok_v = self.tick_ok
        ok = ok_v.sum(axis=1)
        n_failed = self.tick_failed.sum(axis=1)
        self.requests += self.tick_offered
        self.attempts += self.tick_attempts
        self.succeeded += ok
        self.failed += self.tick_failed
        self.slow += self.tick_slow
        queued = (self.tick_served * pw).sum(axis=1)
        self.queued += queued
        self.lat_sum += (ok_v * self.mean_latency).sum(axis=1)
        self.lat_n += ok
        self.running += self.srv
        self.cum[:, (t + 1) % self.Lc] = self.running
        self._latency_counts(t, ok_v)
        area = (self.tick_served * mean).sum(axis=1)
        capacity = up.sum(axis=1) * self.workers
        util = np.where(capacity > 0, np.minimum(1.0, area / np.maximum(capacity, 1e-9)), (area > 1e-9).astype(float))
        self.peak_util = np.maximum(self.peak_util, util)
        if t >= self.release_at:
            self.min_ready = np.minimum(self.min_ready, live.sum(axis=1))
        if self.record:
            rec = self.rec
            for name, value in (("offered", self.tick_offered), ("attempts", self.tick_attempts), ("succeeded", ok),
                                ("slow", self.tick_slow), ("queued", queued), ("in_flight", in_flight),
                                ("area", area), ("capacity", capacity)):
                rec[name][:, t] = value
            self.rec_failed[:, t] = self.tick_failed
            for r in range(R):
                cdf = self._tick_cdf(r, ok_v[r])
                rec["p50"][r, t], rec["p99"][r, t] = (np.nan if q is None else q for q in self.model.quantiles(cdf))
        assert (ok + n_failed == self.tick_offered).all(), "every user request ends once"

    def block(self, t, k, offered, groups, ranks, p_rej, p_to, err, p_slow, rng, mean, pw, lam_v, lq, up, live) -> None:
        """Ticks t .. t+k-1 at once (fluid_block): draws by tick as (R, k) arrays, then end_tick's accounting.

        Every pool is below saturation with no noticeable wait (`fast`), so no rejection beyond `p_rej`, no
        queue timeout, no per-pool CDF, no retry (attempts are the arrivals) and no crash to account for.
        Arrays are kept per version as contiguous (R, k) planes: reductions over a short last axis are slow.
        """
        R = self.R
        self.t = t + k - 1
        self._totals = {}
        V = self.V
        zero = np.zeros((R, k), dtype=np.int64)
        none = groups[:, :, -1]
        resets = reduce(add, (groups[:, :, 2 * v + 1] for v in range(V)))
        refused = none + resets  # no version's response (request.py)
        errors, rejected, timeouts = zero, none, zero
        ok_v, served, slow_v = [zero] * V, [zero] * V, [zero] * V
        srv = np.zeros((R, k, V + 1, 3))
        for v, il in ((v, 2 * v) for v in range(V)):
            n = groups[:, :, il]
            if not np.count_nonzero(n):  # no traffic to this version in any replication (most of a run)
                continue
            u = functools.partial(self.uniforms.block, t, k, ranks[:, v])
            rej, rest = take(rng, n, p_rej[:, v, None], u, slot(0, 0))
            to, rest = take(rng, rest, p_to[:, v, None], u, slot(0, 1))
            e, ok = take(rng, rest, err[:, v, None], u, slot(0, 2))
            sl, _ = take(rng, ok, p_slow[:, v, None], u, slot(0, 3))
            srv[:, :, v, 0] = n
            srv[:, :, v, 1] = rej + to + e
            srv[:, :, v, 2] = sl
            errors, rejected, timeouts = errors + e, rejected + rej, timeouts + to
            ok_v[v], served[v], slow_v[v] = ok, ok + e + to, sl
        srv[:, :, -1, 0] = refused
        srv[:, :, -1, 1] = refused
        ok = reduce(add, ok_v)
        slow_n = reduce(add, slow_v)
        self.tick_attempts = offered[:, -1]
        requests = offered.sum(axis=1)
        self.requests += requests
        self.attempts += requests
        self.succeeded += ok.sum(axis=1)
        for cause, counts in ((ERROR, errors), (REJECTED, rejected), (TIMEOUT, timeouts), (RESET, resets)):
            self.failed[:, cause] += counts.sum(axis=1)
        self.slow += slow_n.sum(axis=1)
        queued = reduce(add, (served[v] * pw[:, v, None] for v in range(V)))
        self.queued += queued.sum(axis=1)
        ok_sums = np.stack([w.sum(axis=1) for w in ok_v], axis=1)
        self.lat_sum += (ok_sums * self.mean_latency).sum(axis=1)
        self.lat_n += ok_sums.sum(axis=1)
        running = self.running[:, None] + np.cumsum(srv, axis=1)
        self.cum[:, _ring(t + 1, k, self.Lc)] = running
        self.running = running[:, -1].copy()
        self._block_latency_counts(t, k, ok_v)
        area = reduce(add, (served[v] * mean[:, v, None] for v in range(V)))
        capacity = up.sum(axis=1) * self.workers
        util = np.where(capacity[:, None] > 0, np.minimum(1.0, area / np.maximum(capacity, 1e-9)[:, None]),
                        (area > 1e-9).astype(float))
        self.peak_util = np.maximum(self.peak_util, util.max(axis=1))
        if t + k - 1 >= self.release_at:
            self.min_ready = np.minimum(self.min_ready, live.sum(axis=1))
        failed = errors + rejected + timeouts + resets
        if self.record:
            rec = self.rec
            in_flight = (lam_v * mean).sum(axis=1)[:, None] + lq.sum(axis=2)
            for name, value in (("offered", offered), ("attempts", offered), ("succeeded", ok),
                                ("slow", slow_n), ("queued", queued), ("in_flight", in_flight),
                                ("area", area), ("capacity", capacity[:, None])):
                rec[name][:, t:t + k] = value
            self.rec_failed[:, t:t + k] = np.stack([errors, rejected, timeouts, resets], axis=2)
            k_cdf = self.plane.k_cdf
            for r in range(R):  # each tick's CDF as _tick_cdf makes it (no pool CDFs here; a zero count adds zeros)
                cdfs = reduce(add, (w[r][:, None] * k_cdf[self.keys[r, v]] for v, w in enumerate(ok_v)))
                for j in range(k):
                    rec["p50"][r, t + j], rec["p99"][r, t + j] = (np.nan if q is None else q
                                                                  for q in self.model.quantiles(cdfs[j]))
        assert (ok + failed == offered).all(), "every user request ends once"

    def _block_latency_counts(self, t, k, ok_v) -> None:
        """_latency_counts for a block of fast pools: no per-pool CDFs, counts by effect key only."""
        keys = self.keys
        self._grow_keys(keys)
        self.qsum[:, _ring(t, k, self.Lq)] = np.stack(ok_v, axis=2) * self.mean_latency[:, None, :]
        slots = _ring(t + 1, k, self.Lq)
        self.qcum[:, slots] = self.qrun[:, None]
        rows = np.arange(self.R)
        at = np.arange(t + 1, t + k + 1) % self.Lq
        for v in range(self.V):
            w = ok_v[v]
            if not np.count_nonzero(w):
                continue
            grown = np.cumsum(w, axis=1)
            self.qcum[rows[:, None], at[None, :], v, keys[:, v][:, None]] += grown
            self.acc_keys[rows, keys[:, v]] += grown[:, -1]
            self.qrun[rows, v, keys[:, v]] += grown[:, -1]
        if t // self.Lq != (t + k - 1) // self.Lq or t % self.Lq == 0:
            self._forget_cdfs(t + k - 1)

    def _grow_keys(self, keys) -> None:
        if keys.max() >= self.K:
            grow = max(self.K, int(keys.max()) + 1 - self.K)
            self.acc_keys = np.pad(self.acc_keys, ((0, 0), (0, grow)))
            self.qrun = np.pad(self.qrun, ((0, 0), (0, 0), (0, grow)))
            self.qcum = np.pad(self.qcum, ((0, 0), (0, 0), (0, 0), (0, grow)))
            self.K += grow

    def _forget_cdfs(self, t) -> None:
        """Drop per-second CDFs no window can reach any more."""
        for store in self.qslow:
            for sec in [s for s in store if s < t - self.Lq]:
                del store[sec]

    def _latency_counts(self, t, ok_v) -> None:
        keys, fast = self.keys, self.fast
        self._grow_keys(keys)
        slot = t % self.Lq
        self.qsum[:, slot] = ok_v * self.mean_latency
        rows = np.arange(self.R)
        for v in range(self.V):
            w = np.where(fast[:, v], ok_v[:, v], 0)
            self.acc_keys[rows, keys[:, v]] += w  # one key per row: no repeated index
            self.qrun[rows, v, keys[:, v]] += w
        self.qcum[:, (t + 1) % self.Lq] = self.qrun
        for (r, v), cdf in self.cdfs.items():
            if ok_v[r, v]:
                self.acc_slow[r] += ok_v[r, v] * cdf
                self.qslow[r].setdefault(t, []).append((v, ok_v[r, v] * cdf))
        if t % self.Lq == 0:
            self._forget_cdfs(t)

    def _tick_cdf(self, r, ok_v) -> np.ndarray:
        out = np.zeros(len(self.model.grid))
        for v in range(self.V):
            if ok_v[v]:
                cdf = self.cdfs.get((r, v))
                out += ok_v[v] * (self.plane.k_cdf[self.keys[r, v]] if cdf is None else cdf)
        return out

    # -- what monitoring shows -----------------------------------------------
    def window(self, r: int, versions: tuple[int, ...], start: float, end: float, quantiles: bool,
               rng=None) -> WindowStats:
        """Replication r's counts over [start, end) of `versions`; with `quantiles` its latency mean, p50 and p99
        too: the law's own, or with `rng` as measured on the window's requests (`LatencyModel.measured`)."""
        a, b = max(0, int(start)), max(0, int(end))
        if b <= a:
            return WindowStats(0, 0, 0)
        # one version (what analysis asks for) by plain indexing: a few small numpy calls per window
        one = versions[0] if len(versions) == 1 else list(versions)
        cum_a, cum_b = self.cum[r, a % self.Lc], self.cum[r, b % self.Lc]
        sel = cum_b[one] - cum_a[one]
        requests, errors, slow = (int(round(x)) for x in (sel if len(versions) == 1 else sel.sum(axis=0)).tolist())
        if not quantiles:
            return WindowStats(requests, errors, slow)
        secs = np.arange(a, b) % self.Lq
        counts = self.qcum[r, b % self.Lq, one] - self.qcum[r, a % self.Lq, one]
        if len(versions) > 1:
            counts = counts.sum(axis=0)
        total_lat = self.qsum[r, secs, one].sum()
        k_cdf = self.plane.k_cdf
        cdf = counts[: len(k_cdf)] @ k_cdf if np.count_nonzero(counts) else np.zeros(len(self.model.grid))
        cdf, n_ok = self.with_saturated(r, versions, a, b, cdf, counts.sum())
        return self.latency_stats(requests, errors, slow, cdf, n_ok, total_lat, rng)

    def latency_stats(self, requests, errors, slow, cdf, n_ok, total_lat, rng) -> WindowStats:
        if n_ok <= 0:
            return WindowStats(requests, errors, slow)
        if rng is None:
            p50, p99 = self.model.quantiles(cdf)
            return WindowStats(requests, errors, slow, float(total_lat / n_ok), p50, p99)
        mean, (p50, p99) = self.model.measured(cdf, n_ok, float(total_lat / n_ok), rng)
        return WindowStats(requests, errors, slow, mean, p50, p99)

    def with_saturated(self, r: int, versions, a: int, b: int, cdf: np.ndarray, n_ok):
        """A window's latency CDF and successes with its saturated pools' added, second by second in order (they
        are kept apart from the effect keys: `qslow`)."""
        slow_cdfs = self.qslow[r]
        for sec in (range(a, b) if slow_cdfs else ()):
            for v, weighted in slow_cdfs.get(sec, ()):
                if v in versions:
                    cdf = cdf + weighted
                    n_ok += weighted[-1]
        return cdf, n_ok

    def total_window(self, r: int, start: float, end: float) -> WindowStats:
        """All versions' counts over [start, end): window(r, every slot, ...), computed for every replication at once.

        Replications tick their controllers on a shared clock (alert evaluations every scrape), so a
        window asked for by one is asked for by most in the same tick.
        """
        return WindowStats(*self.total_counts(start, end)[r].tolist())

    def total_counts(self, start: float, end: float) -> np.ndarray:
        """(R, 3) requests, errors, slow of all versions over [start, end), for every replication; cached per tick."""
        a, b = max(0, int(start)), max(0, int(end))
        rows = self._totals.get((a, b))
        if rows is None:
            if b <= a:
                rows = np.zeros((self.R, 3), dtype=np.int64)
            else:
                diff = self.cum[:, b % self.Lc] - self.cum[:, a % self.Lc]
                rows = np.rint(diff.sum(axis=1)).astype(np.int64)
            self._totals[(a, b)] = rows
        return rows

    def run_quantiles(self, r: int) -> list:
        cdf = self.acc_keys[r, : len(self.plane.k_cdf)] @ self.plane.k_cdf + self.acc_slow[r]
        return self.model.quantiles(cdf)


def _ring(start: int, k: int, length: int):
    """Slots of seconds start .. start+k-1 in a ring of `length`: a slice unless they wrap around."""
    s = start % length
    return slice(s, s + k) if s + k <= length else np.arange(start, start + k) % length
