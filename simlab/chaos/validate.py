"""`simlab validate`: run a scenario's experiment with the real `chaos` CLI, judge its journal and its prediction.

The journal decides whether the hypothesis held (journal.py: `chaos run`'s
exit code cannot gate anything). When the run deployed the release, the
deploy's summary is also judged figure by figure against N simulated
replications of the same staging scenario (prediction.py), and the
prediction-next-to-observation report is written beside the journal.

`chaos` runs as a subprocess of the same Python environment, in its own
session (a Ctrl-C reaches simlab, which interrupts chaos once so that it
still runs its rollbacks), and never in simlab's process: chaoslib's signal
handling wants the main thread and Locust must never share a process with it.
A staging the user started is used and never stopped: instances found down
are restarted in place, a staging whose HAProxy or Prometheus is gone is
refused, as a deploy does (simlab/staging/health.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from simlab.chaos.journal import (  # noqa: F401 - the verdicts and results are part of this module's API
    DEVIATED, FAILED, MISSED, NOT_MET, PASSED, ProbeOutcome, ValidationResult, deploy_run, load_journal, output,
    read_journal, simlab_extension,
)
from simlab.errors import ScenarioError, StagingError
from simlab.scenario import Scenario

INTERRUPT_GRACE = 60.0
"""Seconds chaos gets after a Ctrl-C to run its rollbacks before it is killed and simlab restores the fleet."""


def chaos_command() -> Path:
    """The `chaos` of this Python environment (next to sys.executable), so it imports this simlab."""
    path = Path(sys.executable).parent / "chaos"
    if not path.exists():
        raise StagingError(f"no `chaos` next to {sys.executable}: install the staging extra "
                           f"(pip install -e '.[staging]', which brings chaostoolkit)")
    return path


def validate(scenario: Scenario, state_dir: str | Path | None = None, out: str | Path = Path("reports/validate"),
             experiment: str | Path | None = None, runs: int | None = None, journal: str | Path | None = None,
             report: bool = True) -> ValidationResult:
    """Run `scenario`'s experiment (or the given experiment file) against a staging; judge its journal and,
    if it deployed, the deploy against `runs` simulated replications of `scenario`.

    The staging in `state_dir` (default OUT/state) is used if it runs; if not,
    one of `scenario` is started there and stopped afterwards, also on errors
    and interrupts. With `journal`, nothing runs: that journal (of an earlier
    validate) is judged against this scenario's prediction.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if journal is not None:
        return judge_prediction(read_journal(journal, experiment), scenario, out, runs=runs, report=report)
    prediction = None
    if experiment is None and scenario.release is not None:
        from simlab.chaos.prediction import predict

        prediction = predict(scenario, runs)  # before the staging runs: it carries it under `extensions`
    path = _experiment_file(scenario, out, experiment, prediction)
    state_dir = (Path(state_dir) if state_dir is not None else out / "state").resolve()
    env = chaos_env(state_dir, path, out)
    if experiment is not None:
        _check_experiment(path, out, env)
    st, owned, notes = running_staging(scenario, state_dir)
    try:
        journal = out / "journal.json"
        journal.unlink(missing_ok=True)
        code = run_chaos(path, out, journal, env, st.dir)
    finally:
        if owned:
            _stop(st.dir)
    result = dataclasses.replace(read_journal(journal, path), chaos_exit=code, staging_notes=tuple(notes))
    return judge_prediction(result, scenario, out, prediction=prediction, runs=runs, report=report, env=env)


def chaos_env(state_dir: Path, experiment: Path, out: Path) -> dict:
    """The environment chaos runs in: where the staging is, the experiment's own directory (for the paths it
    names) and where its deploy writes; this Python environment's scripts first on PATH."""
    from simlab.chaos.generate import EXPERIMENT_DIR_ENV, OUT_ENV

    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "SIMLAB_STATE_DIR": str(state_dir),
            EXPERIMENT_DIR_ENV: str(experiment.parent), OUT_ENV: str(out)}


