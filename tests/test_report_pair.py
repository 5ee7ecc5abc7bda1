"""The pair report: a prediction next to an observation, key by key, decision by decision, on one time axis.

The prediction is a real simulated run; the observation is a copy of it edited
by hand the way staging typically differs (more failures, later detection, an
extra inconclusive analysis, another engine), so every expected number is
known from the edit.
"""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from simlab import SUMMARY_KEYS
from simlab.cli import main
from simlab.report import build_report, write_pair_report
from simlab.report.pair import relative_text
from tests.helpers.reports import browser_check, png_size, write_compare_dir

DELAY = 2.0  # seconds the "observed" controller lags the prediction after the release
EXTRA_FAILED = 39


@pytest.fixture
def predicted_dir(bad_canary_dir):
    """The prediction: the session's simulated canary of a bad release (rolled back)."""
    return bad_canary_dir


def perturbed_copy(predicted, target, **summary_changes):
    """The predicted run as staging might have observed it: edited summary, timeline and events."""
    shutil.copytree(predicted, target)
    summary = json.loads((target / "summary.json").read_text())
    summary.update({"engine": "staging", "failed": summary["failed"] + EXTRA_FAILED,
                    "bad": summary["bad"] + EXTRA_FAILED, "detected_at_s": summary["detected_at_s"] + DELAY,
                    "rollback_done_at_s": summary["rollback_done_at_s"] + DELAY, "latency_p99_ms": 230.0})
    summary.update(summary_changes)
    (target / "summary.json").write_text(json.dumps(summary))
    events = pd.read_csv(target / "events.csv")
    release = float(events.loc[events["kind"] == "release_started", "time"].iloc[0])
    events.loc[events["time"] > release, "time"] += DELAY
    inconclusive = {"time": release + 1.5, "kind": "analysis",
                    "detail": json.dumps({"status": "inconclusive", "requests": 0, "failures": 0})}
    events = pd.concat([events, pd.DataFrame([inconclusive])]).sort_values("time", kind="stable")
    events.to_csv(target / "events.csv", index=False)
    timeline = pd.read_csv(target / "timeline.csv")
    timeline.loc[timeline["t"].between(release, release + 30), "failed"] += 1
    timeline.to_csv(target / "timeline.csv", index=False)
    return target


@pytest.fixture(scope="module")
def observed_dir(bad_canary_dir, tmp_path_factory):
    return perturbed_copy(bad_canary_dir, tmp_path_factory.mktemp("pair") / "observed")


def _table(report, heading):
    return next(s.table for s in report.sections if s.heading == heading)


def _text(report):
    return " ".join(p for s in report.sections for p in s.paragraphs)


def test_every_summary_key_is_a_row_with_both_values_and_their_difference(predicted_dir, observed_dir):
    p = json.loads((predicted_dir / "summary.json").read_text())
    report = build_report(observed_dir, predicted=predicted_dir)
    table = _table(report, "Summary, key by key")
    assert table.columns == ["key", "predicted", "observed", "difference", "relative"]
    assert [row[0] for row in table.rows] == list(SUMMARY_KEYS)
    rows = {row[0]: row[1:] for row in table.rows}
    failed = p["failed"]
    assert rows["failed"] == [f"{failed:,}", f"{failed + EXTRA_FAILED:,}", f"+{EXTRA_FAILED}",
                              f"{round(100 * EXTRA_FAILED / failed):+d}%"]
    assert rows["detected_at_s"] == [f"{p['detected_at_s']:g}", f"{p['detected_at_s'] + DELAY:g}", "+2",
                                     f"{round(100 * DELAY / p['detected_at_s']):+d}%"]
    assert rows["requests"] == [f"{p['requests']:,}", f"{p['requests']:,}", "0", "0%"]
    assert rows["latency_p99_ms"][1] == "230"
    assert rows["engine"] == ["request", "staging", "differs", ""]
    assert rows["outcome"] == ["rolled_back", "rolled_back", "same", ""]
    assert rows["deploy_duration_s"] == ["-", "-", "", ""]  # rolled back: neither run has one


def test_relative_differences_read_as_signed_percent():
    assert [relative_text(*pair) for pair in [(205, 244), (60, 62), (200, 201), (10, 5), (0, 0), (0, 3)]] == [
        "+19%", "+3%", "+0.5%", "-50%", "0%", "-"]


def test_decisions_side_by_side_relative_to_the_release(predicted_dir, observed_dir):
    table = _table(build_report(observed_dir, predicted=predicted_dir), "Controller decisions")
    assert table.columns == ["predicted decision", "at", "observed decision", "at", "match"]
    rows = [tuple(r) for r in table.rows]
    assert rows[:3] == [
        ("release started (canary)", "+0.0s", "release started (canary)", "+0.0s", "same, +0.0s"),
        ("weight 0%", "+0.0s", "weight 0%", "+0.0s", "same, +0.0s"),
        ("step 0 started (10%)", "+0.0s", "step 0 started (10%)", "+0.0s", "same, +0.0s"),
    ]
    assert rows[3] == ("", "", "analysis inconclusive", "+1.5s", "only observed")
    later = rows[4:]
    assert [r[0] for r in later] == [r[2] for r in later] == [
        "weight 10%", "analysis failed", "analysis failed", "detected: analysis failed 2 times",
        "rollback started: analysis failed 2 times", "weight 0%", "rollback finished"]
    assert {r[4] for r in later} == {"same, +2.0s"}
    assert later[0][1] == "+12.0s" and later[0][3] == "+14.0s"


