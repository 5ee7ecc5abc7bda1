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
from simlab.errors import ScenarioError, StagingError
from simlab.results import CAUSES, Result, RunTotals, events_frame, ready_instances, summarize, timeline_columns
from simlab.rng import stream
from simlab.scenario import Scenario
from simlab.scenario.staging import Target
from simlab.staging import health, procs
from simlab.staging.faults import FaultSchedule
from simlab.staging.files import write_private
from simlab.staging.local_fleet import LocalFleet
from simlab.staging.load import empty_seconds, per_second, read_records, start_load
from simlab.staging.preflight import preflight
from simlab.staging.prometheus import PrometheusMetrics, PromQL
from simlab.staging.shape import offered_rate
from simlab.staging.state import StateFileError
from simlab.staging.supervisor import Staging
from simlab.staging.target import DeployTarget


class DeployFailed(StagingError):
    """The deploy could not be carried out or judged: its balancer died, or the new version never served.

    `result` holds what was observed until then (None if nothing was), for `--out`.
    """

    def __init__(self, message: str, result: Result | None = None):
        super().__init__(message)
        self.result = result


class DeployInterrupted(DeployFailed):
    """Ctrl-C or SIGTERM during the rollout: the stable version was put back as far as it could be."""


class Deployment:
    """One release carried out on a deploy target; `run()` returns the measured Result.

    The target (`target.DeployTarget`) is the local staging (`LocalFleet`) or a team's own
    (`external.ExternalFleet`).
    """

    def __init__(self, scenario: Scenario, fleet: DeployTarget, *, with_load: bool = False, out: Path | None = None,
                 progress: Callable[[str], None] | None = None, record_to: Path | None = None,
                 load_workers: int = 0, checked: bool = False):
        """`checked`: check_analysis already passed on this target's Prometheus (else `run` checks first)."""
        self.s = scenario
        self.checked = checked
        self.fleet = fleet
        self.with_load = with_load
        self.load_workers = load_workers
        self.load_dir = (out or fleet.dir) / "load"
        self.progress = progress or (lambda line: None)
        self.controller = RolloutController(scenario, queries=True)  # PrometheusMetrics evaluates `query:` metrics
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
        self._new_started = False  # the controller asked for new-version instances
        self._new_served = False  # one of them was in rotation at a tick
        # The scenario's failures on the wall clock: drawn from the run's own stream, like the simulator's.
        self.faults = FaultSchedule(scenario, stream(scenario.seed, "staging/failures"))
        if self.controller.baseline and fleet.kind != "local":  # no command template starts or weighs one
            raise ScenarioError("strategy.baseline: expected false on an external target (no canary baseline), found true")
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
        if not self.checked:
            check_analysis(self.client, s)
        shutil.rmtree(self.load_dir, ignore_errors=True)
        self.t0 = time.time()
        release_at = s.release.at if s.release else 0.0
        self.fleet.begin(self.t0 + release_at)
        loaders = (start_load(s, self.fleet.url, self.load_dir, s.duration, self.t0, self.load_workers,
                              owner=self.fleet.dir) if self.with_load else [])
        if loaders:
            self.fleet.track_load(loaders)
        recording = None
        failure: BaseException | None = None
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
        except BaseException as exc:
            failure = exc
            why = self.fleet.broken() or ("interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc))
            what = self.fleet.interrupt(s.fleet.instances)
            self.events.append((self._now(), "interrupted", {"why": why, "state": what}))
        finally:
            if not self.faults.empty:
                self.fleet.end_faults()  # zones up, dependency healthy: what follows starts from a clean fleet
            # Locust's shape ends at the run's end; let it finish the requests in flight, then make sure.
            deadline = time.time() + s.traffic.timeout + 3.0
            while any(procs.is_running(r) for r in loaders) and time.time() < deadline:
                time.sleep(0.1)
            procs.stop_many(loaders, grace=5.0)
            if loaders:
                self.fleet.track_load([])
            if recording is not None:
                recording.close()
        if isinstance(failure, (KeyboardInterrupt, StagingError)):
            raise self._failed(failure, why, what) from failure
        if failure is not None:
            raise failure  # a bug: its own traceback says more
        unserved = self._never_served()
        if unserved:  # what it started goes, as on an interrupt: the staging is left as it was found
            what = self.fleet.interrupt(s.fleet.instances)
            self.events.append((self._now(), "interrupted", {"why": "the new version never served", "state": what}))
            raise DeployFailed(f"{unserved}; {what}", self._result())
        return self._result()

    def _failed(self, failure: BaseException, why: str, what: str) -> DeployFailed:
        """The error a deploy that stopped early ends with, carrying what was observed until then."""
        try:
            result = self._result() if self.rows else None
        except Exception:  # noqa: BLE001 - a partial result is a courtesy; the failure is what matters
            result = None
        at = f"{self._now():.1f}s into the deploy"
        if isinstance(failure, KeyboardInterrupt):
            return DeployInterrupted(f"deploy interrupted {at}: {what}", result)
        return DeployFailed(f"deploy stopped {at}: {why}; {what}", result)

    def _never_served(self) -> str | None:
        """Why a deploy whose new version never came into rotation judged nothing (None if it served or rolled back).

        Its analyses saw no request of the new version, so neither `promoted` nor `incomplete` says
        anything about the release; a rollback did what it should whatever the cause.
        """
        outcome = self.controller.outcome
        if not self._new_started or self._new_served or outcome == "rolled_back":
            return None
        crashes: dict[str, list] = {}
        for _, kind, detail in self.events:
            if kind == "instance_crashed":
                crashes.setdefault(detail["instance"], []).append(detail.get("exit_code"))
        seen = "; ".join(f"{name} crashed {len(codes)} time{'s' * (len(codes) > 1)} (last exit code {codes[-1]})"
                         for name, codes in sorted(crashes.items()))
        taken = sorted({d["port"] for _, k, d in self.events if k == "port_taken"})
        if taken:
            seen += ("; " if seen else "") + f"ports taken by other processes: {', '.join(map(str, taken))}"
        return (f"the new version never served: none of its instances came into rotation in the deploy's "
                f"{self.s.duration:g}s ({seen or 'none crashed; it was never ready'}), so the outcome "
                f"`{outcome}` judged nothing of the release; see the logs in {self.fleet.dir}")

    def _now(self) -> float:
        return time.time() - self.t0

    def _tick(self, second: int) -> None:
        now = self._now()
        broken = self.fleet.broken()
        if broken:
            raise StagingError(broken)
        for kind, name, detail in self.fleet.reap():
            self.events.append((now, kind, {"instance": name, **detail}))
        if not self.faults.empty:
            self._inject(now)
        self.fleet.report_offered(offered_rate(self.s, now))
        if self.migration == "running" and now >= self._migration_done_at:
            self.migration = "done"
        counts = self.fleet.counts()
        self._new_served = self._new_served or counts["new_ready"] > 0
        fleet = FleetState(
            old=VersionCount(counts["old_alive"], counts["old_ready"]),
            new=VersionCount(counts["new_alive"], counts["new_ready"]),
            migration=self.migration,
            baseline=VersionCount(counts["baseline_alive"], counts["baseline_ready"]),
        )
        seen = len(self.controller.events)
        actions = self._decider.tick(now, fleet, self.metrics)
        for event in self.controller.events[seen:]:
            if event.kind in ("promoted", "rollback_started", "rollback_finished"):
                self.fleet.milestone(event.kind)
        for action in actions:
            self._apply(action, now)
        self.fleet.hold_weight(self.controller.weight, self.controller.baseline_weight)
        self._report()
        self._instance_seconds += PERIOD * (counts["old_alive"] + counts["new_alive"] + counts["baseline_alive"])
        in_flight = self.client.scalar("sum(simlab_in_flight)") or 0.0
        queued = self.client.scalar("sum(simlab_queued)") or 0.0
        waited = self.client.scalar("sum(simlab_waited_total)") or 0.0
        waited_now, self._waited = max(0.0, waited - self._waited), max(waited, self._waited)
        ready = counts["old_ready"] + counts["new_ready"] + counts["baseline_ready"]
        capacity, weight, base_weight = self.s.fleet.workers * ready, self.controller.weight, self.controller.baseline_weight
        if weight is None:
            weight = 100.0 * counts["new_ready"] / ready if ready else 0.0
            base_weight = 100.0 * counts["baseline_ready"] / ready if ready else 0.0
        versions = ("old", "new", "baseline")[:3 if self.controller.baseline else 2]
        self.rows.append({
            "t": second, "new_weight": weight, "phase": self.controller.phase,
            "utilization": min(1.0, in_flight / capacity) if capacity else 0.0,
            "in_flight": int(in_flight + queued), "queued": int(waited_now),
            **{f"{v}_{k}": counts[f"{v}_{k}"] for v in versions for k in ("ready", "starting", "down", "draining")},
            **({"baseline_weight": base_weight} if self.controller.baseline else {}),
        })

    def _inject(self, now: float) -> None:
        """The scenario's failures due by now: zone outages, crashes, the dependency's state."""
        for step in self.faults.step(now, self.fleet.running_instances()):
            for kind, detail in self.fleet.inject(step):
                self.events.append((now, kind, detail))
                self.progress(_line(now, f"fault {kind}", detail))  # a fault and its end, as they happen
        self.fleet.set_dependency(self.faults.active_dependency(now))

    def _apply(self, action, now: float) -> None:
        if isinstance(action, StartInstances):
            self._new_started = self._new_started or (action.version == "new" and action.count > 0)
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
            self.progress(_line(event.time, event.kind, event.detail))
        self._reported = len(self.controller.events)

    # -- measuring -----------------------------------------------------------
    def _result(self) -> Result:
        s, c = self.s, self.controller
        n = int(math.ceil(s.duration))
        # A second the loop skipped (a slow target command) repeats the fleet state last seen.
        timeline = pd.DataFrame(self.rows).set_index("t").reindex(range(n)).ffill().bfill()
        counted = [c for c in timeline.columns if c.endswith(("_ready", "_starting", "_down", "_draining", "flight", "queued"))]
        timeline[counted] = timeline[counted].astype(int)
        timeline = timeline.rename_axis("t").reset_index()
        users = per_second(read_records(self.load_dir), s, self.t0, n) if self.with_load else empty_seconds(n)
        timeline = users.merge(timeline, on="t", how="left")[list(timeline_columns(s))]
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
            min_ready=float(ready_instances(after).min()) if len(after) else None,
            peak_utilization=float(timeline["utilization"].max()) if len(timeline) else None,
            instance_seconds=self._instance_seconds,
            queued_attempts=None,  # Locust does not see an instance's queue: the key stays out of staging's summary
        )
        extras = {
            "target_rps": float(np.mean([offered_rate(s, i + 0.5) for i in range(n)])) if self.with_load else 0.0,
            "achieved_rps": requests / s.duration if s.duration else 0.0,
        }
        events = [(e.time, e.kind, e.detail) for e in c.events] + self.events
        summary = summarize(s, engine="staging", seed=s.seed, controller=c, totals=totals,
                            bad_release=bool(s.release and s.release.bad), extras=extras, events=events)
        return Result(summary, timeline, events_frame(events), {"controller": c})


