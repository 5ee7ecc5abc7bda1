"""Bad scenarios: one ScenarioError naming file:line, the field's dotted path, what was expected, what was found."""
import pytest

from simlab.errors import ScenarioError
from simlab.scenario import load_scenario, validate_scenario

GOOD = """\
name: shop
duration: 1h
fleet:
  instances: 4
  zones: 2
  service_time: {dist: lognormal, mean: 40ms, p99: 200ms}
traffic:
  rps: 100
release:
  at: 10m
  defects:
    - {kind: error_rate, rate: 0.05}
strategy:
  kind: canary
  steps:
    - {weight: 10, bake: 5m}
    - {weight: 50, bake: 5m}
    - {weight: 100}
failures:
  - {kind: zone_outage, zone: 1, at: 20m, duration: 5m}
"""

DURATION = "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds"


def with_line(number: int, text: str) -> str:
    """GOOD with line `number` (1-based) replaced by `text`."""
    lines = GOOD.splitlines()
    lines[number - 1] = text
    return "\n".join(lines) + "\n"


def load_error(tmp_path, text: str, name: str = "shop.yaml") -> ScenarioError:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def test_the_base_scenario_is_valid(tmp_path):
    (tmp_path / "shop.yaml").write_text(GOOD)
    assert load_scenario(tmp_path / "shop.yaml").strategy.steps[2].weight == 100


CASES = {
    "typo'd key": (8, "  rsp: 100", "traffic.rsp: unknown key 'rsp'; did you mean 'rps'?"),
    "typo'd key in a list item": (
        17, "    - {weight: 50, bkae: 5m}", "strategy.steps[1].bkae: unknown key 'bkae'; did you mean 'bake'?"),
    "unknown key": (10, "  when: 10m", "release.when: unknown key 'when' (expected one of: at, version, defects, migration, bad_probability)"),
    "negative rate": (8, "  rps: -5", "traffic.rps: expected a value at least 0.0, found -5"),
    "error rate above 1": (12, "    - {kind: error_rate, rate: 1.5}", "release.defects[0].rate: expected a value at most 1.0, found 1.5"),
    "canary weights falling": (
        17, "    - {weight: 5, bake: 5m}",
        "strategy.steps[1].weight: expected weights to rise step by step, above steps[0].weight=10, found 5"),
    "canary not ending at 100": (
        18, "    - {weight: 90}", "strategy.steps[2].weight: expected the last step to reach weight 100, found 90"),
    "canary weight zero": (
        16, "    - {weight: 0, bake: 5m}", "strategy.steps[0].weight: expected a value greater than 0.0, found 0"),
    "canary weight not a number": (
        17, "    - {weight: half, bake: 5m}", "strategy.steps[1].weight: expected a number, found 'half'"),
    "unparsable duration": (2, "duration: 5 parsecs", f"duration: {DURATION}, found '5 parsecs'"),
    "unparsable nested duration": (17, "    - {weight: 50, bake: soon}", f"strategy.steps[1].bake: {DURATION}, found 'soon'"),
    "negative duration": (10, "  at: -300", "release.at: expected a non-negative duration, found -300"),
    "boolean duration": (
        2, "duration: yes", "duration: expected a duration such as 30s, 5m or a number of seconds, found True"),
    "unknown strategy kind": (
        14, "  kind: canery",
        "strategy.kind: expected one of 'big_bang', 'rolling', 'blue_green', 'canary', found 'canery'"),
    "unknown defect kind": (
        12, "    - {kind: eror_rate, rate: 0.05}",
        "release.defects[0].kind: expected one of 'error_rate', 'latency', 'crash_loop', 'crash', 'memory_leak', "
        "found 'eror_rate'"),
    "zone beyond fleet.zones": (
        20, "  - {kind: zone_outage, zone: 2, at: 20m, duration: 5m}",
        "failures[0].zone: expected a zone from 0 to 1 (fleet.zones is 2), found 2"),
    "lognormal p99 no lognormal can have": (
        6, "  service_time: {dist: lognormal, mean: 40ms, p99: 2s}",
        "fleet.service_time.p99: expected at most 0.5987s (no log-normal has a p99 above 15x its mean, here 0.04s), "
        "found 2s"),
    "lognormal p99 below the mean": (
        6, "  service_time: {dist: lognormal, mean: 40ms, p99: 20ms}",
        "fleet.service_time.p99: expected a value greater than the mean (0.04s), found 0.02s"),
    "lognormal under-determined": (
        6, "  service_time: {dist: lognormal, mean: 40ms}",
        "fleet.service_time: expected exactly two of: mean+p99, mean+sigma, median+p95, median+p99, median+sigma; "
        "found mean"),
    "unknown distribution": (
        6, "  service_time: {dist: gamma, mean: 40ms}",
        "fleet.service_time.dist: expected one of 'constant', 'exponential', 'lognormal', 'empirical', found 'gamma'"),
    "samples file missing": (
        6, "  service_time: {dist: empirical, file: nope.csv}",
        "fleet.service_time.file: expected a readable file of samples, found 'nope.csv' (No such file or directory)"),
    "count not a number": (4, "  instances: four", "fleet.instances: expected a whole number, found 'four'"),
    "missing required key": (8, "  timeout: 2s", "traffic.rps: required key is missing"),
    "defect without effect": (
        12, "    - {kind: latency}", "release.defects[0]: expected `multiplier` (e.g. 1.8) or `add` (e.g. 80ms), found neither"),
    "defect fraction above 1": (
        12, "    - {kind: error_rate, rate: 0.1, fraction: 2}",
        "release.defects[0].fraction: expected a value at most 1.0, found 2"),
    "defect onset not a duration": (
        12, "    - {kind: error_rate, rate: 0.1, onset: {after: soon}}",
        f"release.defects[0].onset.after: {DURATION}, found 'soon'"),
}


