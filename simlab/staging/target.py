"""What the deployer acts on: one protocol that the local staging and a team's own staging both implement.

`local_fleet.LocalFleet` answers it with the supervisor's processes and
HAProxy's runtime API; `external.ExternalFleet` with a team's own commands.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from simlab.staging.faults import FaultStep
    from simlab.staging.procs import ProcRecord
    from simlab.staging.prometheus import PromQL

COUNT_KEYS = tuple(f"{v}_{k}" for v in ("old", "new", "baseline") for k in ("alive", "ready", "starting", "down", "draining"))
"""The fleet counts a target reports every tick (`counts()`); baseline_*: a canary's baseline, 0 without one."""

TargetEvent = tuple[str, dict]  # (kind, detail) of something the target did


class DeployTarget(Protocol):
    """A fleet the deployer can count, scale, weigh and (on the local staging) inject faults into."""

    kind: Literal["local", "external"]
    url: str  # where users' traffic goes
    prometheus_url: str
    promql: PromQL
    total_from: Literal["haproxy", "fleet"]  # whose counts the analysis' totals are (see PrometheusMetrics)
    dir: Path  # the state directory: logs, load records
    injects_faults: bool  # whether `inject` can carry out the scenario's failures

    def begin(self, release_epoch: float) -> None:
        """The deploy starts; the release's defects count from `release_epoch` (wall clock)."""

    def broken(self) -> str | None:
        """Every tick, first: what makes the deploy impossible to go on with (its balancer died), or None."""

    def track_load(self, records: list[ProcRecord]) -> None:
        """Locust's processes, recorded where `simlab staging down` finds them if the deploy is killed."""

    def reap(self) -> list[tuple[str, str, dict]]:
        """(kind, instance, detail) of what happened to instances since the last tick."""

    def report_offered(self, rps: float) -> None:
        """The load offered now, for defects that appear only above a rate."""

    def counts(self) -> dict[str, int]:
        """The fleet by version, keyed by COUNT_KEYS."""

    def start(self, version: str, count: int) -> list[TargetEvent]: ...

    def stop(self, version: str, count: int) -> list[TargetEvent]: ...

    def hold_weight(self, new_percent: float | None, baseline_percent: float = 0.0) -> None:
        """Every tick: the new version gets `new_percent` of traffic (None: even by instance), a canary's baseline
        `baseline_percent`, the stable version the rest."""

    def milestone(self, kind: str) -> None:
        """The controller promoted or started a rollback."""

    def interrupt(self, instances: int) -> str:
        """The deploy was interrupted or failed: put the stable version back; say what is true afterwards."""

    def running_instances(self) -> list[str]:
        """Instances that can crash now (faults)."""

    def inject(self, step: FaultStep) -> list[TargetEvent]: ...

    def set_dependency(self, fault: dict | None) -> None: ...

    def end_faults(self) -> None:
        """Undo every fault the run injected."""
