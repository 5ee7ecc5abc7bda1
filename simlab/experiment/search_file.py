"""Reading a search file: every entry checked against the scenario, one line per bad entry naming the file,
its line, the knob, the value and what was expected (simlab.experiment.search_space has the format)."""
from __future__ import annotations

import difflib
import json
import math
from pathlib import Path
from typing import Any

import yaml

from simlab.bridges.manifests import format_duration
from simlab.errors import ScenarioError
from simlab.experiment.overrides import apply_overrides, parse_path
from simlab.experiment.search_space import Entry, Knob, SearchSpace, choice_label, strategy_fields
from simlab.scenario import STRATEGY_KINDS, Scenario
from simlab.units import parse_duration

KINDS = ("int", "float", "duration", "choice")
OPTIONS = {"int": ("step", "log"), "float": ("step", "log"), "duration": ("step", "log"), "choice": ()}
STEPS = ("count", "weight", "bake")
EXAMPLE = {"int": "{int: [1, 4]}", "float": "{float: [0.005, 0.05], log: true}",
           "duration": "{duration: [30s, 5m], step: 30s}", "choice": "{choice: [canary, blue_green]}",
           "steps": "{count: [1, 3], weight: [5, 50], bake: [1m, 10m]}"}


class Bad(Exception):
    """One bad entry: where (a key path inside the search file) and the message (expected ..., found ...)."""

    def __init__(self, where: tuple, message: str):
        super().__init__(message)
        self.where, self.message = where, message


def load_search(search: str | Path | dict, base: Scenario) -> SearchSpace:
    """The search space of a YAML file (or a parsed mapping) for `base`; ScenarioError, one line per bad entry."""
    from simlab.scenario.files import read_scenario_text
    from simlab.scenario.safe_yaml import load as load_yaml

    lines: dict[tuple, int] = {}
    if isinstance(search, dict):
        source, data = "search", search
    else:
        source = str(search)
        data, node = load_yaml(read_scenario_text(Path(search), what="search"), source)
        if node is not None:
            _index(node, (), lines, source)
    problems: list[str] = []

    def fail(bad: Bad) -> None:
        line = next((lines[bad.where[:n]] for n in range(len(bad.where), 0, -1) if bad.where[:n] in lines), None)
        field = ".".join(str(p) for p in bad.where) or "(top level)"
        problems.append(f"{source}{f':{line}' if line else ''}: {field}: {bad.message}")

    if not isinstance(data, dict) or "knobs" not in data:
        found = type(data).__name__ if not isinstance(data, dict) else "keys " + ", ".join(map(str, data)) or "none"
        raise ScenarioError(f"{source}: expected a mapping with `knobs:` (dotted scenario paths and their ranges, "
                            f"e.g. analysis.failure_limit: {EXAMPLE['int']}), found {found}")
    for key in data:
        if key not in ("knobs", "description"):
            fail(Bad((key,), f"unknown key; expected knobs (and description), found {key!r}"))
    knobs = data["knobs"]
    if not isinstance(knobs, dict) or not knobs:
        fail(Bad(("knobs",), f"expected a mapping of dotted scenario paths to ranges, found {knobs!r}"))
        knobs = {}
    entries = []
    for path, spec in knobs.items():
        try:
            entries.append(_entry(str(path), spec, lines.get(("knobs", path))))
        except Bad as bad:
            fail(Bad(("knobs", path, *bad.where), bad.message))
    space = SearchSpace(tuple(entries), source)
    for entry in entries:  # with every entry read, the strategy kinds a knob must fit are known
        try:
            _fits(entry, space, base)
        except Bad as bad:
            fail(Bad(("knobs", entry.path, *bad.where), bad.message))
    if len(problems) == 1:
        raise ScenarioError(problems[0])
    if problems:
        raise ScenarioError(f"{source}: {len(problems)} bad entries in the search file", problems)
    return space


