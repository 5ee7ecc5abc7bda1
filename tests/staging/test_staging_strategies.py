"""A good release is promoted on the real fleet by rolling and by blue_green (canary: test_staging_deploy)."""
from __future__ import annotations

import pytest

from simlab.simulation import simulate
from simlab.staging.deployer import deploy
from staging_helpers import deploy_scenario, rollout_steps

ROLLING = ("staging: {duration: 20s, release_at: 3s, strategy: {kind: rolling, batch: 1, max_surge: 1, "
           "max_unavailable: 0, bake: 2s}}\n")
BLUE_GREEN = "staging: {duration: 14s, release_at: 3s, strategy: {kind: blue_green, warmup: 1s, keep_old: 3s}}\n"


@pytest.mark.parametrize("extra", [ROLLING, BLUE_GREEN], ids=["rolling", "blue_green"])
def test_a_good_release_is_promoted_without_a_failed_request(extra, tmp_path):
    scenario = deploy_scenario(extra)
    result = deploy(scenario, tmp_path / "state", with_load=True)
    summary, timeline = result.summary, result.timeline
    assert summary["outcome"] == "promoted", list(result.events["kind"])
    assert summary["failed"] == 0 and summary["requests"] > 0.8 * 40 * scenario.duration
    last = timeline.iloc[-1]
    assert (last["new_ready"], last["old_ready"]) == (2, 0)
    assert rollout_steps(result.extras["controller"].events) == rollout_steps(
        simulate(scenario).extras["controller"].events)
    if scenario.strategy.kind == "rolling":
        # max_unavailable 0: two instances in rotation at every second of the rollout.
        assert summary["min_capacity"] == 1.0
        assert [e["new_instances"] for e in result.events["detail"] if "new_instances" in e] == [1, 2]
    else:
        # One switch from blue to green, made only when every green instance was ready.
        weights = timeline["new_weight"].tolist()
        assert sorted(set(weights)) == [0.0, 100.0]
        switch = weights.index(100.0)
        assert timeline["new_ready"].iloc[switch] == 2 and weights[switch:] == [100.0] * (len(weights) - switch)
