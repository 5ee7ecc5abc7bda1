"""The mann_whitney judge (Kayenta's NetflixACAJudge, simplified): canary against baseline, metric by metric,
then one weighted score. The rules are written here once; docs/scenario.md#the-mann-whitney-judge states them.

A metric's samples are its values in the sub-windows monitoring.window is cut into (`judge.samples` of them),
for the canary (the new version) and the baseline (the old version over the same window).

1. **nodata** when either side has fewer than MIN_SAMPLES values (a sub-window with no request has no
   error rate, one with no success no latency).
2. **pass** when every value of both sides is the same (nothing to rank).
3. Otherwise the Mann-Whitney U test of canary against baseline (SciPy), one-sided toward `direction`
   (`increase`: canary greater, `decrease`: canary smaller) or two-sided for `either`. p >= 1 - confidence:
   **pass**. Significant: the shift's sign (the Hodges-Lehmann estimate, the median of the pairwise
   differences; the difference of means when that is 0) says **high** or **low**.
4. Effect size: the relative change of the means, canary / baseline - 1. A high within +tolerance or a low
   within -tolerance is a **pass**. A baseline mean of 0 has no relative change: significance alone decides.

The measurement: nodata metrics are left out; none left is **inconclusive**. A critical metric classified
high or low **fails** it (score 0). Otherwise the score is 100 x the weight of the metrics that passed over
the weight of those judged: >= pass_score **passed**, >= marginal_score **marginal** (counted as
inconclusive: it neither passes nor fails), below **failed**.
"""
from __future__ import annotations

from typing import Sequence

from simlab.control.analysis import CheckResult, Measurement
from simlab.control.observations import WindowStats
from simlab.scenario.strategy import MannWhitneyJudge, MetricCheck

MIN_SAMPLES = 3
ALTERNATIVE = {"increase": "greater", "decrease": "less", "either": "two-sided"}


def values(samples: Sequence[WindowStats], check: MetricCheck | str) -> list[float]:
    """The check's (or a built-in metric's) value in each sub-window that has one: a query's on staging, else the
    built-in metric's."""
    if isinstance(check, str):
        return [v for v in (w.value(check) for w in samples) if v is not None]
    return [v for v in (w.value_of(check) for w in samples) if v is not None]


def classify(check: MetricCheck, canary: Sequence[float], baseline: Sequence[float], confidence: float) -> CheckResult:
    """One metric's class by the rules above; value and limit are the canary's and the baseline's means."""
    name = check.metric
    if len(canary) < MIN_SAMPLES or len(baseline) < MIN_SAMPLES:
        return CheckResult(name, _mean(canary), _mean(baseline), "inconclusive", None, "nodata")
    mean_c, mean_b = _mean(canary), _mean(baseline)
    if min(canary) == max(canary) == min(baseline) == max(baseline):
        return CheckResult(name, mean_c, mean_b, "passed", 1.0, "pass")
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(canary, baseline, alternative=ALTERNATIVE[check.direction]).pvalue)
    if p >= 1.0 - confidence:
        return CheckResult(name, mean_c, mean_b, "passed", p, "pass")
    shift = _hodges_lehmann(canary, baseline) or (mean_c - mean_b)
    high = shift > 0 if check.direction == "either" else check.direction == "increase"
    if mean_b > 0:
        effect = mean_c / mean_b - 1.0
        if (high and effect <= check.tolerance) or (not high and effect >= -check.tolerance):
            return CheckResult(name, mean_c, mean_b, "passed", p, "pass")
    return CheckResult(name, mean_c, mean_b, "failed", p, "high" if high else "low")


def judge(spec: MannWhitneyJudge, checks: Sequence[MetricCheck], canary: Sequence[WindowStats],
          baseline: Sequence[WindowStats], *, min_requests: int) -> Measurement:
    """One measurement of `checks` on the canary's and the baseline's sub-window samples."""
    requests = sum(w.requests for w in canary)
    if requests < max(min_requests, 1):
        return Measurement("inconclusive", requests, ())
    results = tuple(classify(c, values(canary, c), values(baseline, c), spec.confidence) for c in checks)
    return score(spec, checks, results, requests)


def score(spec: MannWhitneyJudge, checks: Sequence[MetricCheck], results: Sequence[CheckResult],
          requests: int) -> Measurement:
    """The measurement from its metrics' classes: critical failures, then the weighted score's thresholds."""
    results = tuple(results)
    judged = [(c, r) for c, r in zip(checks, results) if r.classification != "nodata"]
    if not judged:
        return Measurement("inconclusive", requests, results, None, "nodata")
    if any(c.critical and r.status == "failed" for c, r in judged):
        return Measurement("failed", requests, results, 0.0, "critical_fail")
    total = sum(c.weight for c, _ in judged)
    points = 100.0 * sum(c.weight for c, r in judged if r.status == "passed") / total
    if points >= spec.pass_score:
        return Measurement("passed", requests, results, points, "pass")
    if points >= spec.marginal_score:
        return Measurement("inconclusive", requests, results, points, "marginal")
    return Measurement("failed", requests, results, points, "fail")


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _hodges_lehmann(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of all pairwise differences canary - baseline: the shift the U test estimates."""
    import numpy as np

    return float(np.median(np.subtract.outer(np.asarray(canary), np.asarray(baseline))))
