"""analysis-quality: false rollbacks against an exact computation, detection rising with severity, false rollbacks
falling as the threshold rises, the command and its report.

The world of the exact test: a blue-green release switched at T (all traffic to the new version), analysed every
minute on one-minute windows while the old fleet is kept 10 minutes; a dependency fails 0.8% of every request the
whole run, the release itself is good. Each window's requests are Poisson (20 rps x its seconds of new-version
traffic) and its errors binomial given them, windows are disjoint, so they are independent. The first window
reaches back before T (visible_until(T + 60) - 60 < T: at most 30 s of new traffic, 600 requests expected) and
is inconclusive below min_requests 1100; the other nine are full 60 s windows.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from simlab.experiment.quality import parse_severities, run_quality, verdicts
from simlab.linter import noise
from simlab.report.formatting import pct
from simlab.errors import ScenarioError
from simlab.scenario import validate_scenario

RPS, BACKGROUND, LIMIT, MIN_REQUESTS = 20, 0.008, 0.01, 1100
WORLD = {
    "name": "background-errors", "duration": "14m", "fleet": {"instances": 4, "service_time": "20ms"},
    "traffic": {"rps": RPS}, "release": {"at": "1m"},
    "strategy": {"kind": "blue_green", "warmup": 0, "keep_old": "10m"},
    "analysis": {"interval": "1m", "failure_limit": 2, "min_requests": MIN_REQUESTS,
                 "metrics": [{"metric": "error_rate", "max": LIMIT}]},
    "failures": [{"kind": "dependency", "at": 0, "duration": "14m", "error_rate": BACKGROUND}],
}


def window_failure(seconds: float) -> float:
    """P(a window fails): N ~ Poisson(rate x seconds) requests, X ~ Bin(N, p) errors, failed iff
    N >= min_requests and X / N > limit; the linter's computation (simlab.linter.noise), which the hand-checked
    cases below hold to its definition."""
    return noise.window_failure(RPS * seconds, BACKGROUND, LIMIT, MIN_REQUESTS)


rollback_probability = noise.rollback_probability


def test_the_exact_computation_on_hand_checked_cases():
    assert rollback_probability([0.5, 0.5], 2, "cumulative") == pytest.approx(0.25)
    assert rollback_probability([0.5] * 3, 2, "cumulative") == pytest.approx(0.5)  # 1 - 1/8 - 3/8
    assert rollback_probability([0.5] * 3, 2, "consecutive") == pytest.approx(0.375)  # FF?, ?FF: 2/8 + 1/8
    assert noise.window_failure(1200, 0.0, LIMIT, MIN_REQUESTS) == 0.0 and window_failure(30) == pytest.approx(0.0, abs=1e-12)
    # a window of exactly 1100 requests: binomial tail above 11 errors
    assert window_failure(55) > binom.sf(11, 1100, BACKGROUND) * 0.3


@pytest.fixture(scope="module")
def background():
    """320 runs of the good release, cumulative and consecutive counting (about 20 s)."""
    variants = [{"name": counting, "set": {"analysis.failure_counting": counting}}
                for counting in ("cumulative", "consecutive")]
    return run_quality(validate_scenario(WORLD), variants=variants, severities=[], runs=320, engine="fluid",
                       executor="serial")


@pytest.mark.parametrize("counting", ["cumulative", "consecutive"])
def test_false_rollbacks_of_a_threshold_match_the_exact_binomial_computation(background, counting):
    runs = background.runs[background.runs["variant"] == counting]
    switched = 60.0 + runs["deploy_duration_s"]  # blue-green is promoted at the switch
    assert switched.between(61, 120).all()
    q = [window_failure(60.0)] * 9  # measurements 2..10 after the switch; the first is inconclusive
    exact = rollback_probability(q, 2, counting)
    row = background.table.set_index("variant").loc[counting]
    assert row["runs"] == 320
    assert row["p_rollback_lo"] <= exact <= row["p_rollback_hi"], (counting, exact, row["p_rollback"])
    assert 0.2 < exact < 0.8  # a rate the test can tell apart from its neighbours, not a trivial 0 or 1
    first = runs["analysis_inconclusive"]
    assert (first >= 1).all()  # the partial first window, in every run


def test_false_rollbacks_fall_as_the_threshold_rises_and_detection_rises_with_severity():
    """Rates over a small grid, same seeds for every variant and release (run by run on a blue-green release:
    test_a_higher_threshold_never_rolls_back_a_run_a_lower_one_kept)."""
    limits = (0.008, 0.01, 0.012, 0.015)
    variants = [{"name": f"max {m}", "set": {"analysis.metrics": [{"metric": "error_rate", "max": m}]}} for m in limits]
    q = run_quality(validate_scenario(WORLD), variants=variants, severities="error_rate=0.002,0.005,0.02", runs=64,
                    engine="fluid", executor="serial")
    table = q.table.set_index(["variant", "release"])["p_rollback"]
    good = [table[(f"max {m}", "good")] for m in limits]
    assert good[0] > good[-1] and good == sorted(good, reverse=True)
    for m in limits:
        detection = [table[(f"max {m}", r)] for r in ("error_rate=0.002", "error_rate=0.005", "error_rate=0.02")]
        assert detection == sorted(detection), (m, detection)
    assert table[("max 0.015", "error_rate=0.02")] > table[("max 0.015", "error_rate=0.002")] + 0.5
    assert set(q.table["defect"]) == {"none", "error_rate"}
    assert (q.table.loc[q.table["release"] == "good", "added_bad_mean"].abs() < 50).all()


# -- the grid, verdicts, the command --------------------------------------------------------------------------

def test_severities_read_as_written_and_bad_ones_name_themselves():
    grid = parse_severities(["error_rate=0.002,0.01", "latency=+10ms,+200ms"])
    assert [(s.kind, s.value, s.label) for s in grid] == [
        ("error_rate", 0.002, "error_rate=0.002"), ("error_rate", 0.01, "error_rate=0.01"),
        ("latency", 0.01, "latency=+10ms"), ("latency", 0.2, "latency=+200ms")]
    assert parse_severities("latency=x1.5")[0].defect == {"kind": "latency", "multiplier": 1.5}
    assert parse_severities("crash=5m")[0].defect == {"kind": "crash", "mtbf": 300.0}
    for bad, words in [("error_rate=2", "at most 1, found '2'"), ("oops=1", "KIND one of"),
                       ("latency=10ms", "added latency (+50ms)"), ("latency=+10ms,x2", "one form"),
                       ("error_rate=0.1,0.1", "once")]:
        with pytest.raises(ScenarioError, match=words.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
            parse_severities(bad)


def test_a_scenario_without_a_release_has_nothing_to_judge():
    with pytest.raises(ScenarioError, match="expected a `release:`"):
        run_quality(validate_scenario({**WORLD, "release": None}), runs=1)


def test_verdicts_name_the_mildest_severity_caught_and_the_target():
    rows = [("a", "good", "none", math.nan, 0.02, 0.0, 0.07), ("a", "error_rate=0.002", "error_rate", 0.002, 0.5, 0.4, 0.6),
            ("a", "error_rate=0.01", "error_rate", 0.01, 0.97, 0.9, 0.99), ("a", "error_rate=0.05", "error_rate", 0.05, 1.0, 0.95, 1.0),
            ("b", "good", "none", math.nan, 0.3, 0.2, 0.4), ("b", "error_rate=0.002", "error_rate", 0.002, 0.96, 0.9, 0.99),
            ("b", "error_rate=0.01", "error_rate", 0.01, 0.9, 0.8, 0.95), ("b", "error_rate=0.05", "error_rate", 0.05, 1.0, 0.95, 1.0)]
    table = pd.DataFrame(rows, columns=["variant", "release", "defect", "severity", "p_rollback", "p_rollback_lo",
                                        "p_rollback_hi"])
    a, b = verdicts(table, 0.05, 0.95, catch="error_rate=0.01")
    assert a["catches"]["error_rate"]["from"] == "error_rate=0.01" and a["meets"]
    # b catches 0.2% but misses 1%: the grid above its mildest catch must hold all the way up
    assert b["catches"]["error_rate"]["from"] == "error_rate=0.05" and not b["false_rollback_ok"] and not b["meets"]


def test_the_command_prints_the_table_and_the_verdict_and_writes_a_report(tmp_path, capsys):
    from simlab.cli.main import main

    scenario = tmp_path / "world.yaml"
    scenario.write_text(json.dumps(WORLD))
    out = tmp_path / "quality"
    code = main(["analysis-quality", str(scenario), "--severity", "error_rate=0.05", "--runs", "8",
                 "--executor", "serial", "--out", str(out), "--report", "--catch", "error_rate=0.05", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "error_rate=0.05" in printed and "Target (false rollbacks ≤ 5% and catches error_rate=0.05" in printed
    assert {p.name for p in out.iterdir()} >= {"quality.csv", "runs.parquet", "meta.json", "report.html", "report.md",
                                              "quality.png"}
    report = (out / "report.md").read_text()
    assert "rolls back" in report and "false rollback" in report and "![" in report
    assert main(["report", str(out), "--out-root", str(tmp_path / "again")]) == 0  # `simlab report` knows the kind
    assert (tmp_path / "again" / "quality" / "report.html").is_file()
    capsys.readouterr()

    code = main(["analysis-quality", str(scenario), "--severity", "error_rate=0.05", "--runs", "4", "--executor",
                 "serial", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["release"] for r in data["table"]] == ["good", "error_rate=0.05"]
    assert data["verdicts"][0]["variant"] == "scenario"


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    from simlab.cli.main import main

    scenario = tmp_path / "world.yaml"
    scenario.write_text(json.dumps(WORLD))
    assert main(["analysis-quality", str(scenario), "--severity", "error_rate=abc", "--runs", "2"]) == 2
    assert "--severity error_rate: expected" in capsys.readouterr().err
    assert main(["analysis-quality", str(scenario), "--catch", "error_rate=0.3", "--runs", "2"]) == 2
    assert "--catch: expected one of the severities" in capsys.readouterr().err


def test_the_benchmark_runs_its_grid_at_a_few_runs(capsys):
    """benchmarks/analysis_quality.py as the README runs it, with 4 runs instead of 200 (about 3 s)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "analysis_quality.py"
    spec = importlib.util.spec_from_file_location("analysis_quality_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--runs", "4", "--executor", "serial"])
    assert out["simulated_runs"] == 3 * 7 * 4 + 4
    assert {"threshold-1%", "threshold-2%x3", "mann-whitney"} <= set(out)
    assert json.loads(capsys.readouterr().out)["wall_s"] == out["wall_s"]


