"""Whether a fit keeps the allocation its own runs show: isoFLOP exponents, observed and replicated.

:func:`isoflop_check` applies Approach 2 (isoFLOP parabolas, :class:`bayescale.IsoFLOP`) to a fit's
runs (each group's, for a pooled fit) and to runs replicated from the posterior predictive at the same
sizes and tokens, so the estimator's own noise and bias are on both sides of the comparison: a
posterior predictive check of the allocation, which over-strong pooling would fail.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..base.errors import BayescaleError
from ..fitting.isoflop import IsoFLOP
from ..base.validation import check_count, check_prob, check_seed

__all__ = ["isoflop_check"]


def _isoflop_exponent(estimator, frame):
    """Approach 2's exponent a of N_opt in C on one run table, and its number of usable levels (NaN, 0 if none)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = estimator.fit(frame)
    except BayescaleError:
        return np.nan, 0
    return (fit.a if np.isfinite(fit.a) else np.nan), int(fit.levels["used"].sum())


def isoflop_check(fit, isoflop=None, *, prob=0.9, draws=200, random_seed=None) -> pd.DataFrame:
    """Posterior predictive check of the isoFLOP allocation exponent, per group.

    Approach 2 (:class:`bayescale.IsoFLOP`: parabolas in log N at each compute
    level, a line through their minima) gives the exponent ``a`` of
    ``N_opt ∝ C^a`` of the runs. The same estimator is applied to `draws`
    replicates of the runs from the posterior predictive (every run's loss
    drawn as a new run of the fitted law, at its own N and D, group by group),
    so the check compares like with like: a replicated interval that misses
    the observed exponent says the fit does not keep the allocation its own
    runs show (as over-strong pooling would). Beside it, the law's own
    ``beta / (alpha + beta)``, which the isoFLOP estimate approaches only with
    many well-spread levels.

    Parameters
    ----------
    fit : ScalingFit
    isoflop : IsoFLOP, optional
        The estimator's settings (levels, resolution, fewest runs per level);
        default ``IsoFLOP()``.
    prob : float, default 0.9
    draws : int, default 200
        Replicates (posterior draws, evenly thinned).
    random_seed : int, optional
        Seed of the replicates' noise (default the fit's).

    Returns
    -------
    DataFrame
        One row per group (one row, ``group`` None, without groups):
        ``levels`` (usable isoFLOP levels of the observed runs),
        ``a_observed``, ``a_replicated_median/lower/upper``, ``p_value``
        (two-sided posterior predictive p-value), ``inside`` (the observed
        exponent within the replicated interval), ``replicates`` (those whose
        estimate exists), ``a_law_median/lower/upper``, ``inside_law``. A
        group with fewer than 3 usable levels has NaNs and ``inside`` False.

    Examples
    --------
    >>> table = bs.isoflop_check(fit)  # doctest: +SKIP
    >>> table[["group", "a_observed", "a_replicated_lower", "a_replicated_upper", "inside"]]  # doctest: +SKIP
    """
    check_prob(prob)
    draws = check_count(draws, "draws")
    random_seed = check_seed(random_seed)
    estimator = IsoFLOP() if isoflop is None else isoflop
    if not isinstance(estimator, IsoFLOP):
        raise TypeError(f"isoflop must be a bayescale.IsoFLOP (its settings), got {type(isoflop).__name__}")
    runs = fit.runs
    frame = runs.frame
    hierarchical = bool(getattr(fit, "hierarchical", False))
    labels = [str(g) for g in fit.posterior["group"].values] if hierarchical else [None]
    pred = fit.predict_draws(runs, random_seed=random_seed)["new_run_loss"].values
    flat = pred.reshape(-1, pred.shape[-1])
    pick = np.linspace(0, flat.shape[0] - 1, min(int(draws), flat.shape[0])).round().astype(int)
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    rows = []
    for label in labels:
        mask = np.ones(len(frame), bool) if label is None else (frame["group"].astype(str) == label).to_numpy()
        own = frame.loc[mask, [c for c in ("N", "D", "C", "loss") if c in frame.columns]].reset_index(drop=True)
        a_obs, n_levels = _isoflop_exponent(estimator, own)
        reps = []
        if np.isfinite(a_obs):
            for i in pick:
                reps.append(_isoflop_exponent(estimator, own.assign(loss=flat[i, mask]))[0])
        reps = np.asarray(reps, dtype=float)
        reps = reps[np.isfinite(reps)]
        row = {"group": label, "levels": n_levels, "a_observed": a_obs}
        if reps.size:
            med, lo, hi = np.quantile(reps, [0.5, lo_q, hi_q])
            p = 2 * min(np.mean(reps <= a_obs), np.mean(reps >= a_obs))
            row.update(a_replicated_median=med, a_replicated_lower=lo, a_replicated_upper=hi, p_value=min(p, 1.0),
                       inside=bool(lo <= a_obs <= hi), replicates=int(reps.size))
        else:
            row.update(a_replicated_median=np.nan, a_replicated_lower=np.nan, a_replicated_upper=np.nan,
                       p_value=np.nan, inside=False, replicates=0)
        params = fit.param_draws(label) if label is not None else fit.param_draws()
        if {"alpha", "beta"} <= set(params):
            law_a = np.asarray(params["beta"], float) / (np.asarray(params["alpha"], float)
                                                         + np.asarray(params["beta"], float))
            med, lo, hi = np.quantile(law_a.reshape(-1), [0.5, lo_q, hi_q])
            row.update(a_law_median=med, a_law_lower=lo, a_law_upper=hi,
                       inside_law=bool(np.isfinite(a_obs) and lo <= a_obs <= hi))
        else:
            row.update(a_law_median=np.nan, a_law_lower=np.nan, a_law_upper=np.nan, inside_law=False)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(prob=float(prob), draws=int(pick.size), estimator=repr(estimator))
    return out
