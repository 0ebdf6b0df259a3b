"""Marginal returns of compute along a fit's compute-optimal frontier, for any fit (:mod:`bayescale.analysis.contract`).

What one more unit of compute buys, per posterior draw, on the frontier of
:func:`bayescale.analysis.planning.allocate_draws` (each draw's own optimal N and D
and expected loss at each budget C, with the form uncertainty beyond the
fitted runs):

- ``slope``: d loss / d log10 C, the loss gained per tenfold compute at the
  margin (negative: more compute, lower loss). Taken for every law as a
  central finite difference in log10 C of each draw's frontier loss (a step
  of :data:`STEP_DECADES` either side). One code path serves every law
  (numerical optima, data caps, the data-constrained law) and the form
  discrepancy's shift beyond the fitted runs; for the Chinchilla law without
  that shift the frontier is ``L = E + K (C/k)^(-g)``, ``g = alpha beta /
  (alpha + beta)``, and the slope is ``-g ln(10) (L - E)``, which the tests
  check it against.
- ``gain_doubling``: ``L(C) - L(2C)``, the loss one doubling of compute buys.
- ``C_next``: the compute at which the draw's frontier loss is ``loss_step``
  (0.01) lower than at C: the first crossing of ``L(C) - loss_step`` on a
  grid of log C (:data:`GRID_PER_DECADE` points a decade up to
  :data:`FINE_DECADES` above the largest budget, then steps of
  :data:`COARSE_STEP` decades up to ``max_compute``), then linear
  interpolation of ``log(L - E)`` in log C inside that step (exact for the
  Chinchilla frontier, which is a straight line there). A draw whose loss at C lies within ``loss_step`` of its
  irreducible loss E can never gain it, and one that has not gained it by
  ``max_compute`` is not counted as gaining it: both get ``C_next = inf``,
  and ``never_prob`` is their share.

Intervals with infinite draws are taken on the ordered draws: a bound that
falls among the draws that never gain the step is infinite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.allocation import optimal_allocation
from .contract import SAMPLE_DIMS, interval, interval_label
from ..core.shifts import irreducible_draws, shift_allocation
from .planning import median_plan, posterior_params
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_prob, positive_array, renamed
from ..core.extrapolation import annotate
from .plots import (band_levels, compute_grid, draw_quantiles, finish_axes, flops_axis, mark_budgets,
                    observed_compute, shade_extrapolation)
from ..base.tablecheck import check_table, draw_problems

__all__ = ["marginal_draws", "marginal_returns", "returns_table", "plot_marginal_returns", "STEP_DECADES",
           "GRID_PER_DECADE"]

#: Half-width, in decades of compute, of the central difference that gives d loss / d log10 C.
STEP_DECADES = 1e-3

#: Points per decade of compute of the grid on which the compute for the next loss step is searched.
GRID_PER_DECADE = 10

#: Decades above the largest budget searched at :data:`GRID_PER_DECADE` points a decade; beyond, steps of
#: :data:`COARSE_STEP` decades up to ``max_compute``.
FINE_DECADES = 3.0
COARSE_STEP = 0.5

#: Grid points evaluated at once while searching for the next loss step (then only if draws are left).
_CHUNK = 40

#: Quantities of :func:`marginal_draws` that get intervals in :func:`returns_table`, in column order.
QUANTITIES = ("loss", "slope", "gain_doubling", "C_next")


def _check_settings(loss_step, max_compute, cost_per_flop=None):
    step = float(positive_array(loss_step, "loss_step"))
    top = float(positive_array(max_compute, "max_compute"))
    if np.ndim(loss_step) or np.ndim(max_compute):
        raise ValueError(f"loss_step and max_compute must be single numbers, got {loss_step!r}, {max_compute!r}")
    price = None
    if cost_per_flop is not None:
        if np.ndim(cost_per_flop):
            raise ValueError(f"cost_per_flop must be one positive number (money per FLOP), got {cost_per_flop!r}")
        price = float(positive_array(cost_per_flop, "cost_per_flop"))
    return step, top, price


def _frontier(fit, params, floor, budget, k, cap):
    """Each draw's optimal N and expected loss at each budget, as :func:`planning.allocate_draws` gives them."""
    out = optimal_allocation(fit.law, params, budget, flops_per_param_token=k, max_unique_tokens=cap)
    out = shift_allocation(fit, out, budget, k, cap, floor)
    return out["N"], out["loss"]


