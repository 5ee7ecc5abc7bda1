"""`simlab lint`: a rollout policy's findings, one line each with the file's line; `check` refuses on the errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.errors import PolicyError


def field_lines(path: Path) -> dict[str, int]:
    """The line of every key and list item of a YAML file, by dotted path (analysis.metrics[0].max)."""
    import yaml

    lines: dict[str, int] = {}

    def walk(node, where: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{where}.{key.value}" if where else str(key.value)
                lines.setdefault(sub, key.start_mark.line + 1)
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(f"{where}[{i}]", item.start_mark.line + 1)
                walk(item, f"{where}[{i}]")

    try:
        walk(yaml.compose(path.read_text()), "")
    except (OSError, yaml.YAMLError):  # the scenario loaded already; a line number is a courtesy
        return {}
    return lines


def line_of(field: str, lines: dict[str, int]) -> int | None:
    """The line of `field`, or of its nearest ancestor written in the file (a default has no line of its own)."""
    while field:
        if field in lines:
            return lines[field]
        field = field.rsplit(".", 1)[0] if "." in field else field.rsplit("[", 1)[0] if "[" in field else ""
    return None


def show(findings, path: Path) -> None:
    lines = field_lines(path)
    for f in findings:
        line = line_of(f.field, lines)
        typer.echo(f"  {f.severity:<7}  {f.id}  {path}{f':{line}' if line else ''}: {f.field}: {f.reason}")


def refuse_errors(scenario, path: Path) -> None:
    """`simlab check`: print the lint errors of a valid scenario and fail (exit 1) when there are any."""
    from simlab.linter import lint

    errors = lint(scenario).errors
    if errors:
        show(errors, path)
        raise PolicyError(f"{path}: {len(errors)} lint error(s) in the rollout policy (simlab lint {path} says more)")


@app.command("lint")
def lint_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    strategy: Optional[str] = typer.Option(None, "--strategy", metavar="[big_bang|rolling|blue_green|canary]",
                                           help="lint with this strategy kind and its defaults (default: the "
                                                "scenario's)"),
    as_json: bool = typer.Option(False, "--json", help="print the findings as one JSON object"),
) -> None:
    """Find a rollout policy's mistakes before simulating it: exit 1 on any error, 0 with warnings only.

    Errors break the rollout on every run (nothing rolls back, the analysis cannot see its step or never gets
    enough requests, the deadline fires first, capacity under peak demand); warnings are risks with their
    numbers (predicted false rollbacks of a good release, a release in busy hours, a health check too slow).

    \b
    Examples:
      simlab lint experiments/checkout-canary.yaml
      simlab lint experiments/checkout-canary.yaml --strategy blue_green --json
    """
    from simlab.linter import lint

    s = scenario_arg(scenario, strategy)
    findings = lint(s)
    if as_json:
        lines = field_lines(scenario)
        typer.echo(json.dumps({
            "file": str(scenario), "scenario": s.name, "strategy": s.strategy.kind,
            "errors": len(findings.errors), "warnings": len(findings.warnings),
            "findings": [{**f, "line": line_of(f["field"], lines)} for f in findings.to_dicts()]}, indent=2))
    else:
        typer.echo(f"{scenario}: {s.name}, strategy {s.strategy.kind}: {findings.summary()}")
        show(findings, scenario)
    if findings.errors:
        raise PolicyError(f"{scenario}: {len(findings.errors)} lint error(s)")
