"""Offered load over time: base rate x pattern x spikes, as a pure function of simulated time."""
from __future__ import annotations

import math

import numpy as np

from simlab.scenario import Scenario
from simlab.scenario.model import Diurnal, Replay


MEAN_CHUNK = 1 << 20  # seconds of λ `mean_rate` holds at once

class OfferedLoad:
    """λ(t) in requests per second, and an upper bound for thinning."""

    def __init__(self, scenario: Scenario):
        traffic = scenario.traffic
        self.base = traffic.rps
        self.pattern = traffic.pattern
        self.spikes = tuple((s.at, s.at + s.duration, s.multiplier) for s in traffic.spikes)
        if isinstance(self.pattern, Diurnal):
            r = self.pattern.peak_to_trough
            self._amplitude = (r - 1.0) / (r + 1.0)
        if isinstance(self.pattern, Replay):
            rates = np.asarray(self.pattern.rates, dtype=float)
            self._replay = rates / rates.mean() if rates.mean() > 0 else rates
        spike_peak = max([m for _, _, m in self.spikes] + [1.0])
        self.max_rate = self.base * self._pattern_max() * spike_peak

    def _pattern_max(self) -> float:
        if isinstance(self.pattern, Diurnal):
            return 1.0 + self._amplitude
        if isinstance(self.pattern, Replay):
            return float(self._replay.max()) if len(self._replay) else 1.0
        return 1.0

    def pattern_factor(self, t: float) -> float:
        p = self.pattern
        if isinstance(p, Diurnal):
            return 1.0 + self._amplitude * math.cos(2 * math.pi * (t - p.peak_at) / p.period)
        if isinstance(p, Replay):
            return float(self._replay[int(t) % len(self._replay)])
        return 1.0

    @property
    def piecewise_constant(self) -> bool:
        """True when λ only changes at known instants (constant or replayed pattern, spikes)."""
        return not isinstance(self.pattern, Diurnal)

    def next_change(self, t: float) -> float:
        """The next instant after t at which a piecewise-constant λ may change."""
        candidates = [math.inf]
        if isinstance(self.pattern, Replay):
            candidates.append(math.floor(t) + 1.0)
        for start, end, _ in self.spikes:
            if start > t:
                candidates.append(start)
            if end > t:
                candidates.append(end)
        return min(candidates)

    def rate(self, t: float) -> float:
        value = self.base * self.pattern_factor(t)
        for start, end, multiplier in self.spikes:
            if start <= t < end:
                value *= multiplier
        return value

    def rates(self, t: np.ndarray) -> np.ndarray:
        """λ at each time of an array (vectorised, for the fluid engine and reports; `rate` elementwise)."""
        t = np.asarray(t, dtype=float)
        p = self.pattern
        if isinstance(p, Diurnal):
            factor = np.array([self.pattern_factor(float(x)) for x in t])  # math.cos, as `rate` computes it
        elif isinstance(p, Replay):
            factor = self._replay[t.astype(np.int64) % len(self._replay)]
        else:
            factor = np.ones_like(t)
        value = self.base * factor
        for start, end, multiplier in self.spikes:
            value = np.where((start <= t) & (t < end), value * multiplier, value)
        return value

    def mean_rate(self, duration: float) -> float:
        """Mean of λ over [0, duration), by one-second steps, summed a million seconds at a time (a year's run
        holds 8 MB here, not 250)."""
        n = max(1, int(math.ceil(duration)))
        total = 0.0
        for lo in range(0, n, MEAN_CHUNK):
            total += float(np.sum(self.rates(np.arange(lo, min(n, lo + MEAN_CHUNK)) + 0.5)))
        return total / n
