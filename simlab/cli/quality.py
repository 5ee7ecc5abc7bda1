"""`simlab analysis-quality`: the false-rollback and detection rates of analysis variants, as a table and in words."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app
from simlab.cli.experiment import ENGINE, EXECUTOR, QUIET, REPORT, SCHEDULER, SEED, _check_report, _stoppable, _write
from simlab.errors import ScenarioError


def _show(table, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from simlab.report.formatting import count_ci, duration, pct_ci

    view = Table(title=title, title_justify="left")
    for head in ("variant", "release", "runs", "P(rollback) [95% CI]", "detect p50", "detect p90",
                 "bad reqs added [95% CI]", "rollbacks by cause"):
        view.add_column(head, overflow="fold")
    for _, r in table.iterrows():
        view.add_row(str(r["variant"]), str(r["release"]), str(int(r["runs"])),
                     pct_ci(r["p_rollback"], r["p_rollback_lo"], r["p_rollback_hi"]),
                     duration(r["ttd_p50_s"]), duration(r["ttd_p90_s"]),
                     count_ci(r["added_bad_mean"], r["added_bad_lo"], r["added_bad_hi"]), str(r["causes"] or "-"))
    console = Console()
    if not console.is_terminal:
        console = Console(width=400)
    console.print(view)


def _plain(value):
    return None if isinstance(value, float) and math.isnan(value) else value


@app.command("analysis-quality")
def quality_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its release is replaced by each one judged)"),
    variants: Optional[Path] = typer.Option(None, "--variants", help="YAML file of named analysis variants "
                                            "(default: the scenario's own analysis)"),
    severity: list[str] = typer.Option([], "--severity", help="KIND=v1,v2 bad releases to judge (repeatable), e.g. "
                                       "error_rate=0.002,0.01 or latency=+10ms,+50ms; default "
                                       "error_rate=0.001,0.002,0.005,0.01,0.02,0.05"),
    runs: int = typer.Option(200, "--runs", help="runs per variant and release"),
    seed: int = SEED,
    engine: str = typer.Option("fluid", "--engine", metavar="[fluid|request|auto]",
                               help="fluid: numpy in 1 s ticks, fast; request: every request an event; auto: by size"),
    executor: str = EXECUTOR, scheduler: Optional[str] = SCHEDULER,
    max_false_rollback: Optional[float] = typer.Option(None, "--max-false-rollbacks", help="target: at most this "
                                                       "share of good releases rolled back (default: the scenario's "
                                                       "decide.max_false_rollback, else 0.05)"),
    min_detection: float = typer.Option(0.95, "--min-detection", help="target: bad releases caught at least this often"),
    catch: Optional[str] = typer.Option(None, "--catch", metavar="KIND=v", help="target: the mildest severity that "
                                        "must be caught, e.g. error_rate=0.005 (default: some severity of each kind)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write quality.csv, runs.parquet and meta.json here "
                                       "(default: print only)"),
    quiet: bool = QUIET, report: bool = REPORT,
    json_out: bool = typer.Option(False, "--json", help="print the table and verdicts as JSON instead"),
) -> None:
    """How often each analysis variant rolls back a good release, and how likely and how fast it catches bad ones.

    \b
    Examples:
      simlab analysis-quality experiments/checkout-canary.yaml --severity error_rate=0.002,0.01 --runs 100
      simlab analysis-quality experiments/checkout-canary.yaml --variants variants.yaml --catch error_rate=0.01 --json
    """
    from simlab.experiment.quality import run_quality
    from simlab.report.quality import verdict_sentences
    from simlab.scenario import load_scenario

    _check_report(report, out)
    if variants is not None and not variants.exists():
        raise ScenarioError(f"--variants: no such variants file {str(variants)!r}")
    s = load_scenario(scenario)
    with _stoppable():
        result = run_quality(s, variants=variants, severities=severity or None, runs=runs, seed=seed, engine=engine,
                             executor=executor, scheduler=scheduler, progress=not (quiet or json_out),
                             max_false_rollback=max_false_rollback, min_detection=min_detection, catch=catch)
    if out is not None:
        result.write(out)
    if json_out:
        rows = [{k: _plain(v) for k, v in row.items()} for row in result.table.to_dict("records")]
        typer.echo(json.dumps({"table": rows, "verdicts": result.verdicts, "meta": result.meta}, indent=2))
        if out is not None and report:  # the report too, its path on stderr: standard output stays one JSON document
            from simlab.cli.report import report_beside

            typer.echo(f"report: {report_beside(out)}", err=True)
        return
    _show(result.table, f"simlab analysis-quality: {s.name}, {runs} runs per variant and release, engine {engine}, "
                        f"seed {seed}")
    for sentence in verdict_sentences(result.verdicts, result.meta):
        typer.echo(sentence)
    _write(out, report)
