"""Rollout strategies and the analysis that gates them."""
from __future__ import annotations

import difflib
import math
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from simlab.scenario.queries import NAME, Origin, problem, used
from simlab.scenario.types import CountOrPercent, Duration, Frozen, PositiveDuration

STRATEGY_KINDS = ("big_bang", "rolling", "blue_green", "canary")


class StrategyBase(Frozen):
    progress_deadline: PositiveDuration = Field(
        default=600.0, description="a step that makes no progress this long fails the rollout (rolled back)"
    )


class BigBang(StrategyBase):
    """Every instance replaced at once (Kubernetes `Recreate`): old stopped, new started."""

    kind: Literal["big_bang"]

    analysis: ClassVar[bool] = False  # a big bang has no analysis step; an SLO burn-rate alert and the on-call catch it


class Rolling(StrategyBase):
    kind: Literal["rolling"]
    batch: CountOrPercent = "25%"
    max_surge: CountOrPercent = 1
    max_unavailable: CountOrPercent = 0
    bake: Duration = 120.0
    analysis: bool = True

    @model_validator(mode="after")
    def _can_progress(self) -> "Rolling":
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError(
                "max_surge: expected max_surge or max_unavailable above 0, found both 0 (the rollout could never start)"
            )
        if self.batch in (0, "0%"):
            raise ValueError(f"batch: expected a batch above 0, found {self.batch!r}")
        return self


class BlueGreen(StrategyBase):
    kind: Literal["blue_green"]
    warmup: Duration = 120.0
    keep_old: Duration = 1800.0
    analysis: bool = True


class CanaryStep(Frozen):
    weight: float = Field(strict=True, gt=0, le=100, description="percent of traffic sent to the new version")
    bake: Duration = 0.0


class Canary(StrategyBase):
    kind: Literal["canary"]
    steps: tuple[CanaryStep, ...] = (
        CanaryStep(weight=1, bake=300),
        CanaryStep(weight=10, bake=600),
        CanaryStep(weight=50, bake=600),
        CanaryStep(weight=100),
    )
    analysis: bool = True
    baseline: bool = Field(default=False, description=(
        "start a baseline of the old version with the canary, as many instances and the same share of traffic "
        "at each step below 100, stopped at promotion or rollback; the analysis compares the canary with it "
        "(Kayenta's and Argo Rollouts' baseline vs canary)"))

    @model_validator(mode="after")
    def _rise_to_100(self) -> "Canary":
        # Messages start with the step's path so the loader can point at the exact line.
        steps = self.steps
        if not steps:
            raise ValueError("steps: expected at least one step, ending at weight 100, found none")
        for i in range(1, len(steps)):
            if steps[i].weight <= steps[i - 1].weight:
                raise ValueError(
                    f"steps[{i}].weight: expected weights to rise step by step, above "
                    f"steps[{i - 1}].weight={steps[i - 1].weight:g}, found {steps[i].weight:g}"
                )
        if steps[-1].weight != 100:
            raise ValueError(
                f"steps[{len(steps) - 1}].weight: expected the last step to reach weight 100, found {steps[-1].weight:g}"
            )
        if self.baseline:
            over = next((i for i, s in enumerate(steps) if 50 < s.weight < 100), None)
            if over is not None:
                raise ValueError(
                    f"steps[{over}].weight: expected at most 50 with baseline: true (the canary and the baseline "
                    f"each take the step's weight, the stable fleet the rest; only the last step, 100, goes past), "
                    f"found {steps[over].weight:g}"
                )
        return self


Strategy = Annotated[Union[BigBang, Rolling, BlueGreen, Canary], Field(discriminator="kind")]


def default_strategy(kind: str) -> BigBang | Rolling | BlueGreen | Canary:
    """The strategy of `kind` with its defaults, for `--strategy KIND` overrides."""
    classes = {"big_bang": BigBang, "rolling": Rolling, "blue_green": BlueGreen, "canary": Canary}
    if kind not in classes:
        from simlab.errors import ScenarioError

        raise ScenarioError(f"--strategy: expected one of {', '.join(STRATEGY_KINDS)}, found {kind!r}")
    return classes[kind](kind=kind)


METRICS = ("error_rate", "latency_p50", "latency_p99", "latency_mean")
JUDGE_ONLY = ("direction", "tolerance", "weight", "critical")  # what only the mann_whitney judge reads
_BUILTINS = "error_rate, latency_p50, latency_p99 or latency_mean"


