"""Release uncertainty: whether a replication's release is bad, and its defect numbers, are drawn per run."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simlab.errors import ScenarioError
from simlab.experiment import replicate
from simlab.scenario.release import draw_release
from tests.helpers.scenarios import scenario

RATE = {"dist": "lognormal", "median": 0.02, "p95": 0.3}


def uncertain(p: float | None = None, defects: list | None = None, **more):
    overrides = {"release.defects": defects or [{"kind": "error_rate", "rate": RATE}], **more}
    if p is not None:
        overrides["release.bad_probability"] = p
    return scenario("canary", **overrides)


def test_share_of_bad_releases_is_bad_probability():
    s = uncertain(0.2)
    bad = [draw_release(s, seed)[0].release.bad for seed in range(4000)]
    share = np.mean(bad)
    assert abs(share - 0.2) < 3 * math.sqrt(0.2 * 0.8 / 4000), share  # within 3 standard errors


def test_defects_without_bad_probability_are_always_bad_and_no_defects_never():
    assert all(draw_release(uncertain(), seed)[0].release.bad for seed in range(50))
    plain = scenario("canary")
    assert not any(draw_release(plain, seed)[0].release.bad for seed in range(50))


def test_a_good_draw_removes_defects_and_makes_the_migration_compatible():
    s = uncertain(0.5, **{"release.migration": {"duration": "30s", "backward_compatible": False}})
    goods = [c for c, _ in (draw_release(s, seed) for seed in range(40)) if not c.release.bad]
    assert goods, "expected some good draws at p=0.5"
    assert all(c.release.defects == () and c.release.migration.backward_compatible for c in goods)
    assert all(c.release.migration.duration == 30.0 for c in goods)  # the migration still runs


def test_lognormal_parameter_is_drawn_with_its_median_and_p95_and_recorded():
    s = uncertain()
    rates = np.array([draw_release(s, seed)[1]["param.error_rate.rate"] for seed in range(3000)])
    assert abs(np.median(rates) - 0.02) < 0.003
    assert abs(np.quantile(rates, 0.95) - 0.3) < 0.06
    assert rates.max() <= 1.0  # a probability is clipped to 1, never above


def test_concrete_scenario_carries_the_drawn_number_where_engines_read_it():
    s = uncertain()
    concrete, params = draw_release(s, 11)
    assert concrete.release.defects[0].rate == params["param.error_rate.rate"]
    assert isinstance(concrete.release.defects[0].rate, float)
    assert concrete.strategy == s.strategy and concrete.fleet == s.fleet


def test_uniform_and_choice_including_durations_and_repeated_kinds():
    defects = [
        {"kind": "error_rate", "rate": {"dist": "choice", "values": [0.01, 0.5], "weights": [3, 1]}},
        {"kind": "error_rate", "rate": 0.1, "onset": {"after": {"dist": "uniform", "low": "1m", "high": "2m"}}},
        {"kind": "crash", "mtbf": {"dist": "lognormal", "median": "10m", "sigma": 0.5}},
    ]
    s = uncertain(defects=defects)
    draws = [draw_release(s, seed)[1] for seed in range(2000)]
    assert set(draws[0]) == {"param.error_rate.rate", "param.error_rate#2.onset.after", "param.crash.mtbf"}
    choice = np.array([d["param.error_rate.rate"] for d in draws])
    assert set(np.unique(choice)) == {0.01, 0.5}
    assert abs(np.mean(choice == 0.5) - 0.25) < 0.04
    onset = np.array([d["param.error_rate#2.onset.after"] for d in draws])
    assert onset.min() >= 60 and onset.max() <= 120 and abs(onset.mean() - 90) < 2
    assert abs(np.median([d["param.crash.mtbf"] for d in draws]) - 600) < 40


def test_same_seed_same_release_whatever_the_strategy():
    s = uncertain(0.4)
    for seed in range(20):
        a, pa = draw_release(s, seed)
        b, pb = draw_release(s.with_strategy("rolling"), seed)
        assert a.release == b.release and pa == pb


@pytest.mark.parametrize(
    "defects, p, problem",
    [
        ([], 0.5, "release.bad_probability: expected `defects` or an incompatible `migration`"),
        ([{"kind": "error_rate", "rate": {"dist": "uniform", "low": 0.1, "high": 1.5}}], None,
         "release.defects[0].rate: expected values at least 0 and at most 1, found 1.5"),
        ([{"kind": "error_rate", "rate": {"dist": "lognormal", "median": 0.02}}], None,
         "release.defects[0].rate: expected exactly two of"),
        ([{"kind": "error_rate", "rate": {"dist": "uniform", "lo": 0.1, "high": 0.2}}], None,
         "release.defects[0].rate.lo: unknown key 'lo'; did you mean 'low'?"),
        ([{"kind": "error_rate", "rate": {"dist": "choice", "values": [0.1, 0.2], "weights": [1]}}], None,
         "release.defects[0].rate.weights: expected one weight per value (2), found 1"),
        ([{"kind": "crash", "mtbf": {"dist": "choice", "values": [0, "1h"]}}], None,
         "release.defects[0].mtbf: expected values above 0, found 0"),
        ([{"kind": "error_rate", "rate": 0.1}], 1.5, "release.bad_probability: expected a value at most 1"),
    ],
)
def test_uncertain_release_errors_name_the_field(defects, p, problem):
    overrides = {"release.defects": defects}
    if p is not None:
        overrides["release.bad_probability"] = p
    with pytest.raises(ScenarioError) as info:
        scenario("canary", **overrides)
    assert any(problem in line for line in info.value.problems), info.value.problems


TINY = {"duration": "3m", "traffic.rps": 20, "release.at": "30s", "analysis.interval": "15s",
        "analysis.min_requests": 5, "strategy.steps": [{"weight": 34, "bake": "40s"}, {"weight": 100}]}


def test_replicate_rows_carry_summary_keys_bad_release_and_drawn_parameters():
    from simlab.results import SUMMARY_KEYS

    s = uncertain(0.5, defects=[{"kind": "error_rate", "rate": {"dist": "uniform", "low": 0.2, "high": 0.4}}], **TINY)
    runs = replicate(s, runs=4, seed=3, executor="serial")
    assert list(runs["run"]) == [0, 1, 2, 3]
    assert set(SUMMARY_KEYS) <= set(runs.columns)
    assert list(runs.columns[:4]) == ["run", "run_seed", "bad_release", "param.error_rate.rate"]
    assert (runs["seed"] == runs["run_seed"]).all()
    bad = runs["bad_release"]
    assert bad.any() and (~bad).any(), "seed 3 was picked for a mix of good and bad releases"
    assert runs.loc[bad, "param.error_rate.rate"].between(0.2, 0.4).all()
    assert runs.loc[~bad, "param.error_rate.rate"].isna().all()
    assert (runs.loc[~bad, "failed_error"] == 0).all() and (runs.loc[bad, "failed_error"] > 0).all()
