"""YAML read as untrusted input: nesting, alias expansion and recursion bounded while the document is composed.

PyYAML's SafeLoader builds only plain data, but it follows aliases freely:
nine aliases nine deep (the "billion laughs") describe 10^9 values in a few
hundred bytes, a recursive anchor describes an infinite structure, and its
composer recurses once per level, so 5,000 nested brackets end in a
RecursionError. The composer here counts, as it goes, the document's depth
and values with every alias expanded, and stops at the first limit with the
line where it was reached; nothing downstream ever walks more than
MAX_VALUES values. Numbers are read as YAML 1.2 does (`1e12` is a number, not the
string YAML 1.1 makes of it).
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from simlab.errors import ScenarioError

MAX_DEPTH = 64
"""Levels of nesting; a scenario needs about six."""
MAX_VALUES = 20_000
"""Values (scalars, lists, mappings) with aliases expanded; a scenario has a few hundred, bulk data
goes in the files it names (replay CSVs, samples files)."""


class _Loader(yaml.SafeLoader):
    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed
        self._aliases = 0
        self._total = 0
        self._size: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth), aliases expanded

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if event.anchor in self._open:
                raise _Limit(event.start_mark, f"YAML alias *{event.anchor} refers to its own anchor "
                                               f"&{event.anchor}: a recursive structure is not a scenario")
            node = super().compose_node(parent, index)
            values, depth = self._size[id(node)]
            self._count(values, event.start_mark)
            if self._depth + depth > MAX_DEPTH:
                raise _Limit(event.start_mark, f"YAML alias *{event.anchor} nests more than {MAX_DEPTH} levels deep")
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Limit(event.start_mark, f"YAML nested more than {MAX_DEPTH} levels deep; a scenario needs a few")
        self._count(1, event.start_mark)
        if event.anchor:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(event.anchor)
        self._measure(node)
        return node

    def _count(self, values: int, mark) -> None:
        """Values in the document so far, aliases expanded: refused the moment they pass MAX_VALUES."""
        self._total += values
        if self._total > MAX_VALUES:
            what = "YAML aliases expand to" if self._aliases else "YAML holds"
            raise _Limit(mark, f"{what} more than {MAX_VALUES:,} values by here; a scenario needs a few hundred "
                               f"(bulk data goes in the files it names)")

    def _measure(self, node: yaml.Node) -> None:
        """Remember a node's size and depth with aliases expanded, for the aliases that will refer to it."""
        if isinstance(node, yaml.ScalarNode):
            self._size[id(node)] = (1, 1)
            return
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        sizes = [self._size[id(child)] for child in children]
        self._size[id(node)] = (1 + sum(v for v, _ in sizes), 1 + max((d for _, d in sizes), default=0))

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # a date that does not exist, an integer too long to convert
            reason = str(exc).split(";")[0]
            raise _Limit(node.start_mark, f"cannot read this value as YAML ({reason})") from None


# YAML 1.2's float: an exponent needs no decimal point (YAML 1.1 reads `1e12` as a string).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


class _Limit(yaml.MarkedYAMLError):
    """A limit of this module, or a value PyYAML recognised but could not build."""

    def __init__(self, mark, problem: str):
        super().__init__(problem=problem, problem_mark=mark)


def load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """(the data, its node tree for line numbers) of one YAML document; ScenarioError (one line) if it is bad."""
    (document,) = _read(text, source, single=True)
    return document


def load_all(text: str, source: str) -> list[tuple[Any, yaml.Node | None]]:
    """(data, node) of every document of a multi-document YAML text (Kubernetes manifests), under the same
    limits as `load`, counted over the whole text; ScenarioError (one line) if it is bad."""
    return _read(text, source, single=False)


def _read(text: str, source: str, single: bool) -> list[tuple[Any, yaml.Node | None]]:
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ScenarioError(f"{source}:{line}:{column}: expected YAML text, found the control character "
                            f"#x{exc.character:04x}") from None
    documents = []
    try:
        if single:
            node = loader.get_single_node()
            documents.append((loader.construct_document(node) if node is not None else None, node))
        else:
            while loader.check_node():
                node = loader.get_node()
                documents.append((loader.construct_document(node), node))
    except _Limit as exc:
        raise ScenarioError(f"{_where(source, exc.problem_mark)}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{_where(source, mark)}: YAML syntax error: {problem}") from None
    finally:
        loader.dispose()
    return documents


def _where(source: str, mark) -> str:
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