def _next_step(fit, params, floor, budget, loss, step, top, k, cap):
    """Per draw and budget, the compute at which the frontier loss is `step` below `loss` (inf: never by `top`)."""
    shape = loss.shape  # (chain, draw, budget)
    base = np.broadcast_to(np.asarray(floor, dtype=float)[..., None], shape)
    goal = loss - step
    result = np.full(shape, np.inf)
    open_ = goal > base  # a draw within `step` of its irreducible loss never gains it
    open_ &= np.isfinite(goal)
    result[~np.isfinite(loss)] = np.nan
    log_c = np.log10(budget)
    log_top = np.log10(top)
    fine_end = min(log_c.max() + FINE_DECADES, log_top)
    grid = np.concatenate([np.arange(log_c.min(), fine_end, 1.0 / GRID_PER_DECADE),
                           np.arange(fine_end, log_top, COARSE_STEP), [log_top]])
    grid = grid[grid <= log_top]
    prev_c = np.broadcast_to(log_c, shape).copy()  # last point searched, per draw and budget: C itself
    prev_l = loss.copy()
    for start in range(0, grid.size, _CHUNK):
        if not open_.any():
            break
        chunk = grid[start:start + _CHUNK]
        _, values = _frontier(fit, params, floor, 10.0 ** chunk, k, cap)  # (chain, draw, chunk)
        for j, g in enumerate(chunk):
            ahead = open_ & (g > log_c)
            if not ahead.any():
                continue
            here = values[..., j][..., None]
            hit = ahead & (here <= goal)
            if hit.any():
                # log(L - E) is a straight line in log C on the Chinchilla frontier: interpolate it there
                with np.errstate(divide="ignore", invalid="ignore"):
                    y0, y1 = np.log(prev_l - base), np.log(np.broadcast_to(here, shape) - base)
                    frac = (np.log(goal - base) - y0) / (y1 - y0)
                frac = np.where(np.isfinite(frac), np.clip(frac, 0.0, 1.0), 1.0)
                result[hit] = 10.0 ** (prev_c + frac * (g - prev_c))[hit]
                open_ &= ~hit
            prev_c = np.where(ahead, g, prev_c)
            prev_l = np.where(ahead, np.broadcast_to(here, shape), prev_l)
    return result


