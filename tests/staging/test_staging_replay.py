"""Same observations, same decisions: recorded streams replayed into a fresh controller.

The staging deployer records its stream in test_staging_deploy.py (a real
deploy); here the simulator records the same format, and a tampered stream
must be caught.
"""
from __future__ import annotations

import io
import json

import pytest

from simlab.control.recording import Divergence, RecordingController, read, replay
from simlab.engines.request.engine import RequestEngine
from staging_helpers import deploy_scenario

BAD = "staging: {duration: 30s, release: {defects: [{kind: error_rate, rate: 0.3}]}}\n"


def _simulate_recorded(scenario):
    engine = RequestEngine(scenario, scenario.seed)
    stream, live = io.StringIO(), engine.controller
    engine.controller = RecordingController(live, stream.write, driver="request")
    result = engine.run()
    header, ticks = read(stream.getvalue().splitlines())
    return result, live, header, ticks


@pytest.mark.parametrize("extra,outcome", [("staging: {duration: 30s}\n", "promoted"), (BAD, "rolled_back")])
def test_a_simulated_stream_replays_to_the_same_decisions(extra, outcome):
    result, live, header, ticks = _simulate_recorded(deploy_scenario(extra))
    assert header["driver"] == "request" and result.summary["outcome"] == outcome
    assert len(ticks) == 30 and any(t["asked"] for t in ticks)
    replayed = replay(ticks, header["scenario"])
    assert (replayed.outcome, replayed.detected_at, replayed.promoted_at) == (live.outcome, live.detected_at,
                                                                              live.promoted_at)
    assert replayed.events == live.events


def test_a_changed_observation_is_a_divergence():
    _, _, header, ticks = _simulate_recorded(deploy_scenario(BAD))
    # The first analysis that failed: report no errors instead, and the controller decides otherwise.
    n = next(i for i, t in enumerate(ticks) if any(e[1] == "analysis" and e[2]["status"] == "failed"
                                                  for e in t["events"]))
    for q in ticks[n]["asked"]:
        q["answer"]["errors"] = 0
    with pytest.raises(Divergence, match=f"tick {n} "):
        replay(ticks, header["scenario"])


def test_a_question_not_asked_is_a_divergence():
    _, _, header, ticks = _simulate_recorded(deploy_scenario(BAD))
    n = next(i for i, t in enumerate(ticks) if t["asked"])
    ticks[n]["asked"][0]["arg"] = 123.0 if ticks[n]["asked"][0]["ask"] == "version_window" else "old"
    with pytest.raises(Divergence, match="question 1"):
        replay(ticks, header["scenario"])
    assert json.dumps(ticks)  # the stream stays plain JSON
