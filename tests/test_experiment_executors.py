"""Serial, process pool and a real Dask LocalCluster give the very same runs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simlab.errors import ScenarioError
from simlab.experiment import compare, replicate
from simlab.experiment.replication import run_seed
from simlab.experiment.twins import TWIN_COLUMNS
from tests.helpers.scenarios import scenario

TINY = {"duration": "3m", "traffic.rps": 20, "release.at": "30s", "analysis.interval": "15s",
        "analysis.min_requests": 5, "strategy.steps": [{"weight": 34, "bake": "40s"}, {"weight": 100}],
        "release.defects": [{"kind": "error_rate", "rate": {"dist": "uniform", "low": 0.1, "high": 0.4}}],
        "release.bad_probability": 0.5}


def test_run_seeds_depend_on_seed_and_run_only():
    assert run_seed(0, 3) == run_seed(0, 3)
    assert len({run_seed(s, r) for s in range(5) for r in range(50)}) == 250
    assert all(0 <= run_seed(s, r) < 2**63 for s in range(3) for r in range(3))


def test_serial_local_and_dask_give_identical_results():
    s = scenario("canary", **TINY)
    serial = compare(s, strategies="canary,big_bang", runs=3, seed=2, executor="serial")
    local = compare(s, strategies="canary,big_bang", runs=3, seed=2, executor="local")
    pd.testing.assert_frame_equal(local.runs, serial.runs)
    pd.testing.assert_frame_equal(local.table, serial.table)
    dask = replicate(s.with_strategy("big_bang"), runs=3, seed=2, executor="dask")
    expected = serial.runs[serial.runs["variant"] == "big_bang"].drop(columns=["variant", *TWIN_COLUMNS])
    pd.testing.assert_frame_equal(dask, expected.reset_index(drop=True))


def test_an_unknown_executor_or_engine_and_a_scheduler_without_dask_are_rejected():
    s = scenario("canary", **TINY)
    with pytest.raises(ScenarioError, match="executor: expected one of local, dask, serial, found 'threads'"):
        replicate(s, runs=1, executor="threads")
    with pytest.raises(ScenarioError, match="scheduler: expected only with executor 'dask'"):
        replicate(s, runs=1, executor="local", scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ScenarioError, match="engine: expected one of"):
        replicate(s, runs=1, engine="quantum", executor="serial")


def test_a_given_scheduler_address_is_used_and_closed_clusters_agree():
    import dask
    from dask.distributed import LocalCluster

    s = scenario("canary", **TINY)
    # Profiler off as in simlab's own LocalCluster: its sampled frames keep the request recorder's
    # np.frombuffer views alive, and a later append then fails with BufferError (engine issue, reported).
    with dask.config.set({"distributed.worker.profile.enabled": False}), LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = replicate(s, runs=2, seed=2, executor="dask", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(remote, replicate(s, runs=2, seed=2, executor="serial"))


def test_fluid_runs_go_through_simulate_batch_with_each_runs_drawn_release(monkeypatch):
    """When the fluid engine offers simulate_batch, a block's runs share one call, good and bad draws together."""
    import simlab.simulation as sim
    from simlab.scenario.release import draw_release

    calls = []

    def simulate_batch(scenario, seeds, releases):  # stands in for the vectorised engine: same numbers, one call
        calls.append(([c.release.bad for c in releases], list(seeds)))
        return [sim.simulate(c, seed=seed, engine="request") for c, seed in zip(releases, seeds)]

    monkeypatch.setattr(sim, "simulate_batch", simulate_batch, raising=False)
    monkeypatch.setattr(sim, "ENGINES", tuple(sim.ENGINES) + ("fluid",) if "fluid" not in sim.ENGINES else sim.ENGINES)
    s = scenario("canary", **{**TINY, "release.defects": [{"kind": "error_rate", "rate": 0.3}],
                              "release.bad_probability": 0.5})
    batched = replicate(s, runs=6, seed=3, engine="fluid", executor="serial")
    assert len(calls) == 1 and sorted(set(calls[0][0])) == [False, True]  # one call, both draws in it
    assert calls[0][0] == [draw_release(s, seed)[0].release.bad for seed in calls[0][1]]
    assert sorted(calls[0][1]) == sorted(batched["run_seed"])
    pd.testing.assert_frame_equal(batched, replicate(s, runs=6, seed=3, executor="serial"))


