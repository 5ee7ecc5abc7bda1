"""The optimize report: the recommendation in words, the fresh-seed comparison with the current policy, the
Pareto front and every trial. Reads what `simlab optimize --out` wrote (trials.csv, pareto.csv, fresh.csv,
meta.json); the sentences are written here, so the CLI prints the same words the report shows."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simlab.errors import ScenarioError
from simlab.report.document import Figure, Report, Section, Table
from simlab.report.formatting import count, count_ci, duration, missing, pct, pct_ci

MAX_TRIAL_ROWS = 60


@dataclass
class OptimizeResults:
    trials: pd.DataFrame
    fresh: pd.DataFrame
    meta: dict[str, Any]
    source: Path


def load_optimize(d: Path) -> OptimizeResults:
    for name in ("trials.csv", "fresh.csv", "meta.json"):
        if not (d / name).is_file():
            raise ScenarioError(f"{d}: missing {name} (written by simlab optimize --out)")
    meta = json.loads((d / "meta.json").read_text())
    trials = pd.read_csv(d / "trials.csv") if (d / "trials.csv").stat().st_size > 1 else pd.DataFrame()
    fresh = pd.read_csv(d / "fresh.csv", keep_default_na=False, na_values=[""])
    return OptimizeResults(trials, fresh, meta, d)


def unit(meta: dict[str, Any], metric: str) -> str:
    return (meta.get("metrics") or {}).get(metric, {}).get("unit", "count")


def value_text(value: Any, kind: str) -> str:
    if missing(value):
        return "-"
    return duration(value) if kind == "seconds" else pct(value) if kind == "share" else count(value)


def ci_text(value: Any, lo: Any, hi: Any, kind: str) -> str:
    if kind == "seconds":
        return "-" if missing(value) else f"{duration(value)} [{duration(lo)}–{duration(hi)}]"
    return pct_ci(value, lo, hi) if kind == "share" else count_ci(value, lo, hi)


def diff_text(value: Any, lo: Any, hi: Any, kind: str) -> str:
    """A signed difference with its interval: '−4.2m [−4.3m, −4.1m]'."""
    if missing(value):
        return "-"

    def one(x: Any) -> str:
        if missing(x):
            return "-"
        sign = "−" if x < 0 else "+"
        return sign + value_text(abs(x), kind)

    return f"{one(value)} [{one(lo)}, {one(hi)}]"


def policy_text(overrides: dict[str, Any], kind: str | None = None) -> str:
    """Knob values as a reader scans them: strategy.steps = 10% 2m, 100%; analysis.failure_limit = 2."""
    parts = [f"strategy.kind = {kind}"] if kind else []
    for path, value in overrides.items():
        if path == "strategy.steps" and isinstance(value, list):
            value = ", ".join(f"{s.get('weight'):g}%" + (f" {s['bake']}" if s.get("bake") else "") for s in value)
        parts.append(f"{path} = {value}")
    return "; ".join(parts) or "the scenario's own policy"


def comparison_rows(fresh: pd.DataFrame, meta: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The objectives and the constrained metrics (and deploy time): current, recommended, the difference."""
    rec = meta.get("recommendation") or {}
    chosen = rec.get("policy", "current")
    names = list(dict.fromkeys([*meta.get("minimize", []), *[c.split("<")[0].split(">")[0] for c in
                                                            meta.get("constraints", [])], "deploy_duration_mean"]))
    by = {(r["policy"], r["metric"]): r for _, r in fresh.iterrows()}
    rows = []
    for name in names:
        cur, new = by.get(("current", name)), by.get((chosen, name))
        if cur is None or new is None:
            continue
        kind = unit(meta, name)
        bound = "" if missing(new["constraint"]) else str(new["constraint"])
        meets = "" if not bound else ("yes" if str(new["meets"]).lower() == "true" else "no")
        rows.append([name, ci_text(cur["value"], cur["lo"], cur["hi"], kind),
                     ci_text(new["value"], new["lo"], new["hi"], kind),
                     diff_text(new["diff_vs_current"], new["diff_lo"], new["diff_hi"], kind),
                     f"{bound} {meets}".strip()])
    return ["metric", "current policy", f"recommended ({chosen})", "difference (paired)", "constraint met"], rows


