"""`simlab compare` and `simlab sweep`: parse options, call the library, print a rich table.

Dask, pyarrow and the report
module load only when a command needs them.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Optional

import typer

from simlab.cli.app import app
from simlab.cli.simulate import CALIBRATION, MAX_WORK, NO_LIMITS, calibrated, within_limits
from simlab.errors import ScenarioError

RUNS = typer.Option(100, "--runs", help="replications per strategy, variant or grid point")
SEED = typer.Option(0, "--seed", help="experiment seed; run i uses a seed derived from (seed, i) only")
ENGINE = typer.Option("request", "--engine", metavar="[request|fluid|auto]",
                      help="request: every request an event; fluid: numpy in 1 s ticks, fast; auto: picks by size")
EXECUTOR = typer.Option("local", "--executor", metavar="[local|dask|serial]",
                        help="local: a process pool over all cores; dask: a Dask cluster; serial: this process")
SCHEDULER = typer.Option(None, "--scheduler", metavar="ADDR", help="Dask scheduler address (default: a LocalCluster)")
QUIET = typer.Option(False, "--quiet", help="no progress bar (for CI)")
REPORT = typer.Option(False, "--report", help="also write an HTML and Markdown report beside the results, in --out")


def parse_param(text: str) -> tuple[str, list[Any]]:
    """`strategy.steps[0].bake=1m,5m,15m` -> (path, ["1m", "5m", "15m"]); values read as YAML flow items."""
    import yaml

    from simlab.experiment.overrides import parse_path

    path, sep, values = text.partition("=")
    if not sep or not path.strip() or not values.strip():
        raise ScenarioError(f"--param: expected PATH=v1,v2 (e.g. analysis.interval=30s,1m), found {text!r}")
    parse_path(path.strip())
    try:
        parsed = yaml.safe_load(f"[{values}]")
    except yaml.YAMLError:
        raise ScenarioError(f"--param: {path.strip()}: expected comma-separated values, found {values!r}") from None
    return path.strip(), parsed


def _cell(value: Any, column: str) -> str:
    from simlab.units import format_duration

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column.endswith("_s"):
        return format_duration(value)
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def _share(row, name: str) -> str:
    p, lo, hi = row[name], row[f"{name}_lo"], row[f"{name}_hi"]
    if isinstance(p, float) and math.isnan(p):
        return "-"
    return f"{p * 100:.0f}% ({lo * 100:.0f}-{hi * 100:.0f})"


def _mean_ci(row, name: str) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    high = row.get(f"{name}_hi")
    if high is None or (isinstance(high, float) and math.isnan(high)):
        return _cell(value, "")
    return f"{_cell(value, '')} ±{_cell(high - value, '')}"  # the t interval is symmetric about the mean


def print_table(table, labels: list[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    # Bad requests per bad release, per good release, with no release at all (same seeds), and what a
    # bad or a good release added to the no-release run (compare.csv has every aggregate).
    heads = [*labels, "runs bad/good", "P(rollback|bad)", "P(rollback|good)", "P(bad promoted)",
             "bad reqs|bad ±CI", "bad reqs|good", "no release", "added|bad ±CI", "added|good",
             "detect p50", "recover mean", "deploy (good)", "extra inst-s"]
    for head in heads:
        view.add_column(head, overflow="fold")
    for _, row in table.iterrows():
        view.add_row(
            *[str(row[c]) for c in labels], f"{row['bad_runs']}/{row['good_runs']}",
            _share(row, "p_rollback_bad"), _share(row, "p_false_rollback"), _share(row, "p_bad_promoted"),
            _mean_ci(row, "bad_given_bad_mean"), _cell(row.get("bad_given_good_mean"), ""),
            _cell(row.get("no_release_bad_mean"), ""), _mean_ci(row, "added_given_bad_mean"),
            _cell(row.get("added_given_good_mean"), ""), _cell(row["ttd_p50_s"], "_s"), _cell(row["ttr_mean_s"], "_s"),
            _cell(row["deploy_duration_good_mean_s"], "_s"), _cell(row["extra_instance_seconds_mean"], ""),
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: as wide as the table, so the numbers are not folded
        console = Console(width=400)
    console.print(view)


def say_false_rollbacks(table, labels: list[str]) -> None:
    """Under a compare's table, one line per row with false rollbacks: how many, by cause and by what made the
    metric cross (the table's false_rollback_causes and false_rollback_triggers, as the report shows them)."""
    for _, row in table.iterrows():
        causes, triggers = row.get("false_rollback_causes"), row.get("false_rollback_triggers")
        if not isinstance(causes, str) or not causes:
            continue
        rolled = round(row["p_false_rollback"] * row["good_runs"])
        crossed = f"; what crossed: {triggers}" if isinstance(triggers, str) and triggers else ""
        typer.echo(f"{' '.join(str(row[c]) for c in labels)}: {rolled} of {row['good_runs']} good releases rolled "
                   f"back, by cause: {causes}{crossed}")


def _say_engine(engine: str, runs, scenario=None) -> None:
    if engine == "auto":
        picked = ", ".join(sorted(str(e) for e in runs["engine"].dropna().unique()))
        why = ""
        if scenario is not None:
            from simlab.simulation import engine_choice

            why = f" ({engine_choice(scenario)[1]})"
        typer.echo(f"engine auto: picked {picked or 'none'}{why}")


def _check_report(report: bool, out: Optional[Path]) -> None:
    if report and out is None:
        raise ScenarioError("--report: expected --out DIR as well (the report is built from the written results)")


def _write(out: Optional[Path], report: bool) -> None:
    """Say where the results went (compare and sweep write them), and write the report beside them."""
    if out is None:
        return
    typer.echo(f"wrote {out}")
    if report:
        from simlab.cli.report import report_beside  # the report module loads only when asked for

        typer.echo(f"report: {report_beside(out)}")


def _say_decision(meta: dict, name) -> None:
    """The decision by the scenario's decide: block, in the report's words, under the table (`name(i)`: how the
    table names variant i)."""
    decision = meta.get("decision")
    if not decision:
        return
    from simlab.report.decision import sentences

    for sentence in sentences(decision, name):
        typer.echo(sentence)


def _resumed(result, out: Optional[Path]) -> None:
    if out is not None and result.executed < len(result.runs):
        typer.echo(f"resumed: {len(result.runs) - result.executed} runs from {out}/store, {result.executed} simulated")


@contextlib.contextmanager
def _stoppable():
    """Ctrl-C, SIGINT and SIGTERM stop the runs in flight, even in a background job that inherited SIGINT
    ignored (a non-interactive shell's `cmd &`); the library keeps what finished and says so."""
    from simlab.staging.signals import sigterm_as_interrupt

    with sigterm_as_interrupt():
        yield


@app.command("compare")
def compare_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    strategies: Optional[str] = typer.Option(None, "--strategies", metavar="[big_bang,rolling,blue_green,canary]",
                                             help="comma-separated strategy kinds (default: all four)"),
    variants: Optional[Path] = typer.Option(None, "--variants", help="YAML file of named overrides to compare, "
                                            "instead of --strategies (default: none)"),
    runs: int = RUNS, seed: int = SEED, engine: str = ENGINE, executor: str = EXECUTOR,
    scheduler: Optional[str] = SCHEDULER,
    out: Optional[Path] = typer.Option(None, "--out", help="keep runs here as they finish (re-running resumes) and "
                                       "write compare.csv, runs.parquet and meta.json (default: print only)"),
    quiet: bool = QUIET, report: bool = REPORT, max_work: Optional[str] = MAX_WORK, no_limits: bool = NO_LIMITS,
    calibration: Optional[Path] = CALIBRATION,
) -> None:
    """Compare strategies or policy variants on the same seeds: one row each, with 95% intervals.

    \b
    Examples:
      simlab compare experiments/checkout-canary.yaml --runs 50 --engine fluid --out reports/demo --report
      simlab compare experiments/checkout-canary.yaml --variants experiments/variants-canary-plans.yaml --runs 50
    """
    from simlab.experiment.comparison import compare, policies
    from simlab.scenario import load_scenario

    _check_report(report, out)
    s = calibrated(load_scenario(scenario), calibration)
    if variants is not None and not variants.exists():
        raise ScenarioError(f"--variants: no such variants file {str(variants)!r}")
    within_limits([p for _, p in policies(s, strategies, variants)], engine, runs, executor, max_work, no_limits,
                  str(scenario), twins=True)
    with _stoppable():
        result = compare(s, strategies=strategies, variants=variants, runs=runs, seed=seed, engine=engine,
                         executor=executor, scheduler=scheduler, progress=not quiet, out=out)
    _say_engine(engine, result.runs, s)
    print_table(result.table, ["variant"], f"simlab compare: {s.name}, {runs} runs each, engine {engine}, seed {seed}")
    say_false_rollbacks(result.table, ["variant"])
    _say_decision(result.meta, lambda i: str(result.meta["decision"]["variants"][i]["label"]))
    _resumed(result, out)
    _write(out, report)


