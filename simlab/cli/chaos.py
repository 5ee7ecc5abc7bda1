"""`simlab chaos generate` and `simlab chaos suite`: argument parsing and printing only; also validate's printing.

chaoslib is never imported here: `chaos` runs as a subprocess (simlab/chaos/validate.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app

chaos_app = typer.Typer(no_args_is_help=True, help="""Chaos Toolkit experiments from scenarios, and suites of them for CI
(JUnit XML).

\b
Examples:
  simlab chaos generate experiments/staging-failures.yaml -o experiment.json
  simlab chaos suite experiments/suite --junit report.xml
""")
app.add_typer(chaos_app, name="chaos")


@chaos_app.command("generate")
def generate(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write the experiment here (.json, or "
                                          ".yaml/.yml); default: print JSON"),
    runs: Optional[int] = typer.Option(None, "--runs", help="replications simulated for the prediction carried "
                                       "under extensions (default: the scenario's validate.runs, else 20)"),
    out: Optional[Path] = typer.Option(None, "--out", help="where the experiment's deploy writes its results "
                                       "(default reports/chaos/NAME)"),
) -> None:
    """The Chaos Toolkit experiment `simlab validate` runs for SCENARIO, to edit and commit.

    \b
    Examples:
      simlab chaos generate experiments/staging-failures.yaml -o experiment.json
      simlab chaos generate experiments/staging-failures.yaml --runs 10 -o experiment.yaml
    """
    from simlab.chaos.generate import generated_experiment
    from simlab.chaos.prediction import predict
    from simlab.cli.app import scenario_arg
    from simlab.errors import ScenarioError
    from simlab.scenario.loading import staging_scenario

    if runs is not None and runs < 2:
        raise ScenarioError(f"--runs: expected 2 or more, found {runs}")
    if output is not None and output.suffix not in (".json", ".yaml", ".yml"):
        raise ScenarioError(f"-o: expected a .json, .yaml or .yml file (what chaos reads), found {output}")
    s = staging_scenario(scenario_arg(scenario))
    prediction = predict(s, runs) if s.release is not None else None
    # The deploy finds the scenario relative to the experiment's own directory (see simlab/chaos/generate.py).
    home = output.parent if output is not None else Path(".")
    experiment = generated_experiment(s, os.path.relpath(scenario, home), home.as_posix(),
                                      str(out or Path("reports/chaos") / s.name), prediction)
    if output is not None and output.suffix != ".json":
        import yaml

        text = yaml.safe_dump(experiment, sort_keys=False, width=100)
    else:
        text = json.dumps(experiment, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}: {len(experiment['method'])} method activities"
               + (f", the prediction of {prediction.runs} runs under extensions" if prediction else ""))


@chaos_app.command("suite")
def suite(
    directory: Path = typer.Argument(..., help="directory of scenarios (*.yaml) and Chaos Toolkit experiments "
                                     "(*.json, or YAML with a method)"),
    junit: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML here (one testcase per item); default: none"),
    state_dir: Path = typer.Option(Path(".simlab-state"), "--dir", help="state directory: its staging is used if "
                                   "it runs (and left running), else one is started for the suite and stopped"),
    out: Path = typer.Option(Path("reports/chaos-suite"), "--out", help="each item's journal, logs and report go "
                             "to OUT/ITEM/"),
    runs: Optional[int] = typer.Option(None, "--runs", help="replications per scenario's prediction (default: "
                                       "each scenario's validate.runs, else 20)"),
    report: bool = typer.Option(True, "--report/--no-report", help="write each scenario's prediction-next-to-"
                                "observation report (about 2 s each)"),
) -> None:
    """Run every item in DIRECTORY against the staging, one after another; exit 1 unless all pass.

    \b
    Examples:
      simlab chaos suite experiments/suite --junit report.xml
      simlab chaos suite experiments/suite --dir .simlab-state --out reports/chaos --no-report
    """
    from simlab.chaos.junit import write_junit
    from simlab.chaos.suite import run_suite
    from simlab.errors import ScenarioError, SimlabError
    from simlab.staging.signals import sigterm_as_interrupt

    if runs is not None and runs < 2:
        raise ScenarioError(f"--runs: expected 2 or more, found {runs}")
    try:
        with sigterm_as_interrupt():
            result = run_suite(directory, state_dir, out, runs=runs, report=report,
                               progress=lambda line: typer.echo(f"  {line}"))
    except KeyboardInterrupt:
        raise SimlabError("suite interrupted: chaos ran its rollbacks, a staging the suite started is stopped") \
            from None
    rows = [("item", "kind", "result", "time", "why")] + [
        (r.item.name, r.item.kind, r.status, f"{r.seconds:.1f}s", _short(r.message)) for r in result.items]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        typer.echo("  " + "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    failed = [r for r in result.items if not r.passed]
    typer.echo(f"{len(result.items) - len(failed)} of {len(result.items)} passed in {result.seconds:.0f}s; "
               f"journals in {out}")
    if junit is not None:
        write_junit(result, junit)
        typer.echo(f"junit: {junit}")
    if failed:
        raise typer.Exit(1)


def _short(message: str, width: int = 110) -> str:
    return message if len(message) <= width else message[: width - 1] + "…"


def print_validation(result) -> None:
    """`simlab validate`'s table of probes, its figures against the prediction, the verdict and the files."""
    rows = [("probe", "tolerance", "before", "after")] + [
        (p.name, json.dumps(p.tolerance), _cell(p.before, p.before_met), _cell(p.after, p.after_met))
        for p in result.probes
    ]
    _table(rows)
    for line in result.staging_notes:
        typer.echo(line)
    if result.checks:
        p = result.prediction
        typer.echo(f"prediction: {p.runs} simulated runs of {p.scenario} (request engine, seed {p.seed}); a run "
                   f"falls in their range with probability {p.coverage:.0%} if the simulation is right")
        _table([("figure", "predicted", "allowed", "observed", "")] + [
            (c.figure, c.predicted, c.allowed or "-", c.observed, "ok" if c.passed else "MISS") for c in result.checks])
    elif result.note:
        typer.echo(f"prediction: {result.note}")
    typer.echo(f"{result.verdict}: {result.reason}")
    typer.echo(f"journal: {result.journal}" + (f" (chaos exited {result.chaos_exit})"
                                               if result.chaos_exit is not None else ""))
    if result.report is not None:
        typer.echo(f"report: {result.report / 'report.html'} (and report.md); the figures in "
                   f"{result.report.parent / 'prediction.json'}")


def _table(rows: list[tuple]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _cell(value, met: bool | None) -> str:
    """A probe's output with a mark: ok, FAIL, or - when it did not run."""
    if met is None:
        return "-"
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{shown} {'ok' if met else 'FAIL'}"