# -- a variants file through the public function and the command: the table, common random numbers, the report --

# The dependency fails 0.8% of requests for the first 8 minutes only: a good release is rolled back by that
# scheduled failure or not at all (no errors after it, so nothing else can cross a 1% threshold).
FAILURE = {"kind": "dependency", "at": 0, "duration": "8m", "error_rate": BACKGROUND}
SCHEDULED = {**WORLD, "failures": [FAILURE]}
VARIANTS_YAML = """\
# variants of the analysis, as docs/scenario.md describes them for --variants (a variants file as for compare)
variants:
  - name: max 1%
    description: the scenario's own threshold
    set:
      analysis.metrics: [{metric: error_rate, max: 0.01}]
  - name: max 1% again
    description: the same analysis under another name
    set:
      analysis.metrics: [{metric: error_rate, max: 0.01}]
  - name: max 1.2%
    set:
      analysis.metrics: [{metric: error_rate, max: 0.012}]
  - name: max 1.5%
    set:
      analysis.metrics: [{metric: error_rate, max: 0.015}]
"""
NAMES = ["max 1%", "max 1% again", "max 1.2%", "max 1.5%"]
SEVERITIES = ["error_rate=0.005,0.05"]
RELEASES = ["good", "error_rate=0.005", "error_rate=0.05"]
N = 60
TARGET = {"max_false_rollback": 0.1, "min_detection": 0.95, "catch": "error_rate=0.05"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("variants")
    (d / "world.yaml").write_text(json.dumps(SCHEDULED))
    (d / "variants.yaml").write_text(VARIANTS_YAML)
    return d


@pytest.fixture(scope="module")
def public(files):
    """`simlab.analysis_quality` as a notebook calls it: the scenario and the variants file by path (about 4 s)."""
    import simlab

    return simlab.analysis_quality(files / "world.yaml", variants=files / "variants.yaml", severities=SEVERITIES,
                                   runs=N, engine="fluid", executor="serial", **TARGET)


@pytest.fixture(scope="module")
def command(files):
    """`simlab analysis-quality --variants FILE --json --out DIR --report`: (its JSON, its results directory) (about
    6 s)."""
    import contextlib
    import io

    from simlab.cli.main import main

    out, printed = files / "out", io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["analysis-quality", str(files / "world.yaml"), "--variants", str(files / "variants.yaml"),
                     "--severity", *SEVERITIES, "--runs", str(N), "--engine", "fluid", "--executor", "serial",
                     "--max-false-rollbacks", "0.1", "--catch", TARGET["catch"], "--out", str(out), "--json",
                     "--report"])
    assert code == 0, printed.getvalue()
    return json.loads(printed.getvalue()), out