def run_experiment(experiment: str | Path, state_dir: str | Path, out: str | Path,
                   check: bool = True) -> ValidationResult:
    """An experiment file on the staging running in `state_dir`, judged by its journal and, if it deployed and
    carries a prediction (`simlab chaos generate`), by that prediction.

    `check=False` leaves checking the experiment to `chaos run` itself (it refuses an invalid one before it
    starts, writing no journal): a second chaos process costs 1.5-2 s a file, which a suite saves.
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    path = Path(experiment).resolve()
    _parse_experiment(path, experiment)
    env = chaos_env(Path(state_dir).resolve(), path, out)
    if check:
        _check_experiment(path, out, env)
    journal = out / "journal.json"
    journal.unlink(missing_ok=True)
    code = run_chaos(path, out, journal, env, Path(state_dir).resolve())
    if not journal.exists() and code != 0:
        said = (out / "chaos-console.log").read_text(errors="replace") if (out / "chaos-console.log").exists() else ""
        raise ScenarioError(f"{experiment}: chaos ran nothing and wrote no journal: {_reason(said)}")
    result = dataclasses.replace(read_journal(journal, path), chaos_exit=code)
    return judge_prediction(result, None, out, report=False, env=env)


def judge_prediction(result: ValidationResult, scenario: Scenario | None, out: Path, *, prediction=None,
                     runs: int | None = None, report: bool = True, env: dict | None = None) -> ValidationResult:
    """`result` with the journal's deploy judged against the prediction (made from `scenario` if not given).

    Without `scenario` or `prediction`, the prediction the experiment carries under `extensions.simlab`
    is used, and without one the deploy is held to ending (promoted or rolled back) and to its own
    scenario's SLO (bad requests within the availability target). Writes OUT/prediction.json and, with
    `report` and a scenario, the pair report to OUT/report/. `env` is what chaos ran with (for the paths
    the experiment names).
    """
    from simlab.chaos.prediction import Prediction, finished_check, judge, predict, slo_check

    env = env if env is not None else chaos_env(out, result.experiment, result.journal.parent)

    data = load_journal(result.journal)
    run = deploy_run(data)
    if run is None:
        return dataclasses.replace(result, note="the experiment deployed nothing: no run to compare with the "
                                                 "prediction, only the journal was judged")
    if run.get("status") != "succeeded":
        why = f"the deploy failed: {str(output(run))[len('error: '):]}"
        return dataclasses.replace(result, verdict=FAILED if result.passed else result.verdict,
                                   reason=why if result.passed else f"{result.reason}; {why}", note=why)
    observed = run.get("output") or {}
    if prediction is None and scenario is not None:
        prediction = predict(scenario, runs)
    if prediction is None:
        carried = simlab_extension(data.get("experiment") or {}).get("prediction")
        if carried is not None:
            prediction = Prediction.from_dict(carried)
    if prediction is not None:
        checks = judge(prediction, observed)
    else:
        checks = (finished_check(observed), slo_check(observed, _deployed(run, env).slo.availability))
        result = dataclasses.replace(result, note="the experiment carries no prediction (extensions.simlab."
                                     "prediction, written by `simlab chaos generate`): the deploy was held to ending and to its SLO")
    missed = [c for c in checks if not c.passed]
    (out / "prediction.json").write_text(json.dumps({
        "prediction": prediction.to_dict() if prediction else None, "observed": observed,
        "checks": [dataclasses.asdict(c) | {"passed": c.passed} for c in checks]}, indent=2, default=str) + "\n")
    pair = _pair_report(scenario, run, out, env) if report and scenario is not None else None
    verdict, reason = result.verdict, result.reason
    if missed:
        said = "; ".join(c.line() for c in missed)
        verdict, reason = (MISSED, said) if result.passed else (verdict, f"{reason}; it also missed the "
                                                                           f"prediction: {said}")
    return dataclasses.replace(result, verdict=verdict, reason=reason, checks=checks, prediction=prediction,
                               observed=observed, report=pair)


def _arguments(run: dict, env: dict) -> dict:
    """The deploy action's arguments as chaos passed them (`${...}` filled in from the run's environment)."""
    from simlab.chaos.generate import substitute

    arguments = ((run.get("activity") or {}).get("provider") or {}).get("arguments") or {}
    return {k: substitute(v, env) if isinstance(v, str) else v for k, v in arguments.items()}


def _deployed(run: dict, env: dict) -> Scenario:
    """The scenario the journal's deploy ran (its staging form)."""
    from simlab.scenario import load_scenario
    from simlab.scenario.loading import staging_scenario

    return staging_scenario(load_scenario(Path(_arguments(run, env).get("scenario", ""))))


def _pair_report(scenario: Scenario, run: dict, out: Path, env: dict) -> Path | None:
    """The prediction (one run, the scenario's seed) next to the deploy's own results, in OUT/report/."""
    deployed = _arguments(run, env).get("out")
    if not deployed or not (Path(deployed) / "timeline.csv").is_file():
        return None  # the deploy wrote no results to compare with
    from simlab.report import write_pair_report
    from simlab.simulation import simulate

    simulate(scenario, seed=scenario.seed, engine="request").write(out / "predicted")
    return write_pair_report(out / "predicted", deployed, out_root=out, name="report")


def _stop(state_dir: Path) -> None:
    from simlab.staging.supervisor import Staging

    Staging.open(state_dir).down()


