"""Load a scenario from YAML; turn every validation problem into file:line, field path, expected, found."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from simlab.errors import ScenarioError
from simlab.scenario.model import Scenario

Path_ = tuple[str | int, ...]


def load_scenario(path: str | Path) -> Scenario:
    """Read, parse and validate a scenario file; raise ScenarioError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{path}: expected a scenario file, found a directory") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({exc.strerror})") from None
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
        return Scenario.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        problems = [_describe(err, data, source, lines or {}) for err in exc.errors()]
        noun = "problem" if len(problems) == 1 else "problems"
        raise ScenarioError(f"{source}: invalid scenario ({len(problems)} {noun})", problems) from None


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        raise ScenarioError(f"{source}: the scenario is empty; expected keys such as name, duration, fleet, traffic")
    lines: dict[Path_, int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            lines[sub] = key.start_mark.line + 1
            _index_lines(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), lines)


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
        return f"{where}: {dotted(path + (ctx.get('discriminator', '').strip(chr(39)),))}: expected one of {tags}, found {ctx.get('tag')!r}"
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
        message = str(ctx.get("error", err["msg"]))
        if not message.startswith("expected") and "found" not in message:
            message = f"{message}, found {_found(value)}"
        return f"{where}: {dotted(path)}: {message}"
    expected = err["msg"].replace("Input should be", "expected").replace("Input", "value")
    return f"{where}: {dotted(path)}: {expected}, found {_found(value)}"
