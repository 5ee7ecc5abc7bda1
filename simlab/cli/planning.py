"""`simlab capacity`: the smallest fleet that holds the SLO under stated conditions, as a table or JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app


def _show(result) -> None:
    from rich.console import Console
    from rich.table import Table

    t = result.target
    typer.echo(f"simlab capacity: {result.meta['scenario']}, p99 <= {t['latency_p99_ms']:g} ms, availability >= "
               f"{t['availability']:g}%, {result.conditions.describe()}; engine {result.meta['engine']}, "
               f"{result.meta['runs']} runs per size (twice at the answer and one below)")
    view = Table()
    for head in ("instances", "serving", "runs", "p99 ms [95% CI]", "availability % [95% CI]",
                 "utilisation [95% CI]", "SLO"):
        view.add_column(head)
    for _, r in result.table.iterrows():
        mark = " <- answer" if r["instances"] == result.instances else ""
        p99 = "-" if r["latency_p99_ms"] != r["latency_p99_ms"] else (
            f"{r['latency_p99_ms']:.0f} [{r['latency_p99_ms_lo']:.0f}-{r['latency_p99_ms_hi']:.0f}]")
        util = "-" if r["utilization"] != r["utilization"] else (
            f"{r['utilization']:.0%} [{r['utilization_lo']:.0%}-{r['utilization_hi']:.0%}]")
        view.add_row(str(r["instances"]), str(r["serving"]), str(r["runs"]), p99,
                     f"{r['availability']:.3f} [{r['availability_lo']:.3f}-{r['availability_hi']:.3f}]", util,
                     ("holds" if r["holds"] else "fails") + mark)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(view)


@app.command("capacity")
def capacity_command(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    p99: str = typer.Option(..., "--p99", help="latency target: the p99 of successful requests, e.g. 300ms"),
    availability: Optional[float] = typer.Option(None, "--availability", help="availability target in percent of "
                                                 "good requests, e.g. 99.9 (default: the scenario's slo.availability)"),
    during_rollout: bool = typer.Option(False, "--during-rollout", help="a rollout in progress takes its share out "
                                        "of rotation (rolling: max_unavailable; canary and blue-green add instances)"),
    zone_down: bool = typer.Option(False, "--zone-down", help="the largest zone is down"),
    at_peak: bool = typer.Option(False, "--at-peak", help="the traffic pattern's peak rate for the whole run"),
    runs: int = typer.Option(20, "--runs", min=2, help="replications per fleet size"),
    seed: int = typer.Option(0, "--seed", min=0, help="experiment seed; every size runs on the same seeds"),
    engine: str = typer.Option("fluid", "--engine", metavar="[fluid|request|auto]",
                               help="fluid: numpy in 1 s ticks, fast; request: every request an event; auto: by size"),
    executor: str = typer.Option("auto", "--executor", metavar="[auto|local|dask|serial]",
                                 help="auto: serial for the fluid engine (a size's runs are one batch), local for the "
                                      "others; local: a process pool over all cores; dask; serial: this process"),
    duration: Optional[str] = typer.Option(None, "--duration", help="length of each judged run, e.g. 10m "
                                           "(default: the scenario's duration)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object: the answer and the size below it"),
) -> None:
    """The smallest fleet.instances that keeps p99 latency and availability on target under the conditions given,
    all at once; found by bisection over fleet sizes with replications, confirmed at the answer and one below.

    \b
    Examples:
      simlab capacity experiments/checkout-canary.yaml --p99 300ms --zone-down --runs 10 --duration 5m
      simlab capacity experiments/checkout-canary.yaml --p99 250ms --availability 99.95 --at-peak --json
    """
    from simlab.planning import capacity

    result = capacity(scenario, p99=p99, availability=availability, during_rollout=during_rollout,
                      zone_down=zone_down, at_peak=at_peak, runs=runs, seed=seed, engine=engine, executor=executor,
                      duration=duration)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _show(result)
    typer.echo(result.sentence())
    if result.marginal:
        typer.echo("marginal: an interval at the answer or one below straddles a target; more --runs would firm it up")
