"""Argo Rollouts manifests into scenarios: each mapping rule on a small manifest, warnings for what is not
modelled, exit 2 naming the document and field for what is invalid."""
from __future__ import annotations

import textwrap
import warnings

import pytest

import simlab
from simlab.bridges import ManifestError, UnmodelledWarning
from simlab.bridges.argo_import import import_argo_documents
from simlab.cli import main
from simlab.control.limits import Tally
from tests.helpers.scenarios import scenario

BASE = scenario("canary")  # 6 instances, on-call ack 2m, analysis every 30s

SUCCESS = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  metrics:
    - name: success-rate
      interval: 1m
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          query: sum(rate(http_requests_total{code!~"5.."}[1m])) / sum(rate(http_requests_total[1m]))
"""


def rollout(tmp_path, strategy: str, *extra: str, spec: str = "replicas: 8") -> str:
    body = textwrap.indent(textwrap.dedent(strategy).strip(), "    ")
    text = (f"apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: web}}\nspec:\n"
            f"  {spec}\n  strategy:\n{body}\n")
    for doc in extra:
        text += "---\n" + textwrap.dedent(doc)
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    return str(path)


def imported(tmp_path, strategy: str, *extra: str, **kw):
    return import_argo_documents(rollout(tmp_path, strategy, *extra, **kw), (), BASE)


def steps(result) -> list[tuple[float, float]]:
    return [(s.weight, s.bake) for s in result.scenario.strategy.steps]


def warned(result, *needles: str) -> str:
    line = next((w for w in result.warnings if all(n in w for n in needles)), None)
    assert line is not None, (needles, result.warnings)
    return line


def test_replicas_become_instances_and_the_rest_comes_from_the_base(tmp_path):
    r = imported(tmp_path, "canary: {steps: [{setWeight: 20}, {pause: {duration: 1m}}]}")
    s = r.scenario
    assert s.fleet.instances == 8
    assert (s.traffic, s.release, s.failures, s.monitoring) == (BASE.traffic, BASE.release, BASE.failures,
                                                                 BASE.monitoring)
    assert s.rollback.automatic and s.rollback.on_call == BASE.rollback.on_call


def test_set_weight_and_pause_make_steps_and_bare_numbers_are_seconds(tmp_path):
    r = imported(tmp_path, """
        canary:
          steps:
            - setWeight: 10
            - pause: {duration: 90}
            - setWeight: 30
            - pause: {duration: "45"}
            - pause: {duration: 1m30s}
            - setWeight: 60
            - pause: {duration: 2h}
    """)
    assert steps(r) == [(10, 90), (30, 135), (60, 7200), (100, 0)]
    assert r.scenario.strategy.kind == "canary" and not r.scenario.strategy.analysis


def test_an_indefinite_pause_is_a_manual_gate_of_the_on_call_ack_with_a_warning(tmp_path):
    r = imported(tmp_path, "canary: {steps: [{setWeight: 25}, {pause: {}}, {setWeight: 50}]}")
    assert steps(r) == [(25, BASE.rollback.on_call.ack), (50, 0), (100, 0)]
    warned(r, "steps[1].pause", "a person", "rollback.on_call.ack", "2m")


def test_a_canary_without_steps_goes_straight_to_100_within_the_default_surge(tmp_path):
    st = imported(tmp_path, "canary: {}").scenario.strategy
    assert (st.kind, st.batch, st.max_surge, st.max_unavailable, st.bake) == ("rolling", "100%", "25%", "25%", 0)


@pytest.mark.parametrize("surge,unavailable", [(2, 0), ("50%", "10%"), ("1", "0%")])
def test_max_surge_and_max_unavailable_as_counts_and_percentages(tmp_path, surge, unavailable):
    st = imported(tmp_path, f"canary: {{maxSurge: {surge!r}, maxUnavailable: {unavailable!r}}}").scenario.strategy
    expect = {2: 2, "50%": "50%", "1": 1, 0: 0, "10%": "10%", "0%": "0%"}
    assert (st.max_surge, st.max_unavailable) == (expect[surge], expect[unavailable])


def test_inline_analysis_steps_hold_for_their_measurements_and_turn_analysis_on(tmp_path):
    template = SUCCESS.replace("interval: 1m", "interval: 1m\n      count: 3")
    r = imported(tmp_path, """
        canary:
          steps:
            - setWeight: 20
            - analysis: {templates: [{templateName: success-rate}]}
            - setWeight: 50
    """, template)
    assert steps(r) == [(20, 180), (50, 0), (100, 0)]
    s = r.scenario
    assert s.strategy.analysis
    assert s.analysis.interval == 60 and [m.model_dump(include={"metric", "sim_metric", "max"})
                                          for m in s.analysis.metrics] == [
        {"metric": "success-rate", "sim_metric": "error_rate", "max": 0.05}]
    # The query is kept for staging, in simlab's terms (a failed measurement is an error ratio above max).
    assert s.analysis.metrics[0].query == \
        '1 - (sum(rate(http_requests_total{code!~"5.."}[1m])) / sum(rate(http_requests_total[1m])))'
    assert not any("query" in w for w in r.warnings)


def test_background_analysis_with_a_starting_step_is_warned(tmp_path):
    r = imported(tmp_path, """
        canary:
          analysis: {templates: [{templateName: success-rate}], startingStep: 2}
          steps: [{setWeight: 20}, {pause: {duration: 5m}}, {setWeight: 40}, {pause: {duration: 5m}}]
    """, SUCCESS)
    assert r.scenario.strategy.analysis and r.scenario.analysis.metrics[0].builtin == "error_rate"
    warned(r, "canary.analysis.startingStep", "2", "first step")


@pytest.mark.parametrize("limit,simlab_limit", [(None, 1), (0, 1), (2, 3), ("4", 5)])
def test_failure_limit_is_the_failures_argo_tolerates(tmp_path, limit, simlab_limit):
    """Argo fails a metric when failures exceed failureLimit (default 0); simlab rolls back at its limit."""
    template = SUCCESS if limit is None else SUCCESS.replace("interval: 1m", f"interval: 1m\n      failureLimit: {limit!r}")
    s = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", template).scenario
    assert s.analysis.failure_limit == simlab_limit
    tally = Tally(s.analysis)
    tolerated = int(limit or 0)
    assert [tally.add("failed") for _ in range(tolerated)] == [None] * tolerated  # Argo: still running
    assert tally.add("failed") == "failed"  # the one that exceeds the limit


def test_inconclusive_limit_pauses_one_past_argos_limit(tmp_path):
    template = SUCCESS.replace("interval: 1m", "interval: 1m\n      inconclusiveLimit: 1")
    a = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", template).scenario.analysis
    assert (a.inconclusive_limit, a.on_inconclusive) == (2, "pause")


def test_both_conditions_leave_argos_inconclusive_band_with_a_warning(tmp_path):
    template = SUCCESS.replace("successCondition: result[0] >= 0.95",
                               "successCondition: result[0] >= 0.99\n      failureCondition: result[0] < 0.95")
    r = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", template)
    a = r.scenario.analysis
    assert a.metrics[0].max == pytest.approx(0.05) and (a.inconclusive_limit, a.on_inconclusive) == (1, "pause")
    warned(r, "failureCondition", "inconclusive")


@pytest.mark.parametrize("condition,query,check,kept", [
    ("result[0] >= 0.95", 'sum(rate(x{code!~"5.."}[1m]))/sum(rate(x[1m]))', {"metric": "error_rate", "max": 0.05},
     "1 - ({})"),
    ("result[0] >= 99.5", "success_percent", {"metric": "error_rate", "max": 0.005}, "1 - ({}) / 100"),
    ("0.99 <= result[0]", "ratio", {"metric": "error_rate", "max": 0.01}, "1 - ({})"),
    ("isNaN(result[0]) || result[0] <= 0.02", 'errors{code=~"5.."}', {"metric": "error_rate", "max": 0.02}, "{}"),
    ("result[0] <= 2.5", "error_percent", {"metric": "error_rate", "max": 0.025}, "({}) / 100"),
    ("result[0] <= 500", "histogram_quantile(0.99, sum by (le) (rate(req_duration_milliseconds_bucket[1m])))",
     {"metric": "latency_p99", "max": 0.5}, "({}) / 1000"),
    ("result[0] <= 0.25", "histogram_quantile(0.5, sum by (le) (rate(req_duration_seconds_bucket[1m])))",
     {"metric": "latency_p50", "max": 0.25}, "{}"),
    ("result[0] <= 0.2", "sum(rate(req_duration_seconds_sum[1m])) / sum(rate(req_duration_seconds_count[1m]))",
     {"metric": "latency_mean", "max": 0.2}, "{}"),
    ("result[0] <= 2", 'errors{role="canary"} / errors{role="stable"}',
     {"metric": "error_rate", "max_ratio_to_baseline": 2.0}, None),
])
def test_common_condition_forms_become_bounds_and_the_query_is_kept_in_simlabs_terms(tmp_path, condition, query,
                                                                                        check, kept):
    template = SUCCESS.replace("result[0] >= 0.95", condition).replace(
        "query: sum(rate(http_requests_total{code!~\"5..\"}[1m])) / sum(rate(http_requests_total[1m]))",
        f"query: {query!r}")
    r = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", template)
    m = r.scenario.analysis.metrics[0]
    got = {**m.model_dump(include=set(check)), "metric": m.builtin}
    assert got == pytest.approx(check)
    if kept is None:  # a ratio the query computes itself: simlab computes its own, and says so
        assert (m.metric, m.query) == ("error_rate", None)
        warned(r, "provider.prometheus.query", "ratio to the baseline itself", "not kept")
    else:
        assert (m.metric, m.query) == ("success-rate", kept.format(query))


def test_a_templates_args_fill_its_query_and_one_without_a_value_is_not_kept(tmp_path):
    template = SUCCESS.replace("spec:\n", "spec:\n  args: [{name: code, value: '5..'}, {name: service}, {name: hash}]\n")
    template = template.replace('{code!~"5.."}', '{code!~"{{args.code}}",svc="{{ args.service }}"}')
    r = imported(tmp_path, """
        canary:
          analysis:
            templates: [{templateName: success-rate}]
            args: [{name: service, value: checkout}]
          steps: [{setWeight: 20}, {pause: {duration: 1m}}]
    """, template)
    m = r.scenario.analysis.metrics[0]
    assert m.query == '1 - (sum(rate(http_requests_total{code!~"5..",svc="checkout"}[1m])) / ' \
                      'sum(rate(http_requests_total[1m])))'
    unset = template.replace('svc="{{ args.service }}"', 'hash="{{args.hash}}"')
    r = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", unset)
    assert (r.scenario.analysis.metrics[0].metric, r.scenario.analysis.metrics[0].query) == ("error_rate", None)
    warned(r, "provider.prometheus.query", "{{args.hash}} has no value in the manifest", "not kept")


def test_two_kept_queries_of_one_name_are_told_apart(tmp_path):
    other = SUCCESS.replace("name: success-rate}", "name: other}").replace("0.95", "0.9").replace(
        "http_requests_total", "other_requests_total")
    a = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}, {templateName: other}]}}",
                 SUCCESS, other).scenario.analysis
    assert [(m.metric, m.max) for m in a.metrics] == [("success-rate", 0.05), ("success-rate-2", 0.1)]


def test_dry_run_from_the_template_and_the_reference(tmp_path):
    two = SUCCESS + """\
    - name: latency
      interval: 1m
      successCondition: result[0] <= 0.5
      provider: {prometheus: {query: 'histogram_quantile(0.99, rate(d_seconds_bucket[1m]))'}}
  dryRun: [{metricName: latency}]
