"""A scenario's strategy, analysis and rollback as a Flagger `Canary` and its `MetricTemplate`s.

Flagger holds every weight for one `analysis.interval` and checks it once, so a canary whose steps all
bake the same time exports exactly (`interval` is that bake); the templates' queries read the staging
fleet's own metrics with Flagger's `{{ interval }}` as the window (each metric's `interval` is
`monitoring.window`).
"""
from __future__ import annotations

import math

from simlab.bridges.compose import MIN_REQUESTS
from simlab.bridges.manifests import Exported, Notes, format_duration, slug
from simlab.bridges.promql import bounds, staging_query
from simlab.bridges.queries import exported
from simlab.scenario import Scenario
from simlab.scenario.types import resolve_count

API = "flagger.app/v1beta1"
ADDRESS = "http://127.0.0.1:9090"


class FlaggerExport:
    def __init__(self, scenario: Scenario):
        self.s, self.notes = scenario, Notes()
        self.name = slug(scenario.name)
        a = scenario.analysis
        self.interval = a.interval if a is not None else 60.0
        self.analysed = bool(scenario.strategy.analysis and a is not None and a.metrics)
        self.skip = False  # skipAnalysis: a rolling update or big bang Flagger cannot step through

    def documents(self) -> Exported:
        s = self.s
        analysis = self.strategy()
        templates = self.metrics(analysis)
        spec: dict = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.name},
                      "progressDeadlineSeconds": int(round(s.strategy.progress_deadline)),
                      "service": {"port": 80}, "analysis": analysis}
        if self.skip:
            spec["skipAnalysis"] = True
        if not s.rollback.automatic:
            self.notes.warn("rollback.automatic", "false: Flagger rolls back at the threshold by itself")
        docs = [{"apiVersion": API, "kind": "Canary", "metadata": {"name": self.name}, "spec": spec}, *templates]
        header = [f"exported by simlab from scenario {s.name!r}: Canary {self.name}"
                  + (f" and {len(templates)} MetricTemplate(s)" if templates else "")]
        return Exported(tuple(docs), tuple(self.notes.lines), tuple(header))

    def strategy(self) -> dict:
        st, notes = self.s.strategy, self.notes
        a = self.s.analysis
        threshold = a.failure_limit if a is not None else 1
        if st.kind == "canary":
            if st.baseline:
                notes.warn("strategy.baseline", "true: Flagger has no baseline (it checks the canary against "
                                                "thresholds, and its primary is the stable fleet); left out")
            return {**self.steps([(step.weight, step.bake) for step in st.steps]), "threshold": threshold}
        if st.kind == "blue_green":
            iterations = max(1, round(st.warmup / self.interval))
            if abs(iterations * self.interval - st.warmup) > 0.5:
                notes.warn("strategy.warmup", f"{format_duration(st.warmup)}: Flagger waits whole intervals; "
                                              f"written as {iterations} iterations of {format_duration(self.interval)}")
            if abs(st.keep_old - self.interval) > 0.5:
                notes.warn("strategy.keep_old", f"{format_duration(st.keep_old)}: Flagger promotes one interval after "
                                                "the switch; the old fleet's time is not expressible")
            return {"interval": format_duration(self.interval), "iterations": iterations, "threshold": threshold}
        if st.kind == "rolling" and self.analysed:
            n = self.s.fleet.instances
            batch = max(1, resolve_count(st.batch, n, round_up=True))
            notes.warn("strategy.kind", "rolling: Flagger has no batches; written as canary weights at each batch's "
                                        "share of instances (importing it back gives a canary)")
            shares = [min(n, k * batch) * 100 / n for k in range(1, math.ceil(n / batch) + 1)]
            return {**self.steps([(w, st.bake or self.interval) for w in shares]), "threshold": threshold}
        if st.kind == "big_bang" or (st.kind == "rolling" and st.batch not in ("100%",)):
            notes.warn("strategy.kind", f"{st.kind}: Flagger with skipAnalysis updates the primary Deployment with "
                                        "its own rolling strategy")
        elif (st.max_surge, st.max_unavailable) != ("25%", "25%"):
            notes.warn("strategy.max_surge", f"{st.max_surge} and max_unavailable {st.max_unavailable}: set them on "
                                             "the primary Deployment's rolling update (Flagger updates it at once)")
        self.skip = True
        return {"interval": format_duration(self.interval), "threshold": threshold, "stepWeight": 100}

    def steps(self, steps: list[tuple[float, float]]) -> dict:
        """stepWeight + maxWeight when the weights rise evenly, else stepWeights; the interval from the bakes."""
        notes = self.notes
        if steps and steps[-1][0] >= 100 and steps[-1][1] == 0:
            steps = steps[:-1]  # Flagger promotes after its last weight
        if not steps:
            return {"interval": format_duration(self.interval), "stepWeights": [100]}
        weights = []
        for i, (w, _) in enumerate(steps):
            if not float(w).is_integer():
                notes.warn(f"strategy.steps[{i}].weight", f"{w:g}: Flagger's weights are whole percents; written as "
                                                          f"{math.ceil(w)}")
            weights.append(math.ceil(w))
        bakes = sorted({b for _, b in steps})
        interval = bakes[0] if len(bakes) == 1 and bakes[0] > 0 else self.interval
        if len(bakes) > 1 or bakes[0] == 0:
            notes.warn("strategy.steps", "bakes of " + ", ".join(format_duration(b) for b in bakes) + ": Flagger "
                       f"holds every weight one interval; written as {format_duration(interval)}")
        if self.analysed and abs(interval - self.interval) > 0.5:
            notes.warn("analysis.interval", f"{format_duration(self.interval)}: Flagger measures once per step "
                                            f"(every {format_duration(interval)})")
        out: dict = {"interval": format_duration(interval)}
        first = weights[0]
        if all(w == first * (k + 1) for k, w in enumerate(weights)):
            out.update(stepWeight=first, maxWeight=weights[-1])
        else:
            out["stepWeights"] = weights
        return out

    def metrics(self, analysis: dict) -> list[dict]:
        a, notes = self.s.analysis, self.notes
        if a is None or not a.metrics or not (self.analysed or self.skip):
            return []
        if a.judge.kind == "mann_whitney":
            notes.warn("analysis.judge", "mann_whitney: Flagger has no canary-versus-baseline judge; no metric "
                                         "written")
            return []
        if a.failure_counting == "consecutive":
            notes.warn("analysis.failure_counting", "consecutive: Flagger counts every failed check of the rollout")
        if a.inconclusive_limit != a.failure_limit or a.on_inconclusive != "rollback":
            notes.warn("analysis.inconclusive_limit", "Flagger counts a check without data as failed (rolled back "
                                                      "at the threshold)")
        if a.min_requests != MIN_REQUESTS:
            notes.warn("analysis.min_requests", f"{a.min_requests}: Flagger judges any window that has data")
        window = format_duration(self.s.monitoring.window)
        entries, templates = [], []
        for i, check in enumerate(a.metrics):
            if check.dry_run:
                notes.warn(f"analysis.metrics[{i}].dry_run", "Flagger has no dry-run metrics; left out")
                continue
            if check.query is not None:
                written = exported(check, "{{ interval }}", f"analysis.metrics[{i}]", notes, "Flagger")
            else:
                written = [(name, staging_query(check.metric, baseline, "{{ interval }}"), "<=", value)
                           for name, baseline, value in bounds(check)]
            for name, query, op, value in written:
                template = f"{self.name}-{slug(name)}"
                if any(t["metadata"]["name"] == template for t in templates):
                    continue
                templates.append({"apiVersion": API, "kind": "MetricTemplate", "metadata": {"name": template},
                                  "spec": {"provider": {"type": "prometheus", "address": ADDRESS}, "query": query}})
                side = "max" if op == "<=" else "min"
                entries.append({"name": name, "templateRef": {"name": template},
                                "thresholdRange": {side: float(f"{value:.10g}")}, "interval": window})
        analysis["metrics"] = entries
        return templates


def export_flagger_documents(scenario: Scenario) -> Exported:
    """The Canary (and MetricTemplates) for a scenario's policy."""
    return FlaggerExport(scenario).documents()
