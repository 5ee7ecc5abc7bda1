"""A queueing station (c workers, K places, client deadline D) as the fluid engine sees it, at any load.

Stationary law, tabulated over the arrival rate (ρ from 0 to RHO_MAX) once per
station kind, with two truncations and whichever holds the shorter queue:
- places (M/M/c/K): n < c in system with weight aⁿ/n!; the all-busy mass of
  M/M/c/K, w_c·Σ_{j≤K} ρʲ, spread over j = 0..K waiting with ratio
  q = sρ/(1 − ρ + sρ), s = (c_a² + c_s²)/2 (times the Kraemer–Langenbach-Belz
  factor for smooth arrivals) — exactly M/M/c/K when s = 1, and Allen–Cunneen's
  mean wait when K is unbounded; an arrival finding K waiting is rejected
  (blocking at every ρ, including above 1). Round robin's smoother arrivals:
  one instance's E_n/G/c queue (round_robin.py: the tail's decay rate for
  light-tailed service, a simulated wait law for heavy tails); below saturation
  the conditional wait is otherwise a gamma law of M/G/1's (Takács) squared
  coefficient of variation;
- deadline, only at the rates where a wait can reach it: Brandt's M/M/c+G with
  the patience D − S on the wait (`_patience_law`), or for M/M/1 the exact law
  of the admitted workload, density w_0·(λ/s)·e^(−θv) on (0, D) with θ = (cμ − λ)/s
  (`_workload_law`); any sign of θ (overload too).

Transients follow the pointwise-stationary fluid approximation: the mean number
in system L moves as dL/dt = (λ − λₑ(L))·(1 − B(λₑ)), where λₑ(L) is the arrival
rate whose stationary mean is L, and a tick's arrivals meet the stationary law at
λₑ. Stepped by implicit Euler (stable for fast stations, exact at equilibrium).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincc, gammaln

from simlab.engines.fluid import round_robin, shortest_queue, two_choices

RHO_MAX = 8.0
GRID = 2048
_U = np.linspace(0.0, 1.0, GRID)
RHO = RHO_MAX * _U**2  # dense near 0 and 1, where the laws bend most
FIELDS = ("L", "B", "pw", "theta", "trunc", "Lq", "pto", "shape")
BIG = 1e12  # stands for an unbounded wait law (θ or truncation) in the tables, which interpolate


def _log_geometric(log_q: np.ndarray, K: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For weights qʲ, j = 0..K: log Σ qʲ, the share of j = K, and the mean j (stable for any q ≥ 0)."""
    log_q = np.asarray(log_q, dtype=float)
    if K <= 0:
        zero = np.zeros_like(log_q)
        return zero, np.ones_like(log_q), zero
    big = log_q > 0
    x = np.where(big, -log_q, log_q)  # ≤ 0: weights p^i, p = e^x, counted from the heavy end
    p = np.exp(x)
    n1 = K + 1.0
    pk1 = np.exp(np.maximum(n1 * x, -745.0))
    near = np.abs(x) < 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sum = np.where(near, math.log(n1), np.log(-np.expm1(n1 * x)) - np.log(-np.expm1(np.where(near, -1.0, x))))
        mean_from_heavy = np.where(near, K / 2.0, p / (1.0 - p) - n1 * pk1 / (1.0 - pk1))
    end_share = np.exp(-log_sum)  # the heavy end's weight (1) over the sum
    light_share = np.exp(np.maximum(K * x, -745.0) - log_sum)
    tail = np.where(big, end_share, light_share)
    mean = np.where(big, K - mean_from_heavy, mean_from_heavy)
    log_total = np.where(big, K * log_q + log_sum, log_sum)
    return log_total, tail, np.nan_to_num(mean)


def _truncated_exp_mean(theta: np.ndarray, d: float) -> np.ndarray:
    """Mean of the density ∝ e^(−θv) on (0, d), any sign of θ (d/2 at θ = 0); 1/θ when d is unbounded."""
    if not math.isfinite(d):
        return np.divide(1.0, theta, out=np.full_like(theta, np.inf), where=theta > 0)
    return d * _universal_mean(theta * d)


