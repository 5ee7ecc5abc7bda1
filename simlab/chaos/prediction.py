"""The simulation's prediction of a staging run, and a staging run's summary checked against it.

`predict` simulates N replications of the staging form of a scenario
(request engine, run seeds from the scenario's seed) and keeps, per figure,
the interval the runs spanned. If the simulation is right, a new run falls
between the smallest and the largest of N exchangeable runs with probability
(N − 1) / (N + 1) (90% for 20 runs); the scenario's `validate:` block widens
each interval by a tolerance for what the simulation does not model (an
instance's process start, Locust's and HAProxy's share of latency). `judge`
says, figure by figure, whether the observation lies inside, and by how much
it missed when not.

A Prediction is plain data (`to_dict`/`from_dict`), so a generated experiment
carries it under `extensions` and the suite can judge a run of that file.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter

from simlab.scenario import Scenario
from simlab.scenario.validation import CountTolerance, TimeTolerance, Validation


@dataclasses.dataclass(frozen=True)
class Figure:
    """A number of a run's summary that is compared: `name` as in the `validate:` block, `key` in the summary."""

    name: str
    key: str
    label: str
    unit: str  # requests, s or ms
    scale: float = 1.0  # tolerance seconds to the figure's unit


FIGURES = (
    Figure("bad", "bad", "bad requests", "requests"),
    Figure("detected_at", "detected_at_s", "detection time", "s"),
    Figure("rollback_done_at", "rollback_done_at_s", "rollback time", "s"),
    Figure("latency_p99", "latency_p99_ms", "p99 latency", "ms", scale=1000.0),
)
"""With `outcome`, what validate compares; a time is absent from a run that never detected or rolled back."""


@dataclasses.dataclass(frozen=True)
class Interval:
    """What N runs predicted for one figure: the values' range over the runs that had one."""

    low: float | None
    high: float | None
    present: int  # runs with a value (a detection, a rollback, a successful request)
    runs: int


