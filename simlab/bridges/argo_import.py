"""An Argo Rollouts `Rollout` (and its AnalysisTemplates) as a simlab scenario's strategy, analysis and rollback.

- `canary.steps`: each `setWeight` starts a step; `pause {duration}` (a bare number is seconds) and an
  `analysis` step (its measurements: count × interval) add to that step's bake; `pause: {}` waits for a
  person, modelled as `rollback.on_call.ack`. A weighted `experiment` of a `specRef: stable` and a
  `specRef: canary` template at one weight (Kayenta's baseline vs canary) is a step at that weight baking its
  duration, with `strategy.baseline` (its analyses are measured as a step's). A canary without steps goes straight to 100% as a Kubernetes
  rolling update within `maxSurge`/`maxUnavailable` (simlab's rolling strategy, one batch of 100%).
- `blueGreen`: `autoPromotionSeconds` is the warm-up before the switch (`autoPromotionEnabled: false`: the
  on-call's acknowledgement time), `scaleDownDelaySeconds` the time the old fleet is kept, the analysis is
  the post-promotion one.
"""
from __future__ import annotations

from pathlib import Path

from simlab.bridges.argo_analysis import TEMPLATE_KINDS, Measured, combine, find_template, measure
from simlab.bridges.compose import Base, Imported, compose, load_base
from simlab.bridges.manifests import Document, FieldPath, Notes, format_duration, one_of_kind, read_documents

API = "argoproj.io/v1alpha1"
SPEC_KEYS = {"replicas", "strategy", "progressDeadlineSeconds", "progressDeadlineAbort"}
SPEC_IGNORED = {"selector", "template", "workloadRef", "revisionHistoryLimit", "analysis"}
CANARY_KEYS = {"steps", "analysis", "maxSurge", "maxUnavailable", "trafficRouting"}
CANARY_IGNORED = {"canaryService", "stableService", "canaryMetadata", "stableMetadata", "antiAffinity", "pingPong"}
BLUE_GREEN_KEYS = {"autoPromotionEnabled", "autoPromotionSeconds", "scaleDownDelaySeconds", "prePromotionAnalysis",
                   "postPromotionAnalysis"}
BLUE_GREEN_IGNORED = {"activeService", "previewService", "activeMetadata", "previewMetadata", "antiAffinity",
                      "scaleDownDelayRevisionLimit"}
REF_KEYS = {"templates", "dryRun"}
REF_IGNORED = {"args", "measurementRetention", "analysisRunMetadata"}  # args feed the queries kept


