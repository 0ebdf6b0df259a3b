import os

import numpy as np
import pytest
import xarray as xr

import bayescale as bs
from bayescale.errors import FileFormatError

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
