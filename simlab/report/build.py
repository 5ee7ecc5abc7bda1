"""Results (already read) to a Report: which sections, tables and figures each kind of results gets."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from simlab.report import figures_compare, figures_run, figures_sweep
from simlab.report.document import Figure, Report, Section, Table
from simlab.report.decision import answer, decision_section, scenario_section
from simlab.report.formatting import aggregate_table, count, duration, pct, short_param
from simlab.report.narrative import compare_narrative, run_narrative, sweep_narrative
from simlab.report.plotting import colors_for
from simlab.report.sources import CompareResults, PairResults, Results, RunResults, SweepResults

MAX_EVENT_ROWS = 80


def build_report(results: Results) -> Report:
    if isinstance(results, RunResults):
        return run_report(results)
    if isinstance(results, CompareResults):
        return compare_report(results)
    if isinstance(results, PairResults):
        from simlab.report.pair import pair_report

        return pair_report(results)
    if type(results).__name__ == "OptimizeResults":  # simlab.report.optimize, loaded only for it
        from simlab.report import optimize_decision
        from simlab.report.optimize import optimize_report

        return optimize_decision.opened(optimize_report(results), results)
    if not isinstance(results, SweepResults):  # analysis-quality (simlab.report.quality.QualityResults)
        from simlab.report.quality import quality_report

        return quality_report(results)
    return sweep_report(results)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _detail(detail: Any) -> str:
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)
    parts = []
    for key, value in detail.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def events_table(events: pd.DataFrame) -> Table:
    rows = [[_clock(t), k, _detail(d)] for t, k, d in zip(events["time"], events["kind"], events["detail"])]
    note = ""
    if len(rows) > MAX_EVENT_ROWS:
        note = f"first {MAX_EVENT_ROWS} of {len(rows)} events; events.csv has them all"
        rows = rows[:MAX_EVENT_ROWS]
    return Table(["time", "event", "detail"], rows, note, text=True)


def run_report(r: RunResults) -> Report:
    from simlab.console import summary_lines

    result = r.result
    s = result.summary.to_dict()
    title = f"simlab run: {s.get('scenario')}"
    subtitle = f"strategy {s.get('strategy') or '-'}, engine {s.get('engine')}, seed {s.get('seed')} — from {r.source}"
    summary = Section("Summary", run_narrative(s, result.events),
                      Table(["measure", "value"], [list(pair) for pair in summary_lines(result)], text=True))
    timeline = Section("Timeline", figures=[Figure(
        "timeline",
        "The whole run: traffic share of the new version, bad requests, p99 latency and ready instances by "
        "version, with the controller's steps, failed analyses, detection and rollback marked.",
        figures_run.timeline_figure(result.timeline, result.events),
    )])
    window = figures_run.rollout_window(result.timeline, result.events)
    if window is not None:
        timeline.figures.append(Figure(
            "rollout", f"The rollout close up, {_clock(window[0])} to {_clock(window[1])}: same panels and markers.",
            figures_run.timeline_figure(result.timeline, result.events, window)))
    return Report(title, subtitle, [summary, timeline, Section("Events", table=events_table(result.events))])


def _meta_line(meta: dict[str, Any], source: Any) -> str:
    bits = []
    if meta.get("runs") is not None:
        bits.append(f"{meta['runs']} runs each")
    if meta.get("seed") is not None:
        bits.append(f"seed {meta['seed']}")
    if meta.get("engine") is not None:
        bits.append(f"{meta['engine']} engine")
    return ", ".join(bits + [f"from {source}"])


def _title(kind: str, meta: dict[str, Any], source: Any, question: str, decided: str) -> str:
    """The question the report answers and its answer, e.g. 'simlab compare: checkout — which policy? canary'."""
    return f"simlab {kind}: {meta.get('scenario', getattr(source, 'name', source))} — {question} {decided}"


def _opening(meta: dict[str, Any], compared: str, decision: dict | None, name: Any, what: str,
             header: str) -> list[Section]:
    """The scenario in a few lines, then the decision: what every report of a choice opens with."""
    scenario = scenario_section(meta, [compared])
    return ([scenario] if scenario else []) + [decision_section(decision, name, what, header)]


def compare_report(r: CompareResults) -> Report:
    table = r.table
    variants = [str(v) for v in table["variant"]]
    colors = colors_for(variants)
    decision = r.meta.get("decision")
    name = (lambda i: str(decision["variants"][i]["label"])) if decision else str
    title = _title("compare", r.meta, r.source, "which rollout policy?", answer(decision, name))
    compared = (f"Compared: {', '.join(variants)}, {r.meta.get('runs', '?')} runs each on the same seeds (run i of "
                f"every policy meets the same traffic, failures and drawn release).")
    sections = _opening(r.meta, compared, decision, name, "policy", "policy") + [
        Section("Findings", compare_narrative(table, r.meta)),
        Section("Comparison", table=aggregate_table(table, ["variant"], ["variant"])),
    ]
    runs = r.runs
    if runs is not None and len(runs) and {"variant", "bad"} <= set(runs.columns):
        runs = runs.assign(variant=runs["variant"].astype(str))
        if not len(figures_compare.bad_release_runs(runs)):
            sections.append(Section("Bad releases", [
                "No run drew a bad release, so there is no harm, detection or recovery to plot."]))
            return Report(title, _meta_line(r.meta, r.source), sections)
        caption = "Bad requests (failed + slow) per deploy of a bad release, one dot per run"
        if "added_bad" in runs.columns and runs["added_bad"].notna().any():
            caption += ("; right, what the release added: each run minus the same seed with no release (the table's "
                        "'added by a bad release')")
        sections.append(Section("Bad requests per deploy", figures=[Figure(
            "bad_requests", caption + ".", figures_compare.bad_requests_figure(runs, variants, colors),
            alt=_boxes_alt(runs, variants))]))
        if {"detected_at_s", "rollback_done_at_s"} <= set(runs.columns):
            sections.append(Section("Time to detect and to recover", figures=[Figure(
                "detect_recover",
                "Share of bad releases detected (left) and rolled back (right) within t of the release start; "
                "a curve that stops below 100% left the rest undetected or not rolled back.",
                figures_compare.detect_recover_figure(runs, variants, colors),
                alt=_curves_alt(runs, variants))]))
    return Report(title, _meta_line(r.meta, r.source), sections)


def _boxes_alt(runs: pd.DataFrame, variants: list[str]) -> str:
    bad = figures_compare.bad_release_runs(runs)
    parts = [f"{v} median {count(bad.loc[bad['variant'] == v, 'bad'].median())}" for v in variants]
    return "Box plots of bad requests per deploy of a bad release, one per policy: " + "; ".join(parts) + "."


def _curves_alt(runs: pd.DataFrame, variants: list[str]) -> str:
    bad = figures_compare.bad_release_runs(runs)
    parts = []
    for v in variants:
        mine = bad[bad["variant"] == v]
        if len(mine):
            parts.append(f"{v} detects {pct(mine['detected_at_s'].notna().mean())} of bad releases, median "
                         f"{duration(mine['detected_at_s'].median())} after the release started")
    return "Cumulative curves of time to detect and to recover from a bad release: " + "; ".join(parts) + "."


def sweep_report(r: SweepResults) -> Report:
    table, params = r.table, r.params
    decision = r.meta.get("decision")
    keys = [[row[p] for p in params] for _, row in table.iterrows()]

    def name(i: int) -> str:
        values = decision["variants"][i]["key"] if decision else keys[i]
        return f"#{i + 1} (" + ", ".join(f"{short_param(p).split('.')[-1]}={v}" for p, v in zip(params, values)) + ")"

    title = _title("sweep", r.meta, r.source, "which setting?", answer(decision, name, "grid point"))
    compared = (f"Swept: {', '.join(short_param(p) for p in params)}; {len(table)} grid points, "
                f"{r.meta.get('runs', '?')} runs each on the same seeds.")
    pareto = r.pareto
    if pareto is None:
        has_xy = {figures_sweep.X, figures_sweep.Y} <= set(table.columns)
        pareto = figures_sweep.pareto_front(table) if has_xy else table.iloc[0:0]
    sections = _opening(r.meta, compared, decision, name, "grid point", "grid point") + [
        Section("Findings", sweep_narrative(table, pareto, params, r.meta, decision, name)),
        Section("Grid", table=_numbered(aggregate_table(table, params, mixed=True), decision, len(params))),
    ]
    points = (figures_sweep.points_from_decision(decision) if decision else figures_sweep.points_from_table(table))
    sections.append(Section("Trade-off", figures=[Figure(
        "pareto", _tradeoff_caption(decision), figures_sweep.pareto_figure(table, pareto, params, decision),
        alt=_tradeoff_alt(points, decision))]))
    varying = [p for p in params if table[p].nunique() > 1]
    if len(varying) == 2:
        x_param, y_param = varying
        sections.append(Section("Heatmap", figures=[Figure(
            "heatmap", f"Mean over runs at each grid point of {short_param(x_param)} × {short_param(y_param)}.",
            figures_sweep.heatmap_figure(table, x_param, y_param))]))
    elif len(varying) > 2:
        sections.append(Section("Heatmap", [
            f"No heatmap: {len(varying)} parameters vary; a heatmap needs exactly two (sweep two at a time)."]))
    return Report(title, f"parameters {', '.join(short_param(p) for p in params)}; " + _meta_line(r.meta, r.source),
                  sections)


def _numbered(t: Table, decision: dict | None, keys: int) -> Table:
    """The grid table with each point's number (as the figure labels it) first and its verdict last."""
    rows = [[str(i + 1), *row] for i, row in enumerate(t.rows)]
    columns = ["#", *t.columns]
    if decision:
        columns.append("decision")
        tied = set(decision.get("tied") or [])
        for i, row in enumerate(rows):
            v = decision["variants"][i]
            if v["fails"]:
                verdict = "out: " + "; ".join(figures_sweep.short_reason(f, v.get("counts", {})) for f in v["fails"])
            elif i == decision.get("recommended"):
                verdict = "recommended"
            else:
                verdict = "tied leader" if i in tied else "within the limits"
            row.append(verdict)
    return Table(columns, rows, t.note, t.text, 1 + keys)


def _tradeoff_caption(decision: dict | None) -> str:
    if not decision:
        return ("Every grid point, numbered as in the grid table: mean deploy time of the good releases promoted "
                "against bad requests per deploy, with 95% intervals; a point that never promoted a good release is "
                "drawn at the right edge, labelled so.")
    return ("Every grid point, numbered as in the grid table: mean deploy time of a good release (one rolled back "
            "or unfinished counts as the rest of the run) against the objective, with its 95% interval; hollow "
            "points break a limit of the decision, the reason beside them; the dashed line joins the points "
            "within the limits that no other beats on both axes. Axes are fitted to the points, not to 0.")


def _tradeoff_alt(points: list, decision: dict | None) -> str:
    parts = []
    states = {"recommended": "recommended", "tied": "an indistinguishable leader", "within": "within the limits"}
    for p in points:
        text = f"point {p.number} at {duration(p.x)} and {count(p.y)}"
        parts.append(text + (f", out: {p.note}" if p.note else f", {states[p.state]}" if p.state in states else ""))
    what = "the objective" if decision else "bad requests per deploy"
    return f"Scatter of {len(points)} grid points, deploy time against {what}. " + "; ".join(parts) + "."
