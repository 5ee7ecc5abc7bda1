"""The load balancer as the fluid engine sees it: each tick's attempts split over version pools.

Shares over (old live, old dead, new live, new dead[, baseline live, baseline
dead], no backend) as the request engine's `_pick` makes them (weight None: by
ready instances; an explicit weight with fallback to the other pool; a canary
baseline's share falls back to the stable pool), least-outstanding's preference for idle
live instances over crashed ones still in rotation, `fleet.redispatch` of
refused connections; then a multinomial split of the attempts by sequential
binomials.
"""
from __future__ import annotations

import numpy as np

from simlab.engines.fluid import queue as fq
from simlab.engines.fluid import single
from simlab.engines.versions import BASELINE, NEW, OLD


class Router:
    def __init__(self, *, reps: int, balancer: str, workers: int, redispatch: bool, versions: int = 2):
        self.R, self.balancer, self.workers, self.redispatch = reps, balancer, workers, redispatch
        self.V = versions  # version pools (versions.version_count)

    def _dead_share(self, dead, live, lam, mean):
        """Share of a pool's traffic sent to crashed instances still in rotation (connection refused)."""
        total = dead + live
        naive = np.divide(dead, total, out=np.zeros_like(dead), where=total > 0)
        if self.balancer in ("round_robin", "random") or not np.count_nonzero(dead):
            return naive
        # least outstanding picks a dead instance (always at zero) unless an idle live one comes first
        per_instance = np.divide(lam * mean, total, out=np.zeros_like(lam), where=total > 0)
        p0 = fq.idle_probability(self.workers, per_instance)
        if self.balancer == "least_outstanding":
            den = dead + live * p0
            return np.divide(dead, den, out=naive.copy(), where=den > 0)
        return np.minimum(1.0, naive * (1.0 + (1.0 - p0) * np.divide(live, total, out=np.zeros_like(live), where=total > 0)))

    def _dead_share_one(self, dead: float, live: float, lam: float, mean: float) -> float:
        """_dead_share of one replication's pool in Python floats (the same operations)."""
        total = dead + live
        naive = dead / total if total > 0 else 0.0
        if self.balancer in ("round_robin", "random") or not dead:
            return naive
        per_instance = lam * mean / total if total > 0 else 0.0
        p0 = fq.idle_probability_one(self.workers, per_instance)
        if self.balancer == "least_outstanding":
            den = dead + live * p0
            return dead / den if den > 0 else naive
        x = naive * (1.0 + (1.0 - p0) * (live / total if total > 0 else 0.0))
        return x if x != x or x <= 1.0 else 1.0  # np.minimum(1.0, x)

    def _shares_one(self, lam: float, L: list, D: list, w: float, last_mean: list) -> np.ndarray:
        """shares for one replication without a baseline's weight, in Python floats: the same operations on the
        same values (numpy adds a row of fewer than 8 in sequence), the same numbers."""
        V = self.V
        mean = last_mean[0]
        for x in last_mean[1:]:
            mean = mean + x
        mean = mean / V
        out = [0.0] * (2 * V + 1)
        rot = [a + b for a, b in zip(L, D)]
        if w != w:  # NaN: by ready instances
            Lt, Dt = L[0], D[0]
            for a, b in zip(L[1:], D[1:]):
                Lt, Dt = Lt + a, Dt + b
            ds = self._dead_share_one(Dt, Lt, lam, mean)
            for v in range(V):
                out[2 * v] = (1 - ds) * (L[v] / Lt if Lt > 0 else 0.0)
                out[2 * v + 1] = ds * (D[v] / Dt if Dt > 0 else 0.0)
        else:
            p_new = 0.0 if rot[NEW] <= 0 else (1.0 if rot[OLD] <= 0 else _clip(w))
            for v, p in enumerate((1 - p_new, p_new)):
                ds = self._dead_share_one(D[v], L[v], lam * p, mean)
                on = 1.0 if rot[v] > 0 else 0.0
                out[2 * v] = p * (1 - ds) * on
                out[2 * v + 1] = p * ds * on
        if self.redispatch and any(d != 0 for d in D):  # as below: the same additions, zeros too
            for v in range(V):
                move = out[2 * v + 1] if L[v] > 0 else 0.0
                out[2 * v], out[2 * v + 1] = out[2 * v] + move, out[2 * v + 1] - move
            for v in range(V):
                for u in (u for u in range(V) if u != v):
                    move = out[2 * v + 1] if L[u] > 0 else 0.0
                    out[2 * u], out[2 * v + 1] = out[2 * u] + move, out[2 * v + 1] - move
        total, busy = out[0], rot[0]
        for x in out[1:-1]:
            total = total + x
        for x in rot[1:]:
            busy = busy + x
        out[-1] = _clip(1.0 - total)
        if busy <= 0:
            out = [0.0] * (2 * V) + [1.0]
        return np.array([out])

    def shares(self, lam_att, L, D, w, last_mean, b=None) -> np.ndarray:
        """(R, 2V + 1) probabilities: old live, old dead, new live, new dead(, baseline live, baseline dead), no
        backend; `w` the new version's weight (NaN: by ready instances), `b` the baseline's."""
        V = self.V
        if single.scalar(self.R) and (V == 2 or np.isnan(w[0])):
            return self._shares_one(float(lam_att[0]), L[0].tolist(), D[0].tolist(), float(w[0]),
                                    last_mean[0].tolist())
        mean = last_mean.mean(axis=1)
        out = np.zeros((self.R, 2 * V + 1))
        rot = L + D
        by_count = np.isnan(w)
        if np.count_nonzero(by_count):
            Lt, Dt = L.sum(axis=1), D.sum(axis=1)
            ds = self._dead_share(Dt, Lt, lam_att, mean)
            for v, (il, idd) in enumerate((2 * u, 2 * u + 1) for u in range(V)):
                out[:, il] = np.where(by_count, (1 - ds) * np.divide(L[:, v], Lt, out=np.zeros(self.R), where=Lt > 0), out[:, il])
                out[:, idd] = np.where(by_count, ds * np.divide(D[:, v], Dt, out=np.zeros(self.R), where=Dt > 0), out[:, idd])
        if np.count_nonzero(by_count) < by_count.size:
            ww = np.where(by_count, 0.0, np.clip(np.nan_to_num(w) , 0.0, 1.0))
            if V == 2:
                p_new = np.where(rot[:, NEW] <= 0, 0.0, np.where(rot[:, OLD] <= 0, 1.0, ww))
                parts = (1 - p_new, p_new)
            else:
                parts = _with_baseline(rot > 0, ww, np.where(by_count, 0.0, np.clip(b, 0.0, 1.0)))
            for v, p in enumerate(parts):
                il, idd = 2 * v, 2 * v + 1
                ds = self._dead_share(D[:, v], L[:, v], lam_att * p, mean)
                out[:, il] = np.where(by_count, out[:, il], p * (1 - ds) * (rot[:, v] > 0))
                out[:, idd] = np.where(by_count, out[:, idd], p * ds * (rot[:, v] > 0))
        if self.redispatch and np.count_nonzero(D):
            # a refused connection is retried once on an up instance of the same pool, else of any pool (the first
            # with one, in index order)
            for v in range(V):
                il, idd = 2 * v, 2 * v + 1
                move = np.where(L[:, v] > 0, out[:, idd], 0.0)
                out[:, il] += move
                out[:, idd] -= move
            for v in range(V):
                idd = 2 * v + 1
                for u in (u for u in range(V) if u != v):
                    move = np.where(L[:, u] > 0, out[:, idd], 0.0)
                    out[:, 2 * u] += move
                    out[:, idd] -= move
        out[:, -1] = np.clip(1.0 - out[:, :-1].sum(axis=1), 0.0, 1.0)
        out[rot.sum(axis=1) <= 0] = (0,) * (2 * V) + (1,)
        return out


