"""The isoFLOP allocation check: a fit keeps the exponent its runs show; a law whose allocation moved fails it."""

import copy

import pytest
import xarray as xr

import bayescale as bs
from bayescale.base.errors import SpecError


def test_isoflop_check_keeps_the_allocation_of_the_runs(chinchilla_fit):
    table = bs.isoflop_check(chinchilla_fit, draws=50)
    row = table.iloc[0]
    assert row["group"] is None and row["levels"] >= 3 and row["replicates"] == 50
    # measured over ten replicate seeds at 50 replicates: p 0.60-1.0 (0.80 with 200)
    assert row["inside"] and row["p_value"] > 0.2
    assert row["a_law_lower"] < row["a_law_median"] < row["a_law_upper"]


def test_isoflop_check_fails_a_law_whose_allocation_moved(chinchilla_fit):
    moved = copy.copy(chinchilla_fit)
    tree = chinchilla_fit.idata.copy(deep=True)
    post = tree["posterior"].to_dataset()
    tree["posterior"] = xr.DataTree(post.assign(beta=post["beta"] * 0.8))
    moved.idata = tree
    row = bs.isoflop_check(moved, draws=50).iloc[0]
    # its replicates put the isoFLOP minima at other sizes (measured: 0.80 against the runs' 0.52, or no
    # interior minimum at all), and its own beta / (alpha + beta) is 0.41 against 0.51
    assert not row["inside"] and not row["inside_law"]


def test_isoflop_check_refuses_bad_arguments(chinchilla_fit):
    with pytest.raises(TypeError, match="bayescale.IsoFLOP"):
        bs.isoflop_check(chinchilla_fit, isoflop={"resolution": 0.1})
    with pytest.raises(SpecError, match="draws must be a positive integer"):
        bs.isoflop_check(chinchilla_fit, draws=0)
