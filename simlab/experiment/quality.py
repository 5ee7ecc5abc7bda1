"""The operating characteristic of an analysis configuration: how often it rolls back a good release, how
likely and how fast it catches a bad one of each severity, and the bad requests the release added.

Every variant meets the same releases on the same seeds (common random numbers): run i of the good release
and of every severity, for every variant, uses run seed i, and each run is paired with its no-release twin
(`simlab.experiment.twins`), so "bad requests added by the release" is a per-run difference.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError
from simlab.experiment.aggregate import counted, mean_interval, wilson
from simlab.experiment.decision import quality_decision
from simlab.experiment.objectives import remaining
from simlab.experiment.overrides import variant_scenarios
from simlab.experiment.replication import as_scenario, runs_frame
from simlab.experiment.synopsis import synopsis
from simlab.experiment.twins import run_with_twins
from simlab.scenario import Scenario
from simlab.scenario.decide import Decide

DEFAULT_SEVERITY = "error_rate=0.001,0.002,0.005,0.01,0.02,0.05"
GOOD = "good"

QUALITY_COLUMNS = (
    "variant", "release", "defect", "severity", "runs", "rolled_back",
    "p_rollback", "p_rollback_lo", "p_rollback_hi",
    "ttd_p50_s", "ttd_p90_s",
    "added_bad_mean", "added_bad_lo", "added_bad_hi",
    "causes", "triggers",
)
"""One row per variant and release (the good one first, then each severity).

