"""A manifest's Prometheus query kept in a simlab metric's `query:` (import), and written back (export).

Import keeps a query in simlab's terms, so that one `max` bounds it on staging and bounds the built-in metric
the simulator measures in its place (`sim_metric`): a success ratio Q is kept as `1 - (Q)`, a percentage as
`(Q) / 100`, a success percentage as `1 - (Q) / 100`, milliseconds as `(Q) / 1000`. Export takes those off
again and writes the tool's condition on Q. Not kept (the built-in metric alone, with a warning): a query that
computes the canary's ratio to the baseline itself (simlab computes that ratio from `{{version}}`), one whose
placeholders the manifest gives no value for, and simlab's own exported queries (they are its built-in
measurement, so a round trip gives the built-in metric back).

Placeholders: Argo's `{{args.NAME}}` take the values the Rollout or the template gives; Flagger's
`{{ interval }}` is simlab's `{{window}}`, `{{ target }}`, `{{ namespace }}`, `{{ service }}` and
`{{ variables.NAME }}` take the Canary's values. On export `{{window}}` is Flagger's `{{ interval }}` (Argo:
the window itself), `{{version}}` the canary's `new` and `{{instance}}` its instances' names on simlab
staging (`new-[0-9]+`), each said in a warning.
"""
from __future__ import annotations

import re

from simlab.bridges.promql import AS_IS, MILLISECONDS, PERCENT, SUCCESS, SUCCESS_PERCENT, staging_query, success_query
from simlab.scenario.queries import NAME, fill, problem
from simlab.scenario.strategy import METRICS

_UNWRAP_ORDER = (SUCCESS_PERCENT, SUCCESS, PERCENT, MILLISECONDS)
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def _normal(query: str) -> str:
    return re.sub(r"\[[^\]]*\]", "[W]", " ".join(query.split()))


_OWN = {_normal(success_query("W"))} | {_normal(staging_query(m, b, "W")) for m in METRICS for b in (False, True)}


def is_own(query: str) -> bool:
    """Whether `query` is one simlab exports for a built-in metric (any window)."""
    return _normal(query) in _OWN


def substitute(query: str, values: dict[str, str]) -> str:
    """The query with each `{{ name }}` that `values` knows replaced (others left for `problem` to name)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), query)


def keep(name: str, query: str, check: dict, terms: str) -> tuple[dict | None, str | None]:
    """(the simlab metric keeping `query` in simlab's terms, None) or (None, why it is not kept).

    `check` is the built-in metric the query and its bound amount to (promql.check_for), `terms` how the query's
    value becomes that metric's.
    """
    query = query.strip()
    if is_own(query):
        return None, None  # simlab's own measurement of the built-in metric: nothing to keep, nothing to say
    if "max_ratio_to_baseline" in check:
        return None, (f"the query computes the canary's ratio to the baseline itself: not kept (simlab computes "
                      f"{check['metric']}'s ratio to the old version from its own monitoring)")
    trouble = problem(query)
    if trouble:
        found = ", ".join(sorted({f"{{{{{p}}}}}" for p in _PLACEHOLDER.findall(query)})) or trouble
        return None, f"the query's {found} has no value in the manifest: not kept (simlab measures {check['metric']})"
    metric = re.sub(r"[^A-Za-z0-9_.:-]+", "-", name).strip("-")[:63] or check["metric"]
    if not NAME.match(metric) or (metric in METRICS and metric != check["metric"]):
        metric = f"{check['metric']}-query"
    kept = {"metric": metric, "query": terms.format(query)}
    if metric != check["metric"]:
        kept["sim_metric"] = check["metric"]
    return {**kept, "max": check["max"]}, None


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def unwrap(query: str) -> tuple[str, str]:
    """(the tool's query, the terms it was kept in): the inverse of `keep`'s wrapping, AS_IS when there is none."""
    for terms in _UNWRAP_ORDER:
        head, tail = terms.split("{}")
        if query.startswith(head) and query.endswith(tail) and len(query) > len(head) + len(tail):
            inner = query[len(head):len(query) - len(tail)]
            if _balanced(inner):
                return inner, terms
    return query, AS_IS


def condition(terms: str, bound: float) -> tuple[str, float]:
    """The tool's condition on its query's value (`<=` or `>=`, the number) for simlab's `max` in `terms`."""
    if terms == SUCCESS:
        return ">=", 1.0 - bound
    if terms == SUCCESS_PERCENT:
        return ">=", 100.0 * (1.0 - bound)
    return "<=", bound * {PERCENT: 100.0, MILLISECONDS: 1000.0}.get(terms, 1.0)


def for_tool(query: str, window: str, version: str = "new") -> str:
    """simlab's placeholders as a tool writes them: `{{window}}` as `window` (a placeholder or a duration),
    `{{version}}` and `{{instance}}` as `version`'s on simlab staging."""
    return fill(query, window=window, version=version, instance=f"{version}-[0-9]+")


def exported(check, window: str, where: str, notes, tool: str) -> list[tuple[str, str, str, float]]:
    """A simlab metric with a query as the tool's metrics: (name, query, `<=` or `>=`, bound), one per bound."""
    used = set(_PLACEHOLDER.findall(check.query))
    for name in sorted(used & {"version", "instance"}):
        notes.warn(f"{where}.query", f"{{{{{name}}}}} written as the canary's ({for_tool(f'{{{{{name}}}}}', window)!r} "
                                     f"on simlab staging): {tool} measures the canary's query by itself")
    out = []
    if check.max is not None:
        inner, terms = unwrap(check.query)
        out.append((check.metric, for_tool(inner, window), *condition(terms, float(check.max))))
    if check.max_ratio_to_baseline is not None:
        notes.warn(f"{where}.max_ratio_to_baseline", f"written as the canary's value over the stable version's; "
                                                     f"imported back as {check.builtin or 'the metric'}'s ratio to "
                                                     f"the baseline, without the query")
        ratio = f"({for_tool(check.query, window)}) / ({for_tool(check.query, window, 'old')})"
        out.append((f"{check.metric}-vs-baseline", ratio, "<=", float(check.max_ratio_to_baseline)))
    return out
