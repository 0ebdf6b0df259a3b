"""Posterior draws and summaries of the groups of a fit with groups (see :mod:`bayescale.analysis.hierarchy`).

Per-group parameter draws for fitted and new groups, the shrinkage table and
its forest plot.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import xarray as xr

from .contract import interval_label, SAMPLE_DIMS
from ..base.errors import SpecError
from ..core.pooling import (GROUP_NOISE, NEW_GROUP, from_level, level_coordinates, pooled_in_level_form, pop_name,
                            sd_name, to_level)
from ..base.validation import check_prob as _check_prob, check_seed

__all__ = ["tidy_posterior", "group_param_draws", "group_labels", "group_summary", "plot_groups"]



# ---------------------------------------------------------------- posterior
def tidy_posterior(model, trace_posterior: xr.Dataset, groups) -> xr.Dataset:
    """Published variables with their group axis named ``group`` and labelled.

    Samplers name the extra axis ``<var>_dim_0``; this renames it and sets the
    group labels of the fitted runs.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from bayescale.fitting.model import ScalingModel
    >>> m = ScalingModel("power_n", likelihood="normal", pooling={"E": "independent"})
    >>> raw = xr.Dataset({k: (("chain", "draw", "E_dim_0") if k == "E" else ("chain", "draw"),
    ...                       np.ones((1, 3, 2) if k == "E" else (1, 3))) for k in m.published_names},
    ...                  coords={"chain": [0], "draw": [0, 1, 2]})
    >>> tidy_posterior(m, raw, ["web", "code"])["E"].dims
    ('chain', 'draw', 'group')
    """
    out = {}
    offsets = ("run_sd",) if "run_sd" in trace_posterior.data_vars else ()  # within_run="offset"
    for name in model.published_names + offsets:
        da = trace_posterior[name]
        extra = [d for d in da.dims if d not in SAMPLE_DIMS]
        values = da.transpose(*SAMPLE_DIMS, *extra).values
        if extra:
            out[name] = ((*SAMPLE_DIMS, "group"), values)
        else:
            out[name] = (SAMPLE_DIMS, values)
    coords = {"chain": trace_posterior["chain"].values, "draw": trace_posterior["draw"].values}
    if model.hierarchical:
        coords["group"] = np.asarray([str(g) for g in groups], dtype=str)
    return xr.Dataset(out, coords=coords)


def _centre_log(fit, name) -> float:
    inp = fit.model.law.parameter(name).scales_with[0]
    return float(np.log(fit.centres_[fit.model.law.scaled_inputs[inp]]))


def _exponent(fit, name):
    """The exponent (name or number) a coefficient scales with, or None."""
    if name not in fit.model.law.param_names:
        return None
    sw = fit.model.law.parameter(name).scales_with
    return None if sw is None else sw[1]


def group_param_draws(fit, labels, random_seed=None) -> dict:
    """Parameter draws for each of ``labels``, known groups or new ones.

    Parameters
    ----------
    fit : ScalingFit
    labels : sequence
        Group labels. A label the fit was trained on gives that group's
        posterior; ``None``, :data:`NEW_GROUP` (``"new"``, unless a fitted
        group has that name) or any label the fit has not seen gives a new
        group drawn from the population (one independent draw per distinct
        unseen label).
    random_seed : int, optional
        Seed of the new-group draws; default the fit's seed.

    Returns
    -------
    dict
        ``{name: array (chain, draw, len(labels))}`` for the law's parameters
        and the likelihood's (``sigma``, ``nu``), in the published convention.

    Raises
    ------
    SpecError
        A new group is asked for while a parameter is ``independent`` across
        groups (the fit then says nothing about a new group).

    Examples
    --------
    >>> draws = group_param_draws(fit, ["web", "new"])  # doctest: +SKIP
    >>> draws["E"].shape  # doctest: +SKIP
    (4, 1000, 2)
    """
    random_seed = check_seed(random_seed)
    model, post = fit.model, fit.posterior
    labels = list(labels)
    n = len(labels)
    names = model.param_names
    if not model.hierarchical:
        return {k: np.repeat(post[k].values[..., None], n, axis=-1) for k in names}
    fitted = [str(g) for g in post["group"].values]
    index = {g: i for i, g in enumerate(fitted)}
    keys = [None if lab is None or (str(lab) == NEW_GROUP and NEW_GROUP not in index) else str(lab)
            for lab in labels]
    unseen = list(dict.fromkeys(k for k in keys if k not in index))
    shape = (post.sizes["chain"], post.sizes["draw"])
    if unseen:
        blocked = [k for k in model.law.param_names if model.pooling_of(k) == "independent"]
        if blocked:
            raise SpecError(
                f"group(s) {[u if u is not None else NEW_GROUP for u in unseen]} were not in the fit, and "
                f"{', '.join(blocked)} {'is' if len(blocked) == 1 else 'are'} 'independent' across groups, so "
                f"the fit says nothing about a new group; fitted groups: {', '.join(fitted)}. Use "
                "pooling 'partial' to predict for new groups."
            )
        seed = int(fit.settings["random_seed"] if random_seed is None else random_seed)
        # one stream per label, so a label's draws do not depend on the other labels asked for
        draws = [_new_group_draws(fit, np.random.default_rng([seed, zlib.crc32(repr(u).encode())]), shape, 1)
                 for u in unseen]
        new = {k: np.concatenate([d[k] for d in draws], axis=-1) for k in names}
        pos = {u: j for j, u in enumerate(unseen)}
    out = {}
    for name in names:
        arr = post[name].values
        cols = []
        for k in keys:
            if k in index:
                cols.append(arr[..., index[k]] if arr.ndim == 3 else arr)
            else:
                cols.append(new[name][..., pos[k]])
        out[name] = np.stack(cols, axis=-1) if cols else np.empty((*shape, 0))
    return out


def group_labels(fit, runs, group=None):
    """Group label of each row of `runs` and whether it is a new (unfitted) group."""
    fitted = {str(g) for g in fit.posterior["group"].values}
    if runs.groups is not None:
        labels = [str(g) for g in runs.frame["group"]]
    else:
        labels = [NEW_GROUP if group is None else str(group)] * runs.n_runs
    new = [g not in fitted or (g == NEW_GROUP and group is None and runs.groups is None) for g in labels]
    return labels, new


def _new_level_group_draws(fit, rng, shape, m) -> dict:
    """:func:`_new_group_draws` when the groups vary in level coordinates (and in their noise scale)."""
    model, post = fit.model, fit.posterior
    law = model.law
    centred = {}
    for p in law.parameters:
        value = post[pop_name(p.name)].values
        if p.scales_with is not None:
            value = value * np.exp(-post[pop_name(p.scales_with[1])].values * _centre_log(fit, p.name))
        centred[p.name] = value
    coords = to_level(law, centred)
    new = {c: coords[c][..., None] + post[sd_name(c)].values[..., None] * rng.standard_normal((*shape, m))
           for c, _kind in level_coordinates(law)}
    out = from_level(law, new)
    with np.errstate(over="ignore"):  # a far-tail exponent: the published coefficient may pass 1e308
        for p in law.parameters:
            if p.scales_with is not None:
                out[p.name] = out[p.name] * np.exp(out[p.scales_with[1]] * _centre_log(fit, p.name))
    noise = post[sd_name(GROUP_NOISE)].values[..., None] * rng.standard_normal((*shape, m))
    out[GROUP_NOISE] = post[pop_name(GROUP_NOISE)].values[..., None] * np.exp(noise)
    for name in model.param_names:
        if name not in out:
            out[name] = np.repeat(post[name].values[..., None], m, axis=-1)
    return out


def _new_group_draws(fit, rng, shape, m) -> dict:
    """Draws of every parameter for ``m`` new groups: (chain, draw, m) arrays."""
    model, post = fit.model, fit.posterior
    if pooled_in_level_form(model.law, model.pooling):
        return _new_level_group_draws(fit, rng, shape, m)
    out = {}
    law = model.law
    plain = [p.name for p in law.parameters if p.scales_with is None]
    scaled = [p.name for p in law.parameters if p.scales_with is not None]
    for name in plain:
        choice = model.pooling_of(name)
        if choice == "shared":
            out[name] = np.repeat(post[name].values[..., None], m, axis=-1)
        else:  # partial
            offset = rng.standard_normal((*shape, m))
            out[name] = post[pop_name(name)].values[..., None] * np.exp(post[sd_name(name)].values[..., None] * offset)
    for name in scaled:
        expo = _exponent(fit, name)
        logc = _centre_log(fit, name)
        k_new = out[expo] if isinstance(expo, str) else float(expo)
        k_fit = post[expo].values if isinstance(expo, str) else float(expo)
        choice = model.pooling_of(name)
        log_a = np.log(post[name].values)
        if choice == "shared":
            # the centred term log(A / N0**k) is shared: take it from any group
            centred = (log_a - k_fit * logc)
            centred = centred[..., :1] if np.ndim(centred) == 3 else centred[..., None]
        else:  # partial
            k_pop = _population_exponent(fit, expo)
            centred_pop = np.log(post[pop_name(name)].values) - k_pop * logc
            offset = rng.standard_normal((*shape, m))
            centred = centred_pop[..., None] + post[sd_name(name)].values[..., None] * offset
        out[name] = np.exp(centred + k_new * logc) * np.ones((*shape, m))
    for name in model.param_names:
        if name not in out:
            out[name] = np.repeat(post[name].values[..., None], m, axis=-1)
    return out


def _population_exponent(fit, expo):
    """The exponent value used for a coefficient's population term (as in the sampled graph)."""
    model, post = fit.model, fit.posterior
    if not isinstance(expo, str):
        return float(expo)
    choice = model.pooling_of(expo)
    if choice == "shared":
        return post[expo].values
    if choice == "partial":
        return post[pop_name(expo)].values
    return np.exp(np.log(post[expo].values).mean(axis=-1))


