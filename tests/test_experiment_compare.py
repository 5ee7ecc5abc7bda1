"""Compare: the table's numbers from a hand-made frame of runs, common random numbers, variants files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from simlab.errors import ScenarioError
from simlab.experiment import compare
from simlab.experiment.aggregate import TABLE_COLUMNS, aggregate, mean_interval, pareto, table, wilson
from simlab.experiment.overrides import apply_overrides, variant_scenarios
from simlab.scenario import load_scenario
from tests.helpers.scenarios import scenario

ROOT = Path(__file__).resolve().parent.parent
TINY = {"duration": "3m", "traffic.rps": 20, "release.at": "30s", "analysis.interval": "15s",
        "analysis.min_requests": 5, "strategy.steps": [{"weight": 34, "bake": "40s"}, {"weight": 100}],
        "release.defects": [{"kind": "error_rate", "rate": 0.3}], "release.bad_probability": 0.5}


@pytest.mark.parametrize("k, n, low, high", [(0, 10, 0.0, 0.2775), (1, 10, 0.0179, 0.4042),
                                             (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0)])
def test_wilson_interval_matches_published_values(k, n, low, high):
    p, lo, hi = wilson(k, n)
    assert p == k / n and lo == pytest.approx(low, abs=5e-5) and hi == pytest.approx(high, abs=5e-5)


def test_wilson_with_no_trials_is_unknown_not_zero():
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_mean_interval_is_student_t():
    mean, lo, hi = mean_interval([1, 2, 3, 4, 5])  # sd 1.5811, t(0.975, 4) = 2.7764
    assert (mean, lo, hi) == pytest.approx((3.0, 1.0368, 4.9632), abs=1e-4)


def hand_made() -> pd.DataFrame:
    """Six bad releases (4 rolled back, 1 promoted, 1 incomplete) and four good ones (1 false rollback)."""
    nan = float("nan")
    rows = [  # bad_release, outcome, bad, detected, rollback done, deploy duration, budget, extra instance-s
        (True, "rolled_back", 100, 60, 120, nan, 0.010, 50),
        (True, "rolled_back", 200, 120, 180, nan, 0.020, 50),
        (True, "rolled_back", 300, 180, 240, nan, 0.030, 50),
        (True, "rolled_back", 400, 240, 300, nan, 0.040, 50),
        (True, "promoted", 5000, nan, nan, 900, 0.500, 100),
        (True, "incomplete", 1000, 300, nan, nan, 0.100, 100),
        (False, "promoted", 10, nan, nan, 600, 0.001, 20),
        (False, "promoted", 20, nan, nan, 800, 0.002, 20),
        (False, "promoted", 30, nan, nan, 1000, 0.003, 20),
        (False, "rolled_back", 40, 90, 150, nan, 0.004, 40),
    ]
    cols = ["bad_release", "outcome", "bad", "detected_at_s", "rollback_done_at_s", "deploy_duration_s",
            "error_budget_used", "extra_instance_seconds"]
    return pd.DataFrame(rows, columns=cols)


def test_aggregate_counts_detection_on_bad_releases_and_deploy_time_on_good_ones():
    row = aggregate(hand_made())
    assert (row["runs"], row["bad_runs"], row["good_runs"]) == (10, 6, 4)
    assert row["p_rollback_bad"] == pytest.approx(4 / 6)
    assert (row["p_rollback_bad_lo"], row["p_rollback_bad_hi"]) == pytest.approx(wilson(4, 6)[1:])
    assert row["p_false_rollback"] == pytest.approx(1 / 4)
    assert row["p_bad_promoted"] == pytest.approx(1 / 6)
    bad = [100, 200, 300, 400, 5000, 1000, 10, 20, 30, 40]
    assert row["bad_mean"] == pytest.approx(sum(bad) / 10)
    assert row["bad_mean_lo"] == pytest.approx(max(0.0, mean_interval(bad)[1]))
    assert row["bad_p95"] == pytest.approx(pd.Series(bad).quantile(0.95))
    # detection and recovery: bad releases only (the false rollback's 90 s does not count)
    assert row["ttd_mean_s"] == pytest.approx((60 + 120 + 180 + 240 + 300) / 5)
    assert row["ttd_p50_s"] == pytest.approx(180)
    assert row["ttr_mean_s"] == pytest.approx((120 + 180 + 240 + 300) / 4)
    # deploy duration: good releases promoted (the bad one promoted after 900 s does not count)
    assert row["deploy_duration_good_mean_s"] == pytest.approx(800)
    assert row["error_budget_mean"] == pytest.approx(0.710 / 10)
    assert row["extra_instance_seconds_mean"] == pytest.approx((4 * 50 + 2 * 100 + 3 * 20 + 40) / 10)


def test_table_has_one_row_per_variant_in_order_and_the_documented_columns():
    runs = pd.concat([hand_made().assign(variant="b"), hand_made().iloc[:3].assign(variant="a")])
    t = table(runs, ["variant"])
    assert list(t.columns) == ["variant", *TABLE_COLUMNS]
    assert list(t["variant"]) == ["b", "a"] and list(t["runs"]) == [10, 3]
    assert math.isnan(t.loc[1, "p_false_rollback"])  # no good release among a's runs


def test_pareto_front_keeps_only_undominated_rows():
    t = pd.DataFrame({
        "name": ["fast-risky", "slow-safe", "dominated", "balanced", "unknown", "tie-worse"],
        "deploy_duration_good_mean_s": [300, 1800, 1900, 900, float("nan"), 900],
        "bad_mean": [500, 20, 30, 100, 1, 120],
    })
    assert list(pareto(t)["name"]) == ["fast-risky", "balanced", "slow-safe"]


def test_common_random_numbers_same_seeds_and_offered_traffic_across_strategies():
    s = scenario("canary", **TINY)
    result = compare(s, strategies=["canary", "big_bang"], runs=3, seed=5, executor="serial")
    runs = result.runs
    assert list(result.table["variant"]) == ["canary", "big_bang"]
    a, b = (runs[runs["variant"] == v].reset_index(drop=True) for v in ("canary", "big_bang"))
    assert list(a["run_seed"]) == list(b["run_seed"]) and a["run_seed"].nunique() == 3
    assert list(a["requests"]) == list(b["requests"])  # the same users arrive whatever the policy
    assert list(a["bad_release"]) == list(b["bad_release"])  # and the same releases are bad
    assert a["requests"].nunique() > 1  # ...while runs differ from each other
    assert (b.loc[b["bad_release"], "bad"].to_numpy() > a.loc[a["bad_release"], "bad"].to_numpy()).all()


def test_a_written_comparison_holds_its_table_runs_and_meta(tmp_path):
    s = scenario("canary", **TINY)
    result = compare(s, strategies="canary", runs=2, seed=1, executor="serial")
    result.write(tmp_path)
    assert list(pd.read_csv(tmp_path / "compare.csv")["variant"]) == ["canary"]
    assert len(pd.read_parquet(tmp_path / "runs.parquet")) == 2
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["kind"] == "compare" and meta["runs"] == 2 and meta["engine"] == "request"


def test_shipped_canary_plans_apply_to_the_checkout_scenario():
    base = load_scenario(ROOT / "experiments/checkout-canary.yaml")
    named = variant_scenarios(base, ROOT / "experiments/variants-canary-plans.yaml")
    assert [n for n, _ in named] == ["canary-fast", "canary-standard", "canary-cautious"]
    assert len({s.strategy.steps for _, s in named}) == 3
    assert named[1][1] == base  # the standard plan is the scenario's own


def test_override_paths_index_lists_and_start_absent_blocks():
    s = apply_overrides(scenario("canary"), {"strategy.steps[0].bake": "5m", "release.migration.duration": "1m"})
    assert s.strategy.steps[0].bake == 300 and s.release.migration.duration == 60


VARIANT_ERRORS = {
    "invalid value": ({"variants": [{"name": "v1", "set": {"analysis.interval": "soon"}}]},
                      "variant 'v1': analysis.interval: expected a duration"),
    "typo in a path": ({"variants": [{"name": "v1", "set": {"analysis.intervl": "1m"}}]},
                       "variant 'v1': analysis.intervl: unknown key 'intervl'; did you mean 'interval'?"),
    "index past the end": ({"variants": [{"name": "v2", "set": {"strategy.steps[7].bake": "1m"}}]},
                           "variant 'v2': strategy.steps[7].bake: expected an index below 3, found [7]"),
    "not a path": ({"variants": [{"name": "v1", "set": {"strategy..steps": 1}}]},
                   "variants[0].set: expected dotted field paths"),
    "missing name": ({"variants": [{"set": {}}]}, "variants[0].name: required key is missing"),
    "unknown key": ({"variants": [{"name": "v", "sets": {}}]}, "variants[0].sets: unknown key"),
    "duplicate names": ({"variants": [{"name": "v"}, {"name": "v"}]}, "expected each variant name once, found 'v' again"),
    "empty": ({"variants": []}, "variants: "),
}


@pytest.mark.parametrize("data, problem", VARIANT_ERRORS.values(), ids=VARIANT_ERRORS.keys())
def test_variants_errors_name_the_variant_and_the_path(data, problem):
    with pytest.raises(ScenarioError) as info:
        variant_scenarios(scenario("canary"), data)
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_compare_rejects_a_missing_variants_file_unknown_strategies_both_and_no_runs():
    with pytest.raises(ScenarioError, match="no such variants file"):
        compare(scenario("canary"), variants="/nonexistent/variants.yaml", runs=1)
    with pytest.raises(ScenarioError, match="did you mean 'rolling'"):
        compare(scenario("canary"), strategies="canary,roling", runs=1)
    with pytest.raises(ScenarioError, match="strategies or variants, found both"):
        compare(scenario("canary"), strategies="canary", variants={"variants": [{"name": "a"}]}, runs=1)
    with pytest.raises(ScenarioError, match="runs: expected a whole number of at least 1, found 0"):
        compare(scenario("canary"), strategies="canary", runs=0)


# --- bad requests split by release, and what the release added over its no-release twin -------------------

def test_added_by_release_subtracts_the_same_runs_twin():
    from simlab.experiment.twins import added_by_release

    rows = [{"run": 0, "bad": 120}, {"run": 1, "bad": 7}, {"run": 2, "bad": None}]
    twins = [{"run": 0, "bad": 20}, {"run": 1, "bad": 9}, {"run": 2, "bad": 3}]
    out = added_by_release(rows, twins)
    assert [(r["no_release_bad"], r["added_bad"]) for r in out[:2]] == [(20.0, 100.0), (9.0, -2.0)]
    assert math.isnan(out[2]["added_bad"])
    with pytest.raises(ValueError, match="run 1 paired with the twin of run 2"):
        added_by_release(rows[1:2], twins[2:3])


def test_split_aggregates_keep_bad_and_good_releases_apart():
    runs = hand_made()
    runs["no_release_bad"] = [10.0] * 6 + [8.0, 12.0, 10.0, 10.0]
    runs["added_bad"] = runs["bad"] - runs["no_release_bad"]
    row = aggregate(runs)
    bad, good = runs[runs["bad_release"]], runs[~runs["bad_release"]]
    assert row["bad_given_bad_mean"] == pytest.approx(bad["bad"].mean())  # 1,166.7, what the figure shows
    assert row["bad_given_good_mean"] == pytest.approx(25.0)
    assert row["bad_mean"] == pytest.approx(runs["bad"].mean())  # both together, as drawn
    assert row["no_release_bad_mean"] == pytest.approx(10.0)
    assert row["added_given_bad_mean"] == pytest.approx(bad["bad"].mean() - 10.0)
    assert row["added_given_good_mean"] == pytest.approx(15.0)
    lo, hi = mean_interval(good["added_bad"])[1:]
    assert (row["added_given_good_mean_lo"], row["added_given_good_mean_hi"]) == pytest.approx((lo, hi))
    assert row["added_given_good_mean_lo"] < 0  # an added count may be below zero: its interval is not cut at 0
    assert all(math.isnan(aggregate(hand_made())[k]) for k in ("no_release_bad_mean", "added_mean"))


def test_each_run_is_paired_with_its_no_release_twin_which_every_policy_shares():
    from simlab.experiment.twins import no_release_twin, twin_key
    from simlab.simulation import simulate

    s = scenario("canary", **TINY)
    result = compare(s, strategies=["canary", "big_bang"], runs=4, seed=5, executor="serial")
    runs = result.runs
    a, b = (runs[runs["variant"] == v].reset_index(drop=True) for v in ("canary", "big_bang"))
    assert list(a["no_release_bad"]) == list(b["no_release_bad"])  # one twin, the same world for both
    for _, row in a.iterrows():
        twin = simulate(no_release_twin(s), seed=int(row["run_seed"]), engine="request").summary
        assert twin["outcome"] == "no_release" and twin["bad"] == row["no_release_bad"]
        assert row["added_bad"] == row["bad"] - row["no_release_bad"]
    # without a release the policy never acts: the twins of two strategies are the same run
    canary, big_bang = (simulate(no_release_twin(s.with_strategy(k)), seed=11).summary.to_dict()
                        for k in ("canary", "big_bang"))
    assert {k: v for k, v in canary.items() if k != "strategy"} == {k: v for k, v in big_bang.items() if k != "strategy"}
    assert twin_key(s, "request") == twin_key(s.with_strategy("big_bang"), "request") != twin_key(s, "fluid")
    # big_bang's recreate costs even a good release bad requests; a bad one adds its defect's on top
    row = result.table.set_index("variant").loc["big_bang"]
    assert row["added_given_bad_mean"] > 2 * row["added_given_good_mean"] > 0
