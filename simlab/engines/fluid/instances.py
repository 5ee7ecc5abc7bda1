"""The instances of one fluid replication as a structure of arrays: row i is the i-th instance ever started.

Arrays rather than one object per instance, so that a fleet of tens of thousands is started, stopped,
counted and summed by a few numpy calls (fleet.py moves many instances at once). Sums that the
per-instance objects used to make one by one are made in the same order (`np.cumsum` adds in sequence),
so the floating-point results do not change.
"""
from __future__ import annotations

import math

import numpy as np

from simlab.engines.instance import DOWN as DOWN_NAME, DRAINING, READY as READY_NAME, STARTING as STARTING_NAME

STARTING, READY, DOWN, STOPPED = 0, 1, 2, 3  # codes of engines.instance's states

# name, dtype, value of a new row
FIELDS = (
    ("version", np.int8, 0), ("zone", np.int16, 0), ("state", np.int8, STARTING),
    ("in_rot", np.bool_, False), ("stopping", np.bool_, False),  # in load-balancer rotation; told to stop
    ("epoch", np.int32, 0),  # bumped by a crash, a zone loss or a stop: start-up and crash events before it are void
    ("health", np.int32, 0),  # bumped when checks would start to see another answer: rotation events before it are void
    ("restarts", np.int32, 0),
    ("created", np.float64, 0.0), ("up_since", np.float64, 0.0),
    ("stopped_at", np.float64, math.inf),  # inf while it runs
    ("first_check", np.float64, 0.0),  # its health checks run every interval from this phase
    ("backoff", np.float64, 10.0),  # a crash loop's next restart delay
    ("crashy", np.bool_, False), ("leaky", np.bool_, False), ("looping", np.bool_, False),  # the release's defects
)


class Instances:
    """Columns of FIELDS, grown by doubling; `n` rows in use."""

    def __init__(self, capacity: int = 16):
        self.n = 0
        self._snap = None  # the last snapshot and the columns it was counted from
        for name, dtype, _ in FIELDS:  # rows are filled when used: memory not touched until then
            setattr(self, name, np.empty(capacity, dtype=dtype))

    def add(self, count: int, version: int, zones: np.ndarray, t: float, first_check: np.ndarray) -> np.ndarray:
        """Rows for `count` new starting instances created at t; returns their indices."""
        start, end = self.n, self.n + count
        capacity = len(self.state)
        if end > capacity:
            capacity = max(end, 2 * capacity)
            for name, dtype, _ in FIELDS:
                grown = np.empty(capacity, dtype=dtype)
                grown[:start] = getattr(self, name)[:start]
                setattr(self, name, grown)
        for name, _, fill in FIELDS:
            getattr(self, name)[start:end] = fill
        self.n = end
        self.version[start:end] = version
        self.zone[start:end] = zones
        self.created[start:end] = self.up_since[start:end] = t
        self.first_check[start:end] = first_check
        return np.arange(start, end)

    def alive_of(self, version: int) -> np.ndarray:
        """Indices of the version's instances not told to stop and not stopped, oldest first."""
        n = self.n
        return np.flatnonzero((self.version[:n] == version) & ~self.stopping[:n] & (self.state[:n] != STOPPED))

    def check_after(self, idx, t: float, nth: int, interval: float):
        """Time of the nth health check at or after t (nth = 1 is the first) of instances idx."""
        first = self.first_check[idx]
        k = np.maximum(0.0, np.ceil((t - first) / interval - 1e-12))
        return first + (k + (nth - 1)) * interval

    # -- what the data plane, the timeline and the summary read ----------------
    def snapshot(self, versions: int = 2) -> dict:
        """Instances by (version, timeline state): engines.timeline.timeline_state of every one not stopped
        (`versions`: how many version indices there are, versions.version_count)."""
        n = self.n
        state, stopping, version = self.state[:n], self.stopping[:n], self.version[:n]
        key = (versions, state.tobytes(), stopping.tobytes(), version.tobytes(), self.in_rot[:n].tobytes())
        if self._snap is not None and self._snap[0] == key:  # most seconds move no instance
            return dict(self._snap[1])
        running = state != STOPPED
        ready = running & ~stopping & self.in_rot[:n] & (state == READY)
        starting = running & ~stopping & ~ready & ((state == READY) | (state == STARTING))
        down = running & ~stopping & (state == DOWN)
        draining = running & stopping
        # the four categories exclude each other: one count per (category, version) code
        code = np.full(n, 4 * versions, dtype=np.int64)
        for j, mask in enumerate((ready, starting, down, draining)):
            code[mask] = j * versions + version[mask]
        counts = np.bincount(code, minlength=4 * versions + 1).tolist()
        names = (READY_NAME, STARTING_NAME, DOWN_NAME, DRAINING)
        out = {(v, name): counts[j * versions + v] for v in range(versions) for j, name in enumerate(names)}
        self._snap = (key, out)
        return dict(out)

    def instance_seconds(self, duration: float) -> float:
        """Seconds each instance ran within the run, summed in the order they were started."""
        n = self.n
        if not n:
            return 0.0
        spans = np.maximum(0.0, np.minimum(self.stopped_at[:n], duration) - self.created[:n])
        return float(np.cumsum(spans)[-1])