def findings(trials: pd.DataFrame, fresh: pd.DataFrame, meta: dict[str, Any]) -> list[str]:
    rec = meta.get("recommendation") or {}
    done = trials[trials["state"] == "complete"] if len(trials) else trials
    feasible = int(done["feasible"].astype(bool).sum()) if len(done) else 0
    front = int(done["pareto"].astype(bool).sum()) if len(done) else 0
    told, before = meta.get("trials_told", 0), meta.get("trials_before", 0)
    resumed = f" ({before} from the stored study, {told} run now)" if before else ""
    constraints = meta.get("constraints") or []
    out = [f"The study {meta.get('study')} holds {len(done)} complete trials{resumed}, each policy run "
           f"{meta.get('runs_per_trial')} times on the same seeds with its no-release twin; minimised: "
           f"{', '.join(meta.get('minimize', []))}"
           + (f"; {feasible} meet {', '.join(constraints)} on those seeds" if constraints else "")
           + f"; {front} on the Pareto front."]
    if rec.get("policy") == "current":
        head = "Keep the current policy"
    else:
        kind = rec.get("strategy_kind") if "strategy.kind" in meta.get("knobs", []) else None
        head = f"Recommended: {rec.get('policy')}, {policy_text(rec.get('overrides') or {}, kind)}"
    out.append(f"{head}. Why, on {meta.get('fresh_runs')} fresh seeds no trial saw: {rec.get('reason')}.")
    if not rec.get("feasible", True):
        out.append("No policy met the constraints on fresh seeds: the one written is the least infeasible; widen "
                   "the knobs' ranges or relax the constraints.")
    _, rows = comparison_rows(fresh, meta)
    if rows and rec.get("policy") != "current":
        first = rows[0]
        out.append(f"Against the current policy on the fresh seeds, {first[0]} goes from {first[1]} to {first[2]} "
                   f"(paired difference {first[3]}).")
    return out


def trial_rows(trials: pd.DataFrame, meta: dict[str, Any]) -> Table:
    names = list(dict.fromkeys([*meta.get("minimize", []), "false_rollback", "deploy_duration_mean"]))
    knobs = [k for k in meta.get("knobs", []) if k in trials.columns]
    done = trials[trials["state"] == "complete"].sort_values(["pareto", *names[:1]], ascending=[False, True],
                                                           kind="stable")
    rows = []
    for _, r in done.head(MAX_TRIAL_ROWS).iterrows():
        knob_cells = [_cell(r[k]) for k in knobs]
        rows.append([str(int(r["trial"])), *knob_cells, *[value_text(r[n], unit(meta, n)) for n in names],
                     "yes" if bool(r["feasible"]) else "no", "yes" if bool(r["pareto"]) else ""])
    note = (f"first {MAX_TRIAL_ROWS} of {len(done)} complete trials; trials.csv has them all. " if len(done) >
            MAX_TRIAL_ROWS else "") + "Values on the tuning seeds; the Pareto front first."
    return Table(["trial", *knobs, *names, "feasible", "front"], rows, note, text=True)


def _cell(value: Any) -> str:
    if missing(value):
        return "-"
    if isinstance(value, str) and value.startswith("["):
        try:
            return policy_text({"strategy.steps": json.loads(value)}).split(" = ", 1)[1]
        except (ValueError, AttributeError):
            return value
    return f"{value:g}" if isinstance(value, float) else str(value)


def optimize_report(r: OptimizeResults) -> Report:
    from simlab.report.optimize_figures import pareto_figure

    meta = r.meta
    heads, rows = comparison_rows(r.fresh, meta)
    bits = [f"{meta.get('runs_per_trial')} runs per trial", f"{meta.get('fresh_runs')} fresh runs",
            f"engine {meta.get('engine')}", f"seed {meta.get('seed')}", f"sampler {meta.get('sampler')}",
            f"from {r.source}"]
    figure = Figure("pareto", "Left: every trial on the tuning seeds, mean deploy time of a good release against the "
                    "first objective, coloured by false rollbacks; the Pareto front circled (numbers are trials), "
                    "grey crosses break a constraint. Right: the current policy, the candidates and the "
                    "recommended one run again on held-out seeds, with 95% intervals.",
                    pareto_figure(r.trials, r.fresh, meta))
    return Report(f"simlab optimize: {meta.get('scenario', r.source.name)}", ", ".join(bits), [
        Section("Findings", findings(r.trials, r.fresh, meta)),
        Section("Fresh seeds: the recommendation against the current policy", table=Table(
            heads, rows, "Brackets are 95% intervals (Student-t for means, Wilson for shares, bootstrap for "
            "percentiles); the difference is paired over the same seeds (bootstrap).", text=True)),
        Section("Pareto front and fresh seeds", figures=[figure]),
        Section("Trials", table=trial_rows(r.trials, meta)),
    ])