def _clip(x: float) -> float:
    """np.clip(x, 0.0, 1.0) of one float (NaN stays NaN)."""
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


def _with_baseline(has: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The old, new and baseline pools' shares when the new version gets w and the baseline b (each (R,)): a pool
    with no instance in rotation passes its share to the old pool, the old pool to the new one, then the baseline
    (the request engine's `_pick`)."""
    p_new = np.where(has[:, NEW], w, 0.0)
    p_base = np.where(has[:, BASELINE], b, 0.0)
    rest = 1.0 - p_new - p_base
    p_old = np.where(has[:, OLD], rest, 0.0)
    p_new = p_new + np.where(~has[:, OLD] & has[:, NEW], rest, 0.0)
    p_base = p_base + np.where(~has[:, OLD] & ~has[:, NEW], rest, 0.0)
    return p_old, p_new, p_base


def split(rng, n: np.ndarray, p: np.ndarray, *, sparse: bool = False) -> np.ndarray:
    """Multinomial split of n (R,) or (R, k) over the columns of p (R, m), by sequential binomials: n.shape + (m,).

    sparse: a column no replication sends anything to (or that takes everything left everywhere) needs no draw
    (used for blocks of ticks; single ticks draw every column, so that their stream stays as it was).
    """
    R, m = n.shape[0], p.shape[1]
    out = np.zeros(n.shape + (m,), dtype=np.int64)
    left = n.astype(np.int64)
    # what is left of the probability before each column (1 − p₀ − p₁ − … subtracted in turn, as a running `rest`
    # would) and every column's conditional probability, in one set of calls
    rest = np.subtract.accumulate(np.concatenate((np.ones((R, 1)), p[:, :m - 2]), axis=1), axis=1)
    qs = np.divide(p[:, :m - 1], rest, out=np.zeros((R, m - 1)), where=rest > 1e-12)
    qs = np.minimum(np.maximum(qs, 0.0), 1.0)
    col = (slice(None),) + (None,) * (n.ndim - 1)
    for j in range(m - 1):
        q = qs[:, j]
        if not sparse:
            out[..., j] = rng.binomial(left, q[col]) if np.count_nonzero(left) else 0
        elif np.count_nonzero(q) and np.count_nonzero(left):
            out[..., j] = left if (q == 1.0).all() else rng.binomial(left, q[col])
        left = left - out[..., j]
    out[..., -1] = left
    return out
