"""Saving and loading fits as single netCDF files (no pickle, ever)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BayescaleError, FileFormatError

__all__ = ["load", "save_fit", "fit_from_tree"]

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

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"no fit file at {str(path)!r}")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/netCDF raise many types for damaged files
        raise FileFormatError(f"{str(path)!r} is not a readable netCDF file ({type(exc).__name__}: {exc})") from None
    return fit_from_tree(tree, repr(str(path)))


def fit_from_tree(tree, source="the fit", model=None):
    """Rebuild a :class:`ScalingFit` from its ``idata`` tree (read from a file or sent between processes).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's ``idata``.
    source : str
        Where the tree came from, for error messages.
    model : ScalingModel, optional
        Attach this model object (it must have the tree's specification)
        instead of rebuilding one from the specification.

    Raises
    ------
    FileFormatError
        The tree is not a bayescale fit, is incomplete, or is from a newer format version.
    """
    from .data import load_runs
    from .errors import DataError
    from .fit import FORMAT_VERSION, ScalingFit
    from .model import ScalingModel
    from .priors import prior_from_dict

    fmt = tree.attrs.get("bayescale_format")
    if fmt is None:
        raise FileFormatError(f"{source} is netCDF but not a bayescale fit (no 'bayescale_format' attribute)")
    try:
        fmt = int(fmt)
    except (TypeError, ValueError):
        raise FileFormatError(f"{source}: format version {fmt!r} is not an integer; the file is damaged") from None
    if fmt > FORMAT_VERSION:
        raise FileFormatError(
            f"{source} was written in bayescale file format {fmt} (by bayescale "
            f"{tree.attrs.get('bayescale_version', '?')}); this version reads format <= {FORMAT_VERSION}. "
            "Upgrade bayescale."
        )
    missing = [g for g in ("posterior", "constant_data", "observed_data") if g not in tree.children]
    missing += [a for a in ("model_spec", "priors", "centres", "sampler") if a not in tree.attrs]
    if missing:
        raise FileFormatError(f"{source} is missing group(s) or attribute(s) {missing}; the file is incomplete")
    try:
        spec = json.loads(tree.attrs["model_spec"])
        if model is None:
            model = ScalingModel.from_dict(spec)
        priors = {k: prior_from_dict(v) for k, v in json.loads(tree.attrs["priors"]).items()}
        centres = {str(k): float(v) for k, v in json.loads(tree.attrs["centres"]).items()}
        settings = json.loads(tree.attrs["sampler"])
        if not isinstance(settings, dict) or "random_seed" not in settings:
            raise ValueError(f"sampler settings {settings!r} lack a random_seed")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise FileFormatError(f"{source}: model specification unreadable ({exc})") from None
    absent = [k for k in model.param_names if k not in tree["posterior"].data_vars]
    if absent:
        raise FileFormatError(f"{source}: the posterior lacks parameter(s) {absent} of its model; the file is damaged")
    const = tree["constant_data"].to_dataset()
    try:
        frame = pd.DataFrame({k: const[k].values for k in ("N", "D", "C", "U", "loss") if k in const})
        if "group" in const:
            frame["group"] = const["group"].values.astype(str)
        runs = load_runs(frame, require=model.law.inputs)
    except (DataError, ValueError) as exc:
        raise FileFormatError(f"{source}: the training runs stored in it are unusable ({exc})") from None
    fit = ScalingFit(model, runs, tree, priors, centres)
    from .fit import add_posterior_predictive

    add_posterior_predictive(fit)  # files written before the group was stored get it on loading
    return fit
