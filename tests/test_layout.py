"""The package's layout: no import circle, no oversized module, and `import simlab` stays light.

The import graph is read statically (`ast` over simlab/**/*.py, nothing is imported). An edge
A -> B is an import statement in A naming simlab module B: `import simlab.x.y`, `from simlab.x
import y` (to simlab.x.y when y is a module, else to simlab.x), relative imports resolved. Parent
packages that Python initialises on the way are not edges of their own: every module would then
depend on simlab/__init__.py and the graph would say nothing. Imports under `if TYPE_CHECKING:`
never run and are left out.

Imports are split by when they run. Those at module level (and in class bodies, module-level
if/try blocks) run while the module loads: a circle through them is the real problem, since which
module sees which names then depends on which one some caller imported first, and it is asserted
separately so a failure says which kind it is. Imports inside a function run when it is called,
after every module involved has loaded, so they cannot leave a half-initialised module behind; the
package uses them on purpose to load heavy dependencies late. But a function-level import between
two simlab modules that import each other only hides the circle from the interpreter, not from a
reader: the two circles issue 8 names (scenario loading -> model -> staging -> loading, staging
host <-> service) were of that kind. So the graph including them must have no circle either.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simlab"
MAX_LINES = 400
HEAVY = ("numpy", "pandas", "simpy", "typer")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path, name: str, known: set[str]) -> tuple[set[str], set[str]]:
    """The simlab modules `path` imports when it is loaded, and those it imports only inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    at_load: set[str] = set()
    deferred: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            found = set()
            for alias in node.names:
                # `import simlab.a.b` runs simlab.a.b (its parents are not edges, see the docstring).
                if alias.name in known:
                    found.add(alias.name)
            return found
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        found = set()
        for alias in node.names:
            if f"{source}.{alias.name}" in known:
                found.add(f"{source}.{alias.name}")
            elif source in known:
                found.add(source)
        return found

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_stmt(stmt, in_function)
                continue
            visit_stmt(child, in_function)

    def visit_stmt(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            (deferred if in_function else at_load).update(targets(node))
            return
        visit(node, in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(), str(path)), in_function=False)
    at_load.discard(name)
    deferred.discard(name)
    return at_load, deferred - at_load


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    found = modules()
    known = set(found)
    load, deferred = {}, {}
    for name, path in found.items():
        load[name], deferred[name] = imports(path, name, known)
    return load, deferred


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules, as one concrete circle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph is small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_one_circle(graph, group) for group in groups]


def _one_circle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group (breadth first)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{sorted(group)} is not a circle")


def test_no_import_circle_through_imports_that_run_at_load_time():
    load, _ = import_graph()
    found = circles(load)
    assert not found, "import circles (module-level imports):\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_import_circle_even_through_imports_inside_functions():
    load, deferred = import_graph()
    found = circles({name: load[name] | deferred[name] for name in load})
    assert not found, "import circles (counting imports inside functions):\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_circle_finder_finds_a_circle_and_reads_its_imports():
    """Guards the guard: a circle is found with its path, and every kind of import statement is read."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    load, deferred = import_graph()
    assert "simlab.control.observations" in load["simlab.control.controller"]  # from simlab.x import Name
    assert "simlab.control.plans" in load["simlab.control.controller"]  # from simlab.control import module
    assert "simlab.results" not in load["simlab"]  # under TYPE_CHECKING only
    assert any(deferred.values()), "no import inside a function was found anywhere"


def test_no_module_is_over_400_lines():
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    over = {name: n for name, n in sorted(sizes.items(), key=lambda kv: -kv[1]) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_importing_simlab_loads_no_heavy_dependency_and_writes_nothing(tmp_path, record_property):
    """`import simlab` is what every CLI start and every staging instance pays: no NumPy, pandas, SimPy, Typer.

    The time it takes is recorded (junit property `import_simlab_seconds`, printed with -s), not
    asserted: a wall-clock bound would fail on a busy machine rather than on a heavy import, and the
    modules loaded are what makes it slow.
    """
    code = ("import sys, time, json; t = time.perf_counter(); import simlab; t = time.perf_counter() - t; "
            "print(json.dumps({'seconds': t, 'modules': sorted(sys.modules)}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    heavy = sorted(m for m in out["modules"] if m.split(".")[0] in HEAVY)
    assert heavy == [], f"`import simlab` loads {heavy}"
    assert list(tmp_path.iterdir()) == [], "`import simlab` wrote files into the working directory"
    record_property("import_simlab_seconds", round(out["seconds"], 4))
    print(f"import simlab: {out['seconds'] * 1000:.1f} ms, {len(out['modules'])} modules loaded")