"""
    a = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}]}}", two).scenario.analysis
    assert [(m.metric, m.builtin, m.dry_run) for m in a.metrics] == [("success-rate", "error_rate", False),
                                                                     ("latency", "latency_p99", True)]
    a = imported(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate}], dryRun: [{metricName: '*'}]}}",
                 SUCCESS).scenario.analysis
    assert [m.dry_run for m in a.metrics] == [True]


def test_a_manual_blue_green_gate_waits_the_on_call_and_keeps_old_for_the_scale_down_delay(tmp_path):
    r = imported(tmp_path, """
        blueGreen:
          activeService: web
          previewService: web-preview
          autoPromotionEnabled: false
          scaleDownDelaySeconds: 600
          postPromotionAnalysis: {templates: [{templateName: success-rate}]}
    """, SUCCESS)
    st = r.scenario.strategy
    assert (st.kind, st.warmup, st.keep_old, st.analysis) == ("blue_green", 120, 600, True)
    warned(r, "autoPromotionEnabled", "a person promotes", "2m")


def test_auto_promotion_seconds_and_pre_promotion_analysis(tmp_path):
    pre = SUCCESS.replace("interval: 1m", "interval: 1m\n      count: 2")
    r = imported(tmp_path, """
        blueGreen:
          activeService: web
          autoPromotionSeconds: 45
          prePromotionAnalysis: {templates: [{templateName: success-rate}]}
    """, pre)
    st = r.scenario.strategy
    assert (st.warmup, st.keep_old, st.analysis) == (45 + 120, 30, True)
    warned(r, "prePromotionAnalysis", "no traffic before the switch")


def test_kayenta_is_judged_by_mann_whitney(tmp_path):
    kayenta = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: kayenta}
spec:
  metrics:
    - name: kayenta
      interval: 5m
      provider:
        kayenta:
          address: http://kayenta:8090
          application: web
          canaryConfigName: web-config
          threshold: {pass: 90, marginal: 70}
"""
    r = imported(tmp_path, "canary: {analysis: {templates: [{templateName: kayenta}]}}", kayenta)
    a = r.scenario.analysis
    assert (a.judge.kind, a.judge.pass_score, a.judge.marginal_score) == ("mann_whitney", 90, 70)
    assert [m.metric for m in a.metrics] == ["error_rate", "latency_p99"]
    warned(r, "canaryConfigName", "Kayenta's canary config")


