"""The request engine: every request an event, on SimPy, driving the shared rollout controller.

Requests are handled by callbacks on lightweight events (no process per
request): arrival, service completion, and — only when they can matter — a
queue-deadline timer per instance and a client timeout. Control-plane work
(controller ticks, health checks, failures) runs as ordinary SimPy processes.
"""
from __future__ import annotations

import math
from operator import attrgetter

import simpy
from simpy.core import NORMAL

from simlab.control import PERIOD, FleetState, RolloutController, SetWeight, StartInstances, StartMigration, StopInstances, VersionCount
from simlab.dists import from_spec
from simlab.engines.draws import exponentials, uniforms
from simlab.engines.effects import NONE, Effects
from simlab.engines.instance import DOWN, DRAINING, READY, STARTING, STOPPED, Attempt, Instance, Request
from simlab.engines.recorder import NEW, NO_BACKEND, OLD, MonitoringView, Recorder
from simlab.engines.summary import build_result
from simlab.engines.traffic import OfferedLoad
from simlab.rng import Streams
from simlab.scenario import Scenario
from simlab.scenario.release import InstanceCrash, ZoneOutage


class _Ev:
    """The least an event needs for simpy's Environment.step: callbacks and an ok flag."""

    __slots__ = ("callbacks", "_ok", "_value", "arg")

    def __init__(self, callback, arg):
        self.callbacks = [callback]
        self._ok = True
        self._value = None
        self.arg = arg


_OUTSTANDING = attrgetter("outstanding")


