"""Round robin's queue at one instance, E_n/G/c, solved by simulation when the service law has a heavy tail.

Round robin over n instances hands each one every n-th arrival of a Poisson
stream: an instance sees Erlang-n inter-arrival times (c_a² = 1/n) and serves
them with its c workers. For light-tailed service the wait's tail decays at a
rate η that a root gives (station.py); a lognormal has no exponential moments,
and its wait depends on more than two moments: at ρ 0.8 over 4 instances × 2
workers a lognormal of SCV 1.04 waits 2 % longer than exponential service,
where Allen–Cunneen's (c_a² + c_s²)/2 says 3.5 %, and its wait is more skewed.

So the queue is simulated once per (n, c, service shape) at table-build time:
the Kiefer–Wolfowitz recursion on the c workers' free times, vectorised over
LOADS and CHAINS parallel chains, common random numbers across loads and a
fixed internal seed (a numerical method, the same table in every run). It
gives P(wait), the mean wait and the conditional wait's squared coefficient of
variation at each load, kept as ratios to M/M/c's Erlang C and to
Allen–Cunneen's heavy-traffic mean, which tend to 1 as ρ → 1 (where the
two-moment heavy-traffic law is exact); between loads they are interpolated
in log against (1 − ρ)/ρ, and between instance counts of N_GRID linearly in
c_a². Error (1.96 standard errors, 4 × 2 workers, the lognormal of the
fidelity grid): mean wait ±2 % at ρ 0.8, ±4 % at 0.93; a grid point costs
about 0.3 s for 2 workers per instance (more workers cost more per step).
"""
from __future__ import annotations

import numpy as np

from simlab.engines.fluid.queue import erlang_b

LOADS = np.array([0.2, 0.35, 0.5, 0.62, 0.72, 0.8, 0.87, 0.93])
N_GRID = (2, 3, 4, 8, 16, 64)  # instance counts simulated; others interpolate in c_a² = 1/n (64 and above: 64)
CHAINS, STEPS, WARM = 1000, 4800, 400  # parallel chains per load, arrivals per chain, arrivals before counting
HEAVY = 3.0  # heavier tails mix more slowly: STEPS times (1 + c_s²)/2, up to this
WIDE = 16  # above this many workers per instance, fewer chains (a step costs about 12 + 2c array operations)
REBASE = 64  # steps between moving the time origin (keeps float32 free times exact enough)
SEED = 20240611
LAW_POINTS = np.geomspace(1e-4, 1e4, 1601)  # service time over its mean, where the law is read

_SIMULATED: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_LAWS: dict = {}  # law key -> its CDF on LAW_POINTS (service time over its mean)


def _law_key(survival, mean: float, shape=None):
    """The key of the service law scaled to mean 1: `shape` if given (a hashable name of the law up to scale,
    e.g. a memory leak's slowdown), else the CDF's bytes. The law kept under a key is the one first read for it,
    so a key must determine the law exactly: results then never depend on what a process ran before."""
    cdf = None
    if shape is None:
        cdf = _cdf(survival, mean)
        shape = ("cdf", cdf.tobytes())
    if shape not in _LAWS:
        _LAWS[shape] = _cdf(survival, mean) if cdf is None else cdf
    return shape


def _cdf(survival, mean: float) -> np.ndarray:
    cdf = np.clip(1.0 - np.asarray(survival(LAW_POINTS * mean), dtype=float), 0.0, 1.0)
    return np.maximum.accumulate(cdf)


