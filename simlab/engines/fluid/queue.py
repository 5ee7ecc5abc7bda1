"""Vectorised Erlang formulas for the fluid engine's load balancer: Erlang B and an M/M/c station's P(idle).

Every function takes numpy arrays (one element per replication and pool) so a
tick of a thousand replications costs a handful of array operations. The
closed forms agree with simlab.queueing, which the tests check. The queue of a
pool itself is station.py's.
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


def idle_probability_one(c: float, a: float) -> float:
    """idle_probability of one station in Python floats: the same ufuncs on the same values (numpy's and
    scipy's, which give one element what they give an array of it), for a single run's routing shares."""
    c, a = float(c), float(a)
    b = 0.0
    if a > 0 and c >= 1:  # erlang_b
        log_pmf = c * float(np.log(a)) - a - float(gammaln(c + 1.0))
        cdf = float(gammaincc(c + 1.0, a))
        b = float(np.exp(log_pmf)) / (cdf if cdf >= 1e-300 or cdf != cdf else 1e-300)
    elif c < 1 and a > 0:
        b = 1.0
    b = b if b != b or b <= 1.0 else 1.0  # np.minimum(b, 1.0)
    rho = a / c if c > 0 else 1.0
    if a <= 0:
        return 1.0
    if rho >= 1.0:
        return 0.0
    log_ratio = float(gammaln(c + 1.0)) - c * float(np.log(a if a >= 1e-300 else 1e-300))
    den = 1.0 - rho + rho * b
    ratio = float(np.exp(log_ratio if log_ratio <= 700.0 else 700.0))
    p0 = b * ratio * (1.0 - rho) / (den if den >= 1e-300 else 1e-300)
    if p0 != p0:  # np.clip(np.nan_to_num(p0), 0, 1)
        return 0.0
    return 0.0 if p0 < 0.0 else (1.0 if p0 > 1.0 else p0)