class RequestEngine:
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
        self._cb_arrive = self._arrive
        self._cb_complete = self._complete
        self._cb_expire = self._queue_deadline
        self._cb_client_timeout = self._client_timeout
        self._cb_retry = self._retry
        policy = fleet.load_balancer
        self._choose = {
            "round_robin": self._round_robin, "random": self._random,
            "least_outstanding": self._least, "power_of_two": self._two_choices,
        }[policy]

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
        env.run(until=self.duration + self.drain)
        return build_result(self)

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
        if self.load.max_rate <= 0:
            return
        t = self._next_arrival_time(0.0)
        if t is not None:
            self._arrival_ev = _Ev(self._cb_arrive, None)
            self.env.schedule(self._arrival_ev, NORMAL, t)

    def _arrive(self, ev) -> None:
        now = self.env._now
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
        if t is not None:
            ev.callbacks = [self._cb_arrive]  # the same event object carries every arrival
            self.env.schedule(ev, NORMAL, t - now)

    # -- balancing -----------------------------------------------------------
    def _pick(self) -> Instance | None:
        w = self.weight
        if w is None:
            pool = self.pool_all
        else:
            use_new = w >= 1.0 or (w > 0.0 and self.u_lb.next() < w)
            pool = self.pools[NEW] if use_new else self.pools[OLD]
            if not pool:
                pool = self.pools[OLD] if use_new else self.pools[NEW]
        if not pool:
            return None
        return self._choose(pool)

    def _round_robin(self, pool):
        key = 2 if pool is self.pool_all else pool[0].version
        self.rr[key] += 1
        return pool[self.rr[key] % len(pool)]

    def _random(self, pool):
        return pool[int(self.u_lb.next() * len(pool))]

    def _least(self, pool):
        return min(pool, key=_OUTSTANDING)

    def _two_choices(self, pool):
        n = len(pool)
        a = pool[int(self.u_lb.next() * n)]
        b = pool[int(self.u_lb.next() * n)]
        return a if a.outstanding <= b.outstanding else b

    def _redispatch(self, refused: Instance) -> Instance | None:
        """The load balancer's one retry of a refused connection, on another up instance of the same pool."""
        pool = self.pool_all if self.weight is None else self.pools[refused.version]
        up = [i for i in pool if i.state == READY]
        if not up:
            up = [i for i in self.pool_all if i.state == READY]
        return self._choose(up) if up else None

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
        inst.in_service.add(att)
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
        inst.in_service.discard(att)
        latency = now - att.t
        rec = self.rec
        if att.error:
            rec.attempt_done(inst.version, now, latency, True)
            self._attempt_failed(att.req, "error", now)
        else:
            v, csec = inst.version, int(now)
            rec.srv_requests[v][csec] += 1
            rec.srv_times[v].append(now)
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
        inst.in_service.discard(att)
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

    # -- instances -----------------------------------------------------------
    def _new_instance(self, version: int) -> Instance:
        now = self.env.now
        inst = Instance(len(self.instances), version, self.next_zone % self.s.fleet.zones, now)
        self.next_zone += 1
        self.instances.append(inst)
        if version == NEW:
            fx = self.effects
            draw = self.defect_rng.random
            inst.crashy = fx.crash is not None and draw() < fx.crash.fraction
            inst.leaky = fx.memory_leak is not None and draw() < fx.memory_leak.fraction
            inst.looping = fx.crash_loop is not None and draw() < fx.crash_loop.fraction
        return inst

    def _launch(self, version: int, ready: bool = False) -> Instance:
        inst = self._new_instance(version)
        if ready:  # part of the fleet when the run starts: up and in rotation
            inst.state, inst.up_since = READY, self.env.now
            inst.ok_checks = self.s.fleet.health_check.healthy_after
            self._rotate_in(inst)
        self.procs[inst.id] = self.env.process(self._lifecycle(inst, ready))
        self.env.process(self._health_checks(inst))
        return inst

    def _lifecycle(self, inst: Instance, ready: bool):
        """Start-up, crashes, restarts; ends when the instance is stopped.

        Waiting for a failure is interrupted by outside events (a zone going
        down, the controller stopping the instance).
        """
        env, startup = self.env, self.s.fleet.startup
        backoff = 10.0
        restart = 0.0
        while inst.state != STOPPED and not inst.stopping:
            try:
                if not ready:
                    if restart > 0:
                        yield env.timeout(restart)
                    while inst.zone in self.zone_down:
                        inst.state = DOWN
                        yield self.zone_up[inst.zone]
                    inst.state = STARTING
                    yield env.timeout(startup)
                    if inst.zone in self.zone_down:
                        restart = 0.0
                        continue
                    if inst.looping and self._defect_on(self.effects.crash_loop):
                        inst.state = DOWN  # crash loop: exits at start, restarted with back-off
                        inst.restarts += 1
                        restart, backoff = backoff, min(backoff * 2, 300.0)
                        continue
                    inst.state, inst.up_since = READY, env.now
                ready = False
                ttf = self._time_to_failure(inst)
                yield env.timeout(ttf) if math.isfinite(ttf) else env.event()
                restart = self._crash(inst, "oom" if inst.leaky else "crash")
            except simpy.Interrupt:
                restart = 0.0  # a zone outage (the loop waits for the zone) or a stop (the loop ends)

    def _time_to_failure(self, inst: Instance) -> float:
        """Until this instance's next crash or OOM kill (inf when none)."""
        rng, times = self.failure_rng, [math.inf]
        for f in self.s.failures:
            if isinstance(f, InstanceCrash):
                times.append(rng.exponential(f.mtbf))
        fx = self.effects
        if inst.crashy:
            times.append(rng.exponential(fx.crash.mtbf))
        if inst.leaky:
            times.append(fx.memory_leak.oom_after)
        return min(times)

    def _defect_on(self, defect) -> bool:
        from simlab.engines.effects import defect_active

        return defect_active(defect, self.s, self.load, self.env.now)

    def _crash(self, inst: Instance, why: str) -> float:
        """Fail what the instance holds; return how long until it starts again."""
        now = self.env.now
        inst.epoch += 1
        inst.state = DOWN
        inst.restarts += 1
        self._fail_held(inst, now)
        self.events.append((now, "instance_crash", {"instance": inst.id, "version": inst.version, "why": why}))
        restart = 0.0  # a crashed process restarts at once and goes through start-up again
        for f in self.s.failures:
            if isinstance(f, InstanceCrash):
                restart = max(restart, f.restart - self.s.fleet.startup)
        return max(restart, 0.0)

    def _fail_held(self, inst: Instance, now: float) -> None:
        for att in list(inst.in_service):
            self._add_work(now, att.started + att.svc, -1.0)
        held = list(inst.in_service) + list(inst.queue)
        inst.in_service.clear()
        inst.queue.clear()
        inst.busy = inst.outstanding = 0
        for att in held:
            att.done = True
            self.rec.attempt_done(inst.version, now, now - att.t, True)
            self._attempt_failed(att.req, "reset", now)

    def _health_checks(self, inst: Instance):
        hc = self.s.fleet.health_check
        env = self.env
        yield env.timeout(self.failure_rng.random() * hc.interval)  # checks are not synchronised
        while inst.state != STOPPED:
            if inst.state == READY and not inst.stopping:
                inst.ok_checks, inst.bad_checks = inst.ok_checks + 1, 0
                if inst.ok_checks >= hc.healthy_after and not inst.in_rotation:
                    self._rotate_in(inst)
            else:
                inst.bad_checks, inst.ok_checks = inst.bad_checks + 1, 0
                if inst.bad_checks >= hc.unhealthy_after and inst.in_rotation:
                    self._rotate_out(inst)
            yield env.timeout(hc.interval)

    def _rotate_in(self, inst: Instance) -> None:
        inst.in_rotation = True
        self.pools[inst.version].append(inst)
        self.pool_all.append(inst)

    def _rotate_out(self, inst: Instance) -> None:
        if inst.in_rotation:
            inst.in_rotation = False
            self.pools[inst.version].remove(inst)
            self.pool_all.remove(inst)

    def _stop(self, version: int, count: int) -> None:
        now = self.env.now
        alive = [i for i in self.instances if i.version == version and i.alive]
        # not-ready instances first, then the oldest
        alive.sort(key=lambda i: (i.state == READY and i.in_rotation, -i.created_at if version == NEW else i.created_at))
        for inst in alive[:count]:
            inst.stopping = True
            self._rotate_out(inst)
            proc = self.procs.get(inst.id)
            if proc is not None and proc.is_alive and proc is not self.env.active_process:
                proc.interrupt("stop")
            if inst.state != READY:
                self._fail_held(inst, now)
            self._maybe_stopped(inst, now)

    def _maybe_stopped(self, inst: Instance, now: float) -> None:
        if inst.stopping and inst.state != STOPPED and inst.busy == 0 and not inst.queue:
            inst.state = STOPPED
            inst.stopped_at = now
            inst.epoch += 1

    def _zone_outage(self, failure: ZoneOutage):
        env = self.env
        yield env.timeout(failure.at)
        self.zone_down.add(failure.zone)
        self.zone_up[failure.zone] = env.event()
        self.events.append((env.now, "zone_down", {"zone": failure.zone}))
        for inst in self.instances:
            if inst.zone == failure.zone and inst.state in (READY, STARTING) and not inst.stopping:
                inst.epoch += 1
                inst.state = DOWN
                self._fail_held(inst, env.now)
                self.procs[inst.id].interrupt("zone down")
        yield env.timeout(failure.duration)
        self.zone_down.discard(failure.zone)
        self.zone_up.pop(failure.zone).succeed()
        self.events.append((env.now, "zone_up", {"zone": failure.zone}))

    # -- control plane -------------------------------------------------------
    def fleet_state(self) -> FleetState:
        counts = [[0, 0], [0, 0]]
        for inst in self.instances:
            if inst.alive:
                counts[inst.version][0] += 1
                if inst.in_rotation:
                    counts[inst.version][1] += 1
        return FleetState(VersionCount(*counts[OLD]), VersionCount(*counts[NEW]), self.migration)

    def _control(self):
        env, mon, s = self.env, self.s.monitoring, self.s
        seconds = int(math.ceil(self.duration))
        for t in range(seconds + 1):
            if t > 0:
                self._snapshot(t - 1)
            if t >= self.duration:
                break
            view = MonitoringView(self.rec, float(t), mon.scrape_interval, mon.window, mon.delay)
            for action in self.controller.tick(float(t), self.fleet_state(), view):
                self._apply(action)
            yield env.timeout(PERIOD)

    def _apply(self, action) -> None:
        if isinstance(action, StartInstances):
            for _ in range(action.count):
                self._launch(NEW if action.version == "new" else OLD)
        elif isinstance(action, StopInstances):
            self._stop(NEW if action.version == "new" else OLD, action.count)
        elif isinstance(action, SetWeight):
            self.weight = None if action.new_percent is None else action.new_percent / 100.0
        elif isinstance(action, StartMigration):
            self.migration = "running"
            self._eff_sec = -1
            self.env.process(self._migrate())

    def _migrate(self):
        yield self.env.timeout(self.s.release.migration.duration)
        self.migration = "done"
        self._eff_sec = -1

    def _snapshot(self, sec: int) -> None:
        """One timeline row of instance states for second `sec` (taken at its end)."""
        counts = {}
        capacity = 0
        for v in (OLD, NEW):
            for state in (READY, STARTING, DOWN, DRAINING):
                counts[(v, state)] = 0
        for inst in self.instances:
            if inst.state == STOPPED:
                continue
            if inst.stopping:
                state = DRAINING
            elif inst.in_rotation and inst.state == READY:
                state = READY
            elif inst.state in (READY, STARTING):
                state = STARTING  # starting, or up but not yet through its health checks
            else:
                state = DOWN  # crashed or restarting (possibly still in rotation until checks notice)
            counts[(inst.version, state)] += 1
            if inst.state == READY:
                capacity += self.workers
        area = self.work[sec]
        # instances up at either end of the second could have done this second's work
        capacity, self._last_capacity = max(capacity, self._last_capacity), capacity
        in_flight = self.pending_retries + sum(i.outstanding for i in self.instances if i.state != STOPPED)
        c = self.controller
        weight = (None if self.weight is None else self.weight * 100.0)
        self.rows.append((sec, counts, area, capacity, weight, c.phase, in_flight))
