"""The rollout controller: pure, synchronous, shared by every driver.

A driver calls `tick(now, fleet, metrics)` at least once per `PERIOD` seconds
of its clock and carries out the actions returned. The controller never reads
a clock, starts a process or sends a request; given the same sequence of
observations it makes the same decisions, in simulation and on staging.
"""
from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from simlab.control.gate import AnalysisGate, Reading
from simlab.control.observations import (
    Action,
    ControlEvent,
    FleetState,
    MetricsView,
    SetWeight,
    StartInstances,
    StartMigration,
    StopInstances,
)
from simlab.control import plans
from simlab.scenario import Scenario

PERIOD = 1.0

Outcome = Literal["no_release", "incomplete", "promoted", "rolled_back"]


class Phase(StrEnum):
    """Where the release stands. The values are what timelines, CSV files and recordings show.

    A rollback in progress is `ROLLING_BACK` and only that: every other phase means no rollback is running.
    """

    STABLE = "stable"  # before the release starts (or without one)
    MIGRATING = "migrating"  # the release's schema migration is running
    ROLLOUT = "rollout"  # the strategy's steps are running
    PROMOTED = "promoted"  # the new version serves everyone; a blue/green may still keep its old fleet
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


class RolloutController:
    """Runs one release with the scenario's strategy, analysis and rollback policy."""

    def __init__(self, scenario: Scenario, *, queries: bool = False):
        """`queries`: the driver's monitoring evaluates analysis metrics' PromQL `query:` (staging; see gate.py)."""
        self.scenario = scenario
        self.n = scenario.fleet.instances
        self.release = scenario.release
        self.rollback_spec = scenario.rollback
        strategy = scenario.strategy
        has_metrics = scenario.analysis is not None and bool(scenario.analysis.metrics)
        self.analysis_spec = scenario.analysis if (strategy.analysis and has_metrics) else None
        self.baseline = bool(getattr(strategy, "baseline", False))  # a canary with a baseline fleet
        self._gate = (AnalysisGate(self.analysis_spec, queries=queries, baseline=self.baseline)
                      if self.analysis_spec is not None else None)
        self.events: list[ControlEvent] = []
        self.phase = Phase.STABLE
        self.step: int | None = None
        self.weight: float | None = None  # percent of traffic on the new version; None: by instance count
        self.baseline_weight = 0.0  # percent of traffic on the canary's baseline
        self.outcome: Outcome = "no_release" if self.release is None else "incomplete"
        self.promoted_at: float | None = None
        self.detected_at: float | None = None
        self.rollback_started_at: float | None = None
        self.rollback_done_at: float | None = None
        self.rollback_cause: str | None = None  # a metric name (or several joined by +), alert, deadline, inconclusive
        self.rollback_by: str | None = None  # controller or on_call
        self.dry_run_detected_at: float | None = None  # when the dry-run metrics alone would have rolled back
        self.paused_at: float | None = None  # inconclusive_limit reached with on_inconclusive: pause
        self._plan: plans.Plan | None = None
        self._waiting: plans.Item | None = None
        self._wait_since = 0.0
        self._passed_since_bake = False
        self._analysis_on = False
        self._next_analysis = 0.0
        self._next_alert = 0.0
        self._alerted = False
        self._alert_detection = False
        self._manual_rollback_at: float | None = None
        self._analysis_cause: str | None = None  # set when the analysis decided to roll back: what the on-call acts on
        self._fleet: FleetState | None = None

    # -- the one entry point -------------------------------------------------
    def tick(self, now: float, fleet: FleetState, metrics: MetricsView) -> list[Action]:
        """Observe, decide, and return what the driver must do now."""
        self._fleet = fleet
        if self.release is None or now < self.release.at:
            return []
        actions: list[Action] = []
        if self._before_release:
            self._begin(now, metrics)
        if not self._rollback_started:
            self._analyse(now, metrics)
            self._watch_alert(now, metrics)
            if self._manual_rollback_at is not None and now >= self._manual_rollback_at:
                self._on_call_acts(now, metrics)
        if self.paused_at is None:
            actions += self._advance(now, fleet)
        return actions

    @property
    def failures(self) -> int:
        """Failed analysis measurements so far (acting metrics; every one, whatever the counting rule)."""
        return self._gate.tally.failed_total if self._gate is not None else 0

    @property
    def inconclusive(self) -> int:
        """Inconclusive analysis measurements so far (acting metrics)."""
        return self._gate.tally.inconclusive_total if self._gate is not None else 0

    @property
    def rolling_back(self) -> bool:
        """A rollback is running (started, not yet finished)."""
        return self.phase == Phase.ROLLING_BACK

    @property
    def _rollback_started(self) -> bool:
        """A rollback is running or has finished: analysis, alerts and the on-call stand down."""
        return self.phase in (Phase.ROLLING_BACK, Phase.ROLLED_BACK)

    @property
    def _before_release(self) -> bool:
        """The release is due (or not yet) but its plan has not begun."""
        return self._plan is None and self.phase == Phase.STABLE

    @property
    def done(self) -> bool:
        """The release is settled: promoted with its plan finished, or rolled back."""
        return (
            self._plan is None
            and self.phase in (Phase.PROMOTED, Phase.ROLLED_BACK)
            and self._manual_rollback_at is None
        )

    def next_wakeup(self, now: float, alert: bool = True) -> float:
        """Earliest time after `now` at which `tick` could act if the fleet does not change.

        Between fleet changes the controller's decisions depend on time only
        through a few deadlines (the release, the next analysis or alert
        evaluation, the on-call's acknowledgement, the end of a bake or of the
        progress deadline); a driver may skip ticks until then. With
        `alert=False` the alert evaluation is left out: a driver that checks
        the alert itself (`next_alert_check`, `alert_checked_quiet`) wakes
        the controller at the earlier of that and a firing alert.
        """
        if self.release is None:
            return math.inf
        if self._before_release:
            return max(self.release.at, now + PERIOD) if now >= self.release.at else self.release.at
        times = [math.inf]
        deadline = self.scenario.strategy.progress_deadline
        if self._plan is not None and self.paused_at is None:
            item = self._waiting
            if item is None or isinstance(item, plans.Tick):
                return now + PERIOD
            if isinstance(item, plans.Bake):
                end = self._wait_since + item.seconds
                if now < end:
                    times.append(end)
                elif item.need_pass and self._analysis_on and not self._passed_since_bake:
                    if not self.rolling_back:
                        times.append(end + deadline)
                else:
                    return now + PERIOD
            elif isinstance(item, plans.Until) and item.deadline and not self.rolling_back:
                times.append(self._wait_since + deadline)
        if not self._rollback_started:
            if self._analysis_on and self.analysis_spec is not None:
                times.append(self._next_analysis)
            if not self._alerted and alert:
                times.append(self._next_alert)
            if self._manual_rollback_at is not None:
                times.append(self._manual_rollback_at)
        return max(min(times), now + PERIOD)

    def next_alert_check(self) -> float:
        """When `tick` next evaluates the SLO burn-rate alert; math.inf while it is not watching the alert."""
        if self.release is None or self._before_release:
            return math.inf
        if self._rollback_started or self._alerted:
            return math.inf
        return self._next_alert

    def alert_checked_quiet(self, now: float) -> None:
        """A driver evaluated the alert due at `now` and found it not firing (a window with no requests, or
        one whose burn rate, bad rate / (1 - availability), is under `slo.alert.burn_rate`).

        This is what `tick(now, ...)` does when the alert check is all that is due (the fleet unchanged,
        `next_wakeup(now', alert=False) > now`): it schedules the next check, and returns no action and
        emits no event. Lets a driver of many replications check their alerts in one vectorised step.
        """
        if not self.next_alert_check() <= now:
            raise ValueError(f"no alert check is due at {now}s (next: {self.next_alert_check()}s)")
        self._next_alert = now + self.scenario.monitoring.scrape_interval

    # -- phases --------------------------------------------------------------
    def _begin(self, now: float, metrics: MetricsView) -> None:
        self.phase = Phase.ROLLOUT
        if self._gate is not None:
            self._gate.begin(metrics)
        self._next_alert = now
        self._emit(now, "release_started", {"strategy": self.scenario.strategy.kind, "version": self.release.version})
        self._plan = plans.build(self.scenario.strategy, self.n, migration=self.release.migration,
                                 analysis=self._gate is not None, gate=self._gate is not None and self._gate.gates)
        self._waiting = None

    def _start_rollback(self, now: float, reason: str, cause: str, by: str) -> None:
        if self._rollback_started:
            return
        self.rollback_cause, self.rollback_by = cause, by
        self._analysis_on = False
        self._manual_rollback_at = None
        self.paused_at = None
        self.detected_at = now if self.detected_at is None else self.detected_at
        self.rollback_started_at = now
        self.phase = Phase.ROLLING_BACK
        self.outcome = "rolled_back"
        self._emit(now, "rollback_started", {"reason": reason, "cause": cause})
        self._plan = plans.rollback(self.n, self.rollback_spec.duration, lambda: self._fleet)
        self._waiting = None

    # -- detection -----------------------------------------------------------
    def _analyse(self, now: float, metrics: MetricsView) -> None:
        spec = self.analysis_spec
        if not self._analysis_on or spec is None or now < self._next_analysis:
            return
        self._next_analysis += spec.interval
        reading = self._gate.measure(metrics)
        if reading.acting is not None and reading.acting.status == "passed":
            self._passed_since_bake = True
        self._emit(now, "analysis", self._gate.detail(reading))
        if reading.dry_run_decision == "failed" and self.dry_run_detected_at is None:
            self.dry_run_detected_at = now
            self._emit(now, "dry_run_failed", {"metrics": "+".join(reading.dry_run.failed_metrics)})
        if reading.decision is not None:
            self._decide(now, reading)

    def _decide(self, now: float, reading: Reading) -> None:
        """The acting metrics reached failure_limit (roll back) or inconclusive_limit (roll back or pause)."""
        spec, tally = self.analysis_spec, self._gate.tally
        automatic = self.rollback_spec.automatic
        if reading.decision == "failed":
            self._analysis_cause = "+".join(reading.acting.failed_metrics)
            in_a_row = " in a row" if spec.failure_counting == "consecutive" else ""
            self._detected(now, f"analysis failed {tally.failures} times{in_a_row}", automatic, self._analysis_cause)
        elif spec.on_inconclusive == "rollback":
            self._analysis_cause = "inconclusive"
            self._detected(now, f"analysis inconclusive {tally.inconclusive} times", automatic, "inconclusive")
        elif self.paused_at is None:
            self.paused_at = now
            self._emit(now, "paused", {"reason": f"analysis inconclusive {tally.inconclusive} times"})
            if self._manual_rollback_at is None:
                self._manual_rollback_at = now + self.rollback_spec.on_call.ack

    def _burning(self, metrics: MetricsView) -> tuple[bool, float | None, float | None]:
        """Whether both burn-rate windows are over the alert threshold, and their burn rates."""
        alert = self.scenario.slo.alert
        budget = 1.0 - self.scenario.slo.availability / 100.0
        long_w, short_w = metrics.total_window(alert.long_window), metrics.total_window(alert.short_window)
        if long_w.bad_rate is None or short_w.bad_rate is None:
            return False, None, None
        burn_long, burn_short = long_w.bad_rate / budget, short_w.bad_rate / budget
        return burn_long >= alert.burn_rate and burn_short >= alert.burn_rate, burn_long, burn_short

    def _watch_alert(self, now: float, metrics: MetricsView) -> None:
        if self._alerted or now < self._next_alert:
            return
        self._next_alert = now + self.scenario.monitoring.scrape_interval
        firing, burn_long, burn_short = self._burning(metrics)
        if firing:
            self._alerted = True
            self._alert_detection = self.detected_at is None
            self._emit(now, "alert", {"burn_rate_long": burn_long, "burn_rate_short": burn_short})
            self._detected(now, "SLO burn-rate alert", False, "alert")

    def _on_call_acts(self, now: float, metrics: MetricsView) -> None:
        """After `on_call.ack` a person looks: an alert that has stopped burning is not rolled back, a paused
        rollout with no failed analysis and no alert is resumed."""
        self._manual_rollback_at = None
        if self._analysis_cause is not None:
            self._start_rollback(now, "on-call rolled back after the failed analysis", self._analysis_cause, "on_call")
            return
        firing, burn_long, burn_short = self._burning(metrics)
        if firing:
            self._start_rollback(now, "on-call rolled back after the alert", "alert", "on_call")
            return
        if self._alerted:
            self._emit(now, "alert_resolved", {"burn_rate_long": burn_long, "burn_rate_short": burn_short})
            self._alerted = False
            if self._alert_detection:
                self.detected_at = None  # a transient alert is not a detection of a bad release
        if self.paused_at is not None:
            self.paused_at = None
            self._gate.tally.resume()
            self._emit(now, "resumed", {"reason": "the on-call found no failed analysis and no alert"})

    def _detected(self, now: float, reason: str, automatic: bool, cause: str) -> None:
        if self.detected_at is None:
            self.detected_at = now
            self._emit(now, "detected", {"reason": reason})
        if automatic:
            self._start_rollback(now, reason, cause, "controller")
        elif self._manual_rollback_at is None and not self.rolling_back:
            self._manual_rollback_at = now + self.rollback_spec.on_call.ack

    # -- running a plan ------------------------------------------------------
    def _advance(self, now: float, fleet: FleetState) -> list[Action]:
        actions: list[Action] = []
        while self._plan is not None:
            item = self._waiting
            if item is not None:
                plan = self._plan
                if not self._satisfied(item, now, fleet):
                    if self._plan is not plan:
                        continue  # the wait hit the progress deadline: run the rollback plan from this tick
                    break
                self._waiting = None
            try:
                item = next(self._plan)
            except StopIteration:
                self._plan = None
                break
            if isinstance(item, (plans.Until, plans.Bake, plans.Tick)):
                self._waiting, self._wait_since = item, now
                if isinstance(item, plans.Bake):
                    self._passed_since_bake = False
                if isinstance(item, plans.Tick):
                    break
                continue
            actions += self._apply(item, now, fleet)
        return actions

    def _satisfied(self, item: plans.Item, now: float, fleet: FleetState) -> bool:
        deadline = self.scenario.strategy.progress_deadline
        if isinstance(item, plans.Tick):
            return True
        if isinstance(item, plans.Until):
            if item.ready(fleet):
                return True
            if item.deadline and not self.rolling_back and now - self._wait_since >= deadline:
                self._detected(now, f"progress deadline: waited {deadline:g}s for {item.what}", True, "deadline")
            return False
        elapsed = now - self._wait_since
        if elapsed < item.seconds:
            return False
        if not item.need_pass or not self._analysis_on or self._passed_since_bake:
            return True
        if not self.rolling_back and elapsed >= item.seconds + deadline:
            self._detected(now, "analysis stayed inconclusive past the progress deadline", True, "deadline")
        return False

    def _apply(self, item: plans.Item, now: float, fleet: FleetState) -> list[Action]:
        if isinstance(item, plans.Mark):
            return self._mark(item, now)
        if isinstance(item, plans.Analysis):
            self._analysis_on = item.on and self.analysis_spec is not None
            if self._analysis_on:
                self._next_analysis = now + self.analysis_spec.interval
            return []
        if isinstance(item, plans.Scale):
            alive = fleet.of(item.version).alive
            if item.count > alive:
                return [StartInstances(item.version, item.count - alive)]
            return [StopInstances(item.version, alive - item.count)] if item.count < alive else []
        if isinstance(item, SetWeight):
            self.weight, self.baseline_weight = item.new_percent, item.baseline_percent
            self._emit(now, "weight", {"new_percent": item.new_percent,
                                       **({"baseline_percent": item.baseline_percent} if self.baseline else {})})
        if isinstance(item, StartMigration):
            self.phase = Phase.MIGRATING
        if isinstance(item, (StartInstances, StopInstances)) and item.count <= 0:
            return []
        return [item]

    def _mark(self, item: plans.Mark, now: float) -> list[Action]:
        if item.kind == "step_started":
            self.step = item.detail.get("step")
            self.phase = Phase.ROLLOUT
        elif item.kind == "migration_finished":
            self.phase = Phase.ROLLOUT
        elif item.kind == "promoted":
            self.promoted_at = now
            self.phase = Phase.PROMOTED
            self.outcome = "promoted"
        elif item.kind == "rollback_finished":
            self.rollback_done_at = now
            self.phase = Phase.ROLLED_BACK
        self._emit(now, item.kind, item.detail)
        return []

    def _emit(self, now: float, kind: str, detail: dict) -> None:
        self.events.append(ControlEvent(now, kind, dict(detail)))
