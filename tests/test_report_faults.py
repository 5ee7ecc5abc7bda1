"""Faults you can see: timeline figures shade fault windows and mark detection apart from rollback start.

Checked on the figures' artists (found by gid), not on pixels: the run timeline (run and validate reports)
and the predicted-next-to-observed overlay (pair reports).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from simlab.report.figures_pair import draw_overlay
from simlab.report.figures_run import draw_timeline, fault_windows
from simlab.results import TIMELINE_COLUMNS, events_frame

ROOT = Path(__file__).resolve().parent.parent
RUN_S = 90
# What staging writes for its faults (simlab/staging/local_fleet.py) and what both engines write for zones.
FAULT_EVENTS = [
    (20.0, "dependency_failure_started", {"add_latency": 0.03, "error_rate": 0.02}),
    (30.0, "dependency_failure_ended", {}),
    (40.0, "zone_down", {"zone": 1, "instances": 2}),
    (55.0, "zone_up", {"zone": 1}),
    (70.0, "dependency_failure_started", {"add_latency": 0.0, "error_rate": 0.5}),  # never ended: to the run's end
]
CONTROLLER_EVENTS = [
    (10.0, "release_started", {"strategy": "canary"}),
    (33.0, "detected", {"reason": "analysis failed 2 times"}),
    (33.0, "rollback_started", {"reason": "analysis failed 2 times"}),  # the same second as detection
    (36.0, "rollback_finished", {}),
]


def timeline(n: int = RUN_S) -> pd.DataFrame:
    frame = pd.DataFrame({c: np.zeros(n) for c in TIMELINE_COLUMNS})
    frame["t"] = np.arange(n)
    frame["offered"] = 40
    frame["succeeded"] = 40
    frame["old_ready"] = 4
    frame["latency_p50_ms"], frame["latency_p99_ms"] = 20.0, 80.0
    return frame


def by_gid(fig, gid: str, ax=None) -> list:
    axes = [ax] if ax is not None else fig.axes
    return [a for axis in axes for a in axis.get_children() if a.get_gid() == gid]


def spans(fig, gid: str) -> set[tuple[float, float]]:
    return {(round(p.get_x(), 4), round(p.get_x() + p.get_width(), 4)) for p in by_gid(fig, gid)}


def legend_texts(fig) -> set[str]:
    return {t.get_text() for legend in fig.legends for t in legend.get_texts()}


def test_fault_windows_pair_each_fault_with_its_end_and_an_open_one_lasts_to_the_run_end():
    events = events_frame(FAULT_EVENTS)
    assert fault_windows(events, RUN_S) == [
        (20.0, 30.0, "dependency_failure_started", "dependency degraded (+30ms, 2% errors)"),
        (40.0, 55.0, "zone_down", "zone 1 down"),
        (70.0, float(RUN_S), "dependency_failure_started", "dependency degraded (50% errors)"),
    ]


def test_run_timeline_shades_fault_windows_on_every_panel_and_flags_detection_apart_from_rollback_start():
    fig = draw_timeline(timeline(), events_frame(FAULT_EVENTS + CONTROLLER_EVENTS))
    panels = fig.axes[:4]
    for ax in panels:
        assert len(by_gid(fig, "fault:zone_down", ax)) == 1
        assert len(by_gid(fig, "fault:dependency_failure_started", ax)) == 2
    minutes = lambda a, b: (round(a / 60, 4), round(b / 60, 4))  # noqa: E731  the run figure's axis is minutes
    assert spans(fig, "fault:zone_down") == {minutes(40, 55)}
    assert spans(fig, "fault:dependency_failure_started") == {minutes(20, 30), minutes(70, RUN_S)}
    assert all(p.zorder < 1 for p in by_gid(fig, "fault:zone_down"))  # behind the data and the event lines

    # Detection and rollback start fall in the same second: each has its own flag row above the top panel,
    # and rollback start's line is drawn over detection's, narrower and dash-dotted, so both stay visible.
    detected, = by_gid(fig, "flag:detected", panels[0])
    rollback, = by_gid(fig, "flag:rollback_started", panels[0])
    assert list(detected.get_xdata()) == list(rollback.get_xdata()) == [33 / 60]
    assert detected.get_ydata()[0] != rollback.get_ydata()[0] and detected.get_marker() != rollback.get_marker()
    assert detected.get_color() != rollback.get_color()
    for ax in panels:
        d_line, = by_gid(fig, "vline:detected", ax)
        r_line, = by_gid(fig, "vline:rollback_started", ax)
        assert r_line.zorder > d_line.zorder and r_line.get_linewidth() < d_line.get_linewidth()
        assert r_line.get_linestyle() != d_line.get_linestyle()
    assert {"detected", "rollback start", "zone 1 down", "dependency degraded (+30ms, 2% errors)",
            "dependency degraded (50% errors)"} <= legend_texts(fig)


def test_a_close_up_window_keeps_only_the_faults_it_overlaps():
    fig = draw_timeline(timeline(), events_frame(FAULT_EVENTS + CONTROLLER_EVENTS), window=(0.0, 35.0))
    assert spans(fig, "fault:dependency_failure_started") == {(round(20 / 60, 4), round(30 / 60, 4))}
    assert by_gid(fig, "fault:zone_down") == []


def test_a_simulated_zone_outage_is_shaded_where_the_engine_says_it_happened():
    from simlab.scenario.loading import staging_scenario, validate_scenario
    from simlab.simulation import simulate

    data = yaml.safe_load((ROOT / "experiments" / "staging-failures.yaml").read_text())
    data["release"]["defects"] = [{"kind": "error_rate", "rate": 0.3}]  # a bad release: detected, rolled back
    result = simulate(staging_scenario(validate_scenario(data)), seed=17, engine="request")
    events = result.events
    down = float(events.loc[events["kind"] == "zone_down", "time"].iloc[0])
    up = float(events.loc[events["kind"] == "zone_up", "time"].iloc[0])
    assert (down, up) == (45.0, 60.0)  # the scenario's zone_outage: at 45s for 15s
    fig = draw_timeline(result.timeline, events)
    assert spans(fig, "fault:zone_down") == {(round(down / 60, 4), round(up / 60, 4))}
    assert by_gid(fig, "flag:detected") and by_gid(fig, "flag:rollback_started")


@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_a_simulated_dependency_failure_is_logged_and_shaded_as_staging_logs_it(engine):
    """Both engines log the scenario's dependency failures as staging does when it injects them (kind and detail),
    so a simulated run's timeline shades the same window; one that outlasts the run has no end."""
    from simlab.scenario.loading import validate_scenario
    from simlab.simulation import simulate

    data = yaml.safe_load((ROOT / "experiments" / "staging-failures.yaml").read_text())
    data["failures"] = [{"kind": "dependency", "at": "20s", "duration": "10s", "add_latency": "30ms", "error_rate": 0.02},
                        {"kind": "dependency", "at": "50s", "duration": "1h", "error_rate": 0.01}]
    data["duration"] = "70s"
    result = simulate(validate_scenario(data), seed=3, engine=engine)
    ev = result.events[result.events["kind"].str.startswith("dependency_failure")]
    assert [(t, k, d) for t, k, d in zip(ev["time"], ev["kind"], ev["detail"])] == [
        (20.0, "dependency_failure_started", {"add_latency": 0.03, "error_rate": 0.02}),
        (30.0, "dependency_failure_ended", {}),
        (50.0, "dependency_failure_started", {"add_latency": 0.0, "error_rate": 0.01})]
    windows = fault_windows(result.events, 70.0)
    assert [(a, b, label) for a, b, _, label in windows if "dependency" in label] == [
        (20.0, 30.0, "dependency degraded (+30ms, 2% errors)"), (50.0, 70.0, "dependency degraded (1% errors)")]
    fig = draw_timeline(result.timeline, result.events)
    assert spans(fig, "fault:dependency_failure_started") == {(round(20 / 60, 4), round(30 / 60, 4)),
                                                               (round(50 / 60, 4), round(70 / 60, 4))}


