"""A whole run's latency quantiles in fixed memory: counts in log-spaced buckets, within a stated relative error.

The mapping is DDSketch's (Masson, Rim and Lee, VLDB 2019): bucket i holds the
values in (γ^(i-1), γ^i] with γ = (1 + α)/(1 − α), and 2γ^i/(γ + 1) stands for
them, within α (relative) of every one of them. A quantile interpolates between
the two order statistics around its rank as numpy's default does, so it too is
within α of the exact `np.percentile` of the values (up to float rounding). The
engine adds one closed second's latencies at a time (a numpy array), which is
why the buckets are binned here with numpy rather than value by value through a
sketch library.
"""
from __future__ import annotations

import math

import numpy as np

RELATIVE_ERROR = 0.001
"""α: every quantile is within 0.1% of the exact one (latencies between LOWEST and HIGHEST seconds)."""
LOWEST, HIGHEST = 1e-9, 1e7


class LogHistogram:
    """Counts of positive values by log-spaced bucket (and of zeros), from which quantiles are read."""

    def __init__(self, alpha: float = RELATIVE_ERROR, lowest: float = LOWEST, highest: float = HIGHEST):
        self.gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(self.gamma)
        self._offset = math.ceil(math.log(lowest) / self._log_gamma)
        size = math.ceil(math.log(highest) / self._log_gamma) - self._offset + 1
        self.counts = np.zeros(size, dtype=np.int64)
        self.zeros = 0  # values at or below 0, counted apart (a log has no bucket for them)

    @property
    def count(self) -> int:
        return int(self.counts.sum()) + self.zeros

    def add(self, values: np.ndarray) -> None:
        """Count every value of the array (values outside [LOWEST, HIGHEST] land in the end buckets)."""
        positive = values[values > 0.0]
        self.zeros += len(values) - len(positive)
        if len(positive):
            index = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64) - self._offset
            np.clip(index, 0, len(self.counts) - 1, out=index)
            self.counts += np.bincount(index, minlength=len(self.counts))

    def _at_rank(self, cumulative: np.ndarray, rank: int) -> float:
        """The representative of the rank-th smallest value (0-based)."""
        if rank < self.zeros:
            return 0.0
        bucket = int(np.searchsorted(cumulative, rank - self.zeros, side="right"))
        return 2.0 * self.gamma ** (bucket + self._offset) / (self.gamma + 1.0)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1) with numpy's linear interpolation between order statistics; None when empty."""
        n = self.count
        if n == 0:
            return None
        cumulative = np.cumsum(self.counts)
        pos = (n - 1) * q
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        a, b = self._at_rank(cumulative, lo), self._at_rank(cumulative, hi)
        return a + (b - a) * (pos - lo)
