"""Pictures for budget proposals: the loss frontier, the optimal allocation, isoFLOP curves, group contrasts.

Every function returns a :class:`bayescale.base.figure.Figure`: a matplotlib
Figure made without pyplot (no global state; save it with
``fig.savefig(path)``) that shows itself as an image wherever it is
returned (a notebook cell, ``display()``). Bands are central posterior
intervals of the law's expected loss (or of N_opt, D_opt), 50% and 90% by
default; the frontier adds the band of one new training run. A fit that
failed its convergence checks is marked "NOT CONVERGED" on every figure.
"""

from __future__ import annotations

import numpy as np

from ..core.allocation import optimal_allocation
from .contrasts import contrast_draws, fitted_groups
from .planning import posterior_params
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets as _budgets, check_prob as _check_prob, renamed
from ..core.shifts import irreducible_draws, shift_allocation, shift_log_loss
from ..core.laws import NUMPY
from ..base.units import format_count, format_flops
from .risk import run_noise

__all__ = ["plot_frontier", "plot_allocation", "plot_isoflop", "plot_contrast"]

_GRID = 80


def band_levels(prob):
    probs = (prob,) if isinstance(prob, (int, float)) else tuple(prob)
    if not probs:
        raise ValueError("prob must be a probability or a non-empty sequence of them, got an empty sequence")
    for p in probs:
        _check_prob(p)
    return tuple(sorted(probs, reverse=True))  # widest first, so narrower bands draw on top


def observed_compute(fit, k):
    runs = fit.runs.inputs(["N", "D"])
    return k * runs["N"] * runs["D"]


def compute_grid(fit, budgets, k):
    c_obs = observed_compute(fit, k)
    top = c_obs.max() if budgets is None else max(c_obs.max(), budgets.max())
    grid = np.logspace(np.log10(c_obs.min() / 2), np.log10(top * 3), _GRID)
    return grid if budgets is None else np.unique(np.concatenate([grid, budgets]))


def draw_quantiles(draws, p):
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


def mark_budgets(ax, budgets):
    if budgets is None:
        return
    for i, c in enumerate(budgets):
        ax.axvline(c, color="0.4", linestyle=":", linewidth=1, label="budgets asked" if i == 0 else None)


def shade_extrapolation(ax, c_obs, grid, label=True):
    """Shade compute beyond the largest fitted run: there the curve is an extrapolation."""
    if grid.max() > c_obs.max():
        ax.axvspan(c_obs.max(), grid.max(), color="C1", alpha=0.07, linewidth=0, zorder=0,
                   label="beyond the fitted runs" if label else None)


def count_axis(axis):
    """Label a log axis of parameter or token counts in proposal units (100M, 1B, 1.4T)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_count(v) if v > 0 else ""))
    axis.set_minor_formatter(NullFormatter())


def flops_axis(axis):
    """Label a log axis of compute as 1e21, 1e22, ... (FLOP)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: format_flops(v, 2, unit="") if v > 0 else ""))
    axis.set_minor_formatter(NullFormatter())


def loss_axis(axis, values):
    """A log axis for losses: a few plain-number ticks chosen by the span of `values`, no overlapping labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return
    lo, hi = v.min(), v.max()
    ticks = []
    for mant in ((1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 5), (1, 2, 5), (1,)):
        ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
                 for m in mant if lo <= m * 10.0 ** e <= hi]
        if len(ticks) <= 7:
            break
    if len(ticks) < 2:
        ticks = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.3g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def finish_axes(fig, ax, fit):
    from ..base.figure import mark_unconverged

    mark_unconverged(ax, fit)
    return fig


def _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens, group=None, random_seed=None):
    """Checked settings, a compute grid through the budgets, and the optimal allocation's draws along it."""
    probs = band_levels(prob)
    budgets = None if budgets is None else _budgets(budgets)
    k = float(flops_per_param_token)
    grid = compute_grid(fit, budgets, k)
    params = posterior_params(fit, group, random_seed)
    out = optimal_allocation(fit.model.law, params, grid, flops_per_param_token=k, max_unique_tokens=max_unique_tokens)
    return probs, budgets, k, grid, shift_allocation(fit, out, grid, k, max_unique_tokens,
                                                     irreducible_draws(fit, params))


