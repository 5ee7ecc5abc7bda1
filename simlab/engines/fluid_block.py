"""Blocks of unchanged ticks: k seconds of the fluid data plane drawn at once as (R, k) arrays.

Between fleet events, controller wakes, migration ends and effect changes,
a tick's inputs are the previous tick's. When, in addition, no pool waits
noticeably (P(wait) below NO_WAIT, no fluid backlog), retries are off and no
memory leak or crash is pending, a tick's outcome depends on its own draws
only (the queue relaxes deterministically), so the k ticks need one set of
numpy calls instead of k. The draws have the same distribution as k single
ticks, in another layout: other numbers for a seed, the same ones for the
same seed.
"""
from __future__ import annotations

import numpy as np

from simlab.engines.fluid_latency import NO_WAIT

OLD, NEW = 0, 1


def tick_block(plane, t: int, k: int) -> bool:
    """Ticks t .. t+k-1 of every replication at once; False (nothing done) where a block would not be exact."""
    if plane.retries.max or plane.leaky_reps or plane.held_reset.any() or plane._effect_times is None:
        return False
    lam = plane.lam[t:t + k]
    if len(lam) < k or (lam != lam[0]).any():
        return False
    keys = plane.effect_keys(t)
    if plane._ek[2] < t + k:  # an attempt's effects change inside the block
        return False
    mean, scv, err = plane.k_mean[keys], plane.k_scv[keys], plane.k_err[keys]
    lam_att = lam[0] * (1.0 + plane.retry_factor)
    share = plane._share_memo(lam_att, plane.live_avg, plane.dead_avg, plane.weight, plane.last_mean)
    lam_v = lam_att[:, None] * share[:, [0, 2]]
    n_live = plane.live_avg
    cap_rate, pw, _theta, lq_ss, block, tau = plane._queue_memo(lam_v, mean, scv, np.maximum(n_live, 1e-9))
    lq0 = plane.lq
    q_cap = np.minimum(n_live * plane.queue_limit, cap_rate * plane.timeout)
    fluid = (lam_v >= cap_rate) | (lq0 > lq_ss + np.maximum(1.0, 0.5 * lq_ss))
    # the relaxing queue moves monotonically from lq0 toward lq_ss: below q_cap at both ends, below it throughout
    if fluid.any() or (pw >= NO_WAIT).any() or (np.maximum(lq0, lq_ss) > q_cap).any():
        return False
    decay = np.exp(-1.0 / np.maximum(tau, 1e-9))
    steps = np.arange(1, k + 1)[None, :, None]
    lq = lq_ss[:, None, :] + (lq0 - lq_ss)[:, None, :] * decay[:, None, :] ** steps  # (R, k, 2) after each tick
    model, k_cdf = plane.model, plane.k_cdf
    cdf_t, cdf_s = k_cdf[:, model.i_timeout][keys], k_cdf[:, model.i_threshold][keys]
    p_to = np.minimum(np.maximum(1.0 - cdf_t, 0.0), 1.0)
    p_slow = np.divide(cdf_t - cdf_s, cdf_t, out=np.zeros_like(cdf_t), where=cdf_t > 0)
    p_slow = np.minimum(np.maximum(p_slow, 0.0), 1.0)
    led = plane.ledger
    led.set_latency(keys, np.ones(keys.shape, dtype=bool), {}, plane, plane.k_mean[keys] * plane.leak)
    A = plane.arrivals[:, t:t + k]
    plane.tokens = np.minimum(plane.token_cap, plane.tokens + plane.retries.budget * A.sum(axis=1))
    groups = split_block(plane.rng, A, share)
    led.block(t, k, A, groups, block, p_to, err, p_slow, plane.rng, mean, pw, lam_v, lq, plane.up, plane.live)
    plane.lq = lq[:, -1]
    plane.retry_factor = np.zeros(plane.R)  # attempts equal arrivals without retries
    plane.last_mean, plane.last_rate = mean, lam_v
    return True


def split_block(rng, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Multinomial split of n (R, k) over the columns of p (R, m), by sequential binomials: (R, k, m).

    A column no replication sends anything to (or that takes everything left everywhere) needs no draw.
    """
    R, k = n.shape
    out = np.zeros((R, k, p.shape[1]), dtype=np.int64)
    left = n.astype(np.int64)
    rest = np.ones(R)
    for j in range(p.shape[1] - 1):
        q = np.minimum(np.maximum(np.divide(p[:, j], rest, out=np.zeros(R), where=rest > 1e-12), 0.0), 1.0)
        if q.any() and left.any():
            out[:, :, j] = left if (q == 1.0).all() else rng.binomial(left, q[:, None])
            left = left - out[:, :, j]
        rest = rest - p[:, j]
    out[:, :, -1] = left
    return out
