"""simlab optimize: finds a policy among the best of a grid evaluated exhaustively, resumes a stored study,
keeps its constraints on fresh seeds, refuses a bad search file in one line, and runs as the README shows.

The world is small on purpose (4 instances at 30 rps for 8 minutes, fluid engine, serial executor): each
trial is 12 runs, about 0.2 s.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml

from simlab.cli import main
from simlab.experiment.optimization import Runs, fresh_seed, optimize
from simlab.experiment.store import Store
from simlab.experiment.replication import replicate
from simlab.experiment.sweeps import sweep
from simlab.scenario import validate_scenario
from tests.helpers.reports import browser_check

ROOT = Path(__file__).resolve().parent.parent
RUNS = 12
WORLD = {
    "name": "tiny-canary", "duration": "8m", "fleet": {"instances": 4, "service_time": "20ms"},
    "traffic": {"rps": 30, "timeout": "2s"},
    "release": {"at": "1m", "bad_probability": 0.5, "defects": [{"kind": "error_rate", "rate": 0.05}]},
    "strategy": {"kind": "canary", "steps": [{"weight": 25, "bake": "2m"}, {"weight": 100}]},
    "analysis": {"interval": "30s", "failure_limit": 2, "min_requests": 10,
                 "metrics": [{"metric": "error_rate", "max": 0.03}]},
    "monitoring": {"scrape_interval": "10s", "window": "30s", "delay": "10s"},
    "failures": [{"kind": "dependency", "at": "2m", "duration": "1m", "error_rate": 0.02}],
}
GRID = {"analysis.failure_limit": [1, 2, 3], "analysis.metrics[0].max": [0.01, 0.03, 0.1],
        "strategy.steps[0].weight": [5, 25, 50]}
KNOBS = {"knobs": {"analysis.failure_limit": {"int": [1, 3]}, "analysis.metrics[0].max": {"choice": [0.01, 0.03, 0.1]},
                   "strategy.steps[0].weight": {"choice": [5, 25, 50]}}}
LIMIT = "false_rollback<=0.2"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("optimize")
    (d / "world.yaml").write_text(yaml.safe_dump(WORLD, sort_keys=False))
    (d / "knobs.yaml").write_text(yaml.safe_dump(KNOBS, sort_keys=False))
    return d


def test_the_optimiser_finds_a_policy_among_the_best_three_of_an_exhaustive_grid(world):
    """27 policies, each run on the same 12 seeds by simlab sweep: the best feasible one by construction. The
    study (10 trials, its first the scenario's own policy) shares sweep's store, so it reads the runs the grid
    already made: the same seeds give the same rows, whoever simulates them."""
    out = world / "known"
    grid = sweep(world / "world.yaml", GRID, runs=RUNS, seed=0, engine="fluid", executor="serial", out=out)
    table = grid.table.assign(feasible=grid.table["p_false_rollback"] <= 0.2)
    ranked = table[table["feasible"]].sort_values("added_mean", kind="stable").reset_index(drop=True)
    assert len(ranked) >= 6 and ranked["added_mean"].iloc[0] < ranked["added_mean"].iloc[-1] - 1  # not flat

    result = optimize(world / "world.yaml", world / "knobs.yaml", minimize="bad_requests_added", constraints=LIMIT,
                      trials=10, runs_per_trial=RUNS, fresh_runs=24, engine="fluid", executor="serial", out=out)
    done = result.trials[result.trials["state"] == "complete"]
    assert len(done) == 10 and result.meta["trials_told"] == 10
    best = done[done["feasible"]].sort_values("bad_requests_added").iloc[0]
    rank = [i for i, row in ranked.iterrows() if all(row[p] == best[p] for p in GRID)]
    assert rank and rank[0] < 3, f"found rank {rank} of {len(ranked)}:\n{ranked.head(5)}"
    # the trial's value is the grid point's, run for run (common random numbers across trials)
    assert best["bad_requests_added"] == pytest.approx(ranked.loc[rank[0], "added_mean"])
    # the scenario's own policy, inside the space, was the first trial
    assert [done.iloc[0][p] for p in GRID] == [2, 0.03, 25]


def test_a_resumed_study_continues_where_it_stopped(world):
    storage = f"sqlite:///{world / 'resume.db'}"
    options = dict(minimize=["bad_requests_added", "deploy_duration_mean"], trials=4, runs_per_trial=RUNS,
                   fresh_runs=12, engine="fluid", executor="serial", storage=storage)
    first = optimize(world / "world.yaml", world / "knobs.yaml", **options)
    second = optimize(world / "world.yaml", world / "knobs.yaml", **{**options, "trials": 7})
    assert (first.meta["trials_before"], first.meta["trials_told"]) == (0, 4)
    assert (second.meta["trials_before"], second.meta["trials_told"]) == (4, 3)
    assert second.meta["study"] == first.meta["study"]
    kept = second.trials[second.trials["trial"] < 4].reset_index(drop=True)
    columns = ["trial", "state", *KNOBS["knobs"], "bad_requests_added", "deploy_duration_mean"]
    pd.testing.assert_frame_equal(kept[columns], first.trials[columns].reset_index(drop=True))
    assert len(second.trials[second.trials["state"] == "complete"]) == 7
    third = optimize(world / "world.yaml", world / "knobs.yaml", **{**options, "trials": 7})  # nothing left to run
    assert third.meta["trials_told"] == 0 and len(third.trials) == 7
    with pytest.raises(Exception, match="other settings"):  # same study name, other runs: refused, not mixed
        optimize(world / "world.yaml", world / "knobs.yaml", **{**options, "runs_per_trial": 6,
                                                                "study": second.meta["study"]})


def test_a_study_cut_off_mid_batch_reruns_the_trials_in_flight_first(world):
    import optuna

    storage = f"sqlite:///{world / 'cut.db'}"
    options = dict(minimize="bad_requests_added", trials=3, runs_per_trial=RUNS, fresh_runs=12, engine="fluid",
                   executor="serial", storage=storage)
    first = optimize(world / "world.yaml", world / "knobs.yaml", **options)
    study = optuna.load_study(study_name=first.meta["study"], storage=storage)
    cut = study.ask({"analysis.failure_limit": optuna.distributions.IntDistribution(1, 3)})  # then the process died
    second = optimize(world / "world.yaml", world / "knobs.yaml", **{**options, "trials": 4})
    states = second.trials.set_index("trial")["state"]
    assert states[cut.number] == "fail" and (states == "complete").sum() == 4
    rerun = optuna.load_study(study_name=first.meta["study"], storage=storage).trials[cut.number + 1]
    assert rerun.user_attrs["resumed_from"] == cut.number and rerun.params["analysis.failure_limit"] == cut.params[
        "analysis.failure_limit"]


def test_constraints_hold_on_fresh_seeds_and_the_files_are_written(world, capsys):
    out = world / "cli"
    argv = ["optimize", str(world / "world.yaml"), "--search", str(world / "knobs.yaml"), "--constraint", LIMIT,
            "--constraint", "deploy_duration_mean<=4m", "--trials", "8", "--runs-per-trial", str(RUNS),
            "--fresh-runs", "40", "--executor", "serial", "--out", str(out), "--report", "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    rec = meta["recommendation"]
    assert rec["feasible"] and "Fresh seeds" in printed and "report: " in printed
    for name in ("trials.csv", "pareto.csv", "pareto.png", "fresh.csv", "recommended.yaml", "recommended-argo.yaml",
                 "recommended-flagger.yaml", "report.html", "study.db"):
        assert (out / name).is_file(), name
    fresh = pd.read_csv(out / "fresh.csv")
    mine = fresh[fresh["policy"] == rec["policy"]].set_index("metric")
    assert mine.loc["false_rollback", "value"] <= 0.2 and mine.loc["deploy_duration_mean", "value"] <= 240
    # independently: the recommended scenario file, replicated on the held-out seeds, meets both bounds
    recommended = validate_scenario(yaml.safe_load((out / "recommended.yaml").read_text()))
    runs = replicate(recommended, runs=40, seed=fresh_seed(0), engine="fluid", executor="serial")
    good = runs[~runs["bad_release"]]
    false_rollback = (good["outcome"] == "rolled_back").mean()
    deploy = good["deploy_duration_s"].where(good["outcome"] == "promoted", 7 * 60).mean()
    assert false_rollback == pytest.approx(mine.loc["false_rollback", "value"]) and false_rollback <= 0.2
    assert deploy == pytest.approx(mine.loc["deploy_duration_mean", "value"]) and deploy <= 240
    kinds = [d["kind"] for d in yaml.safe_load_all((out / "recommended-argo.yaml").read_text())]
    assert kinds[0] == "Rollout"
    assert main(["report", str(out), "--out-root", str(world / "reports")]) == 0
    assert "optimize report" in capsys.readouterr().out
    found = browser_check(out / "report.html", world)  # the report kind renders in Chromium, its figure embedded
    assert found["title"].startswith("simlab optimize") and found["images"] == 1 and found["broken"] == []



def test_without_options_the_study_runs_by_the_scenarios_decide_block(world):
    """A scenario's `decide:` is what its reports recommend by, so optimize takes it when the caller gives no
    --minimize or --constraint: its objective first, its limits as the study's constraints; options win."""
    decided = {**WORLD, "decide": {"objective": "bad_requests", "max_false_rollback": 0.1, "max_deploy_duration": "5m"}}
    (world / "decided.yaml").write_text(yaml.safe_dump(decided, sort_keys=False))
    options = dict(trials=3, runs_per_trial=4, fresh_runs=8, executor="serial", candidates=2)
    result = optimize(world / "decided.yaml", world / "knobs.yaml", **options)
    assert result.meta["minimize"] == ["bad_requests", "bad_requests_added", "false_rollback", "deploy_duration_mean"]
    assert result.meta["constraints"] == ["false_rollback<=0.1", "deploy_duration_mean<=300s"]
    assert result.meta["goal_source"] == {"minimize": "decide", "constraints": "decide"}
    held = result.trials[result.trials["state"] == "complete"]
    assert (held["feasible"] == ((held["false_rollback"] <= 0.1) & (held["deploy_duration_mean"] <= 300))).all()
    given = optimize(world / "decided.yaml", world / "knobs.yaml", minimize="false_rollback", constraints=LIMIT, **options)
    assert given.meta["minimize"] == ["false_rollback"] and given.meta["constraints"] == [LIMIT]
    assert given.meta["goal_source"] == {"minimize": "option", "constraints": "option"}
    plain = optimize(world / "world.yaml", world / "knobs.yaml", **options)
    assert plain.meta["constraints"] == [] and plain.meta["goal_source"]["constraints"] == "defaults"

BAD = [  # (search file text, the line, what the one line must say)
    ("knobs:\n  analysis.failure_limit: {intt: [1, 3]}\n", 2, "expected exactly one of int, float, duration, choice"),
    ("knobs:\n  analysis.failure_limit: {int: [3, 1]}\n", 2, "int: expected low below high, found [3, 1]"),
    ("knobs:\n  analysis.failure_limit: {int: [0, 3]}\n", 2, "rejects 0 here (analysis.failure_limit: expected a "
                                                             "value at least 1, found 0)"),
    ("knobs:\n  analysis.interval: {duration: [30s, 5 parsecs]}\n", 2, "found '5 parsecs'"),
    ("knobs:\n  analysis.failur_limit: {int: [1, 3]}\n", 2, "did you mean 'failure_limit'"),
    ("knobs:\n  strategy.keep_old: {duration: [1m, 5m]}\n", 2, "expected a field of the canary strategy"),
    ("knobs:\n  analysis.metrics[0].max: {float: [0, 0.1], log: true}\n", 2, "expected a low above 0 for a log range"),
    ("knobs:\n  strategy.steps: {count: [1, 2], weight: [10, 100], bake: [1m, 2m]}\n", 2, "below 100"),
    ("knobs:\n  analysis.interval: {duration: [10s, 1m], step: 7s}\n", 2, "whole number of steps"),
    ("knobs:\n  analysis.failure_limit: {int: [1, 3]}\n  analysis.failure_limit: {int: [1, 2]}\n", 3,
     "expected each key once"),
    ("knobs:\n  strategy.steps: {count: [1, 2], weight: [5, 50], bake: [1m, 2m]}\n"
     "  strategy.steps[0].bake: {duration: [1m, 2m]}\n", 2, "turned by one knob"),
]


@pytest.mark.parametrize("text,line,says", BAD, ids=[b[2][:30] for b in BAD])
def test_a_bad_search_file_is_one_line_naming_file_line_knob_and_value(world, capsys, text, line, says):
    path = world / "bad.yaml"
    path.write_text(text)
    code = main(["optimize", str(world / "world.yaml"), "--search", str(path), "--trials", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}:{line}: knobs.") and says in err, err


@pytest.mark.parametrize("argv,says", [
    (["--constraint", "false_rollback<0.05"], "expected <= or >="),
    (["--constraint", "deploy_time<=30m"], "did you mean"),
    (["--minimize", "bad_requests"], None),
])
def test_bad_objectives_and_constraints_are_one_line(world, capsys, argv, says):
    if says is None:  # a valid objective still needs the search file to exist
        argv = [*argv, "--search", str(world / "absent.yaml")]
        says = "no such search file"
    else:
        argv = [*argv, "--search", str(world / "knobs.yaml")]
    code = main(["optimize", str(world / "world.yaml"), *argv, "--trials", "1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and says in err, err


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text().split("### Searching for a better policy", 1)[1]
    block = text.split("```", 2)[1]
    return [line[2:].split("  #")[0] for line in block.splitlines() if line.startswith("$ simlab ")]


def test_the_readme_commands(tmp_path, capsys, monkeypatch):
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert [c.split()[1] for c in commands] == ["optimize", "export"]
    for command in commands:
        code = main(shlex.split(command)[1:])
        out, err = capsys.readouterr()
        assert code == 0, err
    meta = json.loads((tmp_path / "reports" / "optimize" / "meta.json").read_text())
    assert meta["recommendation"]["feasible"] and "Rollout" in out


def test_each_trials_runs_are_its_own_policys_even_when_a_freed_scenario_leaves_its_address():
    """The trial-run cache knows a policy by its fingerprint. It once remembered the fingerprint by the
    scenario's id(): a trial's scenario, freed, handed its address to a later trial's, which then read the first
    policy's runs (36 of 39 policies here; in CI, one study in a few found a worse policy than its grid's best)."""
    runs = Runs(Store(None, validate_scenario(WORLD), "fluid", 0))
    wrong = []
    for limit in range(1, 40):
        policy = validate_scenario({**WORLD, "analysis": {**WORLD["analysis"], "failure_limit": limit}})
        if runs._key(policy) != policy.fingerprint():
            wrong.append(limit)
        del policy  # its address is free for the next one
    assert not wrong
