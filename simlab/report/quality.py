"""The analysis-quality report: which variant meets the target, in words, then the curve and the table.

A results directory of `simlab analysis-quality --out` holds quality.csv (one row per variant and release),
runs.parquet and meta.json (with the verdicts). The sentences are written here from the verdicts, so the
CLI prints the same words the report shows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simlab.errors import ScenarioError
from simlab.report.document import Figure, Report, Section, Table
from simlab.report.formatting import count_ci, duration, pct, pct_ci


@dataclass
class QualityResults:
    table: pd.DataFrame
    meta: dict[str, Any]
    source: Path


def load_quality(d: Path) -> QualityResults:
    path = d / "quality.csv"
    if not path.is_file():
        raise ScenarioError(f"{d}: missing quality.csv")
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    # names stay text: variants called 0.010 and 0.015 would otherwise come back as the numbers 0.01 and 0.015
    labels = {c: str for c in ("variant", "release", "defect", "causes", "triggers")}
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=labels)
    return QualityResults(table, meta, d)


def target_text(meta: dict[str, Any]) -> str:
    catch = meta.get("catch")
    what = f"{catch} and worse" if catch else "some severity of each defect"
    return (f"false rollbacks ≤ {pct(meta.get('max_false_rollback', 0.05))} and catches {what} "
            f"with ≥ {pct(meta.get('min_detection', 0.95))} probability")


def verdict_sentences(verdicts: list[dict], meta: dict[str, Any]) -> list[str]:
    """One sentence per variant, then which variants meet the target (point estimates; intervals beside)."""
    out = []
    for v in verdicts:
        caught = [f"{c['from']} and worse (at {c['from']} {pct_ci(c['p'], c['lo'], c.get('hi'))} of bad releases "
                  f"rolled back)" for c in v["catches"].values() if c is not None]
        missed = [kind for kind, c in v["catches"].items() if c is None]
        text = (f"{v['variant']} rolls back {pct_ci(v['false_rollback'], v['false_rollback_lo'], v['false_rollback_hi'])}"
                f" of good releases")
        text += f"; it catches {', '.join(caught)}" if caught else ""
        text += (f"; it catches no {', '.join(missed)} severity on the grid with ≥ {pct(meta.get('min_detection', 0.95))}"
                 f" probability" if missed else "")
        out.append(text + ".")
    meets = [v["variant"] for v in verdicts if v["meets"]]
    target = target_text(meta)
    if meets:
        out.append(f"Target ({target}): met by {', '.join(meets)}.")
    else:
        out.append(f"Target ({target}): no variant meets it.")
    return out


def quality_rows(table: pd.DataFrame) -> Table:
    rows = []
    for _, r in table.iterrows():
        good = r["release"] == "good"
        rows.append([
            str(r["variant"]), str(r["release"]), f"{int(r['runs'])}",
            ("false rollback " if good else "detected ") + pct_ci(r["p_rollback"], r["p_rollback_lo"], r["p_rollback_hi"]),
            duration(r["ttd_p50_s"]), duration(r["ttd_p90_s"]),
            count_ci(r["added_bad_mean"], r["added_bad_lo"], r["added_bad_hi"]),
            "" if pd.isna(r["causes"]) else str(r["causes"]),
            "" if pd.isna(r["triggers"]) or not good else str(r["triggers"]),
        ])
    heads = ["variant", "release", "runs", "P(rollback) [95% CI]", "detect p50", "detect p90",
             "bad reqs added [95% CI]", "rollbacks by cause", "false rollbacks: what crossed"]
    return Table(heads, rows, note="detect p50/p90: time from the release's start to detection, among runs rolled "
                 "back; bad requests added: minus the same seed with no release, over all runs; what crossed: a scheduled "
                 "failure in the analysis' view, an instance crash, the capacity the deploy held out of rotation, or noise",
                 text=False)


def quality_report(r: QualityResults) -> Report:
    from simlab.report.quality_figures import quality_alt, quality_figure

    from simlab.report.decision import answer, decision_section, scenario_section

    meta = r.meta
    decision = meta.get("decision")
    name = (lambda i: str(decision["variants"][i]["label"])) if decision else str
    title = (f"simlab analysis-quality: {meta.get('scenario', r.source.name)} — which analysis? "
             f"{answer(decision, name, 'analysis')}")
    severities = meta.get("severities", [])
    judged = (f"Judged: {', '.join(meta.get('variants', []))} against a good release"
              f"{' and ' + ', '.join(severities) if severities else ''}, {meta.get('runs', '?')} runs each on the "
              "same seeds.")
    scenario = scenario_section(meta, [judged])
    opening = ([scenario] if scenario else []) + [decision_section(decision, name, "analysis", "analysis")]
    bits = [f"{meta['runs']} runs per variant and release" if "runs" in meta else "",
            f"engine {meta['engine']}" if "engine" in meta else "", f"seed {meta['seed']}" if "seed" in meta else "",
            "common random numbers across variants", f"from {r.source}"]
    findings = verdict_sentences(meta.get("verdicts", []), meta)
    figure = Figure("quality", "Left: probability that a bad release of each severity is rolled back, per variant, "
                    "with 95% intervals; right: rollbacks of good releases (false rollbacks), the dashed line the "
                    "target's bound.", quality_figure(r.table, meta), alt=quality_alt(r.table))
    return Report(title, ", ".join(b for b in bits if b), [
        *opening,
        Section("Findings", findings),
        Section("Detection and false rollbacks", figures=[figure]),
        Section("Per variant and release", table=quality_rows(r.table)),
    ])
