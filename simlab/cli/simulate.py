"""`simlab check`, `simlab schema` and `simlab run`: one scenario, validated, described or simulated once."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.errors import ScenarioError


MAX_WORK = typer.Option(None, "--max-work", metavar="DURATION",
                        help="CPU time a command may need before simlab refuses to start it, e.g. 48h or 7d "
                             "(default 24h); memory is limited to most of what is available")
NO_LIMITS = typer.Option(False, "--no-limits", help="start the command whatever CPU time and memory it needs")
CALIBRATION = typer.Option(None, "--calibration", metavar="FRAGMENT",
                           help="overlay this fragment of `simlab calibrate` on the scenario (measured service "
                                "time, capacity, start-up; default: the scenario as written)")


def calibrated(s, fragment: Optional[Path]):
    """The scenario with a `simlab calibrate` fragment merged in (as it is without one); ScenarioError if invalid."""
    if fragment is None:
        return s
    from simlab.calibration.fragment import overlay

    return overlay(s, fragment)


def _pick(scenario, engine: str) -> str:
    """The engine `auto` runs, decided as simlab.simulation.engine_choice does, from the expected requests
    counted without arrays (engine_choice samples the rate every second, which a year-long run cannot afford)."""
    if engine != "auto":
        return engine
    from simlab.engines.fluid.domain import outside
    from simlab.scenario.footprint import expected_requests
    from simlab.simulation import AUTO_INSTANCES, AUTO_REQUESTS

    if outside(scenario) is not None:
        return "request"
    small = expected_requests(scenario) <= AUTO_REQUESTS and scenario.fleet.instances <= AUTO_INSTANCES
    return "request" if small else "fluid"


def within_limits(points, engine: str, runs: int, executor: str, max_work: Optional[str], no_limits: bool,
                  source: str, single: bool = False, twins: bool = False) -> list:
    """Refuse (ScenarioError) before anything runs when the runs would not finish or fit on this machine.

    `single`: one run in this process (`simlab run`), which on the fluid engine keeps its timeline.
    `twins`: each point's runs come with their no-release twins (compare and sweep: simlab.experiment.twins).
    Returns the footprints, one per engine the points run on. An unknown engine or executor is left
    to the command itself to report.
    """
    from simlab.scenario.footprint import check_footprint, footprint, machine_limits
    from simlab.units import parse_duration

    work = None
    if max_work is not None:
        try:
            work = parse_duration(max_work)
        except ValueError as exc:
            raise ScenarioError(f"--max-work: {exc}") from None
    if engine not in ("request", "fluid", "auto") or executor not in ("serial", "local", "dask"):
        return []
    limits = machine_limits(work, no_limits)
    if single:
        batch, parallel = 1, 1
    else:
        from simlab.experiment.executors import workers
        from simlab.experiment.replication import FLUID_BLOCK

        batch, parallel = FLUID_BLOCK, workers(executor)
    if twins:
        from simlab.experiment.twins import no_release_twin, twin_key

        unique = {twin_key(p, engine): no_release_twin(p) for p in points if p.release is not None}
        points = [*points, *unique.values()]
    groups: dict[str, list] = {}
    for point in points:
        groups.setdefault(_pick(point, engine), []).append(point)
    prints = [footprint(group, name, runs, batch, parallel, record=single) for name, group in groups.items()]
    for fp in prints:
        check_footprint(fp, limits, source)
    return [(fp, limits) for fp in prints]


@app.command()
def check(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    engine: str = typer.Option("request", metavar="[request|fluid|auto]",
                               help="the engine to estimate a run on"),
    runs: int = typer.Option(1, "--runs", min=1, help="runs to estimate (as compare or sweep would run them)"),
    max_work: Optional[str] = MAX_WORK,
    no_limits: bool = NO_LIMITS,
) -> None:
    """Validate a scenario, say what it describes, and whether its runs fit this machine (exit 2 if not); a valid
    scenario whose rollout policy has lint errors exits 1 (simlab lint says more).

    \b
    Examples:
      simlab check experiments/checkout-canary.yaml
      simlab check experiments/checkout-canary.yaml --engine fluid --runs 200
    """
    from simlab.scenario.footprint import describe

    s = scenario_arg(scenario)
    prints = within_limits([s], engine, runs, "local", max_work, no_limits, str(scenario), single=runs == 1)
    release = "no release" if s.release is None else (
        f"release {s.release.version} at {s.release.at:g}s with {len(s.release.defects)} defect(s)"
    )
    typer.echo(
        f"{scenario}: valid — {s.name}: {s.fleet.instances} instances, {s.traffic.rps:g} rps, "
        f"{s.duration:,.10g}s, {release}, strategy {s.strategy.kind}"
    )
    for fp, limits in prints:
        typer.echo(describe(fp, limits))
    from simlab.cli.lint import refuse_errors

    refuse_errors(s, scenario)  # valid, but a rollout policy that cannot work: its lint errors, exit 1


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario YAML files (editors, CI): durations as written, unknown keys rejected.

    \b
    Examples:
      simlab schema > experiments/scenario.schema.json
    """
    from simlab.scenario.schema import scenario_schema

    typer.echo(json.dumps(scenario_schema(), indent=2))


@app.command()
def run(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    seed: Optional[int] = typer.Option(None, help="random seed (default: the scenario's)"),
    strategy: Optional[str] = typer.Option(None, metavar="[big_bang|rolling|blue_green|canary]",
                                           help="run with this strategy kind and its defaults (default: the scenario's)"),
    engine: str = typer.Option("request", metavar="[request|fluid|auto]",
                               help="request: every request an event; fluid: numpy in 1 s ticks; auto: picks by size"),
    out: Optional[Path] = typer.Option(None, help="write summary.json, timeline.csv and events.csv here "
                                       "(default: print only)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    report: bool = typer.Option(False, "--report", help="also write an HTML and Markdown report (needs --out)"),
    max_work: Optional[str] = MAX_WORK,
    no_limits: bool = NO_LIMITS,
    calibration: Optional[Path] = CALIBRATION,
) -> None:
    """Simulate one rollout and print its summary.

    \b
    Examples:
      simlab run experiments/checkout-canary.yaml --out reports/run
      simlab run experiments/checkout-canary.yaml --strategy rolling --engine fluid --json
    """
    if report and out is None:
        raise ScenarioError("--report: expected --out DIR as well (the report is built from the written results)")
    if seed is not None and seed < 0:
        raise ScenarioError(f"--seed: expected a whole number of at least 0, found {seed}")
    s = calibrated(scenario_arg(scenario, strategy), calibration)
    within_limits([s], engine, 1, "serial", max_work, no_limits, str(scenario), single=True)
    from simlab.simulation import simulate  # pandas and numpy load only once the run will start

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
