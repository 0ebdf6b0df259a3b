import os

import numpy as np
import pytest
import xarray as xr

import bayescale as bs
from bayescale.base.errors import FileFormatError

NEW = {"N": [1e9, 70e9], "D": [2e10, 1.4e12]}


def test_round_trip_predicts_identically(chinchilla_fit, tmp_path):
    path = tmp_path / "fit.nc"
    chinchilla_fit.save(path)
    again = bs.load(path)
    assert again.model.to_dict() == chinchilla_fit.model.to_dict()
    assert {k: str(v) for k, v in again.priors_.items()} == {k: str(v) for k, v in chinchilla_fit.priors_.items()}
    np.testing.assert_array_equal(again.predict(NEW).to_numpy(), chinchilla_fit.predict(NEW).to_numpy())
    np.testing.assert_array_equal(again.runs.loss, chinchilla_fit.runs.loss)
    assert again.summary().equals(chinchilla_fit.summary())
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_failed_save_leaves_no_file_and_keeps_the_old_one(chinchilla_fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    path.write_bytes(b"the good old file")

    def broken(self, target, **kw):
        with open(target, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", broken)
    with pytest.raises(OSError, match="disk full"):
        chinchilla_fit.save(path)
    assert path.read_bytes() == b"the good old file"
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_save_into_missing_folder(chinchilla_fit, tmp_path):
    with pytest.raises(bs.BayescaleError, match="does not exist"):
        chinchilla_fit.save(tmp_path / "nope" / "fit.nc")


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="no fit file"):
        bs.load(tmp_path / "absent.nc")


def test_garbage_and_truncated_files(chinchilla_fit, tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not netcdf at all")
    with pytest.raises(FileFormatError, match="not a readable netCDF"):
        bs.load(junk)
    good = tmp_path / "good.nc"
    chinchilla_fit.save(good)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(FileFormatError):
        bs.load(cut)


def test_foreign_netcdf(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3.0))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(FileFormatError, match="not a bayescale fit"):
        bs.load(path)


def test_file_from_a_future_version(chinchilla_fit, tmp_path):
    tree = chinchilla_fit.idata.copy()
    tree.attrs["bayescale_format"] = 99
    path = tmp_path / "future.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(FileFormatError, match="format 99.*Upgrade bayescale"):
        bs.load(path)


# ------------------------------------------------------------------ files that lie about their content
import json  # noqa: E402
import warnings  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bayescale.many.io import fit_from_tree  # noqa: E402

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PARAMS = ["E", "A", "B", "alpha", "beta", "sigma", "nu"]


def _with_posterior(tree, name, values):
    tree = tree.copy()
    ds = tree["posterior"].to_dataset()
    ds[name] = (ds[name].dims, values)
    tree["posterior"] = xr.DataTree(ds)
    return tree


@PROPERTY
@given(name=st.sampled_from(PARAMS), bad=st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0, -1e-300]),
       where=st.lists(st.integers(0, 10**6), min_size=1, max_size=5), scale=st.booleans())
def test_loaded_draws_must_be_finite_and_inside_their_support(chinchilla_fit, name, bad, where, scale):
    values = chinchilla_fit.idata["posterior"][name].values.copy()
    for w in where:
        values.flat[w % values.size] = bad * (values.flat[w % values.size] if scale and np.isfinite(bad) else 1)
    with pytest.raises(FileFormatError, match=rf"posterior variable '{name}' holds \d+ .*draw"):
        fit_from_tree(_with_posterior(chinchilla_fit.idata, name, values), "fit.nc")


@PROPERTY
@given(seed=st.one_of(st.floats(allow_nan=True), st.text(max_size=5), st.booleans(), st.none(),
                      st.integers(max_value=-1), st.integers(min_value=2**63), st.lists(st.integers(), max_size=2)))
def test_loaded_seed_must_be_an_integer_in_range(chinchilla_fit, seed):
    tree = chinchilla_fit.idata.copy()
    sampler = json.loads(tree.attrs["sampler"])
    sampler["random_seed"] = seed
    try:
        tree.attrs["sampler"] = json.dumps(sampler)
    except ValueError:  # NaN is not JSON
        return
    with pytest.raises(FileFormatError, match=r"attribute sampler\.random_seed is"):
        fit_from_tree(tree, "fit.nc")


@pytest.mark.filterwarnings("ignore::bayescale.UnverifiedFileWarning")  # written here, without a digest
@pytest.mark.parametrize("extra", [" + 1/0", " + 9**9**9", " * 1e308 * 1e308", " + exp(1000)"])
def test_a_stored_law_that_overflows_is_refused(chinchilla_fit, tmp_path, extra):
    tree = chinchilla_fit.idata.copy()
    kinds = {"E": {"kind": "irreducible"}, "A": {"kind": "coefficient", "scales_with": ["N", "alpha"]},
             "B": {"kind": "coefficient", "scales_with": ["D", "beta"]}, "alpha": {"kind": "exponent"},
             "beta": {"kind": "exponent"}}
    spec = json.loads(tree.attrs["model_spec"])
    spec["law"] = {"name": "edited", "formula": "E + A / N**alpha + B / D**beta" + extra, "inputs": ["N", "D"],
                   "parameters": kinds}
    tree.attrs["model_spec"] = json.dumps(spec)
    path = tmp_path / "edited.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    # A constant part that is not finite is refused as the stored spec is read; a law that overflows otherwise,
    # when it is evaluated at the stored runs.
    with pytest.raises(FileFormatError, match=r"edited\.nc.*(law .*model_spec.*non-finite loss|formula refused)"):
        bs.load(path)


def test_zero_draws_and_bad_centres_are_refused(chinchilla_fit):
    tree = chinchilla_fit.idata.copy()
    tree["posterior"] = xr.DataTree(tree["posterior"].to_dataset().isel(draw=slice(0, 0)))
    with pytest.raises(FileFormatError, match="holds no draws"):
        fit_from_tree(tree, "fit.nc")
    tree = chinchilla_fit.idata.copy()
    tree.attrs["centres"] = json.dumps({k: -1.0 for k in json.loads(tree.attrs["centres"])})
    with pytest.raises(FileFormatError, match=r"attribute centres\['.*'\] is -1.0"):
        fit_from_tree(tree, "fit.nc")


def test_risk_never_reports_a_probability_over_non_finite_draws(chinchilla_fit):
    """A fit whose draws go non-finite (built in memory: files are refused above) gets NaN and a warning."""
    values = chinchilla_fit.idata["posterior"]["E"].values.copy()
    values.flat[::7] = np.nan
    tree = _with_posterior(chinchilla_fit.idata, "E", values)
    fit = bs.ScalingFit(chinchilla_fit.model, chinchilla_fit.runs, tree, chinchilla_fit.priors_,
                        chinchilla_fit.centres_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ExtrapolationWarning)
        with pytest.warns(bs.NonFiniteWarning, match=r"P\(loss <= target\) is NaN for 2 row\(s\)"):
            table = fit.risk(1e22, target=2.2, plan="1B:20B")
        assert table["p_target"].isna().all()
        assert chinchilla_fit.risk(1e22, target=2.2, plan="1B:20B")["p_target"].notna().all()
        with pytest.warns(bs.DegenerateResultWarning, match=r"budget_for: not finite: C.*not computed"):
            need = fit.budget_for(2.2)
        assert need["C"].isna().all() and need["status"].str.startswith("not computed").all()
