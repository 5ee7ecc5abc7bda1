"""Common random numbers for the data plane's outcome draws: a uniform of their own for every pool, second and
outcome, so that runs of one seed differ only where they differ.

A run, the same seed under another policy, and the same seed with no release at all (its twin,
experiment/twins.py) meet the same traffic, crashes and dependency failures: those are drawn from
streams of the run's seed (rng.stream). The data plane's counts were not: a lockstep batch drew every
replication's binomials from one stream, so the first tick at which anything differed (a pool with
traffic in one run and none in the other) shifted every draw after it, and a run's bad requests and
its twin's were as good as independent (correlation 0.1-0.2 on the demo's canary): the bad requests
a release added carried the noise of both.

Here each replication has a stream per pool rank (`rng.stream(seed, "fluid.outcomes", rank)`), read in
chunks of `CHUNK` seconds with `slots` uniforms per second (`slot`: the outcome and the retry round;
`CRASH`: the in-flight work a crash resets). A second's pools are ranked by their share of the traffic
(`ranks`): the pool that serves most of it reads rank 0's uniforms, whichever version it is, so the
fleet's traffic meets the same numbers before a deploy, in a canary's stable pool, in a promoted new
version, and in the twin, while pools of one second still read distinct streams and stay independent.
The uniform behind the main pool's errors at second t is the same in every run of that seed, whatever
else happens in the run, in whichever batch and in a block of ticks or one at a time. A count is the binomial's inverse CDF at
that uniform (`binomial`): monotone in n and p, so a pool that gets a few requests fewer or a slightly
different probability draws nearly the same count. The inversion walks the CDF up from 0, as numpy's
own algorithm does below a mean of 30; above `MAX_MEAN` the count is numpy's draw from the batch's
stream, exact too but not common (its relative noise is small there). `binomial_one` is the same
arithmetic on one element, for a single run in Python numbers (single.py), with the same results.
"""
from __future__ import annotations

import numpy as np

from simlab.rng import stream

CHUNK = 256  # seconds of uniforms drawn at once per replication and pool rank (> ledger.BLOCK_MAX)
MAX_MEAN = 30.0  # above this n·p a count is numpy's draw (BTPE there), not the inverse CDF
OUTCOMES = ("rejected", "timeout", "error", "slow")
CRASH = 0  # slot of the in-flight work a crash resets; outcome o of retry round L is slot 1 + 4 L + o


def slot(level: int, outcome: int) -> int:
    return 1 + 4 * level + outcome


def slots(retries: int) -> int:
    """Uniforms per second and pool when a request may be retried `retries` times."""
    return 1 + 4 * (retries + 1)


def ranks(live_share: np.ndarray) -> np.ndarray:
    """(R, V) rank of each version pool by its share of the traffic (R, V): 0 for the largest, ties by version."""
    order = np.argsort(-live_share, axis=1, kind="stable")
    out = np.empty_like(order)
    np.put_along_axis(out, order, np.arange(order.shape[1])[None, :], axis=1)
    return out


def ranks_one(live_share: list[float]) -> list[int]:
    """`ranks` of one replication's shares, in Python numbers."""
    order = sorted(range(len(live_share)), key=lambda v: -live_share[v])  # stable: ties by version
    out = [0] * len(order)
    for rank, v in enumerate(order):
        out[v] = rank
    return out


