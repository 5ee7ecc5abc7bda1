"""One replication's tick draws in Python numbers: the split over pools and the outcomes of the attempts.

A single run (R = 1) spends most of a tick in numpy's cost per call on arrays of
one element. These are routing.split and Ledger.outcomes for that case: the
same Generator calls with the same arguments in the same order (a binomial of
an int and a float draws what one of arrays of one element draws), the same
float operations on the same values, so the same numbers; counts are whole
numbers and add exactly in any order.
"""
from __future__ import annotations

import functools
import itertools
import math
from functools import reduce
from operator import add

import numpy as np

from simlab.engines.fluid.common_draws import binomial_one, ranks_one, slot, take
from simlab.engines.fluid.latency import NO_WAIT
from simlab.engines.fluid.ledger import ERROR, REJECTED, RESET, TIMEOUT, _ring
from simlab.engines.fluid.station_tables import RHO_MAX, SETTLED

ENABLED = True  # off: one replication runs the array code too (tests/test_fluid_single.py compares the two)


def scalar(reps: int) -> bool:
    return reps == 1 and ENABLED


def _conditional(p: list[float]) -> list[float]:
    """routing.split's probability of each column but the last given the ones before it."""
    qs, rest = [], 1.0
    for pj in p[:-1]:
        # rest: 1 − p₀ − p₁ − … subtracted in turn, as np.subtract.accumulate does
        q = pj / rest if rest > 1e-12 else 0.0
        qs.append(min(max(q, 0.0), 1.0))
        rest = rest - pj
    return qs


def split(rng, n: int, p: list[float]) -> list[int]:
    """routing.split of n attempts over the shares p (one replication, every column drawn)."""
    out, left = [], n
    for q in _conditional(p):
        x = rng.binomial(left, q) if left else 0
        out.append(x)
        left -= x
    out.append(left)
    return out


