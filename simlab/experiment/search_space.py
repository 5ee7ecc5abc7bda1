"""The knobs `simlab optimize` may turn: a search file of dotted scenario paths and their ranges, validated once.

```yaml
knobs:
  strategy.steps: {count: [1, 3], weight: [5, 50], bake: [1m, 10m]}
  analysis.failure_limit: {int: [1, 4]}
  analysis.metrics[0].max: {float: [0.005, 0.05], log: true}
  analysis.interval: {duration: [15s, 2m], step: 15s}
  strategy.kind: {choice: [canary, blue_green]}
  strategy.keep_old: {duration: [0s, 30m], step: 1m}
```

A knob is `int`, `float` or `duration` over `[low, high]` (with `step` or `log`), or a `choice` of values;
`strategy.steps` takes `count`, `weight` and `bake` (each a range or a knob) and builds the canary's steps
before its final 100%. Under a `strategy.kind` knob, a `strategy.X` knob is turned only for the kinds that
have X. `simlab.experiment.search_file` reads a file into a `SearchSpace`, one line per bad entry.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from simlab.bridges.manifests import format_duration
from simlab.experiment.overrides import apply_overrides, parse_path
from simlab.scenario import Scenario
from simlab.scenario.strategy import default_strategy


@dataclass(frozen=True)
class Knob:
    """One dimension: a name (its Optuna parameter), a kind, a range or choices, and how a draw becomes a value."""

    name: str
    kind: str  # int | float | duration | choice
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """Draw from an Optuna trial (define-by-run) and return the value as a scenario file writes it."""
        if self.kind == "choice":
            label = trial.suggest_categorical(self.name, [choice_label(c) for c in self.choices])
            return self.choices[[choice_label(c) for c in self.choices].index(label)]
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        if self.kind == "duration":
            return format_duration(round(value) if self.log and value >= 10 else round(value, 3))
        return value if self.step is not None else float(f"{value:.3g}")  # a policy reads 0.0124, not 0.012408…

    def contains(self, value: Any) -> bool:
        """Whether a scenario's current value lies in this knob's space (to start the study from it)."""
        if self.kind == "choice":
            return any(choice_label(c) == choice_label(value) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        if self.kind == "int" and value != int(value):
            return False
        return self.step is None or abs((value - self.low) / self.step - round((value - self.low) / self.step)) < 1e-9

    def param(self, value: Any) -> Any:
        """A scenario value as this knob's Optuna parameter (the inverse of `suggest`)."""
        return choice_label(value) if self.kind == "choice" else (int(value) if self.kind == "int" else float(value))


@dataclass(frozen=True)
class Entry:
    """One line of the search file: a dotted path and its knob (or, for `strategy.steps`, three of them)."""

    path: str
    knob: Knob | None = None
    steps: tuple[Knob, Knob, Knob] | None = None  # count, weight, bake
    line: int | None = None

    @property
    def strategy_field(self) -> str | None:
        parts = parse_path(self.path)
        return str(parts[1]) if parts[0] == "strategy" and len(parts) > 1 and parts[1] != "kind" else None


@dataclass(frozen=True)
class SearchSpace:
    """The knobs of a search file, in file order; `draw(trial)` turns an Optuna trial into scenario overrides."""

    entries: tuple[Entry, ...]
    source: str

    @property
    def kind_entry(self) -> Entry | None:
        return next((e for e in self.entries if e.path == "strategy.kind"), None)

    def kinds(self, base: Scenario) -> tuple[str, ...]:
        entry = self.kind_entry
        return tuple(entry.knob.choices) if entry is not None else (base.strategy.kind,)

    def draw(self, trial: Any, base: Scenario) -> tuple[str, dict[str, Any]]:
        """(strategy kind, {dotted path: value}) for one trial; knobs the drawn kind lacks are not drawn."""
        kind = self.kind_entry.knob.suggest(trial) if self.kind_entry is not None else base.strategy.kind
        fields = strategy_fields(kind)
        overrides: dict[str, Any] = {}
        for entry in self.entries:
            if entry.path == "strategy.kind" or (entry.strategy_field and entry.strategy_field not in fields):
                continue
            overrides[entry.path] = _draw_steps(entry.steps, trial) if entry.steps else entry.knob.suggest(trial)
        return kind, overrides

    def scenario(self, base: Scenario, kind: str, overrides: dict[str, Any]) -> Scenario:
        """The base with the drawn strategy kind (its defaults) and overrides, validated again."""
        return apply_overrides(base.with_strategy(kind), overrides, source=f"{self.source}: a drawn policy")

    def start(self, base: Scenario) -> dict[str, Any]:
        """Optuna parameters of the base scenario's own policy, for the knobs whose space holds it."""
        data = base.model_dump(mode="json")
        params: dict[str, Any] = {}
        kind = base.strategy.kind
        if self.kind_entry is not None:
            if not self.kind_entry.knob.contains(kind):
                return {}
            params[self.kind_entry.knob.name] = self.kind_entry.knob.param(kind)
        for entry in self.entries:
            if entry.path == "strategy.kind" or (entry.strategy_field and entry.strategy_field not in strategy_fields(kind)):
                continue
            value = _read(data, parse_path(entry.path))
            if entry.steps is not None:
                params.update(_steps_params(entry.steps, value))
            elif entry.knob.contains(value):
                params[entry.knob.name] = entry.knob.param(value)
        return params


def choice_label(value: Any) -> Any:
    """A choice as Optuna stores it: scalars as they are, lists and mappings as JSON text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value, sort_keys=True)


def strategy_fields(kind: str) -> set[str]:
    return set(type(default_strategy(kind)).model_fields)


def _read(data: Any, path: tuple) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _draw_steps(steps: tuple[Knob, Knob, Knob], trial: Any) -> list[dict[str, Any]]:
    """The canary's steps: `count` drawn weights, sorted (one drawn twice is one step), each with its bake,
    then the final step to 100%."""
    count, weight, bake = steps
    n = count.suggest(trial)
    drawn = [(weight.suggest(_Indexed(trial, i)), bake.suggest(_Indexed(trial, i))) for i in range(n)]
    out: dict[float, Any] = {}
    for w, b in sorted(drawn, key=lambda pair: pair[0]):
        out.setdefault(w, b)
    return [{"weight": w, "bake": b} for w, b in out.items()] + [{"weight": 100}]


def _steps_params(steps: tuple[Knob, Knob, Knob], value: Any) -> dict[str, Any]:
    count, weight, bake = steps
    if not isinstance(value, list) or not value or value[-1].get("weight") != 100 or value[-1].get("bake"):
        return {}
    body = value[:-1]
    params = {}
    if count.contains(len(body)):
        params[count.name] = count.param(len(body))
    for i, step in enumerate(body):
        for knob, key in ((weight, "weight"), (bake, "bake")):
            if knob.contains(step[key]):
                params[_Indexed.name(knob.name, i)] = knob.param(step[key])
    return params


class _Indexed:
    """A trial whose parameter names carry a step index: strategy.steps.weight -> strategy.steps[1].weight."""

    def __init__(self, trial: Any, index: int):
        self.trial, self.index = trial, index

    @staticmethod
    def name(name: str, index: int) -> str:
        head, _, tail = name.rpartition(".")
        return f"{head}[{index}].{tail}"

    def __getattr__(self, attr: str) -> Callable:
        method = getattr(self.trial, attr)
        return lambda name, *args, **kw: method(self.name(name, self.index), *args, **kw)