def test_pair_overlay_shades_observed_faults_filled_and_predicted_hatched_and_marks_rollback_start():
    predicted = events_frame(CONTROLLER_EVENTS + FAULT_EVENTS[2:4])  # the simulator writes zones only
    observed = events_frame([(t + 1.0, k, d) for t, k, d in CONTROLLER_EVENTS] + FAULT_EVENTS)
    fig = draw_overlay(timeline(), predicted, 10.0, timeline(), observed, 11.0)
    # seconds after each run's release: the predicted release at 10 s, the observed one at 11 s
    assert spans(fig, "fault:zone_down:hatched") == {(30.0, 45.0)}
    assert spans(fig, "fault:zone_down") == {(29.0, 44.0)}
    assert spans(fig, "fault:dependency_failure_started") == {(9.0, 19.0), (59.0, RUN_S - 11.0)}
    assert all(p.get_hatch() == "//" and p.get_facecolor()[3] == 0 for p in by_gid(fig, "fault:zone_down:hatched"))
    top = fig.axes[0]
    for run in ("predicted", "observed"):
        detected, = by_gid(fig, f"flag:detected:{run}", top)
        rollback, = by_gid(fig, f"flag:rollback_started:{run}", top)
        assert list(detected.get_xdata()) == list(rollback.get_xdata()) == [23.0]
        assert detected.get_ydata()[0] != rollback.get_ydata()[0]
        d_line = by_gid(fig, f"vline:detected:{run}", top)[0]
        r_line = by_gid(fig, f"vline:rollback_started:{run}", top)[0]
        assert r_line.zorder > d_line.zorder and r_line.get_linewidth() < d_line.get_linewidth()
    hollow = by_gid(fig, "flag:detected:predicted", top)[0]
    assert hollow.get_markerfacecolor() == "none"
    assert {"rollback start", "zone 1 down"} <= legend_texts(fig)


