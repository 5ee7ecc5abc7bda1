"""Invariants of the request engine over random small scenarios (hypothesis)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simlab import simulate
from simlab.scenario.types import resolve_count
from tests.helpers.scenarios import scenario

defects = st.sampled_from([
    [],
    [{"kind": "error_rate", "rate": 0.3}],
    [{"kind": "latency", "multiplier": 4}],
    [{"kind": "crash", "mtbf": "20s"}],
    [{"kind": "crash_loop"}],
    [{"kind": "memory_leak", "oom_after": "40s"}],
    [{"kind": "error_rate", "rate": 0.5, "fraction": 0.2, "onset": {"after": "20s"}}],
])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    strategy=st.sampled_from(["canary", "rolling", "blue_green", "big_bang"]),
    instances=st.integers(1, 5),
    workers=st.integers(1, 4),
    queue_limit=st.integers(0, 8),
    rps=st.integers(10, 150),
    timeout=st.sampled_from(["150ms", "500ms", "2s"]),
    retries=st.integers(0, 2),
    crash_mtbf=st.sampled_from([None, "30s", "2m"]),
    release_defects=defects,
    seed=st.integers(0, 2**16),
)
def test_every_user_request_ends_once_as_succeeded_or_failed(
    strategy, instances, workers, queue_limit, rps, timeout, retries, crash_mtbf, release_defects, seed
):
    failures = [{"kind": "instance_crash", "mtbf": crash_mtbf, "restart": "5s"}] if crash_mtbf else []
    s = scenario(strategy, **{
        "duration": "150s", "release.at": "30s", "fleet.instances": instances, "fleet.workers": workers,
        "fleet.queue_limit": queue_limit, "fleet.zones": 1, "traffic.rps": rps, "traffic.timeout": timeout,
        "traffic.retries": {"max": retries, "backoff": "50ms", "budget": 0.2}, "failures": failures,
        "release.defects": release_defects, "strategy.progress_deadline": "1m",
    })
    result = simulate(s, seed=seed)
    tl, summary = result.timeline, result.summary
    assert (tl["offered"] == tl["succeeded"] + tl["failed"]).all()
    causes = tl[["failed_error", "failed_rejected", "failed_timeout", "failed_reset"]].sum(axis=1)
    assert (causes == tl["failed"]).all()
    assert (tl["slow"] <= tl["succeeded"]).all()
    assert summary["requests"] == tl["offered"].sum()
    assert summary["bad"] == summary["failed"] + summary["slow"]
    assert summary["attempts"] >= summary["requests"]
    assert summary["attempts"] <= summary["requests"] * (1 + retries)
    assert tl["utilization"].between(0.0, 1.0).all()
    assert (tl["in_flight"] >= 0).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instances=st.integers(2, 10),
    surge=st.sampled_from([0, 1, 2, "25%"]),
    unavailable=st.sampled_from([0, 1, "30%"]),
    batch=st.sampled_from([1, 3, "50%"]),
    seed=st.integers(0, 1000),
)
def test_rolling_stays_within_surge_and_unavailability_in_the_engine(instances, surge, unavailable, batch, seed):
    if surge == 0 and unavailable == 0:
        unavailable = 1
    s = scenario("rolling", **{
        "duration": "12m", "release.at": "20s", "fleet.instances": instances, "traffic.rps": 40,
        "strategy.batch": batch, "strategy.max_surge": surge, "strategy.max_unavailable": unavailable,
        "strategy.bake": "10s", "strategy.analysis": False,
    })
    result = simulate(s, seed=seed)
    tl = result.timeline
    max_surge = resolve_count(surge, instances, round_up=True)
    max_unavailable = resolve_count(unavailable, instances, round_up=False)
    if max_surge == 0 and max_unavailable == 0:
        max_surge = 1
    # The limits bind the rollout; a rollback brings the stable fleet back at once (as Argo's abort does).
    tl = tl[~tl["phase"].isin(["rolling_back", "rolled_back"])]
    alive = tl[["old_ready", "old_starting", "old_down", "new_ready", "new_starting", "new_down"]].sum(axis=1)  # draining excluded, as in Kubernetes
    ready = tl["old_ready"] + tl["new_ready"]
    assert alive.max() <= instances + max_surge
    assert ready.min() >= instances - max_unavailable
    assert result.summary["outcome"] == "promoted"
