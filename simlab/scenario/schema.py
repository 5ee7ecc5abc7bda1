"""The JSON Schema of the scenario format as it is written in YAML, for editors and CI.

pydantic's `Scenario.model_json_schema()` describes the values *after* the
loader's coercions: every duration a number of seconds, every distribution a
mapping. A scenario as people write it (`startup: 20s`, `service_time: 40ms`,
`pattern: constant`, `batch: 25%`) fails that schema. `scenario_schema()` is
generated from the same models, but where a field coerces its input before
validation (the `BeforeValidator`s in simlab.scenario), it describes the input
the coercion accepts instead of its output:

- durations: a number of seconds (0 or more) or a string such as `250ms`,
  `30s`, `1m30s`, `1.5h`, `1d` or `"90"`;
- a distribution (`service_time`): a mapping with `dist`, or a bare duration
  as shorthand for `{dist: constant, value: ...}`;
- a traffic pattern: a mapping with `kind`, or a bare kind that needs no
  other key (`constant`, `diurnal`);
- counts of instances (`batch`, `max_surge`, `max_unavailable`): a whole
  number or a percentage string (`25%`);
- a latency analysis bound (`max`): a duration as above (a query's own `max`: a number).

Unknown keys are rejected everywhere (`additionalProperties: false`), as the
loader rejects them. The schema is looser than the loader on what JSON Schema
cannot say (weights rising step by step, exactly two log-normal parameters,
`release.at` before the end of the run...): `simlab check` remains the
authority, and every scenario it accepts, the schema accepts.
"""
from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_NUMBER = r"\+?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?"
_UNITS = r"(?:\d+(?:\.\d+)? *(?:ms|s|m|h|d) *)+"
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|{_UNITS})\s*$"
"""A duration string `simlab.units.parse_duration` accepts: `250ms`, `30s`, `1m30s`, `1.5h`, `1d`, `90`."""
POSITIVE_DURATION_PATTERN = rf"^(?=[^1-9]*[1-9])\s*(?:{_NUMBER}|{_UNITS})\s*$"
"""The same with a non-zero digit somewhere (`0s` is not a positive duration)."""
PERCENT_PATTERN = r"^\s*(?:100(?:\.0+)?|\d{1,2}(?:\.\d+)?)\s*%\s*$"


def _name(func: Any) -> str:
    func = getattr(func, "__func__", func)
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '')}"


def _duration_schema(number: dict[str, Any]) -> dict[str, Any]:
    """A duration: the number schema pydantic made for the field (with its bounds), or a duration string."""
    number = dict(number)
    extra = {k: number.pop(k) for k in ("examples", "description", "title", "default") if k in number}
    if "minimum" not in number and "exclusiveMinimum" not in number:
        number["minimum"] = 0
    positive = number.get("exclusiveMinimum", -1) >= 0 or number.get("minimum", 0) > 0
    pattern = POSITIVE_DURATION_PATTERN if positive else DURATION_PATTERN
    return {"anyOf": [number, {"type": "string", "pattern": pattern}], **extra}


def _make_positive(duration: dict[str, Any]) -> dict[str, Any]:
    """A duration schema narrowed to values above 0 (PositiveDuration)."""
    out = copy.deepcopy(duration)
    number, text = out["anyOf"]
    if number.get("minimum") == 0:
        del number["minimum"]
        number["exclusiveMinimum"] = 0
    text["pattern"] = POSITIVE_DURATION_PATTERN
    return out


def _is_duration(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf", [])
    return len(branches) == 2 and branches[1].get("pattern") in (DURATION_PATTERN, POSITIVE_DURATION_PATTERN)


class _ScenarioSchema(GenerateJsonSchema):
    """pydantic's generator, describing the input of the scenario's coercing validators."""

    def function_before_schema(self, schema):
        name = _name(schema["function"]["function"])
        inner = self.generate_inner(schema["schema"])
        if name == "simlab.scenario.types._duration":
            return _duration_schema(inner)
        if name == "simlab.scenario.types._count_or_percent":
            return {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": PERCENT_PATTERN}]}
        if name == "simlab.scenario.distributions._tag":  # `service_time: 40ms` = a constant
            return {"anyOf": [_duration_schema({"type": "number"}), inner]}
        if name == "simlab.scenario.model._pattern_tag":  # `pattern: constant` = {kind: constant}
            return {"anyOf": [{"type": "string", "enum": _bare_kinds(schema["schema"])}, inner]}
        if name == "simlab.scenario.distributions.Empirical._parse_samples":
            return {**inner, "items": _duration_schema({"type": "number"})}
        return inner

    def function_after_schema(self, schema):
        inner = self.generate_inner(schema["schema"])
        if _name(schema["function"]["function"]) == "simlab.scenario.types._positive" and _is_duration(inner):
            return _make_positive(inner)
        return inner


def _bare_kinds(tagged_union: dict[str, Any]) -> list[str]:
    """Tags of a tagged union whose model needs no key but the tag (so the tag alone may stand for it)."""
    kinds = []
    for tag, choice in tagged_union.get("choices", {}).items():
        cls = choice.get("cls")
        fields = getattr(cls, "model_fields", {})
        if all(not f.is_required() for n, f in fields.items() if n != "kind"):
            kinds.append(tag)
    return sorted(kinds)


def _latency_bounds(defs: dict[str, Any]) -> None:
    """An analysis `max` is a fraction for error_rate, a duration for the latency metrics and a number for a query
    of one's own (sim_metric, when given, says which); a name of one's own needs a `query`."""
    from simlab.scenario.queries import NAME
    from simlab.scenario.strategy import METRICS

    check = defs.get("MetricCheck")
    if not check or "max" not in check.get("properties", {}):
        return
    props = check["properties"]
    props["metric"] = {**{k: v for k, v in props["metric"].items() if k != "type"},
                       "anyOf": [{"type": "string", "enum": list(METRICS)}, {"type": "string", "pattern": NAME.pattern}]}
    props["max"].pop("anyOf", None)
    props["max"]["anyOf"] = [{"type": "number"}, {"type": "string", "pattern": DURATION_PATTERN}, {"type": "null"}]
    latency = [m for m in METRICS if m != "error_rate"]

    def measured(kinds: list[str]) -> dict[str, Any]:
        return {"anyOf": [{"properties": {key: {"enum": kinds}}, "required": [key]} for key in ("metric", "sim_metric")]}

    check.setdefault("allOf", []).extend([
        {"if": measured(["error_rate"]),
         "then": {"properties": {"max": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "null"}]}}}},
        {"if": measured(latency),
         "then": {"properties": {"max": {"anyOf": [_duration_schema({"type": "number"}), {"type": "null"}]}}}},
        {"if": {"properties": {"metric": {"not": {"enum": list(METRICS)}}}, "required": ["metric"]},
         "then": {"required": ["query"]}},
        {"if": {"properties": {"metric": {"not": {"enum": list(METRICS)}}, "sim_metric": {"type": "null"}},
                "required": ["metric"]},
         "then": {"properties": {"max": {"type": ["number", "null"]}}}},
    ])


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario YAML file as people write it."""
    from simlab.scenario.model import Scenario

    schema = Scenario.model_json_schema(schema_generator=_ScenarioSchema)
    _latency_bounds(schema.get("$defs", {}))
    schema.pop("title", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "simlab scenario",
        "description": "A simlab scenario: fleet, traffic, release, rollout strategy, analysis, failures. "
        "`simlab check FILE` also checks what this schema cannot express.",
        **schema,
    }

