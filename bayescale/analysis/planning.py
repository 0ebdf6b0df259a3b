"""A fit's compute-optimal allocation: draws and tables, for any fit (:mod:`bayescale.analysis.contract`).

The arithmetic on parameter arrays is :mod:`bayescale.core.allocation`; here each
fit's parameter draws go through it, with the form uncertainty beyond the
fitted compute (:mod:`bayescale.core.form`), into draws with dims (chain, draw,
budget) and a table with intervals of the fit's kind.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core.allocation import crossover_compute, optimal_allocation
from .conflicts import caveats
from .contract import check_group, interval, interval_label, SAMPLE_DIMS
from ..core.shifts import irreducible_draws, shift_allocation, shift_crossover
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets as _budgets, check_prob as _check_prob, check_seed
from ..base.errors import DegenerateResultWarning, ExtrapolationWarning
from ..core.extrapolation import annotate, warn_extrapolation
from ..base.tablecheck import check_table, draw_problems, rewarn

__all__ = ["posterior_params", "allocate_draws", "allocate", "median_plan"]



def posterior_params(fit, group=None, random_seed=None) -> dict:
    """Draws of the law's parameters as arrays shaped (chain, draw), from any fit (:mod:`bayescale.analysis.contract`).

    For a fit with groups: the draws of `group` (a fitted group's label), or
    with ``group=None`` those of a new group drawn from the population
    (``fit.param_draws(group, random_seed=...)``, the same draws
    ``fit.predict_draws(..., group=group, random_seed=...)`` uses).
    """
    random_seed = check_seed(random_seed)
    draws = fit.param_draws(check_group(fit, group), random_seed=random_seed)
    return {k: np.asarray(draws[k]) for k in fit.law.param_names}


def allocate_draws(fit, budget, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, group=None):
    """Posterior draws of the compute-optimal allocation at each budget.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float
        Compute budgets in FLOPs.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    max_unique_tokens : float, optional
        Fresh-data cap; see :func:`optimal_allocation`.
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) /
        ``"new"`` for a new group drawn from the population. Ignored by fits
        without groups.

    Returns
    -------
    xarray.Dataset
        ``N``, ``D``, ``tokens_per_param``, ``loss`` (expected loss at the
        optimum), ``data_bound`` (and ``U``, ``epochs`` for laws with unique
        tokens), dims ``(chain, draw, budget)``. Budgets beyond the fitted
        runs' compute include the model's form uncertainty in N_opt, D_opt
        and the loss (:func:`bayescale.core.shifts.shift_allocation`) — the posterior's own chain
        and draw dimensions, so ArviZ functions apply; use
        ``ds.stack(sample=("chain", "draw"))`` for one flat draw dimension.
        Coordinate ``budget`` holds the FLOPs.

    Examples
    --------
    >>> ds = fit.allocate_draws([1e23, 1e24])  # doctest: +SKIP
    >>> ds["tokens_per_param"].median(("chain", "draw"))  # doctest: +SKIP
    """
    import xarray as xr

    c = _budgets(budget)
    params = posterior_params(fit, group)
    out = optimal_allocation(fit.law, params, c, flops_per_param_token=flops_per_param_token,
                             max_unique_tokens=max_unique_tokens)
    out = shift_allocation(fit, out, c, float(flops_per_param_token), max_unique_tokens, irreducible_draws(fit, params))
    chains, draws = np.shape(params[fit.law.param_names[0]])[:2]
    dims = (*SAMPLE_DIMS, "budget")
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "budget": c}
    ds = xr.Dataset({k: (dims, v) for k, v in out.items()}, coords=coords)
    ds["budget"].attrs["units"] = "FLOP"
    ds.attrs.update(law=fit.law.name, flops_per_param_token=float(flops_per_param_token), draws_kind=fit.draws_kind)
    if max_unique_tokens is not None:
        ds.attrs["max_unique_tokens"] = float(max_unique_tokens)
    if fit.hierarchical:
        ds.attrs["group"] = "new" if group is None else str(group)
    return ds


@np.errstate(all="ignore")  # non-finite results are reported by check_table, with their reason
def allocate(fit, budget, *, prob=0.9, ci_kind="eti", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
             max_unique_tokens=None,
             group=None):
    """Compute-optimal model size, tokens and loss at each budget, with posterior intervals.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float
        Compute budgets C in FLOPs.
    prob : float, default 0.9
        Probability of the intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals of the draws.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    max_unique_tokens : float, optional
        Fresh-data cap U (see :func:`optimal_allocation`). Adds the columns
        ``data_bound_prob`` (posterior probability that the cap binds at that
        budget) and ``crossover_C_*`` (the compute beyond which the
        unconstrained optimal run needs more than U tokens).
    group : label or list of labels, optional
        Fits with groups: a fitted group's label, ``None`` (default) or
        ``"new"`` for a new group drawn from the population, or a list of
        them (one block of rows per group, with a ``group`` column).
        A ValueError on fits without groups (it would be ignored).

    Returns
    -------
    DataFrame
        One row per budget: ``C``, then ``*_median``, ``*_lower``, ``*_upper``
        for ``N``, ``D``, ``tokens_per_param`` and ``loss`` (the expected loss
        of the law at the optimum); for laws with unique tokens also ``U`` and
        ``epochs``; ``beyond_C``, ``beyond_N``, ``beyond_D``, ``beyond``
        (decades of the median plan outside the fitted runs' range, see
        :mod:`bayescale.core.extrapolation`) and ``tokens_per_param_outside``
        (the median tokens per parameter lie outside the runs' range), with
        one :class:`~bayescale.base.errors.ExtrapolationWarning` when a row lies
        more than one decade out or off the runs' tokens per parameter;
        ``converged`` (the fit's diagnostics). ``*_median`` is the median of
        the draws, or for a point fit the allocation of its estimate.
        ``attrs``: ``prob``, ``interval`` (the kind, e.g. ``"posterior
        ETI"`` or ``"bootstrap percentile"``), ``law``,
        ``flops_per_param_token``, ``max_unique_tokens``. The draws are in
        :func:`allocate_draws`.

        The plan in each row is one run that spends the budget:
        ``N_median`` is the posterior median of N_opt taken on the log scale
        (``exp(median(log N_opt))``), ``D_median = C / (k N_median)`` and
        ``tokens_per_param_median = D_median / N_median``, so
        ``k N_median D_median = C`` holds to rounding however wide or
        degenerate the posterior (each draw's D_opt and D/N fall as its
        N_opt grows, so these are also the medians of their own draws); a
        point fit's plan is its estimate's optimum. The intervals are those
        of each quantity's draws, for N, D and tokens per parameter taken on
        the log scale as the median is (so lower <= median <= upper even for
        a few draws decades apart); ``loss``, ``U`` and ``epochs`` are plain
        marginal medians and intervals. Non-finite values and a plan of less
        than one parameter or token come with a
        :class:`~bayescale.base.errors.DegenerateResultWarning` that names the
        columns, rows and reason.

    Examples
    --------
    >>> fit.allocate([1e23, 1e24, 1e25], prob=0.9)  # doctest: +SKIP
    """
    import pandas as pd

    _check_prob(prob)
    reach_cols = dict(n="N_median", d="D_median", c="C", tokens_per_param="tokens_per_param_median",
                      flops_per_param_token=flops_per_param_token)
    if isinstance(group, (list, tuple)):
        with warnings.catch_warnings(record=True) as caught:  # one warning for the whole table, below
            warnings.simplefilter("ignore", ExtrapolationWarning)
            warnings.simplefilter("always", DegenerateResultWarning)
            frames = [allocate(fit, budget, prob=prob, ci_kind=ci_kind, flops_per_param_token=flops_per_param_token,
                               max_unique_tokens=max_unique_tokens, group=g) for g in group]
        out = pd.concat(frames, ignore_index=True)
        out.attrs.update(frames[0].attrs)
        warn_extrapolation(out, fit.runs, what="allocate",
                           stacklevel=3, **reach_cols, form=fit.form_uncertainty, bands=fit.draws_kind != "point")
        rewarn(caught, DegenerateResultWarning, stacklevel=3)
        return out
    ds = allocate_draws(fit, budget, flops_per_param_token=flops_per_param_token,
                        max_unique_tokens=max_unique_tokens, group=group)
    kw = dict(flops_per_param_token=flops_per_param_token, max_unique_tokens=max_unique_tokens)
    c = ds["budget"].values
    frame = pd.DataFrame({"C": c})
    if "group" in ds.attrs:
        frame.insert(0, "group", ds.attrs["group"])
    if max_unique_tokens is not None:
        frame["max_unique_tokens"] = float(max_unique_tokens)
    names = ["N", "D", "tokens_per_param", "loss"] + [k for k in ("U", "epochs") if k in ds]
    central = fit.point_params  # a point fit's answer is its estimate; a posterior's, the median of its draws
    point = None if central is None else optimal_allocation(fit.law, central, c, **kw)
    for name in names:
        flat = ds[name].values.reshape(-1, c.size)
        if name in PLAN_COLUMNS:  # intervals on the log scale, like the plan (see the docstring)
            frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = np.exp(
                interval(np.log(flat), prob, ci_kind))
        else:
            frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = interval(flat, prob, ci_kind)
    n_draws = ds["N"].values.reshape(-1, c.size)
    _median_plan_columns(frame, n_draws if point is None else point["N"][None, :], c, float(flops_per_param_token))
    if point is not None:
        for name in names:
            if name not in PLAN_COLUMNS:
                frame[f"{name}_median"] = point[name]
    usable = np.all(np.isfinite(n_draws), axis=0)
    if max_unique_tokens is not None:
        frame["data_bound_prob"] = np.where(usable, ds["data_bound"].values.reshape(-1, c.size).mean(axis=0),
                                            np.nan)  # never a probability over draws without a plan
        params = posterior_params(fit, group)
        cross = crossover_compute(fit.law, params, max_unique_tokens, flops_per_param_token=flops_per_param_token)
        cross = shift_crossover(fit, params, cross, max_unique_tokens, flops_per_param_token).ravel()
        frame["crossover_C_median"], frame["crossover_C_lower"], frame["crossover_C_upper"] = interval(
            cross, prob, ci_kind)
        if central is not None:
            frame["crossover_C_median"] = crossover_compute(fit.law, central, max_unique_tokens,
                                                            flops_per_param_token=flops_per_param_token)
    annotate(frame, fit.runs, what="allocate", stacklevel=3, **reach_cols,
             form=fit.form_uncertainty, bands=fit.draws_kind != "point")
    frame["converged"] = bool(fit.converged)
    frame.attrs.update(prob=prob, interval=interval_label(fit.draws_kind, ci_kind), law=fit.law.name, caveats=caveats(fit),
                       flops_per_param_token=float(flops_per_param_token),
                       max_unique_tokens=None if max_unique_tokens is None else float(max_unique_tokens))
    check_table(frame, "allocate", plan=("N_median", "D_median"), problems=fit.table_problems("allocate"),
                stacklevel=3, why=lambda: draw_problems(posterior_params(fit, group), n_draws))
    return frame


#: Columns of :func:`allocate` whose median is the plan and whose intervals are taken on the log scale.
PLAN_COLUMNS = ("N", "D", "tokens_per_param")


def median_plan(n_draws, budget, k):
    """One plan that spends each budget: N at the median of log N_opt's draws, D = C / (k N).

    ``n_draws`` holds the draws of N_opt, shaped (draws, budgets) (one row for a point estimate). Used by the
    allocation tables and by :func:`bayescale.analysis.risk.risk`'s compute-optimal rows.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.exp(np.median(np.log(n_draws), axis=0))
        d = np.asarray(budget, dtype=float) / (k * n)
    return n, d


def _median_plan_columns(frame, n_draws, budget, k):
    """Set ``N_median``, ``D_median`` and ``tokens_per_param_median`` to :func:`median_plan`."""
    n, d = median_plan(n_draws, budget, k)
    frame["N_median"], frame["D_median"], frame["tokens_per_param_median"] = n, d, d / n