def stationary(c: float, K: float, mu: float, ca2: float, cs2: float, deadline: float, m3: float = 6.0,
               instances: int = 1, rho: np.ndarray = RHO, survival=None, mgf=None,
               dispatch: str = "least_outstanding", shape=None) -> dict:
    """The stationary law per ρ (arrays over rho): L, B, P(wait | admitted), wait law (θ, truncation), Lq, and
    P(timeout) where the deadline binds (NaN where the response-time law gives it). `survival(x)` is P(S > x) of
    the service time (None: exponential with rate mu); ca2 and cs2 the squared coefficients of variation of
    the inter-arrival and service times, m3 the service time's third moment over its mean cubed; `mgf(s)` E[e^(sS)] (None: exponential, or no
    exponential moments when `survival` is given). `instances` > 1:
    the c workers sit on that many instances fed by `dispatch`, least-outstanding (shortest_queue.py) or
    power-of-two (two_choices.py), not in one pooled queue. `shape`: (a key, survival, mean) of the service law
    up to scale, for round robin's simulated wait (round_robin.smooth)."""
    rho = np.maximum(np.asarray(rho, dtype=float), 1e-12)
    lam = rho * c * mu
    a = lam / mu
    s = np.maximum((ca2 + cs2) / 2.0 * round_robin.klb(rho, ca2, cs2), 1e-3)
    # weights relative to w_{c-1} = a^(c-1)/(c-1)!
    log_w1 = (c - 1.0) * np.log(a) - gammaln(c)
    with np.errstate(divide="ignore"):
        below = a + np.log(gammaincc(c, a)) - log_w1  # log Σ_{n<c} aⁿ/n!
        busy_below = (np.log(a) + a + np.log(gammaincc(c - 1.0, a)) - log_w1 if c > 1
                      else np.full_like(a, -np.inf))  # log Σ_{n<c} n·aⁿ/n!
    # places: all-busy mass (ρ/1)·Σ_{j≤K} ρʲ relative to w_{c-1}, spread with ratio q
    log_g_rho, _, _ = _log_geometric(np.log(rho), K)
    log_mk = np.log(rho) + log_g_rho
    denom = 1.0 - rho + s * rho
    log_q = np.where(denom > 0, np.log(s * rho) - np.log(np.maximum(denom, 1e-300)), 50.0)
    _, tail, mean_j = _log_geometric(log_q, K)
    p_busy, busy = _busy(log_mk, below, busy_below, c)
    block = p_busy * tail
    lq = p_busy * mean_j
    waiting = p_busy - block  # arrivals that find every worker busy and a place free
    pw = np.divide(waiting, 1.0 - block, out=np.ones_like(block), where=block < 1.0)
    admitted = lam * (1.0 - block)
    with np.errstate(over="ignore"):  # no one waits (pw ≈ 0): an unbounded mean that no request meets
        wait_mean = np.divide(lq, admitted * np.maximum(pw, 1e-300), out=np.zeros_like(lq), where=admitted > 0)
    # the wait of position j is about j/(cμ): with K places no wait passes (K + 1)/(cμ), and above saturation
    # the places stay nearly full, so the wait gathers near that bound (a truncated exponential of its mean)
    span = (K + 1.0) / (c * mu) if (K + 1.0) / (c * mu) < BIG else math.inf
    th = np.divide(1.0, wait_mean, out=np.full_like(wait_mean, BIG), where=wait_mean > 1.0 / BIG)
    trunc = np.full_like(lam, BIG)
    if math.isfinite(span):  # where the bound shows (a wait law within 30 means of it), a truncated fit
        bound = th * span < 30.0
        th = np.where(bound, _fit_truncated_exp(np.minimum(wait_mean, span), span), th)
        trunc = np.where(bound, span, trunc)
    gi = np.zeros(lam.shape, dtype=bool)
    if ca2 < 1.0:  # smoother arrivals (round robin): one instance's E_n/G/c queue (round_robin.py)
        mean_wq = np.divide(lq, admitted, out=np.zeros_like(lq), where=admitted > 0)  # E[Wq], Little
        rr = round_robin.smooth(rho, c, mu, ca2, cs2, mean_wq, survival, mgf, shape)
        gi = (rho < 1.0) & (span * rr["theta"] > 10.0) & (rr["wait"] > 0)
        pw = np.where(gi, rr["pw"], pw)
        th = np.where(gi, rr["theta"], th)
        trunc = np.where(gi, BIG, trunc)
        if rr["simulated"]:
            lq = np.where(gi, admitted * rr["wait"], lq)
    p2 = None
    if instances > 1 and dispatch == "power_of_two":  # each instance its own queue, joined by the shorter of two
        per = round(c / instances)
        mean_wq = np.divide(lq, admitted, out=np.zeros_like(lq), where=admitted > 0)
        first = two_choices.first_completion(survival, 1.0 / mu, per)
        p2 = two_choices.station_law(instances, per, rho, pw, mean_wq * mu, s, first)
        free = (rho < 1.0) & (trunc >= BIG) & np.isfinite(p2["wait"]) & (p2["pw"] > 0)
        pw = np.where(free, np.clip(np.nan_to_num(p2["pw"]), 0.0, 1.0), pw)
        wait_mean = np.where(free, np.nan_to_num(p2["wait"]) / mu / np.maximum(pw, 1e-300), wait_mean)
        th = np.where(free, 1.0 / np.maximum(wait_mean, 1.0 / BIG), th)
        lq = np.where(free, admitted * pw * wait_mean, lq)
    elif instances > 1:  # least-outstanding dispatch: waits less often than one pooled queue, and longer
        share, longer = shortest_queue.factors(instances, round(c / instances), rho)
        free = (rho < 1.0) & (trunc >= BIG) & (wait_mean > 0)
        pw = np.where(free, np.clip(pw * share, 0.0, 1.0), pw)
        wait_mean = np.where(free, wait_mean * longer, wait_mean)
        th = np.where(free, 1.0 / np.maximum(wait_mean, 1.0 / BIG), th)
        with np.errstate(invalid="ignore"):  # no one waits (pw 0, the mean overflowed above): 0 · inf, none queued
            lq = np.where(free, np.where(pw > 0, admitted * pw * wait_mean, 0.0), lq)
    # the conditional wait's shape: M/G/1's squared coefficient of variation (Takács' second moment),
    # 2ρ + 4·m3·(1 − ρ)/(3(1 + cs²)²) − 1 (1 for exponential service), pulled toward 1 as workers pool
    r = np.clip(rho, 0.0, 1.0)
    scv_wait = 1.0 + (2.0 * r + 4.0 * m3 * (1.0 - r) / (3.0 * (1.0 + cs2) ** 2) - 2.0) / (c / instances)
    if p2 is not None:  # the mixture of Erlang waits across the levels an arrival joins
        scv_wait = np.where(free, np.nan_to_num(p2["scv"], nan=1.0) + scv_wait - 1.0, scv_wait)
    shape = np.where((rho < 1.0) & (trunc >= BIG), 1.0 / np.clip(scv_wait, 0.1, 10.0), 1.0)
    if ca2 < 1.0:  # light tails: the decay rate sets the wait's tail, its mean P(wait); else as simulated
        shape = np.where(gi, rr["shape"], shape)
    table = {"L": busy + lq, "B": block, "pw": np.clip(pw, 0.0, 1.0), "theta": th,
             "trunc": trunc, "Lq": lq, "pto": np.full_like(lam, np.nan), "shape": shape}
    # the deadline can bind only where the places let a wait reach it and the wait's tail gets there
    tail_at_d = pw * np.exp(-deadline / np.maximum(wait_mean, 1e-300))
    rows = np.nonzero(tail_at_d > 1e-12)[0] if span > deadline else np.zeros(0, dtype=np.int64)
    if len(rows):
        lam_d = lam[rows]
        theta = (c * mu - lam_d) / s[rows]
        if c == 1 and survival is None:  # M/M/1 with a deadline: the exact workload law
            law = _workload_law(lam_d, s[rows], theta, deadline)
        else:
            law = _patience_law(c, mu, lam_d, s[rows], theta, deadline, survival or (lambda x: np.exp(-mu * x)))
        d_law = law(below[rows], busy_below[rows], c)
        use_d = d_law["Lq"] < table["Lq"][rows]
        for f in FIELDS:
            table[f] = table[f].copy()
            table[f][rows] = np.where(use_d, d_law[f], table[f][rows])
    table["L"] = np.maximum.accumulate(np.nan_to_num(table["L"], nan=0.0, posinf=1e300))  # monotone for inversion
    return table


