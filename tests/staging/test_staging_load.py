"""Locust load on the real fleet: retries as `traffic.retries` says, counted per user request like the simulator."""
from __future__ import annotations

import numpy as np

from simlab.staging import procs
from simlab.staging.load import classify, run_load, user_requests
from simlab.staging.local_fleet import apply_split
from simlab.staging.supervisor import Staging
from staging_helpers import deploy_scenario

FLAKY = ("staging: {duration: 5s, rps: 60, release: {at: 1s, defects: [{kind: error_rate, rate: 0.5}]}, "
         "traffic: {retries: {max: 2, backoff: 10ms, budget: 1.0}}}\n")


def test_failed_attempts_are_retried_and_users_see_the_last_try(tmp_path):
    scenario = deploy_scenario(FLAKY)
    st = Staging.up(scenario, tmp_path / "state")
    try:
        st.start_instance("new", weight=0)
        st.wait_ready(2, 1, 10.0)
        apply_split(st, 50.0)  # half the attempts meet a 50% error rate: 25% of attempts fail
        report = run_load(scenario, st.url, tmp_path / "load")
    finally:
        records = st.records()
        st.down()
    assert not any(procs.is_running(r) for r in records)
    rec = report["records"]
    users = user_requests(rec)
    assert report["offered"] == len(users["t"]) > 0.8 * 60 * 5
    # About 1 + 0.25 + 0.0625 attempts per user request; a user fails only if three tries in a row fail.
    assert 1.15 < report["attempts"] / report["offered"] < 1.5
    assert report["failed"] / report["offered"] < 0.06
    assert rec["attempt"].max() == 3 and not (classify(rec, 2.0)["ok"] & (rec["status"] >= 500)).any()
    retried = users["attempt"] > 1
    assert np.all(users["latency"][retried] > rec["latency"].min())  # a retried request's time spans its tries
