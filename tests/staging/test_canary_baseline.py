"""The canary baseline on the real staging: baseline instances of the old version behind HAProxy with the canary's
weight, their own Prometheus series (version="baseline"), read by the mann_whitney judge, and gone afterwards.

Deploys onto the session's shared staging (tests/staging/conftest.py), which each deploy first resets to the
stable version. About 25 s.
"""
from __future__ import annotations

import yaml

from simlab.control.recording import read, replay_file
from simlab.scenario import parse_scenario
from simlab.scenario.loading import staging_scenario
from simlab.staging.deployer import deploy
from simlab.staging.supervisor import Staging
from simlab.staging.sweep import marked

ANALYSIS = {"interval": "2s", "failure_limit": 1, "min_requests": 20,
            "judge": {"kind": "mann_whitney", "samples": 4},
            "metrics": [{"metric": "error_rate", "critical": True}, {"metric": "latency_p99"}]}


def test_a_bad_canary_with_a_baseline_is_rolled_back_by_mann_whitney_against_the_baseline(shared_staging, tmp_path):
    data = yaml.safe_load(shared_staging[1].read_text())
    data.pop("failures", None)
    data.update(duration="18s", release={"at": "3s", "defects": [{"kind": "error_rate", "rate": 0.3}]},
                strategy={"kind": "canary", "baseline": True, "steps": [{"weight": 30, "bake": "12s"}, {"weight": 100}]},
                analysis=ANALYSIS, monitoring={"scrape_interval": "1s", "window": "8s", "delay": "0s"})
    s = staging_scenario(parse_scenario(yaml.safe_dump(data, sort_keys=False), source=str(tmp_path / "b.yaml")))
    record = tmp_path / "observations.jsonl"
    result = deploy(s, shared_staging[0].dir, with_load=True, record_to=record)
    summary, events = result.summary, result.events
    assert summary["outcome"] == "rolled_back" and summary["rollback_cause"] == "error_rate", summary
    # The deployer started a baseline of the old version with the canary, as many instances (ceil(3 x 30%) = 1).
    started = [d for k, d in zip(events["kind"], events["detail"]) if k == "instance_started"]
    assert sorted(d["version"] for d in started) == ["baseline", "new"], started
    # The judge ranked the canary against the baseline's own series, and the baseline served its share.
    measured = [d for k, d in zip(events["kind"], events["detail"]) if k == "analysis" and d.get("requests")]
    caught = next(d for d in measured if d["status"] == "failed")
    assert caught["against"] == "baseline" and caught["classes"]["error_rate"] == "high", caught
    _, ticks = read(record.read_text().splitlines())
    baseline = [a["answer"] for t in ticks for a in t["asked"]
                if a["ask"] == "version_samples" and a["arg"][0] == "baseline"]
    assert baseline and sum(w["requests"] for w in baseline[-1]) >= 20, baseline[-1:]
    assert sum(w["errors"] for w in baseline[-1]) <= 2  # the old version: no defect
    assert replay_file(record).events == result.extras["controller"].events  # the baseline's counts recorded too
    tl = result.timeline
    assert tl["baseline_ready"].max() == 1 and tl["baseline_weight"].max() == 30.0
    assert tl["baseline_ready"].iloc[-1] == 0 and tl["old_ready"].iloc[-1] == 3
    # Stopped with the canary at the rollback: no baseline process is left, in HAProxy or the state file.
    st = Staging.open(shared_staging[0].dir)
    name = next(d["instance"] for d in started if d["version"] == "baseline")
    assert name not in st.members and name not in st.api.servers()
    assert not [r.pid for r in marked(st.dir) if name in r.argv]
    assert [r for r in marked(st.dir) if any(a.startswith("old-") for a in r.argv)]  # as the stable ones are found