@renamed(budgets="budget")
def plot_frontier(fit, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                  max_unique_tokens=None,
                  group=None, new_run=True, random_seed=None, ax=None):
    """Loss vs compute: observed runs and the compute-optimal frontier with bands.

    The loss axis is logarithmic, and a lower panel shows the bands relative
    to the median (where a 1% band is visible). Compute beyond the largest
    fitted run is shaded (extrapolation); each budget asked gets a readout of
    the median loss and the widest new-run band.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float, optional
        Budgets to extend the frontier to, mark and read out.
    prob : float or sequence of float, default (0.5, 0.9)
        Band probabilities (central intervals of the expected loss at the
        optimum).
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap for the frontier.
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) for a
        new group drawn from the population. A ValueError on fits without groups (it would be ignored).
    new_run : bool, default True
        Also draw the band of one new training run at the optimum (the
        widest `prob`; run-to-run noise added, as in :func:`bayescale.analysis.risk.risk`).
    random_seed : int, optional
        Seed of the new-run noise and new-group draws (default the fit's).
    ax : matplotlib Axes, optional
        Draw into it instead of a new figure (no lower panel then).

    Returns
    -------
    bayescale.base.figure.Figure
        (or the figure of `ax`).

    Examples
    --------
    >>> fig = fit.plot_frontier([1e24, 1e25])  # doctest: +SKIP
    >>> fig.savefig("frontier.png")  # doctest: +SKIP
    """
    budgets = budget
    probs, budgets, k, grid, out = _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens,
                                             group, random_seed)
    loss = out["loss"]
    if ax is None:
        from ..base.figure import new_figure

        fig = new_figure((7.0, 5.8))
        ax, rel = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])
    else:
        fig, rel = ax.figure, None
    c_obs = observed_compute(fit, k)
    shade_extrapolation(ax, c_obs, grid)
    if rel is not None:
        shade_extrapolation(rel, c_obs, grid, label=False)
    ax.scatter(c_obs, fit.runs.loss, s=8, color="0.55", alpha=0.6, label="observed runs", zorder=1)
    median = np.median(loss.reshape(-1, grid.size), axis=0)
    for i, p in enumerate(probs):
        lo, hi = draw_quantiles(loss, p)
        ax.fill_between(grid, lo, hi, color="C0", alpha=0.18 + 0.17 * i, linewidth=0, label=f"{p:.0%} band (curve)")
        if rel is not None:
            rel.fill_between(grid, 100 * (lo / median - 1), 100 * (hi / median - 1), color="C0",
                             alpha=0.18 + 0.17 * i, linewidth=0)
    ax.plot(grid, median, color="C0", linewidth=1.8, label="optimal loss (posterior median)")
    shown = [median, fit.runs.loss]
    new_lo = new_hi = None
    if new_run:
        noise = run_noise(fit, random_seed, group)
        new_lo, new_hi = draw_quantiles(loss * np.exp(noise[..., None]), probs[0])
        ax.plot(grid, new_lo, color="C0", linestyle="--", linewidth=1, label=f"{probs[0]:.0%} band (new run)")
        ax.plot(grid, new_hi, color="C0", linestyle="--", linewidth=1)
        shown += [new_lo, new_hi]
        if rel is not None:
            rel.plot(grid, 100 * (new_lo / median - 1), color="C0", linestyle="--", linewidth=1)
            rel.plot(grid, 100 * (new_hi / median - 1), color="C0", linestyle="--", linewidth=1)
    mark_budgets(ax, budgets)
    if budgets is not None:
        lo_b, hi_b = (new_lo, new_hi) if new_run else draw_quantiles(loss, probs[0])
        for n, c in enumerate(budgets):
            j = int(np.argmin(np.abs(np.log(grid / c))))
            ax.errorbar([c], [median[j]], yerr=[[median[j] - lo_b[j]], [hi_b[j] - median[j]]], fmt="o", ms=4,
                        color="C3", capsize=3, zorder=5)
            ax.annotate(f"{format_flops(c, 2)}: {median[j]:.3f}\n[{lo_b[j]:.3f}, {hi_b[j]:.3f}]", (c, hi_b[j]),
                        xytext=(0, 6 + 24 * (n % 2)), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7.5, color="C3", zorder=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    loss_axis(ax.yaxis, np.concatenate([np.ravel(v) for v in shown]))
    ax.set_ylabel("loss (log scale)")
    cap = "" if max_unique_tokens is None else f", unique tokens <= {format_count(max_unique_tokens)}"
    ax.set_title(f"Compute-optimal frontier: {fit.model.law.name} law, {fit.runs.n_runs} runs{cap}")
    ax.legend(loc="upper right", fontsize="small")
    if rel is not None:
        rel.axhline(0, color="C0", linewidth=1)
        mark_budgets(rel, budgets)
        rel.set_ylabel("vs median (%)")
        rel.set_xlabel("training compute C (FLOP)")
        flops_axis(rel.xaxis)
    else:
        ax.set_xlabel("training compute C (FLOP)")
        flops_axis(ax.xaxis)
    return finish_axes(fig, ax, fit)


@renamed(budgets="budget")
def plot_allocation(fit, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                    max_unique_tokens=None,
                    group=None, random_seed=None, ax=None):
    """Compute-optimal parameters N_opt and tokens D_opt vs compute, with bands.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float, optional
        Budgets to extend the curves to and mark.
    prob : float or sequence of float, default (0.5, 0.9)
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) for a
        new group drawn from the population. A ValueError on fits without groups (it would be ignored).
    random_seed : int, optional
        Seed of new-group draws (default the fit's).
    ax : matplotlib Axes, optional

    Returns
    -------
    bayescale.base.figure.Figure
        (or the figure of `ax`). Counts on the y axis in proposal units (1B, 1.4T).

    Examples
    --------
    >>> fig = fit.plot_allocation([1e24, 1e25])  # doctest: +SKIP
    """
    budgets = budget
    probs, budgets, k, grid, out = _frontier(fit, budgets, prob, flops_per_param_token, max_unique_tokens,
                                             group, random_seed)
    from ..base.figure import figure_and_axes

    fig, ax = figure_and_axes(ax)
    c_obs = observed_compute(fit, k)
    ax.axvspan(c_obs.min(), c_obs.max(), color="0.92", zorder=0, label="compute of fitted runs")
    for key, colour, name in (("N", "C0", "parameters N_opt"), ("D", "C1", "tokens D_opt")):
        for i, p in enumerate(probs):
            lo, hi = draw_quantiles(out[key], p)
            ax.fill_between(grid, lo, hi, color=colour, alpha=0.15 + 0.15 * i, linewidth=0,
                            label=f"{name}: {p:.0%} band")
        ax.plot(grid, np.median(out[key].reshape(-1, grid.size), axis=0), color=colour, linewidth=1.8,
                label=f"{name} (posterior median)")
    if max_unique_tokens is not None:
        ax.axhline(max_unique_tokens, color="C3", linestyle="--", linewidth=1, label="unique-token cap")
    mark_budgets(ax, budgets)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    count_axis(ax.yaxis)
    flops_axis(ax.xaxis)
    ax.set_ylabel("parameters N / tokens D")
    ax.set_title(f"Compute-optimal allocation: {fit.model.law.name} law, C = {k:g} N D")
    ax.legend(loc="upper left", fontsize="small")
    return finish_axes(fig, ax, fit)


@renamed(budgets="budget")
def plot_isoflop(fit, budget=None, *, prob=(0.5, 0.9), flops_per_param_token=FLOPS_PER_PARAM_TOKEN, n_points=60,
                 group=None,
                 random_seed=None, ax=None):
    """IsoFLOP curves: loss vs model size at fixed compute, with bands.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float, optional
        Compute of each curve; default the four compute levels holding the
        most fitted runs (their isoFLOP profiles), else four spanning them.
        Observed runs within 15% of a curve's compute are drawn on it.
    prob : float or sequence of float, default (0.5, 0.9)
    flops_per_param_token : float, default 6
    n_points : int, default 60
        Model sizes per curve (from 1/30 to 30 times the median optimum).
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) for a
        new group drawn from the population. A ValueError on fits without groups (it would be ignored).
    random_seed : int, optional
        Seed of new-group draws (default the fit's).
    ax : matplotlib Axes, optional

    Returns
    -------
    bayescale.base.figure.Figure
        (or the figure of `ax`).

    Examples
    --------
    >>> fig = fit.plot_isoflop([1e21, 1e22, 1e23])  # doctest: +SKIP
    """
    budgets = budget
    probs = band_levels(prob)
    k = float(flops_per_param_token)
    c_obs = observed_compute(fit, k)
    budgets = _isoflop_levels(c_obs) if budgets is None else _budgets(budgets)
    law = fit.model.law
    params = posterior_params(fit, group, random_seed)
    opt = optimal_allocation(law, params, budgets, flops_per_param_token=k)
    n_med = np.exp(np.median(np.log(opt["N"]).reshape(-1, budgets.size), axis=0))
    pe = {name: v[..., None] for name, v in params.items()}
    from ..base.figure import figure_and_axes

    fig, ax = figure_and_axes(ax)
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
            lo, hi = draw_quantiles(loss, p)
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
    count_axis(ax.xaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"IsoFLOP curves: {law.name} law (dots: runs within 15% of the compute)")
    ax.legend(title="compute C", fontsize="small")
    return finish_axes(fig, ax, fit)


#: Budgets along the x axis of :func:`plot_contrast` (each costs one search of the other group's frontier).
_CONTRAST_GRID = 25


def plot_contrast(fit, reference, other=None, budget=None, *, prob=(0.5, 0.9),
                  flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
    """What other groups buy over `reference` across compute: the compute multiplier and the loss difference.

    Upper panel: the compute multiplier (how many times less compute a group needs to reach the loss
    `reference` reaches at C; above 1 when it is more efficient), log scale, with its bands; lower
    panel: the difference of the compute-optimal losses (group - reference; below 0 when it is better).
    Both from :func:`bayescale.analysis.contrasts.contrast_draws`: the form uncertainty, common to every group of
    one fit, is left out. Compute beyond the largest fitted run is shaded.

    Parameters
    ----------
    fit : ScalingFit
        A fit with groups.
    reference : label
        The group the others are measured against (e.g. the current recipe).
    other : label or sequence of labels, optional
        Groups to draw; default every other fitted group.
    budget : float or sequence of float, optional
        Budgets to extend the axis to and mark.
    prob : float or sequence of float, default (0.5, 0.9)
        Band probabilities (equal-tailed).
    flops_per_param_token : float, default 6

    Returns
    -------
    bayescale.base.figure.Figure

    Examples
    --------
    >>> fig = bs.plot_contrast(fit, "old recipe", budget=[1e23, 1e24])  # doctest: +SKIP
    >>> fig.savefig("contrast.png")  # doctest: +SKIP
    """
    fitted = fitted_groups(fit)
    others = [g for g in fitted if g != str(reference)] if other is None else (
        [other] if isinstance(other, str) or not hasattr(other, "__iter__") else list(other))
    if not others:
        raise ValueError(f"no group to compare with {reference!r}; fitted groups: {', '.join(fitted)}")
    probs = band_levels(prob)
    budgets = None if budget is None else _budgets(budget)
    k = float(flops_per_param_token)
    c_obs = observed_compute(fit, k)
    top = c_obs.max() if budgets is None else max(c_obs.max(), budgets.max())
    grid = np.logspace(np.log10(c_obs.min()), np.log10(top * 3), _CONTRAST_GRID)
    from ..base.figure import new_figure

    fig = new_figure((7.0, 5.8))
    ax, low = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
    for a in (ax, low):
        shade_extrapolation(a, c_obs, grid, label=a is ax)
        mark_budgets(a, budgets)
    ax.axhline(1.0, color="0.3", linewidth=1)
    low.axhline(0.0, color="0.3", linewidth=1)
    shown = []
    for i, label in enumerate(others):
        d = contrast_draws(fit, reference, label, grid, flops_per_param_token=k)
        color = f"C{i % 10}"
        mult = np.clip(d["compute_multiplier"].reshape(-1, grid.size), 1e-6, 1e6)  # never / beyond: the axis edge
        diff = d["loss_difference"].reshape(-1, grid.size)
        for j, p in enumerate(probs):
            lo, hi = np.quantile(mult, [(1 - p) / 2, (1 + p) / 2], axis=0, method="inverted_cdf")
            ax.fill_between(grid, lo, hi, color=color, alpha=0.15 + 0.15 * j, linewidth=0)
            shown += [lo, hi]
            lo, hi = np.nanquantile(diff, [(1 - p) / 2, (1 + p) / 2], axis=0)
            low.fill_between(grid, lo, hi, color=color, alpha=0.15 + 0.15 * j, linewidth=0)
        ax.plot(grid, np.quantile(mult, 0.5, axis=0, method="inverted_cdf"), color=color, linewidth=1.8,
                label=f"{label} vs {reference}")
        low.plot(grid, np.nanmedian(diff, axis=0), color=color, linewidth=1.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("compute multiplier")
    bands = " and ".join(f"{p:.0%}" for p in sorted(probs))
    ax.set_title(f"Group contrasts against {reference} ({bands} bands)")
    ax.legend(loc="best", fontsize="small")
    low.set_ylabel("loss difference")
    low.set_xlabel("training compute C (FLOP)")
    flops_axis(low.xaxis)
    return finish_axes(fig, ax, fit)