@app.command("sweep")
def sweep_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    param: list[str] = typer.Option([], "--param", metavar="PATH=v1,v2",
                                    help="a dotted scenario path and its values (repeat for a grid), e.g. "
                                         "analysis.interval=30s,1m (no default: at least one is needed)"),
    runs: int = typer.Option(20, "--runs", help="replications per grid point"),
    seed: int = SEED, engine: str = ENGINE, executor: str = EXECUTOR, scheduler: Optional[str] = SCHEDULER,
    out: Optional[Path] = typer.Option(None, "--out", help="store runs here (re-running resumes) and write "
                                       "sweep.parquet, table.csv, pareto.csv (default: print only)"),
    quiet: bool = QUIET, report: bool = REPORT, max_work: Optional[str] = MAX_WORK, no_limits: bool = NO_LIMITS,
) -> None:
    """Sweep a grid of parameters; print aggregates per point and the Pareto front of deploy time vs bad requests.

    \b
    Examples:
      simlab sweep experiments/checkout-canary.yaml --param "strategy.steps[0].bake=1m,5m,15m" --runs 20 --engine fluid
      simlab sweep experiments/checkout-canary.yaml --param analysis.interval=30s,1m --param analysis.failure_limit=1,2
    """
    from simlab.experiment.sweeps import grid, sweep
    from simlab.scenario import load_scenario

    _check_report(report, out)
    if not param:
        raise ScenarioError("--param: expected at least one PATH=v1,v2 to sweep, found none")
    params: dict[str, list[Any]] = {}
    for text in param:
        path, values = parse_param(text)
        if path in params:
            raise ScenarioError(f"--param: expected each path once, found {path} again")
        params[path] = values
    s = load_scenario(scenario)
    within_limits([p for _, p in grid(s, params)], engine, runs, executor, max_work, no_limits, str(scenario),
                  twins=True)
    with _stoppable():
        result = sweep(s, params, runs=runs, seed=seed, engine=engine, executor=executor, scheduler=scheduler,
                       out=out, progress=not quiet)
    labels = list(params)
    _say_engine(engine, result.runs, s)
    print_table(result.table, labels, f"simlab sweep: {s.name}, {runs} runs per point, engine {engine}, seed {seed}")
    if len(result.pareto):
        print_table(result.pareto, labels, "Pareto front: deploy duration (good releases) vs expected bad requests")
    else:
        typer.echo("no Pareto front: no good-release run was promoted (set release.bad_probability below 1)")
    if result.meta.get("decision"):
        keys = result.meta["decision"]["variants"]
        _say_decision(result.meta, lambda i: "(" + ", ".join(f"{k}={v}" for k, v in zip(labels, keys[i]["key"])) + ")")
    _resumed(result, out)
    _write(out, report)