def _busy(log_mass, log_below, log_busy_below, c):
    """P(all workers busy) and the mean busy workers, from the log weights of all-busy and of n < c states."""
    top = np.maximum(log_mass, log_below)
    m, b = np.exp(log_mass - top), np.exp(log_below - top)
    z = m + b
    return np.clip(m / z, 0.0, 1.0), (np.exp(log_busy_below - top) + c * m) / z


def _workload_law(lam, s, theta, deadline):
    """M/M/1 with a deadline on the time in system: the admitted workload's law (exact; Allen–Cunneen scaled)."""
    def law(below, busy_below, c):
        if math.isfinite(deadline):
            x = -theta * deadline
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                log_int = np.where(np.abs(x) < 1e-9, math.log(deadline),
                                   np.where(x > 0, x + np.log(-np.expm1(-x)) - np.log(np.abs(theta)),
                                            np.log(-np.expm1(x)) - np.log(np.abs(theta))))
            log_m = np.log(lam / s) + log_int
        else:
            log_m = np.where(theta > 0, np.log(lam / s) - np.log(np.maximum(theta, 1e-300)), np.inf)
        p_busy, busy = _busy(log_m, below, busy_below, c)
        lq = lam * p_busy * _truncated_exp_mean(theta, deadline)
        trunc = np.full_like(lam, deadline if math.isfinite(deadline) else BIG)
        return {"L": busy + lq, "B": np.zeros_like(lam), "pw": np.clip(p_busy, 0.0, 1.0),
                "theta": np.clip(theta, -BIG, BIG), "trunc": trunc, "Lq": lq, "pto": np.full_like(lam, np.nan),
                "shape": np.ones_like(lam)}
    return law


