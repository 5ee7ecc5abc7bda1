"""Load a scenario from YAML; turn every validation problem into file:line, field path, expected, found.

Also the staging form of a scenario: its `staging:` block merged in (`staging_scenario`).
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simlab.errors import ScenarioError
from simlab.scenario.safe_yaml import load as load_yaml
from simlab.scenario.files import read_scenario_text
from simlab.scenario.model import Scenario
from simlab.scenario.staging import SECTIONS as STAGING_SECTIONS, Staging as StagingBlock, Target

Path_ = tuple[str | int, ...]


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file; raise ScenarioError naming every problem.

    The file is read as untrusted input: its size, encoding, nesting and aliases are bounded
    (simlab.scenario.files, simlab.scenario.safe_yaml) before anything walks it.
    """
    path = Path(path)
    text = read_scenario_text(path)
    return parse_scenario(text, source=str(path), base_dir=path.parent)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: str | Path = ".") -> Scenario:
    """Validate YAML text as a scenario."""
    data, lines = _parse_yaml(text, source)
    return validate_scenario(data, source=source, base_dir=base_dir, lines=lines)


def validate_scenario(
    data: Any, source: str = "<scenario>", base_dir: str | Path = ".", lines: dict[Path_, int] | None = None
) -> Scenario:
    """Validate an already-parsed mapping (e.g. a scenario with overrides applied)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario keys, found {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        errors = _without_typo_echoes(exc.errors(), data)
        problems = [_describe(err, data, source, lines or {}) for err in errors]
        noun = "problem" if len(problems) == 1 else "problems"
        raise ScenarioError(f"{source}: invalid scenario ({len(problems)} {noun})", problems) from None
    for i, check in enumerate(scenario.analysis.metrics if scenario.analysis is not None else ()):
        if check.query is not None:  # where it is written, for what only a driver finds (a query in simulation)
            line = _line(("analysis", "metrics", i, "query"), lines or {})
            check.locate(f"{source}:{line}" if line else source)
    return scenario


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    data, node = load_yaml(text, source)
    if data is None:
        raise ScenarioError(f"{source}: the scenario is empty; expected keys such as name, duration, fleet, traffic")
    lines: dict[Path_, int] = {}
    if node is not None:
        _index_lines(node, (), lines, source)
    return data, lines


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> None:
    """Record the line of every key and list item; a key given twice is an error (YAML keeps the last silently)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            sub = path + (key.value,)
            line = key.start_mark.line + 1
            if key.value in seen and key.value != "<<":
                raise ScenarioError(
                    f"{source}:{line}: {dotted(sub)}: expected each key once, found '{key.value}' again "
                    f"(first at line {seen[key.value]})"
                )
            seen[key.value] = line
            lines[sub] = line
            _index_lines(value, sub, lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines, source)


def _without_typo_echoes(errors: list[dict], data: Any) -> list[dict]:
    """Drop "required key is missing" when a misspelt sibling key explains it; the did-you-mean says it all."""
    unknown: dict[Path_, list[str]] = {}
    for err in errors:
        if err["type"] == "extra_forbidden":
            path = _data_path(err["loc"], data)
            unknown.setdefault(path[:-1], []).append(str(path[-1]))
    kept = []
    for err in errors:
        if err["type"] == "missing":
            path = _data_path(err["loc"], data)
            if difflib.get_close_matches(str(path[-1]), unknown.get(path[:-1], []), n=1):
                continue
        kept.append(err)
    return kept


# A validator may name the sub-field at fault by starting its message with a relative path:
# "steps[2].weight: expected ..." raised by a model places the problem at <model path>.steps[2].weight.
_SUBPATH = re.compile(r"^((?:[A-Za-z_]\w*|\[\d+\])(?:\.[A-Za-z_]\w*|\[\d+\])*): (.+)$", re.DOTALL)
_PART = re.compile(r"[A-Za-z_]\w*|\[\d+\]")


def _split_subpath(message: str, path: Path_, data: Any) -> tuple[Path_, str]:
    """(path extended by the message's leading sub-path, rest of the message) if that sub-path is in the data."""
    match = _SUBPATH.match(message)
    if not match:
        return path, message
    sub = tuple(int(t[1:-1]) if t.startswith("[") else t for t in _PART.findall(match.group(1)))
    cursor: Any = data
    for part in path + sub:
        if isinstance(cursor, list) and isinstance(part, int) and part < len(cursor):
            cursor = cursor[part]
        elif isinstance(cursor, dict) and part in cursor:
            cursor = cursor[part]
        else:
            return path, message  # not a path into the user's data: leave the message whole
    return path + sub, match.group(2)


def _data_path(loc: tuple, data: Any) -> Path_:
    """Drop pydantic's union-tag and wrapper components that are not in the user's data."""
    out: list[str | int] = []
    cursor = data
    for part in loc:
        if isinstance(cursor, dict) and part in cursor:
            out.append(part)
            cursor = cursor[part]
        elif isinstance(cursor, list) and isinstance(part, int) and part < len(cursor):
            out.append(part)
            cursor = cursor[part]
        elif isinstance(cursor, dict) and part in (cursor.get("kind"), cursor.get("dist")):
            continue  # discriminated-union tag
        elif isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"}):
            continue  # validator wrappers such as function-after[...]
        else:
            out.append(part)
            cursor = None
    return tuple(out)


def dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _line(path: Path_, lines: dict[Path_, int]) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _allowed_keys(path: Path_, data: Any) -> list[str]:
    """Field names the model accepts at the parent of `path` (for did-you-mean)."""
    model: Any = Scenario
    cursor = data
    for part in path[:-1]:
        if isinstance(part, int):
            cursor = cursor[part] if isinstance(cursor, list) and part < len(cursor) else None
            continue
        cursor = cursor.get(part) if isinstance(cursor, dict) else None
        if model is None or not hasattr(model, "model_fields") or part not in model.model_fields:
            return []
        model = _resolve(model.model_fields[part].annotation, cursor)
    return list(model.model_fields) if model is not None and hasattr(model, "model_fields") else []


def _resolve(annotation: Any, value: Any) -> Any:
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args:
        found = _resolve(arg, value[0] if isinstance(value, list) and value else value)
        if found is None:
            continue
        if isinstance(value, dict) and ("kind" in value or "dist" in value):
            tag = value.get("kind", value.get("dist"))
            field = found.model_fields.get("kind") or found.model_fields.get("dist")
            if field is not None and tag not in typing.get_args(field.annotation):
                continue
        return found
    return None


def _found(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _describe(err: dict, data: Any, source: str, lines: dict[Path_, int]) -> str:
    path = _data_path(err["loc"], data)
    line = _line(path, lines)
    where = f"{source}:{line}" if line else source
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        allowed = _allowed_keys(path, data)
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        guess = f"; did you mean '{hint[0]}'?" if hint else ""
        expected = f" (expected one of: {', '.join(allowed)})" if allowed and not hint else ""
        return f"{where}: {dotted(path)}: unknown key '{key}'{guess}{expected}"
    if kind == "missing":
        return f"{where}: {dotted(path)}: required key is missing"
    if kind == "union_tag_invalid":
        tags = ctx.get("expected_tags", "")
        path = path + (ctx.get("discriminator", "").strip("'"),)
        line = _line(path, lines)
        where = f"{source}:{line}" if line else source
        return f"{where}: {dotted(path)}: expected one of {tags}, found {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"{where}: {dotted(path)}: expected a `{ctx.get('discriminator', 'kind').strip(chr(39))}` key, found none"
    if kind == "literal_error":
        return f"{where}: {dotted(path)}: expected {ctx.get('expected')}, found {_found(value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        bound = next(iter(ctx.values()))
        return f"{where}: {dotted(path)}: expected a value {words} {bound}, found {_found(value)}"
    if kind == "value_error":
        path, message = _split_subpath(str(ctx.get("error", err["msg"])), path, data)
        line = _line(path, lines)
        where = f"{source}:{line}" if line else source
        if not message.startswith("expected") and "found" not in message:
            message = f"{message}, found {_found(value)}"
        return f"{where}: {dotted(path)}: {message}"
    expected = _EXPECTED.get(kind) or err["msg"].replace("Input should be", "expected").replace("Input", "value")
    return f"{where}: {dotted(path)}: {expected}, found {_found(value)}"


# pydantic's wording for type errors, in the words of a YAML file.
_EXPECTED = {
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number", "float_parsing": "expected a number", "finite_number": "expected a finite number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "tuple_type": "expected a list", "list_type": "expected a list",
    "dict_type": "expected a mapping", "model_type": "expected a mapping", "model_attributes_type": "expected a mapping",
}


# -- the staging form of a scenario ------------------------------------------------------
def _merge(base: Any, over: Any) -> Any:
    """`over` merged into `base`: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value)
        return out
    return over


def staging_scenario(scenario: Scenario) -> Scenario:
    """The scenario as staging runs it (overrides applied, `staging` removed); raise ScenarioError if invalid.

    A strategy override of another kind replaces the strategy instead of merging into it.
    """
    block: StagingBlock | None = scenario.staging
    data = scenario.model_dump(mode="json", exclude={"staging"})
    if block is None:
        return _same_origins(scenario, validate_scenario(data, source=f"{scenario.name} (staging)"))
    for section in STAGING_SECTIONS:
        over = getattr(block, section)
        if not over:
            continue
        if section == "strategy" and over.get("kind", data["strategy"]["kind"]) != data["strategy"]["kind"]:
            data["strategy"] = dict(over)
        elif data.get(section) is None:
            data[section] = dict(over)
        else:
            data[section] = _merge(data[section], over)
    if block.duration is not None:
        data["duration"] = block.duration
    if block.instances is not None:
        data["fleet"]["instances"] = block.instances
    if block.rps is not None:
        data["traffic"]["rps"] = block.rps
    if block.release_at is not None and data.get("release") is not None:
        data["release"]["at"] = block.release_at
    if block.failures is not None:
        data["failures"] = list(block.failures)
    return _same_origins(scenario, validate_scenario(data, source=f"{scenario.name} (staging block)"))


def _same_origins(scenario: Scenario, staged: Scenario) -> Scenario:
    """The staging form's queries located where the scenario's equal ones are written."""
    written = scenario.analysis.metrics if scenario.analysis is not None else ()
    for check in staged.analysis.metrics if staged.analysis is not None else ():
        same = next((w for w in written if w.query is not None and w.model_dump() == check.model_dump()), None)
        if same is not None and same.origin:
            check.locate(same.origin)
    return staged


def staging_target(scenario: Scenario) -> Target | None:
    """The scenario's external target (`staging.target`), if it names one."""
    return scenario.staging.target if scenario.staging is not None else None
