"""The optimize report's decision: the policies run again on fresh seeds, which keep the constraints, the one
recommended by simlab.experiment.recommendation's rule, and one sentence for each other one.

Read from fresh.csv and meta.json ("recommendation"). The rule ranks by the first objective and calls two
policies apart only when their paired 95% interval excludes 0; among policies it cannot tell apart it takes
the lowest mean deploy time, a point estimate, and the report says so instead of calling that one better.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from simlab.report.decision import clear, margin, phrase
from simlab.report.document import Report, Section, Table
from simlab.report.formatting import missing
from simlab.report.optimize import ci_text, diff_text, unit

TIE_BREAK = "deploy_duration_mean"


def _by_policy(fresh: pd.DataFrame) -> dict[str, dict[str, pd.Series]]:
    out: dict[str, dict[str, pd.Series]] = {}
    for _, row in fresh.iterrows():
        out.setdefault(str(row["policy"]), {})[str(row["metric"])] = row
    return out


def _fails(rows: dict[str, pd.Series], meta: dict[str, Any]) -> list[str]:
    out = []
    for metric, row in rows.items():
        if isinstance(row["constraint"], str) and row["constraint"] and str(row["meets"]).lower() != "true":
            out.append(f"{phrase(metric)} {ci_text(row['value'], row['lo'], row['hi'], unit(meta, metric))} breaks "
                       f"{row['constraint']}")
    return out


def _value(rows: dict[str, pd.Series], metric: str, meta: dict[str, Any]) -> str:
    row = rows.get(metric)
    return "-" if row is None else ci_text(row["value"], row["lo"], row["hi"], unit(meta, metric))


def answer(meta: dict[str, Any]) -> str:
    rec = meta.get("recommendation") or {}
    if not rec:
        return "no recommendation recorded"
    if rec.get("policy") == "current":
        return "keep the current policy"
    tied = rec.get("tied") or []
    return str(rec.get("policy")) + (" (tied on the objective; the faster to deploy, by point estimate)"
                                     if len(tied) > 1 else "")


def decision_section(fresh: pd.DataFrame, meta: dict[str, Any]) -> Section:
    rec = meta.get("recommendation") or {}
    objective = (meta.get("minimize") or ["bad_requests_added"])[0]
    n = meta.get("fresh_runs")
    policies = _by_policy(fresh)
    chosen = str(rec.get("policy"))
    tied = [str(t) for t in rec.get("tied") or []]
    limits = meta.get("constraints") or []
    paragraphs = [f"Limits: {', '.join(limits) if limits else 'none (no --constraint given)'}. Objective: the "
                  f"lowest {phrase(objective)}, every policy run again on the same {n} fresh seeds no trial saw."]
    within = [p for p, rows in policies.items() if not _fails(rows, meta)]
    paragraphs.append(f"Within the limits: {', '.join(within)} ({len(within)} of {len(policies)})." if within else
                      f"None of the {len(policies)} policies keeps the limits on fresh seeds.")
    mine = policies.get(chosen, {})
    if not rec.get("feasible", True):
        paragraphs.append(f"Nothing meets the limits: {chosen} is written because it misses them by least.")
    elif len(tied) > 1:
        others = [t for t in tied if t != chosen]
        speeds = "; ".join(f"{t} {_value(policies.get(t, {}), TIE_BREAK, meta)}" for t in others)
        paragraphs.append(
            f"{', '.join(tied)} are indistinguishable at {n} runs on {phrase(objective)} (paired 95% intervals reach "
            f"0), so no winner on it. The rule writes {chosen}, whose mean deploy time of a good release is the "
            f"lowest among them as a point estimate ({_value(mine, TIE_BREAK, meta)}; {speeds}).")
    else:
        paragraphs.append(f"Recommended: {chosen}, with {_value(mine, objective, meta)} {phrase(objective)}, clear "
                          f"of every other policy within the limits (paired 95% intervals).")
    current = mine.get(objective)
    if chosen != "current" and current is not None and not missing(current["diff_vs_current"]):
        diff = [current["diff_vs_current"], current["diff_lo"], current["diff_hi"]]
        kind = unit(meta, objective)
        if clear(diff):
            paragraphs.append(f"Against the current policy on the same seeds: {margin(diff, kind)} "
                              f"{phrase(objective)} (paired 95% interval).")
        else:
            paragraphs.append(f"Against the current policy it is indistinguishable at {n} runs on {phrase(objective)}"
                              f": {diff_text(*diff, kind)} (the paired 95% interval holds 0).")
    rows = []
    for policy, mine_rows in policies.items():
        if policy == chosen:
            continue
        fails = _fails(mine_rows, meta)
        if fails:
            why = "Out: " + "; ".join(fails) + "."
        elif policy in tied:
            why = (f"Tied with {chosen} on {phrase(objective)}; mean deploy time {_value(mine_rows, TIE_BREAK, meta)} "
                   f"against {_value(mine, TIE_BREAK, meta)} (point estimates; the rule's tie-break).")
        else:
            low = min(within, key=lambda p: policies[p][objective]["value"] if objective in policies[p] else 1e300)
            why = (f"Within the limits, but {phrase(objective)} clear of the lowest, {low} "
                   f"({_value(policies[low], objective, meta)}), on the paired 95% interval.")
        rows.append([policy, _value(mine_rows, objective, meta), why])
    table = Table(["policy", phrase(objective), "why not recommended"], rows,
                  "On the fresh seeds; brackets are 95% intervals.", text=True) if rows else None
    return Section("Decision", paragraphs, table)


def scenario_lines(meta: dict[str, Any]) -> list[str]:
    knobs = ", ".join(meta.get("knobs") or [])
    return [*(meta.get("synopsis") or []),
            f"Searched: {knobs or 'no knobs'}; {meta.get('trials_told', 0) + meta.get('trials_before', 0)} trials of "
            f"{meta.get('runs_per_trial')} runs, the best re-run on {meta.get('fresh_runs')} fresh seeds."]



def opened(report: Report, results: Any) -> Report:
    """The optimize report with its question and answer in the title, the scenario and the decision first."""
    meta = results.meta
    title = f"simlab optimize: {meta.get('scenario', results.source.name)} — which policy? {answer(meta)}"
    opening = [Section("Scenario", scenario_lines(meta)), decision_section(results.fresh, meta)]
    return Report(title, report.subtitle, opening + report.sections)