@np.errstate(all="ignore")  # non-finite draws are reported by the tables
def marginal_draws(fit, budget, *, loss_step=0.01, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                   max_unique_tokens=None, group=None, max_compute=1e40, params=None):
    """Per-draw marginal returns of compute on the compute-optimal frontier.

    Parameters
    ----------
    fit : ScalingResult
        Any fit.
    budget : float or sequence of float
        Compute budgets C in FLOPs.
    loss_step : float, default 0.01
        The loss gain whose compute ``C_next`` is sought.
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap of the frontier (see :func:`bayescale.analysis.planning.allocate_draws`).
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` for a new group.
    max_compute : float, default 1e40
        Upper end of the search for ``C_next``; above every budget
        (ValueError otherwise).
    params : mapping, optional
        Parameter draws to use instead of the fit's (e.g. its point
        estimate); default :func:`bayescale.analysis.planning.posterior_params`.

    Returns
    -------
    xarray.Dataset
        ``loss`` (frontier loss at C), ``slope`` (d loss / d log10 C),
        ``gain_doubling`` (L(C) - L(2C)), ``C_next`` (inf where never) and
        ``N`` (the optimal model size at C), dims ``(chain, draw, budget)``.

    Examples
    --------
    >>> ds = marginal_draws(fit, [1e23, 1e24])  # doctest: +SKIP
    >>> float(ds["slope"].median())  # doctest: +SKIP
    """
    import xarray as xr

    c = check_budgets(budget)
    step, top, _ = _check_settings(loss_step, max_compute)
    if np.any(np.asarray(c) >= top):
        raise ValueError(f"max_compute={max_compute!r} is not above the budget {float(np.max(c)):g}: it caps the "
                         "compute searched for the next loss step beyond each budget, so it must exceed the largest "
                         "budget")
    k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
    cap = None if max_unique_tokens is None else float(positive_array(max_unique_tokens, "max_unique_tokens"))
    if params is None:
        params = posterior_params(fit, group)
    params = {name: np.asarray(params[name], dtype=float) for name in fit.law.param_names}
    floor = irreducible_draws(fit, params)
    h = 10.0 ** STEP_DECADES
    n, loss = _frontier(fit, params, floor, np.concatenate([c, c / h, c * h, 2 * c]), k, cap)
    n = n[..., :c.size]
    at, below, above, doubled = (loss[..., i * c.size:(i + 1) * c.size] for i in range(4))
    shape = at.shape
    slope = (above - below) / (2 * STEP_DECADES)
    c_next = _next_step(fit, params, floor, c, at, step, top, k, cap)
    dims = (*SAMPLE_DIMS, "budget")
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "budget": c}
    ds = xr.Dataset({"loss": (dims, at), "slope": (dims, slope), "gain_doubling": (dims, at - doubled),
                     "C_next": (dims, c_next), "N": (dims, n)}, coords=coords)
    ds["budget"].attrs["units"] = "FLOP"
    ds.attrs.update(law=fit.law.name, loss_step=step, max_compute=top, flops_per_param_token=k,
                    draws_kind=fit.draws_kind)
    if cap is not None:
        ds.attrs["max_unique_tokens"] = cap
    return ds


