"""`simlab staging up/status/down/load`, `simlab deploy` and `simlab validate`: argument parsing and printing only.

Also `simlab validate` (the scenario's failures as a Chaos Toolkit experiment). aiohttp, Locust and chaoslib are
never imported here at module level, so `simlab --help` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.errors import SimlabError

DEFAULT_DIR = Path(".simlab-state")  # ignored by git

staging_app = typer.Typer(no_args_is_help=True, help="""A local staging fleet: HAProxy, Prometheus, real instances.

\b
Examples:
  simlab staging up experiments/staging-canary-good.yaml --dir S
  simlab staging down --dir S
""")
app.add_typer(staging_app, name="staging")


def _staging_scenario(path: Path):
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario

    return staging_scenario(load_scenario(path))


@staging_app.command("up")
def up(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory (PIDs, ports, configs, logs)"),
    per_process: int = typer.Option(1, "--instances-per-process", help="instances served by one process (1: a "
                                    "process each; more for fleets larger than the machine hosts as processes)"),
) -> None:
    """Start HAProxy, Prometheus and the stable fleet on loopback; return when all serve.

    \b
    Examples:
      simlab staging up experiments/staging-canary-good.yaml --dir S
      simlab staging up experiments/staging-failures.yaml --dir S --instances-per-process 2
    """
    from simlab.errors import ScenarioError
    from simlab.staging.signals import sigterm_as_interrupt
    from simlab.staging.supervisor import Staging

    if per_process < 1:
        raise ScenarioError(f"--instances-per-process: expected 1 or more, found {per_process}")
    s = _staging_scenario(scenario)
    with sigterm_as_interrupt():
        st = Staging.up(s, state_dir, per_process=per_process)
    for name in st.info.cleaned:
        typer.echo(f"stopped {name}, left running by an earlier simlab")
    typer.echo(f"staging up in {st.info.startup_s:.1f}s: {s.fleet.instances} instances of the stable version")
    typer.echo(f"  service     {st.url}/")
    typer.echo(f"  prometheus  {st.prometheus_url}/")
    typer.echo(f"  haproxy     {st.stats_url}/stats")
    typer.echo(f"  state       {st.dir}")


@staging_app.command("status")
def status(
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Show instances, versions, weights and health.

    \b
    Examples:
      simlab staging status --dir S
      simlab staging status --dir S --json
    """
    from simlab.staging.health import status as staging_status
    from simlab.staging.supervisor import Staging

    info = staging_status(Staging.open(state_dir))
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(f"staging {info['scenario']} in {info['dir']}")
    typer.echo(f"  service {info['url']}/  prometheus {info['prometheus']}/  haproxy {info['haproxy_stats']}")
    for name, svc in info["services"].items():
        typer.echo(f"  {name:<11} pid {svc['pid']:<7} port {svc['port']:<6} {'running' if svc['running'] else 'NOT RUNNING'}")
    split = info.get("split")
    if split is not None:  # HAProxy picks the version by these shares, then an instance inside it
        typer.echo("  split       " + ("by instance (every instance in rotation alike)" if split["by_instance"] else
                                       f"new {split['new']:g}%  baseline {split['baseline']:g}%  stable {split['old']:g}%"))
    typer.echo(f"  {'instance':<11} {'version':<8} {'pid':<7} {'port':<6} {'health':<6} weight")
    for row in info["instances"]:
        health = row["health"] if row["running"] else "EXITED"
        typer.echo(f"  {row['name']:<11} {row['version']:<8} {row['pid']:<7} {row['port']:<6} {health:<6} {row['weight']}")


