"""The decision a report opens with, in words: which variants stay within the scenario's `decide:` limits, which
one is recommended, and one sentence with its numbers for why each other one is not.

Written from the decision simlab.experiment.decision keeps in meta.json. A claim ("fewer", "faster") is made
only where the paired 95% interval over the common seeds excludes 0; otherwise the leaders are
"indistinguishable at N runs", with the runs each that would separate them (80% power).
"""
from __future__ import annotations

from typing import Any, Callable

from simlab.report.document import Section, Table
from simlab.report.formatting import count, count_ci, duration, missing, pct, pct_ci

Name = Callable[[int], str]

PHRASES = {  # metric: (what it is, per what), as a sentence quotes a value of it
    "bad_requests_added": "bad requests added per deploy",
    "bad_requests_added_bad": "bad requests added per bad release",
    "bad_requests_added_good": "bad requests added per good release",
    "bad_requests": "bad requests per run",
    "false_rollback": "good releases rolled back",
    "bad_promoted": "bad releases promoted",
    "deploy_duration_mean": "mean deploy time of a good release",
    "deploy_duration_p50": "median deploy time of a good release",
    "deploy_duration_p95": "95th-percentile deploy time of a good release",
    "time_to_detect_p50": "median time to detect a bad release",
    "error_budget_used": "error budget used per deploy",
    "extra_instance_seconds": "extra instance-seconds per deploy",
}
WORDS = {"count": ("fewer", "more"), "seconds": ("shorter", "longer"), "share": ("lower", "higher")}
NO_DECISION = ("These results carry no decision (written before reports decided by a scenario's decide: block, or "
               "by hand): run the experiment again with --out, which resumes from its stored runs and decides.")


TRIGGER_WORDS = {"failure": "during a scheduled failure", "crash": "after an instance crash",
                 "rollout": "while the deploy held capacity out of rotation", "noise": "on noise alone"}
"""How a sentence says what made a good release's metric cross (rollback_trigger, simlab.attribution)."""


def phrase(metric: str) -> str:
    return PHRASES.get(metric, metric)


def value_ci(values: list | None, unit: str) -> str:
    """'20,587 [20,462–20,711]', '12% [5–28%]', '21.6m [17.7m–25.6m]'."""
    v, lo, hi = (list(values or []) + [None] * 3)[:3]
    if unit == "share":
        return pct_ci(v, lo, hi)
    if unit == "seconds":
        return "-" if missing(v) else duration(v) + ("" if missing(lo) else f" [{duration(lo)}–{duration(hi)}]")
    return count_ci(v, lo, hi)


def _magnitude(x: float, unit: str) -> str:
    if unit == "share":
        return f"{abs(x) * 100:.1f}".removesuffix(".0")
    return duration(abs(x)) if unit == "seconds" else count(abs(x))


def margin(diff: list, unit: str) -> str:
    """A paired difference clear of 0 as a size and a word: '20,355 [20,233–20,487] fewer' (this − other)."""
    d, lo, hi = diff
    ends = sorted([abs(lo), abs(hi)])
    less, more = WORDS.get(unit, ("lower", "higher"))
    points = " points" if unit == "share" else ""
    return (f"{_magnitude(d, unit)} [{_magnitude(ends[0], unit)}–{_magnitude(ends[1], unit)}]{points} "
            f"{less if d < 0 else more}")


def signed(diff: list, unit: str) -> str:
    """A paired difference that may hold 0: '+3.2 [−1.5, +8.0]'."""
    def one(x: Any) -> str:
        return "-" if missing(x) else ("−" if x < 0 else "+") + _magnitude(x, unit)
    return f"{one(diff[0])} [{one(diff[1])}, {one(diff[2])}]" + (" points" if unit == "share" else "")


def neg(diff: list) -> list:
    """The other way round: b − a from a − b, interval included."""
    return [-diff[0], -diff[2], -diff[1]]


def clear(diff: list | None) -> bool:
    """The paired interval excludes 0."""
    return diff is not None and not missing(diff[1]) and not missing(diff[2]) and (diff[1] > 0 or diff[2] < 0)


def limits_sentence(d: dict) -> str:
    spec = d["spec"]
    parts = []
    for lim in d["limits"]:
        bound = pct(lim["bound"]) if lim["unit"] == "share" else (
            duration(lim["bound"]) if lim["unit"] == "seconds" else count(lim["bound"]))
        parts.append(f"{phrase(lim['metric'])} at most {bound}")
    if spec.get("min_detection") is not None:
        target = (f"bad releases of {spec['catch']} and worse" if spec.get("catch")
                  else "some severity of every defect kind on the grid")
        parts.append(f"{target} caught at least {pct(spec['min_detection'])} of the time")
    source = {"scenario": "the scenario's decide: block", "analysis-quality": "the analysis-quality target"}.get(
        spec.get("source"), "the defaults; the scenario has no decide: block")
    return (f"Limits ({source}): {'; '.join(parts)}. Objective: the lowest {phrase(d['objective'])} "
            f"({d['meaning']}), compared run by run over the same {d['runs']} seeds.")