def _counts(text) -> dict[str, int]:
    """"error_rate 12, alert 1" -> {"error_rate": 12, "alert": 1}."""
    if not isinstance(text, str) or not text:
        return {}
    return {name: int(n) for name, n in (part.rsplit(" ", 1) for part in text.split(", "))}


def test_the_public_function_gives_one_row_per_variant_and_release_with_bracketed_estimates(public):
    from simlab.experiment.quality import QUALITY_COLUMNS

    assert list(public.columns) == list(QUALITY_COLUMNS)
    assert list(zip(public["variant"], public["release"])) == [(v, r) for v in NAMES for r in RELEASES]
    assert (public["runs"] == N).all()
    assert (public["p_rollback"] == public["rolled_back"] / N).all()
    assert (public["p_rollback_lo"] <= public["p_rollback"]).all()
    assert (public["p_rollback"] <= public["p_rollback_hi"]).all()  # 60 of 60 too, where the upper end is 1
    assert (public["added_bad_lo"] <= public["added_bad_mean"]).all()
    assert (public["added_bad_mean"] <= public["added_bad_hi"]).all()
    bad = public[public["release"] == "error_rate=0.05"]
    assert (bad["added_bad_lo"] > 0).all()  # a 5% defect adds bad requests in every variant
    detected = public[public["rolled_back"] > 0]
    assert len(detected) >= len(public) - 1  # the 1.5% threshold may keep every good release
    assert public.loc[public["rolled_back"] == 0, ["ttd_p50_s", "ttd_p90_s"]].isna().all().all()  # no time made up
    after_release = (14 - 1) * 60.0  # the run lasts 14 minutes, the release starts at 1 minute
    assert (detected["ttd_p50_s"] > 0).all() and (detected["ttd_p90_s"] <= after_release).all()
    assert (detected["ttd_p50_s"] <= detected["ttd_p90_s"]).all()
    # the severe defect is caught sooner than the mild one, by every variant
    ttd = public.set_index(["variant", "release"])["ttd_p50_s"]
    assert all(ttd[(v, "error_rate=0.05")] < ttd[(v, "error_rate=0.005")] for v in NAMES)