def _interval_inf(values, prob, ci_kind):
    """Median and interval of draws (draws, columns) that may be +inf: bounds among the infinite draws are inf."""
    values = np.asarray(values, dtype=float)
    infinite = np.isposinf(values)
    if not infinite.any():
        return interval(values, prob, ci_kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(values)
    finite = logs[np.isfinite(logs)]
    sentinel = (finite.max() if finite.size else 0.0) + 1e6  # beyond every finite draw, by far
    med, lo, hi = interval(np.where(infinite, sentinel, logs), prob, ci_kind)
    cut = sentinel - 1e5  # a bound interpolated towards the sentinel lies among the infinite draws
    with np.errstate(over="ignore"):
        return tuple(np.where(v > cut, np.inf, 10.0 ** v) for v in (med, lo, hi))


def returns_table(ds, prob=0.9, *, ci_kind="eti", cost_per_flop=None, point=None) -> pd.DataFrame:
    """The table of :func:`marginal_returns` from draws shaped like :func:`marginal_draws`' (any source).

    `point` (optional) holds the same quantities for one central parameter
    set (a point fit's estimate), shaped (1, 1, budget): the medians are then
    its values, as in :func:`bayescale.analysis.planning.allocate`. Used by
    :func:`marginal_returns` and by mixtures of fits
    (:mod:`bayescale.across.averaging`); the caller adds the fit's columns
    (``converged``, the extrapolation distance) and ``attrs["interval"]``.
    """
    check_prob(prob)
    _, _, price = _check_settings(ds.attrs.get("loss_step", 0.01), ds.attrs.get("max_compute", 1e40), cost_per_flop)
    c = np.asarray(ds["budget"].values, dtype=float)
    k = float(ds.attrs["flops_per_param_token"])
    frame = pd.DataFrame({"C": c})
    flat = {name: ds[name].values.reshape(-1, c.size) for name in (*QUANTITIES, "N")}
    for name in QUANTITIES:
        columns = [f"{name}_median", f"{name}_lower", f"{name}_upper"]
        make = _interval_inf if name == "C_next" else interval
        values = make(flat[name], prob, ci_kind)
        frame[columns[0]], frame[columns[1]], frame[columns[2]] = values
        if point is not None:
            frame[columns[0]] = np.asarray(point[name], dtype=float).reshape(-1, c.size)[0]
    frame["never_prob"] = np.where(np.all(np.isfinite(flat["loss"]), axis=0),
                                   np.mean(np.isposinf(flat["C_next"]), axis=0), np.nan)
    if price is not None:
        med, lo, hi = _interval_inf(price * (flat["C_next"] - c), prob, ci_kind)
        frame["cost_next_median"], frame["cost_next_lower"], frame["cost_next_upper"] = med, lo, hi
        if point is not None:
            frame["cost_next_median"] = price * (np.asarray(point["C_next"], dtype=float).reshape(-1, c.size)[0] - c)
        frame["cost_doubling"] = price * c
    n_draws = flat["N"] if point is None else np.asarray(point["N"], dtype=float).reshape(-1, c.size)
    n, d = median_plan(n_draws, c, k)
    frame["N_median"], frame["D_median"], frame["tokens_per_param_median"] = n, d, d / n
    frame.attrs.update(prob=prob, loss_step=float(ds.attrs.get("loss_step", 0.01)),
                       max_compute=float(ds.attrs.get("max_compute", 1e40)), cost_per_flop=price,
                       flops_per_param_token=k, max_unique_tokens=ds.attrs.get("max_unique_tokens"),
                       law=ds.attrs.get("law"))
    return frame


@np.errstate(all="ignore")  # non-finite results are reported by check_table, with their reason
def marginal_returns(fit, budget, prob=0.9, *, ci_kind="eti", cost_per_flop=None, loss_step=0.01,
                     flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, group=None,
                     max_compute=1e40) -> pd.DataFrame:
    """What more compute buys at each budget: slope, gain per doubling, compute (and money) for the next 0.01.

    Parameters
    ----------
    fit : ScalingResult
        Any fit.
    budget : float or sequence of float
        Compute budgets C in FLOPs.
    prob : float, default 0.9
        Probability of the intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
    cost_per_flop : float, optional
        Money per FLOP (e.g. dollars): adds ``cost_next_*`` (the extra spend,
        beyond C, of the run that gains the next ``loss_step``) and
        ``cost_doubling`` (the extra spend of doubling C).
    loss_step : float, default 0.01
        The loss gain whose compute is sought (``C_next``).
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap of the frontier.
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) for
        a new group drawn from the population. A ValueError on fits without groups (it would be ignored).
    max_compute : float, default 1e40
        Upper end of the search for ``C_next``; above every budget
        (ValueError otherwise).

    Returns
    -------
    DataFrame
        One row per budget: ``C``; ``*_median``, ``*_lower``, ``*_upper`` of
        ``loss`` (the frontier's expected loss at C), ``slope`` (d loss /
        d log10 C: negative, the loss gained per tenfold compute at the
        margin), ``gain_doubling`` (L(C) - L(2C)) and ``C_next`` (compute
        of the compute-optimal run whose loss is ``loss_step`` lower; inf
        for draws that never get there, see the module's notes);
        ``never_prob`` (share of draws with ``C_next = inf``); with
        ``cost_per_flop`` the money columns; ``N_median``, ``D_median``,
        ``tokens_per_param_median`` (the median plan at C, as in
        :func:`bayescale.analysis.planning.allocate`); ``beyond_*`` (decades beyond
        the fitted runs, :mod:`bayescale.core.extrapolation`); ``converged``.
        ``attrs``: ``prob``, ``interval``, ``loss_step``, ``max_compute``,
        ``cost_per_flop``, ``law``, ``flops_per_param_token``,
        ``max_unique_tokens``. The draws are :func:`marginal_draws`.

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> t = fit.marginal_returns([1e20, 1e22], cost_per_flop=2e-18)
    >>> bool((t["slope_median"] < 0).all()), bool((t["C_next_median"] > t["C"]).all())
    (True, True)
    """
    check_prob(prob)
    _check_settings(loss_step, max_compute, cost_per_flop)
    kw = dict(loss_step=loss_step, flops_per_param_token=flops_per_param_token,
              max_unique_tokens=max_unique_tokens, group=group, max_compute=max_compute)
    ds = marginal_draws(fit, budget, **kw)
    central = fit.point_params  # a point fit's answer is its estimate, as in planning.allocate
    point = None
    if central is not None:
        point = marginal_draws(fit, budget, **kw, params={name: np.reshape(v, (1, 1)) for name, v in central.items()})
    frame = returns_table(ds, prob, ci_kind=ci_kind, cost_per_flop=cost_per_flop, point=point)
    if fit.hierarchical:
        frame.insert(0, "group", "new" if group is None else str(group))
    annotate(frame, fit.runs, what="marginal_returns", n="N_median", d="D_median", c="C",
             tokens_per_param="tokens_per_param_median", flops_per_param_token=flops_per_param_token,
             stacklevel=3, form=fit.form_uncertainty, bands=fit.draws_kind != "point")
    frame["converged"] = bool(fit.converged)
    frame.attrs["interval"] = interval_label(fit.draws_kind, ci_kind)
    unbounded = [col for col in frame.columns if col.startswith(("C_next", "cost_next"))]
    check_table(frame.drop(columns=unbounded), "marginal_returns", plan=("N_median", "D_median"),
                problems=fit.table_problems("marginal_returns"), stacklevel=3,
                why=lambda: draw_problems(posterior_params(fit, group), ds["loss"].values))
    return frame


@renamed(budgets="budget")
def plot_marginal_returns(fit, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                          max_unique_tokens=None, group=None, ax=None):
    """d loss / d log10 C along the compute-optimal frontier, with bands.

    Parameters
    ----------
    fit : ScalingResult
    budget : float or sequence of float, optional
        Budgets to extend the curve to and mark.
    prob : float or sequence of float, default (0.5, 0.9)
        Band probabilities (central intervals of the draws' slopes).
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
    group : label, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    bayescale.base.figure.Figure
        (or the figure of `ax`).

    Examples
    --------
    >>> fig = fit.plot_marginal_returns([1e24, 1e25])  # doctest: +SKIP
    """
    from ..base.figure import figure_and_axes

    probs = band_levels(prob)
    budgets = None if budget is None else check_budgets(budget)
    k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
    grid = compute_grid(fit, budgets, k)
    params = posterior_params(fit, group)
    params = {name: np.asarray(params[name], dtype=float) for name in fit.law.param_names}
    floor = irreducible_draws(fit, params)
    cap = None if max_unique_tokens is None else float(positive_array(max_unique_tokens, "max_unique_tokens"))
    h = 10.0 ** STEP_DECADES
    with np.errstate(all="ignore"):
        _, loss = _frontier(fit, params, floor, np.concatenate([grid / h, grid * h]), k, cap)
        slope = (loss[..., grid.size:] - loss[..., :grid.size]) / (2 * STEP_DECADES)
    fig, ax = figure_and_axes(ax)
    shade_extrapolation(ax, observed_compute(fit, k), grid)
    for i, p in enumerate(probs):
        lo, hi = draw_quantiles(slope, p)
        ax.fill_between(grid, lo, hi, color="C2", alpha=0.18 + 0.17 * i, linewidth=0, label=f"{p:.0%} band")
    ax.plot(grid, np.median(slope.reshape(-1, grid.size), axis=0), color="C2", linewidth=1.8,
            label="posterior median" if fit.draws_kind == "posterior" else "median")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    mark_budgets(ax, budgets)
    ax.set_xscale("log")
    flops_axis(ax.xaxis)
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("d loss / d log10 C (loss per 10x compute)")
    ax.set_title(f"Marginal returns of compute: {fit.law.name} law, compute-optimal frontier")
    ax.legend(loc="lower right", fontsize="small")
    return finish_axes(fig, ax, fit)
