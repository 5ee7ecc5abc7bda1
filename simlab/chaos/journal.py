"""What a Chaos Toolkit journal says: the verdict by the CI-gate rule, each hypothesis probe, and a deploy's summary.

`chaos run` exits 0 when the steady state was not met before the method (the
method is then skipped) and when a method action raised, so its exit code
cannot gate anything. The journal can: an experiment passed only if its
status is "completed", it did not deviate, and the steady state was met
before the method. A run the blast-radius control stopped says so here, with
the figure that passed its limit.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from simlab.errors import StagingError

PASSED = "passed"
DEVIATED = "deviated"
NOT_MET = "steady state not met"
FAILED = "failed"
MISSED = "missed the prediction"

DEPLOY = ("simlab.chaos.actions", "deploy")
"""The action whose output (a run's summary) is the observation judged against the prediction."""


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
    """The verdict on one experiment run, read from its journal (and, with a deploy, judged against a prediction)."""

    verdict: str  # PASSED, DEVIATED, NOT_MET, FAILED or MISSED
    reason: str
    status: str | None  # the journal's own status: completed, failed, aborted, interrupted
    probes: tuple[ProbeOutcome, ...]
    journal: Path
    experiment: Path
    chaos_exit: int | None = None  # chaos's own exit code: 0 also when the steady state was not met before
    checks: tuple = ()  # prediction.Check per figure, when a deploy was observed and a prediction made
    prediction: object = None  # the prediction.Prediction judged against
    observed: dict | None = None  # the deploy's summary, from the journal
    note: str | None = None  # why the prediction was not checked, when it was not
    report: Path | None = None  # the prediction-next-to-observation report's directory
    staging_notes: tuple[str, ...] = ()  # what was found down in the user's staging and put back, or why one started

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED


def load_journal(journal: str | Path) -> dict:
    journal = Path(journal)
    try:
        return json.loads(journal.read_text())
    except FileNotFoundError:
        raise StagingError(f"chaos wrote no journal ({journal}); see {journal.parent / 'chaos.log'}") from None
    except ValueError as exc:
        raise StagingError(f"{journal}: unreadable journal ({exc})") from None


def read_journal(journal: str | Path, experiment: str | Path | None = None) -> ValidationResult:
    """The verdict of a chaos journal (the CI-gate rule in the module docstring)."""
    journal = Path(journal)
    data = load_journal(journal)
    status = data.get("status")
    before = (data.get("steady_states") or {}).get("before")
    after = (data.get("steady_states") or {}).get("after")
    probes = _probe_outcomes(data.get("experiment", {}), before, after)
    met_before = bool(before and before.get("steady_state_met") is True)
    stopped = blast_radius_stop(data)
    if status == "completed" and not data.get("deviated") and met_before:
        verdict, reason = PASSED, "the steady state held before and after the method"
    elif stopped:
        verdict, reason = FAILED, f"the run ended {status}: the blast-radius control stopped it: {stopped}"
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


def deploy_run(data: dict) -> dict | None:
    """The journal's last run of the deploy action (method activities, background ones included), or None."""
    runs = [r for r in data.get("run") or [] if _provider(r) == DEPLOY]
    return runs[-1] if runs else None


def blast_radius_stop(data: dict) -> str | None:
    """What the blast-radius control stopped the run for, in words, if it did."""
    for ext in data.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == "simlab-blast-radius" and ext.get("interrupted"):
            return str(ext.get("reason"))
    return None


def simlab_extension(experiment: dict) -> dict:
    """The experiment's `simlab` extension (scenario, fingerprint, schedule, prediction), or {}."""
    for ext in experiment.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == "simlab":
            return ext
    return {}


def _provider(run: dict) -> tuple[str | None, str | None]:
    provider = (run.get("activity") or {}).get("provider") or {}
    return provider.get("module"), provider.get("func")


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
            output(b), output(a), None if b is None else b.get("tolerance_met"),
            None if a is None else a.get("tolerance_met"),
        ))
    return tuple(rows)


def output(run: dict | None):
    """What an activity returned, or `error: ...` with the last line of what it raised."""
    if run is None:
        return None
    if run.get("status") == "succeeded":
        return run.get("output")
    return f"error: {(run.get('exception') or ['?'])[-1].strip()}"


def _why(state: dict) -> str:
    """The probe that failed a hypothesis: its name, what it returned, what was expected, and by how much."""
    for run in state.get("probes", []):
        if run.get("tolerance_met") is False:
            name = run["activity"]["name"]
            if run.get("status") != "succeeded":
                return f"probe {name} failed: {output(run)[len('error: '):]}"
            value, tolerance = run.get("output"), run["activity"].get("tolerance")
            return f"probe {name} returned {value!r}, expected {tolerance!r}" + _by_how_much(value, tolerance)
    return "no probe reported why"


def _by_how_much(value, tolerance) -> str:
    """` (0.02 below)` for a number outside a [low, high] range or off a number; empty otherwise."""
    number = (int, float)
    if isinstance(value, bool) or not isinstance(value, number):
        return ""
    if isinstance(tolerance, list) and len(tolerance) == 2 and all(isinstance(t, number) for t in tolerance):
        low, high = tolerance
        if value < low:
            return f" ({low - value:.4g} below)"
        if value > high:
            return f" ({value - high:.4g} above)"
        return ""
    if isinstance(tolerance, number) and not isinstance(tolerance, bool) and value != tolerance:
        return f" ({abs(value - tolerance):.4g} {'below' if value < tolerance else 'above'})"
    return ""
