"""Round trips between manifests and scenarios, the exported documents against schemas written from the
published CRD field lists, and the import/export commands as the README and docs/bridges.md show them."""
from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from simlab.bridges.argo_export import export_argo_documents
from simlab.bridges.argo_import import import_argo_documents
from simlab.bridges.flagger_export import export_flagger_documents
from simlab.bridges.flagger_import import import_flagger_documents
from simlab.cli import main
from simlab.scenario import load_scenario, validate_scenario
from tests.helpers.scenarios import scenario

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = ROOT / "experiments" / "imports"
BASE = ROOT / "experiments" / "checkout-canary.yaml"
ARGO = sorted(p.name for p in IMPORTS.glob("*.yaml") if "argoproj.io" in p.read_text())
FLAGGER = sorted(p.name for p in IMPORTS.glob("*.yaml") if "kind: Canary" in p.read_text())
FLAGGER_TEMPLATES = [IMPORTS / "search-templates.yaml"]
SCHEMAS = {name: jsonschema.Draft202012Validator(json.loads((ROOT / "tests" / "fixtures" / f"{name}.schema.json")
                                                            .read_text()))
           for name in ("argo-rollouts", "flagger")}


def policy(s) -> tuple:
    """What a round trip must keep: the strategy, and the analysis when the strategy uses it."""
    return s.strategy, (s.analysis if s.strategy.analysis else None)


def validate(documents, schema: str) -> None:
    for doc in documents:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in SCHEMAS[schema].iter_errors(doc)]
        assert errors == [], (doc.get("kind"), errors)


def test_the_shipped_examples_are_both_kinds_and_valid_manifests():
    assert len(ARGO) >= 2 and len(FLAGGER) >= 2
    for path in sorted(IMPORTS.glob("*.yaml")):
        validate(yaml.safe_load_all(path.read_text()), "flagger" if "flagger.app" in path.read_text() else "argo-rollouts")


@pytest.mark.parametrize("name", ARGO)
def test_argo_import_export_import_keeps_strategy_and_analysis(tmp_path, name):
    first = import_argo_documents(IMPORTS / name, (), BASE)
    exported = export_argo_documents(first.scenario)
    validate(exported.documents, "argo-rollouts")
    path = tmp_path / "exported.yaml"
    path.write_text(exported.yaml())
    again = import_argo_documents(path, (), BASE)
    assert policy(again.scenario) == policy(first.scenario)
    assert first.scenario.analysis.unsimulated() == []  # each kept query names the built-in metric it stands for
    assert again.scenario.fleet == first.scenario.fleet


@pytest.mark.parametrize("name", FLAGGER)
def test_flagger_import_export_import_keeps_strategy_and_analysis(tmp_path, name):
    first = import_flagger_documents(IMPORTS / name, FLAGGER_TEMPLATES, BASE, ab_weight=5)
    exported = export_flagger_documents(first.scenario)
    validate(exported.documents, "flagger")
    path = tmp_path / "exported.yaml"
    path.write_text(exported.yaml())
    again = import_flagger_documents(path, (), BASE, ab_weight=5)
    assert again.scenario.strategy == first.scenario.strategy
    assert again.scenario.monitoring == first.scenario.monitoring
    if first.scenario.strategy.steps[0].bake > first.scenario.analysis.interval:
        # an A/B test holds one weight for many checks: Flagger says that only with a header match, so the
        # export checks once per step and says so
        assert any("Flagger measures once per step" in w for w in exported.warnings)
    else:
        assert again.scenario.analysis == first.scenario.analysis


ANALYSIS = {"interval": "30s", "failure_limit": 3, "min_requests": 1, "inconclusive_limit": 3,
            "on_inconclusive": "rollback",
            "metrics": [{"metric": "error_rate", "max": 0.02}, {"metric": "latency_p99", "max": "800ms"},
                        {"metric": "latency_mean", "max_ratio_to_baseline": 1.5},
                        {"metric": "error_rate", "max_ratio_to_baseline": 2.0}]}
