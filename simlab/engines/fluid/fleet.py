"""Instance lifecycles of one fluid replication: start-up, health checks, crashes, zone outages, draining.

The semantics are request.py's, written as a heap of transition times
instead of SimPy processes: health checks are not simulated one by one but
solved for the check at which an instance enters or leaves rotation (checks
run every `interval` from a random phase, so the k-th check after an
instant is known in closed form). Counts by (version, state) are pushed to
the data plane as they change, weighted by the share of the tick left.

Instances are rows of arrays (instances.py). What happens to many at once is
one heap entry: the instances a start action launches come up together (an
"ups" cohort), then enter rotation at their own check times (a run, runs.py),
and a stop's instances finish draining at their own times (a run). Every
event keeps the heap position (time, sequence number) it had when each
instance had its own entries, and the random draws are made in the same
order, so results are the same for a seed.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from simlab.control import FleetState, VersionCount
from simlab.engines.effects import Effects, defect_active
from simlab.engines.fluid.failures import draw_defects, failure_draws, time_to_failure
from simlab.engines.fluid.instances import DOWN, READY, STARTING, STOPPED, Instances
from simlab.engines.fluid.runs import Run
from simlab.engines.fluid.slowdown import came_up
from simlab.engines.versions import BASELINE, NEW, OLD, version_count
from simlab.scenario.release import InstanceCrash, ZoneOutage


class FluidFleet:
    """One replication's instances; `plane` receives count changes and fails in-flight work on crashes."""

    def __init__(self, scenario, rep: int, plane, effects: Effects, failure_rng, defect_rng):
        self.s, self.rep, self.plane, self.fx = scenario, rep, plane, effects
        self.failure_rng, self.defect_rng = failure_rng, defect_rng
        fleet = scenario.fleet
        self.hc, self.startup, self.zones = fleet.health_check, fleet.startup, fleet.zones
        self.warmup = fleet.warmup
        self.crash_failures = tuple(f for f in scenario.failures if isinstance(f, InstanceCrash))
        self.restart_delay = max([0.0] + [f.restart - fleet.startup for f in self.crash_failures])
        self.ins = Instances(capacity=2 * fleet.instances + 16)  # room for a full second version
        self.heap: list = []
        self.seq = 0
        self.next_zone = 0
        self.zone_down: set[int] = set()
        self.zone_wait: list[int] = []  # instances waiting for their zone, in the order they went down
        self.V = version_count(scenario)  # version slots: OLD, NEW (and BASELINE)
        self.counts = [[0] * 5 for _ in range(self.V)]  # per version: alive, in rotation, live/dead in rotation, up
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
    def _push(self, t: float, kind: str, what, tag) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, what, tag))

    def _seqs(self, n: int) -> int:
        """Take n consecutive sequence numbers (n pushes' worth); returns the first."""
        first = self.seq + 1
        self.seq += n
        return first

    def _push_run(self, run: Run) -> None:
        if not run.done():
            heapq.heappush(self.heap, (*run.key(), "run", run, None))

    def fleet_state(self) -> FleetState:
        if self.changed or self._fleet_state is None or self._fleet_state.migration != self.migration:
            o, n = self.counts[:2]
            b = self.counts[BASELINE] if self.V > BASELINE else (0, 0)
            self._fleet_state = FleetState(VersionCount(o[0], o[1]), VersionCount(n[0], n[1]), self.migration,
                                           VersionCount(b[0], b[1]))
            self.changed = False
        return self._fleet_state

    def next_time(self) -> float:
        return self.heap[0][0] if self.heap else math.inf

    def advance(self, until: float, inclusive: bool) -> None:
        """Carry out every transition before `until` (or at it, when inclusive)."""
        heap, ins = self.heap, self.ins
        while heap and (heap[0][0] < until or (inclusive and heap[0][0] == until)):
            t, _, kind, what, tag = heapq.heappop(heap)
            if kind == "run":
                times, idx, tags = what.take(heap[0][:2] if heap else None, until, inclusive)
                if what.kind == "rot_in":
                    self._rotate_many(times, idx, tags)
                else:
                    self._stopped_many(times, idx)
                self._push_run(what)
            elif kind == "ups":
                self._up_many(what[tag == ins.epoch[what]], t)
            elif what is None:
                self._zone(t, kind, tag)
            elif kind in ("rot_in", "rot_out"):
                if tag == ins.health[what] and ins.state[what] != STOPPED and not ins.stopping[what]:
                    self._rotate(what, t, kind == "rot_in")
            elif tag == ins.epoch[what]:
                {"start": self._begin_start, "up": self._up, "crash": self._crash}[kind](what, t)

    def _moved(self, version: int, d: tuple[int, ...]) -> None:
        c = self.counts[version]
        for i, x in enumerate(d):
            c[i] += int(x)

    # -- starting instances ------------------------------------------------------
    def _add(self, version: int, count: int, t: float, first_check) -> np.ndarray:
        """New starting instances (zones in turn), a new version's with its defects drawn."""
        zones = (self.next_zone + np.arange(count)) % self.zones
        self.next_zone += count
        idx = self.ins.add(count, version, zones, t, first_check)
        if version == NEW:
            draw_defects(self.ins, idx, self.fx, self.defect_rng)
            self.leaky_alive += int(np.count_nonzero(self.ins.leaky[idx]))
        return idx

    def launch_many(self, version: int, count: int, t: float) -> None:
        """Start `count` instances of `version` at t: alive now, up together after start-up (one "ups" entry)."""
        if count <= 0:
            return
        firsts = t + self.failure_rng.random(count) * self.hc.interval
        idx = self._add(version, count, t, firsts)
        self.counts[version][0] += count  # alive, nothing else: only the controller's view changes
        self.changed = True
        self.plane.changed[self.rep] = True
        self._begin_start_many(idx, t)

    def launch_ready(self, version: int, count: int, t: float) -> None:
        """`count` instances already up and in rotation at t (the initial fleet), each with its failure drawn."""
        if count <= 0:
            return
        idx = self._add(version, count, t, t)
        ins, rng, interval = self.ins, self.failure_rng, self.hc.interval
        if self.warmup is not None:
            ins.up_since[idx] = -math.inf  # running before the run started: warm
        draws = failure_draws(ins, idx, self.fx, self.crash_failures)
        z = np.empty(int(draws.sum()))
        if not len(z):
            ins.first_check[idx] = t + rng.random(count) * interval
        else:  # each instance's phase, then its failure draws: one after another on the same stream
            at = 0
            for i, k in zip(idx.tolist(), draws.tolist()):
                ins.first_check[i] = t + rng.random() * interval
                z[at:at + k] = rng.standard_exponential(k)
                at += k
        ins.state[idx], ins.in_rot[idx] = READY, True
        self._moved(version, (count, count, count, 0, count))
        self.changed = True
        self.plane.fleet_changed_many(self.rep, version, np.ones(count, dtype=np.int64), None, count,
                                      np.full(count, t), True)
        if len(z):
            ttf = time_to_failure(ins, idx, z, self.fx, self.crash_failures)
            finite = np.isfinite(ttf)
            self._push_crashes(idx, t, ttf, self._seqs(int(finite.sum())) + np.cumsum(finite) - 1)

    def _begin_start(self, i: int, t: float) -> None:
        if int(self.ins.zone[i]) in self.zone_down:
            self.ins.state[i] = DOWN  # from starting or down: no count moves
            self.zone_wait.append(i)
            return
        self.ins.state[i] = STARTING
        self._push(t + self.startup, "up", i, int(self.ins.epoch[i]))

    def _begin_start_many(self, idx: np.ndarray, t: float) -> None:
        """`_begin_start` of each of idx in turn: those whose zone is down wait for it, the rest come up together."""
        ins = self.ins
        if self.zone_down:
            down = np.isin(ins.zone[idx], list(self.zone_down))
            ins.state[idx[down]] = DOWN
            self.zone_wait += idx[down].tolist()
            idx = idx[~down]
        if len(idx):
            ins.state[idx] = STARTING
            first = self._seqs(len(idx))
            heapq.heappush(self.heap, (t + self.startup, first, "ups", idx, ins.epoch[idx].copy()))

    # -- coming up -----------------------------------------------------------------
    def _loops(self, t: float) -> bool:
        fx = self.fx
        return fx.crash_loop is not None and defect_active(fx.crash_loop, self.s, fx.load, t)

    def _up(self, i: int, t: float) -> None:
        ins = self.ins
        if ins.looping[i] and self._loops(t):
            self._loop_exit(i, t)
            return
        ins.health[i] += 1  # cancels a pending rotation out: the next check finds it healthy
        # up, and live instead of dead if still in rotation; alive and in-rotation counts stay
        rot, v = int(ins.in_rot[i]), int(ins.version[i])
        ins.state[i], ins.up_since[i] = READY, t
        came_up(self, t)
        self._moved(v, (0, 0, rot, -rot, 1))
        self.plane.fleet_changed(self.rep, v, rot, -rot, 1, t, False)
        if not rot:
            self._push(float(ins.check_after(i, t, self.hc.healthy_after, self.hc.interval)), "rot_in", i,
                       int(ins.health[i]))
        one = np.array([i])
        z = self.failure_rng.standard_exponential(int(failure_draws(ins, one, self.fx, self.crash_failures)[0]))
        ttf = float(time_to_failure(ins, one, z, self.fx, self.crash_failures)[0])
        if math.isfinite(ttf):
            self._push(t + ttf, "crash", i, int(ins.epoch[i]))

    def _loop_exit(self, i: int, t: float, seq: int | None = None) -> None:
        """A crash-looping instance exits at start and is restarted after its back-off (doubling up to 5 min)."""
        ins = self.ins
        ins.restarts[i] += 1
        ins.state[i] = DOWN  # from starting: no count moves
        backoff = float(ins.backoff[i])
        if seq is None:
            self._push(t + backoff, "start", i, int(ins.epoch[i]))
        else:
            heapq.heappush(self.heap, (t + backoff, seq, "start", i, int(ins.epoch[i])))
        ins.backoff[i] = min(backoff * 2, 300.0)

    def _up_many(self, idx: np.ndarray, t: float) -> None:
        """`_up` of each of idx in turn (a cohort's valid members): the same counts, draws and entries."""
        if not len(idx):
            return
        ins, hc = self.ins, self.hc
        looping = ins.looping[idx] & self._loops(t) if self.fx.crash_loop is not None else np.zeros(len(idx), bool)
        up = idx[~looping]
        rot = ins.in_rot[up]
        ins.health[up] += 1
        ins.state[up], ins.up_since[up] = READY, t
        came_up(self, t)
        for v in range(self.V):
            mine = ins.version[up] == v
            if mine.any():
                r = rot[mine].astype(np.int64)
                self._moved(v, (0, 0, r.sum(), -r.sum(), len(r)))
                self.plane.fleet_changed_many(self.rep, v, r, -r, len(r), np.full(len(r), t), False)
        z = self.failure_rng.standard_exponential(int(failure_draws(ins, up, self.fx, self.crash_failures).sum()))
        ttf = time_to_failure(ins, up, z, self.fx, self.crash_failures)
        # each member pushes, in turn: a looping one its restart; the others their rotation in, then their crash
        out = ~rot
        pushes = np.ones(len(idx), dtype=np.int64)
        pushes[~looping] = out.astype(np.int64) + np.isfinite(ttf)
        seq = self._seqs(int(pushes.sum())) + np.cumsum(pushes) - pushes
        for i, s in zip(idx[looping].tolist(), seq[looping].tolist()):
            self._loop_exit(i, t, s)
        seq_up = seq[~looping]
        self._push_crashes(up, t, ttf, seq_up + out)
        if out.any():  # (a check time within the closed form's 1e-12 s before t follows the whole cohort, not its
            rin = up[out]  # own member: the same unless members were in rotation, as launched ones are not)
            times = ins.check_after(rin, t, hc.healthy_after, hc.interval)
            self._push_run(Run("rot_in", times, seq_up[out], rin, ins.health[rin].copy()))

    def _push_crashes(self, idx: np.ndarray, t: float, ttf: np.ndarray, seq: np.ndarray) -> None:
        """Crash entries at t + ttf for the instances whose ttf is finite, each with its sequence number in seq."""
        finite = np.isfinite(ttf)
        if not finite.any():
            return
        epochs = self.ins.epoch[idx[finite]].tolist()
        at = (t + ttf[finite]).tolist()
        for when, s, i, e in zip(at, seq[finite].tolist(), idx[finite].tolist(), epochs):
            heapq.heappush(self.heap, (when, s, "crash", i, e))

    # -- rotation ----------------------------------------------------------------------
    def _rotate(self, i: int, t: float, in_rot: bool) -> None:
        """An alive instance enters or leaves rotation."""
        ins = self.ins
        if bool(ins.in_rot[i]) == in_rot:
            return
        ins.in_rot[i] = in_rot
        d = 1 if in_rot else -1
        up, v = ins.state[i] == READY, int(ins.version[i])
        self._moved(v, (0, d, d if up else 0, 0 if up else d, 0))
        self.changed = True
        self.plane.fleet_changed(self.rep, v, d if up else 0, 0 if up else d, 0, t, True)

    def _rotate_many(self, times: np.ndarray, idx: np.ndarray, tags: np.ndarray) -> None:
        """Rotation-in events of a run, in order: `_rotate(i, t, True)` of those still current."""
        ins = self.ins
        ok = (ins.health[idx] == tags) & (ins.state[idx] != STOPPED) & ~ins.stopping[idx] & ~ins.in_rot[idx]
        if not ok.any():
            return
        idx, times = idx[ok], times[ok]
        ins.in_rot[idx] = True
        up = ins.state[idx] == READY
        for v in range(self.V):
            mine = ins.version[idx] == v
            if mine.any():
                u = up[mine].astype(np.int64)
                self._moved(v, (0, len(u), u.sum(), len(u) - u.sum(), 0))
                self.plane.fleet_changed_many(self.rep, v, u, 1 - u, 0, times[mine], True)
        self.changed = True

    # -- going down ------------------------------------------------------------------
    def _go_down(self, i: int, t: float) -> None:
        """Crash or zone loss: in-flight work fails; rotation ends only after `unhealthy_after` bad checks."""
        ins = self.ins
        ins.epoch[i] += 1
        ins.health[i] += 1
        was_up = ins.state[i] == READY
        ins.state[i] = DOWN
        rot = bool(ins.in_rot[i])
        if was_up:  # up no more, and dead instead of live if in rotation
            v, r = int(ins.version[i]), int(rot)
            self._moved(v, (0, 0, -r, r, -1))
            self.plane.fleet_changed(self.rep, v, -r, r, -1, t, False)
            self.plane.fail_held(self.rep, v, t)
        if rot:
            self._push(float(ins.check_after(i, t, self.hc.unhealthy_after, self.hc.interval)), "rot_out", i,
                       int(ins.health[i]))

    def _crash(self, i: int, t: float) -> None:
        ins = self.ins
        ins.restarts[i] += 1
        self.events.append((t, "instance_crash", {"instance": i, "version": int(ins.version[i]),
                                                   "why": "oom" if ins.leaky[i] else "crash"}))
        self._go_down(i, t)
        if self.restart_delay > 0:
            self._push(t + self.restart_delay, "start", i, int(ins.epoch[i]))
        else:
            self._begin_start(i, t)

    def _zone(self, t: float, kind: str, zone: int) -> None:
        ins, n = self.ins, self.ins.n
        if kind == "zone_down":
            self.zone_down.add(zone)
            self.events.append((t, "zone_down", {"zone": zone}))
            state = ins.state[:n]
            hit = (ins.zone[:n] == zone) & ((state == READY) | (state == STARTING)) & ~ins.stopping[:n]
            for i in np.flatnonzero(hit).tolist():
                self._go_down(i, t)
                self.zone_wait.append(i)
        else:
            self.zone_down.discard(zone)
            self.events.append((t, "zone_up", {"zone": zone}))
            waiting = [i for i in self.zone_wait if ins.zone[i] == zone]
            self.zone_wait = [i for i in self.zone_wait if ins.zone[i] != zone]
            idx = np.array(waiting, dtype=np.int64)
            self._begin_start_many(idx[~ins.stopping[idx] & (ins.state[idx] == DOWN)], t)

    # -- stopping ------------------------------------------------------------------------
    def stop(self, version: int, count: int, t: float) -> None:
        """Drain `count` instances of `version`: not-ready ones first, then the newest new or the oldest old."""
        ins = self.ins
        alive = ins.alive_of(version)
        serving = (ins.state[alive] == READY) & ins.in_rot[alive]
        age = ins.created[alive] if version == OLD else -ins.created[alive]  # the newest new (or baseline) first
        chosen = alive[np.lexsort((age, serving))[:count]]  # a stable sort: ties stay oldest first
        if not len(chosen):
            return
        # the plane's counts move once for all (same tick, same weight); each drain time sees the live count
        # after the stops before it: the pool's mean response time plus its queue at the remaining rate
        plane, rep = self.plane, self.rep
        live = float(plane.live[rep, version])
        mean, lq, workers = float(plane.last_mean[rep, version]), float(plane.lq[rep, version]), plane.workers
        ins.epoch[chosen] += 1
        ins.health[chosen] += 1
        self.leaky_alive -= int(np.count_nonzero(ins.leaky[chosen]))
        rot, up = ins.in_rot[chosen], ins.state[chosen] == READY
        ins.stopping[chosen], ins.in_rot[chosen] = True, False
        r_up, r_down = int(np.count_nonzero(rot & up)), int(np.count_nonzero(rot & ~up))
        self._moved(version, (-len(chosen), -(r_up + r_down), -r_up, -r_down, 0))
        draining, gone = chosen[up], chosen[~up]  # up ones drain what they hold, still up until then
        ins.state[gone], ins.stopped_at[gone] = STOPPED, t
        if len(draining):
            left = live - np.cumsum(rot[up])
            rate = np.maximum(left, 1.0) * workers / max(mean, 1e-9)
            first = self._seqs(len(draining))
            self._push_run(Run("drain", t + (mean + lq / rate), np.arange(first, first + len(draining)), draining,
                               np.zeros(len(draining), dtype=np.int64)))
        self.changed = True
        plane.fleet_changed(rep, version, -r_up, -r_down, 0, t, True)

    def _stopped_many(self, times: np.ndarray, idx: np.ndarray) -> None:
        """Draining instances done: stopped, no longer up (they left rotation when told to stop)."""
        ins = self.ins
        up = idx[ins.state[idx] == READY]
        for v in range(self.V):
            n = int(np.count_nonzero(ins.version[up] == v))
            if n:
                self.counts[v][4] -= n
                self.plane.fleet_changed(self.rep, v, 0, 0, -n, float(times[0]), False)
        ins.state[idx], ins.stopped_at[idx] = STOPPED, times

    # -- what the data plane and the timeline read ---------------------------
    def snapshot(self) -> dict:
        """Instances by (version, timeline state), as request.py's _snapshot counts them."""
        return self.ins.snapshot(self.V)

    def instance_seconds(self, duration: float) -> float:
        return self.ins.instance_seconds(duration)
