"""`simlab locustfile`: a scenario's traffic as a locustfile plain `locust` runs (headless or web UI), against any host."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.errors import ScenarioError


@app.command("locustfile")
def locustfile(
    scenario: Path = typer.Argument(..., help="scenario YAML file"),
    out: Path = typer.Option(Path("locustfile.py"), "-o", "--out", help="where to write the locustfile"),
    staging: bool = typer.Option(False, "--staging", help="the scenario's staging form (its `staging:` block "
                                 "applied), as `simlab staging load` drives it"),
    duration: Optional[float] = typer.Option(None, "--duration", help="seconds of traffic (default: the scenario's)"),
) -> None:
    """Write the scenario's load (rate, pattern, spikes, retries) as a self-contained locustfile.

    \b
    Examples:
      simlab locustfile experiments/checkout-canary.yaml -o locustfile.py
      simlab locustfile experiments/staging-canary-good.yaml --staging --duration 60
    """
    from simlab.staging.locust_export import write_locustfile

    if duration is not None and not duration > 0:
        raise ScenarioError(f"--duration: expected more than 0 seconds, found {duration:g}")
    s = scenario_arg(scenario)
    if staging:
        from simlab.scenario.loading import staging_scenario

        s = staging_scenario(s)
    out.parent.mkdir(parents=True, exist_ok=True)
    made = write_locustfile(s, out, duration, source=f"{scenario}" + (" --staging" if staging else ""))
    typer.echo(f"wrote {out}: {made['seconds']} s of {s.name}'s traffic, {made['requests']:,.0f} requests, "
               f"peak {made['peak_rps']:g} rps")
    typer.echo(f"run: locust -f {out} -H URL --headless [--run-time 30s] [--records DIR]   (or without "
               "--headless for the web UI)")