SCENARIOS = {
    "canary": {"strategy": {"kind": "canary", "steps": [{"weight": 5, "bake": "30s"}, {"weight": 20, "bake": "30s"},
                                                        {"weight": 60, "bake": "30s"}, {"weight": 100}]}},
    "canary-even": {"strategy": {"kind": "canary", "steps": [{"weight": 25, "bake": "30s"},
                                                             {"weight": 50, "bake": "30s"},
                                                             {"weight": 75, "bake": "30s"},
                                                             {"weight": 100, "bake": "30s"}]}},
    "blue-green": {"strategy": {"kind": "blue_green", "warmup": "1m30s", "keep_old": "30s"}},
    "rolling": {"strategy": {"kind": "rolling", "batch": "100%", "max_surge": "25%", "max_unavailable": "25%",
                             "bake": 0, "analysis": False}},
}
ARGO_ONLY = {
    "rolling-surge": {"strategy": {"kind": "rolling", "batch": "100%", "max_surge": 2, "max_unavailable": "0%",
                                   "bake": 0}},
    "canary-uneven-bakes": {"strategy": {"kind": "canary", "steps": [{"weight": 1, "bake": "5m"},
                                                                     {"weight": 10, "bake": "15m"}, {"weight": 100}]},
                            "analysis.failure_counting": "cumulative"},
    "dry-run": {"analysis.metrics": [{"metric": "error_rate", "max": 0.01},
                                     {"metric": "latency_p99", "max": "1s", "dry_run": True}]},
    "mann-whitney": {"analysis.judge": {"kind": "mann_whitney", "pass_score": 90, "marginal_score": 60},
                     "analysis.metrics": [{"metric": "error_rate"}, {"metric": "latency_p99"}]},
}


def _scenario(overrides: dict):
    overrides = copy.deepcopy({"analysis": ANALYSIS, **overrides})
    strategy = overrides.pop("strategy", None)
    s = scenario("canary", **overrides)
    return s if strategy is None else validate_scenario({**s.model_dump(mode="json"), "strategy": strategy})


@pytest.mark.parametrize("case", sorted(SCENARIOS) + sorted(ARGO_ONLY))
def test_a_scenario_exported_to_argo_and_imported_is_the_same_policy(tmp_path, case):
    s = _scenario({**SCENARIOS, **ARGO_ONLY}[case])
    if case == "mann-whitney":  # Kayenta's metric settings are not in a manifest; simlab's defaults come back
        s = s.model_copy(update={"analysis": s.analysis.model_copy(update={"inconclusive_limit": None})})
    exported = export_argo_documents(s)
    validate(exported.documents, "argo-rollouts")
    (tmp_path / "argo.yaml").write_text(exported.yaml())
    back = import_argo_documents(tmp_path / "argo.yaml", (), s)
    assert policy(back.scenario)[0] == s.strategy
    if s.strategy.analysis:
        want = s.analysis.model_copy(update={"on_inconclusive": "pause"} if s.analysis.inconclusive_limit else {})
        assert back.scenario.analysis == want


@pytest.mark.parametrize("case", sorted(SCENARIOS))
def test_a_scenario_exported_to_flagger_and_imported_is_the_same_policy(tmp_path, case):
    s = _scenario(SCENARIOS[case])
    exported = export_flagger_documents(s)
    validate(exported.documents, "flagger")
    assert exported.warnings == ()  # nothing in these scenarios is beyond Flagger
    (tmp_path / "flagger.yaml").write_text(exported.yaml())
    back = import_flagger_documents(tmp_path / "flagger.yaml", (), s)
    assert policy(back.scenario) == policy(s)


QUERIES = [
    {"metric": "lb-errors", "query": 'sum(rate(haproxy_server_http_responses_total{code="5xx"}[WINDOW])) / '
                                     'sum(rate(haproxy_server_http_responses_total[WINDOW]))',
     "sim_metric": "error_rate", "max": 0.02},
    {"metric": "success", "query": "1 - (sum(rate(ok_total[WINDOW])) / sum(rate(all_total[WINDOW])))",
     "sim_metric": "error_rate", "max": 0.01},
    {"metric": "p99-ms", "query": "(histogram_quantile(0.99, sum by (le) (rate(d_milliseconds_bucket[WINDOW])))) / 1000",
     "sim_metric": "latency_p99", "max": "400ms"},
    {"metric": "latency_mean", "query": "sum(rate(d_seconds_sum[WINDOW])) / sum(rate(d_seconds_count[WINDOW]))",
     "max": "200ms"},
]


@pytest.mark.parametrize("tool", ["argo", "flagger"])
def test_a_scenarios_own_queries_go_out_as_the_tools_and_come_back_the_same(tmp_path, tool):
    """Argo has no window placeholder (written as the window itself); Flagger's is {{ interval }}."""
    window = "1m" if tool == "argo" else "{{window}}"
    metrics = [{**m, "query": m["query"].replace("WINDOW", window)} for m in QUERIES]
    s = _scenario({**SCENARIOS["canary"], "analysis.metrics": metrics, "monitoring.window": "1m"})
    export, load = ((export_argo_documents, import_argo_documents) if tool == "argo"
                    else (export_flagger_documents, import_flagger_documents))
    exported = export(s)
    validate(exported.documents, "argo-rollouts" if tool == "argo" else "flagger")
    text = exported.yaml()
    # The tool's own forms: a success ratio with its success condition, milliseconds, no simlab wrapping.
    assert "1 - (" not in text and ") / 1000" not in text and "sum(rate(ok_total[" in text
    if tool == "argo":
        assert "result[0] >= 0.99" in text and "result[0] <= 400" in text and "result[0] <= 0.02" in text
    else:
        assert "{{ interval }}" in text and "{{window}}" not in text and "min: 0.99" in text and "max: 400" in text
    (tmp_path / "out.yaml").write_text(text)
    back = load(tmp_path / "out.yaml", (), s)
    want = s.analysis
    if tool == "argo" and want.inconclusive_limit:
        want = want.model_copy(update={"on_inconclusive": "pause"})
    assert back.scenario.analysis == want
    assert back.scenario.analysis.unsimulated() == []


