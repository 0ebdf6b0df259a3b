"""The modules of the earlier flat layout still import under their old names, for one release."""

import importlib
import json
import subprocess
import sys
import warnings

import pytest

import bayescale as bs
from bayescale.base.moved import FOLDERS, NEW_NAMES, RENAMED, new_name


def test_every_module_has_its_old_name_and_nothing_else_does():
    modules = {m for mods in FOLDERS.values() for m in mods}
    old = {({v: k for k, v in RENAMED.items()}).get(m, m) for m in modules}
    assert set(NEW_NAMES) == {f"bayescale.{m}" for m in old}
    for old, new in NEW_NAMES.items():
        assert importlib.util.find_spec(new) is not None, f"{old} -> {new}, which does not exist"
    assert new_name("bayescale.analysis.risk") is None and new_name("bayescale.nothing") is None
    assert new_name("bayescale.datasets") == "bayescale.runs.datasets"
    assert new_name("bayescale.checkpoints") == "bayescale.many.resume"


def _import_in_fresh_process(statement):
    """Warnings (category: message) that `statement` prints in a fresh interpreter that shows every warning."""
    code = ("import json, warnings; warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            f"    {statement}\n"
            "print(json.dumps([f'{w.category.__name__}: {w.message}' for w in seen if 'moved' in str(w.message)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_public_modules_import_under_their_old_names_without_a_warning():
    assert _import_in_fresh_process("import bayescale.laws, bayescale.risk; from bayescale.priors import "
                                    "default_prior") == []


def test_other_old_names_warn_and_name_the_new_place():
    seen = _import_in_fresh_process("from bayescale.backtest import split_runs")
    assert seen == ["DeprecationWarning: bayescale.backtest moved to bayescale.across.backtest; import it from "
                    "there (the old name is kept for one release)"]


def test_the_old_name_is_the_same_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("bayescale.graph")
    assert old is importlib.import_module("bayescale.fitting.graph")
    assert importlib.import_module("bayescale.laws") is bs.laws is importlib.import_module("bayescale.core.laws")


def test_old_module_attributes_of_the_package():
    with pytest.warns(DeprecationWarning, match="bayescale.sampling moved to bayescale.fitting.sampling"):
        assert bs.sampling is importlib.import_module("bayescale.fitting.sampling")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bs.risk.__name__ == "bayescale.analysis.risk"
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        bs.nonesuch  # noqa: B018
