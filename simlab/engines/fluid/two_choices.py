"""Power-of-two-choices dispatch over n instances of c workers: the supermarket model's refined mean field.

The load balancer samples two instances with replacement and sends the request to
the one with fewer outstanding (engines/request/balancing.py `_two_choices`). Let
s_k be the share of instances with at least k outstanding (s_0 = 1): both samples
are at k or above with probability s_k² (exactly, for draws with replacement from
the instances' shares). With λ the arrival rate per instance and μ the service
rate per worker, the drift of s_k is
    λ(s_{k−1}² − s_k²) − μ·min(k, c)·(s_k − s_{k+1}),
and its zero, summed from k upward, is the mean-field fixed point (Mitzenmacher's
supermarket model, here with c workers per instance):
- k ≤ c: λ·s_{k−1}² = μ·(k·s_k + Σ_{j=k+1..c} s_j) (at k = 1: Σ s_j = λ/μ, work conservation);
- k > c: s_k = ρ·s_{k−1}² (ρ = λ/(cμ)), a doubly exponential tail;
given s_c the first set runs down to s_0, which grows with s_c: a bisection finds s_0 = 1.
With c = 1 this is s_k = ρ^(2^k − 1).

The fixed point is the limit of many instances; a fleet of n waits longer (its
instances fluctuate together: the mean field is 47 % short on the mean wait at
4 × 2 workers and ρ 0.8, 9 % at 30 × 2). The refined mean field (Gast & Van Houdt,
2017) adds the 1/n term: E[s] ≈ s* + V/n, with A the drift's Jacobian at s*, Q its
noise (the rates of the ±1/n moves), W the solution of A·W + W·Aᵀ + Q = 0 and
V = −A⁻¹·(½ Σ_jl ∂²drift/∂s_j∂s_l·W_jl). Then the mean number waiting per instance
is Σ_{k>c} E[s_k] (Little's law gives the wait), P(wait) = E[s_c²] =
s_c*² + (2·s_c*·V_c + W_cc)/n, and an arrival that joins an instance with k ≥ c
outstanding waits for k − c + 1 completions at rate cμ. Its error at one instance
(where power-of-two is M/M/c) is carried as a 1/n² term (`_solved`), and near
saturation the wait is blended with the pooled M/M/nc queue's (`station_law`).
Against exact chains (2, 3 instances) and exact simulations (4 × 2, 16 × 2) within
3.7 % up to ρ 0.95, against the request engine at 21 more points within 5 %
(docs/fluid-engine.md). Exponential service; `station_law` scales it
for any service time by the first completion among c busy workers and Allen–Cunneen.
"""
from __future__ import annotations

import functools

import numpy as np

POINTS = np.concatenate((np.linspace(0.02, 0.9, 45), 1.0 - np.geomspace(0.09, 0.002, 24)))
"""Loads at which the refined mean field is solved; the station tables interpolate between them."""
TOP = float(POINTS[-1])  # above this load the pooled station's law stands (the expansion degenerates at ρ = 1)
TAIL = 1e-15  # tail levels are kept while s_k is above this


def fixed_point(c: int, rho: np.ndarray) -> np.ndarray:
    """s_k, k = 0..c (rows), at each load ρ < 1 (columns): the mean-field share of instances with ≥ k outstanding."""
    rho = np.atleast_1d(np.asarray(rho, dtype=float))
    ratio = 1.0 / (rho * c)  # μ/λ
    lo, hi = np.zeros_like(rho), np.minimum(rho, 1.0)  # s_c ≤ ρ: Σ_{k≤c} s_k = ρc with s_c the least
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        over = _down(mid, c, ratio)[0] > 1.0
        lo, hi = np.where(over, lo, mid), np.where(over, mid, hi)
    return _down(0.5 * (lo + hi), c, ratio)


