"""Saving and loading fits as single netCDF files (no pickle, ever)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.digest import DIGEST_ATTR, PART_NAMES, compare, tree_digest
from ..fitting.downstream import FILE_KIND, link_from_tree
from ..base.errors import DataError, FileFormatError, UnverifiedFileWarning
from ..base.files import NETCDF_ENGINE
from ..base.errors import warn_user
from ..runs.data import load_runs
from ..fitting.fit import FORMAT_VERSION, ScalingFit, add_posterior_predictive
from ..fitting.loglik import pointwise_loglik
from ..analysis.hierarchy import POP_SUFFIX
from ..core.laws import NUMPY
from ..fitting.model import ScalingModel
from ..core.priors import prior_from_dict
from ..base.validation import check_seed

__all__ = ["load", "fit_from_tree"]

ENGINE = NETCDF_ENGINE


def load(path):
    """Load a fit written by :meth:`ScalingFit.save` (or a link written by :meth:`DownstreamFit.save`).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    ScalingFit or DownstreamFit
        Predicts exactly as the fit that was saved.

    Raises
    ------
    FileFormatError
        The file is missing, truncated, not netCDF, not a bayescale fit,
        written by a newer format version, or edited after it was saved: its
        content no longer matches the digest :meth:`ScalingFit.save` wrote
        (the message names the parts that differ: ``spec``, ``posterior``,
        ``runs`` ...). A file without a digest (saved by an older bayescale)
        loads with an :class:`~bayescale.base.errors.UnverifiedFileWarning`, once
        per file, if its stored log-likelihood matches its posterior.
    TypeError
        `path` is not a str or os.PathLike (e.g. None).

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.load("chinchilla_fit.nc")  # doctest: +SKIP
    """
    import xarray as xr

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load() needs the path of a fit file (str or os.PathLike), not {type(path).__name__} "
                        f"{path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"no fit file at {str(path)!r}")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/netCDF raise many types for damaged files
        raise FileFormatError(f"{str(path)!r} is not a readable netCDF file ({type(exc).__name__}: {exc})") from None
    if tree.attrs.get("bayescale_kind") == FILE_KIND:  # a saved downstream link
        _check_digest(tree, repr(str(path)), path)
        return link_from_tree(tree, repr(str(path)))
    return fit_from_tree(tree, repr(str(path)), file=path)


def fit_from_tree(tree, source="the fit", model=None, *, file=None):
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
    file : Path, optional
        The file the tree was read from: its digest is then checked (and a
        file without one is warned about once).

    Raises
    ------
    FileFormatError
        The tree is not a bayescale fit, is incomplete, or is from a newer format version.
    """
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
    verified = _check_digest(tree, source, file) if file is not None or DIGEST_ATTR in tree.attrs else True
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
    _check_shape(settings, posterior, source)
    const = tree["constant_data"].to_dataset()
    try:
        frame = pd.DataFrame({k: const[k].values for k in ("N", "D", "C", "U", "loss") if k in const})
        if "group" in const:
            frame["group"] = const["group"].values.astype(str)
        for stored, column in (("run_id", "run"), ("schedule", "schedule"), ("D_total", "D_total")):
            if stored in const:  # checkpoint data
                frame[column] = const[stored].values.astype(float if column == "D_total" else str)
        if "undertuned_flag" in const:  # rows flagged as possibly undertuned (bayescale.runs.undertuned)
            frame["undertuned"] = const["undertuned_flag"].values.astype(bool)
        runs = load_runs(frame, require=model.law.inputs)
    except (DataError, ValueError) as exc:
        raise FileFormatError(f"{source}: the training runs stored in it are unusable ({exc})") from None
    _check_groups(model, runs, source)
    _check_law(model, posterior, runs, source)
    if not verified:
        _check_loglik(model, posterior, runs, tree, source)
    fit = ScalingFit(model, runs, tree, priors, centres)

    add_posterior_predictive(fit)  # files written before the group was stored get it on loading
    return fit


# What a loaded file must satisfy beyond its structure: a file that breaks one of these rules was damaged or
# edited, and would give NaN predictions or probabilities from part of the draws if it were used.
_SETTING_INTS = ("draws", "tune", "chains")
_LAW_DRAWS, _LAW_RUNS = 200, 2000  # the law is checked at this many draws x runs, spread evenly


def _check_settings(settings, source):
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


def _check_shape(settings, posterior, source):
    """The posterior holds the chains and draws its sampler settings say were kept."""
    for name, dim in (("chains", "chain"), ("draws", "draw")):
        if name in settings and dim in posterior.sizes and settings[name] != posterior.sizes[dim]:
            raise FileFormatError(f"{source}: its posterior holds {posterior.sizes[dim]} {name}, but its sampler "
                                  f"settings (attribute sampler.{name}) say {settings[name]} were kept; the file "
                                  "is damaged or was edited")


