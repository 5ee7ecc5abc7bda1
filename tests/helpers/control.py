"""A tiny fake driver for the pure rollout controller: a fake fleet, scripted metrics, a tick loop.

The controller tests import it (`from tests.helpers.control import drive, ...`); tests/test_control_harness.py
checks that the fake itself behaves as the controller's contract says a driver must.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

from simlab.control import (
    PERIOD,
    FleetState,
    RolloutController,
    StartInstances,
    StartMigration,
    StopInstances,
    VersionCount,
    WindowStats,
)
from simlab.scenario import validate_scenario

HEALTHY = WindowStats(requests=100, errors=0, latency_mean=0.04, latency_p50=0.03, latency_p99=0.1)

BASE = {
    "name": "test",
    "duration": "2h",
    "fleet": {"instances": 4, "service_time": "40ms", "startup": "10s"},
    "traffic": {"rps": 100},
    "release": {"at": "10s"},
    "analysis": {"interval": "10s", "failure_limit": 2, "min_requests": 50,
                 "metrics": [{"metric": "error_rate", "max": 0.01}]},
    "rollback": {"automatic": True, "duration": "5s", "on_call": {"ack": "1m"}},
    "monitoring": {"scrape_interval": "1s", "window": "10s", "delay": "0s"},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "strategy":
            out[key] = _merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def build_scenario(**sections):
    """BASE with sections merged in (a None value removes the key; `strategy` is replaced whole)."""
    return validate_scenario(_merge(BASE, sections))


class FakeFleet:
    """Instances are ready-at times; a started instance is ready `startup(version, k)` seconds later."""

    def __init__(self, n: int, startup: Callable[[str, int], float], *, migration_duration: float = 0.0):
        self.ready_at: dict[str, list[float]] = {"old": [0.0] * n, "new": [], "baseline": []}
        self.started = {"old": 0, "new": 0, "baseline": 0}
        self.startup = startup
        self.migration_duration = migration_duration
        self.migration_done_at: float | None = None

    def apply(self, action, now: float) -> None:
        if isinstance(action, StartInstances):
            for _ in range(action.count):
                self.ready_at[action.version].append(now + self.startup(action.version, self.started[action.version]))
                self.started[action.version] += 1
        elif isinstance(action, StopInstances):
            # Not-ready instances first, as the StopInstances contract says.
            alive = sorted(self.ready_at[action.version], key=lambda r: (r <= now, r))
            assert action.count <= len(alive), f"asked to stop {action.count} of {len(alive)} {action.version}"
            self.ready_at[action.version] = alive[action.count:]
        elif isinstance(action, StartMigration):
            self.migration_done_at = now + self.migration_duration

    def state(self, now: float) -> FleetState:
        def count(version: str) -> VersionCount:
            times = self.ready_at[version]
            return VersionCount(alive=len(times), ready=sum(r <= now for r in times))

        if self.migration_done_at is None:
            migration = "none"
        else:
            migration = "done" if now >= self.migration_done_at else "running"
        return FleetState(count("old"), count("new"), migration, count("baseline"))


@dataclass
class ScriptedMetrics:
    """A MetricsView whose windows are functions of the current time (sub-window samples of the version too)."""

    new: Callable[[float], WindowStats] = lambda t: HEALTHY
    old: Callable[[float], WindowStats] = lambda t: HEALTHY
    baseline: Callable[[float], WindowStats] | None = None  # a canary baseline's window (None: as the old's)
    total: Callable[[float, float], WindowStats] = lambda t, seconds: HEALTHY
    samples: Callable[[str, float, int], tuple[WindowStats, ...]] = lambda version, t, count: (HEALTHY,) * count
    now: float = 0.0

    def at(self, now: float) -> "ScriptedMetrics":
        self.now = now
        return self

    def version_window(self, version: str) -> WindowStats:
        if version == "baseline" and self.baseline is not None:
            return self.baseline(self.now)
        return (self.new if version == "new" else self.old)(self.now)

    def total_window(self, seconds: float) -> WindowStats:
        return self.total(self.now, seconds)

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        return tuple(self.samples(version, self.now, count))


@dataclass
class Run:
    controller: RolloutController
    fleet: FakeFleet
    actions: list = field(default_factory=list)  # (time, action)
    states: list = field(default_factory=list)  # (time, FleetState seen by the controller)
    phases: list = field(default_factory=list)  # (time, the controller's phase after its tick)

    @property
    def trace(self) -> list[tuple[float, str, dict]]:
        """Every controller event as (time, kind, detail)."""
        return [(e.time, e.kind, e.detail) for e in self.controller.events]

    def milestones(self) -> list[tuple[float, str, dict]]:
        """The trace without analysis measurements."""
        return [(e.time, e.kind, e.detail) for e in self.controller.events if e.kind != "analysis"]

    def measurements(self) -> list[tuple[float, str, int]]:
        """Analysis measurements as (time, status, failures so far)."""
        return [(e.time, e.detail["status"], e.detail["failures"]) for e in self.controller.events if e.kind == "analysis"]

    @property
    def final(self) -> FleetState:
        """The fleet after the last tick's actions."""
        return self.fleet.state(self.states[-1][0])

    def actions_between(self, start: float, end: float = math.inf) -> list:
        return [(t, a) for t, a in self.actions if start <= t <= end]


def drive(scenario, *, startup=None, metrics=None, until: float = 7200.0, stop_when_done: bool = True) -> Run:
    """Tick the controller once per PERIOD until it is done (or `until`), carrying out its actions.

    `startup` is seconds from start to ready, or a function (version, k-th start of that version) -> seconds;
    math.inf means never ready. Migrations take the scenario's `release.migration.duration`.
    """
    if startup is None:
        startup = scenario.fleet.startup
    delay = startup if callable(startup) else (lambda version, k: startup)
    migration = scenario.release.migration if scenario.release is not None else None
    metrics = metrics or ScriptedMetrics()
    fleet = FakeFleet(scenario.fleet.instances, delay, migration_duration=migration.duration if migration else 0.0)
    run = Run(RolloutController(scenario), fleet)
    t = 0.0
    while t <= until:
        state = fleet.state(t)
        run.states.append((t, state))
        for action in run.controller.tick(t, state, metrics.at(t)):
            run.actions.append((t, action))
            fleet.apply(action, t)
        run.phases.append((t, run.controller.phase))
        if stop_when_done and run.controller.done:
            break
        t += PERIOD
    return run
