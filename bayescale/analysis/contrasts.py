"""Contrasts between two groups of one fit: what a new recipe, tokenizer or architecture buys over the old.

For a fit with groups (one per generation, data recipe or architecture), :func:`contrast` answers, per
compute budget and with intervals, the questions a comparison is asked for: the compute-optimal loss of
each, their difference, the probability that one is better, and the *compute multiplier* — how many times
less compute ``other`` needs to reach the loss ``reference`` reaches at that budget. :func:`contrast_params`
says whether the exponents moved or only the coefficients.

Both groups come from the same fit and share the law's form: the form uncertainty of extrapolation, common
to both, is left out (it shifts both frontiers alike); what remains is the uncertainty of the difference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.allocation import optimal_allocation
from .contract import interval, interval_label
from ..base.errors import SpecError
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_prob

__all__ = ["contrast", "contrast_draws", "contrast_params", "fitted_groups"]

#: The compute multiplier is searched from 1e-6 to 1e6 times the budget, on a grid of 0.025 decades
#: (linear interpolation in log compute between grid points: error far below a percent).
_SEARCH_DECADES, _STEP = 6.0, 0.025


def fitted_groups(fit) -> list:
    """The labels of a fit's groups, in order; a SpecError for a fit without groups.

    Examples
    --------
    >>> fitted_groups(fit)  # doctest: +SKIP
    ['g0', 'g1', 'g2']
    """
    if not getattr(fit, "hierarchical", False):
        raise SpecError("contrast needs a fit with groups (runs with a 'group' column and a model with pooling)")
    return [str(g) for g in fit.posterior["group"].values]


def _groups(fit, reference, other):
    fitted = fitted_groups(fit)
    for name, label in (("reference", reference), ("other", other)):
        if str(label) not in fitted:
            raise SpecError(f"{name}={label!r} is not a fitted group; fitted groups: {', '.join(fitted)}")
    if str(reference) == str(other):
        raise SpecError(f"reference and other are the same group ({reference!r}); name two different groups")
    return str(reference), str(other)


def _params(fit, label):
    draws = fit.param_draws(label)
    return {k: np.asarray(draws[k]) for k in fit.law.param_names}


def contrast_draws(fit, reference, other, budget, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> dict:
    """Per-draw contrasts of `other` against `reference` at each budget: arrays shaped (chain, draw, budget).

    Returns
    -------
    dict
        ``loss_reference``, ``loss_other`` (compute-optimal expected loss), ``loss_difference``
        (other - reference: negative when other is better) and ``compute_multiplier`` (C divided by the
        compute other needs to reach reference's loss at C; above 1 when other is more efficient; 0 when
        other cannot reach it, its irreducible loss being higher; ``inf`` beyond the search range).

    Examples
    --------
    >>> d = contrast_draws(fit, "old", "new", [1e22, 1e24])  # doctest: +SKIP
    >>> float((d["compute_multiplier"] > 1).mean())  # doctest: +SKIP
    """
    reference, other = _groups(fit, reference, other)
    c = check_budgets(budget)
    k = float(flops_per_param_token)
    p_ref, p_other = _params(fit, reference), _params(fit, other)
    with np.errstate(all="ignore"):
        l_ref = optimal_allocation(fit.law, p_ref, c, flops_per_param_token=k)["loss"]
        l_other = optimal_allocation(fit.law, p_other, c, flops_per_param_token=k)["loss"]
        # other's frontier once, on one grid spanning every budget's search window of +-6 decades
        log_c = np.log10(c)
        steps = np.arange(int(np.ceil((log_c.max() - log_c.min() + 2 * _SEARCH_DECADES) / _STEP)) + 1)
        log_grid = log_c.min() - _SEARCH_DECADES + _STEP * steps
        frontier = optimal_allocation(fit.law, p_other, 10.0 ** log_grid, flops_per_param_token=k)["loss"]
        multiplier = np.empty_like(l_ref)
        for j, lc in enumerate(log_c):
            lo = int(np.searchsorted(log_grid, lc - _SEARCH_DECADES - 1e-9))
            hi = int(np.searchsorted(log_grid, lc + _SEARCH_DECADES + 1e-9, side="right"))
            multiplier[..., j] = _crossing(frontier[..., lo:hi], l_ref[..., j], log_grid[lo:hi] - lc)
    return {"loss_reference": l_ref, "loss_other": l_other, "loss_difference": l_other - l_ref,
            "compute_multiplier": multiplier}


def _crossing(frontier, target, offsets):
    """``10 ** -offset`` where each draw's decreasing `frontier` (…, grid) first meets `target` (…)."""
    above = frontier > target[..., None]
    n_above = above.sum(axis=-1)
    last = offsets.size - 1
    out = np.empty(target.shape)
    never = n_above > last  # still above the target at the largest compute searched
    at_start = n_above == 0  # already below at the smallest
    i = np.clip(n_above, 1, last)
    lo = np.take_along_axis(frontier, (i - 1)[..., None], -1)[..., 0]
    hi = np.take_along_axis(frontier, i[..., None], -1)[..., 0]
    frac = np.clip((lo - target) / (lo - hi), 0.0, 1.0)
    offset = offsets[i - 1] + frac * (offsets[i] - offsets[i - 1])
    out[...] = 10.0 ** -offset
    out[at_start] = np.inf
    out[never] = 0.0
    return out