def _quantiles(cdf: np.ndarray):
    """u ↦ service time over its mean, inverting the CDF (piecewise linear, rescaled to mean exactly 1): a
    table uniform in u, read by index, and the exact inversion for the top cell (where a heavy tail lives)."""
    x = np.concatenate(([0.0], LAW_POINTS))
    f = np.concatenate(([0.0], cdf))
    f[-1] = 1.0  # the little mass past 10⁴ means (if any) is put at the last point
    x = x / float(np.sum(np.diff(f) * 0.5 * (x[1:] + x[:-1])))
    cells = 1 << 14
    table = np.interp(np.arange(cells + 1) / cells, f, x)

    def quantile(u: np.ndarray) -> np.ndarray:
        pos = u * cells
        i = pos.astype(np.int64)
        out = table[i] + (table[i + 1] - table[i]) * (pos - i)
        top = i == cells - 1
        out[top] = np.interp(u[top], f, x)
        return out
    return quantile


def simulate(n: int, c: int, quantile, loads: np.ndarray = LOADS, chains: int = CHAINS, steps: int = STEPS,
             warm: int = WARM, seed: int = SEED, start=None) -> dict[str, np.ndarray]:
    """E_n/G/c by the Kiefer–Wolfowitz recursion, mean service 1: per load, P(wait), the mean wait, the
    conditional wait's SCV, and the standard error of the mean wait (from the spread of chain means)."""
    rng = np.random.default_rng(seed)
    loads = np.asarray(loads, dtype=float)
    gap = (1.0 / (loads * c)).astype(np.float32)[:, None]  # mean inter-arrival time per load
    shape = (len(loads), chains)
    free = np.zeros((c,) + shape, dtype=np.float32)  # the workers' free times, sorted, from the time origin
    if start is not None:  # chains start near the stationary wait (an exponential of that mean), not empty
        first = rng.exponential(1.0, shape) * np.asarray(start, dtype=float)[:, None]
        free[:] = (first[None] + np.arange(c)[:, None, None] / c).astype(np.float32)
    now, d, w, x = (np.zeros(shape, dtype=np.float32) for _ in range(4))
    pos = np.empty(shape, dtype=bool)
    part = np.zeros((3,) + shape, dtype=np.float32)  # Σw, Σw², Σ[w > 0] since the last rebase
    total = np.zeros((3,) + shape)
    for start in range(0, steps, REBASE):
        k = min(REBASE, steps - start)
        inter = (rng.standard_gamma(float(n), (k, chains)) / n).astype(np.float32)
        service = quantile(rng.random((k, chains))).astype(np.float32)
        for j in range(k):
            np.multiply(inter[j], gap, out=x)
            now += x
            np.subtract(free[0], now, out=d)
            np.maximum(d, 0.0, out=w)
            if start + j >= warm:
                part[0] += w
                np.multiply(w, w, out=x)
                part[1] += x
                np.greater(d, 0.0, out=pos)
                part[2] += pos
            np.add(now, w, out=x)
            x += service[j]
            for i in range(1, c):  # insert the busy worker's new free time among the others, in order
                np.minimum(free[i], x, out=free[i - 1])
                np.maximum(free[i], x, out=x)
            free[c - 1] = x
        free -= now
        now[:] = 0.0
        total += part
        part[:] = 0.0
    count = steps - warm
    by_load = total
    waits = by_load[0] / count
    mean_wait = waits.mean(axis=1)
    pw = by_load[2].sum(axis=1) / (count * chains)
    second = by_load[1].sum(axis=1) / (count * chains)
    cond = np.divide(mean_wait, pw, out=np.zeros_like(pw), where=pw > 0)
    scv = np.divide(second / np.maximum(pw, 1e-300), cond**2, out=np.ones_like(pw), where=cond > 0) - 1.0
    return {"pw": pw, "wait": mean_wait, "scv": scv, "se": waits.std(axis=1, ddof=1) / np.sqrt(chains)}


def klb(rho: np.ndarray, ca2: float, cs2: float) -> np.ndarray:
    """Kraemer–Langenbach-Belz factor on Allen–Cunneen's mean wait for smooth arrivals (c_a² < 1), else 1."""
    if ca2 >= 1.0 or ca2 + cs2 <= 0:
        return np.ones_like(rho)
    r = np.clip(rho, 1e-6, 1.0)
    return np.exp(-2.0 * (1.0 - r) * (1.0 - ca2) ** 2 / (3.0 * r * (ca2 + cs2)))


