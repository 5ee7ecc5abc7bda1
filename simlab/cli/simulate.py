"""`simlab check`, `simlab schema` and `simlab run`: one scenario, validated, described or simulated once."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.errors import ScenarioError


@app.command()
def check(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Validate a scenario and say what it describes."""
    s = scenario_arg(scenario)
    release = "no release" if s.release is None else (
        f"release {s.release.version} at {s.release.at:g}s with {len(s.release.defects)} defect(s)"
    )
    typer.echo(
        f"{scenario}: valid — {s.name}: {s.fleet.instances} instances, {s.traffic.rps:g} rps, "
        f"{s.duration:g}s, {release}, strategy {s.strategy.kind}"
    )
    from simlab.cli.lint import refuse_errors

    refuse_errors(s, scenario)  # valid, but a rollout policy that cannot work: its lint errors, exit 1


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario YAML files (editors, CI): durations as written, unknown keys rejected."""
    from simlab.scenario.schema import scenario_schema

    typer.echo(json.dumps(scenario_schema(), indent=2))


@app.command()
def run(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    seed: Optional[int] = typer.Option(None, help="random seed (default: the scenario's)"),
    strategy: Optional[str] = typer.Option(None, help="override the strategy kind: big_bang, rolling, blue_green, canary"),
    engine: str = typer.Option("request", help="simulation engine"),
    out: Optional[Path] = typer.Option(None, help="write summary.json, timeline.csv and events.csv here"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    report: bool = typer.Option(False, "--report", help="also write an HTML and Markdown report (needs --out)"),
) -> None:
    """Simulate one rollout and print its summary."""
    from simlab.simulation import simulate

    if report and out is None:
        raise ScenarioError("--report: expected --out DIR as well (the report is built from the written results)")
    s = scenario_arg(scenario, strategy)
    result = simulate(s, seed=seed, engine=engine)
    if out is not None:
        result.write(out)
    if report:
        from simlab.cli.report import report_beside

        path = report_beside(out)  # next to the results it describes
        if not as_json:
            typer.echo(f"report: {path}")
    if as_json:
        typer.echo(json.dumps(result.summary.to_dict()))
        return
    from simlab.console import print_summary

    print_summary(result)
    if out is not None:
        typer.echo(f"wrote {out}/summary.json, timeline.csv, events.csv")
