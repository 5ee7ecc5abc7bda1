"""The notebooks in notebooks/ execute top to bottom on a real kernel; any cell error fails the test.

Each notebook ends with an assertion on its own numbers (the smallest fleet
that survives a zone outage exists; canary hurts fewer users than big bang),
so a notebook that runs but no longer shows what it says also fails.
"""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(path: Path):
    import nbformat
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    # the native kernel is this interpreter (the venv's), whatever kernels the machine has installed
    client = NotebookClient(nb, timeout=180, kernel_name=NATIVE_KERNEL_NAME,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    return nb


@pytest.mark.parametrize("name", ["capacity-planning.ipynb", "rollout-policy.ipynb"])
def test_notebook_executes_without_errors(name):
    nb = execute(NOTEBOOKS / name)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) >= 2, "the notebook should show its figures"


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == ["capacity-planning.ipynb", "rollout-policy.ipynb"]


def test_notebooks_are_committed_without_outputs():
    """Outputs are produced by running them (here, and by readers), not stored: diffs stay readable."""
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        stored = [c for c in nb.cells if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not stored, f"{path.name} has stored outputs: clear them before committing"