class ArgoImport:
    """One translation: the Rollout, its templates, the base, and the notes on what was left out."""

    def __init__(self, rollout: Document, templates: list[Document], base: Base):
        self.doc, self.templates, self.base, self.notes = rollout, templates, base, Notes()
        self.ack = base.scenario.rollback.on_call.ack
        base_analysis = base.scenario.analysis
        self.default_interval = base_analysis.interval if base_analysis is not None else 60.0

    def run(self, ref: FieldPath, role: str) -> list[Measured]:
        """The metrics of every template one analysis reference names."""
        doc, notes = self.doc, self.notes
        notes.unknown_keys(doc, ref, REF_KEYS | ({"startingStep"} if role == "background" else set()), REF_IGNORED)
        dry = {doc.text(ref + ("dryRun", i, "metricName"), "") for i in range(len(doc.items(ref + ("dryRun",))))}
        out = []
        for i in range(len(doc.items(ref + ("templates",)))):
            template = find_template(doc, ref + ("templates", i), self.templates)
            notes.unknown_keys(template, ("spec",), {"metrics", "dryRun"}, {"args", "measurementRetention"})
            own = {template.text(("spec", "dryRun", j, "metricName"), "")
                   for j in range(len(template.items(("spec", "dryRun"))))}
            args = self.args(template, ref)
            for j in range(len(template.items(("spec", "metrics")))):
                name = template.text(("spec", "metrics", j, "name"), "")
                is_dry = bool({name, "*"} & (dry | own))
                out.append(measure(template, j, is_dry, notes, role, args))
        return out

    def args(self, template: Document, ref: FieldPath) -> dict[str, str]:
        """The template's argument values: its own defaults, then the reference's (`value` only; a `valueFrom`
        is known only in the cluster)."""
        values = {}
        for doc, path in ((template, ("spec", "args")), (self.doc, ref + ("args",))):
            for arg in doc.items(path):
                if isinstance(arg, dict) and "name" in arg and isinstance(arg.get("value"), (str, int, float)):
                    values[str(arg["name"])] = str(arg["value"])
        return values

    def seconds(self, measured: list[Measured], where: str) -> float:
        """How long a run that must finish (a step's, a pre-promotion one) takes: its longest metric."""
        longest = 0.0
        for m in measured:
            if m.count is None and m.interval:
                self.notes.warn(where, "an analysis with an interval and no count runs until it fails; "
                                       "modelled as one interval")
            longest = max(longest, (m.count or 1) * (m.interval or self.default_interval))
        return longest

    def translate(self) -> Imported:
        doc, notes = self.doc, self.notes
        if doc.text(("apiVersion",)) != API:
            raise doc.error(("apiVersion",), f"expected {API}, found {doc.get(('apiVersion',))!r}")
        doc.mapping(("spec",), required=True)
        notes.unknown_keys(doc, ("spec",), SPEC_KEYS, SPEC_IGNORED)
        strategy = doc.mapping(("spec", "strategy"))
        kinds = [k for k in ("canary", "blueGreen") if k in strategy]
        if len(kinds) != 1:
            found = "both" if kinds else (", ".join(strategy) or "none")
            raise doc.error(("spec", "strategy"), f"expected canary or blueGreen, found {found}")
        notes.unknown_keys(doc, ("spec", "strategy"), {"canary", "blueGreen"})
        instances = doc.integer(("spec", "replicas"), minimum=1)
        if instances is None:
            notes.warn(doc.where(("spec", "replicas")), f"absent (an autoscaler?): fleet.instances kept from the "
                                                        f"base ({self.base.scenario.fleet.instances})")
        if kinds == ["canary"]:
            out, measured = self.canary(("spec", "strategy", "canary"))
        else:
            out, measured = self.blue_green(("spec", "strategy", "blueGreen"))
        out.update(self.deadline())
        analysis = combine(measured, notes, doc.where(("spec", "strategy", kinds[0])), self.default_interval)
        if analysis is None and measured:
            notes.warn(doc.where(("spec", "strategy", kinds[0])),
                       "no analysis metric could be modelled: the rollout runs without analysis")
        if "analysis" in out:
            out["analysis"] = out["analysis"] and analysis is not None
        header = [f"imported by simlab from {doc.source} ({doc.kind} {doc.name}); fleet, traffic, release and "
                  f"failures from {self.base.label}"]
        return compose(self.base, strategy=out, analysis=analysis, notes=notes, header=header, instances=instances)

    def deadline(self) -> dict:
        doc = self.doc
        seconds = doc.integer(("spec", "progressDeadlineSeconds"), minimum=1)
        if seconds is None:
            return {"progress_deadline": format_duration(600)}
        if doc.get(("spec", "progressDeadlineAbort")) is not True:
            self.notes.warn(doc.where(("spec", "progressDeadlineSeconds")),
                            "without progressDeadlineAbort: true Argo only marks the rollout degraded; "
                            "simlab rolls back at the deadline")
        return {"progress_deadline": format_duration(seconds)}

    # -- canary -----------------------------------------------------------------------------------------
    def canary(self, path: FieldPath) -> tuple[dict, list[Measured]]:
        doc, notes = self.doc, self.notes
        notes.unknown_keys(doc, path, CANARY_KEYS, CANARY_IGNORED)
        routing = doc.mapping(path + ("trafficRouting",))
        for key in routing:
            notes.warn(doc.where(path + ("trafficRouting", key)),
                       "traffic-routing provider details are not modelled: simlab splits traffic by weight exactly")
        measured: list[Measured] = []
        background = path + ("analysis",)
        if doc.get(background) is not None:
            measured += self.run(background, "background")
            start = doc.integer(background + ("startingStep",), 0, minimum=0)
            if start:
                notes.warn(doc.where(background + ("startingStep",)),
                           f"{start}: simlab analyses from the first step (it has no analysis.starting_step)")
        raw_steps = doc.items(path + ("steps",))
        if not raw_steps:
            return self.rolling(path, bool(measured)), measured
        if not routing:
            notes.warn(doc.where(path + ("steps",)),
                       "without trafficRouting Argo reaches each weight by replica counts (scaling the stable "
                       "set down); simlab sends exactly that share of traffic and keeps the old fleet whole")
        for key in ("maxSurge", "maxUnavailable"):
            if doc.get(path + (key,)) is not None:
                notes.warn(doc.where(path + (key,)), "not modelled with steps: simlab's canary adds ⌈n × weight⌉ "
                                                     "instances beside the whole old fleet")
        self.baseline_steps: list[int] = []  # steps holding a weighted baseline-vs-canary experiment
        steps, inline = self.steps(path + ("steps",))
        measured += inline
        out = {"kind": "canary", "steps": steps, "analysis": bool(measured)}
        if self.baseline_steps:
            out["baseline"] = True
            plain = [i for i, s in enumerate(steps) if i not in self.baseline_steps and s["weight"] < 100]
            if plain:
                notes.warn(doc.where(path + ("steps",)), "simlab runs its baseline beside the canary at every step "
                           f"below 100; steps {', '.join(map(str, plain))} had no experiment and get one too")
        return out, measured

    def steps(self, path: FieldPath) -> tuple[list[dict], list[Measured]]:
        doc, notes = self.doc, self.notes
        steps: list[list[float]] = []  # [weight, bake]
        measured: list[Measured] = []
        for i, step in enumerate(doc.items(path)):
            here = path + (i,)
            if not isinstance(step, dict) or len(step) != 1:
                raise doc.error(here, "expected one of setWeight, pause, analysis, experiment, setCanaryScale, "
                                      f"setHeaderRoute, setMirrorRoute or plugin, found {step!r}")
            (action,) = step
            hold = 0.0
            if action == "setWeight":
                weight = doc.integer(here + ("setWeight",), minimum=0)
                if weight > 100:
                    raise doc.error(here + ("setWeight",), f"expected a weight from 0 to 100, found {weight}")
                if weight == 0 or (steps and weight <= steps[-1][0]):
                    notes.warn(doc.where(here + ("setWeight",)), f"{weight}: simlab's weights rise step by step "
                                                                 "from above 0; this step joins the previous one")
                else:
                    steps.append([float(weight), 0.0])
                continue
            if action == "pause":
                seconds = doc.pause_seconds(here + ("pause", "duration"))
                if seconds is None:
                    seconds = self.ack
                    notes.warn(doc.where(here + ("pause",)),
                               f"an indefinite pause waits for a person to promote: modelled as the on-call's "
                               f"acknowledgement time (rollback.on_call.ack, {format_duration(self.ack)})")
                hold = seconds
            elif action == "analysis":
                run = self.run(here + ("analysis",), "step")
                measured += run
                hold = self.seconds(run, doc.where(here + ("analysis",)))
            elif action == "experiment":
                hold, weight, run = self.experiment(here + ("experiment",))
                measured += run
                if weight is not None and (not steps or weight > steps[-1][0]):
                    steps.append([weight, 0.0])
                    self.baseline_steps.append(len(steps) - 1)
                elif weight is not None:
                    notes.warn(doc.where(here + ("experiment",)), f"weight {weight:g}: simlab's weights rise step "
                                                                  "by step; this experiment joins the previous step")
            else:
                notes.warn(doc.where(here + (action,)), "not modelled by simlab; left out")
            if steps:
                steps[-1][1] += hold
            elif hold:
                notes.warn(doc.where(here), "a wait before the first setWeight holds no canary traffic; "
                                            "simlab's canary has no step at weight 0, so it is left out")
        if not steps or steps[-1][0] < 100:
            steps.append([100.0, 0.0])  # after its last step Argo promotes to 100%
        return [{"weight": _number(w), "bake": format_duration(b)} for w, b in steps], measured

    def experiment(self, path: FieldPath) -> tuple[float, float | None, list[Measured]]:
        """An experiment step: its duration, the weight of a baseline-vs-canary experiment (None for any other,
        which is not modelled), and its analyses' metrics."""
        doc, notes = self.doc, self.notes
        notes.unknown_keys(doc, path, {"duration", "templates", "analyses"}, {"dryRun", "analysisRunMetadata"})
        hold = doc.go_duration(path + ("duration",), 0.0)
        measured = []
        for j in range(len(doc.items(path + ("analyses",)))):
            ref = path + ("analyses", j)
            template = find_template(doc, ref, self.templates)
            for k in range(len(template.items(("spec", "metrics")))):
                measured.append(measure(template, k, False, notes, "step", self.args(template, ref)))
        templates = {doc.text(path + ("templates", i, "specRef"), ""): path + ("templates", i)
                     for i in range(len(doc.items(path + ("templates",))))}
        weights = {ref: doc.get(t + ("weight",)) for ref, t in templates.items()}
        w = weights.get("canary")
        if set(templates) == {"stable", "canary"} and isinstance(w, int) and 0 < w < 100 and weights["stable"] == w:
            if w > 50:
                raise doc.error(templates["canary"] + ("weight",), f"expected at most 50 (the baseline and the canary "
                                                                   f"each take it, the stable set the rest), found {w}")
            notes.warn(doc.where(path), f"a baseline (specRef stable) and a canary at {w}% each: a canary step with "
                                        "strategy.baseline, sized ⌈instances × weight⌉ (replicas not kept); simlab "
                                        "keeps one baseline across steps and resizes it, Argo starts fresh pods for "
                                        "each experiment")
            return hold, float(w), measured
        notes.warn(doc.where(path), "experiments other than a baseline and a canary at one weight are not modelled" +
                   (f"; the step waits its duration ({format_duration(hold)})" if hold else ""))
        return hold, None, measured

    def rolling(self, path: FieldPath, analysis: bool) -> dict:
        surge = self.doc.count_or_percent(path + ("maxSurge",))
        unavailable = self.doc.count_or_percent(path + ("maxUnavailable",))
        surge = "25%" if surge is None else surge
        unavailable = "25%" if unavailable is None else unavailable
        if surge in (0, "0%") and unavailable in (0, "0%"):
            raise self.doc.error(path + ("maxSurge",), "expected maxSurge or maxUnavailable above 0, found both 0")
        return {"kind": "rolling", "batch": "100%", "max_surge": surge, "max_unavailable": unavailable,
                "bake": "0s", "analysis": analysis}

    # -- blue-green -------------------------------------------------------------------------------------
    def blue_green(self, path: FieldPath) -> tuple[dict, list[Measured]]:
        doc, notes = self.doc, self.notes
        notes.unknown_keys(doc, path, BLUE_GREEN_KEYS, BLUE_GREEN_IGNORED)
        pre = self.run(path + ("prePromotionAnalysis",), "pre") if doc.get(path + ("prePromotionAnalysis",)) else []
        post = self.run(path + ("postPromotionAnalysis",), "post") if doc.get(path + ("postPromotionAnalysis",)) else []
        warmup = float(doc.integer(path + ("autoPromotionSeconds",), 0, minimum=0))
        if doc.get(path + ("autoPromotionEnabled",)) is False:
            if warmup:
                notes.warn(doc.where(path + ("autoPromotionSeconds",)), "ignored by Argo when autoPromotionEnabled "
                                                                        "is false")
            warmup = self.ack
            notes.warn(doc.where(path + ("autoPromotionEnabled",)),
                       f"false: a person promotes; modelled as the on-call's acknowledgement time "
                       f"(rollback.on_call.ack, {format_duration(self.ack)}) before the switch")
        if pre:
            where = doc.where(path + ("prePromotionAnalysis",))
            warmup += self.seconds(pre, where)
            notes.warn(where, "simlab's green fleet takes no traffic before the switch, so it cannot be analysed "
                              "there: the switch waits the analysis' length" +
                              ("" if post else "; its metrics are measured after the switch instead"))
        delay = doc.integer(path + ("scaleDownDelaySeconds",), minimum=0)
        if delay is None:
            delay = max(30.0, self.seconds(post, doc.where(path + ("postPromotionAnalysis",)))) if post else 30.0
        measured = post or pre
        out = {"kind": "blue_green", "warmup": format_duration(warmup), "keep_old": format_duration(delay),
               "analysis": bool(measured)}
        return out, measured


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def import_argo_documents(rollout: str | Path, templates: list[str | Path] | tuple = (),
                          base: str | Path | object = None) -> Imported:
    """Translate a Rollout file (with AnalysisTemplates in it or in `templates`) onto `base`."""
    from simlab.bridges.manifests import ManifestError

    if base is None:
        raise ManifestError("--base: expected the scenario to import onto (fleet, traffic, release, failures)")
    docs = read_documents(rollout)
    found = one_of_kind(docs, ("Rollout",), str(rollout))
    pool = [d for d in docs if d.kind in TEMPLATE_KINDS]
    notes_before = []
    for d in docs:
        if d is not found and d.kind not in TEMPLATE_KINDS:
            notes_before.append(d.where() + ": not a Rollout or an AnalysisTemplate; ignored")
    for path in templates:
        for d in read_documents(path):
            if d.kind not in TEMPLATE_KINDS:
                raise d.error(("kind",), f"expected AnalysisTemplate or ClusterAnalysisTemplate, found {d.kind!r}")
            pool.append(d)
    job = ArgoImport(found, pool, load_base(base))
    job.notes.lines.extend(notes_before)
    return job.translate()
