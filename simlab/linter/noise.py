"""Predicted false rollbacks: how often the analysis rolls back a good release on the background error rate and the
scheduled failures alone, computed rather than simulated.

A measurement's window holds N ~ Poisson(mu) requests of the new version (the offered rate times its share of the
traffic over the window monitoring shows, `simlab.metrics.visible_until`) and X | N ~ Bin(N, p) errors, p the
error rate of the failures active then (a dependency's `error_rate`, a migration's `lock_error_rate`), averaged
over the window's requests. The threshold judge fails it when N >= min_requests and X > c N, c the lowest
error-rate bound of the acting metrics: `max`, or `max_ratio_to_baseline` times the baseline's error rate (the canary baseline's when the canary has one), itself
binomial in the baseline's window (floored at one error, as `simlab/control/analysis.py` does), so a few errors
in a thin window on either side are enough to cross it. Windows of successive measurements
overlap only when the interval is shorter than the window; they are taken as independent. The measurements'
failure probabilities are then counted by the controller's rule (`failure_counting`, `failure_limit`:
`simlab/control/limits.py`). Latency metrics, the Mann-Whitney judge and random crashes' resets are left out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlab.linter.schedule import Schedule
from simlab.metrics import visible_until
from simlab.scenario import Scenario
from simlab.scenario.release import Dependency


def window_failure(mean_requests: float, p: float, bound, min_requests: int) -> float:
    """P(one measurement fails): N ~ Poisson(mean_requests), X | N ~ Bin(N, p), failed iff N >= max(min_requests,
    1) and X > c N; `bound` is c, or a mixture of bounds as (probability, c) pairs (a random baseline's)."""
    from scipy.stats import binom, poisson

    mixture = [(1.0, float(bound))] if np.isscalar(bound) else list(bound)
    if mean_requests <= 0 or p <= 0:
        return 0.0
    lo = max(min_requests, 1, int(poisson.ppf(1e-12, mean_requests)))
    hi = int(poisson.ppf(1 - 1e-12, mean_requests)) + 1
    if hi < lo:
        return 0.0
    n = np.arange(lo, hi + 1)
    weights = poisson.pmf(n, mean_requests)
    return float(sum(w * np.sum(weights * binom.sf(np.floor(c * n + 1e-9), n, p)) for w, c in mixture))


def ratio_bounds(ratio: float, requests: float, p: float, cap: float = np.inf) -> list[tuple[float, float]]:
    """The error-rate bound `ratio` x the baseline's error rate sets, as a mixture over the baseline's own errors
    Y ~ Bin(M, p) in its M = `requests` (floored at one error, as the judge does), each bound capped at `cap` (an
    absolute bound that binds first); equal bounds merged."""
    from scipy.stats import binom

    m = max(int(round(requests)), 1)
    y = np.arange(int(binom.ppf(1e-9, m, p)), int(binom.ppf(1 - 1e-9, m, p)) + 1) if p > 0 else np.zeros(1, int)
    w = binom.pmf(y, m, p) if p > 0 else np.ones(1)
    bounds, index = np.unique(np.minimum(ratio * np.maximum(y, 1) / m, cap), return_inverse=True)
    return list(zip(np.bincount(index, weights=w), bounds))


def rollback_probability(q, failure_limit: int, counting: str) -> float:
    """P(the counting rule reaches failure_limit) over independent measurements failing with probabilities q:
    cumulative counts every failure; consecutive starts again at any measurement that did not fail."""
    state = np.zeros(failure_limit + 1)  # failures counted so far; the last entry (reached) absorbs
    state[0] = 1.0
    for qi in q:
        nxt = np.zeros_like(state)
        nxt[-1] = state[-1]
        for k in range(failure_limit):
            nxt[k + 1] += state[k] * qi
            nxt[k if counting == "cumulative" else 0] += state[k] * (1 - qi)
        state = nxt
    return float(state[-1])


def error_rate(s: Scenario, t: np.ndarray) -> np.ndarray:
    """Error rate of every request (either version) at each time, from the scheduled failures and the migration."""
    ok = np.ones_like(t, dtype=float)
    for f in s.failures:
        if isinstance(f, Dependency) and f.error_rate > 0:
            ok *= np.where((t >= f.at) & (t < f.at + f.duration), 1.0 - f.error_rate, 1.0)
    migration = s.release.migration if s.release is not None else None
    if migration is not None and migration.lock_error_rate > 0:
        start = s.release.at
        ok *= np.where((t >= start) & (t < start + migration.duration), 1.0 - migration.lock_error_rate, 1.0)
    return 1.0 - ok


@dataclass(frozen=True)
class Measurement:
    at: float
    window: tuple[float, float]
    requests: float  # expected requests of the new version in the window
    error_rate: float  # their expected error rate
    bound: float  # the error rate above which it fails (a ratio bound at the baseline's expected error rate)
    field: str  # the metric bound that is lowest
    failure: float  # P(it fails)
    baseline: str  # what a ratio bound is of: "the old version's 1%", "the pre-release baseline's 0% (...)"


@dataclass(frozen=True)
class Prediction:
    probability: float  # P(a good release is rolled back)
    measurements: tuple[Measurement, ...]


def _window(s: Scenario, at: float) -> tuple[float, float, np.ndarray]:
    mon = s.monitoring
    end = visible_until(at, mon.scrape_interval, mon.delay)
    start = end - mon.window
    return start, end, np.arange(start, end) + 0.5  # one-second cells


def predict(s: Scenario, plan: Schedule, rates) -> Prediction | None:
    """False rollbacks of a good release under the threshold judge (None: no error-rate bound to cross)."""
    spec = s.analysis
    if plan is None or plan.analysis_from is None or spec.judge.kind != "threshold":
        return None
    checks = [(i, m) for i, m in enumerate(spec.metrics) if not m.dry_run and m.metric == "error_rate"]
    if not checks:
        return None
    least = max(spec.min_requests, 1)
    _, _, cells = _window(s, plan.baseline_at)
    pre_n = float(rates(cells).sum())
    pre_p = float((rates(cells) * error_rate(s, cells)).sum() / pre_n) if pre_n > 0 else 0.0
    out = []
    for at in plan.measurements:
        start, end, cells = _window(s, float(at))
        lam, share, p = rates(cells), plan.share(cells), error_rate(s, cells)
        new_n = float((lam * share).sum())
        new_p = float((lam * share * p).sum() / new_n) if new_n > 0 else 0.0
        fresh = np.where(share < 1.0, share, 0.0) if getattr(s.strategy, "baseline", False) else 0.0 * share
        fresh_n = float((lam * fresh).sum())  # a canary baseline takes the canary's share below weight 100
        old_n = float((lam * (1 - share - fresh)).sum())
        if fresh_n >= least:
            base_n, base_p, base = fresh_n, float((lam * fresh * p).sum() / fresh_n), "the canary baseline's"
        elif old_n >= least:
            base_n, base_p, base = old_n, float((lam * (1 - share - fresh) * p).sum() / old_n), "the old version's"
        else:
            base_n, base_p, base = pre_n, pre_p, "the pre-release baseline's"
        floor = 1.0 / base_n if base_n > 0 else 0.0
        base += f" {base_p:.2%}" + (f" (floored at one error in its window, {floor:.4%})" if floor > base_p else "")
        absolute = [(float(m.max), f"analysis.metrics[{i}].max") for i, m in checks if m.max is not None]
        ratios = [(m.max_ratio_to_baseline, f"analysis.metrics[{i}].max_ratio_to_baseline") for i, m in checks
                  if m.max_ratio_to_baseline is not None and base_n >= least]
        if not absolute and not ratios:
            continue
        typical, field = min(absolute) if absolute else (np.inf, "")
        bound = [(1.0, typical)]
        if ratios:
            ratio, ratio_field = min(ratios)
            bound = ratio_bounds(ratio, base_n, base_p, typical)
            if ratio * max(base_p, floor) < typical:
                typical, field = ratio * max(base_p, floor), ratio_field
        out.append(Measurement(float(at), (start, end), new_n, new_p, typical, field,
                               window_failure(new_n, new_p, bound, spec.min_requests), base))
    q = [m.failure for m in out]
    return Prediction(rollback_probability(q, spec.failure_limit, spec.failure_counting), tuple(out))
