"""Valid scenarios: the bundled one, the documented ones, defaults, shorthands, immutability."""
import re
from pathlib import Path

import pydantic
import pytest

from simlab.errors import ScenarioError
from simlab.scenario import Scenario, load_scenario, parse_scenario, validate_scenario
from simlab.scenario.distributions import Constant, Empirical, LogNormal
from simlab.scenario.model import Diurnal
from simlab.scenario.release import CrashLoop, ErrorRate, Latency
from simlab.scenario.strategy import BigBang, Canary, Rolling, default_strategy
from simlab.scenario.types import resolve_count

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = "name: m\nduration: 1h\nfleet: {instances: 10, service_time: 40ms}\ntraffic: {rps: 200}\n"


def test_the_bundled_checkout_canary_loads():
    s = load_scenario(ROOT / "experiments" / "checkout-canary.yaml")
    assert (s.name, s.duration, s.fleet.instances, s.traffic.rps) == ("checkout-canary", 3600.0, 20, 800.0)
    assert isinstance(s.fleet.service_time, LogNormal)
    assert isinstance(s.strategy, Canary)
    assert [(step.weight, step.bake) for step in s.strategy.steps] == [(1, 300), (10, 600), (50, 600), (100, 0)]
    assert s.release.at == 600.0 and s.release.defects == (ErrorRate(kind="error_rate", rate=0.05),)
    assert [(m.metric, m.max, m.max_ratio_to_baseline) for m in s.analysis.metrics] == [
        ("error_rate", 0.01, None), ("latency_p99", 0.5, None), ("error_rate", None, 2.0)]
    assert (s.monitoring.scrape_interval, s.monitoring.window, s.monitoring.delay) == (15.0, 60.0, 30.0)


BUNDLED = sorted(p.name for p in (ROOT / "experiments").glob("*.yaml")
                 if not p.name.startswith("variants-") and p.name != "knobs.yaml")  # knobs: a search file


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_scenario_loads_with_its_staging_form(name):
    from simlab.scenario.loading import staging_scenario

    s = load_scenario(ROOT / "experiments" / name)
    staged = staging_scenario(s)
    assert staged.staging is None and staged.duration <= s.duration
    assert [f.kind for f in staged.failures] == [f.kind for f in s.failures] or s.staging.failures is not None


def documented_scenarios() -> list[str]:
    text = (ROOT / "docs" / "scenario.md").read_text()
    return [block for block in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if block.startswith("name:")]


def test_the_documented_examples_are_valid():
    blocks = documented_scenarios()
    assert len(blocks) >= 2
    complete = parse_scenario(blocks[0], source="docs/scenario.md")
    assert complete.fleet.zones == 3 and len(complete.failures) == 3
    assert [d.kind for d in complete.release.defects] == ["error_rate", "latency", "crash_loop", "crash", "memory_leak"]
    assert complete.release.migration.lock_error_rate == 0.3
    assert complete.traffic.spikes[0].multiplier == 2.5
    for block in blocks[1:]:
        parse_scenario(block, source="docs/scenario.md")


def test_a_minimal_scenario_gets_the_documented_defaults():
    s = parse_scenario(MINIMAL)
    assert s.release is None and s.failures == () and s.seed == 0
    assert (s.fleet.zones, s.fleet.workers, s.fleet.queue_limit, s.fleet.startup, s.fleet.load_balancer) == (
        1, 8, 64, 20.0, "least_outstanding")
    assert isinstance(s.strategy, Canary) and s.strategy.progress_deadline == 600.0
    assert [step.weight for step in s.strategy.steps] == [1, 10, 50, 100]
    assert (s.analysis.interval, s.analysis.failure_limit, s.analysis.min_requests) == (60.0, 2, 50)
    assert (s.rollback.automatic, s.rollback.duration, s.rollback.on_call.ack) == (True, 60.0, 300.0)
    assert (s.monitoring.scrape_interval, s.monitoring.window, s.monitoring.delay) == (15.0, 60.0, 30.0)
    assert (s.slo.availability, s.slo.latency_threshold, s.slo.window) == (99.9, 1.0, 30 * 86400.0)
    assert (s.slo.alert.burn_rate, s.slo.alert.long_window, s.slo.alert.short_window) == (14.4, 300.0, 60.0)
    assert s.traffic.timeout == 30.0 and s.traffic.retries.max == 0


def test_a_bare_duration_is_a_constant_and_a_pattern_name_takes_its_defaults():
    s = parse_scenario(MINIMAL.replace("rps: 200", "rps: 200, pattern: diurnal"))
    assert s.fleet.service_time == Constant(dist="constant", value=0.04)
    assert isinstance(s.traffic.pattern, Diurnal) and s.traffic.pattern.peak_to_trough == 3.0


