"""Flagger manifests into scenarios: each mapping rule on a small Canary, warnings for what is not modelled,
exit 2 naming the document and field for what is invalid."""
from __future__ import annotations

import textwrap
import warnings

import pytest

import simlab
from simlab.bridges import ManifestError, UnmodelledWarning
from simlab.bridges.flagger_import import import_flagger_documents
from simlab.cli import main
from simlab.control.limits import Tally
from tests.helpers.scenarios import scenario

BASE = scenario("canary")  # on-call ack 2m, monitoring window 30s, scrape every 5s

SUCCESS = "{name: request-success-rate, thresholdRange: {min: 99}, interval: 30s}"
TEMPLATE = """\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: NAME}
spec:
  provider: {type: TYPE, address: http://prometheus:9090}
  query: QUERY
"""


def canary(tmp_path, analysis: str, *extra: str, spec: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(analysis).strip(), "    ")
    text = ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n"
            "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  service: {port: 80}\n"
            + (textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n" if spec else "")
            + f"  analysis:\n{body}\n")
    for doc in extra:
        text += "---\n" + doc
    path = tmp_path / "canary.yaml"
    path.write_text(text)
    return str(path)


def imported(tmp_path, analysis: str, *extra: str, spec: str = "", ab_weight: float = 10.0):
    return import_flagger_documents(canary(tmp_path, analysis, *extra, spec=spec), (), BASE, ab_weight)


def template(name: str, query: str, kind: str = "prometheus") -> str:
    return TEMPLATE.replace("NAME", name).replace("TYPE", kind).replace("QUERY", repr(query))


def steps(result) -> list[tuple[float, float]]:
    return [(s.weight, s.bake) for s in result.scenario.strategy.steps]


def warned(result, *needles: str) -> str:
    line = next((w for w in result.warnings if all(n in w for n in needles)), None)
    assert line is not None, (needles, result.warnings)
    return line


def test_step_weight_climbs_past_max_weight_as_flaggers_scheduler_does(tmp_path):
    r = imported(tmp_path, f"{{interval: 1m, threshold: 2, stepWeight: 20, maxWeight: 50, metrics: [{SUCCESS}]}}")
    assert steps(r) == [(20, 60), (40, 60), (60, 60), (100, 0)]
    a = r.scenario.analysis
    assert (a.interval, a.failure_limit, a.failure_counting) == (60, 2, "cumulative")
    assert r.scenario.strategy.analysis


def test_max_weight_100_holds_the_last_weight_one_interval(tmp_path):
    r = imported(tmp_path, f"{{interval: 30s, stepWeight: 25, metrics: [{SUCCESS}]}}")
    assert steps(r) == [(25, 30), (50, 30), (75, 30), (100, 30)]


def test_step_weights_and_the_ten_second_floor_of_the_interval(tmp_path):
    r = imported(tmp_path, f"{{interval: 5s, stepWeights: [1, 5, 25, 50], metrics: [{SUCCESS}]}}")
    assert steps(r) == [(1, 10), (5, 10), (25, 10), (50, 10), (100, 0)]


@pytest.mark.parametrize("threshold,limit", [(None, 1), (1, 1), (3, 3)])
def test_threshold_rolls_back_when_failed_checks_reach_it(tmp_path, threshold, limit):
    field = "" if threshold is None else f"threshold: {threshold}, "
    a = imported(tmp_path, f"{{interval: 1m, {field}stepWeight: 50, metrics: [{SUCCESS}]}}").scenario.analysis
    assert (a.failure_limit, a.inconclusive_limit, a.on_inconclusive) == (limit, limit, "rollback")
    tally = Tally(a)
    assert [tally.add("failed") for _ in range(limit - 1)] == [None] * (limit - 1)
    assert tally.add("failed") == "failed"  # the check that reaches the threshold
    tally = Tally(a)  # a check without data fails in Flagger too: simlab's inconclusive reaches the same limit
    assert [tally.add("inconclusive") for _ in range(limit)][-1] == "inconclusive"


def test_ab_iterations_with_a_match_are_a_canary_step_of_the_ab_weight(tmp_path):
    r = imported(tmp_path, f"""
        interval: 1m
        iterations: 10
        match: [{{headers: {{x-canary: {{exact: insider}}}}}}]
        metrics: [{SUCCESS}]
    """, ab_weight=3)
    assert steps(r) == [(3, 600), (100, 0)]
    warned(r, "spec.analysis.match", "3% of traffic")


