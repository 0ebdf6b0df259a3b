"""Pictures for budget proposals: the loss frontier, the optimal allocation, isoFLOP curves.

Every function returns a :class:`matplotlib.figure.Figure` made without
pyplot (no global state; save it with ``fig.savefig(path)``; notebooks show
it when it is the cell's value). Bands are central posterior intervals of
the law's expected loss (or of N_opt, D_opt), 50% and 90% by default.
"""

from __future__ import annotations

import numpy as np

from .allocation import optimal_allocation
from .planning import posterior_params
from .validation import check_budgets as _budgets, check_prob as _check_prob
from .form import irreducible_draws, shift_allocation, shift_log_loss
from .laws import NUMPY
from .units import format_flops

__all__ = ["plot_frontier", "plot_allocation", "plot_isoflop"]

_GRID = 80


def _figure(ax, size=(7.0, 4.5)):
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _bands(prob):
    probs = (prob,) if isinstance(prob, (int, float)) else tuple(prob)
    for p in probs:
        _check_prob(p)
    return tuple(sorted(probs, reverse=True))  # widest first, so narrower bands draw on top


def _observed_compute(fit, k):
    runs = fit.runs.inputs(["N", "D"])
    return k * runs["N"] * runs["D"]


def _compute_grid(fit, budgets, k):
    c_obs = _observed_compute(fit, k)
    top = c_obs.max() if budgets is None else max(c_obs.max(), budgets.max())
    return np.logspace(np.log10(c_obs.min() / 2), np.log10(top * 3), _GRID)


def _quantiles(draws, p):
    flat = draws.reshape(-1, draws.shape[-1])
    return np.quantile(flat, [(1 - p) / 2, (1 + p) / 2], axis=0)


def _isoflop_levels(c_obs, count=4):
    """The compute levels holding most runs (isoFLOP profiles), else levels spanning the runs."""
    bins = np.round(np.log10(c_obs), 1)
    levels, counts = np.unique(bins, return_counts=True)
    top = levels[np.argsort(-counts, kind="stable")[:count]]
    top = top[[counts[levels == t][0] >= 3 for t in top]]
    if top.size < 2:
        return np.logspace(np.log10(c_obs.min()), np.log10(c_obs.max()), count)
    return np.sort([np.exp(np.log(c_obs[bins == t]).mean()) for t in top])


def _mark_budgets(ax, budgets):
    if budgets is None:
        return
    for i, c in enumerate(budgets):
        ax.axvline(c, color="0.4", linestyle=":", linewidth=1, label="budgets asked" if i == 0 else None)


def _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens):
    """Checked settings, a compute grid through the budgets, and the optimal allocation's draws along it."""
    probs = _bands(prob)
    budgets = None if budgets is None else _budgets(budgets)
    k = float(flops_per_param_token)
    grid = _compute_grid(fit, budgets, k)
    params = posterior_params(fit)
    out = optimal_allocation(fit.model.law, params, grid, flops_per_param_token=k, max_unique_tokens=max_unique_tokens)
    return probs, budgets, k, grid, shift_allocation(fit, out, grid, k, max_unique_tokens,
                                                     irreducible_draws(fit, params))


def plot_frontier(fit, budgets=None, *, prob=(0.5, 0.9), flops_per_param_token=6.0, max_unique_tokens=None,
                  ax=None):
    """Loss vs compute: observed runs and the compute-optimal frontier with bands.

    Parameters
    ----------
    fit : ScalingFit
    budgets : float or sequence of float, optional
        Budgets to extend the frontier to and mark.
    prob : float or sequence of float, default (0.5, 0.9)
        Band probabilities (central intervals of the expected loss at the
        optimum).
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap for the frontier.
    ax : matplotlib Axes, optional
        Draw into it instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fit.plot_frontier([1e24, 1e25])  # doctest: +SKIP
    >>> fig.savefig("frontier.png")  # doctest: +SKIP
    """
    probs, budgets, k, grid, out = _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens)
    loss = out["loss"]
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7.0, 5.5), layout="constrained")
        ax, rel = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        fig, rel = ax.figure, None
    ax.scatter(_observed_compute(fit, k), fit.runs.loss, s=8, color="0.55", alpha=0.6, label="observed runs",
               zorder=1)
    median = np.median(loss.reshape(-1, grid.size), axis=0)
    for i, p in enumerate(probs):
        lo, hi = _quantiles(loss, p)
        ax.fill_between(grid, lo, hi, color="C0", alpha=0.18 + 0.17 * i, linewidth=0, label=f"{p:.0%} band")
        if rel is not None:
            rel.fill_between(grid, 100 * (lo / median - 1), 100 * (hi / median - 1), color="C0",
                             alpha=0.18 + 0.17 * i, linewidth=0)
    ax.plot(grid, median, color="C0", linewidth=1.8, label="optimal loss (posterior median)")
    _mark_budgets(ax, budgets)
    ax.set_xscale("log")
    ax.set_ylabel("loss")
    cap = "" if max_unique_tokens is None else f", unique tokens <= {max_unique_tokens:.3g}"
    ax.set_title(f"Compute-optimal frontier: {fit.model.law.name} law, {fit.runs.n_runs} runs{cap}")
    ax.legend(loc="upper right", fontsize="small")
    if rel is not None:
        rel.axhline(0, color="C0", linewidth=1)
        _mark_budgets(rel, budgets)
        rel.set_ylabel("band vs median (%)")
        rel.set_xlabel("training compute C (FLOP)")
    else:
        ax.set_xlabel("training compute C (FLOP)")
    return fig


