"""Instance lifecycles of one fluid replication: start-up, health checks, crashes, zone outages, draining.

The semantics are request.py's, written as a heap of transition times
instead of SimPy processes: health checks are not simulated one by one but
solved for the check at which an instance enters or leaves rotation (checks
run every `interval` from a random phase, so the k-th check after an
instant is known in closed form). Counts by (version, state) are pushed to
the data plane as they change, weighted by the share of the tick left.
"""
from __future__ import annotations

import heapq
import math

from simlab.control import FleetState, VersionCount
from simlab.engines.effects import Effects, defect_active
from simlab.engines.instance import DOWN, DRAINING, READY, STARTING, STOPPED
from simlab.engines.timeline import timeline_state
from simlab.engines.versions import NEW, OLD
from simlab.scenario.release import InstanceCrash, ZoneOutage



class Inst:
    __slots__ = ("id", "version", "zone", "state", "stopping", "in_rot", "created", "up_since", "stopped_at",
                 "first_check", "crashy", "leaky", "looping", "backoff", "epoch", "health", "restarts")

    def __init__(self, ident: int, version: int, zone: int, now: float, first_check: float):
        self.id, self.version, self.zone = ident, version, zone
        self.state, self.stopping, self.in_rot = STARTING, False, False
        self.created = self.up_since = now
        self.stopped_at: float | None = None
        self.first_check = first_check
        self.crashy = self.leaky = self.looping = False
        self.backoff = 10.0
        self.epoch = self.health = self.restarts = 0

    def role(self) -> tuple[int, int, int, int, int]:
        """(alive, in rotation, live in rotation, dead in rotation, up) as 0/1."""
        alive = int(not self.stopping and self.state != STOPPED)
        up = int(self.state == READY)
        rot = int(self.in_rot)
        return alive, rot, rot & up, rot & (1 - up), up


