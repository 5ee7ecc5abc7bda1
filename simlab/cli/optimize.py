"""`simlab optimize`: search a policy space with Optuna, print the Pareto front and the fresh-seed comparison,
write the recommended policy as a scenario and as Argo Rollouts and Flagger manifests."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from simlab.cli.app import app
from simlab.cli.experiment import EXECUTOR, QUIET, REPORT, SCHEDULER, _check_report, _stoppable
from simlab.errors import ScenarioError


def _console():
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=300)


def _show(heads: list[str], rows: list[list[str]], title: str) -> None:
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    for head in heads:
        view.add_column(head, overflow="fold")
    for row in rows:
        view.add_row(*row)
    _console().print(view)


def _front_rows(result, meta) -> tuple[list[str], list[list[str]]]:
    from simlab.report.optimize import _cell, unit, value_text

    front = result.pareto
    names = list(dict.fromkeys([*meta["minimize"], *[c.split("<")[0].split(">")[0] for c in meta["constraints"]]]))
    knobs = [k for k in meta["knobs"] if k in front.columns]
    rows = [[str(int(r["trial"])), *[_cell(r[k]) for k in knobs], *[value_text(r[n], unit(meta, n)) for n in names]]
            for _, r in front.head(15).iterrows()]
    return ["trial", *knobs, *names], rows


@app.command("optimize")
def optimize_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file: the world, and the current policy to beat"),
    search: Path = typer.Option(..., "--search", help="YAML file of knobs: dotted scenario paths and their ranges"),
    minimize: List[str] = typer.Option([], "--minimize", help="a metric to minimise (repeatable; default: "
                                       "the scenario's decide: objective first, then bad_requests_added, "
                                       "false_rollback, deploy_duration_mean)"),
    constraint: List[str] = typer.Option([], "--constraint", metavar="METRIC<=VALUE", help='METRIC<=VALUE or '
                                         'METRIC>=VALUE (repeatable), e.g. "deploy_duration_p50<=30m" or '
                                         '"false_rollback<=0.05" (default: the limits of the scenario\'s decide: block, else none)'),
    trials: int = typer.Option(40, "--trials", help="trials the study should hold (a resumed study runs the rest)"),
    runs_per_trial: int = typer.Option(20, "--runs-per-trial", help="runs of each trial, on the same seeds"),
    fresh_runs: Optional[int] = typer.Option(None, "--fresh-runs", help="held-out runs per policy compared at the "
                                             "end (default 5 x runs per trial, at least 100)"),
    seed: int = typer.Option(0, "--seed", help="seed of the tuning runs and of the sampler; the fresh runs use "
                             "a seed derived from it"),
    engine: str = typer.Option("fluid", "--engine", metavar="[fluid|request|auto]",
                               help="fluid: numpy in 1 s ticks, fast; request: every request an event; auto: by size"),
    executor: str = EXECUTOR, scheduler: Optional[str] = SCHEDULER,
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL, e.g. sqlite:///study.db "
                                          "(default with --out: OUT/study.db); the same storage resumes the study"),
    study: Optional[str] = typer.Option(None, "--study", help="study name in the storage (default from the settings)"),
    sampler: str = typer.Option("tpe", "--sampler", metavar="[tpe|nsga2|random]",
                                help="tpe: multi-objective TPE; nsga2: a genetic search; random"),
    batch: Optional[int] = typer.Option(None, "--batch", help="trials run at once on the executor (default: 1 "
                                        "serial, 8 on Dask, twice the workers of the local pool)"),
    candidates: int = typer.Option(5, "--candidates", help="best trials run again on fresh seeds"),
    out: Optional[Path] = typer.Option(None, "--out", help="write trials.csv, pareto.csv, pareto.png, fresh.csv, "
                                       "recommended.yaml and its Argo and Flagger manifests here (default: print only)"),
    quiet: bool = QUIET, report: bool = REPORT,
) -> None:
    """Search the policy space of a search file for the policy that hurts fewest users within the constraints.

    \b
    Examples:
      simlab optimize experiments/checkout-small.yaml --search experiments/knobs.yaml --constraint "false_rollback<=0.1" --trials 12 --runs-per-trial 16 --out reports/optimize
      simlab optimize experiments/checkout-canary.yaml --search experiments/knobs.yaml --sampler nsga2 --storage sqlite:///study.db
    """
    from simlab.experiment.optimization import optimize
    from simlab.report.optimize import comparison_rows, findings
    from simlab.scenario import load_scenario

    _check_report(report, out)
    if not search.is_file():
        raise ScenarioError(f"--search: no such search file {str(search)!r}")
    s = load_scenario(scenario)
    with _stoppable():
        result = optimize(scenario, search, minimize=minimize or None, constraints=constraint, trials=trials,
                          runs_per_trial=runs_per_trial, fresh_runs=fresh_runs, seed=seed, engine=engine,
                          executor=executor, scheduler=scheduler, storage=storage, study=study, sampler=sampler,
                          batch=batch, candidates=candidates, out=out, progress=not quiet)
    meta = {**result.meta, "recommendation": result.recommendation}
    heads, rows = _front_rows(result, meta)
    typer.echo(f"simlab optimize: {s.name}, {meta['trials']} trials x {runs_per_trial} runs, engine {engine}, "
               f"seed {seed}; study {meta['study']}" + (f" (resumed: {meta['trials_before']} stored, "
                                                        f"{meta['trials_told']} run now)" if meta["trials_before"] else ""))
    if rows:
        _show(heads, rows, "Pareto front (tuning seeds)")
    heads, rows = comparison_rows(result.fresh.table, meta)
    _show(heads, rows, f"Fresh seeds ({meta['fresh_runs']} held-out runs each): recommended vs current, 95% intervals")
    for sentence in findings(result.trials, result.fresh.table, meta)[1:]:
        typer.echo(sentence)
    if out is None:
        return
    from simlab.report.optimize_figures import pareto_figure

    for name, warnings in result.exports.items():
        for line in warnings:
            typer.echo(f"warning: {name}: {line}", err=True)
    (out / "pareto.png").write_bytes(pareto_figure(result.trials, result.fresh.table, meta))
    typer.echo(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "study.db")))
    if report:
        from simlab.cli.report import report_beside

        typer.echo(f"report: {report_beside(out)}")
