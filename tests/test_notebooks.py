"""Notebooks are documentation people run: each one is committed with its outputs (so its
pictures show on a code host) and executes top to bottom without error."""
import os

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "notebooks")
# Data-folder files a notebook reads (it skips without them, like the other real-data tests).
NEEDS = {"defects_and_credit.ipynb": ("chartmimic_direct_v1.jsonl",)}


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")))
def test_notebook_runs(name, benchmark_file):
    for needed in NEEDS.get(name, ()):
        benchmark_file(needed)
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": NOTEBOOKS}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(NOTEBOOKS) if n.endswith(".ipynb")))
def test_notebook_is_committed_with_its_pictures(name):
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    pictures = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if "image/png" in o.get("data", {})]
    assert pictures, f"{name} has no picture outputs: execute it and commit it with its outputs"
