"""Saving and loading fits as single netCDF files (no pickle, ever)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import FileFormatError
from .files import NETCDF_ENGINE

__all__ = ["load", "save_fit", "fit_from_tree"]

ENGINE = NETCDF_ENGINE


def save_fit(fit, path) -> None:
    """Atomically write `fit` to `path`: :meth:`ScalingFit.save`."""
    fit.save(path)


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
    _check_settings(settings, source)
    _check_centres(centres, source)
    posterior = tree["posterior"].to_dataset()
    _check_draws(posterior, model, priors, source)
    const = tree["constant_data"].to_dataset()
    try:
        frame = pd.DataFrame({k: const[k].values for k in ("N", "D", "C", "U", "loss") if k in const})
        if "group" in const:
            frame["group"] = const["group"].values.astype(str)
        for stored, column in (("run_id", "run"), ("schedule", "schedule"), ("D_total", "D_total")):
            if stored in const:  # checkpoint data
                frame[column] = const[stored].values.astype(float if column == "D_total" else str)
        if "undertuned_flag" in const:  # rows flagged as possibly undertuned (bayescale.undertuned)
            frame["undertuned"] = const["undertuned_flag"].values.astype(bool)
        runs = load_runs(frame, require=model.law.inputs)
    except (DataError, ValueError) as exc:
        raise FileFormatError(f"{source}: the training runs stored in it are unusable ({exc})") from None
    _check_law(model, posterior, runs, source)
    fit = ScalingFit(model, runs, tree, priors, centres)
    from .fit import add_posterior_predictive

    add_posterior_predictive(fit)  # files written before the group was stored get it on loading
    return fit


# What a loaded file must satisfy beyond its structure: a file that breaks one of these rules was damaged or
# edited, and would give NaN predictions or probabilities from part of the draws if it were used.
_SETTING_INTS = ("draws", "tune", "chains")
_LAW_DRAWS, _LAW_RUNS = 200, 2000  # the law is checked at this many draws x runs, spread evenly


def _check_settings(settings, source):
    from .validation import check_seed

    try:
        if settings["random_seed"] is None:
            raise ValueError("None")
        check_seed(settings["random_seed"])
    except ValueError:
        raise FileFormatError(f"{source}: attribute sampler.random_seed is {settings['random_seed']!r} "
                              f"({type(settings['random_seed']).__name__}); a fit's seed is an integer from 0 to "
                              "2**63 - 1. The file is damaged") from None
    for name in _SETTING_INTS:
        value = settings.get(name)
        if name in settings and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise FileFormatError(f"{source}: attribute sampler.{name} is {value!r}; expected a whole number >= 0. "
                                  "The file is damaged")


def _check_centres(centres, source):
    for name, value in centres.items():
        if not (np.isfinite(value) and value > 0):
            raise FileFormatError(f"{source}: attribute centres[{name!r}] is {value!r}; an input's centre is a "
                                  "positive finite number. The file is damaged")


def _support(name, model, priors):
    """(lower, upper, why) of a posterior variable: every parameter of a model is positive."""
    from .hierarchy import POP_SUFFIX

    base = name[: -len(POP_SUFFIX)] if name.endswith(POP_SUFFIX) else name
    prior = priors.get(name, priors.get(base))
    if prior is not None and prior.family == "Uniform":
        return prior.lower, prior.upper, f"its prior {prior}"
    if prior is not None and prior.family == "Beta":  # a probability (bayescale.undertuned)
        return 0.0, 1.0, f"its prior {prior}"
    return 0.0, np.inf, f"its prior {prior}" if prior is not None else "the parameters of a model are positive"


def _check_draws(posterior, model, priors, source):
    """Every published variable: dims (chain, draw, ...), at least one draw, finite and inside its support."""
    for name in model.published_names:
        if name not in posterior.data_vars:
            continue
        var = posterior[name]
        where = f"{source}: posterior variable {name!r}"
        if tuple(var.dims[:2]) != ("chain", "draw"):
            raise FileFormatError(f"{where} has dims {var.dims}; expected ('chain', 'draw', ...). The file is damaged")
        if var.size == 0:
            raise FileFormatError(f"{where} holds no draws ({var.sizes['chain']} chains x {var.sizes['draw']} "
                                  "draws); the file is damaged")
        if var.dtype.kind not in "fiu":
            raise FileFormatError(f"{where} holds {var.dtype} values, not numbers; the file is damaged")
        values = np.asarray(var.values, dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            example = values[bad][0]
            raise FileFormatError(f"{where} holds {int(bad.sum())} non-finite draw(s) of {values.size} "
                                  f"(e.g. {example}); every draw must be a finite number. The file is damaged")
        lower, upper, why = _support(name, model, priors)
        strict = lower == 0.0 and np.isinf(upper)
        outside = (values <= lower) if strict else (values < lower) | (values > upper)
        if outside.any():
            example = values[outside][0]
            what = "positive" if strict else f"in [{lower:g}, {upper:g}]"
            raise FileFormatError(f"{where} holds {int(outside.sum())} draw(s) of {values.size} outside its support "
                                  f"(e.g. {example:g}); it must be {what} ({why}). The file is damaged")


def _check_law(model, posterior, runs, source):
    """The law, at draws and runs spread over the file's, gives a finite loss (a stored formula can overflow)."""
    from .laws import NUMPY

    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    d_sel = np.unique(np.linspace(0, n_draws - 1, min(n_draws, _LAW_DRAWS)).round().astype(int))
    r_sel = np.unique(np.linspace(0, runs.n_runs - 1, min(runs.n_runs, _LAW_RUNS)).round().astype(int))
    params = {}
    for name in model.law.param_names:
        var = posterior[name]
        values = np.asarray(var.values, dtype=float).reshape(n_draws, -1)[d_sel]
        if var.ndim == 2:
            params[name] = values
        else:  # one column per group: each run takes its group's
            labels = {str(g): i for i, g in enumerate(var[var.dims[2]].values)}
            groups = runs.frame["group"].astype(str).to_numpy()[r_sel] if "group" in runs.frame else None
            if groups is None or any(g not in labels for g in groups):
                raise FileFormatError(f"{source}: posterior variable {name!r} has groups "
                                      f"{sorted(labels)} that do not match the stored runs' groups")
            params[name] = values[:, [labels[g] for g in groups]]
    inputs = {k: v[r_sel][None, :] for k, v in runs.inputs(model.law.inputs).items()}
    with np.errstate(all="ignore"):
        log_loss = np.asarray(model.law.log_loss(inputs, params, NUMPY), dtype=float)
    bad = ~np.isfinite(log_loss)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise FileFormatError(
            f"{source}: its law L = {model.law.formula} (attribute model_spec) gives a non-finite loss at "
            f"{int(bad.sum())} of {bad.size} (draw, run) pairs checked, e.g. {log_loss[i, j]} at run {int(r_sel[j])} "
            f"with {', '.join(f'{k}={float(np.broadcast_to(v, bad.shape)[i, j]):.4g}' for k, v in params.items())}; "
            "the stored specification or posterior is invalid")
