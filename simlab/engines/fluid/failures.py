"""What goes wrong with fluid instances: the release defects each one draws at launch, and its time to failure.

Both work on many instances at once and take the random numbers in the order one-by-one draws
would: instance after instance, and within one instance defect after defect (crash, memory leak,
crash loop) or failure after failure (each instance-crash failure, then its crash defect).
"""
from __future__ import annotations

import math

import numpy as np

DEFECTS = ("crashy", "leaky", "looping")  # Instances columns for fx.crash, fx.memory_leak, fx.crash_loop


def draw_defects(ins, idx: np.ndarray, fx, rng) -> None:
    """Whether each new-version instance idx is crashy, leaky and crash-looping (a draw under each fraction)."""
    present = [(name, d) for name, d in zip(DEFECTS, (fx.crash, fx.memory_leak, fx.crash_loop)) if d is not None]
    if not present:
        return
    u = rng.random(len(idx) * len(present)).reshape(len(idx), len(present))
    for col, (name, d) in enumerate(present):
        getattr(ins, name)[idx] = u[:, col] < d.fraction


def failure_draws(ins, idx: np.ndarray, fx, crash_failures) -> np.ndarray:
    """How many exponential draws each instance's time to failure takes: one per instance-crash failure, one more
    if it is crashy."""
    draws = np.full(len(idx), len(crash_failures), dtype=np.int64)
    if fx.crash is not None:
        draws += ins.crashy[idx]
    return draws


def time_to_failure(ins, idx: np.ndarray, z: np.ndarray, fx, crash_failures) -> np.ndarray:
    """Each instance's time to its next failure (inf: none) from its standard exponential draws z, in draw order;
    a leaky instance is killed at `oom_after` if nothing comes first."""
    k = len(crash_failures)
    scale = np.full((len(idx), k + 1), np.nan)
    scale[:, :k] = [f.mtbf for f in crash_failures]
    if fx.crash is not None:
        scale[ins.crashy[idx], k] = fx.crash.mtbf
    drawn = ~np.isnan(scale)
    times = np.full(scale.shape, math.inf)
    times[drawn] = z * scale[drawn]
    ttf = times.min(axis=1)
    if fx.memory_leak is not None:
        leaky = ins.leaky[idx]
        ttf[leaky] = np.minimum(ttf[leaky], fx.memory_leak.oom_after)
    return ttf
