"""Compare breaks false rollbacks (good releases rolled back) down by cause and by what made the metric cross, in
compare.csv, the report's table and lines under the console table.

The world: the small canary (tests/helpers/scenarios.py), half its releases bad (30% of their requests fail), and a
dependency that fails 10% of requests from 3m to 5m, while the canary's analysis (error_rate max 2%) is watching
the release that started at 2m. Every good release is rolled back during that failure: on error_rate by the
controller (`strict`), or, with an error_rate bound of 50% (`lenient`), on the SLO alert by the on-call; without the
failure (`quiet`) none is. About 6 s.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import re

import pandas as pd
import pytest
import yaml

from simlab.experiment.aggregate import aggregate, counted
from tests.helpers.scenarios import scenario

FAILURE = {"kind": "dependency", "at": "3m", "duration": "2m", "error_rate": 0.1}
WORLD = {"duration": "12m", "release.bad_probability": 0.5, "release.defects": [{"kind": "error_rate", "rate": 0.3}],
         "failures": [FAILURE]}
VARIANTS = [{"name": "strict", "set": {}},
            {"name": "lenient", "set": {"analysis.metrics": [{"metric": "error_rate", "max": 0.5}]}},
            {"name": "quiet", "set": {"failures": []}}]
RUNS = 24


def parse_counted(text: str) -> dict[str, int]:
    """'error_rate 11, alert 1' -> {'error_rate': 11, 'alert': 1}."""
    out = {}
    for part in text.split(", "):
        name, _, n = part.rpartition(" ")
        out[name] = int(n)
    return out


def test_counted_lists_each_value_most_common_first_without_missing_ones():
    assert counted(["noise", "failure", None, "failure", math.nan, "crash", "failure"]) == "failure 3, noise 1, crash 1"
    assert counted([]) == ""


def test_only_good_releases_rolled_back_are_counted_and_none_is_missing():
    runs = pd.DataFrame({
        "bad_release": [True, False, False, False, True],
        "outcome": ["rolled_back", "rolled_back", "rolled_back", "promoted", "promoted"],
        "rollback_cause": ["error_rate", "error_rate+latency_p99", "alert", None, None],
        "rollback_trigger": ["defect", "failure", "crash", None, None],
        "bad": 0, "detected_at_s": math.nan, "rollback_done_at_s": math.nan, "deploy_duration_s": 60.0,
        "error_budget_used": 0.0, "extra_instance_seconds": 0.0,
    })
    row = aggregate(runs)
    assert row["false_rollback_causes"] == "error_rate+latency_p99 1, alert 1"
    assert row["false_rollback_triggers"] == "failure 1, crash 1"  # the bad release's "defect" is no false rollback
    none = aggregate(runs[runs["outcome"] == "promoted"])
    assert math.isnan(none["false_rollback_causes"]) and math.isnan(none["false_rollback_triggers"])
    old = aggregate(runs.drop(columns=["rollback_cause", "rollback_trigger"]))  # runs written before attribution
    assert math.isnan(old["false_rollback_causes"])


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """`simlab compare --variants ... --report` on the world, its printed output and its results directory."""
    from simlab.cli.main import main

    tmp = tmp_path_factory.mktemp("causes")
    data = json.loads(scenario("canary", **WORLD).model_dump_json(exclude_none=True))
    (tmp / "world.yaml").write_text(yaml.safe_dump(data))
    (tmp / "variants.yaml").write_text(yaml.safe_dump(VARIANTS))
    out = tmp / "compare"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["compare", str(tmp / "world.yaml"), "--variants", str(tmp / "variants.yaml"), "--runs", str(RUNS),
                     "--engine", "fluid", "--executor", "serial", "--quiet", "--out", str(out), "--report"])
    assert code == 0, printed.getvalue()
    return printed.getvalue(), out


def test_the_false_rollbacks_add_up_and_name_the_metric_and_the_failure(compared):
    _, out = compared
    table = pd.read_csv(out / "compare.csv").set_index("variant")
    strict = table.loc["strict"]
    false_rollbacks = round(strict["p_false_rollback"] * strict["good_runs"])
    assert strict["good_runs"] >= 8 and false_rollbacks == strict["good_runs"]  # the failure rolls back every one
    assert parse_counted(strict["false_rollback_causes"]) == {"error_rate": false_rollbacks}
    assert parse_counted(strict["false_rollback_triggers"]) == {"failure": false_rollbacks}
    runs = pd.read_parquet(out / "runs.parquet")
    caught = runs[(runs["variant"] == "strict") & runs["bad_release"].astype(bool)]
    assert (caught["rollback_trigger"] == "defect").all()  # bad releases are rolled back too, and left out
    lenient = table.loc["lenient"]
    assert parse_counted(lenient["false_rollback_causes"]) == {"alert": lenient["good_runs"]}
    assert parse_counted(lenient["false_rollback_triggers"]) == {"failure": lenient["good_runs"]}
    quiet = table.loc["quiet"]
    assert quiet["p_false_rollback"] == 0 and pd.isna(quiet["false_rollback_causes"])
    assert pd.isna(quiet["false_rollback_triggers"])


def test_the_report_and_the_console_show_them(compared):
    printed, out = compared
    table = pd.read_csv(out / "compare.csv").set_index("variant")
    strict = table.loc["strict"]
    good = int(strict["good_runs"])
    line = (f"strict: {good} of {good} good releases rolled back, by cause: error_rate {good}; "
            f"what crossed: failure {good}")
    assert line in printed.splitlines()
    assert f"lenient: {good} of {good} good releases rolled back, by cause: alert {good}; what crossed: failure {good}" \
        in printed.splitlines()
    assert not any(row.startswith("quiet:") for row in printed.splitlines())  # no false rollbacks, no line
    report = (out / "report.md").read_text()
    header = next(row for row in report.splitlines() if row.startswith("| variant"))
    heads = [h.strip() for h in header.strip("|").split("|")]
    assert {"false rollbacks by cause", "false rollbacks: what crossed"} <= set(heads)
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.strip().strip("|").split("|")]
             for row in report.splitlines() if re.match(r"\| (strict|lenient|quiet) \|", row)}
    cause, crossed = heads.index("false rollbacks by cause"), heads.index("false rollbacks: what crossed")
    assert (cells["strict"][cause], cells["strict"][crossed]) == (f"error_rate {good}", f"failure {good}")
    assert (cells["lenient"][cause], cells["lenient"][crossed]) == (f"alert {good}", f"failure {good}")
    assert (cells["quiet"][cause], cells["quiet"][crossed]) == ("none", "none")
    assert "what made the metric cross" in report
    html = (out / "report.html").read_text()
    assert "false rollbacks by cause" in html and f"<span>error_rate {good}</span>" in html


def test_the_readme_prints_the_demo_false_rollbacks_under_its_table(capsys):
    from simlab.cli.experiment import say_false_rollbacks
    from tests.test_examples import example_dir, readme_block, simlab_command

    args = simlab_command("compare")
    d = example_dir(args)
    meta = json.loads((d / "meta.json").read_text())
    say_false_rollbacks(pd.read_csv(d / "compare.csv"), ["variant"])
    printed = [line.rstrip() for line in capsys.readouterr().out.splitlines()]
    assert printed, "the demo rolls good releases back; say so under its table"
    shown = [line.rstrip() for line in readme_block(f"simlab compare {args[0]} --runs {meta['runs']} --engine "
                                                    f"{meta['engine']}")]
    start = shown.index(printed[0]) if printed[0] in shown else -1
    assert start > 0 and shown[start:start + len(printed)] == printed, \
        "README's compare block should show the example's false rollbacks under the table: run `make examples`"
