"""Bridges to the rollout controllers SREs already run: Argo Rollouts and Flagger manifests in and out.

`import_argo` / `import_flagger` translate a manifest's strategy, analysis and rollback onto a base scenario
(its fleet, traffic, release and failures); `export_argo` / `export_flagger` write a scenario's policy as
manifests. What a manifest says that simlab cannot model (or the reverse) is issued as an
`UnmodelledWarning` per field; an invalid manifest raises `ManifestError` (exit code 2 on the command line).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from simlab.bridges.manifests import ManifestError, UnmodelledWarning

if TYPE_CHECKING:  # pragma: no cover
    from simlab.scenario import Scenario

__all__ = ["import_argo", "import_flagger", "export_argo", "export_flagger", "ManifestError", "UnmodelledWarning"]


def import_argo(rollout: str | Path, *, base: "str | Path | Scenario", templates=()) -> "Scenario":
    """The scenario `base` with the strategy, analysis and rollback of an Argo Rollouts `Rollout` file.

    AnalysisTemplates are read from the same file and from `templates` (paths).
    """
    from simlab.bridges.argo_import import import_argo_documents

    imported = import_argo_documents(rollout, templates, base)
    _issue(imported.warnings)
    return imported.scenario


def import_flagger(canary: str | Path, *, base: "str | Path | Scenario", templates=(),
                   ab_weight: float = 10.0) -> "Scenario":
    """The scenario `base` with the strategy, analysis and rollback of a Flagger `Canary` file.

    MetricTemplates are read from the same file and from `templates`; `ab_weight` is the percent of traffic
    an A/B test's header or cookie match is taken to select.
    """
    from simlab.bridges.flagger_import import import_flagger_documents

    imported = import_flagger_documents(canary, templates, base, ab_weight)
    _issue(imported.warnings)
    return imported.scenario


def export_argo(scenario: "str | Path | Scenario") -> str:
    """A scenario's policy as Argo Rollouts YAML: a Rollout and its AnalysisTemplate."""
    from simlab.bridges.argo_export import export_argo_documents

    exported = export_argo_documents(_scenario(scenario))
    _issue(exported.warnings)
    return exported.yaml()


def export_flagger(scenario: "str | Path | Scenario") -> str:
    """A scenario's policy as Flagger YAML: a Canary and its MetricTemplates."""
    from simlab.bridges.flagger_export import export_flagger_documents

    exported = export_flagger_documents(_scenario(scenario))
    _issue(exported.warnings)
    return exported.yaml()


def _scenario(scenario):
    from simlab.scenario import Scenario, load_scenario

    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def _issue(lines) -> None:
    import warnings

    for line in lines:
        warnings.warn(line, UnmodelledWarning, stacklevel=3)
