"""Per-second accounting of one run, and the monitoring view the controller reads from it.

Two ledgers, as in production: the user's (each user request counted in the
second it arrived, with its final outcome) and the servers' (each attempt
counted by version in the second it completed, as /metrics would count it).

Memory grows with simulated seconds, not with requests. Latencies are kept only
while something can still ask for them: a user second's until no request that
arrived in it can still be running (`close_user_seconds`: its exact p50 and p99
are then taken for the timeline and its latencies go into the run's histogram),
the servers' until they are older than any monitoring window still to come
(`forget_before`).
"""
from __future__ import annotations

import math
from array import array

import numpy as np

from simlab.control.observations import WindowStats, sub_windows
from simlab.engines.request.histogram import LogHistogram
from simlab.errors import SimulationError
from simlab.engines.versions import BASELINE, NEW, NO_BACKEND, OLD, index
from simlab.metrics import visible_until
from simlab.results import CAUSES


class Recorder:
    def __init__(self, seconds: int, drain: int):
        n = seconds + drain + 2
        self.seconds = seconds
        self.offered = [0] * n  # counted as arrivals are drawn (simlab.engines.request.arrivals)
        self.retried = [0] * n  # retries sent, by second (a second's attempts: its arrivals and these)
        self.succeeded = [0] * n  # counted when the second closes: its latencies
        self.slow = [0] * n
        self.queued = [0] * n  # attempts that waited in an instance queue, by second sent
        self.failed = {cause: [0] * n for cause in CAUSES}
        # the user's latencies by arrival second (compact arrays, 8 bytes a request) until the second closes
        self.user_open: list[array | None] = [array("d") for _ in range(seconds)]
        self.user_p50 = [math.nan] * seconds
        self.user_p99 = [math.nan] * seconds
        self.closed = 0  # user seconds below this are closed
        self.run_latency = LogHistogram()  # every closed second's successful user requests
        self._sums: list[float] = []  # their latency sums, one per closed second (math.fsum at the end)
        # servers' ledger, by version (OLD, NEW, BASELINE, NO_BACKEND) and completion second; served: the
        # successful attempts, as many as their latencies (counted when those are forgotten)
        self.srv_served = [[0] * n for _ in range(4)]
        self.srv_errors = [[0] * n for _ in range(4)]
        self.srv_slow = [[0] * n for _ in range(4)]
        # successful attempts' latencies by version and completion second, in completion order; None: none, or forgotten
        self.srv_latency: list[list[array | None]] = [[None] * n for _ in range(4)]
        self.forgotten = 0  # server latencies of seconds below this are dropped

    # -- the servers' ledger -------------------------------------------------
    def attempt_failed(self, version: int, now: float) -> None:
        self.srv_errors[version][int(now)] += 1

    def open_second(self, version: int, sec: int) -> array:
        """The array of version's latencies completing in second `sec` (its first completion is landing)."""
        arr = self.srv_latency[version][sec] = array("d")
        return arr

    def forget_before(self, sec: int) -> None:
        """Drop the servers' latencies of seconds before `sec` (no monitoring window will reach back there)."""
        for rows, served in zip(self.srv_latency, self.srv_served):
            for s in range(self.forgotten, min(sec, len(rows))):
                if rows[s] is not None:
                    served[s], rows[s] = len(rows[s]), None
        self.forgotten = max(self.forgotten, sec)

    def _served(self, version: int, a: int, b: int) -> int:
        kept = min(b, max(a, self.forgotten))
        return sum(self.srv_served[version][a:kept]) + sum(len(x) for x in self.srv_latency[version][kept:b] if x is not None)

    def window(self, versions: tuple[int, ...], start: float, end: float, quantiles: bool) -> WindowStats:
        a, b = max(0, int(start)), max(0, int(end))
        requests = errors = slow = 0
        for v in versions:
            errors += sum(self.srv_errors[v][a:b])
            requests += self._served(v, a, b)
            slow += sum(self.srv_slow[v][a:b])
        requests += errors
        if not quantiles:
            return WindowStats(requests, errors, slow)
        if a < self.forgotten:
            raise SimulationError(f"monitoring asked for second {a}, whose latencies were dropped (kept from {self.forgotten})")
        parts = [np.frombuffer(arr, dtype=np.float64) for v in versions
                 for arr in self.srv_latency[v][a:b] if arr is not None and len(arr)]
        if not parts:
            return WindowStats(requests, errors, slow)
        arr = np.concatenate(parts)
        p50, p99 = np.percentile(arr, [50, 99])
        return WindowStats(requests, errors, slow, float(arr.mean()), float(p50), float(p99))

    # -- the user's ledger ---------------------------------------------------
    def close_user_seconds(self, until: int) -> None:
        """Close the user seconds before `until`: exact p50 and p99 for the timeline, latencies into the histogram."""
        for sec in range(self.closed, min(until, self.seconds)):
            values = np.frombuffer(self.user_open[sec], dtype=np.float64)
            self.user_open[sec] = None
            self.succeeded[sec] = len(values)
            if len(values):
                ordered = np.sort(values)
                self.user_p50[sec], self.user_p99[sec] = (_interpolated(ordered, q) for q in (50.0, 99.0))
                self.run_latency.add(values)
                self._sums.append(float(values.sum()))
        self.closed = max(self.closed, min(until, self.seconds))

    def latency_mean(self) -> float | None:
        n = self.run_latency.count
        return math.fsum(self._sums) / n if n else None

    def failed_total(self, sec: int) -> int:
        return sum(self.failed[c][sec] for c in CAUSES)


def _interpolated(ordered: np.ndarray, q: float) -> float:
    """The q-th percentile of sorted values, numpy's linear interpolation between order statistics."""
    pos = (len(ordered) - 1) * q / 100.0
    f = int(pos)
    c = min(f + 1, len(ordered) - 1)
    return float(ordered[f] + (ordered[c] - ordered[f]) * (pos - f))


class MonitoringView:
    """What monitoring shows at `now`: only scrapes at or before now - delay, over the configured window."""

    def __init__(self, recorder: Recorder, now: float, scrape_interval: float, window: float, delay: float):
        self.recorder = recorder
        self.end = visible_until(now, scrape_interval, delay)
        self.window_len = window

    @property
    def start(self) -> float:
        """Where every window of this view and of any later one begins, or after."""
        return self.end - self.window_len

    def version_window(self, version: str) -> WindowStats:
        v = index(version)
        return self.recorder.window((v,), self.start, self.end, quantiles=True)

    def total_window(self, seconds: float) -> WindowStats:
        return self.recorder.window((OLD, NEW, BASELINE, NO_BACKEND), self.end - seconds, self.end, quantiles=False)

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        v = index(version)
        return tuple(self.recorder.window((v,), a, b, quantiles=True)
                     for a, b in sub_windows(self.start, self.end, count))
