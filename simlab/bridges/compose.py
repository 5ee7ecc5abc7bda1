"""An imported scenario: the base scenario's fleet, traffic, release, failures (and the rest) with the
manifest's strategy, analysis and rollback put in, validated like any scenario file."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simlab.bridges.manifests import ManifestError, Notes, format_duration
from simlab.errors import ScenarioError
from simlab.scenario import Scenario

MIN_REQUESTS = 1  # Argo Rollouts and Flagger judge any window that has data; simlab's default is 50


@dataclass(frozen=True)
class Base:
    """The scenario an import starts from, as written (so the output keeps its shorthands) and as validated."""

    data: dict
    scenario: Scenario
    label: str


@dataclass(frozen=True)
class Imported:
    """A translated manifest: the scenario, its mapping as written, and what could not be modelled."""

    scenario: Scenario
    data: dict
    warnings: tuple[str, ...] = ()
    header: tuple[str, ...] = field(default=())

    def yaml(self) -> str:
        head = "".join(f"# {line}\n" for line in self.header)
        return head + yaml.safe_dump(self.data, sort_keys=False, width=110, allow_unicode=True)


def load_base(base: str | Path | Scenario) -> Base:
    """The --base scenario: a file (validated, kept as written) or a Scenario object."""
    from simlab.scenario import load_scenario

    if isinstance(base, Scenario):
        return Base(base.model_dump(mode="json"), base, f"scenario {base.name!r}")
    scenario = load_scenario(base)
    data = yaml.safe_load(Path(base).read_text())
    return Base(data, scenario, str(base))


def compose(base: Base, *, strategy: dict, analysis: dict | None, notes: Notes, header: list[str],
            instances: int | None = None, window: float | None = None) -> Imported:
    """The base with the manifest's parts put in; a ManifestError if the result is not a valid scenario."""
    from simlab.scenario.loading import validate_scenario

    data: dict[str, Any] = copy.deepcopy(base.data)
    if instances is not None:
        data["fleet"] = {**data.get("fleet", {}), "instances": instances}
    data["strategy"] = strategy
    if analysis is not None:
        analysis = {"min_requests": MIN_REQUESTS, **analysis}
    data["analysis"] = analysis
    data["rollback"] = {**(data.get("rollback") or {}), "automatic": True}  # both tools abort on their own
    if window is not None:
        monitoring = {**(data.get("monitoring") or {}), "window": format_duration(window)}
        data["monitoring"] = monitoring
    staging = data.get("staging")
    if isinstance(staging, dict):
        for key in ("strategy", "analysis", "rollback"):
            if key in staging:
                notes.warn(f"{base.label}: staging.{key}", "dropped: the staging run uses the imported policy")
                staging = {k: v for k, v in staging.items() if k != key}
        data["staging"] = staging
    try:
        scenario = validate_scenario(data, source=f"the scenario imported onto {base.label}",
                                     base_dir=Path(base.label).parent if base.label.endswith((".yaml", ".yml"))
                                     else ".")
    except ScenarioError as exc:
        raise ManifestError(str(exc).replace("\n", "; ")) from None
    return Imported(scenario, data, tuple(notes.lines), tuple(header))
