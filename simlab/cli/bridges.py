"""`simlab import argo|flagger` and `simlab export argo|flagger`: rollout policies to and from the manifests of
Argo Rollouts and Flagger. What cannot be modelled is printed on stderr, one `warning:` line per field."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from simlab.cli.app import app

import_app = typer.Typer(no_args_is_help=True, help="""A rollout policy from Argo Rollouts or Flagger manifests, as a scenario.

\b
Examples:
  simlab import argo experiments/imports/checkout-rollout.yaml --base experiments/checkout-canary.yaml -o policy.yaml
""")
export_app = typer.Typer(no_args_is_help=True, help="""A scenario's rollout policy as Argo Rollouts or Flagger manifests.

\b
Examples:
  simlab export argo experiments/checkout-canary.yaml -o rollout.yaml
""")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")

TEMPLATES = typer.Option(None, "--template", help="a file of templates the manifest refers to (repeatable; "
                         "default: those in the manifest's own file)")
BASE = typer.Option(..., "--base", help="the scenario whose fleet, traffic, release and failures the policy runs on")
OUT = typer.Option(None, "-o", "--out", help="write here instead of stdout (default: stdout)")


def _emit(text: str, warnings: tuple[str, ...], out: Optional[Path]) -> None:
    for line in warnings:
        typer.echo(f"warning: {line}", err=True)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)


@import_app.command("argo")
def import_argo(
    rollout: Path = typer.Argument(..., help="a YAML file with a Rollout (and AnalysisTemplates)"),
    template: Optional[List[Path]] = TEMPLATES,
    base: Path = BASE,
    out: Optional[Path] = OUT,
) -> None:
    """An Argo Rollouts Rollout's strategy, analysis and rollback on the base scenario.

    \b
    Examples:
      simlab import argo experiments/imports/checkout-rollout.yaml --base experiments/checkout-canary.yaml
      simlab import argo experiments/imports/search-canary.yaml --template experiments/imports/search-templates.yaml --base experiments/checkout-canary.yaml -o search.yaml
    """
    from simlab.bridges.argo_import import import_argo_documents

    imported = import_argo_documents(rollout, template or (), base)
    _emit(imported.yaml(), imported.warnings, out)


@import_app.command("flagger")
def import_flagger(
    canary: Path = typer.Argument(..., help="a YAML file with a Canary (and MetricTemplates)"),
    template: Optional[List[Path]] = TEMPLATES,
    base: Path = BASE,
    out: Optional[Path] = OUT,
    ab_weight: float = typer.Option(10.0, "--ab-weight", help="percent of traffic an A/B test's match selects"),
) -> None:
    """A Flagger Canary's strategy, analysis and rollback on the base scenario.

    \b
    Examples:
      simlab import flagger experiments/imports/frontend-ab.yaml --base experiments/checkout-canary.yaml --ab-weight 20
    """
    from simlab.bridges.flagger_import import import_flagger_documents

    imported = import_flagger_documents(canary, template or (), base, ab_weight)
    _emit(imported.yaml(), imported.warnings, out)


@export_app.command("argo")
def export_argo(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    out: Optional[Path] = OUT,
) -> None:
    """The scenario's policy as an Argo Rollouts Rollout and AnalysisTemplate.

    \b
    Examples:
      simlab export argo experiments/checkout-canary.yaml -o rollout.yaml
    """
    from simlab.bridges.argo_export import export_argo_documents
    from simlab.cli.app import scenario_arg

    exported = export_argo_documents(scenario_arg(scenario))
    _emit(exported.yaml(), exported.warnings, out)


@export_app.command("flagger")
def export_flagger(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    out: Optional[Path] = OUT,
) -> None:
    """The scenario's policy as a Flagger Canary and MetricTemplates.

    \b
    Examples:
      simlab export flagger experiments/checkout-canary.yaml -o canary.yaml
    """
    from simlab.bridges.flagger_export import export_flagger_documents
    from simlab.cli.app import scenario_arg

    exported = export_flagger_documents(scenario_arg(scenario))
    _emit(exported.yaml(), exported.warnings, out)
