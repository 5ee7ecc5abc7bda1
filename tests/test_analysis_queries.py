"""Analysis metrics with their own PromQL `query:`: how they are written (placeholders, names, sim_metric, bounds),
what the simulator does with them (the built-in metric they stand for, or one clear error), what the controller
reads (a query's value where monitoring gives one) and the JSON Schema in step with the loader. The staging
side (evaluation against Prometheus, the check before a deploy) is tests/staging/test_custom_metrics.py."""
from __future__ import annotations

import copy
import textwrap

import jsonschema
import pytest
import yaml

from simlab.control import mann_whitney
from simlab.control.analysis import measure
from simlab.control.observations import WindowStats
from simlab.control.recording import window_from, window_json
from simlab.errors import ScenarioError
from simlab.scenario import parse_scenario, validate_scenario
from simlab.scenario.loading import staging_scenario
from simlab.scenario.queries import fill, problem
from simlab.scenario.schema import scenario_schema
from simlab.scenario.strategy import MetricCheck
from simlab.simulation import simulate
from simlab.staging.preflight import metric_names
from simlab.staging.prometheus import one_value, regex_literal
from tests.helpers.scenarios import BASE, scenario

ERRORS = ('sum(rate(errors_total{version="{{version}}"}[{{window}}])) / '
          'sum(rate(requests_total{version="{{version}}"}[{{window}}]))')
BAD = [{"kind": "error_rate", "rate": 0.2}]


def with_metrics(metrics: list, **analysis) -> dict:
    data = copy.deepcopy(BASE)
    data["analysis"] = {**data["analysis"], **analysis, "metrics": metrics}
    return data


def written(metrics: list, **analysis) -> tuple[str, str]:
    """(YAML text, the line of metrics[0].query) of BASE with these analysis metrics."""
    text = yaml.safe_dump(with_metrics(metrics, **analysis), sort_keys=False, width=1000)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.strip().startswith("query:"))
    return text, line


def refused(metrics: list, **analysis) -> str:
    with pytest.raises(ScenarioError) as caught:
        validate_scenario(with_metrics(metrics, **analysis))
    return str(caught.value)


# --- how a query metric is written ---------------------------------------------------------------------------

def test_a_query_metric_names_itself_and_the_built_in_metric_it_stands_for():
    a = validate_scenario(with_metrics([
        {"metric": "checkout-errors", "query": ERRORS, "sim_metric": "error_rate", "max": 0.02},
        {"metric": "latency_p99", "query": "histogram_quantile(0.99, sum by (le) (rate(d_bucket[{{window}}])))",
         "max": "800ms"},
        {"metric": "queue_depth", "query": 'max(queue{instance=~"{{instance}}"})', "max": 40, "dry_run": True},
    ])).analysis
    assert [(m.metric, m.builtin, m.max) for m in a.metrics] == [
        ("checkout-errors", "error_rate", 0.02), ("latency_p99", "latency_p99", 0.8), ("queue_depth", None, 40)]


@pytest.mark.parametrize("metric,expected", [
    ({"metric": "errors", "max": 0.01},
     "analysis.metrics[0].metric: expected error_rate, latency_p50, latency_p99 or latency_mean, or a name of your own "
     "with a `query:`, found 'errors'"),
    ({"metric": "error_rat", "max": 0.01}, "found 'error_rat' (did you mean error_rate?)"),
    ({"metric": "e", "query": ERRORS.replace("{{version}}", "{{verison}}", 1), "max": 0.01},
     "analysis.metrics[0].query: expected the placeholders {{version}}, {{instance}} or {{window}}, found "
     "{{verison}} (did you mean {{version}}?)"),
    ({"metric": "e", "query": "sum(x{v=\"{{version}\"})", "max": 0.01}, "found a stray '{{' in"),
    ({"metric": "e", "query": "   ", "max": 0.01}, "expected a PromQL expression, found an empty query"),
    ({"metric": "e", "sim_metric": "error_rate", "max": 0.01}, "analysis.metrics[0].metric: expected error_rate"),
    ({"metric": "error_rate", "sim_metric": "error_rate", "max": 0.01},
     "analysis.metrics[0].sim_metric: expected only with a `query:`"),
    ({"metric": "error_rate", "query": ERRORS, "sim_metric": "latency_p99", "max": 0.01},
     "analysis.metrics[0].sim_metric: expected error_rate or none"),
    ({"metric": "e", "query": ERRORS, "max": "10ms"},
     "analysis.metrics[0].max: expected a number (the query's value; with sim_metric, in that metric's unit), "
     "found '10ms'"),
    ({"metric": "e", "query": ERRORS, "sim_metric": "error_rate", "max": 5},
     "analysis.metrics[0].max: expected a fraction between 0 and 1 for error_rate, found 5"),
    ({"metric": "two words", "query": ERRORS, "max": 1}, "analysis.metrics[0].metric: expected a name of letters"),
    ({"metric": "e", "query": "x" * 10_001, "max": 1}, "expected a query of at most 10,000 characters, found 10,001"),
])
def test_a_query_metric_written_wrong_is_one_line_naming_the_field(metric, expected):
    assert expected in refused([metric])


