"""A Flagger `Canary` (and its MetricTemplates) as a simlab scenario's strategy, analysis and rollback.

Flagger advances once per `analysis.interval`: each weight (`stepWeight`, 2 × `stepWeight`, … until one
reaches `maxWeight`; or the `stepWeights` list) is held one interval and must pass its checks, then the
canary is promoted. A failed check holds the weight and counts; the rollout is rolled back when failed
checks *reach* `threshold` (so `threshold: N` is simlab's `failure_limit: N`). A check that finds no data
fails too: simlab counts such windows as inconclusive, so `inconclusive_limit` is also N and rolls back.
`iterations` without `match` is Flagger's blue/green (green analysed on test traffic, then the switch);
with `match` it is an A/B test, modelled as a canary step of `ab_weight` percent for iterations × interval.
"""
from __future__ import annotations

from pathlib import Path

from simlab.bridges.argo_analysis import own_names
from simlab.bridges.compose import Base, Imported, compose, load_base
from simlab.bridges.manifests import Document, FieldPath, ManifestError, Notes, format_duration, one_of_kind, \
    read_documents
from simlab.bridges.promql import Bound, Unmodelled, check_for
from simlab.bridges.queries import keep, substitute

SPEC_KEYS = {"analysis", "progressDeadlineSeconds", "skipAnalysis", "service", "provider"}
SPEC_IGNORED = {"targetRef", "metricsServer", "revertOnDeletion"}
ANALYSIS_KEYS = {"interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "iterations", "metrics",
                 "match", "webhooks", "alerts"}
SERVICE_IGNORED = {"port", "portName", "targetPort", "name", "portDiscovery", "appProtocol"}
METRIC_KEYS = {"name", "interval", "threshold", "thresholdRange", "query", "templateRef", "templateVariables"}
BUILTIN = ("request-success-rate", "request-duration")