def decay_rate(lam: np.ndarray, c: float, ca2: float, mgf) -> np.ndarray:
    """The wait tail's decay rate η of GI/G/c with gamma inter-arrival times (rate λ, SCV ca2): the root η > 0 of
    log E[e^(ηS/c)] + log E[e^(−ηA)] = 0, E[e^(−ηA)] = (1 + η·ca2/λ)^(−1/ca2). It is exact for exponential service
    (GI/M/c) and for constant service (GI/D/c serves in cyclic order: every c-th arrival per worker)."""
    lam = np.maximum(np.asarray(lam, dtype=float), 1e-12)

    def f(eta):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.log(mgf(eta / c)) - np.log1p(eta * ca2 / lam) / ca2

    hi = np.full_like(lam, 1.0)
    for _ in range(200):  # grow until past the root (f > 0 there, or infinite past the abscissa)
        grow = ~(f(hi) > 0)
        if not grow.any():
            break
        hi = np.where(grow, hi * 2.0, hi)
    lo = np.zeros_like(lam)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        above = f(mid) > 0
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return 0.5 * (lo + hi)


def gi_sigma(rho: np.ndarray, ca2: float) -> np.ndarray:
    """σ of GI/M/c with gamma inter-arrival times of SCV ca2: σ = A*(cμ(1 − σ)), in units where cμ = 1.

    A*(s) = (1 + s·ca2/ρ)^(−1/ca2) (the Laplace transform of a gamma law of mean 1/ρ); σ = ρ for Poisson.
    """
    r = np.clip(rho, 1e-9, 1.0 - 1e-9)
    lo, hi = np.zeros_like(r), np.ones_like(r) - 1e-12
    for _ in range(60):  # f(σ) = σ − A*(1 − σ) is below zero at 0 and crosses once before 1 when ρ < 1
        mid = 0.5 * (lo + hi)
        f = mid - (1.0 + (1.0 - mid) * ca2 / r) ** (-1.0 / ca2)
        lo, hi = np.where(f < 0, mid, lo), np.where(f < 0, hi, mid)
    return np.where(rho < 1.0, 0.5 * (lo + hi), 1.0)


def smooth(rho: np.ndarray, c: float, mu: float, ca2: float, cs2: float, mean_wq: np.ndarray, survival=None,
           mgf=None, shape=None) -> dict:
    """One instance's wait under round robin (arrival SCV ca2 < 1) at each load: P(wait), θ (1 / the conditional
    mean wait), the mean wait, the conditional wait's gamma shape, and whether it was simulated. Exponential
    service: GI/M/c's decay rate cμ(1 − σ); light-tailed service: the decay rate η (decay_rate); P(wait) then
    from `mean_wq`, Allen–Cunneen's mean with KLB's factor. A heavy tail (a survival function but no `mgf`):
    the simulated E_n/G/c law (wait_law), of `shape` = (its key, survival, mean) when given: the law up to
    scale, so a memory leak's slower copies share one simulation."""
    if survival is not None and mgf is None:
        if shape is None:
            shape = (None, survival, 1.0 / mu)
        pw, wait, scv = wait_law(round(1.0 / ca2), int(c), cs2, shape, rho)
        wait = np.nan_to_num(wait / mu)
        theta = np.divide(np.nan_to_num(pw), wait, out=np.zeros_like(wait), where=wait > 0)
        return {"pw": np.nan_to_num(pw), "theta": theta, "wait": wait, "shape": 1.0 / np.nan_to_num(scv, nan=1.0),
                "simulated": True}
    if survival is None:  # GI/M/c: η = cμ(1 − σ), exact
        theta = c * mu * (1.0 - gi_sigma(rho, ca2))
    else:  # light-tailed service: η of E[e^(ηS/c)]·E[e^(−ηA)] = 1 (exact for M and D)
        theta = decay_rate(rho * c * mu, c, ca2, mgf)
    return {"pw": np.clip(mean_wq * theta, 0.0, 1.0), "theta": theta, "wait": mean_wq, "shape": 1.0,
            "simulated": False}