def _down(top: np.ndarray, c: int, ratio: np.ndarray) -> np.ndarray:
    s = np.zeros((c + 1,) + top.shape)
    s[c] = top
    above = np.zeros_like(top)  # Σ_{j=k+1..c} s_j
    for k in range(c, 0, -1):
        s[k - 1] = np.sqrt(ratio * (k * s[k] + above))
        above = above + s[k]
    return s


def levels(c: int, rho: float, head: np.ndarray | None = None) -> np.ndarray:
    """s_1, s_2, … of the fixed point at one load, down to TAIL (`head`: s_0..s_c if already solved)."""
    s = list((fixed_point(c, np.array([rho]))[:, 0] if head is None else head)[1:])
    while s[-1] > TAIL and len(s) < c + 200:
        s.append(rho * s[-1] ** 2)
    return np.array(s)


def refined(n: int, c: int, rho: float, head: np.ndarray | None = None) -> dict[str, float]:
    """P(wait), the mean wait (units of the mean service time) and the conditional wait's squared coefficient of
    variation over n instances of c workers at load ρ < 1 (exponential service); n = 0: the mean field alone."""
    from scipy.linalg import solve_continuous_lyapunov

    x = levels(c, rho, head)
    size = len(x)
    lam, k = rho * c, np.arange(1, size + 1)
    busy = np.minimum(k, c).astype(float)  # μ = 1
    prev, nxt = np.concatenate(([1.0], x[:-1])), np.concatenate((x[1:], [0.0]))
    a = np.diag(-2.0 * lam * x - busy) + np.diag(2.0 * lam * x[:-1], -1) + np.diag(busy[:-1], 1)
    moves = np.diag(lam * (prev**2 - x**2) + busy * (x - nxt))
    w = solve_continuous_lyapunov(a, -moves)
    var = np.diag(w)
    curvature = lam * (np.concatenate(([0.0], var[:-1])) - var)  # ½ Σ ∂²drift_k/∂s² · W: ±2λ on s_{k−1}², s_k²
    v = -np.linalg.solve(a, curvature)
    scale = 1.0 / n if n > 0 else 0.0
    mean = x + v * scale  # an expansion: a level's share may pass 1 for a few instances; their sum is what counts
    joined = np.clip(x * x + (2.0 * x * v + var) * scale, 0.0, 1.0)[c - 1:]  # E[s_k²], k ≥ c: joins level ≥ k
    j = np.arange(1, len(joined) + 1)  # completions to wait for at level k: k − c + 1
    pw, first, second = float(joined[0]), float(joined.sum()), float((2.0 * j * joined).sum())
    scv = second * pw / first**2 - 1.0 if first > 0 else 1.0  # Σ 2j·P(≥ k) = E[j(j + 1)]; moments of the wait·cμ
    return {"pw": pw, "wait": float(mean[c:].sum() / lam), "scv": scv}


