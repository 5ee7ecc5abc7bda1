"""The staging driver: the shared RolloutController on the wall clock, acting on a real fleet.

Each second: reap processes (crashes, stops, memory limits), count the fleet
from HAProxy's health checks, let the controller decide with Prometheus'
windows, carry out its actions, keep HAProxy's weights at the controller's
split. The result is measured from what happened: Locust's request records
for users, HAProxy/supervisor state for the fleet, the controller's events.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from simlab.control import (
    PERIOD, FleetState, RolloutController, StartInstances, StartMigration, StopInstances, VersionCount,
)
from simlab.control.recording import RecordingController
from simlab.errors import StagingError
from simlab.results import CAUSES, TIMELINE_COLUMNS, Result, RunTotals, events_frame, summarize
from simlab.rng import stream
from simlab.scenario import Scenario
from simlab.scenario.staging import Target
from simlab.staging import procs
from simlab.staging.faults import FaultSchedule
from simlab.staging.local_fleet import LocalFleet
from simlab.staging.load import classify, read_records, start_load, user_requests
from simlab.staging.prometheus import PrometheusMetrics
from simlab.staging.shape import offered_rate
from simlab.staging.supervisor import Staging
from simlab.staging.target import DeployTarget


class Deployment:
    """One release carried out on a deploy target; `run()` returns the measured Result.

    The target (`target.DeployTarget`) is the local staging (`LocalFleet`) or a team's own
    (`external.ExternalFleet`).
    """

    def __init__(self, scenario: Scenario, fleet: DeployTarget, *, with_load: bool = False, out: Path | None = None,
                 progress: Callable[[str], None] | None = None, record_to: Path | None = None,
                 load_workers: int = 0):
        self.s = scenario
        self.fleet = fleet
        self.with_load = with_load
        self.load_workers = load_workers
        self.load_dir = (out or fleet.dir) / "load"
        self.progress = progress or (lambda line: None)
        self.controller = RolloutController(scenario)
        self.record_to = record_to
        self._decider = self.controller  # the controller itself, or a recorder wrapped round it
        self.client = fleet.promql
        self.metrics = PrometheusMetrics(self.client, scenario, total_from=fleet.total_from)
        self.rows: list[dict] = []
        self.events: list[tuple[float, str, dict]] = []
        self.migration = "none"
        self._migration_done_at: float | None = None
        self.t0 = 0.0
        self._reported = 0
        self._instance_seconds = 0.0
        self._waited = 0.0
        # The scenario's failures on the wall clock: drawn from the run's own stream, like the simulator's.
        self.faults = FaultSchedule(scenario, stream(scenario.seed, "staging/failures"))
        if not self.faults.empty and not fleet.injects_faults:
            kinds = sorted({f.kind for f in scenario.failures})
            raise StagingError(
                f"failures: {', '.join(kinds)} cannot be injected on a {fleet.kind} target; simlab injects the "
                "scenario's failures on the local staging only. Remove `failures:` (e.g. `staging: {failures: []}`) "
                "and inject faults with your own tooling or Chaos Toolkit (docs/chaos.md)"
            )

    # -- the loop ------------------------------------------------------------
    def run(self) -> Result:
        s = self.s
        shutil.rmtree(self.load_dir, ignore_errors=True)
        self.t0 = time.time()
        release_at = s.release.at if s.release else 0.0
        self.fleet.begin(self.t0 + release_at)
        loaders = (start_load(s, self.fleet.url, self.load_dir, s.duration, self.t0, self.load_workers)
                   if self.with_load else [])
        recording = None
        if self.record_to is not None:
            # Every tick's observations and decisions, so the controller's run can be replayed offline.
            Path(self.record_to).parent.mkdir(parents=True, exist_ok=True)
            recording = open(self.record_to, "w")
            self._decider = RecordingController(self.controller, recording.write, driver=f"staging-{self.fleet.kind}")
        try:
            tick = 0
            while tick < math.ceil(s.duration):
                self._tick(tick)
                tick += 1
                wait = self.t0 + tick * PERIOD - time.time()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -PERIOD:
                    tick = int(self._now())  # behind by over a second: skip to the current one, never run late
        except BaseException:
            what = self.fleet.interrupt(s.fleet.instances)
            self.events.append((self._now(), "interrupted", {"action": what}))
            raise
        finally:
            if not self.faults.empty:
                self.fleet.end_faults()  # zones up, dependency healthy: what follows starts from a clean fleet
            # Locust's shape ends at the run's end; let it finish the requests in flight, then make sure.
            deadline = time.time() + s.traffic.timeout + 3.0
            while any(procs.is_running(r) for r in loaders) and time.time() < deadline:
                time.sleep(0.1)
            procs.stop_many(loaders, grace=5.0)
            if recording is not None:
                recording.close()
        return self._result()

    def _now(self) -> float:
        return time.time() - self.t0

    def _tick(self, second: int) -> None:
        now = self._now()
        for kind, name, detail in self.fleet.reap():
            self.events.append((now, kind, {"instance": name, **detail}))
        if not self.faults.empty:
            self._inject(now)
        self.fleet.report_offered(offered_rate(self.s, now))
        if self.migration == "running" and now >= self._migration_done_at:
            self.migration = "done"
        counts = self.fleet.counts()
        fleet = FleetState(
            old=VersionCount(counts["old_alive"], counts["old_ready"]),
            new=VersionCount(counts["new_alive"], counts["new_ready"]),
            migration=self.migration,
        )
        seen = len(self.controller.events)
        actions = self._decider.tick(now, fleet, self.metrics)
        for event in self.controller.events[seen:]:
            if event.kind in ("promoted", "rollback_started", "rollback_finished"):
                self.fleet.milestone(event.kind)
        for action in actions:
            self._apply(action, now)
        self.fleet.hold_weight(self.controller.weight)
        self._report()
        self._instance_seconds += PERIOD * (counts["old_alive"] + counts["new_alive"])
        in_flight = self.client.scalar("sum(simlab_in_flight)") or 0.0
        queued = self.client.scalar("sum(simlab_queued)") or 0.0
        waited = self.client.scalar("sum(simlab_waited_total)") or 0.0
        waited_now, self._waited = max(0.0, waited - self._waited), max(waited, self._waited)
        capacity = self.s.fleet.workers * (counts["old_ready"] + counts["new_ready"])
        weight = self.controller.weight
        if weight is None:
            ready = counts["old_ready"] + counts["new_ready"]
            weight = 100.0 * counts["new_ready"] / ready if ready else 0.0
        self.rows.append({
            "t": second, "new_weight": weight, "phase": self.controller.phase,
            "utilization": min(1.0, in_flight / capacity) if capacity else 0.0,
            "in_flight": int(in_flight + queued), "queued": int(waited_now),
            **{f"{v}_{k}": counts[f"{v}_{k}"] for v in ("old", "new") for k in ("ready", "starting", "down", "draining")},
        })

    def _inject(self, now: float) -> None:
        """The scenario's failures due by now: zone outages, crashes, the dependency's state."""
        for step in self.faults.step(now, self.fleet.running_instances()):
            self.events.extend((now, kind, detail) for kind, detail in self.fleet.inject(step))
        self.fleet.set_dependency(self.faults.active_dependency(now))

    def _apply(self, action, now: float) -> None:
        if isinstance(action, StartInstances):
            happened = self.fleet.start(action.version, action.count)
        elif isinstance(action, StopInstances):
            happened = self.fleet.stop(action.version, action.count)
        elif isinstance(action, StartMigration):
            self.migration = "running"
            self._migration_done_at = now + self.s.release.migration.duration
            happened = []
        else:  # SetWeight: held by fleet.hold_weight from controller.weight every tick
            happened = []
        self.events.extend((now, kind, detail) for kind, detail in happened)

    def _report(self) -> None:
        for event in self.controller.events[self._reported:]:
            detail = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in event.detail.items())
            self.progress(f"[{event.time:6.1f}s] {event.kind} {detail}".rstrip())
        self._reported = len(self.controller.events)

    # -- measuring -----------------------------------------------------------
    def _result(self) -> Result:
        s, c = self.s, self.controller
        n = int(math.ceil(s.duration))
        # A second the loop skipped (a slow target command) repeats the fleet state last seen.
        timeline = pd.DataFrame(self.rows).set_index("t").reindex(range(n)).ffill().bfill()
        counted = [c for c in timeline.columns if c.startswith(("old_", "new_")) or c in ("in_flight", "queued")]
        timeline[counted] = timeline[counted].astype(int)
        timeline = timeline.rename_axis("t").reset_index()
        users = _per_second(read_records(self.load_dir), s, self.t0, n) if self.with_load else _empty(n)
        timeline = users.merge(timeline, on="t", how="left")[list(TIMELINE_COLUMNS)]
        release_at = s.release.at if s.release else 0.0
        requests = int(timeline["offered"].sum())
        lat = users.attrs.get("ok_latency", np.array([]))
        after = timeline[timeline["t"] >= release_at]
        totals = RunTotals(
            requests=requests,
            attempts=int(timeline["attempts"].sum()),
            # every failed user request has one cause (classify: 503, other 4xx/5xx, no answer timed out or not),
            # so these add up to the timeline's failed column
            failed_by={cause: int(timeline[f"failed_{cause}"].sum()) for cause in CAUSES},
            slow=int(timeline["slow"].sum()),
            latency_mean_s=float(lat.mean()) if len(lat) else None,
            latency_p50_s=float(np.percentile(lat, 50)) if len(lat) else None,
            latency_p99_s=float(np.percentile(lat, 99)) if len(lat) else None,
            min_ready=float((after["old_ready"] + after["new_ready"]).min()) if len(after) else None,
            peak_utilization=float(timeline["utilization"].max()) if len(timeline) else None,
            instance_seconds=self._instance_seconds,
            queued_attempts=None,  # Locust does not see an instance's queue: the key stays out of staging's summary
        )
        extras = {
            "target_rps": float(np.mean([offered_rate(s, i + 0.5) for i in range(n)])) if self.with_load else 0.0,
            "achieved_rps": requests / s.duration if s.duration else 0.0,
        }
        summary = summarize(s, engine="staging", seed=s.seed, controller=c, totals=totals,
                            bad_release=bool(s.release and s.release.bad), extras=extras)
        events = [(e.time, e.kind, e.detail) for e in c.events] + self.events
        return Result(summary, timeline, events_frame(events), {"controller": c})


def _empty(n: int) -> pd.DataFrame:
    cols = ("offered", "attempts", "succeeded", "failed", "failed_error", "failed_rejected", "failed_timeout",
            "failed_reset", "slow")
    frame = pd.DataFrame({"t": np.arange(n), **{c: np.zeros(n, dtype=int) for c in cols},
                          "latency_p50_ms": np.nan, "latency_p99_ms": np.nan})
    frame.attrs["ok_latency"] = np.array([])
    return frame


def _per_second(attempts: dict, s: Scenario, t0: float, n: int) -> pd.DataFrame:
    """Users' view per second from Locust's records: offered, attempts, outcome by cause, slow, latency.

    As in the simulator, a user request counts in the second it arrived, with the outcome of its last try.
    """
    frame = _empty(n)
    tried = np.floor(attempts["t"] - t0).astype(int)
    tried = tried[(tried >= 0) & (tried < n)]
    rec = user_requests(attempts)
    sec = np.floor(rec["t"] - t0).astype(int)
    keep = (sec >= 0) & (sec < n)
    masks = {k: m[keep] for k, m in classify(rec, s.traffic.timeout).items()}
    sec, lat = sec[keep], rec["latency"][keep]
    frame["offered"] = np.bincount(sec, minlength=n)
    frame["attempts"] = np.bincount(tried, minlength=n)
    frame["succeeded"] = np.bincount(sec[masks["ok"]], minlength=n)
    for cause in CAUSES:
        frame[f"failed_{cause}"] = np.bincount(sec[masks[cause] & ~masks["ok"]], minlength=n)
    frame["failed"] = frame["offered"] - frame["succeeded"]
    slow = masks["ok"] & (lat > s.slo.latency_threshold)
    frame["slow"] = np.bincount(sec[slow], minlength=n)
    ok_sec, ok_lat = sec[masks["ok"]], lat[masks["ok"]]
    p50, p99 = np.full(n, np.nan), np.full(n, np.nan)
    for i in np.unique(ok_sec):
        values = ok_lat[ok_sec == i]
        p50[i], p99[i] = np.percentile(values, 50) * 1000, np.percentile(values, 99) * 1000
    frame["latency_p50_ms"], frame["latency_p99_ms"] = p50, p99
    frame.attrs["ok_latency"] = ok_lat
    return frame


def deploy(scenario: Scenario, state_dir: str | Path, *, with_load: bool = False, out: Path | None = None,
           progress: Callable[[str], None] | None = None, record_to: Path | None = None,
           load_workers: int = 0, per_process: int = 1) -> Result:
    """Run the scenario's release on the staging in `state_dir` (started here and stopped after if not up).

    `per_process` applies to a staging started here (see `Staging.up`); a running one keeps its own.
    """
    try:
        st = Staging.open(state_dir)
        owned = False
        if not st.running():
            raise StagingError("stale")
    except StagingError:
        st = Staging.up(scenario, state_dir, per_process=per_process)
        owned = True
    if st.scenario is not None and st.scenario.fleet.instances != scenario.fleet.instances:
        raise StagingError(f"the staging in {st.dir} runs {st.scenario.fleet.instances} instances; "
                           f"the scenario wants {scenario.fleet.instances} (run `simlab staging down` first)")
    if not owned:  # new instances must run the release being deployed, whatever `up` was given
        st.scenario_file.write_text(scenario.model_dump_json())
        st.scenario = scenario
        replaced = LocalFleet(st).reset_to_stable()
        if replaced and progress is not None:
            progress(f"the staging ran a release an earlier deploy left in place: {len(replaced)} instances "
                     f"replaced by {scenario.fleet.instances} of the stable version before this deploy")
        st.retire_idle_hosts()  # a host started for an earlier release would serve it with that scenario
    try:
        return Deployment(scenario, LocalFleet(st), with_load=with_load, out=out, progress=progress,
                          record_to=record_to, load_workers=load_workers).run()
    finally:
        if owned:
            st.down()


def deploy_external(scenario: Scenario, target: Target, state_dir: str | Path, *, allow_hosts=(),
                    with_load: bool = False, out: Path | None = None,
                    progress: Callable[[str], None] | None = None, record_to: Path | None = None,
                    load_workers: int = 0) -> Result:
    """Run the scenario's release on an external target (`staging.target`) through its command templates."""
    from simlab.staging.external import ExternalFleet

    fleet = ExternalFleet(target, state_dir, allow_hosts=allow_hosts)
    return Deployment(scenario, fleet, with_load=with_load, out=out, progress=progress, record_to=record_to,
                      load_workers=load_workers).run()
