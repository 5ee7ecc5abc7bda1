"""Vectorised queueing approximations for the fluid engine: Erlang B/C, Allen–Cunneen, finite-queue blocking.

Every function takes numpy arrays (one element per replication and pool) so a
tick of a thousand replications costs a handful of array operations. The
closed forms agree with simlab.queueing, which the tests check.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaincc, gammaln


def erlang_b(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Blocking probability of M/M/c/c: Poisson(a) pmf at c over its cdf at c (exact, any c)."""
    c = np.asarray(c, dtype=float)
    a = np.asarray(a, dtype=float)
    out = np.zeros(np.broadcast(c, a).shape)
    ok = (a > 0) & (c >= 1)
    cc, aa = np.broadcast_to(c, out.shape)[ok], np.broadcast_to(a, out.shape)[ok]
    log_pmf = cc * np.log(aa) - aa - gammaln(cc + 1.0)
    cdf = gammaincc(cc + 1.0, aa)  # P(Poisson(a) <= c)
    out[ok] = np.exp(log_pmf) / np.maximum(cdf, 1e-300)
    out[(c < 1) & (a > 0)] = 1.0
    return np.minimum(out, 1.0)


def erlang_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Probability an arrival waits in M/M/c; 1 at or above saturation."""
    c = np.asarray(c, dtype=float)
    a = np.asarray(a, dtype=float)
    b = erlang_b(c, a)
    rho = np.divide(a, c, out=np.full(np.broadcast(c, a).shape, np.inf), where=c > 0)
    denom = 1.0 - rho + rho * b
    out = np.divide(b, denom, out=np.ones_like(b), where=(rho < 1.0) & (denom > 0))
    return np.where(rho < 1.0, np.clip(out, 0.0, 1.0), 1.0)


def mean_wait(c, lam, mu, scv_arrival, scv_service) -> np.ndarray:
    """Allen–Cunneen mean wait in queue of G/G/c: Erlang C wait scaled by (ca² + cs²)/2 (inf when saturated)."""
    c, lam, mu = (np.asarray(x, dtype=float) for x in (c, lam, mu))
    slack = c * mu - lam
    pw = erlang_c(c, lam / mu)
    w = np.divide(pw, slack, out=np.full(np.broadcast(c, lam, mu).shape, np.inf), where=slack > 0)
    return w * (np.asarray(scv_arrival) + np.asarray(scv_service)) / 2.0


def wait_tail_rate(c, lam, mu, scv_arrival, scv_service) -> np.ndarray:
    """θ in P(W > t) = P(wait)·exp(-θ t): (cμ - λ) for M/M/c, divided by (ca² + cs²)/2 for G/G/c."""
    c, lam, mu = (np.asarray(x, dtype=float) for x in (c, lam, mu))
    scale = np.maximum((np.asarray(scv_arrival) + np.asarray(scv_service)) / 2.0, 1e-6)
    return np.maximum(c * mu - lam, 0.0) / scale


def finite_queue_blocking(c, a, places) -> np.ndarray:
    """P(an arrival finds M/M/c/K full), K = c + places: ρ^Q / (1/B + Σ_{k=1..Q} ρ^k), any ρ."""
    c, a, q = (np.asarray(x, dtype=float) for x in (c, a, places))
    shape = np.broadcast(c, a, q).shape
    c, a, q = (np.broadcast_to(x, shape) for x in (c, a, q))
    b = erlang_b(c, a)
    rho = np.divide(a, c, out=np.zeros(shape), where=c > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_rho = np.log(np.maximum(rho, 1e-300))
        near_one = np.abs(rho - 1.0) < 1e-9
        geom = np.where(near_one, q, rho * np.expm1(q * log_rho) / np.where(near_one, 1.0, rho - 1.0))
        # ρ^Q / (1/B + geom), written to stay finite when ρ^Q overflows
        rq = np.exp(np.minimum(q * log_rho, 700.0))
        out = rq / (1.0 / np.maximum(b, 1e-300) + geom)
    out = np.where(b <= 0, 0.0, out)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def relaxation_time(c, a, mu) -> np.ndarray:
    """How long a queue takes to settle after a change: 1/(μ(√c - √a)²), M/M/1's formula at c = 1."""
    c, a, mu = (np.asarray(x, dtype=float) for x in (c, a, mu))
    gap = np.maximum(np.sqrt(c) - np.sqrt(np.maximum(a, 0.0)), 1e-3)
    return 1.0 / (mu * gap * gap)


def idle_probability(c, a) -> np.ndarray:
    """P(an M/M/c station is empty): how often least-outstanding balancing finds a live instance at zero."""
    c, a = (np.asarray(x, dtype=float) for x in (c, a))
    b = erlang_b(c, a)
    rho = np.divide(a, c, out=np.ones(np.broadcast(c, a).shape), where=c > 0)
    # P0 = B·c!/a^c · (1 - ρ)/(1 - ρ + ρB), from the Erlang B recursion
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = gammaln(c + 1.0) - c * np.log(np.maximum(a, 1e-300))
        p0 = b * np.exp(np.minimum(log_ratio, 700.0)) * (1.0 - rho) / np.maximum(1.0 - rho + rho * b, 1e-300)
    return np.where(a <= 0, 1.0, np.where(rho >= 1.0, 0.0, np.clip(np.nan_to_num(p0), 0.0, 1.0)))