def _experiment_file(scenario: Scenario, out: Path, given: str | Path | None, prediction=None) -> Path:
    """OUT/experiment.json generated from the scenario (its deploy reading OUT/scenario.json and writing
    OUT/deploy/), or the given file checked to exist and parse."""
    if given is None:
        from simlab.chaos.generate import generated_experiment

        (out / "scenario.json").write_text(scenario.model_dump_json(indent=2) + "\n")
        path = out / "experiment.json"
        experiment = generated_experiment(scenario, "scenario.json", str(out), str(out), prediction)
        path.write_text(json.dumps(experiment, indent=2) + "\n")
        return path
    path = Path(given).resolve()
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise ScenarioError(f"--experiment: expected a .json, .yaml or .yml file (what chaos reads), found {given}")
    if not path.is_file():
        raise ScenarioError(f"--experiment: expected an experiment file, found no file at {given}")
    _parse_experiment(path, given)
    return path  # what it says is checked by `chaos validate` (see _check_experiment)


def _parse_experiment(path: Path, given: str | Path) -> None:
    """The experiment file parses as JSON or YAML into a mapping: a malformed one is one line naming where.

    Read as a scenario is (size-bounded UTF-8, YAML aliases and nesting bounded), so `chaos validate`
    only ever sees a file it can parse and never prints a parser's traceback.
    """
    from simlab.scenario import safe_yaml
    from simlab.scenario.files import read_scenario_text

    text = read_scenario_text(Path(given), "experiment")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            where = f"{given}:{exc.lineno}:{exc.colno}" if hasattr(exc, "lineno") else str(given)
            raise ScenarioError(f"{where}: expected JSON: {getattr(exc, 'msg', exc)}") from None
    else:
        data, _ = safe_yaml.load(text, str(given))
    if not isinstance(data, dict):
        found = {list: "a list", str: "a string", type(None): "nothing"}.get(type(data), type(data).__name__)
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ScenarioError(f"{given}: expected a {kind} object of experiment keys (title, description, method), "
                            f"found {found}")


def running_staging(scenario: Scenario, state_dir: Path) -> tuple:
    """(the staging in `state_dir`, False, what was repaired) or (one of `scenario` started there, True, why).

    A staging the user started is never replaced: instances found down are restarted in place; one whose
    HAProxy or Prometheus is gone, or that runs another fleet size, is refused (StagingError). A state
    directory where nothing runs any more (a crash, a reboot) gets a fresh staging.
    """
    from simlab.staging import health
    from simlab.staging.state import StateFileError
    from simlab.staging.supervisor import Staging

    try:
        st = Staging.open(state_dir)
    except StateFileError:
        raise
    except StagingError:
        return Staging.up(scenario, state_dir), True, []
    if health.nothing_runs(st):
        return Staging.up(scenario, state_dir), True, [
            f"nothing of the staging in {st.dir} ran any more (a crashed simlab or a reboot left its state file): "
            "started one for this run"]
    health.refuse_if_damaged(st, state_dir)
    if st.scenario is None or st.scenario.fleet.instances != scenario.fleet.instances:
        have = "an unreadable scenario" if st.scenario is None else f"{st.scenario.fleet.instances} instances"
        raise StagingError(f"the staging in {st.dir} runs {have}; the scenario wants {scenario.fleet.instances} "
                           f"(run `simlab staging down --dir {state_dir}` first, or give another --dir)")
    return st, False, [f"{line} before the run" for line in health.repair(st, timeout=st.startup_limit())]


def _check_experiment(path: Path, out: Path, env: dict) -> None:
    """`chaos validate` before anything is injected: a bad experiment is bad input, not a failed run."""
    argv = [str(chaos_command()), "--no-version-check", "--log-file", str(out / "chaos-validate.log"),
            "validate", str(path)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ScenarioError(f"{path}: not a valid Chaos Toolkit experiment: {_reason(done.stdout + done.stderr)}")


def _reason(output: str) -> str:
    """The one line of chaos's output that says why: its last ERROR message, else its last line."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [re.sub(r"^\[[^]]*\bERROR\]\s*", "", line) for line in lines if re.match(r"^\[[^]]*\bERROR\]", line)]
    return (errors or lines or ["chaos validate failed and said nothing"])[-1]


def run_chaos(path: Path, out: Path, journal: Path, env: dict, state_dir: Path) -> int:
    """`chaos run` (rollbacks always) of `path` writing `journal`; chaos's exit code."""
    argv = [
        str(chaos_command()), "--no-version-check", "--log-file", str(out / "chaos.log"),
        "run", "--rollback-strategy", "always", "--journal-path", str(journal), str(path),
    ]
    with open(out / "chaos-console.log", "w") as console:
        proc = subprocess.Popen(argv, env=env, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            return proc.wait()
        except BaseException:
            _interrupt(proc, state_dir)
            raise


def _interrupt(proc: subprocess.Popen, state_dir: Path) -> None:
    """Ctrl-C chaos once so it runs its rollbacks; if it does not finish in time, kill it and restore the fleet."""
    from simlab.staging.supervisor import Staging

    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=INTERRUPT_GRACE)
        return
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:  # a second Ctrl-C: the user will not wait for the rollbacks
        pass
    proc.kill()
    proc.wait()
    try:
        Staging.open(state_dir).restore()
    except StagingError:
        pass  # no staging left to restore
