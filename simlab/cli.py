"""Command line: parse, call the library, print; the only place that exits or maps errors to codes."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from simlab.errors import ScenarioError, SimlabError
from simlab.staging.cli import DEFAULT_DIR as STAGING_DIR

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="simlab: how many users a rollout policy hurts, how fast it notices, how fast it is back.",
)


def _scenario(path: Path, strategy: str | None = None):
    from simlab.scenario import load_scenario

    scenario = load_scenario(path)
    return scenario.with_strategy(strategy) if strategy else scenario


@app.command()
def check(scenario: Path = typer.Argument(..., help="scenario YAML file")) -> None:
    """Validate a scenario and say what it describes."""
    s = _scenario(scenario)
    release = "no release" if s.release is None else (
        f"release {s.release.version} at {s.release.at:g}s with {len(s.release.defects)} defect(s)"
    )
    typer.echo(
        f"{scenario}: valid — {s.name}: {s.fleet.instances} instances, {s.traffic.rps:g} rps, "
        f"{s.duration:g}s, {release}, strategy {s.strategy.kind}"
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editor autocompletion)."""
    from simlab.scenario import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


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
    s = _scenario(scenario, strategy)
    result = simulate(s, seed=seed, engine=engine)
    if out is not None:
        result.write(out)
    if report:
        from simlab.report import write_report

        path = write_report(out)
        if not as_json:
            typer.echo(f"report: {path}")
    if as_json:
        typer.echo(json.dumps(result.summary.to_dict()))
        return
    from simlab.console import print_summary

    print_summary(result)
    if out is not None:
        typer.echo(f"wrote {out}/summary.json, timeline.csv, events.csv")


@app.command()
def validate(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    state_dir: Path = typer.Option(STAGING_DIR, "--dir", help="state directory: its staging is used if it runs, "
                                   "else one is started there for the run and stopped after"),
    out: Path = typer.Option(Path("reports/validate"), "--out", help="where experiment.json, journal.json and "
                             "chaos.log go"),
    experiment: Optional[Path] = typer.Option(None, "--experiment", help="run this Chaos Toolkit experiment "
                                              "instead of the one generated from the scenario"),
) -> None:
    """Run the scenario's failures as a Chaos Toolkit experiment on staging; exit 1 unless its SLO held."""
    from simlab.chaos.validate import validate as run_validate
    from simlab.scenario.staging import staging_scenario
    from simlab.staging.supervisor import sigterm_as_interrupt

    s = staging_scenario(_scenario(scenario))
    try:
        with sigterm_as_interrupt():
            result = run_validate(s, state_dir=state_dir, out=out, experiment=experiment)
    except KeyboardInterrupt:
        raise SimlabError("validate interrupted: chaos ran its rollbacks, a staging started here is stopped") from None
    rows = [("probe", "tolerance", "before", "after")] + [
        (p.name, json.dumps(p.tolerance), _cell(p.before, p.before_met), _cell(p.after, p.after_met))
        for p in result.probes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        typer.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    typer.echo(f"{result.verdict}: {result.reason}")
    typer.echo(f"journal: {result.journal} (chaos exited {result.chaos_exit})")
    if not result.passed:
        raise typer.Exit(1)


def _cell(value, met: bool | None) -> str:
    """A probe's output with a mark: ok, FAIL, or - when it did not run."""
    if met is None:
        return "-"
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{shown} {'ok' if met else 'FAIL'}"


from simlab.staging.cli import register as _register_staging
_register_staging(app)

from simlab.report.cli import register as _register_report
_register_report(app)
from simlab.experiment.cli import register as _register_experiment
_register_experiment(app)
def main(argv: list[str] | None = None) -> int:
    """Entry point of the `simlab` command; returns the exit code (0 ok, 2 bad input, 1 other)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SimlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # click's usage errors (typer may bundle its own click) and anything unexpected
        kind = type(exc).__name__
        if kind == "Abort":
            return 130
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # UsageError, BadParameter, ClickException
            exc.show()
            return 2 if isinstance(exc.exit_code, int) and exc.exit_code == 2 else exc.exit_code
        raise
    # In non-standalone mode click returns an exit code (e.g. 130 for Ctrl-C) instead of exiting.
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