def _index(node: yaml.Node, path: tuple, lines: dict, source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen:
                field = ".".join(str(p) for p in (*path, key.value))
                raise ScenarioError(f"{source}:{line}: {field}: expected each key once, found {key.value!r} again "
                                    f"(first at line {seen[key.value]})")
            seen[key.value] = line
            lines[path + (key.value,)] = line
            _index(value, path + (key.value,), lines, source)


def _entry(path: str, spec: Any, line: int | None) -> Entry:
    try:
        parse_path(path)
    except ScenarioError:
        raise Bad((), "expected a dotted scenario path such as analysis.failure_limit or strategy.steps[0].bake, "
                      f"found {path!r}") from None
    if path == "strategy.steps" and isinstance(spec, dict) and "count" in spec:
        return Entry(path, steps=_steps(spec), line=line)
    return Entry(path, knob=_knob(path, spec), line=line)


def _knob(name: str, spec: Any, default: str | None = None, where: tuple = ()) -> Knob:
    if isinstance(spec, list) and default is not None:
        spec = {default: spec}
    if not isinstance(spec, dict):
        raise Bad(where, f"expected a knob such as {EXAMPLE['int']} or {EXAMPLE['duration']}, found {spec!r}")
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise Bad(where, f"expected exactly one of {', '.join(KINDS)}, found "
                         f"{', '.join(kinds) if kinds else ', '.join(map(str, spec)) or 'none'}")
    kind = kinds[0]
    for key in spec:
        if key != kind and key not in OPTIONS[kind]:
            close = difflib.get_close_matches(str(key), OPTIONS[kind], n=1)
            raise Bad((*where, key), f"unknown key for a {kind} knob; expected "
                                     f"{' or '.join(OPTIONS[kind]) or 'nothing else'}"
                                     f"{f' (did you mean {close[0]!r}?)' if close else ''}, found {key!r}")
    if kind == "choice":
        return _choice(name, spec["choice"], (*where, "choice"))
    low, high = _range(kind, spec[kind], (*where, kind))
    step, log = spec.get("step"), spec.get("log", False)
    if not isinstance(log, bool):
        raise Bad((*where, "log"), f"expected true or false, found {log!r}")
    if step is not None and log:
        raise Bad((*where, "step"), "expected step or log, not both (Optuna samples a log range continuously)")
    if log and low <= 0:
        raise Bad((*where, kind), f"expected a low above 0 for a log range, found {spec[kind][0]!r}")
    if step is not None:
        step = _number(kind, step, (*where, "step"))
        if step <= 0 or step > high - low or (kind == "int" and step != int(step)):
            raise Bad((*where, "step"), f"expected a step above 0 and at most high - low "
                                        f"{'(a whole number) ' if kind == 'int' else ''}, found {spec['step']!r}")
        if abs((high - low) / step - round((high - low) / step)) > 1e-9:
            raise Bad((*where, "step"), f"expected high - low to be a whole number of steps, found "
                                        f"{spec[kind]!r} in steps of {spec['step']!r}")
    elif kind == "duration" and not log:
        # whole seconds, so a policy reads 2m30s, not 150.2841s
        step = 1.0 if high - low >= 1 and low == int(low) and high == int(high) else None
    return Knob(name, kind, low, high, step, log)


def _number(kind: str, value: Any, where: tuple) -> float:
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise Bad(where, str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Bad(where, f"expected a number, found {value!r}")
    if kind == "int" and value != int(value):
        raise Bad(where, f"expected a whole number, found {value!r}")
    return float(value)


def _range(kind: str, value: Any, where: tuple) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise Bad(where, f"expected [low, high] (e.g. {EXAMPLE[kind]}), found {value!r}")
    low, high = (_number(kind, v, (*where, i)) for i, v in enumerate(value))
    if not low < high:
        raise Bad(where, f"expected low below high, found {value!r}")
    return low, high


def _choice(name: str, values: Any, where: tuple) -> Knob:
    if not isinstance(values, list) or not values:
        raise Bad(where, f"expected a list of at least one value (e.g. {EXAMPLE['choice']}), found {values!r}")
    labels = [choice_label(v) for v in values]
    if len(set(map(json.dumps, labels))) != len(labels):
        raise Bad(where, f"expected each value once, found {values!r}")
    return Knob(name, "choice", choices=tuple(values))


def _steps(spec: dict) -> tuple[Knob, Knob, Knob]:
    for key in spec:
        if key not in STEPS:
            raise Bad((key,), f"unknown key for strategy.steps; expected count, weight and bake, found {key!r}")
    missing = [k for k in STEPS if k not in spec]
    if missing:
        raise Bad((), f"expected count, weight and bake (e.g. {EXAMPLE['steps']}), found no {missing[0]}")
    count = _knob("strategy.steps.count", spec["count"], "int", ("count",))
    weight = _knob("strategy.steps.weight", spec["weight"], "int", ("weight",))
    bake = _knob("strategy.steps.bake", spec["bake"], "duration", ("bake",))
    if count.kind not in ("int", "choice") or (count.kind == "int" and count.low < 1) or (
            count.kind == "choice" and any(not isinstance(c, int) or c < 1 for c in count.choices)):
        raise Bad(("count",), f"expected whole numbers of steps of at least 1 (the final 100% step is added), "
                              f"found {spec['count']!r}")
    top = max(weight.choices, default=0) if weight.kind == "choice" else weight.high
    bottom = min(weight.choices, default=0) if weight.kind == "choice" else weight.low
    if weight.kind == "duration" or not (isinstance(top, (int, float)) and 0 < bottom and top < 100):
        raise Bad(("weight",), f"expected percents above 0 and below 100 (the final 100% step is added), "
                               f"found {spec['weight']!r}")
    return count, weight, bake


def _probe_values(entry: Entry) -> list[tuple[str, Any]]:
    """(what, value) pairs that stand for the knob's space: its ends and every choice."""
    if entry.steps is not None:
        count, weight, bake = entry.steps
        w = weight.choices if weight.kind == "choice" else (weight.low, weight.high)
        b = bake.choices if bake.kind == "choice" else (format_duration(bake.low), format_duration(bake.high))
        return [("steps", [{"weight": float(min(w)), "bake": b[0]}, {"weight": 100}]),
                ("steps", [{"weight": float(max(w)), "bake": b[-1]}, {"weight": 100}])]
    knob = entry.knob
    if knob.kind == "choice":
        return [("choice", c) for c in knob.choices]
    if knob.kind == "duration":
        return [("duration", format_duration(knob.low)), ("duration", format_duration(knob.high))]
    cast = int if knob.kind == "int" else float
    return [(knob.kind, cast(knob.low)), (knob.kind, cast(knob.high))]


def _fits(entry: Entry, space: SearchSpace, base: Scenario) -> None:
    """Each end of the knob's range (each choice) makes a valid scenario on its own, with every strategy kind
    the knob is turned for; no scenario field is turned by two knobs."""
    for other in space.entries:
        if other is not entry and other.path.startswith((entry.path + "[", entry.path + ".")):
            raise Bad((), f"expected each scenario field turned by one knob, found {other.path} inside it")
    if entry.path == "strategy.kind":
        bad = [k for k in entry.knob.choices if k not in STRATEGY_KINDS]
        if bad:
            raise Bad(("choice",), f"expected strategy kinds ({', '.join(STRATEGY_KINDS)}), found {bad[0]!r}")
        return
    kinds = space.kinds(base) if entry.strategy_field is not None else (base.strategy.kind,)
    having = [k for k in kinds if entry.strategy_field is None or entry.strategy_field in strategy_fields(k)]
    if not having:
        known = sorted(set().union(*(strategy_fields(k) for k in kinds)) - {"kind"})
        raise Bad((), f"expected a field of the {' or '.join(kinds)} strategy ({', '.join(known)}), "
                      f"found {entry.strategy_field!r}")
    for kind in having:
        for what, value in _probe_values(entry):
            try:
                apply_overrides(base.with_strategy(kind), {entry.path: value}, source="knob")
            except ScenarioError as exc:
                reason = (exc.problems or [str(exc)])[0].split(": ", 1)[-1]
                also = f", strategy {kind}" if len(kinds) > 1 else ""
                raise Bad((what,), f"the scenario rejects {value!r} here ({reason}{also})") from None
