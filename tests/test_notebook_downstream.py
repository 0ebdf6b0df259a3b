"""Notebook 08 (downstream laws) re-runs cleanly; a file of its own, so CI runs it beside the other notebooks."""

import pytest

from notebook_checks import NOTEBOOKS, OWN_FILE, kernel_name, run_notebook  # noqa: F401  (fixture)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name in OWN_FILE], ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, kernel_name):  # noqa: F811  (the fixture imported above)
    run_notebook(path, tmp_path, kernel_name)