def contrast(fit, reference, other, budget, *, prob=0.9, ci_kind="eti",
             flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> pd.DataFrame:
    """How `other` compares with `reference` at each budget, with intervals.

    Parameters
    ----------
    fit : ScalingFit
        A fit with groups.
    reference, other : label
        Two fitted groups (e.g. the old and the new data recipe).
    budget : float or sequence of float
        Compute budgets C in FLOPs.
    prob : float, default 0.9
    ci_kind : {"eti", "hdi"}, default "eti"
    flops_per_param_token : float, default 6

    Returns
    -------
    DataFrame
        One row per budget: ``C``, ``reference``, ``other``; ``loss_reference_median``,
        ``loss_other_median``; ``loss_difference_median/lower/upper`` (other - reference, negative when
        other is better); ``prob_other_better`` (posterior probability that other's compute-optimal loss is
        lower); ``compute_multiplier_median/lower/upper`` (how many times less compute other needs to reach
        reference's loss at C: above 1 when other is more efficient) and ``prob_other_reaches`` (the share
        of draws in which other reaches that loss at all within 1e6 times C). ``attrs["interval"]`` names
        the interval of the loss difference; the multiplier's is equal-tailed (its draws may be 0, never
        reaching, or ``inf``).

    Examples
    --------
    >>> t = contrast(fit, "old", "new", [1e22, 1e24])  # doctest: +SKIP
    >>> t[["C", "compute_multiplier_median", "prob_other_better"]]  # doctest: +SKIP
    """
    prob = check_prob(prob)
    draws = contrast_draws(fit, reference, other, budget, flops_per_param_token=flops_per_param_token)
    c = check_budgets(budget)
    rows = []
    for j, cj in enumerate(c):
        d = {k: v[..., j].reshape(-1) for k, v in draws.items()}
        row = {"C": float(cj), "reference": str(reference), "other": str(other),
               "loss_reference_median": float(np.median(d["loss_reference"])),
               "loss_other_median": float(np.median(d["loss_other"]))}
        diff = d["loss_difference"][np.isfinite(d["loss_difference"])]
        med, lo, hi = interval(diff, prob, ci_kind) if diff.size else (np.nan, np.nan, np.nan)
        row.update(loss_difference_median=float(med), loss_difference_lower=float(lo), loss_difference_upper=float(hi),
                   prob_other_better=float(np.mean(diff < 0)) if diff.size else np.nan)
        m = d["compute_multiplier"]
        m = m[~np.isnan(m)]
        # equal-tailed whatever ci_kind: "never" (0) and "beyond the search" (inf) are the extremes of its range
        qs = np.quantile(m, [0.5, (1 - prob) / 2, (1 + prob) / 2], method="inverted_cdf") if m.size else [np.nan] * 3
        row.update(compute_multiplier_median=float(qs[0]), compute_multiplier_lower=float(qs[1]),
                   compute_multiplier_upper=float(qs[2]), prob_other_reaches=float(np.mean(m > 0)))
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["interval"] = interval_label(fit.draws_kind, ci_kind)
    return out


def contrast_params(fit, reference, other, *, prob=0.9, ci_kind="eti") -> pd.DataFrame:
    """Did the exponents move, or only the coefficients? Ratios other / reference of each law parameter.

    Returns
    -------
    DataFrame
        One row per law parameter: ``parameter``, ``ratio_median``, ``ratio_lower``, ``ratio_upper``
        (other / reference), ``prob_other_larger`` and ``moved`` (the interval of the ratio excludes 1).
        Coefficients are compared at the data's centre (``A / N0**alpha``), the size of the term where the
        runs are, so a moved exponent does not by itself move its coefficient.

    Examples
    --------
    >>> contrast_params(fit, "old", "new").set_index("parameter").loc["alpha", "moved"]  # doctest: +SKIP
    """
    prob = check_prob(prob)
    reference, other = _groups(fit, reference, other)
    p_ref, p_other = _params(fit, reference), _params(fit, other)
    law, rows = fit.law, []
    for p in law.parameters:
        a, b = p_ref[p.name], p_other[p.name]
        if p.scales_with is not None:
            inp, expo = p.scales_with
            log_c = np.log(fit.centres_[law.scaled_inputs[inp]])
            ka = p_ref[expo] if isinstance(expo, str) else float(expo)
            kb = p_other[expo] if isinstance(expo, str) else float(expo)
            with np.errstate(all="ignore"):
                log_ratio = (np.log(b) - kb * log_c) - (np.log(a) - ka * log_c)
        else:
            log_ratio = np.log(b) - np.log(a)
        x = np.asarray(log_ratio).reshape(-1)
        x = x[np.isfinite(x)]
        _med, lo, hi = interval(x, prob, ci_kind)
        rows.append({"parameter": p.name, "ratio_median": float(np.exp(np.median(x))), "ratio_lower": float(np.exp(lo)),
                     "ratio_upper": float(np.exp(hi)), "prob_other_larger": float(np.mean(x > 0)),
                     "moved": bool(lo > 0 or hi < 0)})
    out = pd.DataFrame(rows)
    out.attrs["interval"] = interval_label(fit.draws_kind, ci_kind)
    return out
