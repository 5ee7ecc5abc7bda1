"""Faults on the local staging: a degraded dependency, and the scenario's `failures:` on the wall clock.

A dependency fault is a small JSON file in the state directory that every
instance reads once a second (as it reads the offered load), so it reaches
both versions within a second and outlives any one process. Crashes and zone
outages are the supervisor's (`InstanceFaults`, mixed into `Staging`).

`FaultSchedule` turns the scenario's failures into what the deployer does at
each tick; Chaos Toolkit's actions (`simlab.chaos`) call the same primitives.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab.errors import StagingError
from simlab.scenario import Scenario
from simlab.scenario.release import Dependency, InstanceCrash, ZoneOutage
from simlab.staging.files import write_private

if TYPE_CHECKING:  # the supervisor's types, for InstanceFaults' declared attributes
    from simlab.staging.members import Allocation, Member, Placement

DEPENDENCY_FILE = "dependency.json"


def set_dependency_fault(state_dir: str | Path, add_latency: float = 0.0, error_rate: float = 0.0) -> None:
    """Every request of every instance gets `add_latency` more seconds and fails with `error_rate`."""
    if not (isinstance(add_latency, (int, float)) and math.isfinite(add_latency) and add_latency >= 0):
        raise ValueError(f"add_latency: expected seconds >= 0, found {add_latency!r}")
    if not (isinstance(error_rate, (int, float)) and 0.0 <= error_rate <= 1.0):
        raise ValueError(f"error_rate: expected a probability in [0, 1], found {error_rate!r}")
    write_private(Path(state_dir) / DEPENDENCY_FILE,
                  json.dumps({"add_latency": float(add_latency), "error_rate": float(error_rate)}))


def clear_dependency_fault(state_dir: str | Path) -> None:
    (Path(state_dir) / DEPENDENCY_FILE).unlink(missing_ok=True)


def dependency_fault(state_dir: str | Path) -> dict | None:
    """The fault in force, or None (also for a file being replaced or unreadable)."""
    try:
        data = json.loads((Path(state_dir) / DEPENDENCY_FILE).read_text())
        return {"add_latency": float(data.get("add_latency", 0.0)), "error_rate": float(data.get("error_rate", 0.0))}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class FaultStep:
    """Something to do at a tick: kind is dependency_on/off, zone_down/up or crash."""

    kind: str
    detail: dict


class FaultSchedule:
    """The scenario's failures, relative to the start of the run, stepped once per tick.

    Dependencies and zone outages happen at their `at` for their `duration`.
    `instance_crash` crashes each running instance with probability
    1 - exp(-dt / mtbf) per tick (a Poisson process per instance, as the
    simulator draws exponential times to failure), restarted `restart` after the
    crash less start-up; draws come from the run's own stream.
    """

    def __init__(self, scenario: Scenario, rng: np.random.Generator):
        self.rng = rng
        self.startup = scenario.fleet.startup
        self.windows = sorted(
            [(f.at, f.at + f.duration, f) for f in scenario.failures if isinstance(f, (Dependency, ZoneOutage))],
            key=lambda w: w[0],
        )
        self.crashes = [f for f in scenario.failures if isinstance(f, InstanceCrash)]
        self._on: set[int] = set()
        self._last: float | None = None

    @property
    def empty(self) -> bool:
        return not self.windows and not self.crashes

    def step(self, t: float, running: list[str]) -> list[FaultStep]:
        """What starts or ends by `t` (seconds since the run began), and which of `running` crash."""
        out: list[FaultStep] = []
        for i, (start, end, f) in enumerate(self.windows):
            if i not in self._on and start <= t < end:
                self._on.add(i)
                out.append(self._begin(f))
            elif i in self._on and t >= end:
                self._on.discard(i)
                out.append(self._end(f))
            elif i not in self._on and t >= end and (self._last is None or self._last < start):
                out += [self._begin(f), self._end(f)]  # a window shorter than a tick still happens
        dt = 0.0 if self._last is None else max(0.0, t - self._last)
        self._last = t
        for f in self.crashes:
            p = 1.0 - math.exp(-dt / f.mtbf)
            for name in running:
                if self.rng.random() < p:
                    out.append(FaultStep("crash", {"instance": name, "restart_after": max(0.0, f.restart - self.startup)}))
        return out

    def active_dependency(self, t: float) -> dict | None:
        """The combined dependency fault in force at `t` (latencies add, success rates multiply)."""
        add, ok, any_on = 0.0, 1.0, False
        for start, end, f in self.windows:
            if isinstance(f, Dependency) and start <= t < end:
                add, ok, any_on = add + f.add_latency, ok * (1.0 - f.error_rate), True
        return {"add_latency": add, "error_rate": 1.0 - ok} if any_on else None

    @staticmethod
    def _begin(f) -> FaultStep:
        if isinstance(f, ZoneOutage):
            return FaultStep("zone_down", {"zone": f.zone})
        return FaultStep("dependency_on", {"add_latency": f.add_latency, "error_rate": f.error_rate})

    @staticmethod
    def _end(f) -> FaultStep:
        if isinstance(f, ZoneOutage):
            return FaultStep("zone_up", {"zone": f.zone})
        return FaultStep("dependency_off", {})


class InstanceFaults:
    """Crashes, zone outages and their undoing: the supervisor's fault methods (mixed into `Staging`).

    The scenario's `failures:` on staging and Chaos Toolkit's actions both come here.
    """

    dir: Path
    scenario: Scenario
    members: dict[str, Member]
    alloc: Allocation
    placement: Placement

    def save(self) -> None: ...

    def alive(self, name: str) -> bool: ...

    def _respawn(self, name: str, now: float) -> None: ...

    def zone_of(self, name: str) -> int:
        return self.members[name].zone

    def crash_instance(self, name: str, restart_after: float | None = 0.0, now: float | None = None) -> bool:
        """SIGKILL `name` as a crash: in-flight requests fail; `reap()` restarts it `restart_after` s later.

        `restart_after=None` holds it down until `restore()` (a chaos kill with no supervisor loop to
        restart it). A crash counts like any other in the instance's crash count. Returns whether it
        crashed (an instance stopping, held down or dead already is left as it is).
        """
        m = self.members[name]
        if m.stopping or m.held or not self.alive(name):
            return False
        self.placement.kill(name)
        now = time.time() if now is None else now
        m.crashes += 1
        if restart_after is None:
            m.held, m.restart_at = True, float("inf")
        else:
            m.restart_at = now + max(0.0, restart_after)
        self.save()
        return True

    def _hold(self, name: str) -> None:
        m = self.members[name]
        if self.alive(name):
            self.placement.kill(name)
        m.held, m.restart_at = True, float("inf")

    def zone_down(self, zone: int) -> list[str]:
        """Every instance of `zone` crashes and stays down (so do instances started there) until `zone_up`."""
        zones = self.scenario.fleet.zones
        if not 0 <= zone < zones:
            raise StagingError(f"zone {zone} does not exist: fleet.zones is {zones} (zones 0..{zones - 1})")
        self.alloc.zones_down = sorted(set(self.alloc.zones_down) | {zone})
        names = [n for n, m in self.members.items() if m.zone == zone and not m.stopping]
        for name in names:
            self._hold(name)
        self.save()
        return names

    def zone_up(self, zone: int) -> list[str]:
        """The zone is back: its instances start again (through start-up and health checks)."""
        self.alloc.zones_down = [z for z in self.alloc.zones_down if z != zone]
        return self._release([n for n, m in self.members.items() if m.zone == zone and m.held])

    def restore(self) -> list[str]:
        """Undo every fault: zones up, held and crashed instances started again, dependency healthy."""
        clear_dependency_fault(self.dir)
        self.alloc.zones_down = []
        return self._release([n for n, m in self.members.items()
                              if not m.stopping and (m.held or not self.alive(n))])

    def _release(self, names: list[str]) -> list[str]:
        for name in names:
            self.members[name].held = False
            if not self.alive(name):
                self._respawn(name, time.time())
        self.save()
        return names