PATIENCE_POINTS = 256


def _patience_law(c, mu, lam, s, theta, deadline, survival):
    """M/M/c+G (Brandt): a request gives up waiting once its wait passes D − S, its own service time.

    The virtual wait has density (λ/s)·w_{c−1}·exp(−θx − λ∫_0^x P(S > D − u) du): exact for M/M/c with a
    patience on the wait; here the patience D − S stands for a deadline on the time in system, which holds
    well when a request rarely outlives its deadline in service (checked against the request engine).
    Past D every request times out, so the density falls at rate θ + λ there.
    """
    first = min(deadline * 1e-4, 1e-2 / (c * mu))  # resolve waits far shorter than the deadline too
    x = np.concatenate(([0.0], np.geomspace(first, deadline, PATIENCE_POINTS)))
    dx = np.diff(x)
    surv = np.clip(survival(np.maximum(deadline - x, 0.0)), 0.0, 1.0)  # P(S > D − x)
    cum = np.concatenate(([0.0], np.cumsum(0.5 * (surv[1:] + surv[:-1]) * dx)))
    surv_d = float(surv[0])

    def integral(y):  # trapezoid over the grid, along the last axis
        return (0.5 * (y[..., 1:] + y[..., :-1]) * dx).sum(axis=-1)

    def law(below, busy_below, c):
        lam_c, th = lam[:, None], theta[:, None]
        log_g = np.log(lam_c / s[:, None]) - th * x[None, :] - lam_c * cum[None, :]
        top = np.maximum(log_g.max(axis=1), below)
        g = np.exp(log_g - top[:, None])
        inside = integral(g)
        rate = np.maximum(theta + lam, 1.0 / deadline)
        beyond = g[:, -1] / rate
        b = np.exp(below - top)
        z = b + inside + beyond
        pto = (b * surv_d + integral(g * surv[None, :]) + beyond) / z
        waited = integral(g * x[None, :])
        busy = (np.exp(busy_below - top) + c * (inside + beyond)) / z
        lq = lam * (waited + beyond * deadline) / z
        # the wait of requests that reach service: the density on (0, D), as a truncated exponential of its mean
        mean_in = np.divide(waited, inside, out=np.full_like(lam, deadline / 2), where=inside > 0)
        served_share = np.divide(inside, b + inside, out=np.zeros_like(lam), where=b + inside > 0)
        return {"L": busy + lq, "B": np.zeros_like(lam), "pw": np.clip(served_share, 0.0, 1.0),
                "theta": _fit_truncated_exp(mean_in, deadline), "trunc": np.full_like(lam, deadline), "Lq": lq,
                "pto": np.clip(pto, 0.0, 1.0), "shape": np.ones_like(lam)}
    return law


def _universal_mean(x: np.ndarray) -> np.ndarray:
    """Mean, in units of d, of the density ∝ e^(−x·v/d) on (0, d): 1/x − 1/(eˣ − 1), ½ at x = 0."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        m = np.where(np.abs(x) < 1e-6, 0.5 - x / 12.0, 1.0 / x - 1.0 / np.expm1(x))
    return np.clip(np.nan_to_num(m, nan=0.5, posinf=1.0, neginf=0.0), 0.0, 1.0)


_X = np.concatenate((-np.geomspace(1e7, 1e-6, 600), [0.0], np.geomspace(1e-6, 1e7, 600)))
_M = _universal_mean(_X)  # falls from 1 to 0 as x grows


def _fit_truncated_exp(mean: np.ndarray, d: float) -> np.ndarray:
    """θ whose density ∝ e^(−θv) on (0, d) has this mean (one interpolation in a universal table)."""
    target = np.clip(np.asarray(mean, dtype=float) / d, _M[-1], _M[0])
    return np.interp(-target, -_M, _X) / d
