"""The `simlab` Typer application every command module registers on, and the scenario argument they share."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="simlab: how many users a rollout policy hurts, how fast it notices, how fast it is back.",
)


def _print_version(value: bool) -> None:
    if value:
        from simlab import __version__

        typer.echo(f"simlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print simlab's version and exit"),
) -> None:
    """simlab: how many users a rollout policy hurts, how fast it notices, how fast it is back."""


def scenario_arg(path: Path, strategy: str | None = None):
    """The scenario a command was given (strategy kind overridden if asked); bad input raises ScenarioError."""
    from simlab.scenario import load_scenario

    scenario = load_scenario(path)
    return scenario.with_strategy(strategy) if strategy else scenario