def test_a_query_compared_with_the_baseline_must_say_which_version_it_measures():
    fixed = 'sum(rate(errors_total{version="new"}[1m]))'
    for metrics, analysis, why in (([{"metric": "e", "query": fixed, "max_ratio_to_baseline": 2}], {},
                                    "max_ratio_to_baseline"),
                                   ([{"metric": "e", "query": fixed}], {"judge": {"kind": "mann_whitney"}},
                                    "judge mann_whitney")):
        assert (f"analysis.metrics[0].query: expected {{{{version}}}} or {{{{instance}}}} in a query compared with "
                f"the baseline ({why}:") in refused(metrics, **analysis)
    # {{instance}} says it too; a bound alone may measure the canary by itself.
    validate_scenario(with_metrics([{"metric": "e", "query": 'x{i=~"{{instance}}"}', "max_ratio_to_baseline": 2}]))
    validate_scenario(with_metrics([{"metric": "e", "query": fixed, "max": 0.01}]))


def test_a_query_metric_has_a_name_of_its_own():
    message = refused([{"metric": "error_rate", "query": ERRORS, "max": 0.01}, {"metric": "error_rate", "max": 0.02}])
    assert "analysis.metrics[0].metric: expected a name no other metric uses" in message and "metrics[1]" in message


def test_placeholders_are_filled_and_nothing_else_is_touched():
    query = 'rate(x{version="{{ version }}",i=~"{{instance}}",re=~"a{2}"}[{{window}}])'
    assert problem(query) is None
    assert fill(query, version="new", instance="new-0|new-1", window="30000ms") == \
        'rate(x{version="new",i=~"new-0|new-1",re=~"a{2}"}[30000ms])'


# --- in simulation ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["request", "fluid"])
def test_simulating_a_query_without_sim_metric_is_one_error_naming_file_line_field_value_and_expected(engine):
    text, line = written([{"metric": "checkout-errors", "query": ERRORS, "max": 0.02}])
    s = parse_scenario(text, source="shop.yaml")
    with pytest.raises(ScenarioError) as caught:
        simulate(s, engine=engine)
    assert str(caught.value) == (
        f"shop.yaml:{line}: analysis.metrics[0].query: expected `sim_metric:` naming the built-in metric the simulator "
        f"measures for 'checkout-errors' (error_rate, latency_p50, latency_p99 or latency_mean), found a PromQL query "
        f"the simulator cannot evaluate: {ERRORS[:77] + '...'!r}")
    assert caught.value.exit_code == 2