def test_narrative_says_the_numbers(predicted_dir, observed_dir):
    p = json.loads((predicted_dir / "summary.json").read_text())
    text = _text(build_report(observed_dir, predicted=predicted_dir))
    failed = p["failed"]
    assert (f"The simulation predicted {failed} failed requests, staging observed {failed + EXTRA_FAILED} "
            f"({round(100 * EXTRA_FAILED / failed):+d}%)") in text
    assert f"detection {p['detected_at_s']:.1f}s vs {p['detected_at_s'] + DELAY:.1f}s after the release" in text
    assert ("the same 8 rollout moves in the same order, with 2 of 3 analyses alike "
            "(only staging: analysis inconclusive at +1.5s)") in text
    assert ("Both runs ended rolled back: rolled back 80.0s after the release in the simulation, "
            "82.0s on staging") in text
    assert f"p99 latency of successful requests: {p['latency_p99_ms']:.0f} ms predicted, 230 ms observed" in text


def test_a_run_next_to_itself_makes_the_same_decisions_in_the_same_order(predicted_dir):
    text = _text(build_report(predicted_dir, predicted=predicted_dir))
    p = json.loads((predicted_dir / "summary.json").read_text())
    assert f"predicted {p['failed']} failed requests, staging observed {p['failed']} (the same)" in text
    assert "the same 10 controller decisions in the same order" in text


def test_different_outcomes_are_said_plainly(predicted_dir, tmp_path):
    observed = perturbed_copy(predicted_dir, tmp_path / "promoted", outcome="promoted", detected_at_s=None,
                              deploy_duration_s=400.0)
    report = build_report(observed, predicted=predicted_dir)
    text = _text(report)
    assert "The outcomes differ: the simulation predicted rolled_back, staging promoted." in text
    assert "the simulation detected the release at 60.0s, staging did not" in text
    rows = {row[0]: row[1:] for row in _table(report, "Summary, key by key").rows}
    assert rows["outcome"][2] == "differs" and rows["detected_at_s"] == ["60", "-", "-", ""]


def test_write_pair_report_writes_html_markdown_and_the_overlay(predicted_dir, observed_dir, tmp_path):
    out = write_pair_report(predicted_dir, observed_dir, out_root=tmp_path, name="canary-pair")
    assert out == tmp_path / "canary-pair"
    assert sorted(p.name for p in out.iterdir()) == ["overlay.png", "report.html", "report.md"]
    width, height = png_size((out / "overlay.png").read_bytes())
    assert width >= 1000 and height >= 800
    md = (out / "report.md").read_text()
    assert md.startswith("# simlab pair: small, predicted vs observed")
    assert "| failed |" in md and "![Predicted (dashed) and observed (solid)" in md


def test_pair_report_renders_in_chromium_and_its_figure_loads(predicted_dir, observed_dir, tmp_path):
    out = write_pair_report(predicted_dir, observed_dir, out_root=tmp_path / "reports")
    found = browser_check(out / "report.html", tmp_path)
    assert found["title"].startswith("simlab pair")
    assert found["images"] == 1 and found["broken"] == []
    assert found["widths"][0] >= 1000 and found["height"] > 1000


def test_cli_report_with_predicted_writes_the_pair_report(predicted_dir, observed_dir, tmp_path, capsys):
    code = main(["report", str(observed_dir), "--predicted", str(predicted_dir), "--out-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"pair report of {observed_dir} (observed) next to {predicted_dir} (predicted):" in out
    assert (tmp_path / "observed" / "report.html").is_file() and "overlay.png" in out


def test_cli_predicted_that_is_not_a_run_exits_2_naming_it(observed_dir, tmp_path, capsys):
    compare = write_compare_dir(tmp_path / "cmp")
    assert main(["report", str(observed_dir), "--predicted", str(compare), "--out-root", str(tmp_path)]) == 2
    assert f"predicted {compare} holds a compare; a pair report puts one run next to another" in capsys.readouterr().err


def test_decisions_interleaved_differently_still_match_and_clock_jitter_is_no_difference(predicted_dir, tmp_path):
    """Staging's weight change landing after an analysis the simulation ran after it is the same decisions."""
    observed = tmp_path / "late-weight"
    shutil.copytree(predicted_dir, observed)
    summary = json.loads((observed / "summary.json").read_text())
    summary["rollback_done_at_s"] += 0.0001278  # wall-clock jitter of a real deploy
    (observed / "summary.json").write_text(json.dumps(summary))
    events = pd.read_csv(observed / "events.csv")
    first_analysis = float(events.loc[events["kind"] == "analysis", "time"].iloc[0])
    events.loc[(events["kind"] == "weight") & events["detail"].str.contains("10.0"), "time"] = first_analysis + 1
    events.sort_values("time", kind="stable").to_csv(observed / "events.csv", index=False)
    report = build_report(observed, predicted=predicted_dir)
    assert "the same 8 rollout moves and 2 analyses, each in the same order, interleaved differently in time" \
        in _text(report)
    assert {row[4] for row in _table(report, "Controller decisions").rows} == {"same, +0.0s", "same, +19.0s"}
    rows = {row[0]: row[1:] for row in _table(report, "Summary, key by key").rows}
    assert rows["rollback_done_at_s"] == ["80", "80", "0", "0%"]
