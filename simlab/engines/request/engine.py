"""The request engine: every request an event, on SimPy, driving the shared rollout controller.

Requests are handled by callbacks on lightweight events (no process per
request): arrival, service completion, and — only when they can matter — a
queue-deadline timer per instance and a client timeout. Control-plane work
(controller ticks, health checks, failures) runs as ordinary SimPy processes.
"""
from __future__ import annotations

import math

import simpy
from simpy.core import NORMAL

from simlab.control import RolloutController
from simlab.dists import from_spec
from simlab.engines.draws import exponentials, uniforms
from simlab.engines.effects import NONE, Effects
from simlab.engines.instance import READY, Attempt, Instance, Request
from simlab.engines.request.balancing import Balancing
from simlab.engines.request.recorder import Recorder
from simlab.engines.versions import NO_BACKEND, OLD
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
        self.gaps = exponentials(streams["arrivals"])
        self.u_thin = uniforms(streams["arrivals.thinning"])
        self.failure_rng = streams["failures"]
        self.defect_rng = streams["defects"]
        self.duration = scenario.duration
        drain = (self.retries.max + 1) * (self.timeout + self.retries.backoff * 2**self.retries.max) + 2
        self.drain = drain
        self.rec = Recorder(int(math.ceil(self.duration)), scenario.slo.latency_threshold, int(math.ceil(drain)))
        self.controller = RolloutController(scenario)
        self.instances: list[Instance] = []
        self.pools: tuple[list[Instance], list[Instance]] = ([], [])
        self.pool_all: list[Instance] = []
        self.rr = [0, 0, 0]
        self.weight: float | None = None  # share of traffic for the new version, None: by instance
        self.migration = "none"
        self._eff_sec, self._eff = -1, (NONE, NONE)
        self.zone_down: set[int] = set()
        self.zone_up: dict[int, simpy.Event] = {}
        self.procs: dict[int, simpy.Process] = {}
        self.next_zone = 0
        self.work = [0.0] * (int(math.ceil(self.duration + drain)) + 2)  # busy worker-seconds by start second
        self.tokens = self.token_cap = max(10.0, self.retries.budget * traffic.rps * 10.0)
        self.pending_retries = 0
        self._last_capacity = fleet.instances * fleet.workers
        self.events: list[tuple[float, str, dict]] = []
        self.rows: list[tuple] = []
        self._cb_complete = self._complete
        self._cb_expire = self._queue_deadline
        self._cb_client_timeout = self._client_timeout
        self._cb_retry = self._retry
        self._choose = self._policy(fleet.load_balancer)

    # -- run -----------------------------------------------------------------
    def run(self):
        env = self.env
        for _ in range(self.s.fleet.instances):
            self._launch(OLD, ready=True)
        self._schedule_first_arrival()
        env.process(self._control())
        for failure in self.s.failures:
            if isinstance(failure, ZoneOutage):
                env.process(self._zone_outage(failure))
        self._run_until(self.duration + self.drain)
        return build_result(self)

    def _run_until(self, until: float) -> None:
        """SimPy's run loop with the arrival stream merged in.

        The next arrival's time is always known (one pending arrival), so it
        is taken straight from the stream instead of being pushed onto and
        popped off the event heap: a third fewer heap operations per request.
        Completions, timeouts, retries and every control-plane process stay
        SimPy events, stepped by `env.step()` in time order with the arrivals.
        """
        # SimPy has no public API to advance the clock to a time without an event there, nor to read the
        # heap's head without a method call per request: the engine uses Environment._queue and ._now,
        # verified with SimPy 4.1.x (pinned in pyproject.toml); env.now is read as _now on hot paths.
        env = self.env
        heap = env._queue  # simpy's event heap of (time, priority, id, event)
        step, arrive = env.step, self._arrive
        while True:
            t = self._next_t
            if t <= (heap[0][0] if heap else math.inf):
                if t >= until:
                    break
                env._now = t
                arrive()
            else:
                if heap[0][0] >= until:
                    break
                step()
        env._now = until

    def _schedule(self, delay: float, callback, arg=None) -> None:
        self.env.schedule(_Ev(callback, arg), NORMAL, delay)

    # -- arrivals ------------------------------------------------------------
    def _next_arrival_time(self, t: float) -> float | None:
        """Next arrival after t: exact segment-by-segment for piecewise-constant λ, thinning otherwise."""
        load = self.load
        if t >= self.duration:
            return None
        if load.piecewise_constant:
            while True:
                if t >= self._seg_end or self._seg_rate is None:
                    self._seg_rate, self._seg_end = load.rate(t), load.next_change(t)
                rate = self._seg_rate
                if rate > 0:
                    candidate = t + self.gaps.next() / rate
                    if candidate < self._seg_end:
                        t = candidate
                        break
                t = self._seg_end  # memoryless: restart the gap at the change
                if t >= self.duration:
                    return None
        else:
            lmax = load.max_rate
            while True:
                t += self.gaps.next() / lmax
                if t >= self.duration or self.u_thin.next() * lmax <= load.rate(t):
                    break
        return t if t < self.duration else None

    def _schedule_first_arrival(self) -> None:
        self._seg_rate, self._seg_end = None, 0.0
        t = self._next_arrival_time(0.0) if self.load.max_rate > 0 else None
        self._next_t = math.inf if t is None else t

    def _arrive(self) -> None:
        now = self._next_t
        req = Request(now)
        self.rec.offered[req.sec] += 1
        tokens = self.tokens + self.retries.budget
        self.tokens = tokens if tokens < self.token_cap else self.token_cap
        self._dispatch(req, now)
        # fast path of _next_arrival_time: a gap that stays inside the current constant-rate segment
        rate = self._seg_rate
        if rate:
            t = now + self.gaps.next() / rate
            if t >= self._seg_end:
                t = self._next_arrival_time(self._seg_end)  # memoryless: restart the gap at the change
            elif t >= self.duration:
                t = None
        else:
            t = self._next_arrival_time(now)
        self._next_t = math.inf if t is None else t

    # -- one attempt ---------------------------------------------------------
    def _dispatch(self, req: Request, now: float) -> None:
        self.rec.attempts[int(now)] += 1
        if self.weight is None:
            pool = self.pool_all
            inst = self._choose(pool) if pool else None
        else:
            inst = self._pick()
        if inst is None:
            self.rec.attempt_done(NO_BACKEND, now, 0.0, True)
            self._attempt_failed(req, "rejected", now)
            return
        if inst.state != READY:  # crashed, not yet noticed by health checks: connection refused
            inst = self._redispatch(inst) if self.s.fleet.redispatch else None
            if inst is None:
                self.rec.attempt_done(NO_BACKEND, now, 0.0, True)
                self._attempt_failed(req, "reset", now)
                return
        att = Attempt(req, now, inst)
        if inst.busy < self.workers:
            inst.outstanding += 1
            self._start(att, inst, now)
        elif len(inst.queue) < self.queue_limit:
            self.rec.queued[int(now)] += 1
            inst.outstanding += 1
            inst.queue.append(att)
            if not inst.timer_armed:
                inst.timer_armed = True
                self._schedule(att.t + self.timeout - now, self._cb_expire, inst)
        else:
            self.rec.attempt_done(inst.version, now, 0.0, True)
            self._attempt_failed(req, "rejected", now)

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
            self._eff = (self.effects.at(0, now, self.migration), self.effects.at(1, now, self.migration))
        eff = self._eff[inst.version]
        if eff is not NONE:
            svc = svc * eff.multiplier + eff.add
            for fraction, mult, add in eff.partial:
                if self.u_service.next() < fraction:
                    svc = svc * mult + add
            if eff.error > 0.0 and self.u_service.next() < eff.error:
                att.error = True
        if inst.leaky:
            leak = self.effects.memory_leak
            svc *= 1.0 + (leak.max_slowdown - 1.0) * min(1.0, (now - inst.up_since) / leak.oom_after)
        att.svc, att.started = svc, now
        end = now + svc
        if int(end) == sec:
            self.work[sec] += svc
        else:
            self._add_work(now, end, 1.0)
        inst.in_service[att] = None
        att.callbacks = [self._cb_complete]
        self.env.schedule(att, NORMAL, svc)  # the attempt is its own completion event
        deadline = att.t + self.timeout
        if now + svc > deadline:
            self._schedule(deadline - now, self._cb_client_timeout, att)

    def _complete(self, att) -> None:
        inst = att.inst
        if att.done or att.epoch != inst.epoch:
            return
        now = self.env._now
        att.done = True
        inst.busy -= 1
        inst.outstanding -= 1
        inst.in_service.pop(att, None)
        latency = now - att.t
        rec = self.rec
        if att.error:
            rec.attempt_done(inst.version, now, latency, True)
            self._attempt_failed(att.req, "error", now)
        else:
            v, csec = inst.version, int(now)
            rec.srv_requests[v][csec] += 1
            if csec > rec.srv_last[v]:
                rec.mark_second(v, csec)
            rec.srv_latency[v].append(latency)
            if latency > rec.slow_threshold:
                rec.srv_slow[v][csec] += 1
            req = att.req
            user_latency = now - req.t0
            sec = req.sec
            rec.succeeded[sec] += 1
            if user_latency > rec.slow_threshold:
                rec.slow[sec] += 1
            rec.user_sec.append(sec)
            rec.user_latency.append(user_latency)
        if inst.queue or inst.stopping:
            self._pull(inst, now)

    def _release_worker(self, inst: Instance, att: Attempt, now: float) -> None:
        """Free the worker of an attempt cut short; its unserved time is taken off the work ledger."""
        inst.busy -= 1
        inst.outstanding -= 1
        inst.in_service.pop(att, None)
        self._add_work(now, att.started + att.svc, -1.0)

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
        inst = att.inst
        if att.done or att.epoch != inst.epoch:
            return
        now = self.env._now
        att.done = True  # the client hung up; the server notices and frees the worker
        self._release_worker(inst, att, now)
        self.rec.attempt_done(inst.version, now, now - att.t, True)
        self._attempt_failed(att.req, "timeout", now)
        self._pull(inst, now)

    def _queue_deadline(self, ev) -> None:
        inst = ev.arg
        inst.timer_armed = False
        now = self.env._now
        queue, timeout = inst.queue, self.timeout
        while queue and queue[0].t + timeout <= now + 1e-12:
            att = queue.popleft()
            inst.outstanding -= 1
            self._attempt_failed(att.req, "timeout", now)
        if queue:
            inst.timer_armed = True
            self._schedule(queue[0].t + timeout - now, self._cb_expire, inst)
        self._maybe_stopped(inst, now)

    def _pull(self, inst: Instance, now: float) -> None:
        queue = inst.queue
        while queue and inst.busy < self.workers:
            att = queue.popleft()
            if att.t + self.timeout <= now:
                inst.outstanding -= 1
                self._attempt_failed(att.req, "timeout", now)
                continue
            self._start(att, inst, now)
        if inst.stopping:
            self._maybe_stopped(inst, now)

    # -- outcomes ------------------------------------------------------------
    def _attempt_failed(self, req: Request, cause: str, now: float) -> None:
        retries = self.retries
        if req.tries < retries.max and self.tokens >= 1.0:
            self.tokens -= 1.0
            req.tries += 1
            backoff = retries.backoff * 2 ** (req.tries - 1)
            if retries.jitter:
                backoff *= self.u_retry.next()
            self.pending_retries += 1
            self._schedule(backoff, self._cb_retry, req)
            return
        self.rec.failed[cause][req.sec] += 1

    def _retry(self, ev) -> None:
        self.pending_retries -= 1
        self._dispatch(ev.arg, self.env._now)
