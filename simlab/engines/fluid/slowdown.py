"""What slows a fluid replication's instances down, as one mean factor per version pool: a memory leak's growth
(the release's `memory_leak`, new instances only) and warming up (`fleet.warmup`, any instance that came up during
the run). The data plane multiplies the pool's service time by it (`Plane.tick`)."""
from __future__ import annotations

import numpy as np

from simlab.engines.fluid.instances import READY
from simlab.engines.versions import NEW


def came_up(fleet, t: float) -> None:
    """Instances of `fleet` came up at t: with fleet.warmup, its data plane follows their slowdown until warm."""
    if fleet.warmup is not None:
        plane, rep = fleet.plane, fleet.rep
        plane.warming[rep] = max(plane.warming.get(rep, t), t + fleet.warmup.duration)


def pool_slowdown(fleet, version: int, t: float) -> float:
    """Mean service-time slowdown of the version's live instances in `fleet` (a FluidFleet) at t; with a warm-up,
    rounded to 0.01 so that the data plane's caches see few values."""
    leaky = version == NEW and fleet.leaky_alive
    if fleet.warmup is None:
        return leak_factor(fleet.ins, fleet.fx.memory_leak, t) if leaky else 1.0
    return round(mean_slowdown(fleet.ins, version, t, fleet.fx.memory_leak if leaky else None, fleet.warmup), 2)


def leak_factor(ins, leak, t: float) -> float:
    """Mean service-time slowdown of the new version's live instances (1 + mean of the leaky ones' growth)."""
    n = ins.n
    live = (ins.version[:n] == NEW) & ins.in_rot[:n] & (ins.state[:n] == READY)
    count = int(np.count_nonzero(live))
    if not count:
        return 1.0
    leaky = np.flatnonzero(live & ins.leaky[:n])
    growth = (leak.max_slowdown - 1.0) * np.minimum(1.0, (t - ins.up_since[leaky]) / leak.oom_after)
    total = float(np.cumsum(growth)[-1]) if len(growth) else 0.0
    return 1.0 + total / float(count)


def mean_slowdown(ins, version: int, t: float, leak, warmup) -> float:
    """Mean service-time slowdown of the version's live instances from a memory leak (`leak`: the release's
    MemoryLeak, or None) and warming up (`warmup`: fleet.warmup); each instance's factors multiply."""
    n = ins.n
    idx = np.flatnonzero((ins.version[:n] == version) & ins.in_rot[:n] & (ins.state[:n] == READY))
    if not len(idx):
        return 1.0
    up = ins.up_since[idx]
    f = 1.0 + (warmup.slowdown - 1.0) * np.clip(1.0 - (t - up) / warmup.duration, 0.0, 1.0)
    if leak is not None:
        leaky = ins.leaky[idx]
        f[leaky] *= 1.0 + (leak.max_slowdown - 1.0) * np.minimum(1.0, (t - up[leaky]) / leak.oom_after)
    return float(f.mean())