@staging_app.command("down")
def down(state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory")) -> None:
    """Stop everything `up` (or a crashed simlab) started here, also when its state file is damaged.

    \b
    Examples:
      simlab staging down --dir S
    """
    from simlab.errors import StagingError
    from simlab.staging.state import StateFileError
    from simlab.staging.supervisor import Staging
    from simlab.staging.sweep import down_damaged

    try:
        st = Staging.open(state_dir)
    except StateFileError as exc:
        names, kept = down_damaged(state_dir)
        typer.echo(f"{exc.damage}: stopped {len(names)} process(es) found by the directory in their "
                   f"environment: {', '.join(names) or 'none were running'}" + (f"; the file is kept as {kept}"
                                                                                  if kept else ""))
        return
    except StagingError:
        names, _ = down_damaged(state_dir)  # no state file: a process it lost track of may still run
        typer.echo(f"stopped {len(names)} process(es) left without a state file: {', '.join(names)}" if names
                   else f"nothing to stop in {state_dir}")
        return
    names = st.down()
    typer.echo(f"stopped {len(names)} process(es): {', '.join(names) or 'none were running'}")


@staging_app.command("load")
def load(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory of a running staging"),
    out: Path = typer.Option(Path("reports/staging-load"), help="where Locust's request records go"),
    duration: Optional[float] = typer.Option(None, help="seconds (default: the scenario's duration)"),
    workers: int = typer.Option(0, "--load-workers", help="Locust worker processes (0: one process)"),
) -> None:
    """Drive the scenario's traffic at a running staging with Locust (a subprocess).

    \b
    Examples:
      simlab staging load experiments/staging-canary-good.yaml --dir S --duration 30
    """
    from simlab.staging.load import run_load
    from simlab.staging.signals import sigterm_as_interrupt
    from simlab.staging.supervisor import Staging

    s = _staging_scenario(scenario)
    st = Staging.open(state_dir)
    with sigterm_as_interrupt():
        report = run_load(s, st.url, out, duration=duration, workers=workers, owner=st.dir)
    typer.echo(f"offered {report['offered']} requests ({report['attempts']} attempts), {report['failed']} failed, "
               f"achieved {report['achieved_rps']:.1f} rps of {report['target_rps']:.1f}; records in {out}")


@app.command("deploy")
def deploy(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory (a running staging is reused)"),
    target: str = typer.Option("local", "--target", metavar="[local|external]",
                               help="local: the staging in --dir (started if not up); "
                               "external: the scenario's staging.target, driven by its commands"),
    allow_host: list[str] = typer.Option([], "--allow-host", help="a non-loopback host the external target may "
                                         "use (repeat for several; default: loopback only)"),
    with_load: bool = typer.Option(False, "--load", help="drive the scenario's traffic with Locust meanwhile"),
    load_workers: int = typer.Option(0, "--load-workers", help="Locust worker processes on 127.0.0.1 "
                                     "(0: one Locust process)"),
    per_process: int = typer.Option(1, "--instances-per-process", help="instances per process, for a staging "
                                    "this deploy starts (a running one keeps its own)"),
    out: Optional[Path] = typer.Option(None, help="write summary.json, timeline.csv, events.csv and Locust's "
                                       "request records (load/) here (default: print only)"),
    strategy: Optional[str] = typer.Option(None, metavar="[big_bang|rolling|blue_green|canary]",
                                           help="deploy with this strategy kind and its defaults (default: the "
                                                "scenario's)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    record: Optional[Path] = typer.Option(None, "--record", help="write the controller's observations and "
                                          "decisions here (JSON lines; replay with simlab.control.recording; "
                                          "default: not recorded)"),
    predict: bool = typer.Option(False, "--predict", help="after the deploy, simulate the same staging scenario "
                                 "(same seed, request engine) into OUT/predicted/ and write the prediction-next-"
                                 "to-observation report to OUT/report/ (needs --out)"),
) -> None:
    """Run the release on staging with the shared rollout controller, on the wall clock.

    \b
    Examples:
      simlab deploy experiments/staging-canary-bad.yaml --load --out reports/canary-bad --predict
      simlab deploy experiments/staging-canary-good.yaml --target external --allow-host staging.internal --load
    """
    from simlab.errors import ScenarioError, StagingError
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario, staging_target
    from simlab.staging.deployer import DeployFailed, deploy as run_deploy, deploy_external
    from simlab.staging.signals import sigterm_as_interrupt

    raw = load_scenario(scenario)
    s = staging_scenario(raw)
    if strategy:
        s = s.with_strategy(strategy)
    if target not in ("local", "external"):
        raise ScenarioError(f"--target: expected local or external, found {target!r}")
    if load_workers < 0:
        raise ScenarioError(f"--load-workers: expected 0 or more, found {load_workers}")
    if per_process < 1:
        raise ScenarioError(f"--instances-per-process: expected 1 or more, found {per_process}")
    if predict and out is None:
        raise ScenarioError("--predict: expected --out DIR as well (the prediction and the report are written "
                            "next to the deploy's results)")
    progress = None if as_json else (lambda line: typer.echo(line))
    options = dict(with_load=with_load, out=out, progress=progress, record_to=record, load_workers=load_workers)
    try:
        with sigterm_as_interrupt():
            if target == "external":
                spec = staging_target(raw)
                if spec is None:
                    raise ScenarioError(f"{scenario}: --target external needs a `staging.target` block")
                result = deploy_external(s, spec, state_dir, allow_hosts=allow_host, **options)
            else:
                result = run_deploy(s, state_dir, per_process=per_process, **options)
    except DeployFailed as exc:  # interrupted, balancer gone, new version never served: what was seen is kept
        if out is not None and exc.result is not None:
            exc.result.write(out)
            typer.echo(f"wrote {out}/summary.json, timeline.csv, events.csv: what was observed until it stopped")
        raise
    except KeyboardInterrupt:
        # Before or after the rollout (starting or stopping a staging, which clean up after themselves).
        # Typer swallows KeyboardInterrupt into a return value; an error the CLI maps keeps the exit non-zero.
        raise StagingError("deploy interrupted while a staging was being started or stopped (no rollout was "
                           "in progress)") from None
    if out is not None:
        result.write(out)
    if predict:
        _predict(s, out, result, as_json, with_load)
        return
    if as_json:
        typer.echo(json.dumps(result.summary.to_dict()))
        return
    summary = result.summary.to_dict()
    typer.echo(f"{summary['outcome']}: {summary['requests']} requests, {summary['failed']} failed, "
               f"detected at {summary['detected_at_s']}, rollback done at {summary['rollback_done_at_s']}")
    if out is not None:
        typer.echo(f"wrote {out}/summary.json, timeline.csv, events.csv" + (", load/records/" if with_load else ""))


# The key figures `deploy --predict` prints side by side; the report has every summary key.
PREDICT_KEYS = ("outcome", "requests", "failed", "slow", "bad", "latency_p99_ms", "detected_at_s",
                "rollback_done_at_s", "deploy_duration_s", "min_capacity")


def _predict(s, out: Path, observed, as_json: bool, with_load: bool) -> None:
    """Simulate the deployed staging scenario into OUT/predicted/, write the pair report to OUT/report/, print both.

    Here in the CLI, not in simlab.staging: staging never imports the engines.
    """
    from simlab.report import write_pair_report
    from simlab.report.pair import compare_row
    from simlab.simulation import simulate

    predicted = simulate(s, seed=s.seed, engine="request")
    predicted.write(out / "predicted")
    report = write_pair_report(out / "predicted", out, out_root=out, name="report")
    p, o = predicted.summary.to_dict(), observed.summary.to_dict()
    if as_json:
        typer.echo(json.dumps({"observed": o, "predicted": p, "report": str(report / "report.html")}))
        return
    rows = [["", "predicted", "observed", "difference", "relative"]]
    rows += [compare_row(k, p.get(k), o.get(k)) for k in PREDICT_KEYS]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    typer.echo(f"predicted (simulation, request engine, seed {s.seed}) next to observed (staging):")
    for r in rows:
        typer.echo("  " + r[0].ljust(widths[0]) + "".join("  " + r[i].rjust(widths[i]) for i in range(1, 5)).rstrip())
    typer.echo(f"wrote {out}/summary.json, timeline.csv, events.csv, " + ("load/records/, " if with_load else "")
               + "predicted/")
    typer.echo(f"report: {report / 'report.html'} (and report.md)")


@app.command()
def validate(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory: its staging is used if it runs, "
                                   "else one is started there for the run and stopped after"),
    out: Path = typer.Option(Path("reports/validate"), "--out", help="where experiment.json, journal.json, "
                             "chaos.log, prediction.json and the report go"),
    experiment: Optional[Path] = typer.Option(None, "--experiment", help="run this Chaos Toolkit experiment "
                                              "instead of the one generated from the scenario (default: generated)"),
    runs: Optional[int] = typer.Option(None, "--runs", help="replications simulated for the prediction "
                                       "(default: the scenario's validate.runs, else 20)"),
    journal: Optional[Path] = typer.Option(None, "--journal", help="run nothing: judge this journal of an "
                                           "earlier validate against SCENARIO's prediction (default: run one)"),
) -> None:
    """Run the scenario on staging as a Chaos Toolkit experiment; exit 1 unless its SLO held and the run
    matched the simulation's prediction.

    \b
    Examples:
      simlab validate experiments/staging-failures.yaml --out reports/validate
      simlab validate experiments/staging-canary-good.yaml --experiment experiments/chaos/kill-one-instance.json
    """
    from simlab.chaos.validate import validate as run_validate
    from simlab.cli.chaos import print_validation
    from simlab.errors import ScenarioError
    from simlab.scenario.loading import staging_scenario
    from simlab.staging.signals import sigterm_as_interrupt

    if runs is not None and runs < 2:
        raise ScenarioError(f"--runs: expected 2 or more, found {runs}")
    s = staging_scenario(scenario_arg(scenario))
    try:
        with sigterm_as_interrupt():
            result = run_validate(s, state_dir=state_dir, out=out, experiment=experiment, runs=runs, journal=journal)
    except KeyboardInterrupt:
        raise SimlabError("validate interrupted: chaos ran its rollbacks, a staging started here is stopped") from None
    print_validation(result)
    if not result.passed:
        raise typer.Exit(1)