def test_a_batch_of_mixed_releases_simulates_each_run_with_its_own_release():
    """The real engine: good and bad draws in one lockstep batch; one run alone equals simulate()."""
    from simlab.engines.fluid.engine import simulate_batch
    from simlab.scenario.release import draw_release
    from simlab.simulation import simulate

    s = scenario("canary", **{**TINY, "release.defects": [{"kind": "error_rate", "rate": 0.3}],
                              "release.bad_probability": 0.5})
    seeds = list(range(8))
    releases = [draw_release(s, seed)[0] for seed in seeds]
    assert {c.release.bad for c in releases} == {False, True}
    rows = simulate_batch(s, seeds, releases=releases)
    assert list(rows["bad_release"]) == [c.release.bad for c in releases]
    assert set(rows[rows.bad_release].outcome) == {"rolled_back"}  # 30% errors: every bad run is caught
    assert set(rows[~rows.bad_release].outcome) == {"promoted"}
    assert (rows[rows.bad_release]["bad"].min() > 5 * rows[~rows.bad_release]["bad"].max())
    alone = simulate_batch(s, [seeds[1]], releases=[releases[1]]).iloc[0].to_dict()
    direct = simulate(releases[1], seed=seeds[1], engine="fluid").summary.to_dict()
    assert {k: alone[k] for k in direct if k in alone} == pytest.approx(
        {k: v for k, v in direct.items() if k in alone}, nan_ok=True)


def test_fluid_batches_are_fixed_blocks_of_runs_so_every_executor_gives_the_same_numbers():
    """The real vectorised engine: its replications share a data-plane stream, batched by run index only."""
    from simlab.experiment.replication import FLUID_BLOCK, _tasks_of

    todo = [(r, run_seed(0, r)) for r in range(FLUID_BLOCK + 5)]
    assert [len(t) for t in _tasks_of("fluid", todo)] == [FLUID_BLOCK, 5]
    assert [len(t) for t in _tasks_of("request", todo[:3])] == [1, 1, 1]
    s = scenario("canary", **{**TINY, "release.defects": [{"kind": "error_rate", "rate": 0.3}]})
    serial = replicate(s, runs=5, seed=4, engine="fluid", executor="serial")
    local = replicate(s, runs=5, seed=4, engine="fluid", executor="local")
    pd.testing.assert_frame_equal(local, serial)
    assert set(serial["engine"]) == {"fluid"}
    assert serial["bad_release"].any() and not serial["bad_release"].all()


# --- the default executor from a script, the REPL and the README, with no `if __name__ == "__main__"` guard ---

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str | None, cwd: Path, script: Path | None = None) -> subprocess.CompletedProcess:
    """`python script` (or `python -i` reading `code` on stdin, as the REPL does), this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(script)] if script is not None else [sys.executable, "-i", "-q"]
    return subprocess.run(argv, input=code, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


GUARD_FREE = """\
import simlab

runs = simlab.replicate("s.yaml", runs=3, seed=1)   # the default executor: a local process pool
print("runs", len(runs), "bad releases", int(runs["bad_release"].sum()))
"""


def test_replicate_at_the_top_level_of_a_script_without_a_main_guard(tmp_path):
    """Spawned workers used to re-import the script and die in multiprocessing's bootstrapping check."""
    from tests.test_experiment_cli import SMALL

    (tmp_path / "s.yaml").write_text(SMALL)
    (tmp_path / "script.py").write_text(GUARD_FREE)
    done = run_python(None, tmp_path, tmp_path / "script.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("runs 3 bad releases") == 1, done.stdout  # the script ran once, not once per worker
    repl = run_python(GUARD_FREE, tmp_path)
    assert repl.returncode == 0 and "runs 3 bad releases" in repl.stdout, repl.stderr


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_the_readme_experiment_example_runs_as_a_plain_script(tmp_path):
    """The README's replicate/compare/sweep block, as written (no main guard), on a small scenario and 2 runs."""
    from tests.test_experiment_cli import SMALL

    (block,) = [b for b in readme_python_blocks() if "simlab.replicate(" in b]
    assert "if __name__" not in block.replace("`if __name__ == \"__main__\":`", "")
    paths = set(re.findall(r'"(experiments/[\w.-]+\.yaml)"', block))
    assert paths, "the example should load a bundled scenario"
    for path in paths:  # the same names, a small scenario behind them, so the example runs in seconds
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(SMALL.replace("  instances: 3\n", "  instances: 3\n  zones: 3\n"))  # zone_down
    shutil.copytree(ROOT / "notebooks" / "data", tmp_path / "notebooks" / "data")  # the bundled deploy --predict
    script = tmp_path / "example.py"
    script.write_text(re.sub(r"\bruns=\d+", "runs=2", block) + "\nprint('done', len(runs), len(cmp.table), len(sw.table))\n")
    done = run_python(None, tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "done 2 2 3" in done.stdout, done.stdout