# ---------------------------------------------------------------- summaries
def _interval(values, prob):
    import arviz_stats as azs

    flat = np.asarray(values, dtype=float).reshape(-1)
    lo, hi = np.asarray(azs.hdi(flat, prob=prob), dtype=float).reshape(-1)[:2]
    return float(np.median(flat)), float(lo), float(hi)


def group_summary(fit, prob=0.9, params=None) -> pd.DataFrame:
    """Per-group estimates beside the population's, one row per (parameter, group).

    Parameters
    ----------
    fit : ScalingFit
    prob : float
        Probability of the highest-density intervals.
    params : sequence of str, optional
        Parameters to show; default those that vary by group.

    Returns
    -------
    DataFrame
        Columns ``parameter``, ``group``, ``n_runs``, ``estimate`` (the
        posterior median), ``lower``, ``upper``, ``pooling``, ``converged`` (the
        fit's convergence verdict, see :meth:`ScalingFit.diagnostics`). For partially pooled
        parameters two extra rows: ``group="(population median)"`` (the
        population value ``<name>_pop``) and ``group="(new group)"`` (the
        value for an unseen group, including the spread between groups).
        Shrinkage shows as group estimates pulled towards the population
        median, most for groups with few runs.

    Examples
    --------
    >>> fit = bs.ScalingModel("chinchilla_mixtures").fit(runs)  # doctest: +SKIP
    >>> group_summary(fit).query("parameter == 'E'")  # doctest: +SKIP
    """
    _check_prob(prob)
    model, post = fit.model, fit.posterior
    if not model.hierarchical:
        raise SpecError("this fit has no groups: every parameter is shared; fit a model with "
                        "pooling={'E': 'partial', ...} on runs with a 'group' column")
    params = list(model.varying_names if params is None else params)
    for p in params:
        if p not in model.law.param_names:
            raise SpecError(f"no parameter {p!r}; valid names: {', '.join(model.law.param_names)}")
    groups = [str(g) for g in post["group"].values]
    counts = pd.Series(fit.runs.group_index).value_counts()
    rows = []
    new = None
    if any(model.pooling_of(p) == "partial" for p in params):
        new = group_param_draws(fit, [None])
    for p in params:
        arr = post[p].values
        for i, g in enumerate(groups):
            vals = arr[..., i] if arr.ndim == 3 else arr
            rows.append((p, g, int(counts.get(i, 0)), *_interval(vals, prob), model.pooling_of(p)))
        if model.pooling_of(p) == "partial":
            rows.append((p, "(population median)", int(fit.runs.n_runs),
                         *_interval(post[pop_name(p)].values, prob), "partial"))
            rows.append((p, "(new group)", 0, *_interval(new[p], prob), "partial"))
    table = pd.DataFrame(rows, columns=["parameter", "group", "n_runs", "estimate", "lower", "upper",
                                        "pooling"])
    table["converged"] = fit.converged
    table.attrs.update(prob=prob, interval=interval_label("posterior", "hdi"))
    return table


