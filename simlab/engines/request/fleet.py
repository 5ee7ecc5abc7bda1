"""The request engine's control plane: instance lifecycles, health checks, failures, controller ticks.

A mixin of RequestEngine: these SimPy processes change which instances serve
and hand the controller its observations; the data plane (arrivals, queues,
attempts) lives in simlab.engines.request.
"""
from __future__ import annotations

import math

import simpy

from simlab.control import PERIOD, FleetState, SetWeight, StartInstances, StartMigration, StopInstances, VersionCount
from simlab.engines.effects import defect_active
from simlab.engines.instance import DONE, DOWN, DRAINING, END, READY, STARTING, STOPPED, Instance
from simlab.engines.request.recorder import MonitoringView
from simlab.engines.versions import BASELINE, NEW, OLD, index
from simlab.engines.timeline import timeline_state
from simlab.scenario.release import InstanceCrash, ZoneOutage


class FleetProcesses:
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
        if ready:  # part of the fleet when the run starts: up and in rotation, and warm
            inst.state, inst.up_since = READY, (-math.inf if self.s.fleet.warmup else self.env.now)
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
        return defect_active(defect, self.s, self.load, self.env.now)

    def _crash(self, inst: Instance, why: str) -> float:
        """Fail what the instance holds; return how long until it starts again."""
        now = self.env.now
        inst.state = DOWN
        inst.restarts += 1
        self._fail_held(inst, now)
        self.events.append((now, "instance_crash", {"instance": inst.id, "version": inst.version, "why": why}))
        restart = 0.0  # a crashed process restarts at once and goes through start-up again
        for f in self.s.failures:
            if isinstance(f, InstanceCrash):
                restart = max(restart, f.restart - self.s.fleet.startup)
        return max(restart, 0.0)

    def _fail_held(self, inst: Instance, now: float, serving: list | None = None) -> None:
        """Fail what `inst` holds, in service (`serving`, when already looked up) and queued."""
        serving = self._in_service((inst,))[inst] if serving is None else serving
        for att in serving:
            self._add_work(now, att[END], -1.0)
        held = serving + list(inst.queue)
        inst.queue.clear()
        inst.busy = 0
        self._set_outstanding(inst, 0)
        for att in held:
            att[DONE] = True
            self.rec.attempt_failed(inst.version, now)
            self._attempt_failed(att, "reset", now)

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
        if self.lo is not None:
            self.lo.add(inst)

    def _rotate_out(self, inst: Instance) -> None:
        if inst.in_rotation:
            inst.in_rotation = False
            self.pools[inst.version].remove(inst)
            self.pool_all.remove(inst)
            if self.lo is not None:
                self.lo.remove(inst)

    def _stop(self, version: int, count: int) -> None:
        now = self.env.now
        alive = [i for i in self.instances if i.version == version and i.alive]
        # not-ready instances first, then the oldest
        alive.sort(key=lambda i: (i.state == READY and i.in_rotation, i.created_at if version == OLD else -i.created_at))
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

    def _zone_outage(self, failure: ZoneOutage):
        env = self.env
        yield env.timeout(failure.at)
        self.zone_down.add(failure.zone)
        self.zone_up[failure.zone] = env.event()
        self.events.append((env.now, "zone_down", {"zone": failure.zone}))
        hit = [inst for inst in self.instances
               if inst.zone == failure.zone and inst.state in (READY, STARTING) and not inst.stopping]
        serving = self._in_service(hit)  # one look at the heap for the whole zone
        for inst in hit:
            inst.state = DOWN
            self._fail_held(inst, env.now, serving[inst])
            self.procs[inst.id].interrupt("zone down")
        yield env.timeout(failure.duration)
        self.zone_down.discard(failure.zone)
        self.zone_up.pop(failure.zone).succeed()
        self.events.append((env.now, "zone_up", {"zone": failure.zone}))

    # -- control plane -------------------------------------------------------
    def fleet_state(self) -> FleetState:
        counts = [[0, 0], [0, 0], [0, 0]]
        for inst in self.instances:
            if inst.alive:
                counts[inst.version][0] += 1
                if inst.in_rotation:
                    counts[inst.version][1] += 1
        return FleetState(VersionCount(*counts[OLD]), VersionCount(*counts[NEW]), self.migration,
                          VersionCount(*counts[BASELINE]))

    def _control(self):
        env, mon = self.env, self.s.monitoring
        seconds = int(math.ceil(self.duration))
        for t in range(seconds + 1):
            if t > 0:
                self._snapshot(t - 1)
            if t >= self.duration:
                break
            view = MonitoringView(self.rec, float(t), mon.scrape_interval, mon.window, mon.delay)
            self.rec.forget_before(int(view.start))  # no window of this tick or a later one reaches before
            for action in self.controller.tick(float(t), self.fleet_state(), view):
                self._apply(action)
            yield env.timeout(PERIOD)

    def _apply(self, action) -> None:
        if isinstance(action, StartInstances):
            for _ in range(action.count):
                self._launch(index(action.version))
        elif isinstance(action, StopInstances):
            self._stop(index(action.version), action.count)
        elif isinstance(action, SetWeight):
            self.weight = None if action.new_percent is None else action.new_percent / 100.0
            self.base_weight = action.baseline_percent / 100.0
        elif isinstance(action, StartMigration):
            self.migration = "running"
            self._eff_sec = -1
            self.env.process(self._migrate())

    def _migrate(self):
        yield self.env.timeout(self.s.release.migration.duration)
        self.migration = "done"
        self._eff_sec = -1

    def _snapshot(self, sec: int) -> None:
        """One timeline row of instance states for second `sec` (taken at its end); close user seconds past the drain."""
        self.rec.close_user_seconds(sec - int(math.ceil(self.drain)))  # no request that arrived then is still running
        counts = {}
        capacity = 0
        for v in range(self.V):
            for state in (READY, STARTING, DOWN, DRAINING):
                counts[(v, state)] = 0
        for inst in self.instances:
            if inst.state == STOPPED:
                continue
            counts[(inst.version, timeline_state(inst.state, inst.stopping, inst.in_rotation))] += 1
            if inst.state == READY:
                capacity += self.workers
        area = self.work[sec]
        # instances up at either end of the second could have done this second's work
        capacity, self._last_capacity = max(capacity, self._last_capacity), capacity
        in_flight = self.pending_retries + sum(i.outstanding for i in self.instances if i.state != STOPPED)
        c = self.controller
        weight = (None if self.weight is None else self.weight * 100.0)
        self.rows.append((sec, counts, area, capacity, weight, c.phase, in_flight, self.base_weight * 100.0))