class Uniforms:
    """Each replication's uniforms by (pool rank, second, slot), from streams of its seed."""

    def __init__(self, seeds, n_slots: int):
        self.seeds = [int(s) for s in seeds]
        self.S = n_slots
        self._gens: dict[int, list] = {}
        self._next: dict[int, int] = {}  # rank -> the chunk its streams draw next
        self._chunks: dict[int, dict[int, np.ndarray]] = {}  # rank -> chunk -> (R, CHUNK, S)

    def _chunk(self, rank: int, c: int) -> np.ndarray:
        held = self._chunks.setdefault(rank, {})
        got = held.get(c)
        if got is not None:
            return got
        gens = self._gens.get(rank)
        if gens is None:
            gens = self._gens[rank] = [stream(s, "fluid.outcomes", rank) for s in self.seeds]
            self._next[rank] = 0
        at = self._next[rank]
        if c < at:
            raise RuntimeError(f"uniforms of second {c * CHUNK} asked for after later ones were drawn")
        if c > at:  # chunks no one asked for: their numbers are skipped, one 64-bit output per uniform
            for g in gens:
                g.bit_generator.advance((c - at) * CHUNK * self.S)
        got = np.empty((len(gens), CHUNK, self.S))
        for g, row in zip(gens, got):
            g.random(out=row)
        self._next[rank] = c + 1
        for old in [x for x in held if x < c - 1]:  # time only moves forward (a block may reach back one chunk)
            del held[old]
        held[c] = got
        return got

    def tick(self, t: int, rank, s: int) -> np.ndarray:
        """(R,) uniforms of slot s at second t for pools of rank `rank` (an int, or (R,) ints: one per replication)."""
        c, i = divmod(t, CHUNK)
        return self._pick(rank, lambda chunk: chunk[:, i, s], c)

    def block(self, t: int, k: int, rank, s: int) -> np.ndarray:
        """(R, k) uniforms of slot s at seconds t .. t+k-1 for pools of rank `rank` (as in `tick`)."""
        c, i = divmod(t, CHUNK)
        j = i + k
        if j <= CHUNK:
            return self._pick(rank, lambda chunk: chunk[:, i:j, s], c)
        head = self._pick(rank, lambda chunk: chunk[:, i:, s], c)
        return np.concatenate((head, self._pick(rank, lambda chunk: chunk[:, :j - CHUNK, s], c + 1)), axis=1)

    def _pick(self, rank, read, c: int) -> np.ndarray:
        if isinstance(rank, int):
            return read(self._chunk(rank, c))
        first = int(rank[0])
        if (rank == first).all():
            return read(self._chunk(first, c))
        out = None
        for x in np.unique(rank).tolist():
            got = read(self._chunk(x, c))
            if out is None:
                out = np.empty_like(got)
            mask = rank == x
            out[mask] = got[mask]
        return out


def take(rng, n: np.ndarray, p, uniforms, at: int) -> tuple[np.ndarray, np.ndarray]:
    """Binomial(n, p) at the pool's uniforms of slot `at` (`uniforms(at)`) and what is left; nothing to draw when p
    is zero everywhere (the common case) or n is."""
    if not np.count_nonzero(n) or not np.count_nonzero(p):
        return np.zeros_like(n), n
    k = binomial(rng, n, p, uniforms(at))
    return k, n - k


def binomial(rng, n: np.ndarray, p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Binomial(n, p) counts (n's shape; p broadcast to it, clipped to [0, 1]) at uniforms u: the inverse CDF where
    n·p ≤ MAX_MEAN, numpy's draw from `rng` elsewhere (in one call, in n's order)."""
    p = np.broadcast_to(np.minimum(np.maximum(p, 0.0), 1.0), n.shape)
    mean = n * p
    out = np.zeros(n.shape, dtype=np.int64)
    big = mean > MAX_MEAN
    if big.any():
        out[big] = rng.binomial(n[big], p[big])
    sure = (p >= 1.0) & ~big
    if sure.any():
        out[sure] = n[sure]
    idx = np.flatnonzero((mean > 0.0) & ~big & ~sure)
    if not idx.size:
        return out
    nn, pp, uu = n.ravel()[idx], p.ravel()[idx], u.ravel()[idx]
    pmf = np.exp(nn * np.log1p(-pp))  # P(0)
    cdf = pmf.copy()
    ratio = pp / (1.0 - pp)
    res = np.zeros(idx.size, dtype=np.int64)
    act = np.flatnonzero(uu > cdf)
    k = 0
    while act.size:
        k += 1
        step = pmf[act] * ((nn[act] - (k - 1)) / k * ratio[act])
        pmf[act] = step
        cdf[act] += step
        res[act] = k
        act = act[(uu[act] > cdf[act]) & (nn[act] > k)]
    flat = out.reshape(-1)
    flat[idx] = res
    return out


def binomial_one(rng, n: int, p: float, u: float) -> int:
    """`binomial` of one element, in Python numbers: the same operations, so the same count."""
    p = min(max(p, 0.0), 1.0)
    mean = n * p
    if mean > MAX_MEAN:
        return int(rng.binomial(n, p))
    if p >= 1.0:
        return n
    if not mean > 0.0:
        return 0
    pmf = float(np.exp(n * np.log1p(-p)))
    cdf = pmf
    ratio = p / (1.0 - p)
    k = 0
    while u > cdf and n > k:
        k += 1
        pmf = pmf * ((n - (k - 1)) / k * ratio)
        cdf = cdf + pmf
    return k
