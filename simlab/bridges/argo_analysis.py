"""Argo Rollouts' AnalysisTemplates as simlab's one `analysis:` section.

Argo judges each metric on its own: a metric fails when its failed measurements *exceed* `failureLimit`
(default 0, so the first failure fails it) and is inconclusive when inconclusive ones exceed
`inconclusiveLimit`; an inconclusive run pauses the rollout for a person. simlab acts *at* its limits, over
all metrics together, so `failureLimit: N` is `failure_limit: N + 1` (the strictest metric's when they
differ) and `inconclusiveLimit: N` is `inconclusive_limit: N + 1` with `on_inconclusive: pause`.
"""
from __future__ import annotations

from dataclasses import dataclass

from simlab.bridges.manifests import Document, FieldPath, Notes, format_duration
from simlab.bridges.promql import Unmodelled, bound_of, check_for
from simlab.bridges.queries import keep, substitute

TEMPLATE_KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
METRIC_KEYS = {"name", "interval", "count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit",
               "successCondition", "failureCondition", "provider", "initialDelay", "consecutiveSuccessLimit"}


@dataclass(frozen=True)
class Measured:
    """One Argo metric as simlab reads it."""

    check: dict | None  # the simlab check, None when it cannot be modelled
    interval: float | None
    count: int | None
    failure_limit: int  # Argo's: failures tolerated
    inconclusive_limit: int | None  # Argo's, when inconclusive measurements can happen
    dry_run: bool
    judge: dict | None = None  # Kayenta's scores, for simlab's mann_whitney judge


@dataclass
class Reference:
    """Where a Rollout refers to templates: the background analysis, a step, pre- or post-promotion."""

    path: FieldPath
    role: str  # background | step | pre | post


def _int_or_string(doc: Document, path: FieldPath, default: int | None) -> int | None:
    value = doc.get(path)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise doc.error(path, f"expected a whole number, found {value!r}")


def find_template(rollout: Document, path: FieldPath, templates: list[Document]) -> Document:
    """The template a `templates[i]` entry names (ClusterAnalysisTemplate when clusterScope is true)."""
    name = rollout.text(path + ("templateName",))
    if not name:
        raise rollout.error(path + ("templateName",), "expected the name of an AnalysisTemplate, found none")
    kind = "ClusterAnalysisTemplate" if rollout.get(path + ("clusterScope",)) is True else "AnalysisTemplate"
    for doc in templates:
        if doc.kind == kind and doc.name == name:
            return doc
    known = ", ".join(sorted(f"{d.kind} {d.name}" for d in templates)) or "none given (use --template FILE)"
    raise rollout.error(path + ("templateName",), f"expected the name of a {kind} in the manifests, "
                                                  f"found {name!r} (known: {known})")


def measure(template: Document, i: int, dry: bool, notes: Notes, role: str, args: dict[str, str] | None = None
            ) -> Measured:
    """Metric `i` of a template: its check, cadence and limits; what cannot be modelled is noted. `args`: the
    values of the template's arguments (`{{args.NAME}}` in a query)."""
    path: FieldPath = ("spec", "metrics", i)
    notes.unknown_keys(template, path, METRIC_KEYS)
    name = template.text(path + ("name",), "")
    interval = template.go_duration(path + ("interval",))
    count = _int_or_string(template, path + ("count",), None)
    failure_limit = _int_or_string(template, path + ("failureLimit",), 0)
    explicit_inconclusive = _int_or_string(template, path + ("inconclusiveLimit",), None)
    for key, why in (("consecutiveErrorLimit", "simlab's monitoring never errors (a thin window is inconclusive)"),
                     ("initialDelay", "simlab measures from the start of the analysis"),
                     ("consecutiveSuccessLimit", "simlab's analysis has no success limit")):
        if template.get(path + (key,)) is not None:
            notes.warn(template.where(path + (key,)), f"not modelled: {why}")
    if count is not None and role in ("background", "post"):
        notes.warn(template.where(path + ("count",)),
                   "not modelled: simlab measures every analysis.interval until the rollout ends")
    if failure_limit < 0:
        notes.warn(template.where(path + ("failureLimit",)),
                   f"{failure_limit}: failures never fail this metric in Argo; kept as a dry-run metric")
        dry = True
    provider = template.mapping(path + ("provider",), required=True)
    check, judge, inconclusive = None, None, explicit_inconclusive
    if "prometheus" in provider:
        check, band = _prometheus(template, path, name, notes, args or {})
        if band and inconclusive is None:
            inconclusive = 0  # Argo's default inconclusiveLimit: the first inconclusive measurement pauses
    elif "kayenta" in provider:
        judge = _kayenta(template, path + ("provider", "kayenta"), notes)
    for key in provider:
        if key not in ("prometheus", "kayenta"):
            notes.warn(template.where(path + ("provider", key)),
                       f"the {key} provider's meaning is unknown to simlab; metric {name!r} left out")
    return Measured(check, interval, count, max(failure_limit, 0), inconclusive, dry, judge)