def test_rolling_limits_take_counts_and_percentages_rounded_like_kubernetes():
    s = parse_scenario(MINIMAL + "strategy: {kind: rolling, batch: 20 %, max_surge: 25%, max_unavailable: 1}\n")
    assert isinstance(s.strategy, Rolling)
    assert (s.strategy.batch, s.strategy.max_surge, s.strategy.max_unavailable) == ("20%", "25%", 1)
    assert resolve_count(s.strategy.max_surge, 10, round_up=True) == 3
    assert resolve_count("25%", 10, round_up=False) == 2
    assert resolve_count("20%", 10, round_up=True) == 2  # exact shares are not rounded past
    assert resolve_count(4, 10, round_up=True) == 4


def test_analysis_null_turns_analysis_off():
    assert parse_scenario(MINIMAL + "analysis: null\n").analysis is None


def test_defects_carry_their_modifiers():
    s = parse_scenario(MINIMAL + "release:\n  at: 5m\n  defects:\n"
                       "    - {kind: latency, add: 80ms, onset: {after: 15m}, only_above_rps: 600, fraction: 0.1}\n"
                       "    - {kind: crash_loop}\n")
    latency, loop = s.release.defects
    assert isinstance(latency, Latency) and isinstance(loop, CrashLoop)
    assert (latency.add, latency.onset.after, latency.only_above_rps, latency.fraction) == (0.08, 900.0, 600.0, 0.1)
    assert (loop.onset, loop.only_above_rps, loop.fraction) == (None, None, 1.0)
    assert s.release.bad


def test_empirical_samples_are_read_relative_to_the_scenario_file(tmp_path):
    (tmp_path / "times.csv").write_text("route,seconds\na,10ms\nb,0.03\n# a comment\nc,20ms\n")
    (tmp_path / "s.yaml").write_text(MINIMAL.replace("service_time: 40ms", "service_time: {dist: empirical, file: times.csv}"))
    s = load_scenario(tmp_path / "s.yaml")
    assert isinstance(s.fleet.service_time, Empirical)
    assert s.fleet.service_time.samples == pytest.approx((0.01, 0.03, 0.02))


def test_a_scenario_is_frozen():
    s = parse_scenario(MINIMAL)
    with pytest.raises(pydantic.ValidationError):
        s.duration = 10
    with pytest.raises(pydantic.ValidationError):
        s.fleet.instances = 3


def test_a_dumped_scenario_validates_back_to_itself():
    s = load_scenario(ROOT / "experiments" / "checkout-canary.yaml")
    assert validate_scenario(s.model_dump(mode="json")) == s


def test_fingerprint_ignores_names_and_follows_everything_else():
    a = parse_scenario(MINIMAL)
    assert parse_scenario(MINIMAL.replace("name: m", "name: other")).fingerprint() == a.fingerprint()
    assert parse_scenario(MINIMAL.replace("rps: 200", "rps: 201")).fingerprint() != a.fingerprint()


def test_fingerprint_leaves_out_values_at_their_defaults():
    """A field added with a default that keeps today's behaviour (strategy.baseline, fleet.warmup) must not change
    the fingerprint of scenarios written before it: their stores resume and their experiments stay current."""
    s = load_scenario(ROOT / "experiments" / "checkout-canary.yaml")
    written_out = validate_scenario(s.model_dump(mode="json"))  # every default spelt out
    assert written_out.fingerprint() == s.fingerprint()
    a = parse_scenario(MINIMAL + "strategy: {kind: canary, steps: [{weight: 10, bake: 1m}, {weight: 100}]}\n")
    same = parse_scenario(MINIMAL + "strategy: {kind: canary, baseline: false, steps: [{weight: 10, bake: 1m}, {weight: 100}]}\n")
    other = parse_scenario(MINIMAL + "strategy: {kind: canary, baseline: true, steps: [{weight: 10, bake: 1m}, {weight: 100}]}\n")
    assert same.fingerprint() == a.fingerprint() != other.fingerprint()


def test_with_strategy_swaps_in_the_defaults_of_another_kind():
    s = parse_scenario(MINIMAL + "strategy: {kind: rolling, batch: 3}\n")
    assert s.with_strategy("rolling") is s
    assert isinstance(s.with_strategy("big_bang").strategy, BigBang)
    assert s.with_strategy("canary").strategy == default_strategy("canary")
    with pytest.raises(ScenarioError, match=r"^--strategy: expected one of big_bang, rolling, blue_green, canary, "
                                            r"found 'linear'$"):
        s.with_strategy("linear")


def test_json_schema_lists_every_section():
    schema = Scenario.model_json_schema()
    assert {"name", "duration", "fleet", "traffic", "release", "strategy", "analysis", "rollback", "monitoring",
            "slo", "failures"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "duration", "fleet", "traffic"}
    assert schema["$defs"]["Fleet"]["additionalProperties"] is False  # unknown keys are errors for editors too
