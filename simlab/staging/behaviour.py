"""What one instance does with a request: service time, and the release's defects on the new version.

Kept apart from the HTTP server so the same decisions can be checked without
a socket. Time is passed in (seconds since the epoch); nothing here sleeps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlab import dists
from simlab.scenario import Scenario
from simlab.scenario.release import Crash, CrashLoop, ErrorRate, Latency, MemoryLeak

EXIT_CRASH = 3  # the exit status of an instance whose `crash` defect fired
EXIT_CRASH_LOOP = 4  # ... of one whose `crash_loop` defect made it exit at start

LEAK_BYTES_AT_OOM = 64 * 2**20
"""Memory a leaking instance has grown by when it reaches `oom_after` (the supervisor's limit)."""


@dataclass(frozen=True)
class Plan:
    """What to do with one request: how long to serve it and whether it fails."""

    service_time: float
    error: bool


class Behaviour:
    """Draws service times and applies defects for one instance of `version` ('old' or 'new')."""

    def __init__(self, scenario: Scenario, version: str, rng: np.random.Generator, release_epoch: float):
        self.scenario = scenario
        self.version = version
        self.rng = rng
        self.release_epoch = release_epoch
        self.service = dists.from_spec(scenario.fleet.service_time)
        release = scenario.release
        defects = tuple(release.defects) if (release is not None and version == "new") else ()
        # As in the simulator, `fraction` of an instance-level defect is the share of instances it hits,
        # drawn once per instance; for request-level defects it is the share of requests.
        self.defects = tuple(
            d for d in defects
            if not isinstance(d, (Crash, CrashLoop, MemoryLeak)) or rng.random() < d.fraction
        )
        self.offered_rps = 0.0  # the whole service's offered load, as the supervisor last reported it
        self.dependency: dict | None = None  # a degraded downstream dependency (both versions), or None
        self._buffer: list[bytearray] = []

    def _active(self, defect, now: float) -> bool:
        if defect.onset is not None and now < self.release_epoch + defect.onset.after:
            return False
        if defect.only_above_rps is not None and self.offered_rps <= defect.only_above_rps:
            return False
        return True

    def plan(self, now: float, started: float) -> Plan:
        """Service time and outcome of a request arriving at `now` on an instance started at `started`."""
        t = float(self.service.sample(self.rng, 1)[0])
        error = False
        for d in self.defects:
            if not self._active(d, now) or isinstance(d, (Crash, CrashLoop)):
                continue
            if not isinstance(d, MemoryLeak) and d.fraction < 1.0 and self.rng.random() >= d.fraction:
                continue
            if isinstance(d, ErrorRate):
                error = error or bool(self.rng.random() < d.rate)
            elif isinstance(d, Latency):
                t = t * d.multiplier + d.add
            elif isinstance(d, MemoryLeak):
                t *= self.leak_slowdown(d, now, started)
        dep = self.dependency
        if dep is not None:  # as the simulator's `dependency` failure: every request, either version
            t += dep["add_latency"]
            if dep["error_rate"] > 0.0:
                error = error or bool(self.rng.random() < dep["error_rate"])
        warm = self.scenario.fleet.warmup
        if warm is not None and self.release_epoch > 0 and now - started < warm.duration:
            # a deploy's instance (`staging up`'s, started with no release epoch, count as warm) warming up
            t *= 1.0 + (warm.slowdown - 1.0) * (1.0 - max(0.0, now - started) / warm.duration)
        return Plan(t, error)

    def leak_slowdown(self, leak: MemoryLeak, now: float, started: float) -> float:
        """Latency multiplier of a leak: 1 when it starts, `max_slowdown` at `oom_after`."""
        onset = self.release_epoch + (leak.onset.after if leak.onset else 0.0)
        grown = min(1.0, max(0.0, now - max(started, onset)) / leak.oom_after)
        return 1.0 + (leak.max_slowdown - 1.0) * grown

    def grow_leak(self, now: float, started: float) -> int:
        """Really allocate the memory a leak has grown to by `now`; return the bytes held."""
        for d in self.defects:
            if isinstance(d, MemoryLeak) and self._active(d, now):
                onset = self.release_epoch + (d.onset.after if d.onset else 0.0)
                share = max(0.0, now - max(started, onset)) / d.oom_after
                # Past oom_after the leak keeps growing; the supervisor's memory limit kills the instance.
                want = int(LEAK_BYTES_AT_OOM * share)
                held = sum(len(b) for b in self._buffer)
                if want > held:
                    chunk = bytearray(want - held)
                    chunk[::4096] = b"\x01" * len(chunk[::4096])  # touch every page so it counts as resident
                    self._buffer.append(chunk)
                return max(want, held)
        return 0

    @property
    def leak_held(self) -> int:
        """Bytes a leak defect holds now."""
        return sum(len(b) for b in self._buffer)

    def release_leak(self) -> None:
        """Free the leak (an instance ended inside a host process that goes on)."""
        self._buffer.clear()

    def crash_loops(self, now: float) -> bool:
        """True when this instance must exit as soon as it starts."""
        return any(isinstance(d, CrashLoop) and self._active(d, now) for d in self.defects)

    def crash_after(self, now: float) -> float | None:
        """Seconds from `now` until a `crash` defect kills this instance, or None."""
        crashes = [d for d in self.defects if isinstance(d, Crash)]
        if not crashes:
            return None
        waits = []
        for d in crashes:
            onset = self.release_epoch + (d.onset.after if d.onset else 0.0)
            waits.append(max(0.0, onset - now) + float(self.rng.exponential(d.mtbf)))
        return min(waits)
