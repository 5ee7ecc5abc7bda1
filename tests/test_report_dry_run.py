"""Dry-run metrics (Argo's dryRun) in a run's report and console summary: what they saw, that they never acted,
and when they would have rolled back, as the summary's dry_run_detected_at_s says (~6 s)."""
from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

from simlab.cli.main import main
from simlab.console import summary_lines
from simlab.dry_run import dry_run_seen
from simlab.report import write_report
from simlab.report.narrative import run_narrative
from simlab.simulation import simulate
from simlab.units import format_duration
from tests.helpers.scenarios import BASE, scenario

# The acting error_rate never fails a release that only adds latency; the dry-run latency_p99 does.
METRICS = [{"metric": "error_rate", "max": 0.02}, {"metric": "latency_p99", "max": "240ms", "dry_run": True}]
SLOWER = [{"kind": "latency", "add": "60ms"}]


def _dry_run_measurements(events: pd.DataFrame) -> list[tuple[float, str]]:
    return [(t, d["dry_run"]["status"]) for t, k, d in zip(events["time"], events["kind"], events["detail"])
            if k == "analysis" and "dry_run" in d]


@pytest.mark.parametrize("engine", ["fluid", "request"])
def test_a_dry_run_metric_that_would_have_rolled_back_is_reported_and_the_release_still_promoted(engine, tmp_path):
    result = simulate(scenario(duration="10m", **{"release.defects": SLOWER, "analysis.metrics": METRICS}),
                      seed=3, engine=engine)
    s = result.summary.to_dict()
    at = s["dry_run_detected_at_s"]
    assert s["outcome"] == "promoted" and s["analysis_failures"] == 0 and at is not None
    measured = _dry_run_measurements(result.events)
    failed = [t for t, status in measured if status == "failed"]
    start = float(result.events.loc[result.events["kind"] == "release_started", "time"].iloc[0])
    assert failed and failed[0] - start <= at

    result.write(tmp_path / "run")
    text = (write_report(tmp_path / "run", out_root=tmp_path / "reports") / "report.md").read_text()
    sentence = (f"Dry-run metrics (never acting): latency_p99 failed {len(failed)} of {len(measured)} measurements, "
                f"the first {format_duration(failed[0] - start)} after the release started; acting, it would have "
                f"rolled the release back {format_duration(at)} after it started (failure_limit 2); the release was "
                f"promoted all the same.")
    assert sentence in text
    assert "| dry-run (never acting) | latency_p99 failed" in text  # the summary table, as the console prints it


def test_a_dry_run_metric_that_passes_says_so_in_the_console_and_the_report(tmp_path, capsys, monkeypatch):
    data = copy.deepcopy(BASE)
    data.update(duration="10m")
    data["analysis"]["metrics"] = METRICS
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COLUMNS", "240")  # rich wraps the summary table to the terminal's width
    code = main(["run", str(path), "--engine", "fluid", "--out", str(tmp_path / "run"), "--report"])
    out = capsys.readouterr().out
    assert code == 0, out
    events = pd.read_csv(tmp_path / "run" / "events.csv")
    n = sum(k == "analysis" and '"dry_run"' in d for k, d in zip(events["kind"], events["detail"]))
    assert n > 3
    assert f"dry-run (never acting) │ latency_p99 passed all {n} measurements" in out
    text = (tmp_path / "run" / "report.md").read_text()  # --report writes it beside the results
    assert f"Dry-run metrics (never acting): latency_p99 passed all {n} measurements." in text
    assert "rolled the release back" not in text


def _events(dry: list[dict], *, detected: float | None = None) -> pd.DataFrame:
    """Analysis events every 30 s from a release at 100 s, the dry-run entries as given; a dry_run_failed event
    at the measurement whose count reached the limit."""
    rows = [(100.0, "release_started", {"strategy": "canary"})]
    for i, d in enumerate(dry):
        t = 130.0 + 30 * i
        rows.append((t, "analysis", {"status": "passed", "requests": 500, "failures": 0, "dry_run": d}))
        if d.get("failures") == 2 and d["status"] == "failed" and not any(k == "dry_run_failed" for _, k, _ in rows):
            rows.append((t, "dry_run_failed", {"metrics": "latency_p99"}))
    if detected is not None:
        rows.append((100.0 + detected, "detected", {"reason": "SLO burn-rate alert"}))
    return pd.DataFrame(rows, columns=["time", "kind", "detail"])


def _dry(status: str, failures: int, **values: float) -> dict:
    return {"status": status, "requests": 500, "failures": failures, **values}


def test_the_sentence_names_every_dry_run_metric_counts_inconclusive_ones_and_sets_the_time_against_detection():
    both = {"error_rate": 0.001, "latency_p99_ratio_to_baseline": 1.4}
    dry = [_dry("inconclusive", 0), _dry("failed", 1, **both), _dry("passed", 1, **both), _dry("failed", 2, **both)]
    summary = {"outcome": "rolled_back", "strategy": "canary", "detected_at_s": 150.0, "rollback_done_at_s": 200.0,
               "dry_run_detected_at_s": 120.0}
    said = " ".join(run_narrative(summary, _events(dry, detected=150.0)))
    assert ("Dry-run metrics (never acting): error_rate and latency_p99 (judged together) failed 2 of 4 "
            "measurements (1 inconclusive), the first 60.0s after the release started; acting, they would have "
            "rolled the release back 2.0m after it started (failure_limit 2), 30.0s before the release was "
            "detected.") in said
    # Too few failures to reach the limit; no dry-run metric at all: nothing said of them.
    short = {**summary, "dry_run_detected_at_s": None}
    seen = dry_run_seen(short, _events(dry[:3], detected=150.0))
    assert seen.text().endswith("failed 1 of 3 measurements (1 inconclusive), the first 60.0s after the release "
                                "started; too few to have rolled back")
    assert dry_run_seen(short, _events([])) is None
    assert not any("Dry-run" in line for line in run_narrative(short, _events([], detected=150.0)))
    assert dry_run_seen(short, _events([_dry("inconclusive", 0)])).text() == (
        "the dry-run metrics passed 0 of 1 measurements (1 inconclusive) and failed none")


def test_the_console_summary_has_a_dry_run_line_only_when_some_metric_is_dry_run():
    plain = simulate(scenario(duration="6m"), seed=1, engine="fluid")
    assert not any(label.startswith("dry-run") for label, _ in summary_lines(plain))