class FlaggerImport:
    def __init__(self, canary: Document, templates: list[Document], base: Base, ab_weight: float):
        self.doc, self.templates, self.base, self.notes = canary, templates, base, Notes()
        self.ab_weight = ab_weight
        self.ack = base.scenario.rollback.on_call.ack

    def translate(self) -> Imported:
        doc, notes = self.doc, self.notes
        api = doc.text(("apiVersion",), "")
        if not api.startswith("flagger.app/"):
            raise doc.error(("apiVersion",), f"expected flagger.app/v1beta1, found {api!r}")
        doc.mapping(("spec",), required=True)
        a: FieldPath = ("spec", "analysis")
        if doc.get(a) is None and doc.get(("spec", "canaryAnalysis")) is not None:
            a = ("spec", "canaryAnalysis")  # the v1alpha3 name Flagger still reads
            notes.warn(doc.where(a), "read as spec.analysis (its older name)")
        if doc.get(a) is None:
            raise doc.error(("spec", "analysis"), "expected the canary analysis (interval, weights or iterations, "
                                                  "threshold, metrics), found none")
        notes.unknown_keys(doc, ("spec",), SPEC_KEYS | {a[-1]}, SPEC_IGNORED)
        notes.unknown_keys(doc, a, ANALYSIS_KEYS)
        self.routing()
        interval = max(10.0, doc.go_duration(a + ("interval",), 60.0))  # Flagger's floor is 10 s
        strategy = self.strategy(a, interval)
        deadline = doc.integer(("spec", "progressDeadlineSeconds"), 600, minimum=1)
        strategy["progress_deadline"] = format_duration(deadline)
        checks, windows = self.metrics(a)
        threshold = doc.integer(a + ("threshold",), 0) or 1  # Flagger's default
        analysis = None
        if checks:
            analysis = {"interval": format_duration(interval), "failure_limit": threshold,
                        "failure_counting": "cumulative", "inconclusive_limit": threshold,
                        "on_inconclusive": "rollback", "metrics": checks}
        elif strategy.get("analysis") and doc.items(a + ("metrics",)):
            notes.warn(doc.where(a + ("metrics",)), "no metric could be modelled: the rollout runs without analysis")
        if "analysis" in strategy:
            strategy["analysis"] = strategy["analysis"] and analysis is not None
        for i, _ in enumerate(doc.items(a + ("webhooks",))):
            kind = doc.text(a + ("webhooks", i, "type"), "") or "rollout"
            name = doc.text(a + ("webhooks", i, "name"), "")
            notes.warn(doc.where(a + ("webhooks", i)), f"webhook {name!r} ({kind}) not modelled: simlab calls no "
                                                       "hooks, its load is the scenario's traffic")
        if doc.items(a + ("alerts",)):
            notes.warn(doc.where(a + ("alerts",)), "notifications only; not modelled")
        header = [f"imported by simlab from {doc.source} ({doc.kind} {doc.name}); fleet, traffic, release and "
                  f"failures from {self.base.label}"]
        return compose(self.base, strategy=strategy, analysis=analysis, notes=notes, header=header,
                       window=self.window(windows))

    def routing(self) -> None:
        doc, notes = self.doc, self.notes
        provider = doc.text(("spec", "provider"))
        if provider:
            notes.warn(doc.where(("spec", "provider")), f"{provider}: traffic-routing provider details are not "
                                                        "modelled: simlab splits traffic by weight exactly")
        notes.unknown_keys(doc, ("spec", "service"), set(), SERVICE_IGNORED)

    def strategy(self, a: FieldPath, interval: float) -> dict:
        doc, notes = self.doc, self.notes
        if doc.get(("spec", "skipAnalysis")) is True:
            notes.warn(doc.where(("spec", "skipAnalysis")), "true: Flagger updates the primary Deployment at once; "
                       "modelled as a rolling update within Kubernetes' default 25% surge and 25% unavailable")
            return {"kind": "rolling", "batch": "100%", "max_surge": "25%", "max_unavailable": "25%",
                    "bake": "0s", "analysis": False}
        iterations = doc.integer(a + ("iterations",), 0, minimum=0)
        match = doc.items(a + ("match",))
        if doc.text(("spec", "provider")) == "kubernetes" and not iterations:
            notes.warn(doc.where(("spec", "provider")), "kubernetes: Flagger cannot shift traffic and runs a "
                                                        "blue/green of 10 iterations")
            iterations = 10
        if iterations and match:
            notes.warn(doc.where(a + ("match",)),
                       f"header/cookie-based A/B routing is not modelled: the matched users are taken as "
                       f"{self.ab_weight:g}% of traffic (strategy.steps[0].weight)")
            bake = format_duration(iterations * interval)
            weight = int(self.ab_weight) if float(self.ab_weight).is_integer() else self.ab_weight
            return {"kind": "canary", "steps": [{"weight": weight, "bake": bake}, {"weight": 100}],
                    "analysis": True}
        if match:
            notes.warn(doc.where(a + ("match",)), "ignored by Flagger without iterations")
        if iterations:
            notes.warn(doc.where(a + ("iterations",)),
                       "blue/green: Flagger checks the green fleet on test traffic before the switch, which simlab "
                       "does not model (green takes no traffic); the switch waits iterations × interval")
            return {"kind": "blue_green", "warmup": format_duration(iterations * interval),
                    "keep_old": format_duration(interval), "analysis": True}
        weights = self.weights(a)
        steps = [{"weight": w, "bake": format_duration(interval)} for w in weights]
        if weights[-1] < 100:
            steps.append({"weight": 100})
        return {"kind": "canary", "steps": steps, "analysis": True}

    def weights(self, a: FieldPath) -> list[int]:
        """The weights Flagger steps through (its scheduler's nextStepWeight and maxWeight)."""
        doc = self.doc
        step = doc.integer(a + ("stepWeight",), 0, minimum=0)
        listed = [doc.integer(a + ("stepWeights", i), minimum=1) for i in range(len(doc.items(a + ("stepWeights",))))]
        for i in range(1, len(listed)):
            if listed[i] <= listed[i - 1]:
                raise doc.error(a + ("stepWeights", i), f"expected weights that rise, found {listed[i]} after "
                                                        f"{listed[i - 1]}")
        if listed and not step:
            return [min(w, 100) for w in listed]
        if not step:
            raise doc.error(a, "expected stepWeight, stepWeights or iterations, found none")
        top = min(100, listed[-1]) if listed else doc.integer(a + ("maxWeight",), 100, minimum=1)
        if listed:
            self.notes.warn(doc.where(a + ("stepWeights",)), "beside stepWeight only its last weight counts "
                                                             "(as maxWeight)")
        weights = [min(step, 100)]
        while weights[-1] < top:
            weights.append(min(100, weights[-1] + step))
        return weights

    def metrics(self, a: FieldPath) -> tuple[list[dict], list[float]]:
        doc, notes = self.doc, self.notes
        checks: list[dict] = []
        windows: list[float] = []
        for i, _ in enumerate(doc.items(a + ("metrics",))):
            m = a + ("metrics", i)
            notes.unknown_keys(doc, m, METRIC_KEYS)
            name = doc.text(m + ("name",), "")
            windows.append(doc.go_duration(m + ("interval",), 60.0))
            for bound, where in self.bounds(m, name):
                try:
                    check, caveats = self.check(m, name, bound)
                except Unmodelled as exc:
                    notes.warn(doc.where(where), f"{exc}; metric {name!r} left out")
                    continue
                for caveat in caveats:
                    notes.warn(doc.where(m), caveat)
                if check not in checks:
                    checks.append(check)
        return own_names(checks), windows

    def bounds(self, m: FieldPath, name: str) -> list[tuple[Bound, FieldPath]]:
        doc = self.doc
        low, high = doc.number(m + ("thresholdRange", "min")), doc.number(m + ("thresholdRange", "max"))
        legacy = doc.number(m + ("threshold",))
        out = []
        if low is not None:
            out.append((Bound("below", low), m + ("thresholdRange", "min")))
        if high is not None:
            out.append((Bound("above", high), m + ("thresholdRange", "max")))
        if not out and legacy is not None:  # the old single threshold: a minimum for the success rate
            side = "below" if name == "request-success-rate" else "above"
            out.append((Bound(side, legacy), m + ("threshold",)))
        if not out:
            self.notes.warn(doc.where(m), f"no thresholdRange: metric {name!r} never fails; left out")
        return out

    def check(self, m: FieldPath, name: str, bound: Bound) -> tuple[dict, list[str]]:
        doc = self.doc
        if name == "request-success-rate" and not doc.get(m + ("templateRef",)):
            if bound.fail_when != "below":
                raise Unmodelled("a success rate that fails when it is high is not a regression simlab models")
            return {"metric": "error_rate", "max": float(f"{(100 - bound.value) / 100:.10g}")}, []
        if name == "request-duration" and not doc.get(m + ("templateRef",)):
            if bound.fail_when != "above":
                raise Unmodelled("a latency that fails when it is low is not a regression simlab models")
            return {"metric": "latency_p99", "max": format_duration(bound.value / 1000)}, []  # milliseconds
        query = substitute(self.query(m), self.placeholders(m))
        check, caveats, terms = check_for(query, name, bound)
        kept, why = keep(name, query, check, terms)
        return kept or check, caveats + ([why] if why else [])

    def placeholders(self, m: FieldPath) -> dict[str, str]:
        """Flagger's template placeholders: `interval` as simlab's `{{window}}` (the metric's interval is
        monitoring.window), the Canary's target, namespace and service, the metric's templateVariables."""
        doc = self.doc
        target = doc.text(("spec", "targetRef", "name"), "") or doc.name
        meta = doc.mapping(("metadata",))
        values = {"interval": "{{window}}", "target": target, "service": doc.text(("spec", "service", "name"), target),
                  "namespace": str(meta.get("namespace") or "default")}
        for key, value in doc.mapping(m + ("templateVariables",)).items():
            values[f"variables.{key}"] = str(value)
        return values

    def query(self, m: FieldPath) -> str:
        doc = self.doc
        ref = doc.text(m + ("templateRef", "name"))
        if ref is None:
            query = doc.text(m + ("query",))
            if not query:
                raise Unmodelled("expected a builtin metric, a templateRef or a query")
            return query
        for template in self.templates:
            if template.name == ref:
                kind = template.text(("spec", "provider", "type"), "prometheus")
                if kind != "prometheus":
                    raise Unmodelled(f"the {kind} provider's meaning is unknown to simlab")
                return template.text(("spec", "query"), "")
        known = ", ".join(sorted(t.name for t in self.templates)) or "none given (use --template FILE)"
        raise doc.error(m + ("templateRef", "name"), f"expected the name of a MetricTemplate in the manifests, "
                                                     f"found {ref!r} (known: {known})")

    def window(self, windows: list[float]) -> float | None:
        """The metrics' query window as monitoring.window, when they agree and it covers a scrape."""
        if not windows:
            return None
        monitoring = self.base.scenario.monitoring
        where = self.doc.where(("spec", "analysis", "metrics"))
        if len(set(windows)) > 1:
            self.notes.warn(where, "metrics query different windows; monitoring.window kept from the base "
                                   f"({format_duration(monitoring.window)})")
            return None
        if windows[0] < monitoring.scrape_interval:
            self.notes.warn(where, f"a {format_duration(windows[0])} window is shorter than the base's scrape "
                                   f"interval; monitoring.window kept ({format_duration(monitoring.window)})")
            return None
        return windows[0]


def import_flagger_documents(canary: str | Path, templates: list[str | Path] | tuple = (),
                             base: str | Path | object = None, ab_weight: float = 10.0) -> Imported:
    """Translate a Canary file (with MetricTemplates in it or in `templates`) onto `base`."""
    if base is None:
        raise ManifestError("--base: expected the scenario to import onto (fleet, traffic, release, failures)")
    if not 0 < ab_weight < 100:
        raise ManifestError(f"--ab-weight: expected a percentage between 0 and 100, found {ab_weight:g}")
    docs = read_documents(canary)
    found = one_of_kind(docs, ("Canary",), str(canary))
    pool = [d for d in docs if d.kind == "MetricTemplate"]
    ignored = [d.where() + ": not a Canary or a MetricTemplate; ignored" for d in docs
               if d is not found and d.kind != "MetricTemplate"]
    for path in templates:
        for d in read_documents(path):
            if d.kind != "MetricTemplate":
                raise d.error(("kind",), f"expected MetricTemplate, found {d.kind!r}")
            pool.append(d)
    job = FlaggerImport(found, pool, load_base(base), ab_weight)
    job.notes.lines.extend(ignored)
    return job.translate()
