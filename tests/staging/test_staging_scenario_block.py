"""The `staging:` block shrinks a scenario into an ordinary, validated one."""
import pytest

from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario
from simlab.scenario.loading import staging_scenario

BASE = """
name: big
duration: 1h
fleet: {instances: 20, service_time: 40ms, startup: 20s, health_check: {interval: 5s}}
traffic: {rps: 800}
release: {at: 10m, defects: [{kind: error_rate, rate: 0.3}]}
strategy: {kind: canary, steps: [{weight: 1, bake: 5m}, {weight: 100}]}
monitoring: {scrape_interval: 15s, window: 1m}
"""


def test_overrides_apply_and_the_block_is_dropped():
    s = parse_scenario(BASE + """
staging:
  duration: 2m
  instances: 3
  rps: 40
  release_at: 10s
  fleet: {startup: 1s, health_check: {interval: 500ms}}
  strategy: {steps: [{weight: 20, bake: 10s}, {weight: 100}]}
  monitoring: {scrape_interval: 1s, window: 10s}
""")
    staged = staging_scenario(s)
    assert (staged.duration, staged.fleet.instances, staged.traffic.rps) == (120, 3, 40)
    assert staged.release.at == 10 and staged.release.defects[0].rate == 0.3
    assert staged.fleet.startup == 1 and staged.fleet.health_check.interval == 0.5
    assert staged.fleet.health_check.unhealthy_after == 3  # untouched keys survive the merge
    assert [st.weight for st in staged.strategy.steps] == [20, 100]
    assert staged.staging is None
    assert staged.fleet.service_time == s.fleet.service_time


def test_a_strategy_of_another_kind_replaces_the_strategy():
    s = parse_scenario(BASE + "staging: {strategy: {kind: big_bang}}\n")
    assert staging_scenario(s).strategy.kind == "big_bang"


def test_without_a_block_the_scenario_is_unchanged():
    s = parse_scenario(BASE)
    assert staging_scenario(s).fingerprint() == s.fingerprint()


def test_an_invalid_override_names_the_field():
    s = parse_scenario(BASE + "staging: {monitoring: {window: 1s, scrape_interval: 5s}}\n")
    with pytest.raises(ScenarioError, match="window"):
        staging_scenario(s)


def test_unknown_keys_in_the_block_are_rejected():
    with pytest.raises(ScenarioError, match="instancez"):
        parse_scenario(BASE + "staging: {instancez: 3}\n")
