"""Calibrate a scenario from its staging: measure (live.py) or read recordings (recorded.py), fit, write a fragment.

`calibrate_live` drives a running local staging (one is started in the state
directory and stopped after if none runs): overhead, service-time latencies
at low utilisation, stepped load on one instance, instance start-up.
`calibrate_recorded` reads `deploy --load --out` (or `staging load --out`)
directories. Both return the fragment (fragment.py) as a mapping.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from simlab import dists
from simlab.calibration import fitting, fragment, live
from simlab.calibration.recorded import read_recorded
from simlab.errors import StagingError
from simlab.scenario import Scenario
from simlab.scenario.loading import staging_scenario
from simlab.staging import health
from simlab.staging.state import StateFileError
from simlab.staging.supervisor import Staging

LEVELS = (0.5, 0.8, 0.95, 1.1, 1.3)
"""Stepped load, as fractions of one instance's modelled capacity (workers / fitted mean service time)."""

Say = Callable[[str], None]


def _when() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _fit_line(fit: fitting.ServiceFit, path: str) -> str:
    best = fit.best
    return (f"service time: {fit.chosen} (mean {best.mean * 1e3:.2f}ms, p99 {best.p99 * 1e3:.2f}ms) from "
            f"{fit.n} latencies; {fit.why}\n"
            f"written as users see it, {path} ({fit.path_mean * 1e3:.2f}ms on average): mean "
            f"{fit.seen_mean * 1e3:.2f}ms, p99 {fit.seen_p99 * 1e3:.2f}ms")


def _open_or_start(raw: Scenario, staged: Scenario, state_dir: Path, say: Say) -> tuple[Staging, bool]:
    """The staging running in `state_dir`, or one started there for the calibration (True: stop it after)."""
    try:
        st = Staging.open(state_dir)
    except StateFileError:
        raise
    except StagingError:
        st = None
    if st is not None and not health.nothing_runs(st):
        health.refuse_if_damaged(st, state_dir)
        if st.scenario is None:
            raise StagingError(f"the staging in {st.dir} has no scenario simlab can read (another simlab version "
                               f"wrote it): run `simlab staging down --dir {state_dir}`, then calibrate again")
        if st.scenario is not None and st.scenario.name != staged.name:
            say(f"note: the staging in {st.dir} runs scenario {st.scenario.name!r}; calibrating what it serves "
                f"for {raw.name!r}")
        return st, False
    say(f"no staging runs in {state_dir}: starting one for the calibration")
    return Staging.up(staged, state_dir), True


def calibrate_live(raw: Scenario, state_dir: str | Path, *, samples: int = 4000, level_seconds: float = 2.0,
                   startups: int = 2, progress: Say | None = None) -> dict:
    """Measure the staging in `state_dir` and return the fragment for `raw` (a scenario as loaded)."""
    say = progress or (lambda line: None)
    staged = staging_scenario(raw)
    st, owned = _open_or_start(raw, staged, Path(state_dir), say)
    try:
        served = st.scenario or staged
        overhead = live.measure_overhead(st)
        o = overhead.summary()
        say(f"overhead: /healthz p50 {o['client_p50_ms']:.3f}ms straight at an instance, "
            f"{o['balancer_p50_ms']:+.3f}ms through HAProxy ({o['samples']} requests)")
        configured_mean = dists.from_spec(served.fleet.service_time).mean
        latencies = live.sample_latencies(st, samples, configured_mean, served.fleet.workers)
        fit = fitting.fit_service_time(latencies, overhead.direct, overhead.via_balancer)
        say(_fit_line(fit, "plus a request's way through HAProxy"))
        capacity = _capacity(st, served, fit, level_seconds, say)
        timed = live.time_startup(st, count=startups)
        startup = fragment.startup_record(served, list(timed.rotation), list(timed.ready))
        say(f"start-up: ready {startup['to_ready_s']:.2f}s, in rotation {startup['to_rotation_s']:.2f}s after start "
            f"(health checks {startup['health_check_delay_s']:.2f}s, modelled "
            f"{startup['modelled_health_check_delay_s']:.2f}s): fleet.startup {startup['startup_s']:.2f}s "
            f"(configured {startup['configured_startup_s']:g}s)")
    finally:
        if owned:
            st.down()
    evidence = {"measured": _when(), "source": f"live: the staging in {Path(state_dir)}",
                "overhead": o}
    return fragment.build(raw, staged, fit, evidence, capacity, startup)


def _capacity(st: Staging, served: Scenario, fit: fitting.ServiceFit, seconds: float, say: Say) -> dict:
    mean_service = fit.best.mean
    modelled = served.fleet.workers / mean_service
    port = live.serving_ports(st)[0]
    levels = live.step_load(port, [f * modelled for f in LEVELS], seconds)
    threshold = served.slo.latency_threshold
    breaks_at, how = live.breaking_point(levels, threshold)
    top = max(levels, key=lambda lv: lv.ok_rps)
    saturated = any(lv.failed_share > 0.01 or lv.ok_rps < 0.95 * lv.offered_rps for lv in levels)
    record = fragment.capacity_record(served, mean_service, [lv.row() for lv in levels], top.ok_rps, saturated,
                                      breaks_at, how, written_mean=fit.seen_mean)
    said = ", ".join(f"{lv.offered_rps:.0f} rps p99 {lv.p99_s * 1e3:.0f}ms"
                     + (f" {lv.failed_share:.0%} failed" if lv.failed_share else "") for lv in levels)
    say(f"stepped load on one instance: {said}")
    say(f"capacity: {'' if saturated else 'at least '}{top.ok_rps:.0f} rps per instance (modelled {modelled:.0f}); "
        f"p99 passes {threshold * 1e3:g}ms at "
        + (f"{breaks_at:.0f} rps ({how})" if breaks_at is not None else f"no rate tried ({how})"))
    return record


def calibrate_recorded(raw: Scenario, dirs: list[Path], progress: Say | None = None) -> dict:
    """Fit from recorded staging runs and return the fragment for `raw`."""
    say = progress or (lambda line: None)
    staged = staging_scenario(raw)
    rec = read_recorded(dirs)
    left = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in rec.left_out.items() if v)
    say(f"read {len(rec.latencies)} latencies of undisturbed stable requests from {len(dirs)} run(s)"
        + (f" (left out: {left})" if left else ""))
    fit = fitting.fit_service_time(rec.latencies)
    say(_fit_line(fit, "plus the round trip fitted as a shift"))
    startup = fragment.startup_record(staged, list(rec.rotation)) if rec.rotation else None
    if startup is not None:
        say(f"start-up: in rotation {startup['to_rotation_s']:.2f}s after start ({len(rec.rotation)} rollout "
            f"start(s), 1 s resolution): fleet.startup {startup['startup_s']:.2f}s")
    evidence = {"measured": _when(), "source": "recorded: " + ", ".join(rec.runs), "left_out": rec.left_out,
                "overhead": "not measured from recordings: the round trip through Locust and HAProxy is in the "
                            "fitted time, as a shift (service_time.path_overhead_ms)"}
    return fragment.build(raw, staged, fit, evidence, None, startup)