def test_false_rollbacks_name_the_metric_and_the_scheduled_failure(public):
    good = public[public["release"] == "good"].set_index("variant")
    assert good.loc["max 1%", "rolled_back"] >= 10  # enough false rollbacks to attribute
    for variant, row in good.iterrows():
        causes, triggers = _counts(row["causes"]), _counts(row["triggers"])
        if row["rolled_back"] == 0:
            assert causes == {} and triggers == {}, variant
            continue
        assert causes == {"error_rate": row["rolled_back"]}, (variant, row["causes"])
        assert triggers == {"failure": row["rolled_back"]}, (variant, row["triggers"])
    for _, row in public[public["release"] != "good"].iterrows():
        assert sum(_counts(row["causes"]).values()) == row["rolled_back"]
        assert _counts(row["triggers"]) == {"defect": row["rolled_back"]}, row["triggers"]


def test_the_command_with_a_variants_file_prints_the_public_functions_table(command, public):
    data, out = command
    assert (out / "report.html").exists() and (out / "report.md").exists()  # --report with --json: written too
    expected = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
                for row in public.to_dict("records")]
    assert data["table"] == expected
    assert [v["variant"] for v in data["verdicts"]] == NAMES
    assert data["meta"]["variants"] == NAMES and data["meta"]["severities"] == ["error_rate=0.005", "error_rate=0.05"]
    written = pd.read_csv(out / "quality.csv")
    assert list(written["variant"]) == list(public["variant"])
    runs = pd.read_parquet(out / "runs.parquet")
    rolled = runs[runs["outcome"] == "rolled_back"]
    ttd = rolled.groupby(["variant", "release"], sort=False)["detected_at_s"].median()
    np.testing.assert_array_equal([ttd.get((v, r), math.nan) for v, r in zip(public["variant"], public["release"])],
                                  public["ttd_p50_s"])


