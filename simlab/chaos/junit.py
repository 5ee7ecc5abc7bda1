"""A suite's results as JUnit XML, the format CI systems (GitHub Actions reporters, GitLab, Jenkins) read.

One `testsuite` for the directory, one `testcase` per item with its time; a
failed item gets a `failure` whose message names the check that failed and by
how much (type: the verdict), an item that could not run an `error`; every
testcase carries the verdict, the figures and the journal as `system-out`.
Written with the standard library's ElementTree, which escapes text and
attributes: the format is a handful of elements, and junit-xml (the PyPI
package) would add a dependency, unreleased since 2020, for none of them.
"""
from __future__ import annotations

import datetime
import platform
import xml.etree.ElementTree as ET
from pathlib import Path

from simlab.chaos.suite import SuiteResult, journal_text

# XML 1.0 has no place for most control characters; a journal may quote a process's output with them.
_DROP = {c: None for c in range(32) if c not in (9, 10, 13)}


def junit_tree(result: SuiteResult) -> ET.ElementTree:
    failures = sum(r.status == "failed" for r in result.items)
    errors = sum(r.status == "error" for r in result.items)
    counts = {"tests": str(len(result.items)), "failures": str(failures), "errors": str(errors),
              "time": f"{result.seconds:.3f}"}
    root = ET.Element("testsuites", {"name": "simlab chaos suite", **counts})
    suite = ET.SubElement(root, "testsuite", {
        "name": result.directory.as_posix(), **counts, "skipped": "0",
        "timestamp": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "hostname": platform.node()})
    classname = "simlab.chaos.suite." + (result.directory.resolve().name or "suite")
    for r in result.items:
        case = ET.SubElement(suite, "testcase", {
            "classname": classname, "name": r.item.name, "file": r.item.path.as_posix(), "time": f"{r.seconds:.3f}"})
        if r.status != "passed":
            kind = "error" if r.status == "error" else "failure"
            verdict = r.result.verdict if r.result is not None else "error"
            element = ET.SubElement(case, kind, {"message": _clean(r.message), "type": verdict})
            element.text = _clean(r.message)
        ET.SubElement(case, "system-out").text = _clean(journal_text(r))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(result: SuiteResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _clean(text: str) -> str:
    return text.translate(_DROP)