class FluidFleet:
    """One replication's instances; `plane` receives count changes and fails in-flight work on crashes."""

    def __init__(self, scenario, rep: int, plane, effects: Effects, failure_rng, defect_rng):
        self.s, self.rep, self.plane, self.fx = scenario, rep, plane, effects
        self.failure_rng, self.defect_rng = failure_rng, defect_rng
        fleet = scenario.fleet
        self.hc, self.startup, self.zones = fleet.health_check, fleet.startup, fleet.zones
        self.crash_failures = tuple(f for f in scenario.failures if isinstance(f, InstanceCrash))
        self.restart_delay = max([0.0] + [f.restart - fleet.startup for f in self.crash_failures])
        self.instances: list[Inst] = []
        self.heap: list = []
        self.seq = 0
        self.next_zone = 0
        self.zone_down: set[int] = set()
        self.zone_wait: list[Inst] = []
        self.counts = [[0] * 5, [0] * 5]
        self.changed = True
        self._fleet_state: FleetState | None = None
        self.migration = "none"
        self.events: list[tuple[float, str, dict]] = []
        self.leaky_alive = 0
        for f in scenario.failures:
            if isinstance(f, ZoneOutage):
                self._push(f.at, "zone_down", None, f.zone)
                self._push(f.at + f.duration, "zone_up", None, f.zone)

    # -- bookkeeping ---------------------------------------------------------
    def _push(self, t: float, kind: str, inst: Inst | None, tag: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, inst, tag))

    def _update(self, inst: Inst, t: float, fresh: bool = False, **changes) -> None:
        """Change an instance's fields and push the difference in its role to the counts and the plane."""
        before = (0, 0, 0, 0, 0) if fresh else inst.role()
        for k, v in changes.items():
            setattr(inst, k, v)
        after = inst.role()
        if before != after:
            c = self.counts[inst.version]
            for i in range(5):
                c[i] += after[i] - before[i]
            visible = before[:2] != after[:2]
            self.changed |= visible
            self.plane.fleet_changed(self.rep, inst.version, after[2] - before[2], after[3] - before[3],
                                     after[4] - before[4], t, visible)

    def _rotate(self, inst: Inst, t: float, in_rot: bool) -> None:
        """An alive instance enters or leaves rotation: `_update(inst, t, in_rot=...)` without the generic diff."""
        if inst.in_rot == in_rot:
            return
        inst.in_rot = in_rot
        d = 1 if in_rot else -1
        up = inst.state == READY
        c = self.counts[inst.version]
        c[1] += d
        c[2 if up else 3] += d
        self.changed = True
        self.plane.fleet_changed(self.rep, inst.version, d if up else 0, 0 if up else d, 0, t, True)

    def fleet_state(self) -> FleetState:
        if self.changed or self._fleet_state is None or self._fleet_state.migration != self.migration:
            o, n = self.counts
            self._fleet_state = FleetState(VersionCount(o[0], o[1]), VersionCount(n[0], n[1]), self.migration)
            self.changed = False
        return self._fleet_state

    def next_time(self) -> float:
        return self.heap[0][0] if self.heap else math.inf

    def advance(self, until: float, inclusive: bool) -> None:
        """Carry out every transition before `until` (or at it, when inclusive)."""
        heap = self.heap
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            t, _, kind, inst, tag = heapq.heappop(heap)
            if inst is None:
                self._zone(t, kind, tag)
            elif kind in ("rot_in", "rot_out"):
                if tag == inst.health and inst.state != STOPPED and not inst.stopping:
                    self._rotate(inst, t, kind == "rot_in")
            elif kind == "stopped":
                if inst.state == READY:  # it was stopping (not alive, out of rotation): only "up" moves
                    self.counts[inst.version][4] -= 1
                    self.plane.fleet_changed(self.rep, inst.version, 0, 0, -1, t, False)
                inst.state, inst.stopped_at = STOPPED, t
            elif tag == inst.epoch:
                {"start": self._begin_start, "up": self._up, "crash": self._crash}[kind](inst, t)

    # -- lifecycle -----------------------------------------------------------
    def launch(self, version: int, t: float, ready: bool = False) -> Inst:
        hc = self.hc
        inst = Inst(len(self.instances), version, self.next_zone % self.zones, t, 0.0)
        self.next_zone += 1
        self.instances.append(inst)
        if version == NEW:
            fx, draw = self.fx, self.defect_rng.random
            inst.crashy = fx.crash is not None and draw() < fx.crash.fraction
            inst.leaky = fx.memory_leak is not None and draw() < fx.memory_leak.fraction
            inst.looping = fx.crash_loop is not None and draw() < fx.crash_loop.fraction
            self.leaky_alive += inst.leaky
        inst.first_check = t + self.failure_rng.random() * hc.interval
        if not ready:  # counted as alive, nothing else: only the controller's view changes
            self.counts[version][0] += 1
            self.changed = True
            self.plane.changed[self.rep] = True
            self._begin_start(inst, t)
            return inst
        self._update(inst, t, fresh=True)  # counts it as alive
        if ready:
            self._update(inst, t, state=READY, in_rot=True)
            self._schedule_failure(inst, t)
        else:
            self._begin_start(inst, t)
        return inst

    def launch_many(self, version: int, count: int, t: float) -> None:
        """`count` calls of `launch(version, t)`: the same instances, draws and events, with one draw call
        for the health-check phases (the failure stream's numbers in the same order)."""
        if count <= 0:
            return
        firsts = (t + self.failure_rng.random(count) * self.hc.interval).tolist()
        fx, draw = self.fx, self.defect_rng.random
        defects = version == NEW and (fx.crash is not None or fx.memory_leak is not None or fx.crash_loop is not None)
        self.counts[version][0] += count  # alive, nothing else: only the controller's view changes
        self.changed = True
        self.plane.changed[self.rep] = True
        start, zones = len(self.instances), self.zones
        for i, first in enumerate(firsts):
            inst = Inst(start + i, version, self.next_zone % zones, t, first)
            self.next_zone += 1
            self.instances.append(inst)
            if defects:
                inst.crashy = fx.crash is not None and draw() < fx.crash.fraction
                inst.leaky = fx.memory_leak is not None and draw() < fx.memory_leak.fraction
                inst.looping = fx.crash_loop is not None and draw() < fx.crash_loop.fraction
                self.leaky_alive += inst.leaky
            self._begin_start(inst, t)

    def launch_ready(self, version: int, count: int, t: float) -> None:
        """`count` instances already in rotation at t (the initial fleet), as `launch(..., ready=True)` would make them.

        In bulk when that is exact: no failure to draw a time for and no weight of the current tick
        to spread (each instance then only draws its health-check phase, one after the other).
        """
        if self.crash_failures or version == NEW or self.plane.tick_end > t or self.zone_down:
            for _ in range(count):
                self.launch(version, t, ready=True)
            return
        firsts = (t + self.failure_rng.random(count) * self.hc.interval).tolist()
        start, zones = len(self.instances), self.zones
        for i, first in enumerate(firsts):
            inst = Inst(start + i, version, (self.next_zone + i) % zones, t, first)
            inst.state, inst.in_rot = READY, True
            self.instances.append(inst)
        self.next_zone += count
        c = self.counts[version]
        for i, d in enumerate((1, 1, 1, 0, 1)):  # alive, in rotation, live in rotation, dead in rotation, up
            c[i] += count * d
        self.changed = True
        self.plane.fleet_changed(self.rep, version, count, 0, count, t, True)  # weight 0: whole counts, exact

    def _check_after(self, inst: Inst, t: float, nth: int) -> float:
        """Time of the nth health check at or after t (nth = 1 is the first)."""
        hc = self.hc
        k = max(0, math.ceil((t - inst.first_check) / hc.interval - 1e-12))
        return inst.first_check + (k + nth - 1) * hc.interval

    def _begin_start(self, inst: Inst, t: float) -> None:
        if inst.zone in self.zone_down:
            self._update(inst, t, state=DOWN)
            self.zone_wait.append(inst)
            return
        inst.state = STARTING  # from starting or down: no count moves
        self._push(t + self.startup, "up", inst, inst.epoch)

    def _up(self, inst: Inst, t: float) -> None:
        fx = self.fx
        if inst.looping and defect_active(fx.crash_loop, self.s, fx.load, t):
            inst.restarts += 1  # exits at start, restarted with back-off
            self._update(inst, t, state=DOWN)
            self._push(t + inst.backoff, "start", inst, inst.epoch)
            inst.backoff = min(inst.backoff * 2, 300.0)
            return
        inst.health += 1  # cancels a pending rotation out: the next check finds it healthy
        # up, and live instead of dead if still in rotation; alive and in-rotation counts stay
        rot = int(inst.in_rot)
        inst.state, inst.up_since = READY, t
        c = self.counts[inst.version]
        c[2] += rot
        c[3] -= rot
        c[4] += 1
        self.plane.fleet_changed(self.rep, inst.version, rot, -rot, 1, t, False)
        if not inst.in_rot:
            self._push(self._check_after(inst, t, self.hc.healthy_after), "rot_in", inst, inst.health)
        self._schedule_failure(inst, t)

    def _schedule_failure(self, inst: Inst, t: float) -> None:
        rng, times = self.failure_rng, [math.inf]
        for f in self.crash_failures:
            times.append(rng.exponential(f.mtbf))
        if inst.crashy:
            times.append(rng.exponential(self.fx.crash.mtbf))
        if inst.leaky:
            times.append(self.fx.memory_leak.oom_after)
        ttf = min(times)
        if math.isfinite(ttf):
            self._push(t + ttf, "crash", inst, inst.epoch)

    def _go_down(self, inst: Inst, t: float) -> None:
        """Crash or zone loss: in-flight work fails; rotation ends only after `unhealthy_after` bad checks."""
        inst.epoch += 1
        inst.health += 1
        was_up = inst.state == READY
        self._update(inst, t, state=DOWN)
        if was_up:
            self.plane.fail_held(self.rep, inst.version, t)
        if inst.in_rot:
            self._push(self._check_after(inst, t, self.hc.unhealthy_after), "rot_out", inst, inst.health)

    def _crash(self, inst: Inst, t: float) -> None:
        inst.restarts += 1
        self.events.append((t, "instance_crash", {"instance": inst.id, "version": inst.version,
                                                   "why": "oom" if inst.leaky else "crash"}))
        self._go_down(inst, t)
        if self.restart_delay > 0:
            self._push(t + self.restart_delay, "start", inst, inst.epoch)
        else:
            self._begin_start(inst, t)

    def _zone(self, t: float, kind: str, zone: int) -> None:
        if kind == "zone_down":
            self.zone_down.add(zone)
            self.events.append((t, "zone_down", {"zone": zone}))
            for inst in self.instances:
                if inst.zone == zone and inst.state in (READY, STARTING) and not inst.stopping:
                    self._go_down(inst, t)
                    self.zone_wait.append(inst)
        else:
            self.zone_down.discard(zone)
            self.events.append((t, "zone_up", {"zone": zone}))
            waiting = [i for i in self.zone_wait if i.zone == zone]
            self.zone_wait = [i for i in self.zone_wait if i.zone != zone]
            for inst in waiting:
                if not inst.stopping and inst.state == DOWN:
                    self._begin_start(inst, t)

    def stop(self, version: int, count: int, t: float) -> None:
        """Drain `count` instances of `version`: not-ready ones first, then the newest new or the oldest old."""
        alive = [i for i in self.instances if i.version == version and not i.stopping and i.state != STOPPED]
        alive.sort(key=lambda i: (i.state == READY and i.in_rot, -i.created if version == NEW else i.created))
        chosen = alive[:count]
        if not chosen:
            return
        # the plane's counts move once for all (same tick, same weight); each drain time sees the live count
        # after the stops before it: the pool's mean response time plus its queue at the remaining rate
        plane, rep, c = self.plane, self.rep, self.counts[version]
        live = float(plane.live[rep, version])
        mean, lq, workers = float(plane.last_mean[rep, version]), float(plane.lq[rep, version]), plane.workers
        dlive = ddead = 0
        for inst in chosen:
            inst.epoch += 1
            inst.health += 1
            if inst.leaky:
                self.leaky_alive -= 1
            rot, up = int(inst.in_rot), inst.state == READY
            inst.stopping, inst.in_rot = True, False
            c[0] -= 1
            c[1] -= rot
            c[2 if up else 3] -= rot
            if up:  # drains what it holds; still up until then
                dlive -= rot
                live -= rot
                rate = max(live, 1.0) * workers / max(mean, 1e-9)
                self._push(t + float(mean + lq / rate), "stopped", inst, 0)
            else:
                ddead -= rot
                inst.state, inst.stopped_at = STOPPED, t
        self.changed = True
        plane.fleet_changed(rep, version, dlive, ddead, 0, t, True)

    # -- what the data plane and the timeline read ---------------------------
    def leak_factor(self, version: int, t: float) -> float:
        """Mean service-time slowdown of the version's live instances from the memory leak."""
        if version != NEW or not self.leaky_alive:
            return 1.0
        leak = self.fx.memory_leak
        total = n = 0.0
        for inst in self.instances:
            if inst.version == NEW and inst.in_rot and inst.state == READY:
                n += 1
                if inst.leaky:
                    total += (leak.max_slowdown - 1.0) * min(1.0, (t - inst.up_since) / leak.oom_after)
        return 1.0 + total / n if n else 1.0

    def snapshot(self) -> dict:
        """Instances by (version, timeline state), as request.py's _snapshot counts them."""
        counts = {(v, s): 0 for v in (OLD, NEW) for s in (READY, STARTING, DOWN, DRAINING)}
        for inst in self.instances:
            if inst.state == STOPPED:
                continue
            counts[(inst.version, timeline_state(inst.state, inst.stopping, inst.in_rot))] += 1
        return counts

    def instance_seconds(self, duration: float) -> float:
        total = 0.0
        for inst in self.instances:
            end = duration if inst.stopped_at is None else min(inst.stopped_at, duration)
            total += max(0.0, end - inst.created)
        return total
