"""When user requests arrive: a Poisson process at the offered load λ(t), each arrival counted as it is drawn.

Piecewise-constant λ (constant or replayed patterns, spikes) is sampled exactly,
segment by segment: each arrival is the previous one plus an exponential gap
over the segment's rate, and a gap that crosses a change of rate is restarted
at the change (memoryless). Within a segment the times are computed a block at
a time: a cumulative sum adds the same gaps in the same order, so they are the
same floats as one by one. Other patterns (diurnal) are sampled by thinning.
"""
from __future__ import annotations

import math

import numpy as np

from simlab.engines.draws import Draws
from simlab.engines.traffic import OfferedLoad


class Arrivals:
    def __init__(self, load: OfferedLoad, duration: float, gaps: Draws, u_thin: Draws, offered: list[int]):
        self.load, self.duration = load, duration
        self.gaps, self.u_thin = gaps, u_thin  # unit exponential gaps; uniforms for thinning
        self.offered = offered  # arrivals by second
        self._seg_rate: float | None = None
        self._seg_end = 0.0
        self._then: str | None = None  # after the last block: "restart" the gap at the segment's end, or "end"

    def first(self) -> float:
        """The first arrival (inf when none)."""
        t = self._next(0.0) if self.load.max_rate > 0 else None
        return math.inf if t is None else self._counted(t)

    def after(self, now: float) -> tuple[float, list[float]]:
        """The next arrival after `now`, the latest one (inf when none), and the ones after it already known:
        in a constant-rate segment, a block up to the segment's expected count."""
        rate, then = self._seg_rate, self._then
        self._then = None
        if then == "end":
            return math.inf, []
        if then == "restart" or not rate:  # a gap crossed a change of rate (restart it there), or thinning
            t = self._next(self._seg_end if then == "restart" else now)
            return (math.inf if t is None else self._counted(t)), []
        stop = min(self._seg_end, self.duration)
        gaps = self.gaps.ahead(int((stop - now) * rate * 1.1) + 32)
        times = np.cumsum(np.concatenate(([now], gaps / rate)))[1:]
        k = int(np.searchsorted(times, stop))  # how many fall before the stop
        if k < len(times):  # the next gap crosses it
            self.gaps.take(k + 1)
            self._then = "restart" if times[k] >= self._seg_end else "end"
        else:
            self.gaps.take(k)
        if k == 0:
            return self.after(now)
        secs = times[:k].astype(np.int64)  # int(t): each arrival's second
        first = int(secs[0])
        for i, count in enumerate(np.bincount(secs - first).tolist()):
            self.offered[first + i] += count
        block = times[:k].tolist()
        return block[0], block[1:]

    def _counted(self, t: float) -> float:
        self.offered[int(t)] += 1
        return t

    def _next(self, t: float) -> float | None:
        """The next arrival after t, one at a time: segment by segment for piecewise-constant λ, thinning otherwise."""
        load = self.load
        if t >= self.duration:
            return None
        if load.piecewise_constant:
            while True:
                if t >= self._seg_end or self._seg_rate is None:
                    self._seg_rate, self._seg_end = load.rate(t), load.next_change(t)
                rate = self._seg_rate
                if rate > 0:
                    candidate = t + self.gaps.next() / rate
                    if candidate < self._seg_end:
                        t = candidate
                        break
                t = self._seg_end  # memoryless: restart the gap at the change
                if t >= self.duration:
                    return None
        else:
            lmax = load.max_rate
            while True:
                t += self.gaps.next() / lmax
                if t >= self.duration or self.u_thin.next() * lmax <= load.rate(t):
                    break
        return t if t < self.duration else None
