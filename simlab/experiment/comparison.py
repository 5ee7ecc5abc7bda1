"""Compare rollout strategies or named policy variants on the same seeds: one row each."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from simlab.errors import ScenarioError
from simlab.experiment.aggregate import table as aggregate_table
from simlab.experiment.decision import decide
from simlab.experiment.objectives import remaining
from simlab.experiment.overrides import variant_scenarios
from simlab.experiment.replication import as_scenario, runs_frame
from simlab.experiment.store import Store
from simlab.experiment.synopsis import synopsis
from simlab.experiment.twins import run_with_twins
from simlab.experiment.views import ComparisonView
from simlab.scenario import STRATEGY_KINDS, Scenario


@dataclass
class Comparison(ComparisonView):
    """`.table`: one row per strategy or variant (column `variant` first); `.runs`: every run, as replicate;
    shown as its report's table in a notebook, `.plot()` its figures."""

    table: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    executed: int = 0  # runs simulated by this call (twins not counted); the rest came from out/store

    def write(self, out_dir: str | Path) -> Path:
        """compare.csv, runs.parquet and meta.json into out_dir."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "compare.csv", index=False)
        self.runs.to_parquet(out / "runs.parquet", index=False)
        (out / "meta.json").write_text(json.dumps(self.meta, indent=2) + "\n")
        return out


def strategy_scenarios(scenario: Scenario, strategies: Sequence[str]) -> list[tuple[str, Scenario]]:
    unknown = [s for s in strategies if s not in STRATEGY_KINDS]
    if unknown or not strategies:
        import difflib

        hints = [difflib.get_close_matches(s, STRATEGY_KINDS, n=1) for s in unknown]
        hint = "; did you mean " + ", ".join(repr(h[0]) for h in hints if h) + "?" if any(hints) else ""
        raise ScenarioError(
            f"strategies: expected a comma-separated list of {', '.join(STRATEGY_KINDS)}, "
            f"found {', '.join(map(repr, unknown)) or 'none'}{hint}"
        )
    if len(set(strategies)) != len(strategies):
        raise ScenarioError(f"strategies: expected each strategy once, found {', '.join(strategies)}")
    return [(kind, scenario.with_strategy(kind)) for kind in strategies]


def policies(
    scenario: Scenario, strategies: Sequence[str] | str | None, variants: Any
) -> list[tuple[str, Scenario]]:
    """(name, scenario) of every policy to compare: given strategies, variants, or all four strategies."""
    if strategies is not None and variants is not None:
        raise ScenarioError("strategies: expected strategies or variants, found both")
    if variants is not None:
        return variant_scenarios(scenario, variants)
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",") if s.strip()]
    return strategy_scenarios(scenario, list(strategies) if strategies is not None else list(STRATEGY_KINDS))


def compare(
    scenario: Scenario | str | Path,
    strategies: Sequence[str] | str | None = None,
    variants: str | Path | dict | list | None = None,
    runs: int = 100,
    seed: int = 0,
    engine: str = "request",
    executor: str = "local",
    scheduler: str | None = None,
    progress: bool = False,
    out: str | Path | None = None,
) -> Comparison:
    """Run every strategy (default: all four) or variant `runs` times on common random numbers.

    Each run is paired with its no-release twin (simlab.experiment.twins), so the table splits bad
    requests into per bad release, per good release and added by the release. With `out`, every
    finished run is kept in out/store as it comes back (an interrupted compare resumes from them)
    and compare.csv, runs.parquet and meta.json are written at the end.
    """
    scenario = as_scenario(scenario)
    named = policies(scenario, strategies, variants)
    store = Store(out, scenario, engine, seed)
    names = {id(s): name for name, s in named}
    fresh = [0]

    def keep(point: Scenario, rows: list[dict]) -> None:
        if id(point) in names:  # a policy's runs, not a no-release twin's
            fresh[0] += len(rows)
        store.put(point, rows, {"variant": names.get(id(point), "no release")})

    rows = run_with_twins(
        [s for _, s in named], runs, seed, engine, executor, scheduler, progress, label=f"compare {scenario.name}",
        done=store.get, on_rows=keep, kept=store.kept(),
    )
    frames = [runs_frame(r, {"variant": name}) for (name, _), r in zip(named, rows)]
    all_runs = pd.concat(frames, ignore_index=True)
    meta = {
        "kind": "compare", "scenario": scenario.name, "fingerprint": scenario.fingerprint(),
        "runs": runs, "seed": seed, "engine": engine, "variants": [name for name, _ in named],
        "by": "variants" if variants is not None else "strategies",
    }
    meta["synopsis"] = synopsis(scenario)
    meta["decision"] = decide(all_runs, ["variant"], scenario.decide, remaining(scenario), np.random.default_rng(seed),
                              runs)
    result = Comparison(aggregate_table(all_runs, ["variant"]), all_runs, meta, executed=fresh[0])
    if out is not None:
        result.write(out)
    return result
