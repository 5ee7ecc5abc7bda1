"""Deploys on the real fleet, driven by the shared controller, measured from Locust's records."""
from __future__ import annotations

import json

import pytest

from simlab.results import SUMMARY_KEYS, TIMELINE_COLUMNS
from simlab.staging import procs
from simlab.staging.deployer import deploy
from simlab.staging.supervisor import Staging
from staging_helpers import deploy_scenario

SHORT = "staging: {duration: 30s}\n"
BAD = "staging: {duration: 30s, release: {defects: [{kind: error_rate, rate: 0.3}]}}\n"


def test_a_good_release_is_promoted_by_canary_and_written_like_a_simulation(tmp_path):
    result = deploy(deploy_scenario(SHORT), tmp_path / "state", with_load=True)
    summary = result.summary.to_dict()
    assert summary["outcome"] == "promoted" and summary["engine"] == "staging"
    assert list(summary)[:len(SUMMARY_KEYS)] == list(SUMMARY_KEYS)
    assert summary["failed"] == 0 and summary["requests"] > 0.8 * 40 * 30
    assert summary["detected_at_s"] is None and summary["deploy_duration_s"] > 8  # one 8 s bake at least
    last = result.timeline.iloc[-1]
    assert (last["new_ready"], last["old_ready"], last["new_weight"]) == (2, 0, 100.0)
    kinds = list(result.events["kind"])
    assert kinds.index("release_started") < kinds.index("promoted")
    out = result.write(tmp_path / "out")
    assert list(json.loads((out / "summary.json").read_text())) == list(summary)
    assert (out / "timeline.csv").read_text().splitlines()[0] == ",".join(TIMELINE_COLUMNS)
    assert not (tmp_path / "state" / "state.json").exists()  # the deploy started staging, so it stopped it


def test_a_bad_release_is_rolled_back_by_canary_and_hurts_far_less_than_big_bang(tmp_path):
    state = tmp_path / "state"
    Staging.up(deploy_scenario(BAD), state)
    try:
        canary = deploy(deploy_scenario(BAD), state, with_load=True).summary
        assert canary["outcome"] == "rolled_back" and canary["detected_at_s"] is not None
        assert canary["failed_error"] > 0
        assert Staging.open(state).ready_counts() == {"old": 2, "new": 0}
        big_bang = BAD.replace("}}\n", "}, strategy: {kind: big_bang}}\n")
        bang = deploy(deploy_scenario(big_bang), state, with_load=True).summary
        assert bang["failed"] > 100
        assert canary["failed"] < 0.3 * bang["failed"], (canary["failed"], bang["failed"])
    finally:
        st = Staging.open(state)  # the deploys changed the fleet: read what runs now
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)
