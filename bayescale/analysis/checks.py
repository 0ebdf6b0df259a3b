"""Prior and posterior predictive checks.

:func:`prior_predictive` draws parameter sets from a model's priors (the
data-scaled defaults resolved on the runs, as a fit would use them) and shows
the losses they imply against the runs: a table per run and curves over the
data's range. Use it before fitting to see whether a prior is sensible — a
prior whose curves miss the data by orders of magnitude, or pin them far too
tightly, shows at once.

:func:`posterior_predictive` checks a fit against runs (by default the ones
it was fitted on): where each observed loss falls in the predictive
distribution of a new run, the share inside the central band, and a
calibration plot.

Both work on the scale of the likelihood: noise is on log loss, so bands are
multiplicative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..base.errors import SpecError
from ..base.validation import check_prob as _check_prob, check_seed as _check_seed
from ..core.laws import NUMPY
from ..runs.data import load_runs
from .plots import loss_axis
from ..core.pooling import GROUP_NOISE, from_level, level_coordinates, pooled_in_level_form, sd_name, to_level

__all__ = ["PriorPredictive", "PosteriorPredictive", "prior_predictive", "posterior_predictive", "prior_draws"]

_CURVES = 40  # curves drawn in the prior predictive plot
_GRID = 60




def _check_draws(draws):
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise SpecError(f"draws must be a positive integer, got {draws!r}")
    return int(draws)


def prior_draws(model, priors, n, rng) -> dict:
    """Parameter sets drawn from the priors, for a new group when parameters vary by group.

    Parameters
    ----------
    model : ScalingModel
    priors : dict
        A prior for every name in :attr:`ScalingModel.prior_names` (see
        :meth:`ScalingModel.resolve_priors`).
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``{name: ndarray (n,)}`` for :attr:`ScalingModel.param_names`, in the
        published convention. A coefficient with prior ``LogNormal(mu,
        sigma, at)`` has ``log(A / at**alpha) ~ Normal(mu, sigma)``, as in the
        fitted model. A partially pooled parameter is drawn as a new group:
        the population value times ``exp(group_sd * z)`` on its internal
        scale, ``group_sd`` and ``z ~ Normal(0, 1)`` drawn too; an
        independent one straight from its prior. When the groups vary in
        level coordinates the new group's coordinates spread around the
        population's the same way (a coefficient's term taken at its
        prior's ``at``), and so does the log of its noise scale.

    Examples
    --------
    >>> import numpy as np, bayescale as bs
    >>> from bayescale.core.priors import LogNormal
    >>> m = bs.ScalingModel("power_n", priors={"A": LogNormal(0.0, 0.5, at=1e9)})
    >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
    >>> d = prior_draws(m, m.resolve_priors(runs), 4000, np.random.default_rng(0))
    >>> term = np.log(d["A"]) - d["alpha"] * np.log(1e9)  # the prior is on A / 1e9**alpha
    >>> bool(abs(term.mean()) < 0.05), round(float(term.std()), 1)
    (True, 0.5)
    """
    law = model.law
    in_level = pooled_in_level_form(law, model.pooling)
    missing = [k for k in model.prior_names if k not in priors]
    if missing:
        raise SpecError(f"no prior for {', '.join(missing)}; use model.resolve_priors(runs)")
    n = _check_draws(n)
    out = {}

    def spread(name):
        if in_level or model.pooling_of(name) != "partial":
            return 0.0
        return priors[sd_name(name)].sample(rng, n) * rng.standard_normal(n)

    scaled = {p.name: p.scales_with for p in law.parameters if p.scales_with is not None}
    for name in model.param_names:
        if name not in scaled:
            out[name] = np.asarray(priors[name].sample(rng, n), dtype=float) * np.exp(spread(name))
    for name, (_inp, expo) in scaled.items():
        prior = priors[name]
        k = out[expo] if isinstance(expo, str) else float(expo)
        log_at = 0.0 if prior.at is None else np.log(prior.at)
        out[name] = np.exp(prior.mu + prior.sigma * rng.standard_normal(n) + spread(name) + k * log_at)
    if in_level:
        log_at = {c: (0.0 if priors[c].at is None else np.log(priors[c].at), e) for c, (_i, e) in scaled.items()}
        coords = to_level(law, {k: out[k] * np.exp(-out[log_at[k][1]] * log_at[k][0]) if k in log_at else out[k]
                                for k in law.param_names})
        for c, _kind in level_coordinates(law):
            coords[c] = coords[c] + priors[sd_name(c)].sample(rng, n) * rng.standard_normal(n)
        new = from_level(law, coords)
        with np.errstate(over="ignore"):  # a wide prior's far tail: a coefficient beyond 1e308 is inf
            for k, (la, e) in log_at.items():
                new[k] = new[k] * np.exp(new[e] * la)
        out.update(new)
        out[GROUP_NOISE] = out[GROUP_NOISE] * np.exp(priors[sd_name(GROUP_NOISE)].sample(rng, n)
                                                     * rng.standard_normal(n))
    return {k: out[k] for k in model.param_names}


def _noise(model, params, shape, rng):
    if model.likelihood == "student_t":
        return params["sigma"] * rng.standard_t(params["nu"], size=shape)
    return params["sigma"] * rng.standard_normal(shape)


def _path(runs, law, points=_GRID):
    """Inputs along a line through the data: the first input on a grid, the others at their median ratio to it."""
    x = runs.inputs(law.inputs)
    lead = law.inputs[0]
    lo, hi = float(np.min(x[lead])), float(np.max(x[lead]))
    grid = np.geomspace(lo / 3, hi * 3, points)
    ratios = {k: float(np.median(x[k] / x[lead])) for k in law.inputs[1:]}
    path = {lead: grid, **{k: grid * r for k, r in ratios.items()}}
    return path, lead, ratios


@dataclass
class PriorPredictive:
    """What a model's priors imply for the runs (returned by :func:`prior_predictive`).

    Attributes
    ----------
    model : ScalingModel
    runs : RunData
    priors : dict
        The priors used (defaults resolved on the runs).
    params : dict
        Parameter draws, ``{name: ndarray (draws,)}``.
    draws : xarray.Dataset
        ``expected_loss`` (the law's curve) and ``new_run_loss`` (with noise)
        at each run, dims ``(draw, run)``.
    prob : float
    """

    model: object
    runs: object
    priors: dict
    params: dict
    draws: xr.Dataset
    prob: float

    def to_datatree(self) -> xr.DataTree:
        """The draws as ArviZ groups: ``prior``, ``prior_predictive`` and ``observed_data``.

        ``prior`` holds the parameters (published convention), dims (chain,
        draw) with one chain; ``prior_predictive`` the ``log_loss`` of a new
        run at each run (dims chain, draw, run), the variable and scale of a
        fit's ``observed_data``, so ArviZ's prior checks
        (``arviz_plots.plot_ppc_dist(tree, group="prior_predictive")``) apply.

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> tree = prior_predictive(bs.ScalingModel("chinchilla"), runs, draws=100).to_datatree()
        >>> sorted(tree.children), tree["prior_predictive"]["log_loss"].dims
        (['observed_data', 'prior', 'prior_predictive'], ('chain', 'draw', 'run'))
        """
        n = self.draws.sizes["draw"]
        coords = {"chain": [0], "draw": np.arange(n)}
        prior = xr.Dataset({k: (("chain", "draw"), np.asarray(v, dtype=float).reshape(1, n))
                            for k, v in self.params.items()}, coords=coords)
        with np.errstate(divide="ignore"):
            log_loss = np.log(self.draws["new_run_loss"].values)[None]
        run = np.arange(self.runs.n_runs)
        pp = xr.Dataset({"log_loss": (("chain", "draw", "run"), log_loss)}, coords={**coords, "run": run})
        obs = xr.Dataset({"log_loss": ("run", np.log(self.runs.loss))}, coords={"run": run})
        return xr.DataTree.from_dict({"prior": prior, "prior_predictive": pp, "observed_data": obs})

    @property
    def table(self) -> pd.DataFrame:
        """One row per run: its inputs and loss, and the prior predictive of a new run there.

        Columns: the inputs (and ``group``), ``observed_loss``,
        ``prior_median``, ``prior_lower``, ``prior_upper`` (central interval
        of probability :attr:`prob`), ``observed_quantile`` (the share of
        prior draws below the observed loss; near 0 or 1 means the prior
        barely allows it) and ``inside``.
        """
        frame = self.runs.frame
        out = frame[[c for c in ("N", "D", "C", "U", "group") if c in frame]].copy()
        new = self.draws["new_run_loss"].values
        lo, hi = (1 - self.prob) / 2, (1 + self.prob) / 2
        out["observed_loss"] = self.runs.loss
        out["prior_median"] = np.median(new, axis=0)
        out["prior_lower"], out["prior_upper"] = np.quantile(new, [lo, hi], axis=0)
        out["observed_quantile"] = (new < self.runs.loss[None, :]).mean(axis=0)
        out["inside"] = (out["observed_loss"] >= out["prior_lower"]) & (out["observed_loss"] <= out["prior_upper"])
        out.attrs["prob"] = self.prob
        return out

    def summary(self) -> dict:
        """Headline figures of the check.

        Returns
        -------
        dict
            ``coverage`` (share of runs inside the prior band), ``prob``,
            ``band_decades`` (median width of the band in decades of loss:
            how vague the prior is), ``plausible_draws`` (share of draws
            whose expected loss stays within a factor of 3 of the observed
            range at every run).
        """
        table = self.table
        curve = self.draws["expected_loss"].values
        loss = self.runs.loss
        ok = (curve >= loss.min() / 3) & (curve <= loss.max() * 3)
        return {
            "coverage": float(table["inside"].mean()),
            "prob": self.prob,
            "band_decades": float(np.median(np.log10(table["prior_upper"] / table["prior_lower"]))),
            "plausible_draws": float(ok.all(axis=1).mean()),
        }

    def curves(self, points=_GRID) -> xr.Dataset:
        """Expected-loss curves of every draw along a line through the data's range.

        The law's first input runs from a third of its smallest value in the
        runs to three times its largest; the other inputs follow at their
        median ratio to it in the runs (e.g. D = 20 N).

        Returns
        -------
        xarray.Dataset
            ``expected_loss`` (dims ``draw``, ``point``) and the inputs along
            the path (dim ``point``).
        """
        law = self.model.law
        path, _lead, _ratios = _path(self.runs, law, points)
        x = {k: v[None, :] for k, v in path.items()}
        p = {k: v[:, None] for k, v in self.params.items() if k in law.param_names}
        with np.errstate(all="ignore"):
            curve = np.exp(np.asarray(law.log_loss(x, p, NUMPY)))
        data = {"expected_loss": (("draw", "point"), curve)}
        data.update({k: ("point", v) for k, v in path.items()})
        return xr.Dataset(data)

    def plot(self, curves=_CURVES, ax=None):
        """Curves drawn from the priors and their band, against the runs.

        Parameters
        ----------
        curves : int
            Number of individual prior curves to draw.
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ..base.figure import figure_and_axes

        law = self.model.law
        fig, ax = figure_and_axes(ax)
        _path_inputs, lead, ratios = _path(self.runs, law, 2)
        c = self.curves()
        grid = c[lead].values
        values = c["expected_loss"].values
        finite = np.where(np.isfinite(values), values, np.nan)
        lo, hi = np.nanquantile(finite, [(1 - self.prob) / 2, (1 + self.prob) / 2], axis=0)
        ax.fill_between(grid, lo, hi, color="C0", alpha=0.2, label=f"{self.prob:.0%} of prior curves")
        for i in range(min(int(curves), values.shape[0])):
            ax.plot(grid, finite[i], color="C0", lw=0.6, alpha=0.5)
        x_obs = self.runs.inputs([lead])[lead]
        ax.scatter(x_obs, self.runs.loss, s=10, color="k", zorder=3, label="runs")
        loss = self.runs.loss
        for v in (loss.min(), loss.max()):
            ax.axhline(v, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(lead + "".join(f", {k} = {r:.3g} {lead}" for k, r in ratios.items()))
        ax.set_ylabel("loss")
        ylo = max(np.nanmin(lo), loss.min() / 100)
        yhi = min(np.nanmax(hi), loss.max() * 100)
        ax.set_ylim(min(ylo, loss.min()) * 0.8, max(yhi, loss.max()) * 1.25)
        s = self.summary()
        ax.set_title(f"Prior predictive, {self.model.law.name}: {s['coverage']:.0%} of runs inside the "
                     f"{self.prob:.0%} band", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
        return fig


def prior_predictive(model, runs, *, draws=1000, prob=0.9, random_seed=0, columns=None) -> PriorPredictive:
    """Draw from a model's priors and compare the implied losses with the runs.

    Parameters
    ----------
    model : ScalingModel
    runs : RunData, DataFrame or path
        The runs the model would be fitted to (their losses are only used for
        the comparison and to scale the default priors).
    draws : int
        Draws per chain, as everywhere in bayescale (``fit(draws=)``,
        ``fit_many``, ``sbc``); the prior predictive has one chain, so this
        is the number of parameter sets drawn.
    prob : float
        Probability of the central bands.
    random_seed : int
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    PriorPredictive
        ``.table`` (per run), ``.summary()``, ``.plot()``, ``.curves()``.

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
    >>> check = prior_predictive(bs.ScalingModel("chinchilla"), runs, random_seed=1)
    >>> check.summary()["coverage"] > 0.9
    True
    >>> check.plot()  # doctest: +SKIP
    """
    random_seed = _check_seed(random_seed)
    _check_prob(prob)
    draws = _check_draws(draws)
    runs = model.read_runs(runs, columns)
    priors = model.resolve_priors(runs)
    rng = np.random.default_rng(random_seed)
    params = prior_draws(model, priors, draws, rng)
    x = {k: v[None, :] for k, v in runs.inputs(model.law.inputs).items()}
    p = {k: v[:, None] for k, v in params.items() if k in model.law.param_names}
    with np.errstate(all="ignore"):
        log_mu = np.asarray(model.law.log_loss(x, p, NUMPY)) * np.ones((draws, runs.n_runs))
        noise = _noise(model, {k: v[:, None] for k, v in params.items()}, log_mu.shape, rng)
        data = xr.Dataset({"expected_loss": (("draw", "run"), np.exp(log_mu)),
                           "new_run_loss": (("draw", "run"), np.exp(log_mu + noise))},
                          coords={"draw": np.arange(draws), "run": np.arange(runs.n_runs)})
    return PriorPredictive(model, runs, priors, params, data, float(prob))


@dataclass
class PosteriorPredictive:
    """A fit's predictive distribution at runs with known loss (returned by :func:`posterior_predictive`).

    Attributes
    ----------
    fit : ScalingFit
    runs : RunData
        The runs checked.
    draws : xarray.Dataset
        ``expected_loss`` and ``new_run_loss``, dims ``(chain, draw, run)``.
    prob : float
    in_sample : bool
        True when the runs are the ones the fit was trained on (the check is
        then optimistic: the fit has seen them).
    """

    fit: object
    runs: object
    draws: xr.Dataset
    prob: float
    in_sample: bool

    @property
    def table(self) -> pd.DataFrame:
        """One row per run: inputs, observed loss, the predictive of a new run, its PIT.

        Columns: the inputs (and ``group``), ``observed_loss``,
        ``predicted_median``, ``new_run_lower``, ``new_run_upper`` (central
        interval of probability :attr:`prob`), ``pit`` (share of predictive
        draws below the observed loss: uniform on [0, 1] for a calibrated
        model), ``inside``, ``log_residual`` (log observed / predicted
        median) and ``converged`` (the fit's verdict).
        """
        frame = self.runs.frame
        out = frame[[c for c in ("N", "D", "C", "U", "group") if c in frame]].copy()
        new = self.draws["new_run_loss"].values.reshape(-1, self.runs.n_runs)
        curve = self.draws["expected_loss"].values.reshape(-1, self.runs.n_runs)
        lo, hi = (1 - self.prob) / 2, (1 + self.prob) / 2
        loss = self.runs.loss
        out["observed_loss"] = loss
        out["predicted_median"] = np.median(curve, axis=0)
        out["new_run_lower"], out["new_run_upper"] = np.quantile(new, [lo, hi], axis=0)
        out["pit"] = (new < loss[None, :]).mean(axis=0)
        out["inside"] = (loss >= out["new_run_lower"]) & (loss <= out["new_run_upper"])
        out["log_residual"] = np.log(loss / out["predicted_median"])
        out["converged"] = self.fit.converged
        out.attrs["prob"] = self.prob
        return out

    def summary(self) -> pd.DataFrame:
        """One row: ``n_runs``, ``prob``, ``coverage`` (share inside the band),
        ``pit_ks_pvalue`` (Kolmogorov-Smirnov test of uniform PIT; small values
        flag mis-calibration), ``rms_log_residual``, ``in_sample``,
        ``converged``."""
        from scipy import stats

        table = self.table
        pvalue = float(stats.kstest(table["pit"], "uniform").pvalue) if len(table) > 1 else float("nan")
        return pd.DataFrame([{
            "n_runs": self.runs.n_runs,
            "prob": self.prob,
            "coverage": float(table["inside"].mean()),
            "pit_ks_pvalue": pvalue,
            "rms_log_residual": float(np.sqrt(np.mean(table["log_residual"] ** 2))),
            "in_sample": self.in_sample,
            "converged": self.fit.converged,
        }])

    def to_datatree(self) -> xr.DataTree:
        """ArviZ groups of this check: ``posterior_predictive`` and ``observed_data``, ``log_loss`` at the runs checked.

        Works for held-out runs as for the fitted ones, so ArviZ's checks
        (``arviz_plots.plot_ppc_pit``, ``plot_ppc_dist``) apply to either.
        """
        run = np.arange(self.runs.n_runs)
        pp = np.log(self.draws["new_run_loss"]).assign_coords(run=run).to_dataset(name="log_loss")
        obs = xr.Dataset({"log_loss": ("run", np.log(self.runs.loss))}, coords={"run": run})
        return xr.DataTree.from_dict({"posterior_predictive": pp, "observed_data": obs})

    def plot_pit(self, **kwargs):
        """The PIT's ECDF difference with simultaneous bands, by arviz-plots (``plot_ppc_pit``).

        A sharper view of calibration than the histogram of :meth:`plot`:
        points outside the band are flagged. Keyword arguments go to
        :func:`arviz_plots.plot_ppc_pit` (``backend`` defaults to
        matplotlib).

        Returns
        -------
        arviz_plots.PlotCollection

        Examples
        --------
        >>> posterior_predictive(fit).plot_pit()  # doctest: +SKIP
        """
        import arviz_plots as azp

        kwargs.setdefault("backend", "matplotlib")
        return azp.plot_ppc_pit(self.to_datatree(), **kwargs)

    def plot(self):
        """Observed / predicted loss per run with its new-run band (red: outside), and the PIT histogram.

        Returns
        -------
        bayescale.base.figure.Figure
        """
        from ..base.figure import mark_unconverged, new_figure

        table = self.table
        fig = new_figure((10.0, 4.2))
        ax, ax2 = fig.subplots(1, 2)
        pred = table["predicted_median"].to_numpy()
        colour = np.where(table["inside"], "C0", "C3")
        ax.vlines(pred, table["new_run_lower"] / pred, table["new_run_upper"] / pred, color="0.6", lw=1, alpha=0.6)
        ax.scatter(pred, table["observed_loss"] / pred, s=10, c=colour, zorder=3)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        loss_axis(ax.xaxis, pred)
        ax.set_xlabel("predicted loss (posterior median, log scale)")
        ax.set_ylabel(f"observed / predicted; bar: {self.prob:.0%} new-run band")
        s = self.summary().iloc[0]
        ax.set_title(f"{s['coverage']:.0%} of {s['n_runs']} runs inside the {self.prob:.0%} band"
                     + (" (in-sample)" if self.in_sample else ""), fontsize=10)
        bins = min(20, max(5, self.runs.n_runs // 8))
        ax2.hist(table["pit"], bins=bins, range=(0, 1), color="C0", alpha=0.7)
        ax2.axhline(self.runs.n_runs / bins, color="k", lw=0.8, ls="--")
        ax2.set_xlabel("PIT: predictive probability below the observed loss")
        ax2.set_ylabel("runs")
        ax2.set_title(f"uniform if calibrated (KS p = {s['pit_ks_pvalue']:.2g})", fontsize=10)
        mark_unconverged(ax, self.fit)
        return fig


def posterior_predictive(fit, runs=None, *, prob=0.9, random_seed=None, columns=None) -> PosteriorPredictive:
    """Posterior predictive check of a fit at runs with known loss.

    Parameters
    ----------
    fit : ScalingFit
    runs : RunData, DataFrame or path, optional
        Runs with a ``loss`` column; default the runs the fit was trained on.
        Held-out runs give an honest check of predictions; for a fit with
        groups, a ``group`` column picks each row's group (unseen labels are
        new groups).
    prob : float
        Probability of the new-run band.
    random_seed : int, optional
        Seed of the noise draws (default: the fit's).
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    PosteriorPredictive
        ``.table`` (per run), ``.summary()``, ``.plot()``.

    Examples
    --------
    >>> check = posterior_predictive(fit)  # doctest: +SKIP
    >>> check.summary()[["coverage", "pit_ks_pvalue", "converged"]]  # doctest: +SKIP
    """
    random_seed = _check_seed(random_seed)

    _check_prob(prob)
    in_sample = runs is None
    if in_sample:
        runs = fit.runs
    else:
        runs = load_runs(runs, columns=columns, require=fit.model.law.inputs)
    draws = fit.predict_draws(runs, random_seed=random_seed)
    return PosteriorPredictive(fit, runs, draws, float(prob), in_sample)