def _per_run(runs: pd.DataFrame, variant: str, release: str) -> pd.DataFrame:
    return runs[(runs["variant"] == variant) & (runs["release"] == release)].sort_values("run").reset_index(drop=True)


def test_identical_variants_give_identical_runs_and_a_threshold_changes_only_the_decisions(command):
    """Common random numbers: run i of every variant and release has seed i, and the same world meets the same
    traffic whatever the analysis decides."""
    runs = pd.read_parquet(command[1] / "runs.parquet")
    same_world = ["run", "run_seed", "requests", "no_release_bad"]
    for release in RELEASES:
        one, again = _per_run(runs, "max 1%", release), _per_run(runs, "max 1% again", release)
        assert len(one) == N
        pd.testing.assert_frame_equal(one.drop(columns="variant"), again.drop(columns="variant"))
        for other in ("max 1.2%", "max 1.5%"):
            pd.testing.assert_frame_equal(one[same_world], _per_run(runs, other, release)[same_world])
    good = _per_run(runs, "max 1%", "good")
    assert 0 < (good["outcome"] == "rolled_back").sum() < N  # the seeds differ: some roll back, some do not
    assert good["run_seed"].nunique() == N


def test_a_higher_threshold_never_rolls_back_a_run_a_lower_one_kept(command):
    """Per run, not only in rate: on a blue-green release a run's windows are the same under every threshold
    until one variant rolls back (the only act a failed measurement has here), and a higher threshold fails a
    subset of the windows a lower one fails, so it rolls back a subset of the runs, never sooner. (On a canary
    this is a property of the rates only: a failed measurement holds a step, the runs' traffic then differs;
    on a three-step canary 1-2 of 100 runs went the other way for some pairs of thresholds.)"""
    runs = pd.read_parquet(command[1] / "runs.parquet")
    limits = ["max 1%", "max 1.2%", "max 1.5%"]
    for release in RELEASES:
        for lower, higher in zip(limits, limits[1:]):
            lo, hi = _per_run(runs, lower, release), _per_run(runs, higher, release)
            lo_rb, hi_rb = lo["outcome"] == "rolled_back", hi["outcome"] == "rolled_back"
            assert not (hi_rb & ~lo_rb).any(), (release, lower, higher, list(lo.loc[hi_rb & ~lo_rb, "run"]))
            both = lo_rb & hi_rb
            assert (lo.loc[both, "rollback_started_at_s"] <= hi.loc[both, "rollback_started_at_s"]).all()
    good = {v: (_per_run(runs, v, "good")["outcome"] == "rolled_back").sum() for v in limits}
    assert good["max 1%"] > good["max 1.2%"] > good["max 1.5%"]  # strictly: the property is not vacuous


