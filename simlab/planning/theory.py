"""Capacity by Erlang C: the M/M/c fleet size for a latency percentile, to hold the search to theory."""
from __future__ import annotations

import math

from simlab.queueing import mmc_sojourn_tail


def mmc_quantile(c: int, lam: float, mu: float, q: float = 0.99) -> float:
    """The q-quantile of the time in system of FIFO M/M/c (seconds); infinite when unstable."""
    if lam >= c * mu:
        return math.inf
    from scipy.optimize import brentq

    high = 1.0 / mu
    while mmc_sojourn_tail(c, lam, mu, high) > 1.0 - q:
        high *= 2.0
    return float(brentq(lambda t: mmc_sojourn_tail(c, lam, mu, t) - (1.0 - q), 0.0, high, xtol=1e-9))


def erlang_servers(lam: float, mu: float, target: float, q: float = 0.99) -> int:
    """The fewest servers c for which M/M/c's q-quantile of time in system is at most `target` seconds.

    Raises ValueError when no number of servers can: the service time's own quantile, -ln(1 - q) / mu, is the
    floor every c approaches."""
    if -math.log(1.0 - q) / mu >= target:
        raise ValueError(f"the service time alone has a {q:.0%} quantile of {-math.log(1.0 - q) / mu:g}s, "
                         f"above the target {target:g}s")
    c = max(1, math.floor(lam / mu) + 1)
    while mmc_sojourn_tail(c, lam, mu, target) > 1.0 - q:
        c += 1
    return c