def plot_allocation(fit, budgets=None, *, prob=(0.5, 0.9), flops_per_param_token=6.0, max_unique_tokens=None,
                    ax=None):
    """Compute-optimal parameters N_opt and tokens D_opt vs compute, with bands.

    Parameters
    ----------
    fit : ScalingFit
    budgets : float or sequence of float, optional
        Budgets to extend the curves to and mark.
    prob : float or sequence of float, default (0.5, 0.9)
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fit.plot_allocation([1e24, 1e25])  # doctest: +SKIP
    """
    probs, budgets, k, grid, out = _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens)
    fig, ax = _figure(ax)
    c_obs = _observed_compute(fit, k)
    ax.axvspan(c_obs.min(), c_obs.max(), color="0.92", zorder=0, label="compute of fitted runs")
    for key, colour, name in (("N", "C0", "parameters N_opt"), ("D", "C1", "tokens D_opt")):
        for i, p in enumerate(probs):
            lo, hi = _quantiles(out[key], p)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.15 + 0.15 * i, linewidth=0,
                            label=f"{name}: {p:.0%} band")
        ax.plot(grid, np.median(out[key].reshape(-1, grid.size), axis=0), color=colour, linewidth=1.8,
                label=f"{name} (posterior median)")
    if max_unique_tokens is not None:
        ax.axhline(max_unique_tokens, color="C3", linestyle="--", linewidth=1, label="unique-token cap")
    _mark_budgets(ax, budgets)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("parameters N / tokens D")
    ax.set_title(f"Compute-optimal allocation: {fit.model.law.name} law, C = {k:g} N D")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def plot_isoflop(fit, budgets=None, *, prob=(0.5, 0.9), flops_per_param_token=6.0, n_points=60, ax=None):
    """IsoFLOP curves: loss vs model size at fixed compute, with bands.

    Parameters
    ----------
    fit : ScalingFit
    budgets : float or sequence of float, optional
        Compute of each curve; default the four compute levels holding the
        most fitted runs (their isoFLOP profiles), else four spanning them.
        Observed runs within 15% of a curve's compute are drawn on it.
    prob : float or sequence of float, default (0.5, 0.9)
    flops_per_param_token : float, default 6
    n_points : int, default 60
        Model sizes per curve (from 1/30 to 30 times the median optimum).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = fit.plot_isoflop([1e21, 1e22, 1e23])  # doctest: +SKIP
    """
    probs = _bands(prob)
    k = float(flops_per_param_token)
    c_obs = _observed_compute(fit, k)
    budgets = _isoflop_levels(c_obs) if budgets is None else _budgets(budgets)
    law = fit.model.law
    params = posterior_params(fit)
    opt = optimal_allocation(law, params, budgets, flops_per_param_token=k)
    n_med = np.exp(np.median(np.log(opt["N"]).reshape(-1, budgets.size), axis=0))
    pe = {name: v[..., None] for name, v in params.items()}
    fig, ax = _figure(ax)
    loss_obs = fit.runs.loss
    n_obs = fit.runs.inputs(["N"])["N"]
    for j, c in enumerate(budgets):
        colour = f"C{j % 10}"
        n = n_med[j] * np.logspace(-np.log10(30), np.log10(30), n_points)
        d = c / k / n
        inputs = {"N": n, "D": d}
        if "U" in law.inputs:
            inputs["U"] = d
        loss = np.exp(shift_log_loss(fit, law.log_loss(inputs, pe, NUMPY), {"C": c, **inputs},
                                     irreducible_draws(fit, pe)))
        for i, p in enumerate(probs):
            lo, hi = _quantiles(loss, p)
            ax.fill_between(n, lo, hi, color=colour, alpha=0.12 + 0.12 * i, linewidth=0)
        med = np.median(loss.reshape(-1, n_points), axis=0)
        ax.plot(n, med, color=colour, linewidth=1.6, label=format_flops(c))
        ax.plot(n_med[j], np.interp(np.log(n_med[j]), np.log(n), med), marker="o", color=colour,
                markeredgecolor="black", linestyle="none")
        near = np.abs(np.log(c_obs / c)) < np.log(1.15)
        if near.any():
            ax.scatter(n_obs[near], loss_obs[near], s=14, color=colour, edgecolor="white", linewidth=0.5, zorder=3)
    ax.plot([], [], marker="o", color="0.5", markeredgecolor="black", linestyle="none", label="median optimum")
    ax.fill_between([], [], [], color="0.5", alpha=0.3, label=" / ".join(f"{p:.0%}" for p in probs[::-1]) + " bands")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"IsoFLOP curves: {law.name} law (dots: runs within 15% of the compute)")
    ax.legend(title="compute C", fontsize="small")
    return fig