def test_the_command_says_it_in_one_line_and_exits_2(tmp_path, capsys):
    from simlab.cli import main

    text, line = written([{"metric": "errs", "query": ERRORS, "max": 0.02}, {"metric": "slow", "query": "x", "max": 1}])
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) == 0  # valid: the same file runs on staging
    capsys.readouterr()
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "analysis: 2 metrics the simulator cannot measure" in err
    assert f"{path}:{line}: analysis.metrics[0].query: expected `sim_metric:`" in err
    assert f"analysis.metrics[1].query: expected `sim_metric:` naming the built-in metric the simulator measures for " \
           f"'slow'" in err
    # compare (and sweep, analysis-quality: every replication) refuses before any run starts, on a process pool too
    assert main(["compare", str(path), "--runs", "4", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: analysis.metrics[0].query: expected `sim_metric:`" in err
    assert not (tmp_path / "out" / "store").exists() or not any((tmp_path / "out" / "store").rglob("*.json"))


def test_with_sim_metric_the_simulator_decides_as_with_the_built_in_metric():
    query = {"metric": "checkout-errors", "query": ERRORS, "sim_metric": "error_rate", "max": 0.02}
    built_in = scenario(**{"release.defects": BAD})
    custom = validate_scenario(with_metrics([query, {"metric": "latency_p99", "max": "1s"}],
                                            ) | {"release": {"at": "2m", "defects": BAD}})
    a, b = simulate(built_in, seed=4).extras["controller"], simulate(custom, seed=4).extras["controller"]
    assert a.outcome == b.outcome == "rolled_back" and a.detected_at == b.detected_at
    assert (a.rollback_cause, b.rollback_cause) == ("error_rate", "checkout-errors")
    analysis = [e.detail for e in b.events if e.kind == "analysis" and e.detail["status"] == "failed"]
    assert analysis and all(d["checkout-errors"] > 0.02 for d in analysis)


def test_where_a_query_is_written_never_changes_what_a_scenario_equals():
    text, _ = written([{"metric": "e", "query": ERRORS, "sim_metric": "error_rate", "max": 0.02}])
    one, two = parse_scenario(text, source="a.yaml"), parse_scenario("\n\n" + text, source="b.yaml")
    assert one == two and one.fingerprint() == two.fingerprint()
    assert one.analysis.metrics[0].origin != two.analysis.metrics[0].origin
    # The staging form keeps where the query is written (a deploy's errors name it too).
    assert staging_scenario(one).analysis.metrics[0].origin == one.analysis.metrics[0].origin


# --- what the controller reads -----------------------------------------------------------------------------------

def test_a_window_carrying_a_query_value_is_judged_by_it_and_one_without_by_the_built_in_metric():
    check = MetricCheck(metric="lb", query=ERRORS, sim_metric="error_rate", max=0.05)
    simulated = WindowStats(requests=100, errors=10)  # the engines know only the built-in metric: 10%
    observed = WindowStats(requests=100, errors=10, custom=(("lb", 0.01),))  # staging: the query said 1%
    assert measure((check,), simulated, None, min_requests=10).status == "failed"
    assert measure((check,), observed, None, min_requests=10).status == "passed"
    no_value = WindowStats(requests=100, errors=10, custom=(("lb", None),))  # the query returned nothing
    assert measure((check,), no_value, None, min_requests=10).status == "inconclusive"
    # A ratio to the baseline floors a clean baseline at one error only for what stands for error_rate.
    ratio = MetricCheck(metric="lb", query=ERRORS, sim_metric="error_rate", max_ratio_to_baseline=2)
    clean = WindowStats(requests=200, errors=0, custom=(("lb", 0.0),))
    assert measure((ratio,), observed, clean, min_requests=10).checks[0].value == pytest.approx(0.01 / (1 / 200))


def test_the_mann_whitney_judge_ranks_a_querys_values_in_each_sub_window():
    check = MetricCheck(metric="lb", query=ERRORS)
    canary = [WindowStats(requests=50, custom=(("lb", v),)) for v in (0.2, 0.3, 0.25, None)]
    assert mann_whitney.values(canary, check) == [0.2, 0.3, 0.25]
    assert mann_whitney.values(canary, "error_rate") == [0.0, 0.0, 0.0, 0.0]


def test_a_query_value_survives_a_recording():
    window = WindowStats(requests=3, errors=1, custom=(("lb", 0.5), ("q", None)))
    import json

    assert window_from(json.loads(json.dumps(window_json(window)))) == window
    assert "custom" not in window_json(WindowStats(requests=3))  # recordings without queries read as before


# --- the JSON Schema says what the loader says ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema():
    return jsonschema.Draft202012Validator(scenario_schema())


@pytest.mark.parametrize("metric,accepted", [
    ({"metric": "e", "query": ERRORS, "max": 0.5}, True),
    ({"metric": "e", "query": ERRORS, "max": -3.5}, True),
    ({"metric": "e", "query": ERRORS, "sim_metric": "latency_p99", "max": "800ms"}, True),
    ({"metric": "e", "query": ERRORS, "sim_metric": "error_rate", "max": 0.01}, True),
    ({"metric": "latency_p50", "query": ERRORS, "max": "20ms"}, True),
    ({"metric": "e", "max": 0.01}, False),
    ({"metric": "e", "query": ERRORS, "max": "10ms"}, False),
    ({"metric": "e", "query": ERRORS, "sim_metric": "error_rate", "max": 2}, False),
    ({"metric": "e", "query": ERRORS, "sim_metric": "rate", "max": 0.1}, False),
    ({"metric": "two words", "query": ERRORS, "max": 1}, False),
])
def test_the_schema_and_the_loader_agree_on_query_metrics(schema, metric, accepted):
    data = with_metrics([metric])
    try:
        validate_scenario(copy.deepcopy(data))
        loads = True
    except ScenarioError:
        loads = False
    assert loads == accepted
    assert (not list(schema.iter_errors(data))) == accepted


# --- what the staging side reads from a query (pure parts) -----------------------------------------------------------

def test_the_metric_names_a_query_selects():
    q = ('histogram_quantile(0.99, sum by (le) (rate(d_bucket{v="{x}"}[5m]))) / sum(up) without (job) '
         '+ scalar(foo offset 5m) > bool 1e3 or vector(0) and on(instance) bar')
    assert metric_names(q) == {"d_bucket", "up", "foo", "bar"}
    assert metric_names('label_replace(z, "a", "$1", "b", "(.*)")') == {"z"}


def test_a_result_is_one_value_or_says_what_it_is():
    assert one_value("scalar", [1.0, "0.5"]) == (0.5, None)
    assert one_value("vector", [{"metric": {}, "value": [1.0, "NaN"]}]) == (None, None)
    assert one_value("vector", []) == (None, None)
    assert "found 2 ({a=\"1\"}, {a=\"2\"})" in one_value("vector", [{"metric": {"a": "1"}, "value": [1, "1"]},
                                                                  {"metric": {"a": "2"}, "value": [1, "1"]}])[1]
    assert "found a range vector" in one_value("matrix", [])[1]
    assert regex_literal("new-0.eu") == "new-0\\\\.eu"


def test_the_scenario_documentation_example_loads():
    """docs/scenario.md's query metric, as written there."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenario.md").read_text()
    block = doc.split("### Metrics with their own query", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    data = with_metrics(yaml.safe_load(textwrap.dedent(block))["analysis"]["metrics"])
    assert [m.metric for m in validate_scenario(data).analysis.metrics]
