"""Kubernetes manifests as the bridges read them: documents with their file, line and kind, fields that fail
with one line naming where they are, durations as Go and Argo write them, and the warnings an import collects.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from simlab.errors import ScenarioError

FieldPath = tuple[str | int, ...]


class ManifestError(ScenarioError):
    """A manifest simlab cannot translate: wrong kind, missing strategy, unknown template, a value of the wrong
    type (exit code 2, one line naming the file, the document and the field)."""


class UnmodelledWarning(UserWarning):
    """A manifest field simlab cannot model; the translation goes on without it (printed on stderr by the CLI)."""


def dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file: its data, where it came from, and the line of every field."""

    data: dict
    source: str
    lines: dict

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.data.get("metadata")
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    def where(self, path: FieldPath = ()) -> str:
        """`file:line: Kind name: field` for messages."""
        line = None
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                break
        head = f"{self.source}:{line}" if line else self.source
        label = f"{self.kind or 'document'} {self.name}".strip()
        return f"{head}: {label}" + (f": {dotted(path)}" if path else "")

    def error(self, path: FieldPath, message: str) -> ManifestError:
        return ManifestError(f"{self.where(path)}: {message}")

    def get(self, path: FieldPath, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return default
            elif not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return default if node is None else node

    def mapping(self, path: FieldPath, required: bool = False) -> dict:
        value = self.get(path)
        if value is None:
            if required:
                raise self.error(path, "expected a mapping, found none")
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, found {_found(value)}")
        return value

    def items(self, path: FieldPath) -> list:
        value = self.get(path, [])
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, found {_found(value)}")
        return value

    def integer(self, path: FieldPath, default: int | None = None, minimum: int | None = None) -> int | None:
        value = self.get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected a whole number, found {_found(value)}")
        if minimum is not None and value < minimum:
            raise self.error(path, f"expected a whole number of at least {minimum}, found {value}")
        return value

    def number(self, path: FieldPath, default: float | None = None) -> float | None:
        value = self.get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(path, f"expected a number, found {_found(value)}")
        return float(value)

    def text(self, path: FieldPath, default: str | None = None) -> str | None:
        value = self.get(path)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(path, f"expected a string, found {_found(value)}")
        return value

    def go_duration(self, path: FieldPath, default: float | None = None) -> float | None:
        """A Go duration string (`30s`, `1m30s`, `1h`) in seconds, as Argo's `interval` and Flagger's are parsed."""
        value = self.get(path)
        if value is None:
            return default
        seconds = parse_go_duration(value)
        if seconds is None:
            raise self.error(path, f"expected a duration such as 30s, 5m or 1h30m, found {_found(value)}")
        return seconds

    def pause_seconds(self, path: FieldPath) -> float | None:
        """Argo's pause duration: a bare number (or numeric string) is seconds, else a Go duration; None: no duration."""
        value = self.get(path)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.error(path, f"expected seconds or a duration such as 5m, found {_found(value)}")
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
            seconds = float(value)
        else:
            seconds = parse_go_duration(value)
        if seconds is None or seconds < 0:
            raise self.error(path, f"expected seconds or a duration such as 5m, found {_found(value)}")
        return seconds

    def count_or_percent(self, path: FieldPath) -> int | str | None:
        """Kubernetes' int-or-string: a count or a percentage such as `25%`."""
        value = self.get(path)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", value)
            if match and float(match.group(1)) <= 100:
                return f"{float(match.group(1)):g}%"
            if value.strip().isdigit():
                return int(value)
        raise self.error(path, f"expected a count or a percentage such as 25%, found {_found(value)}")


def _found(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(value: Any) -> float | None:
    """Seconds of a Go duration string (`time.ParseDuration`), or None if it is not one; `0` is allowed."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == "0":
        return 0.0
    pos, seconds = 0, 0.0
    for match in _GO_PART.finditer(text):
        if match.start() != pos:
            return None
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return seconds if text and pos == len(text) else None


def format_duration(seconds: float) -> str:
    """Seconds as the shortest exact duration both simlab and Go read: `5m`, `1m30s`, `1h`, `250ms`."""
    if seconds <= 0:
        return "0s"
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms" if millis < 60_000 else f"{millis / 1000:g}s"
    whole = millis // 1000
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)


@dataclass
class Notes:
    """What a translation could not model, one line each (the CLI prints them on stderr)."""

    lines: list[str] = field(default_factory=list)

    def warn(self, where: str, message: str) -> None:
        line = f"{where}: {message}"
        if line not in self.lines:
            self.lines.append(line)

    def unknown_keys(self, doc: Document, path: FieldPath, handled: set[str], ignored: set[str] = frozenset()) -> None:
        """Every key of the mapping at `path` that is neither translated nor known to be irrelevant."""
        for key in doc.mapping(path):
            if key not in handled and key not in ignored:
                self.warn(doc.where(path + (key,)), "not modelled by simlab; left out")


def read_documents(path: str | Path) -> list[Document]:
    """Every non-empty document of a multi-document YAML file, with the line of every field."""
    from simlab.errors import ScenarioError
    from simlab.scenario.files import read_scenario_text

    path = Path(path)
    try:  # at most 1 MiB of UTF-8, as a scenario file
        text = read_scenario_text(path, "manifest")
    except ScenarioError as exc:
        raise ManifestError(str(exc)) from None
    return parse_documents(text, str(path))


def parse_documents(text: str, source: str) -> list[Document]:
    from simlab.errors import ScenarioError
    from simlab.scenario.safe_yaml import load_all

    try:  # nesting, aliases and values bounded as in a scenario file (no YAML bomb)
        documents = load_all(text, source)
    except ScenarioError as exc:
        raise ManifestError(str(exc)) from None
    docs = []
    for i, (data, node) in enumerate(documents, 1):
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: document {i}: expected a Kubernetes object (a mapping with kind), "
                                f"found {_found(data)}")
        lines: dict = {}
        _index(node, (), lines)
        docs.append(Document(data, source, lines))
    return docs


def _index(node: yaml.Node, path: FieldPath, lines: dict) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[path + (key.value,)] = key.start_mark.line + 1
            _index(value, path + (key.value,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, path + (i,), lines)


def one_of_kind(docs: list[Document], kinds: tuple[str, ...], source: str) -> Document:
    """The single document of one of `kinds` (a file may also hold templates); else a ManifestError."""
    found = [d for d in docs if d.kind in kinds]
    if len(found) == 1:
        return found[0]
    want = " or ".join(kinds)
    if not found:
        seen = ", ".join(sorted({d.kind or "no kind" for d in docs})) or "no document"
        raise ManifestError(f"{source}: kind: expected a {want} document, found {seen}")
    names = ", ".join(f"{d.name or '?'} (line {d.lines.get(())})" for d in found)
    raise ManifestError(f"{source}: expected one {want} document, found {len(found)}: {names}")


def slug(name: str) -> str:
    """A Kubernetes object name (DNS-1123 label) from a scenario name."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (text or "simlab")[:63].rstrip("-")


@dataclass(frozen=True)
class Exported:
    """Manifests written from a scenario, and what of the scenario they cannot say."""

    documents: tuple[dict, ...]
    warnings: tuple[str, ...] = ()
    header: tuple[str, ...] = ()

    def yaml(self) -> str:
        head = "".join(f"# {line}\n" for line in self.header)
        return head + yaml.safe_dump_all(list(self.documents), sort_keys=False, width=1000, explicit_start=True)