def test_iterations_without_a_match_are_a_blue_green(tmp_path):
    r = imported(tmp_path, f"{{interval: 2m, iterations: 5, metrics: [{SUCCESS}]}}")
    st = r.scenario.strategy
    assert (st.kind, st.warmup, st.keep_old, st.analysis) == ("blue_green", 600, 120, True)
    warned(r, "spec.analysis.iterations", "test traffic")


def test_the_kubernetes_provider_forces_a_blue_green_of_ten_iterations(tmp_path):
    r = imported(tmp_path, f"{{interval: 1m, stepWeight: 10, metrics: [{SUCCESS}]}}", spec="provider: kubernetes")
    assert (r.scenario.strategy.kind, r.scenario.strategy.warmup) == ("blue_green", 600)


def test_progress_deadline_seconds(tmp_path):
    st = imported(tmp_path, f"{{stepWeight: 50, metrics: [{SUCCESS}]}}",
                  spec="progressDeadlineSeconds: 120").scenario.strategy
    assert st.progress_deadline == 120
    assert imported(tmp_path, f"{{stepWeight: 50, metrics: [{SUCCESS}]}}").scenario.strategy.progress_deadline == 600


def test_builtin_metrics_and_their_threshold_ranges(tmp_path):
    a = imported(tmp_path, """
        stepWeight: 50
        metrics:
          - {name: request-success-rate, thresholdRange: {min: 99.5}}
          - {name: request-duration, thresholdRange: {max: 450}}
    """).scenario.analysis
    assert [(m.metric, m.max) for m in a.metrics] == [("error_rate", pytest.approx(0.005)), ("latency_p99", 0.45)]
    legacy = imported(tmp_path, "{stepWeight: 50, metrics: [{name: request-success-rate, threshold: 98}]}")
    assert legacy.scenario.analysis.metrics[0].max == pytest.approx(0.02)


def test_metric_templates_with_min_and_max(tmp_path):
    success = template("success", 'sum(rate(req{code!~"5.."}[{{ interval }}])) / sum(rate(req[{{ interval }}]))')
    ratio = template("vs-primary", 'errors{workload="{{ target }}"} / errors{workload="{{ target }}-primary"}')
    r = imported(tmp_path, """
        stepWeight: 50
        metrics:
          - {name: success, templateRef: {name: success}, thresholdRange: {min: 0.98}, interval: 30s}
          - {name: vs-primary, templateRef: {name: vs-primary}, thresholdRange: {max: 1.5}, interval: 30s}
    """, success, ratio)
    got = [m.model_dump(include={"metric", "sim_metric", "max", "max_ratio_to_baseline"})
           for m in r.scenario.analysis.metrics]
    assert got == [{"metric": "success", "sim_metric": "error_rate", "max": pytest.approx(0.02),
                    "max_ratio_to_baseline": None},
                   {"metric": "error_rate", "sim_metric": None, "max": None, "max_ratio_to_baseline": 1.5}]
    # Kept in simlab's terms, Flagger's {{ interval }} as simlab's {{window}}, {{ target }} as the Canary's.
    assert r.scenario.analysis.metrics[0].query == \
        '1 - (sum(rate(req{code!~"5.."}[{{window}}])) / sum(rate(req[{{window}}])))'
    warned(r, "metrics[1]", "ratio to the baseline itself", "not kept")


def test_a_templates_placeholders_take_the_canarys_values(tmp_path):
    query = ('sum(rate(http_errors{ns="{{ namespace }}",pod=~"{{ target }}-.*",zone="{{ variables.zone }}"}'
             '[{{ interval }}])) / sum(rate(http_requests{service="{{ service }}"}[{{ interval }}]))')
    r = imported(tmp_path, """
        stepWeight: 50
        metrics:
          - {name: errors, templateRef: {name: errors}, thresholdRange: {max: 0.01}, interval: 30s,
             templateVariables: {zone: eu-1}}
          - {name: mystery, templateRef: {name: mystery}, thresholdRange: {max: 0.01}, interval: 30s}
    """, template("errors", query), template("mystery", 'sum(errors{x="{{ variables.unset }}"})'))
    kept, mystery = r.scenario.analysis.metrics
    assert (kept.metric, kept.builtin, kept.max) == ("errors", "error_rate", 0.01)
    assert kept.query == ('sum(rate(http_errors{ns="default",pod=~"web-.*",zone="eu-1"}[{{window}}])) '
                          '/ sum(rate(http_requests{service="web"}[{{window}}]))')
    # A placeholder the manifest gives no value: the built-in metric alone, said in a warning.
    assert (mystery.metric, mystery.query) == ("error_rate", None)
    warned(r, "metrics[1]", "{{variables.unset}}", "no value", "not kept")


