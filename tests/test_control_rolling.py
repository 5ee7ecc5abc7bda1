"""Rolling update invariants (hypothesis): surge and unavailability limits hold at every tick.

Limits are resolved exactly as simlab/control/plans.py does, Kubernetes-style:
max_surge rounds up, max_unavailable rounds down, and when both come out 0 the
surge is 1 so the rollout can start.
"""
from hypothesis import given, settings
from hypothesis import strategies as st

from simlab.control import StartInstances, StopInstances
from simlab.scenario.types import resolve_count
from tests.helpers.control import build_scenario, drive


def limits(n: int, max_surge, max_unavailable) -> tuple[int, int]:
    surge = resolve_count(max_surge, n, round_up=True)
    unavailable = resolve_count(max_unavailable, n, round_up=False)
    if surge == 0 and unavailable == 0:
        surge = 1
    return surge, unavailable


count_or_percent = st.one_of(st.integers(0, 5), st.sampled_from(["0%", "10%", "25%", "33%", "50%", "100%"]))
batch = st.one_of(st.integers(1, 10), st.sampled_from(["10%", "25%", "50%", "100%"]))


@st.composite
def rollouts(draw):
    n = draw(st.integers(1, 30))
    surge, unavailable = draw(count_or_percent), draw(count_or_percent)
    if surge in (0, "0%") and unavailable in (0, "0%"):
        surge = 1  # the scenario validator rejects both 0 (the rollout could never start)
    strategy = {"kind": "rolling", "batch": draw(batch), "max_surge": surge, "max_unavailable": unavailable,
                "bake": draw(st.sampled_from([0, "5s"])), "analysis": draw(st.booleans())}
    startups = draw(st.lists(st.integers(1, 40), min_size=2 * n + 2, max_size=2 * n + 2))
    return n, strategy, startups


@settings(max_examples=100)
@given(rollouts())
def test_rolling_stays_within_surge_and_unavailability_and_ends_promoted(rollout):
    n, strategy, startups = rollout
    scenario = build_scenario(fleet={"instances": n}, strategy=strategy, analysis={"interval": "5s"})
    run = drive(scenario, startup=lambda version, k: startups[k % len(startups)], until=20000.0)
    surge, unavailable = limits(n, strategy["max_surge"], strategy["max_unavailable"])

    # Fleet counts only change through actions or by instances becoming ready, so checking what every tick
    # sees, plus the fleet after the last tick, checks every moment.
    for t, seen in run.states + [("end", run.final)]:
        assert seen.old.alive + seen.new.alive <= n + surge, (t, seen)
        assert seen.old.ready + seen.new.ready >= n - unavailable, (t, seen)
    for t, action in run.actions:
        assert not (isinstance(action, StartInstances) and action.version == "old"), "no rollback expected"
        assert not (isinstance(action, StopInstances) and action.version == "new"), "no rollback expected"

    c = run.controller
    assert (c.outcome, c.phase, c.detected_at) == ("promoted", "promoted", None)
    assert (run.final.old.alive, run.final.new.alive, run.final.new.ready) == (0, n, n)


def test_limits_round_like_kubernetes():
    assert limits(10, "25%", "25%") == (3, 2)  # surge up, unavailable down
    assert limits(3, "10%", "10%") == (1, 0)  # 0.3 instances: surge rounds up to 1, unavailable down to 0
    assert limits(3, "0%", "10%") == (1, 0)  # both 0 after rounding: surge 1
    assert limits(4, 0, 1) == (0, 1)
