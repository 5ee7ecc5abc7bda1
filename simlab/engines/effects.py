"""What defects, migrations and dependency failures do to one attempt at a given time.

Pure: a function of the scenario, the version, the time, the offered load and
the migration state; engines ask once per simulated second and cache it.
"""
from __future__ import annotations

from dataclasses import dataclass

from simlab.engines.traffic import OfferedLoad
from simlab.scenario import Scenario
from simlab.scenario.release import Crash, CrashLoop, Dependency, ErrorRate, Latency, MemoryLeak


@dataclass(frozen=True)
class AttemptEffects:
    """Applied to every attempt: service time x multiplier + add; fails with probability error.

    `partial` holds (fraction, multiplier, add) of latency defects that touch
    only a share of requests (one route); the engine draws per attempt.
    """

    multiplier: float = 1.0
    add: float = 0.0
    error: float = 0.0
    partial: tuple[tuple[float, float, float], ...] = ()


NONE = AttemptEffects()


def defect_active(defect, scenario: Scenario, load: OfferedLoad, t: float) -> bool:
    release = scenario.release
    if release is None:
        return False
    if defect.onset is not None and t < release.at + defect.onset.after:
        return False
    if defect.only_above_rps is not None and load.rate(t) <= defect.only_above_rps:
        return False
    return True


class Effects:
    """Per-second cached effects for each version."""

    def __init__(self, scenario: Scenario, load: OfferedLoad):
        self.scenario, self.load = scenario, load
        defects = scenario.release.defects if scenario.release else ()
        self.request_defects = tuple(d for d in defects if isinstance(d, (ErrorRate, Latency)))
        self.crash_loop = next((d for d in defects if isinstance(d, CrashLoop)), None)
        self.crash = next((d for d in defects if isinstance(d, Crash)), None)
        self.memory_leak = next((d for d in defects if isinstance(d, MemoryLeak)), None)
        self.dependencies = tuple(f for f in scenario.failures if isinstance(f, Dependency))
        self._cache: dict[tuple[int, int, str], AttemptEffects] = {}

    def at(self, version: int, t: float, migration: str) -> AttemptEffects:
        """Effects on an attempt served by `version` (0 old, 1 new) at time t."""
        key = (version, int(t), migration)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._compute(version, float(int(t)), migration)
        return hit

    def _compute(self, version: int, t: float, migration: str) -> AttemptEffects:
        multiplier, add, ok, partial = 1.0, 0.0, 1.0, []
        if version == 1:
            for d in self.request_defects:
                if not defect_active(d, self.scenario, self.load, t):
                    continue
                if isinstance(d, ErrorRate):
                    ok *= 1.0 - d.rate * d.fraction
                elif d.fraction >= 1.0:
                    multiplier *= d.multiplier
                    add += d.add
                else:
                    partial.append((d.fraction, d.multiplier, d.add))
        release = self.scenario.release
        if release is not None and release.migration is not None:
            m = release.migration
            if migration == "running":
                ok *= 1.0 - m.lock_error_rate
            elif migration == "done" and not m.backward_compatible and version == 0:
                ok *= 1.0 - m.incompatible_error_rate
        for dep in self.dependencies:
            if dep.at <= t < dep.at + dep.duration:
                add += dep.add_latency
                ok *= 1.0 - dep.error_rate
        if multiplier == 1.0 and add == 0.0 and ok == 1.0 and not partial:
            return NONE
        return AttemptEffects(multiplier, add, 1.0 - ok, tuple(partial))