def split_block(rng, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """routing.split(rng, n, p, sparse=True) of one replication's (1, k) arrivals: the same draws."""
    out = np.zeros(n.shape + (p.shape[1],), dtype=np.int64)
    left = n.astype(np.int64)
    for j, q in enumerate(_conditional(p[0].tolist())):
        if q != 0.0 and np.count_nonzero(left):  # (NaN counts as nonzero, as there)
            out[..., j] = left if q == 1.0 else rng.binomial(left, q)
            left = left - out[..., j]
    out[..., -1] = left
    return out


def _take(rng, n: int, p: float, u, at: int) -> tuple[int, int]:
    """common_draws.take for one element: Binomial(n, p) at uniform u(at) and what is left, nothing drawn at n = 0 or
    p = 0."""
    if not n or not p:
        return 0, n
    k = binomial_one(rng, n, p, u(at).item())
    return k, n - k


def outcomes(led, groups: list[int], p_rej, p_to, err, p_slow, rng, level: int, rank: list[int]) -> np.ndarray:
    """Ledger.outcomes for one replication (groups as split gives them, probabilities as lists of the pools', rank:
    each pool's rank by share, common_draws.ranks_one); returns failures by cause (1, 4)."""
    V = led.V
    failed = [0, 0, 0, 0]
    srv = [[0, 0, 0] for _ in range(V + 1)]
    ok_v, served, slow = [0] * V, [0] * V, 0
    for v in range(V):
        n, dead = groups[2 * v], groups[2 * v + 1]
        srv[V][0] += dead  # a refused connection has no version's response (request.py)
        srv[V][1] += dead
        failed[RESET] += dead
        if not n:  # no attempt reached the pool: no draw, nothing served
            continue
        u = functools.partial(led.uniforms.tick, led.t, rank[v])
        rej, rest = _take(rng, n, p_rej[v], u, slot(level, 0))
        to, rest = _take(rng, rest, p_to[v], u, slot(level, 1))
        e, ok = _take(rng, rest, err[v], u, slot(level, 2))
        sl, _ = _take(rng, ok, p_slow[v], u, slot(level, 3))
        srv[v] = [n, rej + to + e, sl]
        failed[ERROR] += e
        failed[REJECTED] += rej
        failed[TIMEOUT] += to
        ok_v[v], served[v] = ok, ok + e + to
        slow += sl
    none = groups[-1]
    srv[V][0] += none
    srv[V][1] += none
    failed[REJECTED] += none
    led.tick_attempts += sum(groups)
    led.srv += np.array([srv], dtype=float)
    led.tick_ok += np.array([ok_v], dtype=np.int64)
    led.tick_served += np.array([served], dtype=np.int64)
    led.tick_slow += slow
    return np.array([failed], dtype=np.int64)


def _max(a: float, b: float) -> float:
    """np.maximum of two floats (NaN if either is)."""
    return a if a >= b or a != a else b


def _min(a: float, b: float) -> float:
    """np.minimum of two floats (NaN if either is)."""
    return a if a <= b or a != a else b


def _row_sum(xs) -> float:
    """A row's sum as numpy adds fewer than 8 elements: in sequence from the first."""
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def end_tick(led, t: int, mean, pw, in_flight, up, live) -> None:
    """Ledger.end_tick for one replication, in Python numbers where the arrays have one element each (pw: a
    list of the pools')."""
    ok_v, served = led.tick_ok[0].tolist(), led.tick_served[0].tolist()
    ok = sum(ok_v)
    offered, attempts, slow = int(led.tick_offered[0]), int(led.tick_attempts[0]), int(led.tick_slow[0])
    led.requests[0] += offered
    led.attempts[0] += attempts
    led.succeeded[0] += ok
    led.failed += led.tick_failed
    led.slow[0] += slow
    queued = _row_sum([s * p for s, p in zip(served, pw)])
    led.queued[0] += queued
    led.lat_sum[0] += _row_sum([n * m for n, m in zip(ok_v, led.mean_latency[0].tolist())])
    led.lat_n[0] += ok
    led.running += led.srv
    led.cum[:, (t + 1) % led.Lc] = led.running
    _latency_counts(led, t, ok_v)
    area = _row_sum([s * m for s, m in zip(served, mean[0].tolist())])
    capacity = _row_sum(up[0].tolist()) * led.workers
    util = _min(1.0, area / _max(capacity, 1e-9)) if capacity > 0 else (1.0 if area > 1e-9 else 0.0)
    led.peak_util[0] = _max(float(led.peak_util[0]), util)
    if t >= led.release_at:
        led.min_ready[0] = _min(float(led.min_ready[0]), _row_sum(live[0].tolist()))
    n_failed = int(led.tick_failed[0].sum())
    if led.record:
        rec = led.rec
        for name, value in (("offered", offered), ("attempts", attempts), ("succeeded", ok), ("slow", slow),
                            ("queued", queued), ("in_flight", float(in_flight[0])), ("area", area),
                            ("capacity", capacity)):
            rec[name][0, t] = value
        led.rec_failed[:, t] = led.tick_failed
        cdf = led._tick_cdf(0, ok_v)
        rec["p50"][0, t], rec["p99"][0, t] = (np.nan if q is None else q for q in led.model.quantiles(cdf))
    assert ok + n_failed == offered, "every user request ends once"


def _latency_counts(led, t: int, ok_v: list[int]) -> None:
    """Ledger._latency_counts for one replication."""
    keys, fast = led.keys, led.fast
    led._grow_keys(keys)
    led.qsum[0, t % led.Lq] = [n * m for n, m in zip(ok_v, led.mean_latency[0].tolist())]
    acc_keys, qrun = led.acc_keys, led.qrun
    for v, (k, f) in enumerate(zip(keys[0].tolist(), fast)):
        if f and ok_v[v]:  # adding zero changes nothing
            acc_keys[0, k] += ok_v[v]
            qrun[0, v, k] += ok_v[v]
    led.qcum[:, (t + 1) % led.Lq] = qrun
    for (r, v), cdf in led.cdfs.items():
        if ok_v[v]:
            led.acc_slow[r] += ok_v[v] * cdf
            led.qslow[r].setdefault(t, []).append((v, ok_v[v] * cdf))
    if t % led.Lq == 0:
        led._forget_cdfs(t)


def queue_step(plane, keys, lam_v, h: float = 1.0) -> dict:
    """Plane.queue_step for one replication: the level, the settled test, the step and the law (lists of the
    pools') in floats."""
    n_live = plane.live_avg
    kinds, per, cmu = plane._kind_memo(keys, plane.leak, np.maximum(n_live, 1e-9))
    st = plane.stations
    ids, pe, cm = kinds[0].tolist(), per[0].tolist(), cmu[0].tolist()
    lam, L0, nl = lam_v[0].tolist(), plane.L[0].tolist(), n_live[0].tolist()
    u = [math.sqrt(_min(_max(la / p / c, 0.0), RHO_MAX) / RHO_MAX) for la, p, c in zip(lam, pe, cm)]  # u_of
    L1 = [st.level_one(i, x) for i, x in zip(ids, u)]
    if any(abs(n / p - s) > SETTLED * _max(s, 1.0) for n, p, s in zip(L0, pe, L1)):  # a queue still moving
        u = [st.bisect(i, n / p, la / p, c, h) for i, n, p, la, c in zip(ids, L0, pe, lam, cm)]
        L1 = [st.level_one(i, x) for i, x in zip(ids, u)]
    law = st.law_one(ids, u)
    plane.L = np.array([[n * p if a > 1e-9 else 0.0 for n, p, a in zip(L1, pe, nl)]])
    plane.lq = np.array([[q * p if a > 1e-9 else 0.0 for q, p, a in zip(law["Lq"], pe, nl)]])
    return law


def latency(plane, keys, law, by_key: bool):
    """Plane._latency for one replication, in floats: the same operations on the same values (the law's fields
    as lists of the pools' or (1, V) arrays; P(timeout) and P(slow) as lists)."""
    ks, leak = keys[0].tolist(), plane.leak[0].tolist()
    law = {f: law[f] if isinstance(law[f], list) else law[f][0].tolist()
           for f in ("pw", "pto", "theta", "trunc", "shape")}
    pw, pto = law["pw"], law["pto"]
    at_t, at_s = [plane.k_at_t.item(k) for k in ks], [plane.k_at_s.item(k) for k in ks]
    mean_latency = [plane.k_mean.item(k) * f for k, f in zip(ks, leak)]
    lat_keys, cdfs = list(ks), {}
    for v, (k, f) in enumerate(zip(ks, leak)):
        if pw[v] >= NO_WAIT or f != 1.0:
            ck, (a_t, a_s, served, served_mean) = plane._response(
                k, f, pw[v], law["theta"][v], law["trunc"][v], law["shape"][v])
            if by_key:
                lat_keys[v] = plane._law_key(ck, k, served, served_mean)
            else:
                cdfs[(0, v)] = served
            at_t[v], at_s[v], mean_latency[v] = float(a_t), float(a_s), float(served_mean)
    p_to = [_unit(1.0 - a if p != p else p) for a, p in zip(at_t, pto)]
    p_slow = [_unit((a - b) / a if a > 0 else 0.0) for a, b in zip(at_t, at_s)]
    return np.array([lat_keys], dtype=np.int64), cdfs, p_to, p_slow, np.array([mean_latency])


def _unit(x: float) -> float:
    """plane._unit of one float: np.minimum(np.maximum(x, 0.0), 1.0)."""
    return _min(_max(x, 0.0), 1.0)


def tick(plane, t: int, fleets) -> None:
    """Plane.tick for one replication: the same steps, draws and accounting, with the pools' values as lists."""
    rng, led = plane.rng, plane.ledger
    A = plane.arrivals[:, t]
    keys = plane.effect_keys(t)
    mean, _, err = plane.service_at(t, fleets, keys)
    lam_att = plane.lam[t] * (1.0 + plane.retry_factor)
    share = plane._share_memo(lam_att, plane.live_avg, plane.dead_avg, plane.weight, plane.last_mean,
                              plane.base_weight)
    lam_v = lam_att[:, None] * share[:, plane.live_cols]
    law = queue_step(plane, keys, lam_v)
    pw, p_rej = law["pw"], law["B"]
    lat_keys, cdfs, p_to, p_slow, mean_latency = latency(plane, keys, law, by_key=False)
    fast = [p < NO_WAIT and f == 1.0 for p, f in zip(pw, plane.leak[0].tolist())]
    led.set_latency(lat_keys, fast, cdfs, plane, mean_latency)
    # -- draws: split, outcomes, retries -----------------------------------------
    rank = ranks_one(share[0, plane.live_cols].tolist())
    led.begin_tick(t, A, np.array([rank]))
    plane.tokens = np.minimum(plane.token_cap, plane.tokens + plane.retries.budget * A)
    attempts, shares, err = int(A[0]), share[0].tolist(), err[0].tolist()
    for level in range(plane.retries.max + 1):
        failed = outcomes(led, split(rng, attempts, shares), p_rej, p_to, err, p_slow, rng, level, rank)
        if level < plane.retries.max:
            retried = led.retry(failed, plane.tokens, level)
            plane.tokens = plane.tokens - retried
            if not np.count_nonzero(retried):
                break
            attempts = int(retried[0])
        else:
            led.final(failed)
    retried = led.crash_failures(plane.held_reset, plane.tokens if plane.retries.max else None)
    plane.tokens = plane.tokens - retried
    plane.held_reset[:] = 0.0
    plane.retry_factor = np.divide(led.tick_attempts - A, np.maximum(A, 1), out=np.zeros(1))
    plane.last_mean, plane.last_rate = mean, lam_v
    end_tick(led, t, mean, pw, plane.L.sum(axis=1), plane.up, plane.live)


def tick_block(plane, t: int, k: int, keys) -> bool:
    """Plane.tick_block for one replication past its first tests: the settled test and the law in floats."""
    V, led = plane.V, plane.ledger
    mean, err = plane.k_mean[keys], plane.k_err[keys]
    lam_att = plane.lam[t] * (1.0 + plane.retry_factor)
    share = plane._share_memo(lam_att, plane.live_avg, plane.dead_avg, plane.weight, plane.last_mean,
                              plane.base_weight)
    lam_v = lam_att[:, None] * share[:, plane.live_cols]
    kinds, per, cmu = plane._kind_memo(keys, plane.leak, np.maximum(plane.live_avg, 1e-9))
    pe = per[0].tolist()
    u = [math.sqrt(_min(_max(la / p / c, 0.0), RHO_MAX) / RHO_MAX)  # u_of
         for la, p, c in zip(lam_v[0].tolist(), pe, cmu[0].tolist())]
    law = plane.stations.law_one(kinds[0].tolist(), u)
    level = [n * p for n, p in zip(law["L"], pe)]
    if not all(abs(n - x) <= SETTLED * _max(x, 1.0) for n, x in zip(plane.L[0].tolist(), level)):
        return False  # a queue still moving: its law changes tick by tick
    live = [a > 1e-9 for a in plane.live_avg[0].tolist()]
    plane.L = np.array([[x if a else 0.0 for x, a in zip(level, live)]])
    plane.lq = np.array([[q * p if a else 0.0 for q, p, a in zip(law["Lq"], pe, live)]])
    lq = np.broadcast_to(plane.lq[:, None, :], (1, k, V))
    lat_keys, _, p_to, p_slow, mean_latency = latency(plane, keys, law, by_key=True)
    led.set_latency(lat_keys, np.ones(keys.shape, dtype=bool), {}, plane, mean_latency)
    A = plane.arrivals[:, t:t + k]
    plane.tokens = np.minimum(plane.token_cap, plane.tokens + plane.retries.budget * A.sum(axis=1))
    groups = split_block(plane.rng, A, share)
    rank = ranks_one(share[0, plane.live_cols].tolist())
    block(led, t, k, A, groups, rank, np.array([law["B"]]), np.array([p_to]), err, np.array([p_slow]), plane.rng, mean,
          np.array([law["pw"]]), lam_v, lq, plane.up, plane.live)
    plane.retry_factor = np.zeros(1)  # attempts equal arrivals without retries
    plane.last_mean, plane.last_rate = mean, lam_v
    return True


def block(led, t, k, offered, groups, rank, p_rej, p_to, err, p_slow, rng, mean, pw, lam_v, lq, up, live) -> None:
    """Ledger.block for one replication: the same draws (each of the k seconds' counts at once, as there) and
    the accounting in Python numbers (counts are whole numbers; a float sum over the k seconds is numpy's)."""
    V = led.V
    led.t = t + k - 1
    led._totals = {}
    g = groups[0]
    cols = g.T.tolist()
    none = cols[-1]
    resets = [sum(x) for x in zip(*cols[1:2 * V:2])]
    zero = [0] * k
    errors, rejected, timeouts = zero, none, zero
    ok_v, served, slow_v = [zero] * V, [zero] * V, [zero] * V
    srv = np.zeros((k, V + 1, 3))
    pr, pt, pe, ps = p_rej[0].tolist(), p_to[0].tolist(), err[0].tolist(), p_slow[0].tolist()
    for v in range(V):
        if not any(cols[2 * v]):  # no traffic to this version in the block (most of a run)
            continue
        n = g[:, 2 * v]
        u = functools.partial(led.uniforms.block, t, k, rank[v])
        rej, rest = take(rng, n, pr[v], u, slot(0, 0))
        to, rest = take(rng, rest, pt[v], u, slot(0, 1))
        e, ok = take(rng, rest, pe[v], u, slot(0, 2))
        sl, _ = take(rng, ok, ps[v], u, slot(0, 3))
        srv[:, v, 0], srv[:, v, 1], srv[:, v, 2] = n, rej + to + e, sl
        rej, to, e, ok, sl = rej.tolist(), to.tolist(), e.tolist(), ok.tolist(), sl.tolist()
        errors = [a + b for a, b in zip(errors, e)]
        rejected = [a + b for a, b in zip(rejected, rej)]
        timeouts = [a + b for a, b in zip(timeouts, to)]
        ok_v[v], served[v], slow_v[v] = ok, [a + b + c for a, b, c in zip(ok, e, to)], sl
    refused = [a + b for a, b in zip(none, resets)]
    srv[:, -1, 0] = srv[:, -1, 1] = refused
    ok = [sum(x) for x in zip(*ok_v)]
    off = offered[0].tolist()
    led.tick_attempts = offered[:, -1]
    requests = sum(off)
    led.requests[0] += requests
    led.attempts[0] += requests
    led.succeeded[0] += sum(ok)
    for cause, counts in ((ERROR, errors), (REJECTED, rejected), (TIMEOUT, timeouts), (RESET, resets)):
        led.failed[0, cause] += sum(counts)
    slow_n = [sum(x) for x in zip(*slow_v)]
    led.slow[0] += sum(slow_n)
    pws, means = pw[0].tolist(), mean[0].tolist()
    queued = [_row_sum([s * p for s, p in zip(x, pws)]) for x in zip(*served)]
    led.queued[0] += np.array(queued).sum()
    ok_sums = [sum(w) for w in ok_v]
    led.lat_sum[0] += _row_sum([n * m for n, m in zip(ok_sums, led.mean_latency[0].tolist())])
    led.lat_n[0] += sum(ok_sums)
    running = led.running[:, None] + np.cumsum(srv[None], axis=1)
    led.cum[:, _ring(t + 1, k, led.Lc)] = running
    led.running = running[:, -1].copy()
    _block_latency_counts(led, t, k, ok_v)
    area = [_row_sum([s * m for s, m in zip(x, means)]) for x in zip(*served)]
    capacity = _row_sum(up[0].tolist()) * led.workers
    util = [_min(1.0, a / _max(capacity, 1e-9)) if capacity > 0 else (1.0 if a > 1e-9 else 0.0) for a in area]
    peak = float(led.peak_util[0])
    for x in util:
        peak = _max(peak, x)
    led.peak_util[0] = peak
    if t + k - 1 >= led.release_at:
        led.min_ready[0] = _min(float(led.min_ready[0]), _row_sum(live[0].tolist()))
    failed = [a + b + c + d for a, b, c, d in zip(errors, rejected, timeouts, resets)]
    if led.record:
        rec = led.rec
        in_flight = _row_sum([a * m for a, m in zip(lam_v[0].tolist(), means)]) + _row_sum(lq[0, 0].tolist())
        for name, value in (("offered", off), ("attempts", off), ("succeeded", ok), ("slow", slow_n),
                            ("queued", queued), ("in_flight", in_flight), ("area", area), ("capacity", capacity)):
            rec[name][0, t:t + k] = value
        led.rec_failed[0, t:t + k] = np.array([errors, rejected, timeouts, resets]).T
        k_cdf, keys = led.plane.k_cdf, led.keys[0].tolist()
        cdfs = reduce(add, (np.array(w)[:, None] * k_cdf[keys[v]] for v, w in enumerate(ok_v)))
        for j in range(k):
            rec["p50"][0, t + j], rec["p99"][0, t + j] = (np.nan if q is None else q
                                                          for q in led.model.quantiles(cdfs[j]))
    assert all(a + b == c for a, b, c in zip(ok, failed, off)), "every user request ends once"


def _block_latency_counts(led, t: int, k: int, ok_v: list[list[int]]) -> None:
    """Ledger._block_latency_counts for one replication."""
    keys = led.keys
    led._grow_keys(keys)
    ml = led.mean_latency[0].tolist()
    led.qsum[0, _ring(t, k, led.Lq)] = [[n * m for n, m in zip(x, ml)] for x in zip(*ok_v)]
    led.qcum[:, _ring(t + 1, k, led.Lq)] = led.qrun[:, None]
    at = np.arange(t + 1, t + k + 1) % led.Lq
    for v, key in enumerate(keys[0].tolist()):
        if not any(ok_v[v]):
            continue
        grown = list(itertools.accumulate(ok_v[v]))
        led.qcum[0, at, v, key] += grown
        led.acc_keys[0, key] += grown[-1]
        led.qrun[0, v, key] += grown[-1]
    if t // led.Lq != (t + k - 1) // led.Lq or t % led.Lq == 0:
        led._forget_cdfs(t + k - 1)