@dataclasses.dataclass(frozen=True)
class Prediction:
    scenario: str
    fingerprint: str
    seed: int
    runs: int
    outcomes: dict[str, int]
    figures: dict[str, Interval]
    validation: Validation

    @property
    def coverage(self) -> float:
        """Chance a new run of a right simulation lies within the runs' range, tolerance aside."""
        return (self.runs - 1) / (self.runs + 1)

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario, "fingerprint": self.fingerprint, "seed": self.seed, "runs": self.runs,
            "engine": "request", "coverage": round(self.coverage, 4), "outcomes": dict(self.outcomes),
            "figures": {name: dataclasses.asdict(i) for name, i in self.figures.items()},
            "validate": self.validation.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Prediction":
        from simlab.errors import ScenarioError

        try:
            return cls(data["scenario"], data["fingerprint"], int(data["seed"]), int(data["runs"]),
                       {str(k): int(v) for k, v in data["outcomes"].items()},
                       {name: Interval(**i) for name, i in data["figures"].items()},
                       Validation.model_validate(data.get("validate") or {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ScenarioError(f"extensions.simlab.prediction: expected what `simlab chaos generate` writes, "
                                f"found {type(exc).__name__}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Check:
    """One figure judged: the observation, the prediction, the allowed range, and the miss in words (or None)."""

    figure: str
    label: str
    observed: str
    predicted: str
    allowed: str
    miss: str | None

    @property
    def passed(self) -> bool:
        return self.miss is None

    def line(self) -> str:
        said = f"{self.figure}: observed {self.observed}"
        if self.predicted != "-":
            said += f", predicted {self.predicted}"
        if self.allowed:
            said += f" (allowed {self.allowed})"
        return said + (f": {self.miss}" if self.miss else "")


def predict(scenario: Scenario, runs: int | None = None) -> Prediction:
    """`runs` (default the `validate:` block's) request-engine replications of `scenario`, run here in turn.

    In this process, not a pool: for the few short runs a staging scenario needs, starting workers costs more
    than the runs (6-7 s against 0.6 s for 20 runs of 16 s at 40 rps on 2 cores).
    """
    from simlab.experiment.replication import replicate

    validation = scenario.validation or Validation()
    runs = runs if runs is not None else validation.runs
    frame = replicate(scenario, runs=runs, seed=scenario.seed, engine="request", executor="serial")
    figures = {}
    for f in FIGURES:
        values = [float(v) for v in frame[f.key] if v is not None and not math.isnan(float(v))]
        figures[f.name] = Interval(min(values) if values else None, max(values) if values else None,
                                   len(values), runs)
    return Prediction(scenario.name, scenario.fingerprint(), scenario.seed, runs,
                      dict(Counter(str(o) for o in frame["outcome"])), figures, validation)


def judge(prediction: Prediction, observed: dict) -> tuple[Check, ...]:
    """Every figure of `observed` (a run's summary) against the prediction, outcome first."""
    v = prediction.validation
    checks = [_outcome(prediction, observed.get("outcome"), v.min_share)]
    for f in FIGURES:
        checks.append(_figure(f, prediction.figures[f.name], observed.get(f.key), getattr(v.tolerance, f.name),
                              v.min_share))
    return tuple(checks)


def finished_check(observed: dict) -> Check:
    """A deploy with no prediction to meet must at least have ended: promoted, or rolled back."""
    outcome = observed.get("outcome")
    miss = None
    if outcome not in ("promoted", "rolled_back"):
        miss = "the deploy neither promoted nor rolled back the release in its run: it judged nothing of it"
    return Check("outcome", "outcome", str(outcome), "-", "promoted or rolled_back", miss)


def slo_check(observed: dict, availability: float) -> Check:
    """A deploy with no prediction to meet: its bad requests within the availability target over the run."""
    budget = 1.0 - availability / 100.0
    bad, requests = observed.get("bad") or 0, observed.get("requests") or 0
    share = bad / requests if requests else 0.0
    miss = None if share <= budget else f"{share - budget:.2%} over the error budget"
    return Check("slo", "bad requests within the SLO", f"{share:.2%} ({bad:,} of {requests:,})", "-",
                 f"at most {budget:.2%} (availability {availability:g}%)", miss)


def _outcome(p: Prediction, observed, min_share: float) -> Check:
    n = p.outcomes.get(str(observed), 0)
    predicted = ", ".join(f"{o} in {k} of {p.runs}" for o, k in sorted(p.outcomes.items(), key=lambda x: -x[1]))
    miss = None
    if n < min_share * p.runs:
        miss = (f"{observed} happened in {n} of {p.runs} simulated runs, fewer than {min_share:.0%} "
                f"({math.ceil(min_share * p.runs - 1e-9)})")
    return Check("outcome", "outcome", str(observed), predicted, "", miss)


def _figure(f: Figure, i: Interval, observed, tol: CountTolerance | TimeTolerance, min_share: float) -> Check:
    absent = i.runs - i.present
    predicted = "none" if i.present == 0 else (
        _range(i.low, i.high, f) + (f" in {i.present} of {i.runs} runs" if absent else ""))
    if observed is None:
        miss = None
        if absent < min_share * i.runs:
            miss = f"staging had none; the simulation had one in {i.present} of {i.runs} runs"
        return Check(f.name, f.label, "none", predicted, "", miss)
    value = float(observed)
    if i.present < min_share * i.runs:
        return Check(f.name, f.label, _num(value, f), predicted, "",
                     f"staging had one; the simulation had none in {absent} of {i.runs} runs")
    margin = tol.absolute * f.scale
    low = max(0.0, i.low - margin - tol.relative * abs(i.low))
    high = i.high + margin + tol.relative * abs(i.high)
    allowed = _range(low, high, f)
    miss = None
    if value < low:
        miss = f"{_num(low - value, f)} below the allowed range"
    elif value > high:
        miss = f"{_num(value - high, f)} above the allowed range"
    return Check(f.name, f.label, _num(value, f), predicted, allowed, miss)


def _range(low: float, high: float, f: Figure) -> str:
    unit = "" if f.unit == "requests" else f" {f.unit}"
    return f"{_num(low, f).removesuffix(unit)}–{_num(high, f)}"


def _num(x: float, f: Figure) -> str:
    if f.unit == "requests":
        return f"{x:,.0f}"
    return f"{x:.1f} {f.unit}" if f.unit == "s" else f"{x:.0f} {f.unit}"
