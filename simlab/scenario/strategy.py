"""Rollout strategies and the analysis that gates them."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field, model_validator

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
    weight: float = Field(gt=0, le=100, description="percent of traffic sent to the new version")
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


class MetricCheck(Frozen):
    """One analysis metric: for the threshold judge an absolute bound (`max`) and/or a bound relative to the old
    version; for the mann_whitney judge a direction, a tolerance, a weight and whether it is critical."""

    metric: Literal["error_rate", "latency_p50", "latency_p99", "latency_mean"]
    max: float | str | None = None
    max_ratio_to_baseline: float | None = Field(default=None, gt=0)
    direction: Literal["increase", "decrease", "either"] = Field(
        default="increase", description="mann_whitney: which change of the canary against the baseline is a regression")
    tolerance: float = Field(
        default=0.0, ge=0, description="mann_whitney: relative change of the mean (0.2 = 20%) still accepted")
    weight: float = Field(default=1.0, gt=0, description="mann_whitney: the metric's share of the score")
    critical: bool = Field(default=False, description="mann_whitney: a regression fails the measurement whatever the score")
    dry_run: bool = Field(default=False, description="measured and reported, never acting (Argo Rollouts' dryRun)")

    @model_validator(mode="after")
    def _bound(self) -> "MetricCheck":
        if self.max is not None:
            from simlab.units import parse_duration

            if self.metric == "error_rate":
                if isinstance(self.max, str) or not 0 <= self.max <= 1:
                    found = repr(self.max) if isinstance(self.max, str) else f"{self.max:g}"
                    raise ValueError(f"max: expected a fraction between 0 and 1 for error_rate, found {found}")
            else:
                try:
                    object.__setattr__(self, "max", parse_duration(self.max))
                except ValueError as exc:
                    raise ValueError(f"max: {exc}") from None
        return self


class ThresholdJudge(Frozen):
    """Each metric against its bounds; a measurement fails when any bound is crossed."""

    kind: Literal["threshold"]


class MannWhitneyJudge(Frozen):
    """Kayenta's judge: canary against baseline per metric by a Mann-Whitney U test, then a weighted score."""

    kind: Literal["mann_whitney"]
    confidence: float = Field(default=0.95, gt=0, lt=1, description="a difference is significant at p < 1 - confidence")
    pass_score: float = Field(default=95.0, ge=0, le=100)
    marginal_score: float = Field(default=75.0, ge=0, le=100)
    samples: int = Field(default=4, ge=3, le=600,
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
    failure_limit: int = Field(default=2, ge=1, description="roll back at this many failed measurements")
    failure_counting: Literal["cumulative", "consecutive"] = Field(
        default="cumulative", description="count failed measurements over the rollout, or only an unbroken run of them")
    inconclusive_limit: int | None = Field(
        default=None, ge=1, description="at this many inconclusive measurements act as on_inconclusive says; null: never")
    on_inconclusive: Literal["rollback", "pause"] = "rollback"
    min_requests: int = Field(default=50, ge=0, description="fewer requests in a window: inconclusive")
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
        return self

    @property
    def acting(self) -> tuple[MetricCheck, ...]:
        """The metrics whose measurements roll back, pause or hold a rollout."""
        return tuple(m for m in self.metrics if not m.dry_run)

    @property
    def dry_run(self) -> tuple[MetricCheck, ...]:
        """The metrics only measured and reported."""
        return tuple(m for m in self.metrics if m.dry_run)
