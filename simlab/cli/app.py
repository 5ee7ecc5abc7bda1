"""The `simlab` Typer application every command module registers on, and the scenario argument they share."""
from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

WORKFLOW = ("import", "check", "lint", "schema", "run", "compare", "sweep", "optimize", "analysis-quality", "capacity",
            "report", "staging", "locustfile", "calibrate", "deploy", "validate", "chaos", "export")
"""`simlab --help` lists commands in the order of the work: a policy in, checked, simulated, compared and tuned,
reported, then on staging, and out again as manifests; a command not listed here comes last."""


def _plain(command) -> None:
    """Help as plain text, for every command and group below: choices and defaults beside each option, a flag
    without a type, examples kept as written (rich's panels show flags as <bool>)."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


class WorkflowGroup(TyperGroup):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain(self)

    def list_commands(self, ctx) -> list[str]:
        rank = {name: i for i, name in enumerate(WORKFLOW)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))


app = typer.Typer(
    cls=WorkflowGroup,
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
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