def test_a_query_naming_the_version_is_exported_as_the_canarys_with_a_warning():
    query = 'sum(rate(errors_total{version="{{version}}",instance=~"{{instance}}"}[{{window}}]))'
    s = _scenario({"analysis.metrics": [{"metric": "errs", "query": query, "sim_metric": "error_rate",
                                         "max": 0.01, "max_ratio_to_baseline": 2}]})
    exported = export_flagger_documents(s)
    text, warnings = exported.yaml(), "\n".join(exported.warnings)
    assert 'version="new",instance=~"new-[0-9]+"' in text and 'version="old",instance=~"old-[0-9]+"' in text
    for needle in ("analysis.metrics[0].query: {{instance}} written as the canary's", "{{version}} written",
                   "analysis.metrics[0].max_ratio_to_baseline: written as the canary's value over the stable"):
        assert needle in warnings, (needle, warnings)


def test_what_flagger_cannot_say_is_warned_on_export():
    s = _scenario({**ARGO_ONLY["canary-uneven-bakes"], **ARGO_ONLY["dry-run"],
                   "analysis.failure_counting": "consecutive"})
    warnings = "\n".join(export_flagger_documents(s).warnings)
    for needle in ("strategy.steps: bakes of 5m, 15m", "analysis.metrics[1].dry_run", "failure_counting"):
        assert needle in warnings, (needle, warnings)
    surge = _scenario({"strategy": {**ARGO_ONLY["rolling-surge"]["strategy"], "analysis": False}})
    assert any("strategy.max_surge" in w for w in export_flagger_documents(surge).warnings)


def test_exported_queries_read_the_staging_fleets_metrics():
    text = export_argo_documents(_scenario({})).yaml() + export_flagger_documents(_scenario({})).yaml()
    assert "simlab_requests_total" in text and "simlab_request_duration_seconds_bucket" in text
    assert 'version="new"' in text and 'version="old"' in text and 'code_class="5xx"' in text


# --- the commands, as README.md and docs/bridges.md show them ------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_writes_the_scenario_to_stdout_with_warnings_on_stderr(capsys):
    code, out, err = run(capsys, "import", "argo", str(IMPORTS / "checkout-rollout.yaml"), "--base", str(BASE))
    assert code == 0 and out.startswith("# imported by simlab from")
    assert yaml.safe_load(out)["fleet"] == yaml.safe_load(BASE.read_text())["fleet"]  # kept as written
    assert "warning: " in err and "steps[6].pause" in err and "Traceback" not in err


def readme_commands() -> list[str]:
    """The `$ simlab …` lines of the README's Argo Rollouts and Flagger section, as written."""
    text = (ROOT / "README.md").read_text().split("### Policies from and to Argo Rollouts and Flagger", 1)[1]
    block = text.split("```", 2)[1]
    return [line[2:] for line in block.splitlines() if line.startswith("$ simlab ")]


def test_the_readme_commands(tmp_path, capsys, monkeypatch):
    """Every command of the README's section runs as shown (in order, from a directory like the repository's)."""
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert [c.split()[1:3] for c in commands] == [["import", "argo"], ["check", "s.yaml"], ["export", "argo"],
                                                  ["export", "flagger"], ["import", "flagger"], ["import", "flagger"]]
    results = [run(capsys, *shlex.split(c)[1:]) for c in commands]
    assert [code for code, _, _ in results] == [0] * len(commands), [err for _, _, err in results]
    _, out, err = results[0]
    assert out == "" and "wrote s.yaml" in err and "steps[6].pause" in err
    assert [d["kind"] for d in yaml.safe_load_all(results[2][1])] == ["Rollout", "AnalysisTemplate"]
    validate(yaml.safe_load_all((tmp_path / "canary.yaml").read_text()), "flagger")
    searched = yaml.safe_load(results[4][1])
    assert searched["analysis"]["failure_limit"] == 5 and searched["strategy"]["steps"][0]["weight"] == 10
    assert load_scenario(tmp_path / "s.yaml").strategy.steps[0].weight == 5  # the A/B import wrote it last
