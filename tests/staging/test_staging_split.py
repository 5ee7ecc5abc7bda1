"""The controller's split on the real staging, as the simulator makes it: the version first, by weight, then the
scenario's balancer inside it (docs/staging.md, "How a weight becomes traffic").

Under `least_outstanding` at low load (two requests at a time over five instances) HAProxy's per-server weights
in one backend gave a 10% canary its instance share instead: 297 of 1,500 requests (19.8%) with 1 instance of 5, as
`leastconn` keys an idle server 0 whatever its weight. Each share is held to a binomial test at 99.9%.
About 20 s.
"""
from __future__ import annotations

from scipy.stats import binomtest

from simlab.staging.health import status
from simlab.staging.local_fleet import LocalFleet
from simlab.staging.prometheus import PromQL
from simlab.staging.supervisor import Staging
from staging_helpers import get_many, small_scenario, wait_for

LEAST_OUTSTANDING = "staging: {fleet: {load_balancer: least_outstanding}}\n"  # 3 instances, 10 ms exponential


def served(st: Staging, total: int) -> dict[str, int]:
    """Requests each version's instances answered (their own counters, as the analysis reads them), once
    Prometheus has scraped `total` of them."""
    client = PromQL(st.prometheus_url)
    wait_for(lambda: (client.scalar("sum(simlab_requests_total)") or 0) >= total, 10, f"{total} requests scraped")
    return {r["metric"]["version"]: round(float(r["value"][1]))
            for r in client.query("sum by (version) (simlab_requests_total)")}


def send(st: Staging, n: int, before: dict[str, int]) -> dict[str, int]:
    """`n` requests, two at a time; what each version answered of them."""
    assert get_many(st.url + "/", n, threads=2).count(200) == n
    after = served(st, sum(before.values()) + n)
    return {v: after.get(v, 0) - before.get(v, 0) for v in ("old", "new", "baseline")}


def assert_share(counts: dict[str, int], version: str, share: float) -> None:
    n = sum(counts.values())
    test = binomtest(counts[version], n, share)
    assert test.pvalue >= 0.001, f"{version}: {counts[version]} of {n} ({counts[version] / n:.1%}), expected {share:.0%}"


def test_least_outstanding_gives_the_canary_and_the_baseline_their_weight_not_their_instance_share(tmp_path):
    st = Staging.up(small_scenario(LEAST_OUTSTANDING), tmp_path / "state")
    try:
        fleet = LocalFleet(st)
        fleet.start("new", 1)
        fleet.start("baseline", 1)
        fleet.hold_weight(10.0, 10.0)
        wait_for(lambda: fleet.counts()["new_ready"] == fleet.counts()["baseline_ready"] == 1, 10,
                 "the canary and its baseline in rotation")
        wait_for(lambda: (PromQL(st.prometheus_url).scalar('count(up{job="simlab"} == 1)') or 0) >= 5, 10,
                 "Prometheus to scrape all five instances")
        assert status(st)["split"] == {"by_instance": False, "new": 10.0, "baseline": 10.0, "old": 80.0}
        counts = send(st, 1500, served(st, 0))
        assert_share(counts, "new", 0.10)
        assert_share(counts, "baseline", 0.10)
        # HAProxy's own series still read as one proxy="app", the version's backend in simlab_pool.
        client = PromQL(st.prometheus_url)
        lb = 'sum by (simlab_pool) (haproxy_server_http_responses_total{proxy="app",server="new-0"})'
        wait_for(lambda: {r["metric"]["simlab_pool"]: round(float(r["value"][1])) for r in client.query(lb)}
                 == {"new": counts["new"], "all": 0}, 5, "HAProxy's count of new-0's answers in Prometheus")

        # By instance (rolling, big bang: weight None): one pool of every instance in rotation, 1 in 5 each.
        fleet.hold_weight(None)
        base = served(st, 1500)
        by_instance = send(st, 500, base)
        assert_share(by_instance, "new", 0.2)
        assert_share(by_instance, "old", 0.6)

        # A pool with no instance in rotation passes its share to the stable version, as the simulator's does.
        fleet.hold_weight(10.0, 10.0)
        st.api.set_state("baseline-0", "drain")
        base = served(st, 2000)
        drained = send(st, 300, base)
        assert drained["baseline"] == 0
        assert_share(drained, "new", 0.10)
    finally:
        st.down()