@functools.lru_cache(maxsize=256)
def _solved(n: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`refined` at POINTS, with its error at one instance (where power-of-two is M/M/c, exactly) carried as a
    1/n² term: the expansion made exact at n = 1 (a Richardson step; it takes 4 × 2 workers from −5 % to
    within 1.5 % of an exact simulation)."""
    from simlab.queueing import erlang_c, mmc_mean_wait

    heads = fixed_point(c, POINTS)
    out = []
    for i, r in enumerate(POINTS):
        at_n, at_1 = refined(n, c, float(r), heads[:, i]), refined(1, c, float(r), heads[:, i])
        exact = {"pw": erlang_c(c, r * c), "wait": mmc_mean_wait(c, r * c, 1.0)}
        out.append({f: at_n[f] + (exact[f] - at_1[f]) / n**2 for f in exact} | {"scv": at_n["scv"]})
    return tuple(np.array([row[f] for row in out]) for f in ("pw", "wait", "scv"))


def law(instances: int, workers: int, rho: np.ndarray) -> dict[str, np.ndarray]:
    """`refined` at each load (interpolated between POINTS, solved once per fleet shape): P(wait), the mean
    wait in units of the mean service time and the conditional wait's SCV; NaN at and above TOP."""
    rho = np.asarray(rho, dtype=float)
    pw, wait, scv = _solved(int(instances), int(workers))
    inside = rho <= TOP
    at = lambda y: np.where(inside, np.interp(rho, POINTS, y), np.nan)  # noqa: E731
    # the wait falls to zero with the load faster than linearly: interpolate its logarithm
    return {"pw": at(pw), "wait": np.where(inside, np.exp(np.interp(rho, POINTS, np.log(np.maximum(wait, 1e-300)))),
                                           np.nan), "scv": at(scv)}


BLEND = 6.0
"""The two limits of the mean wait are blended as (pooled^p + refined^p)^(1/p): the pooled queue of all n·c
workers is a lower bound that a few instances reach in heavy traffic (power-of-two pools resources there), the
refined mean field holds for many instances. p = 6 fits the exact chains of 2 and 3 instances best (within
3 %) and is checked on exact simulations of 4 and 16 instances and on the request engine (docs/fluid-engine.md)."""


def first_completion(survival, mean: float, c: int) -> float:
    """c·E[min of c equilibrium residual service times] / E[S]: how long a request that finds all c workers busy
    waits for the first of them, against exponential service (1). For one worker it is (1 + c_s²)/2
    (Pollaczek–Khinchine); with more, a skewed law frees a worker sooner (a lognormal of SCV 1.04: 0.92 at c = 2)."""
    if survival is None:
        return 1.0
    t = np.concatenate(([0.0], np.geomspace(1e-6, 1e4, 4001))) * mean
    tail = np.clip(np.asarray(survival(t), dtype=float), 0.0, 1.0)
    area = np.concatenate(([0.0], np.cumsum(0.5 * (tail[1:] + tail[:-1]) * np.diff(t))))
    residual = np.clip(1.0 - area / max(area[-1], 1e-300), 0.0, 1.0)  # P(R > t), R the equilibrium residual
    return float(c * np.sum(0.5 * (residual[1:] ** c + residual[:-1] ** c) * np.diff(t)) / area[-1])


def station_law(instances: int, workers: int, rho: np.ndarray, pooled_pw: np.ndarray, pooled_wait: np.ndarray,
                scale: np.ndarray, first: float = 1.0) -> dict[str, np.ndarray]:
    """P(wait), the mean wait and the conditional wait's SCV (exponential-service part) of power-of-two over
    `instances` × `workers` at each load, given the pooled station's P(wait) and mean wait (units of the mean
    service time, its service-time factor included), Allen–Cunneen's factor `scale` ((1 + c_s²)/2) and
    `first` (first_completion); NaN above TOP. A request that waits first waits for a worker to free (`first`
    on the mean field's pw/c), then for each completion ahead of it (`scale`)."""
    mf = law(instances, workers, rho)
    own = mf["pw"] / workers * first + (mf["wait"] - mf["pw"] / workers) * scale
    pooled = np.maximum(pooled_wait, 0.0)
    top = np.maximum(own, pooled)
    with np.errstate(invalid="ignore", divide="ignore"):
        wait = top * (1.0 + (np.minimum(own, pooled) / np.maximum(top, 1e-300)) ** BLEND) ** (1.0 / BLEND)
        heavy = np.divide(pooled**BLEND, own**BLEND + pooled**BLEND, out=np.zeros_like(top), where=top > 0)
    scv = heavy * 1.0 + (1.0 - heavy) * _mean_field_scv(workers, rho)
    return {"pw": np.maximum(mf["pw"], pooled_pw), "wait": wait, "scv": scv}


@functools.lru_cache(maxsize=64)
def _mf_scv(c: int) -> np.ndarray:
    return np.array([refined(0, c, float(r))["scv"] for r in POINTS])


def _mean_field_scv(c: int, rho: np.ndarray) -> np.ndarray:
    """The conditional wait's SCV in the mean field (its 1/n term is not reliable for second moments)."""
    return np.interp(rho, POINTS, _mf_scv(int(c)))
