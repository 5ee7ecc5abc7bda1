"""What `simlab optimize` found, and the files it writes: the trials, the Pareto front, the fresh-seed
comparison, and the recommended policy as a scenario file and as Argo Rollouts and Flagger manifests."""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simlab.errors import ScenarioError
from simlab.experiment.overrides import parse_path
from simlab.experiment.recommendation import Fresh, summary
from simlab.experiment.search_space import SearchSpace
from simlab.scenario import Scenario

FILES = ("trials.csv", "pareto.csv", "fresh.csv", "recommended.yaml", "recommended-argo.yaml",
         "recommended-flagger.yaml", "meta.json")


@dataclass
class Optimization:
    """`.trials` every finished trial (simlab.experiment.optimization.trials_frame), `.pareto` the front,
    `.fresh` the held-out comparison (recommendation.Fresh; its `.table` is fresh.csv), `.recommended` the
    scenario to adopt, `.recommendation` the pick and the reason in a dict."""

    base: Scenario
    space: SearchSpace
    trials: pd.DataFrame
    fresh: Fresh
    meta: dict[str, Any] = field(default_factory=dict)
    origin: Path | None = None  # the base scenario's file, so the recommended one keeps its shorthands
    exports: dict[str, tuple[str, ...]] = field(default_factory=dict)  # manifest -> warnings of its export

    @property
    def pareto(self) -> pd.DataFrame:
        if not len(self.trials):
            return self.trials
        return self.trials[self.trials["pareto"].astype(bool)].sort_values(self.meta["minimize"][0], kind="stable")

    @property
    def recommended(self) -> Scenario:
        return self.fresh.candidates[self.fresh.recommended].scenario

    @property
    def recommendation(self) -> dict[str, Any]:
        return summary(self.fresh)

    def scenario_yaml(self) -> str:
        """The recommended scenario as a file: the base file as written with the knobs' values put in (or, for
        a Scenario object, its full form), led by comments saying where it came from."""
        chosen = self.fresh.candidates[self.fresh.recommended]
        head = [f"recommended by simlab optimize from {self.origin or self.base.name} "
                f"({chosen.label}{'' if self.fresh.feasible else ', INFEASIBLE on fresh seeds'})",
                f"study {self.meta.get('study')}; knobs: {', '.join(self.meta.get('knobs', []))}",
                f"why: {self.fresh.reason}"]
        data = self._as_written(chosen.kind, chosen.overrides, chosen.scenario)
        if data is None:
            data = chosen.scenario.model_dump(mode="json")
        text = yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True)
        return "".join(f"# {line}\n" for line in head) + text

    def _as_written(self, kind: str, overrides: dict, target: Scenario) -> dict | None:
        from simlab.scenario import validate_scenario

        if self.origin is None:
            return None
        try:
            data = yaml.safe_load(self.origin.read_text())
            strategy = data.get("strategy") or {}
            if strategy.get("kind", self.base.strategy.kind) != kind:
                strategy = {"kind": kind}
            data["strategy"] = {"kind": kind, **strategy}
            for path, value in overrides.items():
                _put(data, parse_path(path), copy.deepcopy(value))
            same = validate_scenario(data, base_dir=self.origin.parent).fingerprint() == target.fingerprint()
        except (OSError, ScenarioError, yaml.YAMLError, AttributeError, TypeError, KeyError, IndexError):
            return None
        return data if same else None

    def manifests(self) -> dict[str, str]:
        """{file name: text} of the recommended policy as Argo Rollouts and Flagger manifests (simlab.bridges);
        each export's warnings go to `.exports`."""
        from simlab.bridges.argo_export import export_argo_documents
        from simlab.bridges.flagger_export import export_flagger_documents

        out = {}
        for name, export in (("recommended-argo.yaml", export_argo_documents),
                             ("recommended-flagger.yaml", export_flagger_documents)):
            try:
                exported = export(self.recommended)
            except ScenarioError as exc:
                self.exports[name] = (f"not written: {exc}",)
                continue
            out[name] = exported.yaml()
            self.exports[name] = tuple(exported.warnings)
        return out

    def write(self, out_dir: str | Path) -> Path:
        """FILES into out_dir (the study's database and the runs' store live there too when it was given)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.trials.to_csv(out / "trials.csv", index=False)
        self.pareto.to_csv(out / "pareto.csv", index=False)
        self.fresh.table.to_csv(out / "fresh.csv", index=False)
        (out / "recommended.yaml").write_text(self.scenario_yaml())
        for name in ("recommended-argo.yaml", "recommended-flagger.yaml"):
            (out / name).unlink(missing_ok=True)
        for name, text in self.manifests().items():
            (out / name).write_text(text)
        meta = {**self.meta, "recommendation": self.recommendation,
                "export_warnings": {k: list(v) for k, v in self.exports.items()}}
        (out / "meta.json").write_text(json.dumps(meta, indent=2, default=_plain) + "\n")
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _put(data: Any, path: tuple, value: Any) -> None:
    """Set a dotted path in a scenario mapping as written, starting absent mappings on the way."""
    for depth, part in enumerate(path[:-1]):
        nxt = data[part] if isinstance(part, int) else data.get(part)
        if nxt is None:
            nxt = data[part] = {}
        data = nxt
    data[path[-1]] = value