def _check_centres(centres, source):
    for name, value in centres.items():
        if not (np.isfinite(value) and value > 0):
            raise FileFormatError(f"{source}: attribute centres[{name!r}] is {value!r}; an input's centre is a "
                                  "positive finite number. The file is damaged")


def _support(name, model, priors):
    """(lower, upper, why) of a posterior variable: every parameter of a model is positive."""
    base = name[: -len(POP_SUFFIX)] if name.endswith(POP_SUFFIX) else name
    prior = priors.get(name, priors.get(base))
    if prior is not None and prior.family == "Uniform":
        return prior.lower, prior.upper, f"its prior {prior}"
    if prior is not None and prior.family == "Beta":  # a probability (bayescale.runs.undertuned)
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


_WARNED: set[str] = set()  # files without a digest already warned about in this process
#: Largest relative difference between a stored log-likelihood entry and the one recomputed from the stored
#: posterior (the same float64 code gives the same numbers; 1e-9 leaves room for another BLAS or numpy).
LOGLIK_RTOL = 1e-9
_LOGLIK_DRAWS = 100  # draws spread over the file's at which the stored log-likelihood is recomputed


def _check_digest(tree, source, file) -> bool:
    """True when the tree's digest matches its content; False (warned once per file) when it has none."""
    stored = tree.attrs.get(DIGEST_ATTR)
    if stored is None:
        key = str(Path(file).resolve()) if file is not None else source
        if key not in _WARNED:
            _WARNED.add(key)
            warn_user(f"{source} carries no digest of its content (saved by an older bayescale), so edits "
                      "cannot be detected; save the fit again to add one", UnverifiedFileWarning, stacklevel=4)
        return False
    try:
        stored = json.loads(stored)
        if not isinstance(stored, dict):
            raise ValueError(f"a {type(stored).__name__}, not an object")
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{source}: attribute {DIGEST_ATTR} is unreadable ({exc}); the file is damaged") \
            from None
    differ = compare(stored, tree_digest(tree))
    if differ:
        what = "; ".join(f"{name} ({PART_NAMES.get(name, name)})" for name in differ)
        raise FileFormatError(f"{source} was changed after it was saved: its content no longer matches the digest "
                              f"written with it in {len(differ)} part(s): {what}. A fit file is not to be edited; "
                              "refit, or load the original and save it again")
    return True


def _check_groups(model, runs, source):
    """A spec that pools parameters by group needs stored runs with groups (and the reverse)."""
    if model.hierarchical and runs.groups is None:
        raise FileFormatError(f"{source}: its specification (attribute model_spec) pools "
                              f"{model.pooling.to_dict() if model.pooling else 'parameters'} by group, but its "
                              "stored runs (constant_data) have no 'group' column; the specification and the data "
                              "disagree. The file is damaged or was edited")


def _check_loglik(model, posterior, runs, tree, source):
    """A file without a digest: its stored log-likelihood, recomputed from its posterior at a few draws."""
    if "log_likelihood" not in tree.children or "log_loss" not in tree["log_likelihood"].data_vars:
        return
    stored = tree["log_likelihood"]["log_loss"]
    if stored.dims[:2] != ("chain", "draw") or stored.shape[:2] != (posterior.sizes["chain"], posterior.sizes["draw"]) \
            or stored.shape[2:] != (runs.n_runs,):
        raise FileFormatError(f"{source}: its log-likelihood has shape {stored.shape}, but the posterior holds "
                              f"{posterior.sizes['chain']} chains x {posterior.sizes['draw']} draws of "
                              f"{runs.n_runs} runs; the file is damaged or was edited")
    draws = np.unique(np.linspace(0, posterior.sizes["draw"] - 1, min(posterior.sizes["draw"], _LOGLIK_DRAWS))
                      .round().astype(int))
    sub = posterior.isel(draw=draws)
    with np.errstate(all="ignore"):
        again = np.asarray(pointwise_loglik(model, sub, runs).values, dtype=float)
    kept = np.asarray(stored.isel(draw=draws).values, dtype=float)
    close = np.isclose(again, kept, rtol=LOGLIK_RTOL, atol=LOGLIK_RTOL) | (np.isnan(again) & np.isnan(kept))
    if not close.all():
        c, d, r = np.argwhere(~close)[0]
        raise FileFormatError(
            f"{source}: its stored log-likelihood does not follow from its posterior at {int((~close).sum())} of "
            f"{close.size} (chain, draw, run) entries checked, e.g. chain {c}, draw {int(draws[d])}, run {r}: stored "
            f"{kept[c, d, r]:.6g}, recomputed {again[c, d, r]:.6g}. The posterior, runs or specification were "
            "edited after the fit was made")
