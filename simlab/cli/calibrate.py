"""`simlab calibrate`: a scenario's service time, capacity and start-up measured on staging, as a scenario fragment.

Argument parsing and printing only; the measuring and fitting are simlab.calibration's (loaded on use).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from simlab.cli.app import app, scenario_arg
from simlab.cli.staging import DEFAULT_DIR
from simlab.errors import ScenarioError, StagingError


@app.command()
def calibrate(
    scenario: Path = typer.Argument(..., help="scenario YAML file (its `staging:` block applies)"),
    state_dir: Path = typer.Option(DEFAULT_DIR, "--dir", help="state directory: its staging is measured if it "
                                   "runs, else one is started there and stopped after"),
    from_dirs: list[Path] = typer.Option([], "--from", help="fit from this recorded run instead of measuring "
                                         "(a `deploy --load --out` or `staging load --out` directory; repeatable; "
                                         "default: measure live)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="write the fragment here (default: print it)"),
    samples: int = typer.Option(4000, "--samples", help="latencies to fit the service time to (live; the fitted "
                                "p99's standard error is about 1.35/sqrt(samples) for a log-normal)"),
    level_seconds: float = typer.Option(2.0, "--level-seconds", help="seconds each step of the stepped load lasts"),
) -> None:
    """Fit service time, capacity and start-up from staging; write a fragment `run`/`compare --calibration` overlay.

    \b
    Examples:
      simlab calibrate experiments/staging-canary-good.yaml --dir S -o calibration.yaml
      simlab calibrate experiments/staging-canary-good.yaml --from reports/canary-good -o calibration.yaml
    """
    from simlab.calibration.calibrate import calibrate_live, calibrate_recorded
    from simlab.calibration.fragment import dump
    from simlab.staging.signals import sigterm_as_interrupt

    if samples < 20:
        raise ScenarioError(f"--samples: expected 20 or more, found {samples}")
    if not level_seconds > 0:
        raise ScenarioError(f"--level-seconds: expected more than 0, found {level_seconds:g}")
    raw = scenario_arg(scenario)
    say = lambda line: typer.echo(line, err=out is None)  # noqa: E731  stdout carries the fragment without -o
    try:
        with sigterm_as_interrupt():
            if from_dirs:
                fragment = calibrate_recorded(raw, from_dirs, progress=say)
            else:
                fragment = calibrate_live(raw, state_dir, samples=samples, level_seconds=level_seconds, progress=say)
    except KeyboardInterrupt:
        raise StagingError("calibrate interrupted: instances it started are stopped, a staging started here "
                           "is down") from None
    except ValueError as exc:  # too few latencies to fit
        raise StagingError(f"calibrate: {exc}") from None
    header = (f"simlab calibrate {scenario}" + "".join(f" --from {d}" for d in from_dirs) + "\n"
              f"Overlay: simlab run {scenario} --calibration FILE (also compare); the `calibration:` block is "
              "the evidence and is not applied.")
    text = dump(fragment, header)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(f"wrote {out}")