@pytest.mark.parametrize("line, text, problem", CASES.values(), ids=CASES.keys())
def test_each_problem_names_file_line_path_expected_and_found(tmp_path, line, text, problem):
    error = load_error(tmp_path, with_line(line, text))
    file = tmp_path / "shop.yaml"
    where = 7 if problem.endswith("required key is missing") else line  # a missing key: the line of its parent
    assert error.problems == [f"{file}:{where}: {problem}"]
    assert str(error) == f"{file}: invalid scenario (1 problem)\n  - {file}:{where}: {problem}"
    assert error.exit_code == 2
    assert error.__cause__ is None and error.__suppress_context__  # no pydantic traceback behind it


def test_a_list_where_one_is_expected(tmp_path):
    text = GOOD.replace("  steps:\n    - {weight: 10, bake: 5m}\n    - {weight: 50, bake: 5m}\n    - {weight: 100}\n",
                        "  steps: 5\n")
    error = load_error(tmp_path, text)
    assert error.problems == [f"{tmp_path / 'shop.yaml'}:15: strategy.steps: expected a list, found 5"]


def test_every_problem_is_reported_at_once(tmp_path):
    text = with_line(8, "  rps: -5").replace("duration: 1h", "duration: soon").replace("instances: 4", "instances: 0")
    error = load_error(tmp_path, text)
    file = tmp_path / "shop.yaml"
    assert str(error).splitlines()[0] == f"{file}: invalid scenario (3 problems)"
    assert error.problems == [
        f"{file}:2: duration: {DURATION}, found 'soon'",
        f"{file}:4: fleet.instances: expected a value at least 1, found 0",
        f"{file}:8: traffic.rps: expected a value at least 0.0, found -5",
    ]


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("  rps: [100", "9:8", "expected ',' or ']', but got ':'"),
        ("\trps: 100", "8:1", "found character '\\t' that cannot start any token"),
        ("  rps: 100\n    timeout: 2s", "9:12", "mapping values are not allowed here"),
        ("  rps: 100\n timeout: 2s", "9:2", "expected <block end>, but found '<block mapping start>'"),
    ],
    ids=["unclosed bracket", "tab", "indented too deep", "indented too shallow"],
)
def test_yaml_syntax_errors_name_line_and_column(tmp_path, text, where, problem):
    error = load_error(tmp_path, with_line(8, text))
    assert str(error) == f"{tmp_path / 'shop.yaml'}:{where}: YAML syntax error: {problem}"


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path):
    error = load_error(tmp_path, with_line(8, "  rps: 100\n  rps: 200"))
    assert str(error) == f"{tmp_path / 'shop.yaml'}:9: traffic.rps: expected each key once, found 'rps' again (first at line 8)"


