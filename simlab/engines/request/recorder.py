"""Per-second accounting of one run, and the monitoring view the controller reads from it.

Two ledgers, as in production: the user's (each user request counted in the
second it arrived, with its final outcome) and the servers' (each attempt
counted by version in the second it completed, as /metrics would count it).
"""
from __future__ import annotations

import math
from array import array

import numpy as np

from simlab.engines.versions import NEW, NO_BACKEND, OLD
from simlab.results import CAUSES
from simlab.control.observations import WindowStats, sub_windows
from simlab.metrics import visible_until



class Recorder:
    def __init__(self, seconds: int, slow_threshold: float, drain: int):
        n = seconds + drain + 2
        self.seconds = seconds
        self.slow_threshold = slow_threshold
        self.offered = [0] * n
        self.attempts = [0] * n
        self.succeeded = [0] * n
        self.slow = [0] * n
        self.queued = [0] * n  # attempts that waited in an instance queue, by second sent
        self.failed = {cause: [0] * n for cause in CAUSES}
        # compact typed arrays: a run keeps one entry per request (8 bytes each, not a boxed float)
        self.user_sec = array("q")
        self.user_latency = array("d")
        # servers' ledger, by version (OLD, NEW, NO_BACKEND) and completion second
        self.srv_requests = [[0] * n for _ in range(3)]
        self.srv_errors = [[0] * n for _ in range(3)]
        self.srv_slow = [[0] * n for _ in range(3)]
        self.srv_latency = [array("d") for _ in range(3)]  # successful attempts' latencies, in completion order
        # srv_index[v][s]: how many of version v's latencies completed before second s (filled up to srv_last[v])
        self.srv_index = [[0] * n for _ in range(3)]
        self.srv_last = [-1, -1, -1]

    # -- the servers' ledger -------------------------------------------------
    def attempt_done(self, version: int, now: float, latency: float, error: bool) -> None:
        sec = int(now)
        self.srv_requests[version][sec] += 1
        if error:
            self.srv_errors[version][sec] += 1
        else:
            if sec > self.srv_last[version]:
                self.mark_second(version, sec)
            self.srv_latency[version].append(latency)
            if latency > self.slow_threshold:
                self.srv_slow[version][sec] += 1

    def mark_second(self, version: int, sec: int) -> None:
        """Record where seconds up to `sec` begin in version's latency samples (before its first sample lands)."""
        row, start = self.srv_index[version], len(self.srv_latency[version])
        for s in range(self.srv_last[version] + 1, sec + 1):
            row[s] = start
        self.srv_last[version] = sec

    def _index_at(self, version: int, sec: int) -> int:
        if sec <= self.srv_last[version]:
            return self.srv_index[version][sec]
        return len(self.srv_latency[version])

    def window(self, versions: tuple[int, ...], start: float, end: float, quantiles: bool) -> WindowStats:
        a, b = max(0, int(start)), max(0, int(end))
        requests = errors = slow = 0
        for v in versions:
            requests += sum(self.srv_requests[v][a:b])
            errors += sum(self.srv_errors[v][a:b])
            slow += sum(self.srv_slow[v][a:b])
        if not quantiles:
            return WindowStats(requests, errors, slow)
        parts = []
        for v in versions:
            i, j = self._index_at(v, a), self._index_at(v, b)
            if j > i:
                # view a sliced copy, never the growing array itself: an outstanding view (a profiler
                # holding frames, say) would make the next append raise BufferError
                parts.append(np.frombuffer(self.srv_latency[v][i:j], dtype=np.float64))
        if not parts:
            return WindowStats(requests, errors, slow)
        arr = np.concatenate(parts)
        p50, p99 = np.percentile(arr, [50, 99])
        return WindowStats(requests, errors, slow, float(arr.mean()), float(p50), float(p99))

    # -- summaries -----------------------------------------------------------
    def user_latencies(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.user_sec, dtype=np.int64), np.array(self.user_latency, dtype=np.float64)

    def failed_total(self, sec: int) -> int:
        return sum(self.failed[c][sec] for c in CAUSES)


class MonitoringView:
    """What monitoring shows at `now`: only scrapes at or before now - delay, over the configured window."""

    def __init__(self, recorder: Recorder, now: float, scrape_interval: float, window: float, delay: float):
        self.recorder = recorder
        self.end = visible_until(now, scrape_interval, delay)
        self.window_len = window

    def version_window(self, version: str) -> WindowStats:
        v = OLD if version == "old" else NEW
        return self.recorder.window((v,), self.end - self.window_len, self.end, quantiles=True)

    def total_window(self, seconds: float) -> WindowStats:
        return self.recorder.window((OLD, NEW, NO_BACKEND), self.end - seconds, self.end, quantiles=False)

    def version_samples(self, version: str, count: int) -> tuple[WindowStats, ...]:
        v = OLD if version == "old" else NEW
        return tuple(self.recorder.window((v,), a, b, quantiles=True)
                     for a, b in sub_windows(self.end - self.window_len, self.end, count))


def per_second_percentiles(secs: np.ndarray, values: np.ndarray, n: int, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Percentiles of `values` grouped by integer second 0..n-1 (NaN where a second has none)."""
    out = [np.full(n, math.nan) for _ in qs]
    if len(values) == 0:
        return out
    order = np.lexsort((values, secs))
    s, v = secs[order], values[order]
    bounds = np.searchsorted(s, np.arange(n + 1))
    for sec in range(n):
        lo, hi = bounds[sec], bounds[sec + 1]
        if hi > lo:
            for k, q in enumerate(qs):
                # linear interpolation between order statistics, as numpy's default
                pos = (hi - lo - 1) * q / 100.0
                f = int(pos)
                c = min(f + 1, hi - lo - 1)
                out[k][sec] = v[lo + f] + (v[lo + c] - v[lo + f]) * (pos - f)
    return out
