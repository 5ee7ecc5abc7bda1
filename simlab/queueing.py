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
