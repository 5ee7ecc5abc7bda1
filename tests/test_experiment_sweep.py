"""Sweeps: the full grid, aggregates per point, the Pareto front, and resuming from stored runs."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from simlab.errors import ScenarioError
from simlab.experiment import sweep
from simlab.experiment.aggregate import TABLE_COLUMNS, pareto
from tests.helpers.scenarios import scenario

TINY = {"duration": "3m", "traffic.rps": 20, "release.at": "30s", "analysis.interval": "15s",
        "analysis.min_requests": 5, "strategy.steps": [{"weight": 34, "bake": "40s"}, {"weight": 100}],
        "release.defects": [{"kind": "error_rate", "rate": 0.3}], "release.bad_probability": 0.5}
PARAMS = {"strategy.steps[0].bake": ["20s", "60s"], "analysis.failure_limit": [1, 3]}


@pytest.fixture
def base():
    return scenario("canary", **TINY)


def test_sweep_grid_resume_and_rerun_of_a_deleted_run(base, tmp_path):
    first = sweep(base, PARAMS, runs=2, seed=4, executor="serial", out=tmp_path)
    assert first.executed == 8 and len(first.runs) == 8
    assert list(first.table.columns) == [*PARAMS, *TABLE_COLUMNS]
    assert first.table[list(PARAMS)].values.tolist() == [["20s", 1], ["20s", 3], ["60s", 1], ["60s", 3]]
    assert list(first.runs.columns[:3]) == [*PARAMS, "run"]
    # the grid reached the simulation: a longer first bake delays promotion of good releases
    good = first.runs[~first.runs["bad_release"] & (first.runs["outcome"] == "promoted")]
    by_bake = good.groupby("strategy.steps[0].bake")["deploy_duration_s"].mean()
    assert by_bake["60s"] > by_bake["20s"]
    for name in ("sweep.parquet", "table.csv", "pareto.csv", "meta.json"):
        assert (tmp_path / name).exists(), name
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["kind"] == "sweep" and meta["params"] == list(PARAMS)

    again = sweep(base, PARAMS, runs=2, seed=4, executor="serial", out=tmp_path)
    assert again.executed == 0
    pd.testing.assert_frame_equal(again.runs, first.runs)

    stored = sorted((tmp_path / "store").rglob("run-*.json"))
    assert len(stored) == 8 + 2  # and the runs of the no-release twin all four points share
    point_runs = [f for f in stored if "release" not in (f.parents[2] / "params.json").read_text()]
    assert len(point_runs) == 8
    point_runs[5].unlink()
    third = sweep(base, PARAMS, runs=2, seed=4, executor="serial", out=tmp_path)
    assert third.executed == 1
    pd.testing.assert_frame_equal(third.runs, first.runs)

    more = sweep(base, PARAMS, runs=3, seed=4, executor="serial", out=tmp_path)
    assert more.executed == 4  # only the new run of each point
    other_seed = sweep(base, {"analysis.failure_limit": [1]}, runs=1, seed=5, executor="serial", out=tmp_path)
    assert other_seed.executed == 1


def test_sweep_pareto_is_the_front_of_its_table(base):
    result = sweep(base, {"strategy.steps[0].bake": ["20s", "60s", "90s"]}, runs=2, seed=4, executor="serial")
    assert len(result.table) == 3
    pd.testing.assert_frame_equal(result.pareto, pareto(result.table))
    assert 1 <= len(result.pareto) <= 3


@pytest.mark.parametrize("params, problem", [
    ({"analysis.intervl": ["1m"]}, "analysis.intervl: unknown key 'intervl'; did you mean 'interval'?"),
    ({"strategy.steps[5].bake": ["1m"]}, "strategy.steps[5].bake: expected an index below 2, found [5]"),
    ({"analysis.interval": ["1m", "soon"]}, "--param analysis.interval=soon: analysis.interval: expected a duration"),
])
def test_bad_sweep_values_fail_before_any_run(base, params, problem, tmp_path):
    with pytest.raises(ScenarioError) as info:
        sweep(base, params, runs=1, executor="serial", out=tmp_path)
    assert any(problem in line for line in info.value.problems), info.value.problems
    assert not (tmp_path / "store").exists()


def test_a_sweep_without_parameters_or_with_a_bare_value_is_rejected(base):
    with pytest.raises(ScenarioError, match="expected at least one"):
        sweep(base, {}, runs=1)
    with pytest.raises(ScenarioError, match="expected a list of at least one value"):
        sweep(base, {"analysis.interval": "1m"}, runs=1)
    with pytest.raises(ScenarioError, match="expected a dotted field path"):
        sweep(base, {"analysis..interval": ["1m"]}, runs=1)
