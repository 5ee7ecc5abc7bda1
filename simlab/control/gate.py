"""The analysis as the controller runs it: what it asks monitoring, which judge, acting and dry-run metrics.

Acting metrics decide (their measurements are counted by `limits.Tally`); dry-run metrics (Argo's `dryRun`)
are judged by the same judge on the same windows and counted by the same rules on a tally of their own,
which is only reported: what the analysis would have done had they been acting.
"""
from __future__ import annotations

from dataclasses import dataclass

from simlab.control import mann_whitney
from simlab.control.analysis import Measurement, measure
from simlab.control.limits import Decision, Tally
from simlab.control.observations import MetricsView, WindowStats
from simlab.scenario.strategy import Analysis, MannWhitneyJudge


@dataclass(frozen=True)
class Reading:
    """One analysis tick: the acting metrics' measurement and decision, the dry-run ones' (None when absent)."""

    acting: Measurement | None
    decision: Decision
    dry_run: Measurement | None
    dry_run_decision: Decision
    against: str | None = None  # with a canary baseline: whose samples were the baseline, baseline or stable


class AnalysisGate:
    def __init__(self, spec: Analysis, *, queries: bool = False, baseline: bool = False):
        """`queries`: the driver's monitoring evaluates the metrics' PromQL `query:` (staging). Without it (the
        simulators) every metric must stand for a built-in one: ScenarioError naming each that does not.
        `baseline`: the canary has a baseline fleet (strategy.canary.baseline): it is the baseline whenever it
        served `min_requests` in the window, else the stable fleet as without one."""
        self.fresh = baseline
        if not queries:
            spec.refuse_unsimulated()
        self.spec = spec
        self.acting, self.dry = spec.acting, spec.dry_run
        self.judge = spec.judge if isinstance(spec.judge, MannWhitneyJudge) else None
        self.tally = Tally(spec)
        self.dry_tally = Tally(spec)
        self._baseline: WindowStats | tuple[WindowStats, ...] | None = None

    @property
    def gates(self) -> bool:
        """Whether measurements can hold or roll back the rollout (some metric is not dry-run)."""
        return bool(self.acting)

    def begin(self, metrics: MetricsView) -> None:
        """At the release's start: the old version's window, the baseline when it later runs thin."""
        if self.judge is not None:
            self._baseline = metrics.version_samples("old", self.judge.samples)
        else:
            self._baseline = metrics.version_window("old")

    def measure(self, metrics: MetricsView) -> Reading:
        least = max(self.spec.min_requests, 1)
        if self.judge is not None:
            n = self.judge.samples
            new = metrics.version_samples("new", n)
            base, against = self._fresh(lambda: metrics.version_samples("baseline", n), least)
            if base is None:
                old = metrics.version_samples("old", n)
                base = old if sum(w.requests for w in old) >= least else self._baseline

            def judge(checks):
                return mann_whitney.judge(self.judge, checks, new, base, min_requests=self.spec.min_requests)
        else:
            base, against = self._fresh(lambda: metrics.version_window("baseline"), least)
            if base is None:
                old = metrics.version_window("old")
                base = old if old.requests >= least else self._baseline
            window = metrics.version_window("new")

            def judge(checks):
                return measure(checks, window, base, min_requests=self.spec.min_requests)
        acting = judge(self.acting) if self.acting else None
        dry = judge(self.dry) if self.dry else None
        return Reading(acting, self.tally.add(acting.status) if acting else None,
                       dry, self.dry_tally.add(dry.status) if dry else None, against)

    def _fresh(self, ask, least: int):
        """The canary baseline's window (or samples) and "baseline" when it served `least` requests in it;
        (None, "stable") when it did not (not ready yet, stopped); (None, None) without a baseline."""
        if not self.fresh:
            return None, None
        got = ask()
        served = got.requests if isinstance(got, WindowStats) else sum(w.requests for w in got)
        return (got, "baseline") if served >= least else (None, "stable")

    def detail(self, reading: Reading) -> dict:
        """The analysis event's detail: the acting measurement, its counts, the dry-run measurement apart."""
        if reading.acting is not None:
            detail = {**reading.acting.as_detail(), "failures": self.tally.failures}
            if self.spec.inconclusive_limit is not None:
                detail["inconclusive"] = self.tally.inconclusive
        else:
            detail = {"status": "dry_run_only"}
        if reading.dry_run is not None:
            detail["dry_run"] = {**reading.dry_run.as_detail(), "failures": self.dry_tally.failures}
        if reading.against is not None:
            detail["against"] = reading.against
        return detail
