"""Saving and loading fits as single netCDF files (no pickle, ever)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BayescaleError, FileFormatError

__all__ = ["load", "save_fit"]

ENGINE = "h5netcdf"


def save_fit(fit, path) -> None:
    """Atomically write `fit` to `path` (temporary file in the same folder, then rename)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise BayescaleError(f"cannot save to {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        fit.idata.to_netcdf(tmp, engine=ENGINE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load(path):
    """Load a fit written by :meth:`ScalingFit.save`.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    ScalingFit
        Predicts exactly as the fit that was saved.

    Raises
    ------
    FileFormatError
        The file is missing, truncated, not netCDF, not a bayescale fit, or
        written by a newer format version.

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.load("chinchilla_fit.nc")  # doctest: +SKIP
    """
    import xarray as xr

    from .data import load_runs
    from .fit import FORMAT_VERSION, ScalingFit
    from .model import ScalingModel
    from .priors import prior_from_dict

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"no fit file at {str(path)!r}")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/netCDF raise many types for damaged files
        raise FileFormatError(f"{str(path)!r} is not a readable netCDF file ({type(exc).__name__}: {exc})") from None
    fmt = tree.attrs.get("bayescale_format")
    if fmt is None:
        raise FileFormatError(f"{str(path)!r} is netCDF but not a bayescale fit (no 'bayescale_format' attribute)")
    if int(fmt) > FORMAT_VERSION:
        raise FileFormatError(
            f"{str(path)!r} was written in bayescale file format {int(fmt)} (by bayescale "
            f"{tree.attrs.get('bayescale_version', '?')}); this version reads format <= {FORMAT_VERSION}. "
            "Upgrade bayescale."
        )
    missing = [g for g in ("posterior", "constant_data", "observed_data") if g not in tree.children]
    if missing:
        raise FileFormatError(f"{str(path)!r} is missing group(s) {missing}; the file is incomplete")
    try:
        model = ScalingModel.from_dict(json.loads(tree.attrs["model_spec"]))
        priors = {k: prior_from_dict(v) for k, v in json.loads(tree.attrs["priors"]).items()}
        centres = json.loads(tree.attrs["centres"])
    except (KeyError, ValueError) as exc:
        raise FileFormatError(f"{str(path)!r}: model specification unreadable ({exc})") from None
    const = tree["constant_data"].to_dataset()
    frame = pd.DataFrame({k: const[k].values for k in ("N", "D", "C", "U", "loss") if k in const})
    if "group" in const:
        frame["group"] = const["group"].values.astype(str)
    runs = load_runs(frame, require=model.law.inputs)
    return ScalingFit(model, runs, tree, priors, centres)
