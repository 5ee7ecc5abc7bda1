"""`simlab validate`: run a scenario's experiment with the real `chaos` CLI and judge it by its journal.

`chaos run` exits 0 when the steady state was not met before the method (the
method is then skipped) and when a method action raised, so its exit code
cannot gate anything. The journal can: an experiment passed only if its
status is "completed", it did not deviate, and the steady state was met
before the method.

`chaos` runs as a subprocess of the same Python environment, in its own
session (a Ctrl-C reaches simlab, which interrupts chaos once so that it
still runs its rollbacks), and never in simlab's process: chaoslib's signal
handling wants the main thread and Locust must never share a process with it.
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

from simlab.errors import ScenarioError, StagingError
from simlab.scenario import Scenario

PASSED = "passed"
DEVIATED = "deviated"
NOT_MET = "steady state not met"
FAILED = "failed"

INTERRUPT_GRACE = 60.0
"""Seconds chaos gets after a Ctrl-C to run its rollbacks before it is killed and simlab restores the fleet."""


@dataclasses.dataclass(frozen=True)
class ProbeOutcome:
    """A hypothesis probe: its tolerance and what it returned before and after the method (None: not run)."""

    name: str
    tolerance: object
    before: object = None
    after: object = None
    before_met: bool | None = None
    after_met: bool | None = None


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """The verdict on one experiment run, read from its journal."""

    verdict: str  # PASSED, DEVIATED, NOT_MET or FAILED
    reason: str
    status: str | None  # the journal's own status: completed, failed, aborted, interrupted
    probes: tuple[ProbeOutcome, ...]
    journal: Path
    experiment: Path
    chaos_exit: int | None = None  # chaos's own exit code: 0 also when the steady state was not met before

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED


def chaos_command() -> Path:
    """The `chaos` of this Python environment (next to sys.executable), so it imports this simlab."""
    path = Path(sys.executable).parent / "chaos"
    if not path.exists():
        raise StagingError(f"no `chaos` next to {sys.executable}: install the staging extra "
                           f"(pip install -e '.[staging]', which brings chaostoolkit)")
    return path


def validate(scenario: Scenario, state_dir: str | Path | None = None, out: str | Path = Path("reports/validate"),
             experiment: str | Path | None = None) -> ValidationResult:
    """Run `scenario`'s experiment (or the given experiment file) against a staging; judge its journal.

    The staging in `state_dir` (default OUT/state) is used if it runs; if not,
    one of `scenario` is started there and stopped afterwards, also on errors
    and interrupts.
    """
    from simlab.staging.supervisor import Staging

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    path = _experiment_file(scenario, out, experiment)
    state_dir = (Path(state_dir) if state_dir is not None else out / "state").resolve()
    env = {**os.environ, "SIMLAB_STATE_DIR": str(state_dir)}
    _check_experiment(path, out, env)
    st, owned = _staging(scenario, state_dir)
    try:
        journal = out / "journal.json"
        journal.unlink(missing_ok=True)
        code = _run_chaos(path, out, journal, env, st.dir)
    finally:
        if owned:
            Staging.open(st.dir).down()
    return dataclasses.replace(read_journal(journal, path), chaos_exit=code)


def _experiment_file(scenario: Scenario, out: Path, given: str | Path | None) -> Path:
    """OUT/experiment.json generated from the scenario, or the given file checked to exist and parse."""
    if given is None:
        from simlab.chaos.experiment import experiment_for

        path = out / "experiment.json"
        path.write_text(json.dumps(experiment_for(scenario), indent=2) + "\n")
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


def _staging(scenario: Scenario, state_dir: Path):
    """(the running staging in `state_dir`, False), or (one of `scenario` started there, True)."""
    from simlab.staging.supervisor import Staging

    try:
        st = Staging.open(state_dir)
        if not st.running():
            raise StagingError("not running")
    except StagingError:
        return Staging.up(scenario, state_dir), True
    if st.scenario is None or st.scenario.fleet.instances != scenario.fleet.instances:
        have = "an unreadable scenario" if st.scenario is None else f"{st.scenario.fleet.instances} instances"
        raise StagingError(f"the staging in {st.dir} runs {have}; the scenario wants {scenario.fleet.instances} "
                           f"(run `simlab staging down --dir {state_dir}` first, or give another --dir)")
    return st, False


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


def _run_chaos(path: Path, out: Path, journal: Path, env: dict, state_dir: Path) -> int:
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


def read_journal(journal: str | Path, experiment: str | Path | None = None) -> ValidationResult:
    """The verdict of a chaos journal (the CI-gate rule in the module docstring)."""
    journal = Path(journal)
    try:
        data = json.loads(journal.read_text())
    except FileNotFoundError:
        raise StagingError(f"chaos wrote no journal ({journal}); see {journal.parent / 'chaos.log'}") from None
    except ValueError as exc:
        raise StagingError(f"{journal}: unreadable journal ({exc})") from None
    status = data.get("status")
    before = (data.get("steady_states") or {}).get("before")
    after = (data.get("steady_states") or {}).get("after")
    probes = _probe_outcomes(data.get("experiment", {}), before, after)
    met_before = bool(before and before.get("steady_state_met") is True)
    if status == "completed" and not data.get("deviated") and met_before:
        verdict, reason = PASSED, "the steady state held before and after the method"
    elif not met_before:
        verdict = NOT_MET
        reason = ("the hypothesis failed before the method, which chaos then skipped: " + _why(before)
                  if before else "the experiment has no hypothesis probes, so nothing was checked before the method")
    elif data.get("deviated"):
        verdict, reason = DEVIATED, "the hypothesis failed after the method: " + _why(after)
    else:
        verdict, reason = FAILED, f"the run ended {status}" + (f" ({_why(after)})" if after else "")
    path = Path(experiment) if experiment else journal.parent / "experiment.json"
    return ValidationResult(verdict, reason, status, probes, journal, path)


def _probe_outcomes(experiment: dict, before: dict | None, after: dict | None) -> tuple[ProbeOutcome, ...]:
    declared = (experiment.get("steady-state-hypothesis") or {}).get("probes", [])
    runs = {}
    for when, state in (("before", before), ("after", after)):
        for run in (state or {}).get("probes", []):
            runs[(when, run["activity"]["name"])] = run
    rows = []
    for probe in declared:
        b, a = runs.get(("before", probe["name"])), runs.get(("after", probe["name"]))
        rows.append(ProbeOutcome(
            probe["name"], probe.get("tolerance"),
            _output(b), _output(a), None if b is None else b.get("tolerance_met"),
            None if a is None else a.get("tolerance_met"),
        ))
    return tuple(rows)


def _output(run: dict | None):
    """What a probe returned, or `error: ...` with the last line of what it raised."""
    if run is None:
        return None
    if run.get("status") == "succeeded":
        return run.get("output")
    return f"error: {(run.get('exception') or ['?'])[-1].strip()}"


def _why(state: dict) -> str:
    """The probe that failed a hypothesis: its name, what it returned and what was expected."""
    for run in state.get("probes", []):
        if run.get("tolerance_met") is False:
            name = run["activity"]["name"]
            if run.get("status") != "succeeded":
                return f"probe {name} failed: {_output(run)[len('error: '):]}"
            return f"probe {name} returned {run.get('output')!r}, expected {run['activity'].get('tolerance')!r}"
    return "no probe reported why"