def check_analysis(client: PromQL, scenario: Scenario) -> None:
    """ScenarioError naming each analysis metric this Prometheus cannot evaluate (preflight.py), before anything
    of the deploy starts."""
    problems = preflight(client, scenario)
    if problems:
        noun = "metric" if len(problems) == 1 else "metrics"
        raise ScenarioError(f"analysis: {len(problems)} {noun} Prometheus at {client.base} cannot evaluate (checked "
                            f"before the deploy started; nothing was deployed)", problems)


def _line(time: float, what: str, detail: dict) -> str:
    """A progress line: `[  21.0s] analysis status=failed error_rate=0.14`."""
    said = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in detail.items())
    return f"[{time:6.1f}s] {what} {said}".rstrip()


def deploy(scenario: Scenario, state_dir: str | Path, *, with_load: bool = False, out: Path | None = None,
           progress: Callable[[str], None] | None = None, record_to: Path | None = None,
           load_workers: int = 0, per_process: int = 1) -> Result:
    """Run the scenario's release on the staging in `state_dir` (started here and stopped after if none runs).

    A staging the user started is never stopped: instances found down are restarted in place (and
    reported), a staging whose HAProxy or Prometheus is gone is refused (health.py). `per_process`
    applies to a staging started here (see `Staging.up`); a running one keeps its own.
    DeployFailed if the deploy could not be carried out or judged, StateFileError if `state.json` is damaged.
    """
    say = progress or (lambda line: None)
    st = _running_staging(state_dir, say)
    owned = st is None
    if owned:
        st = Staging.up(scenario, state_dir, per_process=per_process)
    if st.scenario is not None and st.scenario.fleet.instances != scenario.fleet.instances:
        raise StagingError(f"the staging in {st.dir} runs {st.scenario.fleet.instances} instances; "
                           f"the scenario wants {scenario.fleet.instances} (run `simlab staging down` first)")
    if not owned:  # new instances must run the release being deployed, whatever `up` was given
        for line in health.repair(st, timeout=st.startup_limit()):
            say(f"{line} before the deploy")
        write_private(st.scenario_file, scenario.model_dump_json())
        st.scenario = scenario
        replaced = LocalFleet(st).reset_to_stable()
        if replaced:
            say(f"the staging ran a release an earlier deploy left in place: {len(replaced)} instances "
                f"replaced by {scenario.fleet.instances} of the stable version before this deploy")
        st.retire_idle_hosts()  # a host started for an earlier release would serve it with that scenario
    try:
        # After the reset: the preflight asks for the stable version's series, which a fleet an earlier deploy
        # promoted no longer has (they go stale; a query over a window finds none).
        check_analysis(PromQL(st.prometheus_url), scenario)
    except BaseException:
        if owned:
            st.down()
        raise
    try:
        return Deployment(scenario, LocalFleet(st), with_load=with_load, out=out, progress=progress,
                          record_to=record_to, load_workers=load_workers, checked=True).run()
    except DeployFailed as exc:
        if owned:
            exc.args = (f"{exc}; the staging this deploy started is stopped",)
        raise
    finally:
        if owned:
            st.down()


def _running_staging(state_dir: str | Path, say: Callable[[str], None]) -> Staging | None:
    """The staging in `state_dir` if any of it runs (refused if it cannot take a deploy), else None."""
    try:
        st = Staging.open(state_dir)
    except StateFileError:
        raise
    except StagingError:
        return None  # no staging there
    if health.nothing_runs(st):
        say(f"nothing of the staging in {st.dir} runs any more (a crashed simlab or a reboot left its state "
            "file): starting one for this deploy")
        return None
    health.refuse_if_damaged(st, state_dir)
    return st


def deploy_external(scenario: Scenario, target: Target, state_dir: str | Path, *, allow_hosts=(),
                    with_load: bool = False, out: Path | None = None,
                    progress: Callable[[str], None] | None = None, record_to: Path | None = None,
                    load_workers: int = 0) -> Result:
    """Run the scenario's release on an external target (`staging.target`) through its command templates."""
    from simlab.staging.external import ExternalFleet

    fleet = ExternalFleet(target, state_dir, allow_hosts=allow_hosts)
    return Deployment(scenario, fleet, with_load=with_load, out=out, progress=progress, record_to=record_to,
                      load_workers=load_workers).run()
