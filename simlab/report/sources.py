"""Read a results directory (one run, a compare or a sweep) into frames; the only file reading of reports.

Which kind a directory is comes from its meta.json when it has one, else from
the files it holds: summary.json + timeline.csv (one run), compare.csv (a
compare), sweep.parquet or table.csv (a sweep).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simlab.errors import ScenarioError, SimlabError
from simlab.results import Result, Summary

KINDS = ("run", "compare", "sweep", "quality", "optimize")


@dataclass
class RunResults:
    """One simulated (or staged) rollout, as Result.write left it."""

    result: Result
    source: Path


@dataclass
class CompareResults:
    """One row per strategy or variant in `table`; one row per run in `runs` (None if runs.parquet is absent)."""

    table: pd.DataFrame
    runs: pd.DataFrame | None
    meta: dict[str, Any]
    source: Path


@dataclass
class SweepResults:
    """Aggregates per grid point in `table` (parameter columns first), the Pareto subset, runs if present."""

    table: pd.DataFrame
    pareto: pd.DataFrame | None
    runs: pd.DataFrame | None
    params: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path = Path(".")


@dataclass
class PairResults:
    """A prediction next to an observation: two runs of one scenario (e.g. `simlab run` and `simlab deploy`)."""

    predicted: RunResults
    observed: RunResults


Results = RunResults | CompareResults | SweepResults | PairResults


def detect_kind(results_dir: Path) -> str:
    """'run', 'compare' or 'sweep'; ScenarioError naming what was expected when it is none of them."""
    d = Path(results_dir)
    if not d.exists():
        raise ScenarioError(f"results directory {d} does not exist")
    if not d.is_dir():
        raise ScenarioError(f"{d} is not a directory: give the directory a run, compare or sweep wrote (--out)")
    meta = _meta(d)
    if "kind" in meta:
        if meta["kind"] not in KINDS:
            raise ScenarioError(
                f"{d / 'meta.json'}: kind is {meta['kind']!r}; simlab report knows {', '.join(KINDS)}"
            )
        return meta["kind"]
    if (d / "summary.json").is_file() and (d / "timeline.csv").is_file():
        return "run"
    if (d / "compare.csv").is_file():
        return "compare"
    if (d / "quality.csv").is_file():
        return "quality"
    if (d / "sweep.parquet").is_file() or (d / "table.csv").is_file():
        return "sweep"
    found = ", ".join(sorted(p.name for p in d.iterdir())[:10]) or "nothing"
    raise ScenarioError(
        f"{d} is not a simlab results directory: expected summary.json + timeline.csv (simlab run --out), "
        f"compare.csv + meta.json (simlab compare --out) or sweep.parquet + table.csv (simlab sweep --out); "
        f"found {found}"
    )


def load_results(results_dir: str | Path) -> Results:
    d = Path(results_dir)
    kind = detect_kind(d)
    if kind == "quality":  # simlab analysis-quality --out: its own module, loaded only for it
        from simlab.report.quality import load_quality

        return load_quality(d)
    if kind == "optimize":  # simlab optimize --out: its own module, loaded only for it
        from simlab.report.optimize import load_optimize

        return load_optimize(d)
    return {"run": load_run, "compare": load_compare, "sweep": load_sweep}[kind](d)


def load_pair(predicted_dir: str | Path, observed_dir: str | Path) -> PairResults:
    """Both directories must hold one run (summary.json + timeline.csv); the error says which does not."""
    runs = {}
    for role, d in (("predicted", Path(predicted_dir)), ("observed", Path(observed_dir))):
        kind = detect_kind(d)
        if kind != "run":
            raise ScenarioError(f"{role} {d} holds a {kind}; a pair report puts one run next to another "
                                f"(simlab run --out, simlab deploy --out)")
        runs[role] = load_run(d)
    return PairResults(runs["predicted"], runs["observed"])


def load_run(d: Path) -> RunResults:
    summary = json.loads(_need(d, "summary.json").read_text())
    timeline = pd.read_csv(_need(d, "timeline.csv"))
    events_path = d / "events.csv"
    if events_path.is_file():
        events = pd.read_csv(events_path)
        events["detail"] = events["detail"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    else:
        events = pd.DataFrame({"time": [], "kind": [], "detail": []})
    return RunResults(Result(Summary(summary), timeline, events), d)


def load_compare(d: Path) -> CompareResults:
    table = pd.read_csv(_need(d, "compare.csv"))
    if "variant" not in table.columns:
        raise ScenarioError(f"{d / 'compare.csv'}: expected a 'variant' column, found {', '.join(table.columns)}")
    return CompareResults(table, _parquet(d / "runs.parquet"), _meta(d), d)


def load_sweep(d: Path) -> SweepResults:
    meta = _meta(d)
    runs = _parquet(d / "sweep.parquet")
    table_path = d / "table.csv"
    if table_path.is_file():
        table = pd.read_csv(table_path)
    elif runs is not None:
        raise ScenarioError(f"{d}: sweep.parquet without table.csv; re-run the sweep with --out to write both")
    else:
        raise ScenarioError(f"{d}: a sweep directory needs table.csv")
    pareto = pd.read_csv(d / "pareto.csv") if (d / "pareto.csv").is_file() else None
    params = [_param_column(table, p) for p in meta.get("params", [])] or _guess_params(table)
    return SweepResults(table, pareto, runs, params, meta, d)


def _param_column(table: pd.DataFrame, name: str) -> str:
    for candidate in (name, f"param.{name}"):
        if candidate in table.columns:
            return candidate
    raise ScenarioError(f"table.csv has no column for swept parameter {name!r} (columns: {', '.join(table.columns)})")


def _guess_params(table: pd.DataFrame) -> list[str]:
    """Parameter columns are the ones before `runs` (table.csv puts them first)."""
    cols = list(table.columns)
    return cols[: cols.index("runs")] if "runs" in cols else [c for c in cols if c.startswith("param.")]


def _meta(d: Path) -> dict[str, Any]:
    path = d / "meta.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from None


def _parquet(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except ImportError as exc:
        raise SimlabError(f"reading {path} needs pyarrow: pip install 'simlab[report]' ({exc})") from None


def _need(d: Path, name: str) -> Path:
    path = d / name
    if not path.is_file():
        raise ScenarioError(f"{d}: missing {name}")
    return path