def plot_groups(fit, params=None, prob=0.9, *, compare=None, truth=None):
    """Forest plot: each group's interval beside the population's (shrinkage visible).

    Parameters
    ----------
    fit : ScalingFit
        A fit with groups.
    params : sequence of str, optional
        Default: the parameters that vary by group.
    prob : float
        Probability of the intervals.
    compare : ScalingFit, optional
        Another fit on the same groups (e.g. ``independent`` pooling), drawn
        in grey beside each group to show how far pooling moved it.
    truth : mapping, optional
        ``{parameter: {group: value}}`` of known values (synthetic data),
        drawn as crosses.

    Returns
    -------
    matplotlib.figure.Figure
        Made without pyplot (no global state); save it with ``fig.savefig(path)``.

    Examples
    --------
    >>> plot_groups(pooled_fit, compare=independent_fit).savefig("groups.png")  # doctest: +SKIP
    """
    from ..base.figure import mark_unconverged, new_figure

    table = group_summary(fit, prob, params)
    other = group_summary(compare, prob, params) if compare is not None else None
    names = list(dict.fromkeys(table["parameter"]))
    fig = new_figure((4.2 * len(names), 0.45 * table["group"].nunique() + 1.6))
    axes = fig.subplots(1, len(names), squeeze=False, sharey=True)
    labels = list(dict.fromkeys(table["group"]))
    ypos = {g: len(labels) - 1 - i for i, g in enumerate(labels)}
    for ax, name in zip(axes[0], names):
        sub = table[table["parameter"] == name]
        for _, row in sub.iterrows():
            y = ypos[row["group"]]
            pop = row["group"].startswith("(")
            colour = "C3" if pop else "C0"
            ax.plot([row["lower"], row["upper"]], [y, y], color=colour, lw=2.5 if pop else 2)
            ax.plot(row["estimate"], y, "o", color=colour, ms=5)
        if other is not None:
            osub = other[other["parameter"] == name]
            for _, row in osub.iterrows():
                if row["group"] in ypos and not row["group"].startswith("("):
                    y = ypos[row["group"]] - 0.25
                    ax.plot([row["lower"], row["upper"]], [y, y], color="0.6", lw=1.5)
                    ax.plot(row["estimate"], y, "o", color="0.6", ms=3)
        pm = sub[sub["group"] == "(population median)"]
        if len(pm):
            ax.axvline(float(pm["estimate"].iloc[0]), color="C3", lw=0.8, ls="--")
        if truth and name in truth:
            for g, v in truth[name].items():
                if str(g) in ypos:
                    ax.plot(v, ypos[str(g)], "x", color="k", ms=7)
        ax.set_title(f"{name} ({fit.model.pooling_of(name)})")
        ax.set_xlabel(name)
        if float(sub["lower"].min()) > 0 and float(sub["upper"].max()) / float(sub["lower"].min()) > 20:
            ax.set_xscale("log")
    counts = table.drop_duplicates("group").set_index("group")["n_runs"]
    axes[0][0].set_yticks([ypos[g] for g in labels])
    axes[0][0].set_yticklabels([g if g.startswith("(") else f"{g} ({counts[g]} runs)" for g in labels])
    note = f"{prob:.0%} {interval_label('posterior', 'hdi')}; red: population" + (
        "; grey: comparison fit" if compare is not None else "") + (
        "; x: true value" if truth else "")
    fig.suptitle(note, fontsize=9)
    mark_unconverged(axes[0][0], fit)
    return fig
