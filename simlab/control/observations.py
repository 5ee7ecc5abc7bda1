"""What a driver tells the controller (fleet counts, metric windows) and what it gets back (actions)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol

Version = Literal["old", "new", "baseline"]  # baseline: fresh instances of the old version beside a canary


@dataclass(frozen=True)
class VersionCount:
    alive: int  # started and not yet told to stop: starting, ready, unhealthy or restarting
    ready: int  # in load-balancer rotation


@dataclass(frozen=True)
class FleetState:
    old: VersionCount
    new: VersionCount
    migration: Literal["none", "running", "done"] = "none"
    baseline: VersionCount = VersionCount(0, 0)  # a canary's baseline (strategy.canary.baseline), none without

    def of(self, version: Version) -> VersionCount:
        return self.old if version == "old" else self.new if version == "new" else self.baseline


@dataclass(frozen=True)
class WindowStats:
    """Server-side request metrics of one window as monitoring reports them (latencies in seconds)."""

    requests: int = 0
    errors: int = 0
    slow: int = 0
    latency_mean: float | None = None
    latency_p50: float | None = None
    latency_p99: float | None = None
    custom: tuple[tuple[str, float | None], ...] = ()  # (metric, value) of the analysis metrics measured by their query

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def bad_rate(self) -> float | None:
        return (self.errors + self.slow) / self.requests if self.requests else None

    def value(self, metric: str) -> float | None:
        return self.error_rate if metric == "error_rate" else getattr(self, metric)

    def value_of(self, check) -> float | None:
        """An analysis check's value: its query's where monitoring evaluated it (staging), else the built-in
        metric it stands for (`MetricCheck.builtin`); None when the window has neither."""
        for name, value in self.custom:
            if name == check.metric:
                return value
        return None if check.builtin is None else self.value(check.builtin)


def sub_windows(start: float, end: float, count: int) -> list[tuple[float, float]]:
    """[start, end) cut into `count` consecutive sub-windows whose inner edges fall on whole seconds after start."""
    edges = [start + math.floor((end - start) * i / count + 1e-9) for i in range(count)] + [end]
    return list(zip(edges, edges[1:]))


class MetricsView(Protocol):
    """Monitoring as visible to the controller at the current time (scrape, window and delay applied).

    The one protocol every driver's metrics implement: the engines' monitoring,
    staging's Prometheus (`staging.prometheus.PrometheusMetrics`, local or a
    target's own) and a recorded run's answers.
    """

    def version_window(self, version: Version) -> WindowStats:
        """One version's stats over `monitoring.window`."""

    def total_window(self, seconds: float) -> WindowStats:
        """All versions' stats over the last `seconds` visible."""

    def version_samples(self, version: Version, count: int) -> tuple[WindowStats, ...]:
        """One version's stats in `count` equal consecutive sub-windows of `monitoring.window`, oldest first
        (the samples the mann_whitney judge ranks), edges on whole seconds after the window's start (`sub_windows`)."""
        from simlab.errors import ScenarioError

        raise ScenarioError(f"analysis.judge: expected the threshold judge with this driver ({type(self).__name__} "
                            "gives no sub-window samples to rank), found mann_whitney")


@dataclass(frozen=True)
class StartInstances:
    version: Version
    count: int


@dataclass(frozen=True)
class StopInstances:
    """Drain and stop `count` instances of `version` (not-ready ones first); in-flight requests finish."""

    version: Version
    count: int


@dataclass(frozen=True)
class SetWeight:
    """Percent of traffic for the new version; None spreads traffic over ready instances evenly.

    `baseline_percent`: the canary baseline's share (strategy.canary.baseline); the old version's stable fleet
    gets the rest. A version with no instance in rotation passes its share to the stable fleet, and the stable
    fleet to the new version, then the baseline."""

    new_percent: float | None
    baseline_percent: float = 0.0


@dataclass(frozen=True)
class StartMigration:
    pass


Action = StartInstances | StopInstances | SetWeight | StartMigration


@dataclass(frozen=True)
class ControlEvent:
    time: float
    kind: str  # release_started, step_started, analysis, alert, rollback_started, rollback_finished, promoted, ...
    detail: dict = field(default_factory=dict)