p_rollback is the share of runs rolled back, with its Wilson 95% interval: on the good release the
false-rollback rate, on a bad one the detection probability. ttd_* are the time to detect (from
release.at) of the runs rolled back. added_bad_* the bad requests the release added over its no-release
twin, mean and Student-t 95% interval over all runs. causes counts the rollbacks by rollback_cause
("error_rate 12, alert 1"); triggers counts them by what made the metric cross (rollback_trigger,
simlab.attribution: "failure 9, crash 2, noise 1" on a good release, "defect" on a bad one).
"""


@dataclass(frozen=True)
class Severity:
    """One bad release on the grid: a single defect of `kind` at `value` (its numeric severity)."""

    kind: str
    value: float
    label: str  # as given: error_rate=0.005, latency=+50ms
    defect: dict


def _error_rate(text: str) -> tuple[float, dict]:
    rate = float(text)
    if not 0 < rate <= 1:
        raise ValueError("expected a rate above 0 and at most 1")
    return rate, {"kind": "error_rate", "rate": rate}


def parse_duration(text: str) -> float:
    """A duration as the scenario reads it (250ms, 1m30s, seconds)."""
    from pydantic import TypeAdapter

    from simlab.scenario.types import Duration

    return TypeAdapter(Duration).validate_python(text)


def _latency(text: str) -> tuple[float, dict]:
    if text[:1] in "x*×":
        factor = float(text[1:])
        if factor <= 1:
            raise ValueError("expected a multiplier above 1 (x1.5)")
        return factor, {"kind": "latency", "multiplier": factor}
    if not text.startswith("+"):
        raise ValueError("expected an added latency (+50ms) or a multiplier (x1.5)")
    seconds = parse_duration(text[1:])
    if seconds <= 0:
        raise ValueError("expected an added latency above 0")
    return seconds, {"kind": "latency", "add": seconds}


def _duration_field(kind: str, name: str):
    def parse(text: str) -> tuple[float, dict]:
        seconds = parse_duration(text)
        if seconds <= 0:
            raise ValueError(f"expected a {name} above 0")
        return seconds, {"kind": kind, name: seconds}
    return parse


PARSERS = {"error_rate": _error_rate, "latency": _latency, "crash": _duration_field("crash", "mtbf"),
           "memory_leak": _duration_field("memory_leak", "oom_after")}
EXAMPLES = {"error_rate": "error_rate=0.002,0.01", "latency": "latency=+10ms,+50ms or latency=x1.5",
            "crash": "crash=30m,5m (mtbf)", "memory_leak": "memory_leak=1h,10m (oom_after)"}


def parse_severities(specs: str | Sequence[str] | None) -> list[Severity]:
    """`KIND=v1,v2,...` (one or several) to the grid of bad releases; ScenarioError naming the bad part."""
    if specs is None:
        specs = [DEFAULT_SEVERITY]
    elif isinstance(specs, str):
        specs = [specs]  # an empty list: no bad release, only the good one (false rollbacks alone)
    out: list[Severity] = []
    for spec in specs:
        kind, sep, values = str(spec).partition("=")
        kind = kind.strip()
        if kind not in PARSERS or not sep or not values.strip():
            raise ScenarioError(f"--severity: expected KIND=v1,v2,... with KIND one of {', '.join(PARSERS)} "
                                f"(e.g. {EXAMPLES['error_rate']}), found {spec!r}")
        for text in (v.strip() for v in values.split(",")):
            try:
                value, defect = PARSERS[kind](text)
            except ValueError as exc:
                reason = str(exc) if str(exc).startswith("expected") else f"expected e.g. {EXAMPLES[kind]}"
                raise ScenarioError(f"--severity {kind}: {reason}, found {text!r}") from None
            label = f"{kind}={text}"
            if any(s.label == label for s in out):
                raise ScenarioError(f"--severity: expected each severity once, found {label} again")
            out.append(Severity(kind, value, label, defect))
    forms = {tuple(sorted(s.defect)) for s in out if s.kind == "latency"}
    if len(forms) > 1:
        raise ScenarioError("--severity latency: expected every latency severity in one form, added (+50ms) or "
                            "multiplied (x1.5), found both")
    return out


def release_scenarios(scenario: Scenario, severities: Sequence[Severity]) -> list[tuple[str, Severity | None, Scenario]]:
    """The good release, then one bad release per severity: the scenario's release with only that defect
    (no bad_probability: every run ships it; any migration made backward compatible)."""
    from simlab.scenario.release import Release

    if scenario.release is None:
        raise ScenarioError(f"{scenario.name}: analysis-quality judges a release; expected a `release:` "
                            "in the scenario, found none")
    base = scenario.release.model_dump(mode="json")
    if base.get("migration"):
        base["migration"]["backward_compatible"] = True
    out: list[tuple[str, Severity | None, Scenario]] = []
    for label, severity in [(GOOD, None), *[(s.label, s) for s in severities]]:
        data = {**base, "defects": [] if severity is None else [severity.defect], "bad_probability": None}
        try:
            release = Release.model_validate(data)
        except Exception as exc:  # a defect the release model rejects: say which severity
            raise ScenarioError(f"--severity {label}: not a valid defect ({exc})") from None
        out.append((label, severity, scenario.model_copy(update={"release": release})))
    return out


@dataclass
class Quality:
    """`.table`: QUALITY_COLUMNS; `.runs`: every run (variant, release, defect, severity, then replicate's
    columns and the twin's); `.verdicts`: per variant, what it meets (see `verdicts`)."""

    table: pd.DataFrame
    runs: pd.DataFrame
    verdicts: list[dict]
    meta: dict[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> Path:
        """quality.csv, runs.parquet and meta.json (with the verdicts) into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "quality.csv", index=False)
        self.runs.to_parquet(out / "runs.parquet", index=False)
        (out / "meta.json").write_text(json.dumps({**self.meta, "verdicts": self.verdicts}, indent=2) + "\n")
        return out


def run_quality(
    scenario: Scenario | str | Path,
    variants: str | Path | dict | list | None = None,
    severities: str | Sequence[str] | None = None,
    runs: int = 200,
    seed: int = 0,
    engine: str = "fluid",
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    max_false_rollback: float | None = None,
    min_detection: float = 0.95,
    catch: str | None = None,
) -> Quality:
    """Every variant (default: the scenario's own analysis) on the good release and each severity, `runs` each."""
    scenario = as_scenario(scenario)
    grid = parse_severities(severities)
    if max_false_rollback is None:  # the scenario's decide: block, else its default
        max_false_rollback = (scenario.decide or Decide()).max_false_rollback
    for name, bound in (("max_false_rollback", max_false_rollback), ("min_detection", min_detection)):
        if not 0 <= bound <= 1:
            raise ScenarioError(f"{name}: expected a share between 0 and 1, found {bound!r}")
    if catch is not None and catch not in [s.label for s in grid]:
        raise ScenarioError(f"--catch: expected one of the severities ({', '.join(s.label for s in grid)}), "
                            f"found {catch!r}")
    named = [("scenario", scenario)] if variants is None else variant_scenarios(scenario, variants)
    points: list[tuple[dict, Scenario]] = []
    for name, variant in named:
        for label, severity, concrete in release_scenarios(variant, grid):
            labels = {"variant": name, "release": label, "defect": "none" if severity is None else severity.kind,
                      "severity": math.nan if severity is None else severity.value}
            points.append((labels, concrete))
    rows = run_with_twins([s for _, s in points], runs, seed, engine, executor, scheduler, progress,
                          label=f"analysis-quality {scenario.name}")
    frame = pd.concat([runs_frame(r, labels) for (labels, _), r in zip(points, rows)], ignore_index=True)
    table = quality_table(frame)
    meta = {"kind": "quality", "scenario": scenario.name, "fingerprint": scenario.fingerprint(), "runs": runs,
            "seed": seed, "engine": engine, "variants": [name for name, _ in named],
            "severities": [s.label for s in grid], "max_false_rollback": max_false_rollback,
            "min_detection": min_detection, "catch": catch}
    judged = verdicts(table, max_false_rollback, min_detection, catch)
    meta["synopsis"] = synopsis(scenario)
    meta["decision"] = quality_decision(frame, table, judged, scenario.decide, max_false_rollback, min_detection, catch,
                                        remaining(scenario), runs, np.random.default_rng(seed))
    return Quality(table, frame, judged, meta)


def analysis_quality(scenario: Scenario | str | Path, **options: Any) -> pd.DataFrame:
    """The operating characteristic of each analysis variant, one row per variant and release (QUALITY_COLUMNS);
    options as `run_quality`."""
    return run_quality(scenario, **options).table


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """QUALITY_COLUMNS from the runs, in the order the points were run."""
    rows = []
    for (variant, release), group in runs.groupby(["variant", "release"], sort=False):
        rolled = group["outcome"] == "rolled_back"
        p, lo, hi = wilson(int(rolled.sum()), len(group))
        ttd = group.loc[rolled, "detected_at_s"].dropna().to_numpy(dtype=float)
        added = pd.to_numeric(group.get("added_bad", pd.Series(math.nan, index=group.index)), errors="coerce")
        mean, a_lo, a_hi = mean_interval(added)
        rows.append({
            "variant": variant, "release": release, "defect": group["defect"].iloc[0],
            "severity": group["severity"].iloc[0], "runs": len(group), "rolled_back": int(rolled.sum()),
            "p_rollback": p, "p_rollback_lo": lo, "p_rollback_hi": hi,
            "ttd_p50_s": float(np.percentile(ttd, 50)) if len(ttd) else math.nan,
            "ttd_p90_s": float(np.percentile(ttd, 90)) if len(ttd) else math.nan,
            "added_bad_mean": mean, "added_bad_lo": a_lo, "added_bad_hi": a_hi,
            "causes": counted(group.loc[rolled, "rollback_cause"]),
            "triggers": counted(group.loc[rolled, "rollback_trigger"] if "rollback_trigger" in group else ()),
        })
    return pd.DataFrame(rows, columns=list(QUALITY_COLUMNS))


def verdicts(table: pd.DataFrame, max_false_rollback: float, min_detection: float,
             catch: str | None = None) -> list[dict]:
    """Per variant: its false-rollback rate (within `max_false_rollback`?) and, per defect kind, the mildest
    severity from which every more severe one on the grid is caught with probability >= `min_detection`
    (None: not even the most severe). It `meets` the target when its false rollbacks are within the bound
    and it catches `catch` (a severity label, e.g. error_rate=0.005) and all above it, or, without `catch`,
    catches some severity of every kind. Point estimates decide; the intervals are given beside them."""
    out = []
    for variant, rows in table.groupby("variant", sort=False):
        good = rows[rows["release"] == GOOD].iloc[0]
        catches: dict[str, dict | None] = {}
        for kind, bad in rows[rows["release"] != GOOD].groupby("defect", sort=False):
            # mild to severe: a larger error rate or added latency is worse, a shorter mtbf or oom_after too
            order = bad.sort_values("severity", ascending=kind not in ("crash", "memory_leak"), kind="stable")
            caught = None
            for _, row in order.iloc[::-1].iterrows():  # from the most severe down, while caught
                if row["p_rollback"] < min_detection:
                    break
                caught = row
            catches[kind] = None if caught is None else {
                "from": caught["release"], "p": float(caught["p_rollback"]), "lo": float(caught["p_rollback_lo"]),
                "hi": float(caught["p_rollback_hi"]),
                "severities": [str(r) for r in order["release"]][list(order["release"]).index(caught["release"]):]}
        ok = bool(good["p_rollback"] <= max_false_rollback)
        if catch is None:
            caught_target = all(v is not None for v in catches.values())
        else:
            caught_target = any(v is not None and catch in v["severities"] for v in catches.values())
        out.append({
            "variant": variant, "false_rollback": float(good["p_rollback"]),
            "false_rollback_lo": float(good["p_rollback_lo"]), "false_rollback_hi": float(good["p_rollback_hi"]),
            "false_rollback_ok": ok, "catches": catches, "meets": ok and caught_target,
        })
    return out
