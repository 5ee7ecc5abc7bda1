"""Dotted-path overrides of a scenario (`strategy.steps[0].bake: 5m`) and variants files naming sets of them."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simlab.errors import ScenarioError
from simlab.scenario import Scenario, validate_scenario

_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*$")
_PART = re.compile(r"[A-Za-z_]\w*|\[\d+\]")


def parse_path(path: str) -> tuple[str | int, ...]:
    """`strategy.steps[0].bake` -> ("strategy", "steps", 0, "bake"); ScenarioError if it is not a path."""
    if not isinstance(path, str) or not _PATH.match(path.strip()):
        raise ScenarioError(
            f"override path: expected a dotted field path such as strategy.steps[0].bake, found {path!r}"
        )
    return tuple(int(p[1:-1]) if p.startswith("[") else p for p in _PART.findall(path.strip()))


def _set(data: dict, path: tuple[str | int, ...], value: Any, where: str, text: str) -> None:
    cursor: Any = data
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(part, int):
            if not isinstance(cursor, list):
                raise ScenarioError(f"{where}: {text}: expected a list before [{part}], found {type(cursor).__name__}")
            if part >= len(cursor):
                raise ScenarioError(f"{where}: {text}: expected an index below {len(cursor)}, found [{part}]")
        elif not isinstance(cursor, dict):
            raise ScenarioError(f"{where}: {text}: expected a mapping before '{part}', found {cursor!r}")
        if last:
            cursor[part] = value
        else:
            nxt = cursor[part] if isinstance(part, int) else cursor.get(part)
            if nxt is None:  # an absent optional block (release.migration): start it
                nxt = cursor[part] = {}
            cursor = nxt


def apply_overrides(scenario: Scenario, overrides: dict[str, Any], source: str = "overrides") -> Scenario:
    """`scenario` with each dotted path set to its value, validated again as a whole."""
    data = copy.deepcopy(scenario.model_dump(mode="json"))
    for path, value in overrides.items():
        _set(data, parse_path(path), copy.deepcopy(value), source, path)
    return validate_scenario(data, source=source)


class Variant(BaseModel):
    """One named policy: overrides of the base scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(min_length=1)
    description: str = ""
    overrides: dict[str, Any] = Field(alias="set", default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _paths(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not _PATH.match(path):
                raise ValueError(f"expected dotted field paths such as strategy.steps[0].bake, found {path!r}")
        return value


class VariantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    variants: tuple[Variant, ...] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _unique(cls, value: tuple[Variant, ...]) -> tuple[Variant, ...]:
        seen: set[str] = set()
        for v in value:
            if v.name in seen:
                raise ValueError(f"expected each variant name once, found {v.name!r} again")
            seen.add(v.name)
        return value


def load_variants(variants: str | Path | dict | list) -> tuple[tuple[Variant, ...], str]:
    """(variants, source) from a YAML file, a parsed mapping {variants: [...]} or a bare list."""
    source = "variants"
    if isinstance(variants, (str, Path)):
        path = Path(variants)
        source = str(path)
        from simlab.scenario.files import read_scenario_text
        from simlab.scenario.safe_yaml import load

        if not path.exists():
            raise ScenarioError(f"--variants: no such variants file {source!r}")
        # at most 1 MiB of UTF-8, nesting, aliases and values bounded as in a scenario file
        variants, _ = load(read_scenario_text(path, "variants"), source)
    if isinstance(variants, list):
        variants = {"variants": variants}
    if not isinstance(variants, dict):
        raise ScenarioError(
            f"{source}: expected a mapping with a `variants` list (each with name and set), found {type(variants).__name__}"
        )
    try:
        return VariantsFile.model_validate(variants).variants, source
    except ValidationError as exc:
        raise ScenarioError(f"{source}: invalid variants file", [_problem(source, e) for e in exc.errors()]) from None


def _problem(source: str, err: dict) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".") or "(top level)"
    found = repr(err.get("input"))
    found = found if len(found) < 60 else found[:57] + "..."
    if err["type"] == "missing":
        return f"{source}: {where}: required key is missing"
    if err["type"] == "extra_forbidden":
        allowed = "name, description, set" if "[" in where else "variants"
        return f"{source}: {where}: unknown key (expected one of: {allowed})"
    message = str(err.get("ctx", {}).get("error", err["msg"]))
    message = message if message.startswith("expected") else message.replace("Input should be", "expected")
    return f"{source}: {where}: {message}" + ("" if "found" in message else f", found {found}")


def variant_scenarios(scenario: Scenario, variants: str | Path | dict | list) -> list[tuple[str, Scenario]]:
    """(name, scenario) of every variant; every problem of every variant reported at once."""
    loaded, source = load_variants(variants)
    out, problems = [], []
    for v in loaded:
        try:
            out.append((v.name, apply_overrides(scenario, v.overrides, source=f"{source}: variant {v.name!r}")))
        except ScenarioError as exc:
            problems.extend(exc.problems or [str(exc)])
    if problems:
        raise ScenarioError(f"{source}: {len(problems)} problem(s) in the variants", problems)
    return out
