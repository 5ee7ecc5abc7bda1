"""One replication's tick draws in Python numbers: the split over pools and the outcomes of the attempts.

A single run (R = 1) spends most of a tick in numpy's cost per call on arrays of
one element. These are routing.split and Ledger.outcomes for that case: the
same Generator calls with the same arguments in the same order (a binomial of
an int and a float draws what one of arrays of one element draws), the same
float operations on the same values, so the same numbers; counts are whole
numbers and add exactly in any order.
"""
from __future__ import annotations

import numpy as np

from simlab.engines.fluid.ledger import ERROR, REJECTED, RESET, TIMEOUT


def split(rng, n: int, p: list[float]) -> list[int]:
    """routing.split of n attempts over the shares p (one replication, every column drawn)."""
    out, left, rest = [], n, 1.0
    for pj in p[:-1]:
        # rest: 1 − p₀ − p₁ − … subtracted in turn, as np.subtract.accumulate does
        q = pj / rest if rest > 1e-12 else 0.0
        q = min(max(q, 0.0), 1.0)
        x = rng.binomial(left, q) if left else 0
        out.append(x)
        left -= x
        rest = rest - pj
    out.append(left)
    return out


def _take(rng, n: int, p: float) -> tuple[int, int]:
    """ledger._take for one element: Binomial(n, p) and what is left, no draw at n = 0 or p = 0."""
    if not n or not p:
        return 0, n
    k = rng.binomial(n, min(max(p, 0.0), 1.0))
    return k, n - k


def outcomes(led, groups: list[int], p_rej, p_to, err, p_slow, rng) -> np.ndarray:
    """Ledger.outcomes for one replication (groups as split gives them); returns failures by cause (1, 4)."""
    V = led.V
    p_rej, p_to, err, p_slow = (a[0].tolist() for a in (p_rej, p_to, err, p_slow))
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
        rej, rest = _take(rng, n, p_rej[v])
        to, rest = _take(rng, rest, p_to[v])
        e, ok = _take(rng, rest, err[v])
        sl, _ = _take(rng, ok, p_slow[v])
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
