"""One analysis measurement by the threshold judge: the new version's window against bounds and the baseline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simlab.control.observations import WindowStats
from simlab.scenario.strategy import MetricCheck

Status = Literal["passed", "failed", "inconclusive"]


@dataclass(frozen=True)
class CheckResult:
    """One metric's judgement. The threshold judge fills value and limit; the mann_whitney judge the canary's
    and the baseline's mean in value and limit, its p-value and its class (pass, high, low, nodata)."""

    metric: str
    value: float | None
    limit: float | None
    status: Status
    p_value: float | None = None
    classification: str | None = None


@dataclass(frozen=True)
class Measurement:
    status: Status
    requests: int
    checks: tuple[CheckResult, ...]
    score: float | None = None  # mann_whitney: the weighted share of metrics that passed, 0-100
    verdict: str | None = None  # mann_whitney: pass, marginal, fail, critical_fail or nodata

    @property
    def failed_metrics(self) -> tuple[str, ...]:
        """The metrics that failed, in the order the scenario lists them (a rollback's cause)."""
        return tuple(dict.fromkeys(c.metric for c in self.checks if c.status == "failed"))

    def as_detail(self) -> dict:
        detail: dict = {"status": self.status, "requests": self.requests}
        for c in self.checks:
            detail[c.metric] = c.value
        if self.verdict is not None:
            detail.update(verdict=self.verdict, score=self.score,
                          classes={c.metric: c.classification for c in self.checks},
                          p_values={c.metric: c.p_value for c in self.checks})
        return detail


def overall(results: list[CheckResult] | tuple[CheckResult, ...]) -> Status:
    """Failed if any check failed; passed if some passed and none failed; inconclusive if none could be judged."""
    statuses = {r.status for r in results}
    return "failed" if "failed" in statuses else ("passed" if "passed" in statuses else "inconclusive")


def measure(
    checks: tuple[MetricCheck, ...], new: WindowStats, baseline: WindowStats | None, *, min_requests: int
) -> Measurement:
    """Failed if any check fails; inconclusive if the window is too thin to judge; passed otherwise."""
    if new.requests < max(min_requests, 1):
        return Measurement("inconclusive", new.requests, ())
    results = []
    for check in checks:
        value = new.value_of(check)
        if check.max is not None:
            # No value (e.g. no latency reported for the window) cannot pass a bound: inconclusive.
            status: Status = "inconclusive" if value is None else ("failed" if value > float(check.max) else "passed")
            results.append(CheckResult(check.metric, value, float(check.max), status))
        if check.max_ratio_to_baseline is not None:
            base = baseline.value_of(check) if baseline is not None and baseline.requests >= max(min_requests, 1) else None
            name = f"{check.metric}_ratio_to_baseline"
            if base is None or value is None:
                results.append(CheckResult(name, None, check.max_ratio_to_baseline, "inconclusive"))
                continue
            # A zero baseline makes any ratio infinite; compare against a floor of one event in the window.
            floor = 1.0 / baseline.requests if check.builtin == "error_rate" else 1e-6
            ratio = value / max(base, floor)
            status = "failed" if ratio > check.max_ratio_to_baseline else "passed"
            results.append(CheckResult(name, ratio, check.max_ratio_to_baseline, status))
    return Measurement(overall(results), new.requests, tuple(results))
