"""Events of many instances in (time, sequence) order, waiting in the fleet's heap as one entry.

A cohort of instances started together enters rotation at health-check times spread over an
interval; a stop drains many instances, each at its own time. Rather than one heap entry per
instance, they wait as one sorted run whose entry carries the key of its first event; when that
entry comes up, the fleet takes every event of the run that comes before the heap's next entry (and
before the advance's limit) and applies them at once. Events keep the sequence numbers they would
have had as single entries, so ties are broken as before and the order of everything is unchanged.
"""
from __future__ import annotations

import numpy as np


class Run:
    """Events (time, seq, instance, tag) sorted by (time, seq); `i` is the first one not yet taken."""

    __slots__ = ("kind", "t", "seq", "idx", "tag", "i")

    def __init__(self, kind: str, t, seq, idx, tag):
        """Events given in increasing `seq`: a stable sort by time puts them in (time, seq) order."""
        if len(t) > 1 and (t[1:] < t[:-1]).any():
            order = np.argsort(t, kind="stable")
            t, seq, idx, tag = t[order], seq[order], idx[order], tag[order]
        self.kind, self.t, self.seq, self.idx, self.tag = kind, t, seq, idx, tag
        self.i = 0

    def key(self) -> tuple[float, int]:
        return float(self.t[self.i]), int(self.seq[self.i])

    def take(self, before: tuple[float, int] | None, until: float, inclusive: bool):
        """(times, instances, tags) of the events due by `until` and before the heap key `before`."""
        t = self.t[self.i:]
        end = int(np.searchsorted(t, until, "right" if inclusive else "left"))
        if before is not None:
            lo, hi = np.searchsorted(t, before[0], "left"), np.searchsorted(t, before[0], "right")
            end = min(end, int(lo + np.searchsorted(self.seq[self.i + lo:self.i + hi], before[1])))
        a, b = self.i, self.i + end
        self.i = b
        return self.t[a:b], self.idx[a:b], self.tag[a:b]

    def done(self) -> bool:
        return self.i >= len(self.t)