def test_a_missing_file_is_named_as_missing(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such scenario file"


def test_a_directory_is_not_a_scenario(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path)
    assert str(info.value) == f"{tmp_path}: expected a scenario file, found a directory"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the scenario is empty; expected keys such as name, duration, fleet, traffic"),
        ("# only a comment\n", "the scenario is empty; expected keys such as name, duration, fleet, traffic"),
        ("- name: shop\n", "expected a mapping of scenario keys, found list"),
        ("shop\n", "expected a mapping of scenario keys, found str"),
    ],
)
def test_a_scenario_must_be_a_mapping(tmp_path, text, message):
    assert str(load_error(tmp_path, text)) == f"{tmp_path / 'shop.yaml'}: {message}"


def test_a_misspelt_top_level_section_is_one_problem_not_two(tmp_path):
    error = load_error(tmp_path, GOOD.replace("fleet:", "fleeet:"))
    assert error.problems == [f"{tmp_path / 'shop.yaml'}:3: fleeet: unknown key 'fleeet'; did you mean 'fleet'?"]


def test_rolling_limits_that_could_never_start_are_an_error(tmp_path):
    text = GOOD.replace("  kind: canary\n", "  kind: rolling\n  max_surge: 0%\n  max_unavailable: 0\n")
    text = text.replace("  steps:\n    - {weight: 10, bake: 5m}\n    - {weight: 50, bake: 5m}\n    - {weight: 100}\n", "")
    error = load_error(tmp_path, text)
    assert error.problems == [
        f"{tmp_path / 'shop.yaml'}:15: strategy.max_surge: expected max_surge or max_unavailable above 0, "
        "found both 0 (the rollout could never start)"]


def test_analysis_bounds_name_the_bad_max(tmp_path):
    text = GOOD + "analysis:\n  metrics:\n    - {metric: error_rate, max: 5}\n    - {metric: latency_p99, max: soon}\n"
    error = load_error(tmp_path, text)
    file = tmp_path / "shop.yaml"
    assert error.problems == [
        f"{file}:23: analysis.metrics[0].max: expected a fraction between 0 and 1 for error_rate, found 5",
        f"{file}:24: analysis.metrics[1].max: {DURATION}, found 'soon'",
    ]


def test_validating_a_mapping_names_the_source_without_lines():
    with pytest.raises(ScenarioError) as info:
        validate_scenario({"name": "x", "duration": "1h", "fleet": {"instances": 1, "service_time": "1ms"},
                           "traffic": {"rps": 1}, "strategy": {"kind": "canary", "steps": [{"weight": 50}]}},
                          source="override")
    assert info.value.problems == [
        "override: strategy.steps[0].weight: expected the last step to reach weight 100, found 50"]


@pytest.mark.parametrize("old,new,problem", [
    ("{weight: 1, bake: 5m}", "{weight: yes, bake: 5m}", "strategy.steps[0].weight: expected a number, found True"),
    ("{metric: error_rate, max: 0.01}", "{metric: error_rate, max: yes}",
     "analysis.metrics[0].max: expected a number or a duration, found True"),
])
def test_yaml_booleans_are_not_weights_or_bounds(tmp_path, old, new, problem):
    from pathlib import Path

    text = (Path(__file__).parent.parent / "experiments" / "checkout-canary.yaml").read_text()
    assert old in text
    path = tmp_path / "s.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert problem in str(caught.value) and str(caught.value).count("\n  - ") == 1
