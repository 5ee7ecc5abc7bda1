"""The request engine: every request an event, on SimPy, driving the shared rollout controller.

No process per request: arrivals come from a stream merged into the run loop
(arrivals.py), an attempt (a list, simlab.engines.instance) is its own
completion event on SimPy's heap, popped and completed by the loop, and only
when they can matter a queue-deadline timer per instance and a client timeout
are scheduled as lightweight events. Control-plane work (controller ticks,
health checks, failures) runs as ordinary SimPy processes, stepped by the loop
as SimPy would. docs/request-engine.md says what a run keeps and why it costs
what it costs.
"""
from __future__ import annotations

import math
from heapq import heappop, heappush

import simpy
from simpy.core import NORMAL

from simlab.control import RolloutController
from simlab.dists import from_spec
from simlab.engines.draws import exponentials, uniforms
from simlab.engines.effects import NONE, Effects
from simlab.engines.instance import DONE, END, ERROR, INST, READY, T, T0, TRIES, Attempt, Instance, attempt
from simlab.engines.request.arrivals import Arrivals
from simlab.engines.request.balancing import Balancing
from simlab.engines.request.recorder import Recorder
from simlab.engines.versions import NO_BACKEND, OLD, version_count
from simlab.engines.request.fleet import FleetProcesses
from simlab.engines.request.result import build_result
from simlab.engines.traffic import OfferedLoad
from simlab.rng import Streams
from simlab.scenario import Scenario
from simlab.scenario.release import ZoneOutage


class _Ev:
    """The least an event needs for simpy's Environment.step: callbacks and an ok flag."""

    __slots__ = ("callbacks", "_ok", "_value", "arg")

    def __init__(self, callback, arg):
        self.callbacks = [callback]
        self._ok = True
        self._value = None
        self.arg = arg


