"""One instance of the service as the request engine sees it: state, workers, FIFO queue."""
from __future__ import annotations

from collections import deque

STARTING, READY, DOWN, STOPPED = "starting", "ready", "down", "stopped"
DRAINING = "draining"  # a timeline category: told to stop, finishing what it holds


class Instance:
    __slots__ = (
        "id", "version", "zone", "state", "stopping", "in_rotation", "busy", "queue", "outstanding",
        "epoch", "created_at", "up_since", "stopped_at", "timer_armed", "in_service", "ok_checks",
        "bad_checks", "crashy", "leaky", "looping", "restarts",
    )

    def __init__(self, ident: int, version: int, zone: int, now: float):
        self.id, self.version, self.zone = ident, version, zone
        self.state = STARTING
        self.stopping = False  # told to stop: out of rotation, draining what it holds
        self.in_rotation = False
        self.busy = 0
        self.queue: deque = deque()
        self.outstanding = 0  # busy + queued: what least-outstanding balancing compares
        self.epoch = 0  # bumped by a crash so completions scheduled before it are ignored
        self.created_at = now
        self.up_since = now
        self.stopped_at: float | None = None
        self.timer_armed = False
        self.in_service: dict = {}  # attempts being served, in the order they started (a set would iterate by address)
        self.ok_checks = 0
        self.bad_checks = 0
        self.crashy = False
        self.leaky = False
        self.looping = False
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return not self.stopping and self.state != STOPPED


class Request:
    """A user request: arrival time, second of arrival, retries used."""

    __slots__ = ("t0", "sec", "tries")

    def __init__(self, t0: float):
        self.t0, self.sec, self.tries = t0, int(t0), 0


class Attempt:
    """One try of a request at one instance; it is also its own completion event (see RequestEngine)."""

    __slots__ = ("req", "t", "inst", "epoch", "error", "done", "svc", "started", "callbacks", "_ok", "_value")

    def __init__(self, req: Request, t: float, inst: Instance):
        self.req, self.t, self.inst = req, t, inst
        self.epoch = inst.epoch
        self.error = False
        self.done = False
        self.svc = self.started = 0.0
        self._ok = True
        self._value = None
