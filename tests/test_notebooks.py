"""The notebooks are stored executed, re-run cleanly here, and every figure cell shows an image.

The checks read from their outputs are in ``notebook_checks``; notebook 08 runs in
``test_notebook_downstream.py``.
"""

import pytest

from notebook_checks import NOTEBOOKS, OWN_FILE, check_outputs, kernel_name, run_notebook  # noqa: F401  (fixture)

import nbformat


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    assert {p.name for p in NOTEBOOKS} >= set(OWN_FILE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_notebook_is_executed_with_figures(path):
    """What a reader sees on GitHub: outputs stored, images in every figure cell, no errors."""
    check_outputs(nbformat.read(path, as_version=4), path.name)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name not in OWN_FILE], ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, kernel_name):  # noqa: F811  (the fixture imported above)
    run_notebook(path, tmp_path, kernel_name)
