"""The lint rules: each a function of the scenario's context returning its findings, each reason with its numbers.

Errors are mistakes that break the rollout on every run (nothing can roll back, the analysis cannot see the step it
judges or never gets enough requests, the deadline fires before instances are up, capacity below demand, judge
sub-windows that hold no scrape); warnings are risks measured as a chance or a cost (false rollbacks, busy hours, a
health check too slow to help, a canary baseline nobody reads). Rules about one field may live in a module named
from it (`samples.py`, `baseline.py`) and are listed in RULES here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from simlab.linter.finding import Finding, pct, span
from simlab.linter.baseline import unread_baseline
from simlab.linter.noise import predict
from simlab.linter.samples import short_sub_windows
from simlab.linter.schedule import Schedule, analysed, schedule
from simlab.metrics import visible_until
from simlab.scenario import Scenario
from simlab.scenario.model import Diurnal
from simlab.scenario.release import InstanceCrash, ZoneOutage
from simlab.scenario.strategy import BigBang, BlueGreen, Canary, Rolling
from simlab.scenario.types import resolve_count

FALSE_ROLLBACK_WARNING = 0.05  # as `simlab analysis-quality --max-false-rollbacks`' default target
BUSY_HOURS = 0.75  # a rollout whose traffic is in the top quarter of the day's range runs in busy hours


@dataclass
class Context:
    s: Scenario

    @cached_property
    def plan(self) -> Schedule | None:
        return schedule(self.s)

    @cached_property
    def load(self):
        from simlab.engines.traffic import OfferedLoad

        return OfferedLoad(self.s)

    def rates(self, t):
        return self.load.rates(t)

    def rate(self, t: float) -> float:
        return float(self.load.rate(t))

    @cached_property
    def service_mean(self) -> float:
        from simlab.dists import from_spec

        return from_spec(self.s.fleet.service_time).mean

    def capacity_rps(self, instances: int) -> float:
        """Requests per second `instances` serve with every worker busy."""
        return instances * self.s.fleet.workers / self.service_mean


Rule = Callable[[Context], list[Finding]]


def no_rollback(c: Context) -> list[Finding]:
    s = c.s
    if s.release is None or s.rollback.automatic:
        return []
    ack, left = s.rollback.on_call.ack, s.duration - s.release.at
    if "on_call" not in s.rollback.model_fields_set:
        why = f"and no rollback.on_call is written (simlab assumes one acting {span(ack)} after an alert)"
    elif ack >= left:
        why = f"and the on-call acts {span(ack)} after an alert, later than the {span(left)} the run has left"
    else:
        return []
    return [Finding("no-rollback", "error", "rollback.automatic",
                    f"rollback.automatic is false {why}: nothing rolls a bad release back", {"on_call_ack_s": ack})]


def big_bang(c: Context) -> list[Finding]:
    s = c.s
    if s.release is None or not isinstance(s.strategy, BigBang):
        return []
    gap = s.fleet.startup + s.fleet.health_check.healthy_after * s.fleet.health_check.interval
    lost = float(c.rates([s.release.at + x + 0.5 for x in range(int(math.ceil(gap)))]).sum())
    if lost < 1:
        return []
    return [Finding("big-bang", "error", "strategy.kind",
                    f"big_bang stops all {s.fleet.instances} instances at once: none serves for {span(gap)} (startup "
                    f"{span(s.fleet.startup)} + {s.fleet.health_check.healthy_after} health checks), ~{lost:,.0f} "
                    f"requests fail on every deploy, good or bad", {"gap_s": gap, "requests_lost": lost})]


def analysis_blind(c: Context) -> list[Finding]:
    s = c.s
    if s.release is None or not analysed(s):
        return []
    mon = s.monitoring
    need = mon.scrape_interval + mon.window + mon.delay
    sees = (f"shorter than scrape_interval {span(mon.scrape_interval)} + window {span(mon.window)} + delay "
            f"{span(mon.delay)} = {span(need)}")
    out = []
    if isinstance(s.strategy, Canary):
        for i, step in enumerate(s.strategy.steps[:-1]):
            if step.bake < need:
                out.append(Finding("analysis-blind", "error", f"strategy.steps[{i}].bake",
                                   f"step {i} ({step.weight:g}%) bakes {span(step.bake) if step.bake else 'not at all'}, "
                                   f"{sees}: the analysis judges data from before the step", {"need_s": need}))
    elif isinstance(s.strategy, Rolling) and s.strategy.bake < need:
        out.append(Finding("analysis-blind", "error", "strategy.bake",
                           f"each batch bakes {span(s.strategy.bake) if s.strategy.bake else 'not at all'}, {sees}: "
                           f"the analysis judges data from before the batch", {"need_s": need}))
    elif isinstance(s.strategy, BlueGreen) and s.strategy.keep_old < need:
        out.append(Finding("analysis-blind", "error", "strategy.keep_old",
                           f"blue is kept {span(s.strategy.keep_old)} after the switch, {sees}: the analysis never "
                           f"sees a full window of green", {"need_s": need}))
    return out


def min_requests_unreachable(c: Context) -> list[Finding]:
    s, plan = c.s, c.plan
    if plan is None or plan.analysis_from is None:
        return []
    out = []
    for stage in plan.stages:
        if not stage.judged:
            continue
        window = min(s.monitoring.window, stage.bake) if stage.bake > 0 else s.monitoring.window
        start, end = stage.traffic_at, max(stage.end, stage.traffic_at + 1)
        rate = float(min(c.rates([start + 0.5, (start + end) / 2, end - 0.5])))
        expected = rate * stage.share * window
        if expected < s.analysis.min_requests:
            out.append(Finding(
                "min-requests-unreachable", "error", "analysis.min_requests",
                f"{stage.label} sends {rate * stage.share:.3g} rps to the new version: {expected:,.0f} requests per "
                f"{span(window)} window, under min_requests {s.analysis.min_requests}, so every measurement is "
                f"inconclusive and the step waits for its progress deadline", {"stage": stage.label,
                                                                                "expected_requests": expected}))
    return out


def false_rollbacks(c: Context) -> list[Finding]:
    s = c.s
    if c.plan is None or not analysed(s):
        return []
    prediction = predict(s, c.plan, c.rates)
    if prediction is None or prediction.probability < FALSE_ROLLBACK_WARNING:
        return []
    risky = [m for m in prediction.measurements if m.failure >= 0.01]
    worst = max(prediction.measurements, key=lambda m: m.failure)
    causes = _causes(s, risky)
    stage = c.plan.stage_at(worst.window[0])
    spec = s.analysis
    ratio = ""
    if worst.field.endswith("max_ratio_to_baseline"):
        index = int(worst.field.split("[")[1].split("]")[0])
        ratio = f" ({spec.metrics[index].max_ratio_to_baseline:g}x {worst.baseline})"
    return [Finding(
        "false-rollbacks", "warning", worst.field,
        f"predicted false rollbacks: {pct(prediction.probability)} of good releases (failure_limit "
        f"{spec.failure_limit}, {spec.failure_counting}): {causes} reaches the bound of {pct(worst.bound)}{ratio}"
        f"{' during ' + stage.label if stage else ''}, where {len(risky)} measurement(s) fail with probability up to "
        f"{pct(worst.failure)} each (error rate {pct(worst.error_rate)})",
        {"predicted_false_rollbacks": prediction.probability, "measurements": len(risky),
         "worst_failure": worst.failure, "error_rate": worst.error_rate, "bound": worst.bound})]


def _causes(s: Scenario, risky) -> str:
    from simlab.linter.noise import error_rate

    named = []
    for i, f in enumerate(s.failures):
        if getattr(f, "error_rate", 0) and any(m.window[0] < f.at + f.duration and m.window[1] > f.at for m in risky):
            named.append(f"failures[{i}] (a {f.kind} failing {pct(f.error_rate)} of requests "
                         f"{span(f.at) if f.at else '0s'}–{span(f.at + f.duration)})")
    migration = s.release.migration
    if migration is not None and migration.lock_error_rate > 0:
        named.append(f"the migration's lock errors ({pct(migration.lock_error_rate)})")
    if not named:
        return f"the background error rate ({pct(float(error_rate(s, [s.release.at])[0]))})"
    return " and ".join(named)


def keep_old_before_detection(c: Context) -> list[Finding]:
    s, plan = c.s, c.plan
    if plan is None or not isinstance(s.strategy, BlueGreen):
        return []
    switch, mon = plan.promoted_at, s.monitoring
    if plan.analysis_from is not None:
        spec, at = s.analysis, plan.analysis_from
        least = max(spec.min_requests, 1)
        while True:  # the first measurement whose window holds enough of green's requests
            at += spec.interval
            end = visible_until(at, mon.scrape_interval, mon.delay)
            start = max(end - mon.window, plan.stages[0].traffic_at)
            if end > start and float(c.rates([start + x + 0.5 for x in range(int(end - start))]).sum()) >= least:
                break
            if at > switch + 30 * 86400:
                return []
        detect = at + (spec.failure_limit - 1) * spec.interval - switch
        how = f"the analysis' {spec.failure_limit} failed measurement(s)"
    else:
        alert = s.slo.alert
        detect = mon.delay + alert.long_window + mon.scrape_interval
        how = "the burn-rate alert (no analysis)"
    if not s.rollback.automatic or plan.analysis_from is None:
        detect += s.rollback.on_call.ack
        how += f" and the on-call's {span(s.rollback.on_call.ack)}"
    if s.strategy.keep_old >= detect:
        return []
    return [Finding("keep-old-before-detection", "error", "strategy.keep_old",
                    f"blue is released {span(s.strategy.keep_old)} after the switch, before a bad green can be caught "
                    f"({span(detect)}: {how}): the rollback then has to start the old fleet again",
                    {"keep_old_s": s.strategy.keep_old, "time_to_detect_s": detect})]


def release_at_peak(c: Context) -> list[Finding]:
    s, plan = c.s, c.plan
    pattern = s.traffic.pattern
    if plan is None or not isinstance(pattern, Diurnal) or pattern.peak_to_trough <= 1:
        return []
    times = [plan.baseline_at + x for x in range(0, int(max(plan.promoted_at - plan.baseline_at, 1)) + 1, 60)]
    factors = [c.load.pattern_factor(t) for t in times]
    top, low = max(factors), pattern.peak_at + pattern.period / 2
    peak, trough = c.load.pattern_factor(pattern.peak_at), c.load.pattern_factor(low)
    level = (top - trough) / (peak - trough)
    if level < BUSY_HOURS:
        return []
    return [Finding("release-at-peak", "warning", "release.at",
                    f"the rollout ({span(plan.baseline_at)}–{span(plan.promoted_at)}) runs at up to "
                    f"{s.traffic.rps * top:,.0f} rps, {pct(level)} of the way from the day's trough to its peak "
                    f"({s.traffic.rps * peak:,.0f} rps at {span(pattern.peak_at % pattern.period)}): a bad release "
                    f"hurts the most users; the trough is at {span(low % pattern.period)}", {"level": level})]


def incompatible_migration(c: Context) -> list[Finding]:
    s = c.s
    migration = s.release.migration if s.release is not None else None
    if migration is None or migration.backward_compatible:
        return []
    return [Finding("incompatible-migration", "error", "release.migration.backward_compatible",
                    f"the migration is not backward compatible and has no expand/contract phase: after it the old "
                    f"version fails {pct(migration.incompatible_error_rate)} of its requests, so rolling back cannot "
                    f"restore service (migrate compatibly first, drop the old schema after promotion)", {})]


def capacity_below_peak(c: Context) -> list[Finding]:
    s = c.s
    if s.release is None or not isinstance(s.strategy, Rolling) or s.fleet.zones < 2:
        return []
    n = s.fleet.instances
    unavailable = resolve_count(s.strategy.max_unavailable, n, round_up=False)
    zone = math.ceil(n / s.fleet.zones)  # instances spread round-robin: zone 0 holds the most
    serving = max(n - unavailable - zone, 0)
    capacity, peak = c.capacity_rps(serving), c.load.max_rate
    if unavailable == 0 or capacity >= peak:
        return []
    return [Finding("capacity-below-peak", "error", "strategy.max_unavailable",
                    f"max_unavailable {unavailable} of {n} with zone 0 down ({zone} instances) leaves {serving} "
                    f"serving: {serving} x {s.fleet.workers} workers / {span(c.service_mean)} = {capacity:,.0f} rps "
                    f"at full utilisation, below the peak demand of {peak:,.0f} rps",
                    {"serving": serving, "capacity_rps": capacity, "peak_rps": peak})]


def no_health_check(c: Context) -> list[Finding]:
    s = c.s
    hc = s.fleet.health_check
    removal = hc.interval * hc.unhealthy_after
    outages = []  # (what, how long a dead instance stays dead)
    for i, f in enumerate(s.failures):
        if isinstance(f, InstanceCrash):
            outages.append((f"failures[{i}] (a crashed instance back after {span(max(f.restart, s.fleet.startup))})",
                            max(f.restart, s.fleet.startup)))
        elif isinstance(f, ZoneOutage):
            outages.append((f"failures[{i}] (zone {f.zone} down for {span(f.duration)})", f.duration))
    missed = [(what, dead) for what, dead in outages if removal >= dead]
    if not missed:
        return []
    what, _ = min(missed, key=lambda x: x[1])
    share = s.traffic.rps / s.fleet.instances
    fate = "are retried once elsewhere (redispatch)" if s.fleet.redispatch else "fail"
    return [Finding("no-health-check", "warning", "fleet.health_check",
                    f"the health check takes {span(removal)} ({hc.unhealthy_after} checks every {span(hc.interval)}) "
                    f"to take a dead instance out of rotation, no sooner than {what} is over: it never acts, and the "
                    f"~{share:,.0f} rps sent to each dead instance {fate}", {"removal_s": removal})]


def deadline_before_ready(c: Context) -> list[Finding]:
    s = c.s
    if s.release is None:
        return []
    deadline = s.strategy.progress_deadline
    if s.fleet.startup >= deadline:
        return [Finding("deadline-before-ready", "error", "strategy.progress_deadline",
                        f"progress_deadline {span(deadline)} is no longer than fleet.startup {span(s.fleet.startup)}: "
                        f"new instances are still starting when the deadline rolls every release back",
                        {"deadline_s": deadline, "startup_s": s.fleet.startup})]
    plan = c.plan
    if plan is not None and plan.interval is not None:
        late = [st for st in plan.stages if st.judged and st.bake > 0 and plan.interval >= st.bake + deadline]
        if late:
            return [Finding("deadline-before-ready", "error", "strategy.progress_deadline",
                            f"{late[0].label} needs a passed measurement after its bake begins, which can take "
                            f"analysis.interval {span(plan.interval)}, longer than its bake {span(late[0].bake)} + "
                            f"progress_deadline {span(deadline)}", {"deadline_s": deadline})]
    return []


RULES: dict[str, Rule] = {
    "no-rollback": no_rollback,
    "big-bang": big_bang,
    "analysis-blind": analysis_blind,
    "min-requests-unreachable": min_requests_unreachable,
    "false-rollbacks": false_rollbacks,
    "keep-old-before-detection": keep_old_before_detection,
    "release-at-peak": release_at_peak,
    "incompatible-migration": incompatible_migration,
    "capacity-below-peak": capacity_below_peak,
    "no-health-check": no_health_check,
    "deadline-before-ready": deadline_before_ready,
    "short-sub-windows": short_sub_windows,
    "unread-baseline": unread_baseline,
}
"""Every rule by id, in the order findings are listed."""
