"""A scenario's strategy, analysis and rollback as an Argo Rollouts `Rollout` and its `AnalysisTemplate`.

The template's queries read the staging fleet's own metrics (`simlab_requests_total`,
`simlab_request_duration_seconds`), so the exported policy can be run against `simlab staging`'s Prometheus;
point `address` at yours. Importing the result gives the same strategy and analysis back (what Argo cannot
say is listed as warnings).
"""
from __future__ import annotations

import math

from simlab.bridges.compose import MIN_REQUESTS
from simlab.bridges.manifests import Exported, Notes, format_duration, slug
from simlab.bridges.promql import bounds, staging_query, success_query
from simlab.bridges.queries import exported
from simlab.scenario import Scenario
from simlab.scenario.types import resolve_count

API = "argoproj.io/v1alpha1"
ADDRESS = "http://127.0.0.1:9090"  # simlab staging's Prometheus listens on loopback; point it at yours


def _seconds(value: float) -> int:
    return int(round(value))


def _weight(value: float, notes: Notes, where: str) -> int:
    if float(value).is_integer():
        return int(value)
    notes.warn(where, f"{value:g}: Argo's setWeight is a whole percent; written as {math.ceil(value)}")
    return math.ceil(value)


class ArgoExport:
    def __init__(self, scenario: Scenario):
        self.s, self.notes = scenario, Notes()
        self.name = slug(scenario.name)
        analysis = scenario.analysis
        self.analysed = bool(scenario.strategy.analysis and analysis is not None and analysis.metrics)
        self.refs = {"templates": [{"templateName": f"{self.name}-analysis"}]}

    def documents(self) -> Exported:
        s = self.s
        spec: dict = {"replicas": s.fleet.instances,
                      "progressDeadlineSeconds": _seconds(s.strategy.progress_deadline),
                      "progressDeadlineAbort": True,  # simlab rolls back at the deadline
                      "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
                      "strategy": self.strategy()}
        docs = [{"apiVersion": API, "kind": "Rollout", "metadata": {"name": self.name}, "spec": spec}]
        if self.analysed:
            docs.append(self.template())
        if not s.rollback.automatic:
            self.notes.warn("rollback.automatic", "false: Argo aborts a failed analysis by itself (written as "
                                                  "automatic)")
        header = [f"exported by simlab from scenario {s.name!r}: Rollout {self.name}"
                  + (f" and AnalysisTemplate {self.name}-analysis" if self.analysed else "")]
        return Exported(tuple(docs), tuple(self.notes.lines), tuple(header))

    def strategy(self) -> dict:
        st, n, notes = self.s.strategy, self.s.fleet.instances, self.notes
        if st.kind == "canary":
            steps: list[dict] = []
            for i, step in enumerate(st.steps):
                last = i == len(st.steps) - 1
                if st.baseline and step.weight < 100:
                    steps.append(self.experiment(i, step, n))
                    continue
                if not (last and step.weight >= 100 and step.bake == 0):  # Argo promotes after its last step
                    steps.append({"setWeight": _weight(step.weight, notes, f"strategy.steps[{i}].weight")})
                if step.bake > 0:
                    steps.append({"pause": {"duration": format_duration(step.bake)}})
            canary: dict = {"steps": steps}
            if self.analysed:
                canary = {"analysis": self.refs, **canary}
            if st.baseline:
                notes.warn("strategy.baseline", "written as a weighted experiment per step (a specRef: stable and a "
                           "specRef: canary template at the step's weight; Argo starts fresh pods for each, simlab "
                           "keeps one baseline and resizes it); weighted experiments need a trafficRouting (SMI or "
                           "ALB), to add. The analysis stays the rollout's: to compare with the baseline, point its "
                           "queries at the experiment's pods ({{templates.baseline.podTemplateHash}} as an arg)")
            return {"canary": canary}
        if st.kind == "blue_green":
            green: dict = {"activeService": self.name, "previewService": f"{self.name}-preview"}
            if st.warmup > 0:
                green["autoPromotionSeconds"] = _seconds(st.warmup)
            green["scaleDownDelaySeconds"] = _seconds(st.keep_old)
            if self.analysed:
                green["postPromotionAnalysis"] = self.refs
            return {"blueGreen": green}
        if st.kind == "big_bang":
            notes.warn("strategy.kind", "big_bang: Argo has no Recreate; written as a canary without steps that may "
                                        "stop every old instance at once (maxSurge 0, maxUnavailable 100%)")
            return {"canary": {"maxSurge": 0, "maxUnavailable": "100%"}}
        canary = {"maxSurge": st.max_surge, "maxUnavailable": st.max_unavailable}
        batch = max(1, resolve_count(st.batch, n, round_up=True))
        if batch < n or st.bake > 0:
            notes.warn("strategy.batch", "Argo has no batches: written as canary steps at each batch's share of "
                                         "instances (without trafficRouting Argo weighs by replicas); importing "
                                         "it back gives a canary")
            steps = []
            for k in range(1, math.ceil(n / batch) + 1):
                share = min(n, k * batch) * 100 / n
                if share < 100 or st.bake > 0:
                    steps.append({"setWeight": math.ceil(share)})
                if st.bake > 0:
                    steps.append({"pause": {"duration": format_duration(st.bake)}})
            canary["steps"] = steps
        if self.analysed:
            canary = {"analysis": self.refs, **canary}
        return {"canary": canary}

    def experiment(self, i: int, step, n: int) -> dict:
        """A canary step with a baseline: Argo's weighted baseline-vs-canary experiment for its bake."""
        weight = _weight(step.weight, self.notes, f"strategy.steps[{i}].weight")
        want = max(1, math.ceil(n * step.weight / 100))
        if step.bake <= 0:
            self.notes.warn(f"strategy.steps[{i}].bake", "0: an Argo experiment without a duration runs until "
                                                         "stopped; written as 1s")
        return {"experiment": {"duration": format_duration(max(step.bake, 1.0)), "templates": [
            {"name": "baseline", "specRef": "stable", "replicas": want, "weight": weight},
            {"name": "canary", "specRef": "canary", "replicas": want, "weight": weight}]}}

    def template(self) -> dict:
        a, notes = self.s.analysis, self.notes
        window = format_duration(self.s.monitoring.window)
        common: dict = {"interval": format_duration(a.interval), "failureLimit": a.failure_limit - 1}
        if a.inconclusive_limit is not None:
            common["inconclusiveLimit"] = a.inconclusive_limit - 1
            if a.on_inconclusive == "rollback":
                notes.warn("analysis.on_inconclusive", "rollback: an inconclusive Argo analysis pauses the rollout")
        if a.failure_counting == "consecutive":
            notes.warn("analysis.failure_counting", "consecutive: Argo counts every failed measurement of the run")
        if a.min_requests != MIN_REQUESTS:
            notes.warn("analysis.min_requests", f"{a.min_requests}: Argo judges any window that has data")
        metrics, dry = [], []
        if a.judge.kind == "mann_whitney":
            metrics.append({"name": "kayenta", **common, "provider": {"kayenta": self.kayenta()}})
            notes.warn("analysis.metrics", "the mann_whitney judge's metrics (direction, tolerance, weight, critical) "
                                           "belong in Kayenta's canary config, which is not a manifest")
        else:
            for i, check in enumerate(a.metrics):
                for name, query, op, value in self.queries(i, check, window):
                    name = _unique(name, metrics)
                    metrics.append({"name": name, **common, "successCondition": f"result[0] {op} {value:.10g}",
                                    "provider": {"prometheus": {"address": ADDRESS, "query": query}}})
                    if check.dry_run:
                        dry.append({"metricName": name})
        spec: dict = {"metrics": metrics}
        if dry:
            spec["dryRun"] = dry
        return {"apiVersion": API, "kind": "AnalysisTemplate", "metadata": {"name": f"{self.name}-analysis"},
                "spec": spec}

    def queries(self, i: int, check, window: str) -> list[tuple[str, str, str, float]]:
        """(name, query, operator, bound) of each Argo metric for one simlab check: its own query, or simlab
        staging's for a built-in metric."""
        if check.query is not None:
            return exported(check, window, f"analysis.metrics[{i}]", self.notes, "Argo")
        out = []
        for name, baseline, value in bounds(check):
            if check.metric == "error_rate" and not baseline:
                out.append((name, success_query(window), ">=", 1 - value))
            else:
                out.append((name, staging_query(check.metric, baseline, window), "<=", value))
        return out

    def kayenta(self) -> dict:
        judge, step = self.s.analysis.judge, _seconds(self.s.monitoring.window)
        scope = {"region": "default", "step": step}
        return {"address": "http://kayenta:8090", "application": self.name, "canaryConfigName": self.name,
                "metricsAccountName": "prometheus", "configurationAccountName": "config",
                "storageAccountName": "storage",
                "threshold": {"pass": _seconds(judge.pass_score), "marginal": _seconds(judge.marginal_score)},
                "scopes": [{"name": "default",
                            "controlScope": {"scope": "baseline" if getattr(self.s.strategy, "baseline", False) else "stable",
                                             **scope},
                            "experimentScope": {"scope": "canary", **scope}}]}


def _unique(name: str, metrics: list[dict]) -> str:
    taken = {m["name"] for m in metrics}
    out, k = name, 2
    while out in taken:
        out, k = f"{name}-{k}", k + 1
    return out


def export_argo_documents(scenario: Scenario) -> Exported:
    """The Rollout (and AnalysisTemplate) for a scenario's policy."""
    return ArgoExport(scenario).documents()