def _erlang_c(c: int, rho: np.ndarray) -> np.ndarray:
    a = rho * c
    b = erlang_b(np.full_like(a, float(c)), a)
    return b / np.maximum(1.0 - rho + rho * b, 1e-300)


def _ratios(n: int, c: int, law, cs2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log(P(wait) / Erlang C), log(mean wait / Allen–Cunneen) and the conditional SCV at LOADS, for one n."""
    key = (n, c, law)
    hit = _SIMULATED.get(key)
    if hit is None:
        ec = _erlang_c(c, LOADS)
        ac = ec / (c * (1.0 - LOADS)) * (1.0 / n + cs2) / 2.0
        steps = int(STEPS * min(max((1.0 + cs2) / 2.0, 1.0), HEAVY)) // REBASE * REBASE
        sim = simulate(n, c, _quantiles(_LAWS[law]), chains=CHAINS * min(WIDE, c) // c, steps=steps, start=ac)
        hit = _SIMULATED[key] = (np.log(np.maximum(sim["pw"], 1e-12) / ec),
                                 np.log(np.maximum(sim["wait"], 1e-12) / ac), sim["scv"])
    return hit


def wait_law(instances: int, c: int, cs2: float, law: tuple, rho: np.ndarray):
    """(P(wait), mean wait in units of the mean service time, SCV of the wait given a wait) of one instance
    of `c` workers under round robin over `instances`, at each load ρ < 1 (NaN at and above 1). `law` is
    (key or None, survival function, mean) of the service time (see _law_key)."""
    rho = np.asarray(rho, dtype=float)
    name, survival, mean = law
    law = _law_key(survival, mean, name)
    ca2 = 1.0 / max(int(instances), 2)
    grid_ca2 = np.array([1.0 / m for m in N_GRID])  # falling
    hi = int(np.clip(np.searchsorted(-grid_ca2, -ca2), 1, len(N_GRID) - 1))  # grid_ca2[hi] ≤ ca2 ≤ grid_ca2[hi-1]
    t = float(np.clip((grid_ca2[hi - 1] - ca2) / (grid_ca2[hi - 1] - grid_ca2[hi]), 0.0, 1.0))
    a = _ratios(N_GRID[hi - 1], c, law, cs2) if t < 1.0 else None  # a grid point: that one simulation
    b = _ratios(N_GRID[hi], c, law, cs2) if t > 0.0 else a
    lpw, lwait, scv = ((1.0 - t) * u + t * v for u, v in zip(a or b, b))
    # interpolate against x = (1 − ρ)/ρ, where the ratios tend to their heavy-traffic values at x = 0
    xs = (1.0 - LOADS[::-1]) / LOADS[::-1]
    x = np.divide(1.0 - rho, rho, out=np.full_like(rho, np.inf), where=rho > 0)
    along = lambda y, end: np.interp(x, np.concatenate(([0.0], xs)), np.concatenate(([end], y[::-1])))  # noqa: E731
    inside = (rho > 0) & (rho < 1.0)
    r = np.clip(rho, 1e-9, 1.0 - 1e-9)
    ec = _erlang_c(c, r)
    pw = np.where(inside, np.clip(ec * np.exp(along(lpw, 0.0)), 0.0, 1.0), np.nan)
    wait = np.where(inside, ec / (c * (1.0 - r)) * (ca2 + cs2) / 2.0 * np.exp(along(lwait, 0.0)), np.nan)
    return pw, wait, np.where(inside, np.maximum(along(scv, 1.0), 0.05), np.nan)
