"""Closed-form queueing results: Erlang B/C, M/M/c waits, M/M/c/K blocking.

Used by the tests to hold the engines to theory, and by capacity planning.
"""
from __future__ import annotations

import math


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load a = λ/μ (stable recursion)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability an arrival waits in M/M/c (a = λ/μ < c)."""
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue (excluding service) of M/M/c."""
    a = lam / mu
    return erlang_c(c, a) / (c * mu - lam)


def mmc_mean_response(c: int, lam: float, mu: float) -> float:
    """Mean time in system of M/M/c."""
    return mmc_mean_wait(c, lam, mu) + 1.0 / mu


def mmck_probabilities(c: int, k: int, lam: float, mu: float) -> list[float]:
    """Stationary distribution of the number in an M/M/c/K system (K = c + queue places)."""
    a = lam / mu
    weights = []
    for n in range(k + 1):
        if n <= c:
            w = math.exp(n * math.log(a) - math.lgamma(n + 1)) if a > 0 else float(n == 0)
        else:
            w = weights[c] * (a / c) ** (n - c)
        weights.append(w)
    total = sum(weights)
    return [w / total for w in weights]


def mmck_blocking(c: int, k: int, lam: float, mu: float) -> float:
    """Probability an arrival finds the M/M/c/K system full (and is rejected)."""
    return mmck_probabilities(c, k, lam, mu)[-1]


def mmc_sojourn_tail(c: int, lam: float, mu: float, t: float) -> float:
    """P(time in system > t) of FIFO M/M/c: service Exp(μ) plus a wait that is Exp(cμ − λ) with probability C."""
    pw, gap = erlang_c(c, lam / mu), c * mu - lam
    if abs(gap - mu) < 1e-9 * mu:
        waited = math.exp(-mu * t) * (1.0 + mu * t)
    else:
        waited = (gap * math.exp(-mu * t) - mu * math.exp(-gap * t)) / (gap - mu)
    return (1.0 - pw) * math.exp(-mu * t) + pw * waited


def md1_wait_cdf(lam: float, d: float, t: float) -> float:
    """P(wait in queue <= t) of M/D/1 with service time d (Erlang's formula, exact for t >= 0)."""
    rho = lam * d
    total = 0.0
    for k in range(int(math.floor(t / d)) + 1):
        x = lam * (k * d - t)  # <= 0: the terms alternate in sign, fine in doubles while λt stays below ~30
        total += x ** k / math.factorial(k) * math.exp(-x)
    return (1.0 - rho) * total


def mm1_deadline(lam: float, mu: float, deadline: float) -> tuple[float, float]:
    """M/M/1 whose client leaves at its deadline, in queue or in service (freeing the worker).

    Returns (P(timeout), mean time in system of the requests served in time). The workload of admitted
    work has an atom P0 at 0 and density λ·P0·e^(−(μ−λ)v) on (0, D) (level crossing); P(timeout) is
    P0·e^(−(μ−λ)D); a request that finds workload v is served in time when its service is under D − v.
    """
    gap, d = mu - lam, deadline
    mass = lam * d if abs(gap) < 1e-12 else lam / gap * (1.0 - math.exp(-gap * d))
    p0 = 1.0 / (1.0 + mass)
    timeout = p0 * math.exp(-gap * d)

    def served_latency(v: float) -> tuple[float, float]:
        """(P(S < D − v), E[(v + S)·1{S < D − v}]) for S ~ Exp(μ)."""
        r = d - v
        p = 1.0 - math.exp(-mu * r)
        e_s = (1.0 - math.exp(-mu * r) * (1.0 + mu * r)) / mu  # E[S·1{S<r}]
        return p, v * p + e_s

    n = 4000
    num, den = 0.0, 0.0
    p, e = served_latency(0.0)
    num, den = p0 * e, p0 * p
    h = d / n
    for i in range(n):  # midpoint rule over the density part
        v = (i + 0.5) * h
        w = lam * p0 * math.exp(-gap * v) * h
        p, e = served_latency(v)
        num, den = num + w * e, den + w * p
    return timeout, num / den