def _number_or_duration(value):
    """A metric's `max` is a number or a duration string; YAML's yes/no are neither."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a duration, found {value!r}")
    return value


class MetricCheck(Frozen):
    """One analysis metric: for the threshold judge an absolute bound (`max`) and/or a bound relative to the old
    version; for the mann_whitney judge a direction, a tolerance, a weight and whether it is critical.

    A built-in metric is measured by every driver from its own monitoring. A metric with a PromQL `query` is
    measured on staging by that query (simlab.scenario.queries); the simulator measures the built-in metric it
    stands for: its name if it is one, else `sim_metric`.
    """

    metric: str = Field(description=f"{_BUILTINS}; or a name of your own, with a `query`")
    query: str | None = Field(default=None, description="PromQL evaluated on staging at each measurement, with "
                              "{{version}}, {{instance}} and {{window}} placeholders; its value fails above `max`")
    sim_metric: Literal["error_rate", "latency_p50", "latency_p99", "latency_mean"] | None = Field(
        default=None, description="the built-in metric the simulator measures for a query metric of your own")
    max: Annotated[float | str | None, BeforeValidator(_number_or_duration)] = None
    max_ratio_to_baseline: float | None = Field(strict=True, default=None, gt=0)
    direction: Literal["increase", "decrease", "either"] = Field(
        default="increase", description="mann_whitney: which change of the canary against the baseline is a regression")
    tolerance: float = Field(
        strict=True, default=0.0, ge=0, description="mann_whitney: relative change of the mean (0.2 = 20%) still accepted")
    weight: float = Field(strict=True, default=1.0, gt=0,
                          description="mann_whitney: the metric's share of the score")
    critical: bool = Field(default=False, description="mann_whitney: a regression fails the measurement whatever the score")
    dry_run: bool = Field(default=False, description="measured and reported, never acting (Argo Rollouts' dryRun)")
    _origin: Origin = PrivateAttr(default=Origin(""))  # `file:line` of the query, set by the loader

    @property
    def builtin(self) -> str | None:
        """The built-in metric the simulator measures for this check (None: a query with no simulator meaning)."""
        return self.metric if self.metric in METRICS else self.sim_metric

    @property
    def origin(self) -> str:
        """Where the query was written (`file:line`), when the loader knew."""
        return str(self._origin)

    def locate(self, where: str) -> None:
        """Record where the query was written (the loader calls it; never part of equality)."""
        self._origin = Origin(where)

    @model_validator(mode="after")
    def _bound(self) -> "MetricCheck":
        self._measured_by()
        kind = self.builtin
        if self.max is not None:
            from simlab.units import parse_duration

            found = repr(self.max) if isinstance(self.max, str) else f"{self.max:g}"
            if kind == "error_rate":
                if isinstance(self.max, str) or not 0 <= self.max <= 1:
                    raise ValueError(f"max: expected a fraction between 0 and 1 for error_rate, found {found}")
            elif kind is None:
                if isinstance(self.max, str) or not math.isfinite(self.max):
                    raise ValueError(f"max: expected a number (the query's value; with sim_metric, in that metric's "
                                     f"unit), found {found}")
            else:
                try:
                    object.__setattr__(self, "max", parse_duration(self.max))
                except ValueError as exc:
                    raise ValueError(f"max: {exc}") from None
        return self

    def _measured_by(self) -> None:
        """The name, the query and sim_metric agree: a name of one's own needs a query, sim_metric a query."""
        if self.query is None:
            if self.metric not in METRICS:
                close = difflib.get_close_matches(self.metric, METRICS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ValueError(f"metric: expected {_BUILTINS}, or a name of your own with a `query:`, "
                                 f"found {self.metric!r}{hint}")
            if self.sim_metric is not None:
                raise ValueError(f"sim_metric: expected only with a `query:` (it names the built-in metric a query "
                                 f"stands for in simulation), found {self.sim_metric!r}")
            return
        if not NAME.match(self.metric):
            raise ValueError(f"metric: expected a name of letters, digits, _ . : or - (at most 63, starting with a "
                             f"letter or _), found {self.metric!r}")
        trouble = problem(self.query)
        if trouble:
            raise ValueError(f"query: {trouble}")
        if self.metric in METRICS and self.sim_metric not in (None, self.metric):
            raise ValueError(f"sim_metric: expected {self.metric} or none ({self.metric} is already the built-in "
                             f"metric the simulator measures), found {self.sim_metric!r}")


class ThresholdJudge(Frozen):
    """Each metric against its bounds; a measurement fails when any bound is crossed."""

    kind: Literal["threshold"]


class MannWhitneyJudge(Frozen):
    """Kayenta's judge: canary against baseline per metric by a Mann-Whitney U test, then a weighted score."""

    kind: Literal["mann_whitney"]
    confidence: float = Field(strict=True, default=0.95, gt=0, lt=1,
                              description="a difference is significant at p < 1 - confidence")
    pass_score: float = Field(strict=True, default=95.0, ge=0, le=100)
    marginal_score: float = Field(strict=True, default=75.0, ge=0, le=100)
    samples: int = Field(strict=True, default=4, ge=3, le=600,
                         description="sub-windows monitoring.window is cut into: the samples of each side")

    @model_validator(mode="after")
    def _ordered(self) -> "MannWhitneyJudge":
        if self.marginal_score > self.pass_score:
            raise ValueError(f"marginal_score: expected at most pass_score ({self.pass_score:g}), "
                             f"found {self.marginal_score:g}")
        return self


Judge = Annotated[Union[ThresholdJudge, MannWhitneyJudge], Field(discriminator="kind")]


class Analysis(Frozen):
    interval: PositiveDuration = 60.0
    failure_limit: int = Field(strict=True, default=2, ge=1, description="roll back at this many failed measurements")
    failure_counting: Literal["cumulative", "consecutive"] = Field(
        default="cumulative", description="count failed measurements over the rollout, or only an unbroken run of them")
    inconclusive_limit: int | None = Field(strict=True,
        default=None, ge=1, description="at this many inconclusive measurements act as on_inconclusive says; null: never")
    on_inconclusive: Literal["rollback", "pause"] = "rollback"
    min_requests: int = Field(strict=True, default=50, ge=0, description="fewer requests in a window: inconclusive")
    judge: Judge = ThresholdJudge(kind="threshold")
    metrics: tuple[MetricCheck, ...] = (MetricCheck(metric="error_rate", max=0.01),)

    @model_validator(mode="after")
    def _metrics_fit_the_judge(self) -> "Analysis":
        # Messages start with the metric's path so the loader can point at the exact line.
        for i, m in enumerate(self.metrics):
            if self.judge.kind == "threshold":
                # by value, not by fields set: a scenario dumped and validated again carries every default
                extra = [k for k in JUDGE_ONLY if getattr(m, k) != MetricCheck.model_fields[k].default]
                if extra:
                    raise ValueError(f"metrics[{i}].{extra[0]}: expected only with judge mann_whitney "
                                     f"(the threshold judge reads max and max_ratio_to_baseline), found {getattr(m, extra[0])!r}")
                if m.max is None and m.max_ratio_to_baseline is None:
                    raise ValueError(f"metrics[{i}]: expected `max` or `max_ratio_to_baseline`, found neither")
            else:
                bound = next((k for k in ("max", "max_ratio_to_baseline") if getattr(m, k) is not None), None)
                if bound is not None:
                    raise ValueError(f"metrics[{i}].{bound}: expected no bound with judge mann_whitney (it compares "
                                     f"canary with baseline; use tolerance), found {getattr(m, bound)!r}")
            if m.query is not None:
                self._query_fits(i, m)
        return self

    def _query_fits(self, i: int, m: MetricCheck) -> None:
        """A query's name is its own, and a query compared with the baseline says which version it measures."""
        twin = next((j for j, other in enumerate(self.metrics) if j != i and other.metric == m.metric), None)
        if twin is not None:
            raise ValueError(f"metrics[{i}].metric: expected a name no other metric uses (a query's values are "
                             f"reported by its name), found {m.metric!r} again (metrics[{twin}])")
        against = ("judge mann_whitney" if self.judge.kind == "mann_whitney"
                   else "max_ratio_to_baseline" if m.max_ratio_to_baseline is not None else None)
        if against and not used(m.query) & {"version", "instance"}:
            raise ValueError(f"metrics[{i}].query: expected {{{{version}}}} or {{{{instance}}}} in a query compared "
                             f"with the baseline ({against}: the same query measures the old and the new version), "
                             f"found neither")

    def unsimulated(self) -> list[str]:
        """One line per metric the simulator cannot measure (a query of its own without `sim_metric`), naming where
        it is written, the field, the value and what was expected."""
        lines = []
        for i, m in enumerate(self.metrics):
            if m.builtin is None:
                text = m.query if len(m.query) <= 80 else m.query[:77] + "..."
                lines.append(f"{m.origin + ': ' if m.origin else ''}analysis.metrics[{i}].query: expected "
                             f"`sim_metric:` naming the built-in metric the simulator measures for {m.metric!r} "
                             f"({_BUILTINS}), found a PromQL query the simulator cannot evaluate: {text!r}")
        return lines

    def refuse_unsimulated(self) -> None:
        """ScenarioError (one line, or one per metric) if the simulator cannot measure some metric."""
        lines = self.unsimulated()
        if lines:
            from simlab.errors import ScenarioError

            raise ScenarioError(lines[0]) if len(lines) == 1 else ScenarioError(
                f"analysis: {len(lines)} metrics the simulator cannot measure", lines)

    @property
    def acting(self) -> tuple[MetricCheck, ...]:
        """The metrics whose measurements roll back, pause or hold a rollout."""
        return tuple(m for m in self.metrics if not m.dry_run)

    @property
    def dry_run(self) -> tuple[MetricCheck, ...]:
        """The metrics only measured and reported."""
        return tuple(m for m in self.metrics if m.dry_run)
