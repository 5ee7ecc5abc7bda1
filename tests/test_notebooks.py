"""The notebooks in notebooks/ run top to bottom on a real kernel, on simlab's public API only.

Each ends with an assertion on its own conclusion (the conditions cost instances, the cautious canary adds
less harm, the peak hour hurts more, staging parted from the prediction where it says), so a notebook that
runs but no longer shows what it says fails too. They are committed without outputs (notebooks/README.md).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import simlab

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
FIGURES = {"capacity-planning.ipynb": 1, "rollout-policy.ipynb": 4, "deploy-window.ipynb": 1, "sim-vs-staging.ipynb": 1}
ALLOWED = {"simlab", "pandas", "matplotlib", "matplotlib.pyplot"}


def code_of(path: Path) -> str:
    import nbformat

    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def execute(path: Path):
    import nbformat
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # the native kernel is this interpreter (the venv's), whatever kernels the machine has installed
    NotebookClient(nb, timeout=120, kernel_name=NATIVE_KERNEL_NAME,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_top_to_bottom_and_shows_its_figures(name):
    nb = execute(NOTEBOOKS / name)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= FIGURES[name], f"{name} should show its figures"
    tables = [o for o in outputs if "text/html" in o.get("data", {})]
    assert tables, f"{name} should show a result as a table"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_uses_the_public_api_only(name):
    """simlab's names come from `import simlab` and are in simlab.__all__: no private module, no report internals."""
    tree = ast.parse(code_of(NOTEBOOKS / name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED, ast.unparse(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.module in ALLOWED - {"simlab"}, ast.unparse(node)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "simlab":
            assert node.attr in simlab.__all__, ast.unparse(node)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(FIGURES)


def test_notebooks_are_committed_without_outputs():
    """Outputs are produced by running them (here, and by readers), not stored: diffs stay readable."""
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        stored = [c for c in nb.cells if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not stored, f"{path.name} has stored outputs: clear them before committing"