def _prometheus(template: Document, path: FieldPath, name: str, notes: Notes, args: dict[str, str]
                ) -> tuple[dict | None, bool]:
    """The metric's check: its query kept in `query:` (queries.py) with the built-in metric it amounts to as
    `sim_metric`, or that built-in metric alone when the query cannot be kept."""
    prom = path + ("provider", "prometheus")
    notes.unknown_keys(template, prom, {"query", "address"}, {"timeout", "insecure", "headers", "authentication"})
    query = substitute(template.text(prom + ("query",), ""), {f"args.{k}": v for k, v in args.items()})
    try:
        bound, band = bound_of(template.text(path + ("successCondition",)), template.text(path + ("failureCondition",)))
    except Unmodelled as exc:
        notes.warn(template.where(path + ("successCondition",)), f"{exc}; metric {name!r} left out")
        return None, False
    try:
        check, caveats, terms = check_for(query, name, bound)
    except Unmodelled as exc:
        notes.warn(template.where(prom + ("query",)), f"{exc}; metric {name!r} left out")
        return None, band
    for caveat in caveats:
        notes.warn(template.where(prom + ("query",)), caveat)
    if band:
        notes.warn(template.where(path + ("failureCondition",)),
                   "values between successCondition and failureCondition are inconclusive in Argo; simlab "
                   "judges by the failureCondition and calls only a window with too few requests inconclusive")
    kept, why = keep(name, query, check, terms)
    if why:
        notes.warn(template.where(prom + ("query",)), why)
    return kept or check, band


def _kayenta(template: Document, path: FieldPath, notes: Notes) -> dict:
    notes.warn(template.where(path + ("canaryConfigName",)),
               "Kayenta's canary config (its metrics, directions, tolerances) is not in the manifest: judged with "
               "simlab's mann_whitney judge on error_rate and latency_p99, each with its defaults")
    judge = {"kind": "mann_whitney"}
    for key, field in (("pass", "pass_score"), ("marginal", "marginal_score")):
        value = template.number(path + ("threshold", key))
        if value is not None:
            judge[field] = value
    return judge


def combine(measured: list[Measured], notes: Notes, where: str, default_interval: float) -> dict | None:
    """simlab's analysis section from every metric the rollout refers to; None when none can be modelled."""
    judge = next((m.judge for m in measured if m.judge is not None), None)
    checks = [m for m in measured if m.check is not None]
    if judge is not None:
        if checks:
            notes.warn(where, "threshold metrics beside a Kayenta metric are left out: simlab judges an analysis "
                              "one way (analysis.judge)")
        kayenta = [m for m in measured if m.judge is not None]
        checks = [Measured({"metric": metric}, k.interval, k.count, k.failure_limit, k.inconclusive_limit,
                           k.dry_run) for k in kayenta[:1] for metric in ("error_rate", "latency_p99")]
    if not checks:
        return None
    acting = [m for m in checks if not m.dry_run] or checks
    intervals = sorted({m.interval for m in acting if m.interval})
    if not intervals:
        notes.warn(where, f"no metric has an interval (Argo takes one measurement); simlab measures every "
                          f"{format_duration(default_interval)}")
        intervals = [default_interval]
    if len(intervals) > 1:
        notes.warn(where, "metrics measure every " + ", ".join(format_duration(s) for s in intervals)
                   + f"; simlab measures all of them every {format_duration(intervals[0])} (the shortest)")
    limits = sorted({m.failure_limit for m in acting})
    if len(limits) > 1:
        notes.warn(where, f"failureLimit differs between metrics ({', '.join(map(str, limits))}); simlab applies "
                          f"the strictest, {limits[0]}, to every measurement")
    analysis: dict = {"interval": format_duration(intervals[0]), "failure_limit": limits[0] + 1,
                      "failure_counting": "cumulative"}
    inconclusive = sorted({m.inconclusive_limit for m in acting if m.inconclusive_limit is not None})
    if inconclusive:
        analysis.update(inconclusive_limit=inconclusive[0] + 1, on_inconclusive="pause")
    if judge is not None:
        analysis["judge"] = judge
    metrics: list[dict] = []
    for m in checks:
        entry = {**m.check, **({"dry_run": True} if m.dry_run else {})}
        if entry not in metrics:
            metrics.append(entry)
    analysis["metrics"] = own_names(metrics)
    return analysis


def own_names(metrics: list[dict]) -> list[dict]:
    """Metrics whose kept queries each have a name no other metric uses (`-2`, `-3` … added where needed)."""
    out: list[dict] = []
    for entry in metrics:
        if "query" in entry:
            names = {m["metric"] for m in metrics if "query" not in m} | {m["metric"] for m in out}
            name, k = entry["metric"], 2
            while name in names:
                name, k = f"{entry['metric']}-{k}", k + 1
            entry = {**entry, "metric": name}
        out.append(entry)
    return out