def _names(indices: list[int], name: Name) -> str:
    names = [name(i) for i in indices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def sentences(d: dict, name: Name, what: str = "policy") -> list[str]:
    """The decision in words, as the report's Decision section opens: its limits, then `verdict`."""
    return [limits_sentence(d), *verdict(d, name, what)]


def verdict(d: dict, name: Name, what: str = "policy") -> list[str]:
    """The qualifying variants and the recommendation (or why there is none), as sentences."""
    variants, unit = d["variants"], d["unit"]
    qualify = [i for i, v in enumerate(variants) if v["qualifies"]]
    out = [f"Within the limits: {_names(qualify, name)} ({len(qualify)} of {len(variants)})." if qualify
           else f"None of the {len(variants)} is within the limits."]
    obj = phrase(d["objective"])
    if d["status"] == "recommended":
        best = d["best"]
        text = f"Recommended: {name(best)}, with {value_ci(variants[best]['metrics'][d['objective']], unit)} {obj}"
        others = [i for i in qualify if i != best]
        if others:
            nxt = min(others, key=lambda i: variants[i]["metrics"][d["objective"]][0])
            text += (f": {margin(neg(variants[nxt]['vs_best']), unit)} than {name(nxt)}, the next within the limits (paired 95% interval "
                     f"over the same {d['runs']} seeds)")
        else:
            text += f", the only {what} within the limits"
        out.append(text + ".")
    elif d["status"] == "indistinguishable":
        best, tied = d["best"], [i for i in d["tied"] if i != d["best"]]
        out.append(f"No single recommendation: {_names(sorted([best, *tied]), name)} are indistinguishable at {d['runs']} "
                   f"runs on {obj} ({'; '.join(_tie(d, i, name) for i in tied)}).")
        faster = [i for i in tied if clear(variants[i].get("deploy_vs_best"))]
        for i in faster:
            diff = variants[i]["deploy_vs_best"]
            who, other = (name(i), name(best)) if diff[0] < 0 else (name(best), name(i))
            size = margin(diff if diff[0] < 0 else neg(diff), "seconds").removesuffix(" shorter")
            out.append(f"If deploy time should decide between them: {who} deploys a good release {size} faster "
                       f"than {other} (paired 95% interval).")
    else:
        closest = d.get("closest")
        out.append("Nothing is recommended: no " + what + " keeps every limit"
                   + (f"; the closest is {name(closest)}" if closest is not None else "")
                   + ". Relax a limit in the scenario's decide: block, or change the policies.")
    return out


def _tie(d: dict, i: int, name: Name) -> str:
    v, unit = d["variants"][i], d["unit"]
    text = f"{name(i)} − {name(d['best'])}: {signed(v['vs_best'], unit)}, paired 95% interval"
    need = v.get("runs_to_separate")
    if need is None:
        return text + "; the observed difference is 0, so no number of runs follows from it"
    more = need - d["runs"]
    if more <= 0:  # this size separates 80% of the time at these runs; these runs happened not to
        return text + (f"; a difference this size separates at about {count(need)} runs each 80% of the time, and "
                       f"these {d['runs']} did not: more runs would settle it")
    return text + f"; about {count(need)} runs each ({count(more)} more) would separate a difference this size"


def why_not(d: dict, i: int, name: Name) -> str:
    """One sentence, with its numbers, for why variant i is not the recommendation."""
    v, unit, obj = d["variants"][i], d["unit"], phrase(d["objective"])
    best = d.get("best")
    if v["fails"]:
        text = "Out: " + "; ".join(_failure(f, v["counts"]) for f in v["fails"])
        if best is not None and clear(v.get("vs_best")) and v["vs_best"][0] < 0:
            text += f"; against {name(best)}: {margin(v['vs_best'], unit)} {obj} (paired)"
        return text + "."
    if d["status"] == "indistinguishable" and i in d["tied"]:
        if i == best:
            return f"Within the limits; the lowest {obj} measured, but not separable from the others tied with it."
        return f"Within the limits; tied with {name(best)} ({_tie(d, i, name)})."
    if best is not None and v.get("vs_best") is not None:
        return f"Within the limits, but against {name(best)}: {margin(v['vs_best'], unit)} {obj} (paired)."
    return "Within the limits."


def _failure(f: dict, counts: dict) -> str:
    if "text" in f:
        return f["text"]
    metric, bound = f["metric"], f["bound"]
    value = f["value"]
    if metric == "false_rollback":
        good, k = counts.get("good", 0), counts.get("false_rollbacks", 0)
        share = "all" if k == good and good else f"{k} of"
        text = f"rolled back {share} {good} good releases ({pct_ci(*value)}; limit {pct(bound)})"
        causes = sorted(counts.get("causes", {}).items(), key=lambda kv: -kv[1])[:2]
        if causes:
            text += ", on " + " and ".join(f"{c} ({n})" for c, n in causes)
        triggers = sorted(counts.get("triggers", {}).items(), key=lambda kv: -kv[1])
        if triggers:
            text += " — " + ", ".join(f"{TRIGGER_WORDS.get(t, t)} {n}" for t, n in triggers)
        if good and counts.get("good_promoted", 0) == 0:
            text += ": no good release ever ships"
    elif metric == "deploy_duration_mean":
        good = counts.get("good", 0)
        stuck = good - counts.get("good_promoted", 0)
        text = f"a good release takes {value_ci(value, 'seconds')} to deploy on average (limit {duration(bound)})"
        if stuck:
            text += f", the {stuck} of {good} not deployed counting as the rest of the run"
    elif metric == "detection":
        caught = pct_ci(*value)
        text = (f"catches {f['severity']} in {caught} of runs (target {pct(bound)})" if f.get("catch") else
                f"catches no {f['kind']} severity on the grid at least {pct(bound)} of the time (at best {caught}, "
                f"at {f['severity']})")
    elif metric == "bad_promoted":
        text = (f"promoted {counts.get('bad_promoted', 0)} of {counts.get('bad', 0)} bad releases "
                f"({pct_ci(*value)}; limit {pct(bound)})")
    else:
        unit = f.get("unit", "count")
        text = f"{phrase(metric)} {value_ci(value, unit)} (limit {value_ci([bound], unit)})"
    lo, hi = value[1], value[2]
    if not missing(lo) and not missing(hi) and lo <= bound <= hi:
        text += " — its 95% interval reaches the limit, so more runs could still qualify it"
    return text


def answer(d: dict | None, name: Name, what: str = "policy") -> str:
    """The answer a title states."""
    if not d:
        return "no decision recorded"
    if d["status"] == "recommended":
        only = sum(v["qualifies"] for v in d["variants"]) == 1
        return f"{name(d['best'])}" + (f", the only {what} within the limits" if only else
                                       f", the lowest {phrase(d['objective'])} within the limits")
    if d["status"] == "indistinguishable":
        return f"{_names(d['tied'], name)} are indistinguishable at {d['runs']} runs"
    return f"no {what} keeps every limit"


def decision_section(d: dict | None, name: Name, what: str = "policy", header: str = "variant") -> Section:
    """Limits, who qualifies, the recommendation, and a table with one sentence for each other variant."""
    if not d:
        return Section("Decision", [NO_DECISION])
    paragraphs = sentences(d, name, what)
    others = [i for i in range(len(d["variants"])) if i != d.get("recommended")]
    rows = [[name(i), value_ci(d["variants"][i]["metrics"][d["objective"]], d["unit"]), why_not(d, i, name)]
            for i in others]
    table = Table([header, phrase(d["objective"]), "why not recommended"], rows,
                  "Point estimates decide whether a limit is kept, as simlab optimize decides; brackets are 95% "
                  "intervals; differences are paired over the same seeds.", text=True) if rows else None
    return Section("Decision", paragraphs, table)


def scenario_section(meta: dict[str, Any], extra: list[str] | None = None) -> Section | None:
    lines = list(meta.get("synopsis") or []) + list(extra or [])
    return Section("Scenario", lines) if lines else None


def lowest_sentences(d: dict, name: Name) -> list[str]:
    """Which variant has the lowest objective and the shortest deploy time over all of them, claimed only where
    the paired interval clears the next one."""
    out = []
    for metric, unit in ((d["objective"], d["unit"]), ("deploy_duration_mean", "seconds")):
        low = (d.get("lowest") or {}).get(metric)
        if not low:
            continue
        i = low["index"]
        text = f"Lowest {phrase(metric)} of all: {name(i)}, {value_ci(d['variants'][i]['metrics'].get(metric), unit)}"
        if len(low["tied"]) > 1:
            text += (f", indistinguishable at {d['runs']} runs from {_names([t for t in low['tied'] if t != i], name)}"
                     f" (paired 95% intervals reach 0)")
        elif low["next"] is not None:
            text += f"; {margin(neg(low['margin']), unit)} than the next, {name(low['next'])}"
        out.append(text + ".")
    return out
