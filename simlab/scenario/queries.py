"""An analysis metric's own PromQL `query:` as written: its placeholders (the `{{…}}` of Argo Rollouts' and
Flagger's templates), filled in by the driver that evaluates it (staging), and where it was written.

- `{{version}}`: the version measured, `old` or `new` (the `version` label of simlab's metrics);
- `{{instance}}`: a regular expression (for `=~`) matching the names of that version's instances;
- `{{window}}`: the window measured, as a PromQL duration (`monitoring.window`, or one sub-window of it for the
  mann_whitney judge).
"""
from __future__ import annotations

import difflib
import re

PLACEHOLDERS = ("version", "instance", "window")
MAX_QUERY = 10_000  # characters; a query is untrusted input like the rest of the file
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,62}$")
"""A metric's own name (with a query): what events, reports and rollback causes call it."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def used(query: str) -> set[str]:
    """The placeholders a query uses."""
    return set(_PLACEHOLDER.findall(query))


def problem(query: str) -> str | None:
    """What is wrong with a query's placeholders (one line, `expected …, found …`), or None."""
    if not query.strip():
        return "expected a PromQL expression, found an empty query"
    if len(query) > MAX_QUERY:
        return f"expected a query of at most {MAX_QUERY:,} characters, found {len(query):,}"
    for name in _PLACEHOLDER.findall(query):
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1, cutoff=0.5)
            hint = f" (did you mean {{{{{close[0]}}}}}?)" if close else ""
            return (f"expected the placeholders {{{{version}}}}, {{{{instance}}}} or {{{{window}}}}, "
                    f"found {{{{{name}}}}}{hint}")
    rest = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), query)  # the same positions, placeholders blank
    for brace in ("{{", "}}"):
        at = rest.find(brace)
        if at >= 0:
            return (f"expected each placeholder written {{{{name}}}}, found a stray {brace!r} in "
                    f"{query[max(0, at - 20):at + 22]!r}")
    return None


def fill(query: str, **values: str) -> str:
    """The query with each placeholder replaced by its value (every placeholder it uses must be given)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], query)


class Origin(str):
    """Where something was written (`file:line`), carried for messages found later; never part of equality, so a
    scenario read from two files (or copied) still equals itself."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Origin)

    def __ne__(self, other: object) -> bool:
        return not isinstance(other, Origin)

    def __hash__(self) -> int:
        return 0