class RequestEngine(Balancing, FleetProcesses):
    name = "request"

    def __init__(self, scenario: Scenario, seed: int):
        self.s, self.seed = scenario, seed
        self.env = simpy.Environment()
        streams = Streams(seed)
        fleet, traffic = scenario.fleet, scenario.traffic
        self.load = OfferedLoad(scenario)
        self.effects = Effects(scenario, self.load)
        self.workers, self.queue_limit = fleet.workers, fleet.queue_limit
        self.timeout = traffic.timeout
        self.retries = traffic.retries
        self.service_dist, self.service_rng = from_spec(fleet.service_time), streams["service"]
        self._svc_buf: list[float] = []
        self._svc_i = 0
        self.u_service = uniforms(streams["service.errors"])
        self.u_lb = uniforms(streams["balancer"])
        self.u_retry = uniforms(streams["retries"])
        self.failure_rng = streams["failures"]
        self.defect_rng = streams["defects"]
        self.duration = scenario.duration
        drain = (self.retries.max + 1) * (self.timeout + self.retries.backoff * 2**self.retries.max) + 2
        self.drain = drain
        self.rec = Recorder(int(math.ceil(self.duration)), int(math.ceil(drain)))
        self.slow_threshold = scenario.slo.latency_threshold
        self.arrivals = Arrivals(self.load, self.duration, exponentials(streams["arrivals"]),
                                 uniforms(streams["arrivals.thinning"]), self.rec.offered)
        self.srv_latency, self.user_latency = self.rec.srv_latency, self.rec.user_open  # for the hot path
        self.heap, self.event_ids = self.env._queue, self.env._eid  # simpy's heap and its event-id counter
        self.controller = RolloutController(scenario)
        self.instances: list[Instance] = []
        self.V = version_count(scenario)  # version indices in use: OLD, NEW (and BASELINE)
        self.pools: tuple[list[Instance], ...] = ([], [], [])  # in rotation, by version (OLD, NEW, BASELINE)
        self.pool_all: list[Instance] = []
        self.rr = [0, 0, 0, 0]
        self.weight: float | None = None  # share of traffic for the new version, None: by instance
        self.base_weight = 0.0  # share of traffic for a canary's baseline (versions.BASELINE)
        warm = fleet.warmup  # a fresh instance's slowdown: (how long, extra service-time factor as it comes up)
        self.warm = None if warm is None else (warm.duration, warm.slowdown - 1.0)
        self.migration = "none"
        self._eff_sec, self._eff = -1, (NONE, NONE, NONE)
        self.zone_down: set[int] = set()
        self.zone_up: dict[int, simpy.Event] = {}
        self.procs: dict[int, simpy.Process] = {}
        self.next_zone = 0
        self.work = [0.0] * (int(math.ceil(self.duration + drain)) + 2)  # busy worker-seconds by start second
        self.tokens = self.token_cap = max(10.0, self.retries.budget * traffic.rps * 10.0)
        self.retrying = self.retries.max > 0  # without retries the token bucket is never read
        self.pending_retries = 0
        self._last_capacity = fleet.instances * fleet.workers
        self.events: list[tuple[float, str, dict]] = []
        self.rows: list[tuple] = []
        self._cb_expire = self._queue_deadline
        self._cb_client_timeout = self._client_timeout
        self._cb_retry = self._retry
        self._policy(fleet.load_balancer)

    # -- run -----------------------------------------------------------------
    def run(self):
        env = self.env
        for _ in range(self.s.fleet.instances):
            self._launch(OLD, ready=True)
        env.process(self._control())
        for failure in self.s.failures:
            if isinstance(failure, ZoneOutage):
                env.process(self._zone_outage(failure))
        self._run_until(self.duration + self.drain)
        return build_result(self)

    def _run_until(self, until: float) -> None:
        """SimPy's run loop with the arrival stream merged in and attempts completed in place.

        The next arrival's time is always known (one pending arrival), so it
        is taken straight from the stream instead of being pushed onto and
        popped off the event heap: a third fewer heap operations per request.
        An attempt's completion is popped and handled here; every other event
        (timers, the control plane's processes) is stepped as `env.step()`
        does, in time order with the arrivals.
        """
        # SimPy has no public API to advance the clock to a time without an event there, nor to read the
        # heap's head without a method call per request: the engine uses Environment._queue, ._now and
        # ._eid, and step()'s body (_fire), verified with SimPy 4.1.x (pinned in pyproject.toml).
        env = self.env
        heap = env._queue  # simpy's event heap of (time, priority, id, event)
        dispatch, complete, retrying = self._dispatch, self._complete, self.retrying
        arrivals = self.arrivals
        t, ahead, i = arrivals.first(), [], 0  # the next arrival, and those after it already known
        while True:
            if heap:
                head = heap[0][0]
                if head < t:  # an arrival at the same time as an event goes first
                    if head >= until:
                        break
                    now, _, _, event = heappop(heap)
                    env._now = now
                    if event.__class__ is list:  # an attempt
                        complete(event, now)
                    else:
                        _fire(event)
                    continue
            if t >= until:
                break
            env._now = t
            if retrying:  # each request adds to the retry budget's tokens
                tokens = self.tokens + self.retries.budget
                self.tokens = tokens if tokens < self.token_cap else self.token_cap
            dispatch([t, 0, t, None, False, False, 0.0], t)  # attempt(t, 0, t), inline
            if i < len(ahead):
                t = ahead[i]
                i += 1
            else:
                t, ahead = arrivals.after(t)
                i = 0
        env._now = until

    def _schedule(self, delay: float, callback, arg=None) -> None:
        self.env.schedule(_Ev(callback, arg), NORMAL, delay)

    # -- one attempt ---------------------------------------------------------
    def _dispatch(self, att: Attempt, now: float) -> None:
        if self.weight is None:
            if self.lo is not None:
                inst = self.lo.least_in_rotation()
            else:
                pool = self.pool_all
                inst = self._choose(pool) if pool else None
        else:
            inst = self._pick()
        if inst is None:
            self.rec.attempt_failed(NO_BACKEND, now)
            self._attempt_failed(att, "rejected", now)
            return
        if inst.state != READY:  # crashed, not yet noticed by health checks: connection refused
            if self.lo is not None and inst.in_rotation:
                self.lo.requeue(inst)
            inst = self._redispatch(inst) if self.s.fleet.redispatch else None
            if inst is None:
                self.rec.attempt_failed(NO_BACKEND, now)
                self._attempt_failed(att, "reset", now)
                return
        att[INST] = inst
        if inst.busy < self.workers:
            k = inst.outstanding
            inst.outstanding = k + 1
            if self.lo is not None and inst.in_rotation:
                self.lo.up(inst, k)
            self._start(att, inst, now)
        elif len(inst.queue) < self.queue_limit:
            self.rec.queued[int(now)] += 1
            self._set_outstanding(inst, inst.outstanding + 1)
            inst.queue.append(att)
            if not inst.timer_armed:
                inst.timer_armed = True
                self._schedule(att[T] + self.timeout - now, self._cb_expire, inst)
        else:
            if self.lo is not None and inst.in_rotation:
                self.lo.requeue(inst)
            self.rec.attempt_failed(inst.version, now)
            self._attempt_failed(att, "rejected", now)

    def _start(self, att: Attempt, inst: Instance, now: float) -> None:
        inst.busy += 1
        i = self._svc_i
        if i >= len(self._svc_buf):
            self._svc_buf, i = self.service_dist.sample(self.service_rng, 8192).tolist(), 0
        svc = self._svc_buf[i]
        self._svc_i = i + 1
        sec = int(now)
        if sec != self._eff_sec:
            self._eff_sec = sec
            old = self.effects.at(0, now, self.migration)
            self._eff = (old, self.effects.at(1, now, self.migration), old)  # the baseline serves as the old version
        eff = self._eff[inst.version]
        if eff is not NONE:
            svc = svc * eff.multiplier + eff.add
            for fraction, mult, add in eff.partial:
                if self.u_service.next() < fraction:
                    svc = svc * mult + add
            if eff.error > 0.0 and self.u_service.next() < eff.error:
                att[ERROR] = True
        if inst.leaky:
            leak = self.effects.memory_leak
            svc *= 1.0 + (leak.max_slowdown - 1.0) * min(1.0, (now - inst.up_since) / leak.oom_after)
        if self.warm is not None and now - inst.up_since < self.warm[0]:
            svc *= 1.0 + self.warm[1] * (1.0 - (now - inst.up_since) / self.warm[0])
        att[END] = end = now + svc
        if int(end) == sec:
            self.work[sec] += svc
        else:
            self._add_work(now, end, 1.0)
        heappush(self.heap, (end, NORMAL, next(self.event_ids), att))  # the attempt is its own completion event
        deadline = att[T] + self.timeout
        if end > deadline:
            self._schedule(deadline - now, self._cb_client_timeout, att)

    def _complete(self, att: Attempt, now: float) -> None:
        if att[DONE]:
            return
        inst = att[INST]
        att[DONE] = True
        inst.busy -= 1
        k = inst.outstanding
        inst.outstanding = k - 1
        if self.lo is not None and inst.in_rotation:
            self.lo.down(inst, k)
        if att[ERROR]:
            self.rec.attempt_failed(inst.version, now)
            self._attempt_failed(att, "error", now)
        else:  # the servers' ledger by completion second, the user's by arrival second
            v, csec = inst.version, int(now)
            latency, slow = now - att[T], self.slow_threshold
            latencies = self.srv_latency[v][csec]
            if latencies is None:
                latencies = self.rec.open_second(v, csec)
            latencies.append(latency)
            if latency > slow:
                self.rec.srv_slow[v][csec] += 1
            t0 = att[T0]
            latency = now - t0
            if latency > slow:
                self.rec.slow[int(t0)] += 1
            self.user_latency[int(t0)].append(latency)
        if inst.queue or inst.stopping:
            self._pull(inst, now)

    def _release_worker(self, inst: Instance, att: Attempt, now: float) -> None:
        """Free the worker of an attempt cut short; its unserved time is taken off the work ledger."""
        inst.busy -= 1
        self._set_outstanding(inst, inst.outstanding - 1)
        self._add_work(now, att[END], -1.0)

    def _in_service(self, instances) -> dict[Instance, list[Attempt]]:
        """The attempts each of `instances` is serving, in the order they started: read off the heap (their
        completions), which is cheaper than keeping a set per instance on every request, as only crashes ask."""
        found: dict[Instance, list[Attempt]] = {inst: [] for inst in instances}
        held = [e for e in self.heap if e[3].__class__ is list and e[3][INST] in found and not e[3][DONE]]
        for entry in sorted(held, key=lambda e: e[2]):  # event ids: scheduled, that is started, in this order
            found[entry[3][INST]].append(entry[3])
        return found

    def _add_work(self, a: float, b: float, sign: float) -> None:
        """Spread busy time [a, b) over the seconds it covers (sign -1 takes unserved time back)."""
        work = self.work
        while b > a:
            sec = int(a)
            edge = min(b, sec + 1.0)
            if sec < len(work):
                work[sec] += sign * (edge - a)
            a = edge

    def _client_timeout(self, ev) -> None:
        att = ev.arg
        inst = att[INST]
        if att[DONE]:
            return
        now = self.env._now
        att[DONE] = True  # the client hung up; the server notices and frees the worker
        self._release_worker(inst, att, now)
        self.rec.attempt_failed(inst.version, now)
        self._attempt_failed(att, "timeout", now)
        self._pull(inst, now)

    def _queue_deadline(self, ev) -> None:
        inst = ev.arg
        inst.timer_armed = False
        now = self.env._now
        queue, timeout = inst.queue, self.timeout
        while queue and queue[0][T] + timeout <= now + 1e-12:
            att = queue.popleft()
            self._set_outstanding(inst, inst.outstanding - 1)
            self._attempt_failed(att, "timeout", now)
        if queue:
            inst.timer_armed = True
            self._schedule(queue[0][T] + timeout - now, self._cb_expire, inst)
        self._maybe_stopped(inst, now)

    def _pull(self, inst: Instance, now: float) -> None:
        queue = inst.queue
        while queue and inst.busy < self.workers:
            att = queue.popleft()
            if att[T] + self.timeout <= now:
                self._set_outstanding(inst, inst.outstanding - 1)
                self._attempt_failed(att, "timeout", now)
                continue
            self._start(att, inst, now)
        if inst.stopping:
            self._maybe_stopped(inst, now)

    # -- outcomes ------------------------------------------------------------
    def _attempt_failed(self, att: Attempt, cause: str, now: float) -> None:
        """The attempt failed: retry the user request if it may, else count it failed in its arrival second."""
        retries = self.retries
        if att[TRIES] < retries.max and self.tokens >= 1.0:
            self.tokens -= 1.0
            att[TRIES] += 1
            backoff = retries.backoff * 2 ** (att[TRIES] - 1)
            if retries.jitter:
                backoff *= self.u_retry.next()
            self.pending_retries += 1
            self._schedule(backoff, self._cb_retry, att)
            return
        self.rec.failed[cause][int(att[T0])] += 1

    def _retry(self, ev) -> None:
        self.pending_retries -= 1
        failed, now = ev.arg, self.env._now
        self.rec.retried[int(now)] += 1
        self._dispatch(attempt(failed[T0], failed[TRIES], now), now)


def _fire(event) -> None:
    """Process one event popped off the heap: `simpy.Environment.step` after its heappop."""
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)
    if not event._ok and not hasattr(event, "_defused"):
        exc = type(event._value)(*event._value.args)
        exc.__cause__ = event._value
        raise exc