def test_the_report_names_every_variant_in_its_figure_and_the_ones_that_meet_the_target(command, public):
    from simlab.experiment.quality import verdicts
    from simlab.report.document import render_markdown
    from simlab.report.quality import load_quality, quality_report, verdict_sentences
    from simlab.report.quality_figures import draw_quality

    results = load_quality(command[1])
    report = quality_report(results)
    (figure,) = report.figures
    for v in NAMES:
        assert v in figure.alt_text
    p = public.set_index(["variant", "release"])["p_rollback"]
    assert f"max 1.5% rolls back {pct(p[('max 1.5%', 'good')])} of good releases" in figure.alt_text
    drawn = draw_quality(results.table, results.meta)
    detection, false_rollbacks = drawn.axes
    assert detection.get_legend_handles_labels()[1] == NAMES
    assert [t.get_text() for t in false_rollbacks.get_yticklabels()] == NAMES
    assert [t.get_text() for t in detection.get_xticklabels()] == ["0.005", "0.05"]
    # who meets "false rollbacks <= 10% and catches error_rate=0.05 with >= 95%", read off the DataFrame
    meets = [v for v in NAMES if p[(v, "good")] <= 0.1 and p[(v, "error_rate=0.05")] >= 0.95]
    assert 0 < len(meets) < len(NAMES)  # the sentence has a choice to make
    target = "Target (false rollbacks ≤ 10% and catches error_rate=0.05 and worse with ≥ 95% probability)"
    findings = next(s for s in report.sections if s.heading == "Findings").paragraphs
    assert findings[-1] == f"{target}: met by {', '.join(meets)}."
    markdown = render_markdown(report)
    assert findings[-1] in markdown and f"![{figure.alt_text}](quality.png)" in markdown
    # no false rollback at all and the mild defect caught: the threshold that keeps every good release misses it
    assert not [v for v in NAMES if p[(v, "good")] == 0 and p[(v, "error_rate=0.005")] >= 0.95]
    strict = verdicts(public, 0.0, 0.95, "error_rate=0.005")
    meta = {**results.meta, "max_false_rollback": 0.0, "catch": "error_rate=0.005"}
    assert verdict_sentences(strict, meta)[-1] == ("Target (false rollbacks ≤ 0% and catches error_rate=0.005 and "
                                                   "worse with ≥ 95% probability): no variant meets it.")


def test_variant_names_that_read_as_numbers_stay_names_in_the_report(tmp_path):
    """Variants named by their threshold (0.010, 0.015) come back from quality.csv as written, so the report's
    table, words and figure name them as the verdicts do (about 1 s)."""
    from simlab.report.document import render_markdown
    from simlab.report.quality import load_quality, quality_report
    from simlab.report.quality_figures import draw_quality

    names = ["0.010", "0.015"]
    variants = [{"name": n, "set": {"analysis.metrics": [{"metric": "error_rate", "max": float(n)}]}} for n in names]
    q = run_quality(validate_scenario(SCHEDULED), variants=variants, severities=[], runs=6, engine="fluid",
                    executor="serial")
    results = load_quality(q.write(tmp_path))
    assert list(results.table["variant"]) == names
    (_, bars) = draw_quality(results.table, results.meta).axes
    assert [t.get_text() for t in bars.get_yticklabels()] == names
    assert [b.get_width() for b in bars.patches] == list(q.table["p_rollback"])  # a bar per variant, none lost
    markdown = render_markdown(quality_report(results))
    assert "| 0.010 | good |" in markdown and "against a good release, 6 runs each" in markdown