def test_unmodelled_fields_are_warned_naming_the_field(tmp_path):
    web = SUCCESS.replace("prometheus:\n          query", "web:\n          url: http://x\n          jsonPath").replace(
        "name: success-rate\n      interval", "name: smoke\n      interval")
    r = imported(tmp_path, """
        canary:
          trafficRouting: {istio: {virtualService: {name: web}}, managedRoutes: [{name: header}]}
          analysis: {templates: [{templateName: success-rate}]}
          steps:
            - setHeaderRoute: {name: header, match: [{headerName: x-canary, headerValue: {exact: "yes"}}]}
            - setWeight: 10
            - experiment: {duration: 5m, templates: [{name: baseline, specRef: stable}]}
            - setMirrorRoute: {name: mirror, percentage: 10}
    """, web, spec="replicas: 8\n  paused: true")
    for needle in ("trafficRouting.istio", "trafficRouting.managedRoutes", "steps[0].setHeaderRoute",
                   "steps[2].experiment", "steps[3].setMirrorRoute", "provider.web", "spec.paused"):
        warned(r, needle)
    assert steps(r) == [(10, 300), (100, 0)]  # the experiment's duration is waited
    assert not r.scenario.strategy.analysis  # the only metric's provider is unknown


def test_the_python_api_returns_a_scenario_and_issues_warnings(tmp_path):
    path = rollout(tmp_path, "canary: {steps: [{setWeight: 50}, {pause: {}}]}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = simlab.import_argo(path, base=BASE)
    assert isinstance(s, simlab.Scenario) and s.strategy.steps[0].bake == 120
    assert {w.category for w in caught} == {UnmodelledWarning}
    assert any("steps[1].pause" in str(w.message) for w in caught)
    assert any("without trafficRouting" in str(w.message) for w in caught)


INVALID = {
    "kind": ("kind: Rollout", "kind: Deployment", ["rollout.yaml", "kind: expected a Rollout document",
                                                   "Deployment"]),
    "strategy": ("  strategy:\n    canary: {steps: [{setWeight: 10}]}\n", "  strategy: {}\n",
                 ["rollout.yaml:6: Rollout web: spec.strategy: expected canary or blueGreen, found none"]),
    "template": ("templateName: success-rate", "templateName: sucess-rate",
                 ["Rollout web: spec.strategy.canary.analysis.templates[0].templateName", "'sucess-rate'",
                  "AnalysisTemplate success-rate"]),
    "pause": ("{setWeight: 10}", "{setWeight: 10}, {pause: {duration: soon}}",
              ["steps[1].pause.duration", "'soon'"]),
    "api": ("argoproj.io/v1alpha1\nkind: Rollout", "apps/v1\nkind: Rollout", ["apiVersion", "'apps/v1'"]),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_manifests_exit_2_naming_the_document_and_the_field(tmp_path, capsys, case):
    old, new, needles = INVALID[case]
    path = rollout(tmp_path, "canary:\n  analysis: {templates: [{templateName: success-rate}]}\n"
                             "  steps: [{setWeight: 10}]", SUCCESS)
    text = open(path).read()
    if case == "strategy":
        text = text.replace("  strategy:\n    canary:\n      analysis: {templates: [{templateName: success-rate}]}\n"
                            "      steps: [{setWeight: 10}]\n", new)
    else:
        assert old in text, case
        text = text.replace(old, new, 1)
    open(path, "w").write(text)
    code = main(["import", "argo", path, "--base", "experiments/checkout-canary.yaml"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    with pytest.raises(ManifestError):
        import_argo_documents(path, (), BASE)


def test_cluster_templates_from_a_template_file(tmp_path):
    (tmp_path / "templates.yaml").write_text(SUCCESS.replace("kind: AnalysisTemplate", "kind: ClusterAnalysisTemplate"))
    path = rollout(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate, clusterScope: true}]}}")
    r = import_argo_documents(path, [tmp_path / "templates.yaml"], BASE)
    assert r.scenario.strategy.analysis and r.scenario.analysis.metrics[0].max == pytest.approx(0.05)
    with pytest.raises(ManifestError, match="ClusterAnalysisTemplate"):  # not looked up among namespaced ones
        import_argo_documents(rollout(tmp_path, "canary: {analysis: {templates: [{templateName: success-rate, "
                                                "clusterScope: true}]}}", SUCCESS), (), BASE)
