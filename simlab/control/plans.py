"""Each strategy as a plan: a generator that yields actions and waits, read by the controller.

A plan never looks at a clock or a metric itself; it yields what it wants done
and what it waits for, and the controller resumes it on every tick. Keeping
the plans this small is what lets every driver run the same rollout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

from simlab.control.observations import (
    Action,
    FleetState,
    SetWeight,
    StartInstances,
    StartMigration,
    StopInstances,
)
from simlab.scenario.strategy import BigBang, BlueGreen, Canary, Rolling
from simlab.scenario.types import resolve_count


@dataclass(frozen=True)
class Until:
    """Wait until `ready(fleet)` holds; the progress deadline applies unless `deadline` is False."""

    ready: Callable[[FleetState], bool]
    what: str
    deadline: bool = True


@dataclass(frozen=True)
class Bake:
    """Wait `seconds` with analysis on; with `need_pass`, also until a measurement passes."""

    seconds: float
    need_pass: bool


@dataclass(frozen=True)
class Mark:
    """A milestone: step_started, switched, promoted, phase names; recorded as an event."""

    kind: str
    detail: dict


@dataclass(frozen=True)
class Analysis:
    on: bool


@dataclass(frozen=True)
class Scale:
    """Bring `version` to `count` alive instances (the controller turns it into start/stop actions)."""

    version: str
    count: int


@dataclass(frozen=True)
class Tick:
    """Wait for the next tick (fresh fleet counts)."""


Item = Action | Until | Bake | Mark | Analysis | Scale | Tick
Plan = Iterator[Item]


def migrate(migration) -> Plan:
    if migration is not None:
        yield Mark("migration_started", {"duration_s": migration.duration})
        yield StartMigration()
        # The progress deadline is about instances making progress; a long migration is not a stuck rollout.
        yield Until(lambda f: f.migration == "done", "migration to finish", deadline=False)
        yield Mark("migration_finished", {})


def big_bang(strategy: BigBang, n: int, *, migration=None) -> Plan:
    yield from migrate(migration)
    yield Mark("step_started", {"step": 0, "what": "replace all instances"})
    yield StopInstances("old", n)
    yield StartInstances("new", n)
    yield SetWeight(None)
    yield Until(lambda f: f.new.ready >= n, f"{n} new instances ready")
    yield Mark("promoted", {})


def rolling(strategy: Rolling, n: int, *, migration=None, analysis: bool = True, gate: bool = True) -> Plan:
    yield from migrate(migration)
    surge = resolve_count(strategy.max_surge, n, round_up=True)
    unavailable = resolve_count(strategy.max_unavailable, n, round_up=False)
    if surge == 0 and unavailable == 0:
        surge = 1  # percentages that round to zero on a small fleet; Kubernetes does the same
    batch = max(1, resolve_count(strategy.batch, n, round_up=True))
    yield SetWeight(None)
    if analysis:
        yield Analysis(True)
    target, step = 0, 0
    while target < n:
        target = min(n, target + batch)
        yield Mark("step_started", {"step": step, "new_instances": target})
        yield from _replace(target, n, surge, unavailable)
        if strategy.bake > 0 or gate:
            yield Bake(strategy.bake, need_pass=gate)
        step += 1
    yield Analysis(False)
    yield Mark("promoted", {})


def _replace(target: int, n: int, surge: int, unavailable: int) -> Plan:
    """Kubernetes-style replacement up to `target` new instances within surge and unavailability limits."""
    state: dict = {}

    def settle(f: FleetState) -> bool:
        # Stop old instances only while enough instances stay ready; start new only within the surge.
        old_goal = n - target
        stop = max(0, min(f.old.alive - old_goal, f.old.ready + f.new.ready - (n - unavailable)))
        start = max(0, min(target - f.new.alive, n + surge - (f.old.alive - stop) - f.new.alive))
        state["actions"] = ([StopInstances("old", stop)] if stop else []) + (
            [StartInstances("new", start)] if start else []
        )
        state["done"] = not state["actions"] and f.new.ready >= target and f.old.alive <= old_goal
        return bool(state["actions"]) or state["done"]

    while True:
        yield Until(settle, f"{target} new instances ready")
        if state["done"]:
            return
        yield from state["actions"]
        yield Tick()


def blue_green(strategy: BlueGreen, n: int, *, migration=None, analysis: bool = True, gate: bool = True) -> Plan:
    yield from migrate(migration)
    yield SetWeight(0)
    yield Mark("step_started", {"step": 0, "what": f"start {n} green instances"})
    yield StartInstances("new", n)
    yield Until(lambda f: f.new.ready >= n, f"{n} green instances ready")
    if strategy.warmup > 0:
        yield Bake(strategy.warmup, need_pass=False)
    yield Mark("step_started", {"step": 1, "what": "switch traffic to green"})
    yield SetWeight(100)
    yield Mark("promoted", {})
    if analysis:
        yield Analysis(True)
    yield Bake(strategy.keep_old, need_pass=False)
    yield Analysis(False)
    yield Mark("old_released", {})
    yield StopInstances("old", n)


def canary(strategy: Canary, n: int, *, migration=None, analysis: bool = True, gate: bool = True) -> Plan:
    yield from migrate(migration)
    yield SetWeight(0)
    if analysis:
        yield Analysis(True)
    for i, step in enumerate(strategy.steps):
        want = n if step.weight >= 100 else max(1, math.ceil(n * step.weight / 100))
        if strategy.baseline:
            yield from _baseline_step(i, step, want)
        else:
            yield Mark("step_started", {"step": i, "weight": step.weight, "new_instances": want})
            yield Scale("new", want)
            yield Until(lambda f, w=want: f.new.ready >= w, f"{want} canary instances ready")
            yield SetWeight(step.weight)
        if step.bake > 0:
            yield Bake(step.bake, need_pass=gate)
    yield Analysis(False)
    yield Mark("promoted", {})
    yield StopInstances("old", n)


def _baseline_step(i: int, step, want: int) -> Plan:
    """A canary step with a baseline: both scaled to `want`, the weight set once both are ready; at weight 100
    the canary takes all traffic and the baseline is stopped."""
    last = step.weight >= 100
    size = 0 if last else want
    yield Mark("step_started", {"step": i, "weight": step.weight, "new_instances": want, "baseline_instances": size})
    yield Scale("new", want)
    if not last:
        yield Scale("baseline", want)
        yield Until(lambda f, w=want: f.new.ready >= w and f.baseline.ready >= w,
                    f"{want} canary and {want} baseline instances ready")
        yield SetWeight(step.weight, step.weight)
        return
    yield Until(lambda f, w=want: f.new.ready >= w, f"{want} canary instances ready")
    yield SetWeight(step.weight)
    yield Scale("baseline", 0)


def build(strategy, n: int, *, migration, analysis: bool, gate: bool = True) -> Plan:
    """The plan for a scenario's strategy on a fleet of `n` instances (big bang has no analysis to run).

    `analysis`: measurements are taken; `gate`: they hold a step until one passes (False when every metric
    is dry-run, so the plan is the one without analysis).
    """
    gate = gate and analysis
    if isinstance(strategy, BigBang):
        return big_bang(strategy, n, migration=migration)
    if isinstance(strategy, Rolling):
        return rolling(strategy, n, migration=migration, analysis=analysis, gate=gate)
    if isinstance(strategy, BlueGreen):
        return blue_green(strategy, n, migration=migration, analysis=analysis, gate=gate)
    if isinstance(strategy, Canary):
        return canary(strategy, n, migration=migration, analysis=analysis, gate=gate)
    raise TypeError(f"unknown strategy {strategy!r}")


def rollback(n: int, duration: float, fleet: Callable[[], FleetState]) -> Plan:
    """Back to `n` old instances: a switch when the old fleet is whole, otherwise old restarted before new drains.

    `fleet()` is the fleet as the controller last saw it (the plan reads it when resumed).
    """
    if duration > 0:
        yield Bake(duration, need_pass=False)
    yield Scale("old", n)
    # Whole means none stopped by the rollout; an old instance restarting after a crash still counts.
    if fleet().old.alive >= n:
        yield SetWeight(0)
        yield from _stop_baseline(fleet)
        yield Scale("new", 0)
    else:
        # The stable fleet is gone (big bang, rolling, promoted): bring it back, then drain the new one.
        yield SetWeight(None)
        yield from _stop_baseline(fleet)
        while fleet().new.alive > 0:
            f = fleet()
            keep = max(0, n - f.old.ready)
            stop = (f.new.alive - f.new.ready) + max(0, f.new.ready - keep)
            if stop:
                yield StopInstances("new", stop)
            yield Tick()
        # New instances that never became ready are gone at once; service is back only with the old fleet.
        yield Until(lambda f: f.old.ready >= n, f"{n} old instances ready")
    yield Mark("rollback_finished", {})


def _stop_baseline(fleet: Callable[[], FleetState]) -> Plan:
    """A canary's baseline has nothing left to be compared with once a rollback starts."""
    if fleet().baseline.alive:
        yield Scale("baseline", 0)