def test_a_metric_window_becomes_the_monitoring_window(tmp_path):
    s = imported(tmp_path, "{stepWeight: 50, metrics: [{name: request-success-rate, thresholdRange: {min: 99}, "
                           "interval: 2m}]}").scenario
    assert s.monitoring.window == 120 and s.monitoring.scrape_interval == BASE.monitoring.scrape_interval
    r = imported(tmp_path, """
        stepWeight: 50
        metrics:
          - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2m}
          - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}
    """)
    assert r.scenario.monitoring.window == BASE.monitoring.window
    warned(r, "different windows")


def test_skip_analysis_is_a_rolling_update_without_analysis(tmp_path):
    r = imported(tmp_path, f"{{stepWeight: 50, metrics: [{SUCCESS}]}}", spec="skipAnalysis: true")
    st = r.scenario.strategy
    assert (st.kind, st.batch, st.max_surge, st.max_unavailable, st.analysis) == ("rolling", "100%", "25%", "25%",
                                                                                  False)
    warned(r, "skipAnalysis")


def test_unmodelled_fields_are_warned_naming_the_field(tmp_path):
    datadog = template("dd", "avg:errors{service:web}", kind="datadog")
    r = imported(tmp_path, """
        stepWeight: 50
        mirror: true
        webhooks:
          - {name: load-test, url: http://loadtester/, metadata: {cmd: hey}}
          - {name: gate, type: confirm-promotion, url: http://gate/}
        alerts: [{name: slack, providerRef: {name: slack}}]
        metrics:
          - {name: dd, templateRef: {name: dd}, thresholdRange: {max: 5}}
    """, datadog, spec="provider: istio\nautoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, "
                       "name: web}\nservice: {port: 80, gateways: [public], retries: {attempts: 3}}")
    for needle in ("spec.provider", "spec.autoscalerRef", "spec.service.gateways", "spec.service.retries",
                   "spec.analysis.mirror", "webhooks[0]", "(confirm-promotion)", "spec.analysis.alerts",
                   "datadog provider"):
        warned(r, needle)
    assert not r.scenario.strategy.analysis and r.scenario.analysis is None


def test_the_python_api_returns_a_scenario_and_issues_warnings(tmp_path):
    path = canary(tmp_path, f"{{stepWeight: 50, webhooks: [{{name: t, url: http://t/}}], metrics: [{SUCCESS}]}}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = simlab.import_flagger(path, base=BASE)
    assert isinstance(s, simlab.Scenario) and [st.weight for st in s.strategy.steps] == [50, 100]
    assert [w.category for w in caught] == [UnmodelledWarning] and "webhooks[0]" in str(caught[0].message)


INVALID = {
    "kind": ("kind: Canary", "kind: Rollout", ["canary.yaml", "kind: expected a Canary document", "Rollout"]),
    "analysis": ("  analysis:", "  analysys:", ["canary.yaml:4: Canary web: spec.analysis: expected the canary "
                                                "analysis"]),
    "template": ("templateRef: {name: success}", "templateRef: {name: succes}",
                 ["Canary web: spec.analysis.metrics[0].templateRef.name", "'succes'", "success"]),
    "weights": ("stepWeight: 50", "threshold: 2", ["spec.analysis: expected stepWeight, stepWeights or iterations"]),
    "interval": ("interval: 1m", "interval: 1 minute", ["spec.analysis.interval", "'1 minute'"]),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_manifests_exit_2_naming_the_document_and_the_field(tmp_path, capsys, case):
    old, new, needles = INVALID[case]
    path = canary(tmp_path, "{interval: 1m, stepWeight: 50, metrics: [{name: success, templateRef: {name: success}, "
                            "thresholdRange: {min: 0.99}}]}", template("success", "ok / all"))
    text = open(path).read()
    assert old in text, case
    open(path, "w").write(text.replace(old, new, 1))
    code = main(["import", "flagger", path, "--base", "experiments/checkout-canary.yaml"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    with pytest.raises(ManifestError):
        import_flagger_documents(path, (), BASE)
