"""Predictive draws and tables of the loss at new runs, for any fit (:mod:`bayescale.analysis.contract`).

The curve band is the spread of the law's expected loss over the fit's
parameter draws (and, beyond the fitted runs, the law's form uncertainty);
the new-run band adds each fit's run-to-run noise
(:meth:`~bayescale.analysis.contract.ScalingResult.noise_draws`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .conflicts import caveats
from .contract import SAMPLE_DIMS, check_group, interval_label, two_bands
from ..runs.data import load_runs
from ..core.extrapolation import annotate
from ..core.shifts import irreducible_draws, shift_log_loss
from ..core.laws import NUMPY
from ..base.validation import check_prob, check_seed

__all__ = ["predict_draws", "log_predict_draws", "predict", "row_params", "log_curve"]


def new_runs(result, runs, columns=None):
    """`runs` as RunData holding the inputs of the result's law (loss optional)."""
    return load_runs(runs, columns=columns, require=result.law.inputs, require_loss=False)


def row_params(result, runs, group=None, random_seed=None) -> dict:
    """Parameter draws per row of `runs`: arrays shaped (chain, draw, n) or (chain, draw, 1)."""
    if check_group(result, group) is not None or result.hierarchical:
        return result.row_param_draws(runs, group, random_seed)
    return {k: np.asarray(v)[..., None] for k, v in result.param_draws(random_seed=random_seed).items()}


def log_curve(law, inputs, params) -> np.ndarray:
    """The law's log loss at `inputs` (arrays of n points) for each draw of `params` ((chain, draw, 1 or n))."""
    x = {k: np.asarray(v, dtype=float)[None, None, :] for k, v in inputs.items()}
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.asarray(law.log_loss(x, params, NUMPY))


def predict_draws(result, runs, *, random_seed=None, columns=None, group=None) -> xr.Dataset:
    """Draws of the expected loss and of a new run's loss at new runs.

    Parameters
    ----------
    result : ScalingResult
        Any fit.
    runs : DataFrame, dict of arrays, RunData or path
        Inputs of the law (and for a fit with groups optionally ``group``).
    random_seed : int, optional
        Seed of the new-run noise (and of a new group's draws); default the
        fit's seed.
    group : label, optional
        Fits with groups: the group of rows without a ``group`` column.

    Returns
    -------
    xarray.Dataset
        ``expected_loss`` and ``new_run_loss``, dims (chain, draw, run).

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> predict_draws(fit, {"N": [70e9], "D": [1.4e12]})["new_run_loss"].dims
    ('chain', 'draw', 'run')
    """
    logs = log_predict_draws(result, runs, random_seed=random_seed, columns=columns, group=group)
    with np.errstate(over="ignore"):
        return xr.Dataset({"expected_loss": np.exp(logs["log_expected_loss"]),
                           "new_run_loss": np.exp(logs["log_new_run_loss"])})


def log_predict_draws(result, runs, *, random_seed=None, columns=None, group=None) -> xr.Dataset:
    """:func:`predict_draws` on the log scale: ``log_expected_loss`` and ``log_new_run_loss``.

    The same draws (same seed), without the under- and overflow of the exponential: a heavy-tailed
    noise draw far below the curve is a finite log loss here, where its loss rounds to 0.

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> sorted(log_predict_draws(fit, {"N": [70e9], "D": [1.4e12]}).data_vars)
    ['log_expected_loss', 'log_new_run_loss']
    """
    random_seed = check_seed(random_seed)
    runs = new_runs(result, runs, columns)
    params = row_params(result, runs, group, random_seed)
    log_mu = shift_log_loss(result, log_curve(result.law, runs.inputs(result.law.inputs), params), runs.frame,
                            irreducible_draws(result, params))
    rng = np.random.default_rng(result.random_seed if random_seed is None else random_seed)
    noise = result.noise_draws(params, log_mu.shape, rng)
    chains, draws = log_mu.shape[:2]
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "run": np.arange(runs.n_runs)}
    dims = (*SAMPLE_DIMS, "run")
    return xr.Dataset({"log_expected_loss": (dims, log_mu), "log_new_run_loss": (dims, log_mu + noise)},
                      coords=coords)


def predict(result, runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None, group=None) -> pd.DataFrame:
    """Predicted loss with a curve band and a new-run band, one row per new run.

    Columns: the inputs (``observed_loss`` when the runs carry a loss),
    ``loss_median``, ``curve_lower``/``curve_upper`` (the expected loss:
    how uncertain the fitted curve is there), ``new_run_lower``/
    ``new_run_upper`` (one new run: the curve plus run-to-run noise), the
    ``beyond_*`` columns of :mod:`bayescale.core.extrapolation`; for a fit with
    groups also ``group`` and ``new_group``. ``attrs``: ``prob``,
    ``interval`` (:func:`~bayescale.analysis.contract.interval_label`).

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True)).bootstrap(50, random_seed=0)
    >>> predict(fit, {"N": [70e9], "D": [1.4e12]}).attrs["interval"]
    'bootstrap percentile'
    """
    check_prob(prob)
    random_seed = check_seed(random_seed)
    runs = new_runs(result, runs, columns)
    draws = predict_draws(result, runs, random_seed=random_seed, group=group)
    curve = draws["expected_loss"].values.reshape(-1, runs.n_runs)
    new = draws["new_run_loss"].values.reshape(-1, runs.n_runs)
    frame = runs.frame[[c for c in runs.frame.columns if c in ("N", "D", "C", "U", "group", "loss")]].copy()
    if "loss" in frame:
        frame = frame.rename(columns={"loss": "observed_loss"})
    (frame["loss_median"], frame["curve_lower"], frame["curve_upper"], frame["new_run_lower"],
     frame["new_run_upper"]) = two_bands(curve, new, prob, ci_kind)
    if result.hierarchical:
        frame["group"], frame["new_group"] = result.group_labels(runs, group)
    annotate(frame, result.runs, what="predict", stacklevel=3,
             form=result.form_uncertainty, bands=result.draws_kind != "point")
    frame.attrs.update(prob=prob, interval=interval_label(result.draws_kind, ci_kind), caveats=caveats(result))
    return frame
