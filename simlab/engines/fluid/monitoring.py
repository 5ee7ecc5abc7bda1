"""What monitoring shows the controllers of a lockstep batch: version windows of all due replications at once.

Each tick the engine opens the replications whose controllers it will tick (`Monitoring.open`). The first
controller to ask for a window (a version over `monitoring.window`, or one of its sub-windows) has it
computed for all of them in one pass over the ledger's arrays; the others read theirs from that pass. The
controllers and the `MetricsView` they see are unchanged: only where the numbers come from is batched.

The numbers are `Ledger.window`'s, bit for bit (tests/test_fluid_monitoring.py): the same subtractions of
cumulative counts; each row's latency sum reduced along its own contiguous row (numpy's pairwise sum, as
for one row); each row's CDF mixture one vector-matrix product of a stacked `matmul` (BLAS gemv per row,
as for one row); a replication's CDFs of saturated pools added second by second as before; and each
window's percentiles inverted by the same `LatencyModel.quantiles`, only for the rows that ask.

A window's latency mean and percentiles are those measured on its requests (`LatencyModel.measured`), drawn
from a stream keyed by the run's seed, the version and the window's edges: the same window gives the same
measurement however often, in whatever order and in whichever batch it is asked for.
"""
from __future__ import annotations

import numpy as np

from simlab.control.observations import WindowStats, sub_windows
from simlab.engines.versions import index
from simlab.rng import stream


class Monitoring:
    """The due replications' windows at one tick, computed together on first use (one tick's cache)."""

    def __init__(self, ledger, window_len: float, seeds=None):
        """`seeds`: the replications' run seeds, whose keyed streams draw each window's measured latencies
        (`LatencyModel.measured`); None: the laws' own percentiles (no sampling noise)."""
        self.ledger, self.window_len, self.seeds = ledger, window_len, seeds
        self.rows = np.zeros(0, dtype=np.int64)
        self.place = np.full(ledger.R, -1, dtype=np.int64)  # each replication's row in the open batch, -1 outside
        self._windows: dict = {}

    def open(self, rows) -> None:
        """The replications whose controllers are ticked next, all at the same time; forgets the last tick's windows."""
        self.place[self.rows] = -1
        self.rows = np.asarray(rows, dtype=np.int64)
        self.place[self.rows] = np.arange(len(self.rows))
        self._windows = {}

    def window(self, r: int, version: int, start: float, end: float) -> WindowStats:
        """Replication r's window of one version over [start, end), as `Ledger.window` gives it."""
        i = int(self.place[r])
        key = (version, max(0, int(start)), max(0, int(end)))
        rng = None if self.seeds is None else stream(self.seeds[r], "fluid.monitoring", *key)
        if i < 0:  # not in the open batch: one replication's window
            return self.ledger.window(r, (version,), start, end, quantiles=True, rng=rng)
        batch = self._windows.get(key)
        if batch is None:
            batch = self._windows[key] = Windows(self.ledger, self.rows, *key)
        return batch.stats(i, rng)


class Windows:
    """One version's window [a, b) (whole seconds) for the rows of a batch: counts, latency sums and CDF mixtures."""

    def __init__(self, ledger, rows: np.ndarray, version: int, a: int, b: int):
        self.ledger, self.rows, self.version, self.a, self.b = ledger, rows, version, a, b
        if b <= a:
            return
        led, v = ledger, version
        sel = led.cum[rows, b % led.Lc, v] - led.cum[rows, a % led.Lc, v]  # (n, 3): requests, errors, slow
        self.counts = np.rint(sel).astype(np.int64).tolist()  # round() of each, as Ledger.window takes them
        counts = led.qcum[rows, b % led.Lq, v] - led.qcum[rows, a % led.Lq, v]  # (n, K) successes by effect key
        secs = np.arange(a, b) % led.Lq
        self.latency = led.qsum[rows[:, None], secs[None, :], v].sum(axis=1)  # each row contiguous: a row's sum
        self.n_ok = counts.sum(axis=1)
        k_cdf = led.plane.k_cdf
        self.cdf = np.zeros((len(rows), len(led.model.grid)))
        some = counts.any(axis=1)
        if some.any():  # (m, 1, K) @ (K, G): the same gemv per row as one row's (K,) @ (K, G)
            self.cdf[some] = np.matmul(counts[some][:, None, : len(k_cdf)], k_cdf)[:, 0]

    def stats(self, i: int, rng=None) -> WindowStats:
        """Row i's WindowStats; its percentiles computed now (most rows of a batch are never asked)."""
        if self.b <= self.a:
            return WindowStats(0, 0, 0)
        requests, errors, slow = self.counts[i]
        cdf, n_ok = self.ledger.with_saturated(int(self.rows[i]), (self.version,), self.a, self.b, self.cdf[i],
                                               self.n_ok[i])
        return self.ledger.latency_stats(requests, errors, slow, cdf, n_ok, self.latency[i], rng)


class View:
    """One replication's monitoring at the current tick (recorder.MonitoringView's visibility rule)."""

    __slots__ = ("monitoring", "rep", "end")

    def __init__(self, monitoring: Monitoring, rep: int):
        self.monitoring, self.rep, self.end = monitoring, rep, 0.0

    def version_window(self, version: str) -> WindowStats:
        m = self.monitoring
        return m.window(self.rep, index(version), self.end - m.window_len, self.end)

    def total_window(self, seconds: float) -> WindowStats:
        return self.monitoring.ledger.total_window(self.rep, self.end - seconds, self.end)

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        m, v = self.monitoring, index(version)
        return tuple(m.window(self.rep, v, a, b) for a, b in sub_windows(self.end - m.window_len, self.end, count))