def test_a_canary_baseline_is_drawn_as_its_own_instances_and_traffic_in_both_figures():
    """A canary with `strategy.baseline` runs old-version instances apart from the stable fleet: the run figure
    stacks them as their own band (not hidden in "old") and steps their traffic share; the pair figure draws
    their ready count for both runs. Read off the artists: the band's top edge is old + baseline ready."""
    from simlab.scenario import validate_scenario
    from simlab.simulation import simulate

    scenario = validate_scenario({
        "name": "baseline-figure", "duration": "6m", "fleet": {"instances": 6, "service_time": "20ms", "startup": "10s"},
        "traffic": {"rps": 60}, "release": {"at": "1m"},
        "strategy": {"kind": "canary", "baseline": True, "steps": [{"weight": 20, "bake": "2m"}, {"weight": 100}]},
        "analysis": {"interval": "30s", "metrics": [{"metric": "error_rate", "max": 0.05}]}})
    run = simulate(scenario, seed=3, engine="fluid")
    tl = run.timeline
    assert tl["baseline_ready"].max() >= 1
    fig = draw_timeline(tl, run.events)
    weight, = by_gid(fig, "baseline:weight")
    assert max(weight.get_ydata()) == pytest.approx(tl["baseline_weight"].max())
    band, = by_gid(fig, "ready:baseline")
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(float((tl["old_ready"] + tl["baseline_ready"]).max()))
    assert {"baseline ready", "old ready", "new ready"} <= {t.get_text() for t in fig.axes[3].get_legend().get_texts()}
    pair = draw_overlay(tl, run.events, 60.0, tl, run.events, 60.0)
    assert len(by_gid(pair, "ready:baseline:predicted")) == len(by_gid(pair, "ready:baseline:observed")) == 1
    plain = draw_timeline(simulate(scenario.model_copy(update={"strategy": scenario.strategy.model_copy(
        update={"baseline": False})}), seed=3, engine="fluid").timeline, run.events)
    assert not by_gid(plain, "ready:baseline") and not by_gid(plain, "baseline:weight")
