"""One instance of the service as the request engine sees it: state, workers, FIFO queue."""
from __future__ import annotations

from collections import deque

STARTING, READY, DOWN, STOPPED = "starting", "ready", "down", "stopped"
DRAINING = "draining"  # a timeline category: told to stop, finishing what it holds


class Instance:
    __slots__ = (
        "id", "version", "zone", "state", "stopping", "in_rotation", "busy", "queue", "outstanding",
        "created_at", "up_since", "stopped_at", "timer_armed", "ok_checks",
        "bad_checks", "crashy", "leaky", "looping", "restarts", "lo_prev", "lo_next", "lo_since",
    )

    def __init__(self, ident: int, version: int, zone: int, now: float):
        self.id, self.version, self.zone = ident, version, zone
        self.state = STARTING
        self.stopping = False  # told to stop: out of rotation, draining what it holds
        self.in_rotation = False
        self.busy = 0
        self.queue: deque = deque()
        self.outstanding = 0  # busy + queued: what least-outstanding balancing compares
        self.created_at = now
        self.up_since = now
        self.stopped_at: float | None = None
        self.timer_armed = False
        self.ok_checks = 0
        self.bad_checks = 0
        self.crashy = False
        self.leaky = False
        self.looping = False
        self.restarts = 0
        # least-outstanding's index (balancing.py): neighbours at its count, in the order they entered it
        self.lo_prev: Instance | None = None
        self.lo_next: Instance | None = None
        self.lo_since = 0  # when it entered its count (a stamp of the index)

    @property
    def alive(self) -> bool:
        return not self.stopping and self.state != STOPPED


# -- attempts ------------------------------------------------------------------------------------------
# One try of a user request at one instance, and its own completion event on the engine's heap. It is a
# list, not an object: the engine makes one per request, and a list display is made several times faster
# than an instance with seven fields. Its fields, by index:
T0, TRIES = 0, 1  # the user request's arrival time (its second is int(T0)), the retries it has used
T = 2  # when this attempt was sent
INST = 3  # the instance it went to (None until dispatched)
ERROR = 4  # that instance will answer it with an error
DONE = 5  # it ended (served, client timeout, crash): its completion event, still on the heap, is ignored
END = 6  # when its service ends, once started
Attempt = list


def attempt(t0: float, tries: int, t: float) -> Attempt:
    """A new attempt sent at t (the engine's arrival loop writes the same list in place)."""
    return [t0, tries, t, None, False, False, 0.0]
