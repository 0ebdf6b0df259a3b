"""The result of a Bayesian fit: posterior, diagnostics and predictions."""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xarray as xr

from .errors import ConvergenceWarning
from .validation import check_prob as _check_prob
from .form import irreducible_draws, shift_log_loss
from .laws import NUMPY

__all__ = ["ScalingFit", "FORMAT_VERSION"]

FORMAT_VERSION = 1
RHAT_MAX = 1.01
ESS_MIN = 400
SAMPLE_DIMS = ("chain", "draw")


def _version() -> str:
    from . import __version__

    return __version__


class ScalingFit:
    """Posterior of a scaling law fitted to run data (returned by :meth:`ScalingModel.fit`).

    Attributes
    ----------
    model : ScalingModel
        The settings that produced this fit.
    runs : RunData
        The training runs.
    idata : xarray.DataTree
        Groups ``posterior`` (published parameters only), ``sample_stats``,
        ``observed_data`` (log loss), ``constant_data`` (inputs) and
        ``log_likelihood`` (pointwise, for LOO).
    priors_ : dict
        The priors actually used, data-scaled defaults resolved.
    centres_ : dict
        The input centres used internally (geometric means).

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.ScalingModel().fit(bs.datasets.load_chinchilla(drop_outliers=True))  # doctest: +SKIP
    >>> fit.predict({"N": [70e9], "D": [1.4e12]})  # doctest: +SKIP
    """

    def __init__(self, model, runs, idata, priors, centres):
        self.model = model
        self.runs = runs
        self.idata = idata
        self.priors_ = dict(priors)
        self.centres_ = dict(centres)
        self._residuals = None  # computed on first use by residuals()

    # ------------------------------------------------------------ construction
    @classmethod
    def _from_sampling(cls, model, runs, priors, scale, trace, settings, timing):
        from .conflicts import warn_model_checks
        from .hierarchy import tidy_posterior

        posterior = tidy_posterior(model, trace["posterior"].to_dataset(), runs.groups or ())
        stats = trace["sample_stats"].to_dataset()
        stats = stats[[v for v in stats.data_vars if stats[v].dtype.kind in "biuf"]]
        run = np.arange(runs.n_runs)
        obs = xr.Dataset({"log_loss": ("run", np.log(runs.loss))}, coords={"run": run})
        const = _constant_data(runs)
        loglik = xr.Dataset({"log_loss": _pointwise_loglik(model, posterior, runs)})
        attrs = {
            "bayescale_format": FORMAT_VERSION,
            "bayescale_version": _version(),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model_spec": json.dumps(model.to_dict()),
            "priors": json.dumps({k: v.to_dict() for k, v in priors.items()}),
            "centres": json.dumps(scale.centres),
            "sampler": json.dumps(settings.__dict__),
            "timing": json.dumps(timing),
        }
        tree = xr.DataTree.from_dict(
            {"posterior": posterior, "sample_stats": stats, "observed_data": obs,
             "constant_data": const, "log_likelihood": loglik}
        )
        tree.attrs.update(attrs)
        fit = cls(model, runs, tree, priors, scale.centres)
        fit._warn_if_unconverged()
        warn_model_checks(fit, stacklevel=3)
        return fit

    # ------------------------------------------------------------- posterior
    @property
    def posterior(self) -> xr.Dataset:
        """Posterior draws of the published parameters (dims chain, draw)."""
        return self.idata["posterior"].to_dataset()

    @property
    def settings(self) -> dict:
        """Sampler settings (draws, tune, chains, cores, random_seed, sampler ...)."""
        return json.loads(self.idata.attrs["sampler"])

    @property
    def timing(self) -> dict:
        """Where the fit's time went, in seconds.

        ``imports_seconds`` (PyMC and the sampler, paid by a process's first fit), ``graph_seconds``
        (building the PyMC graph), ``compile_seconds`` and ``compile_source`` (the sampler's compiled
        model: ``"disk"`` loaded from the cache folder, ``"compiled"``, or ``"process"`` already in
        memory), ``mode_seconds`` (mode search), ``setup_seconds`` (all before sampling),
        ``sampling_seconds``, ``result_seconds`` (tables and checks), ``total_seconds``, ``attempts``.
        Fits saved before these keys existed have ``setup_seconds``, ``sampling_seconds`` and
        ``total_seconds`` only.
        """
        return json.loads(self.idata.attrs["timing"])

    def summary(self, prob=0.9) -> pd.DataFrame:
        """Posterior summary table, one row per parameter.

        Parameters
        ----------
        prob : float
            Probability mass of the highest-density interval.

        Returns
        -------
        DataFrame
            Columns ``mean``, ``sd``, ``median``, ``hdi_lower``, ``hdi_upper``,
            ``r_hat``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``; ``attrs["prob"]``.

        Examples
        --------
        >>> fit.summary().loc["alpha", ["median", "hdi_lower", "hdi_upper"]]  # doctest: +SKIP
        """
        import arviz as az

        _check_prob(prob)
        table = az.summary(self.posterior, ci_kind="hdi", ci_prob=prob, round_to="none")
        tag = f"hdi{int(round(prob * 100))}"
        table = table.rename(columns={f"{tag}_lb": "hdi_lower", f"{tag}_ub": "hdi_upper"})
        table.insert(2, "median", [_medians(self.posterior)[v] for v in table.index])
        table = table[["mean", "sd", "median", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk", "ess_tail",
                       "mcse_mean"]]
        table.index.name = "parameter"
        table.attrs["prob"] = prob
        return table

    def diagnostics(self) -> dict:
        """Convergence and efficiency figures of the sampler.

        Returns
        -------
        dict
            ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
            ``mean_leapfrog_steps`` (per draw), ``max_tree_depth``,
            ``sampling_seconds``, ``converged`` (R-hat <= 1.01, bulk ESS >= 400,
            no divergences).
        """
        import arviz as az

        post = self.posterior
        rhat = az.rhat(post)
        ess_b = az.ess(post, method="bulk")
        ess_t = az.ess(post, method="tail")
        stats = self.idata["sample_stats"].to_dataset()
        depth = stats["depth"] if "depth" in stats else stats.get("tree_depth")
        steps = stats["n_steps"] if "n_steps" in stats else None
        out = {
            "max_r_hat": max(float(rhat[v].max()) for v in rhat.data_vars),
            "min_ess_bulk": min(float(ess_b[v].min()) for v in ess_b.data_vars),
            "min_ess_tail": min(float(ess_t[v].min()) for v in ess_t.data_vars),
            "divergences": int(stats["diverging"].sum()) if "diverging" in stats else 0,
            "mean_leapfrog_steps": float(steps.mean()) if steps is not None else float("nan"),
            "max_tree_depth": int(depth.max()) if depth is not None else -1,
            "sampling_seconds": float(self.timing.get("sampling_seconds", float("nan"))),
        }
        out["converged"] = bool(
            out["max_r_hat"] <= RHAT_MAX and out["min_ess_bulk"] >= ESS_MIN and out["divergences"] == 0
        )
        return out

    @property
    def converged(self) -> bool:
        """True when R-hat <= 1.01, bulk ESS >= 400 and there are no divergences."""
        return self.diagnostics()["converged"]

    def _warn_if_unconverged(self):
        d = self.diagnostics()
        advice = []
        if d["divergences"]:
            advice.append(f"{d['divergences']} divergent transitions: the posterior has regions the sampler "
                          "cannot follow; try target_accept=0.99, tighter priors, or check the data for "
                          "outlying runs")
        if d["max_r_hat"] > RHAT_MAX:
            advice.append(f"max R-hat {d['max_r_hat']:.3f} > {RHAT_MAX}: chains disagree; run more tune "
                          "and draws, or look for multiple modes (fit.summary())")
        if d["min_ess_bulk"] < ESS_MIN:
            advice.append(f"min bulk ESS {d['min_ess_bulk']:.0f} < {ESS_MIN}: too few effective draws for "
                          "reliable intervals; increase draws or chains")
        if advice:
            warnings.warn("The posterior may not be trustworthy:\n  - " + "\n  - ".join(advice),
                          ConvergenceWarning, stacklevel=4)

    # ------------------------------------------------------------ prediction
    def _new_runs(self, new_runs, columns=None):
        from .data import load_runs

        return load_runs(new_runs, columns=columns, require=self.model.law.inputs, require_loss=False)

    def param_draws(self, group=None, *, random_seed=None) -> dict:
        """Posterior draws of the parameters for one group, as arrays shaped (chain, draw).

        Parameters
        ----------
        group : label or None
            For a fit with groups: a fitted group's label gives its
            posterior; ``None`` (or ``"new"``, or any label the fit has not
            seen) a new group drawn from the population. Ignored by fits
            without groups (their parameters are shared).
        random_seed : int, optional
            Seed of the new-group draws (default the fit's seed; the same
            label and seed give the same draws).

        Returns
        -------
        dict
            ``{name: ndarray (chain, draw)}`` for the law's parameters and
            ``sigma`` (and ``nu``), published convention.

        Examples
        --------
        >>> fit.param_draws("web")["E"].shape  # doctest: +SKIP
        (4, 1000)
        """
        from .hierarchy import group_param_draws

        return {k: v[..., 0] for k, v in group_param_draws(self, [group], random_seed).items()}

    def loo(self):
        """PSIS-LOO of this fit (ArviZ ELPD); rank fits with :func:`bayescale.selection.compare_loo`."""
        from .selection import loo

        return loo(self)

    def group_summary(self, prob=0.9, params=None) -> pd.DataFrame:
        """Per-group estimates beside the population's; see :func:`bayescale.hierarchy.group_summary`."""
        from .hierarchy import group_summary

        return group_summary(self, prob, params)

    def plot_groups(self, params=None, prob=0.9, *, compare=None, truth=None):
        """Forest plot of group estimates and the population; see :func:`bayescale.hierarchy.plot_groups`."""
        from .hierarchy import plot_groups

        return plot_groups(self, params, prob, compare=compare, truth=truth)

    def residuals(self) -> np.ndarray:
        """Log-loss residual of each fitted run: log(observed loss) minus the posterior-median curve.

        Returns
        -------
        ndarray
            One value per run of :attr:`runs`, in their order (for a fit with
            groups, each run against its group's curve).

        Examples
        --------
        >>> r = fit.residuals()  # doctest: +SKIP
        >>> float(1.4826 * np.median(np.abs(r - np.median(r))))  # robust scale, as bayescale.form uses  # doctest: +SKIP
        0.0041
        """
        if self._residuals is None:
            params, _ = self._row_params(self.runs)
            curve = self._log_curve(self.runs.inputs(self.model.law.inputs), params)
            self._residuals = np.log(self.runs.loss) - np.median(curve.reshape(-1, self.runs.n_runs), axis=0)
        return self._residuals.copy()

    def _row_params(self, runs, group=None, random_seed=None):
        """Parameter draws per row of `runs`: arrays (chain, draw, n) or (chain, draw, 1); row group labels."""
        if not self.model.hierarchical:
            post = self.posterior
            return {k: post[k].values[..., None] for k in self.model.param_names}, None
        from .hierarchy import group_param_draws

        if runs.groups is not None:
            if group is not None:
                raise ValueError("the new runs have a 'group' column; group= applies only to runs without one")
            labels = [str(g) for g in runs.frame["group"]]
        else:
            labels = [group] * runs.n_runs
        distinct = list(dict.fromkeys(labels))
        codes = np.array([distinct.index(g) for g in labels], dtype=np.intp)
        draws = group_param_draws(self, distinct, random_seed)
        return {k: v[..., codes] for k, v in draws.items()}, labels

    def predict_draws(self, new_runs, *, random_seed=None, columns=None, group=None) -> xr.Dataset:
        """Posterior draws of the loss at new runs.

        Parameters
        ----------
        new_runs : DataFrame, dict of arrays, RunData or path
            Inputs of the law (e.g. ``N`` and ``D``, or ``N`` and ``C``), and
            for a fit with groups optionally a ``group`` column.
        random_seed : int, optional
            Seed of the noise draws for ``new_run`` (and of new-group draws);
            default: the fit's seed.
        group : label, optional
            For a fit with groups and runs without a ``group`` column: the
            group of every row. A fitted group's label uses its posterior;
            ``None`` (default), ``"new"`` or any unseen label gives the
            population predictive of a new group (one draw of the group's
            parameters per posterior draw, shared by the rows of that label).

        Returns
        -------
        xarray.Dataset
            ``expected_loss`` (the law's curve) and ``new_run_loss`` (a new
            run, with run-to-run noise), dims (chain, draw, run). Beyond the
            fitted runs both include the model's form uncertainty (the
            discrepancy of :mod:`bayescale.form`, growing with the distance
            from the fitted range; none with ``form_uncertainty=None``).
        """
        runs = self._new_runs(new_runs, columns)
        params, _ = self._row_params(runs, group, random_seed)
        log_mu = shift_log_loss(self, self._log_curve(runs.inputs(self.model.law.inputs), params), runs.frame,
                                irreducible_draws(self, params))
        rng = np.random.default_rng(self.settings["random_seed"] if random_seed is None else random_seed)
        post = self.posterior
        sigma = params["sigma"]
        if self.model.likelihood == "student_t":
            noise = rng.standard_t(params["nu"], size=log_mu.shape)
        else:
            noise = rng.standard_normal(log_mu.shape)
        dims = (*SAMPLE_DIMS, "run")
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "run": np.arange(runs.n_runs)}
        return xr.Dataset(
            {"expected_loss": (dims, np.exp(log_mu)), "new_run_loss": (dims, np.exp(log_mu + sigma * noise))},
            coords=coords,
        )

    def _log_curve(self, inputs, params=None) -> np.ndarray:
        if params is None:
            post = self.posterior
            params = {k: post[k].values[..., None] for k in self.model.law.param_names}
        x = {k: np.asarray(v, dtype=float)[None, None, :] for k, v in inputs.items()}
        return np.asarray(self.model.law.log_loss(x, params, NUMPY))

    def predict(self, new_runs, prob=0.9, *, random_seed=None, columns=None, group=None) -> pd.DataFrame:
        """Predicted loss with two bands, one row per new run.

        Parameters
        ----------
        new_runs : DataFrame, dict of arrays, RunData or path
            Inputs of the law.
        prob : float, default 0.9
            Probability of the central intervals.

        Returns
        -------
        DataFrame
            The inputs, then

            - ``loss_median``: posterior median of the expected loss L(N, D);
            - ``curve_lower``, ``curve_upper``: central interval of the
              expected loss — how uncertain the fitted curve is there (its
              parameters, and beyond the fitted runs the law's form);
            - ``new_run_lower``, ``new_run_upper``: central interval for the
              loss of one new run — the curve's uncertainty plus run-to-run
              noise. Use this band for "what will my run get".

            For a fit with groups also ``group`` and ``new_group`` (True where
            the row's group was not fitted and the population predictive of a
            new group is used). ``group=`` sets the group of runs without a
            ``group`` column, as in :meth:`predict_draws`.

            ``beyond_C``, ``beyond_N``, ``beyond_D``, ``beyond``: decades
            outside the fitted runs' range (:mod:`bayescale.extrapolation`);
            an :class:`~bayescale.errors.ExtrapolationWarning` says how far
            when a row lies more than one decade outside.

        Examples
        --------
        >>> fit.predict({"N": [70e9, 400e9], "D": [1.4e12, 8e12]}, prob=0.9)  # doctest: +SKIP
        """
        from .extrapolation import annotate

        _check_prob(prob)
        runs = self._new_runs(new_runs, columns)
        draws = self.predict_draws(runs, random_seed=random_seed, group=group)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        curve = draws["expected_loss"].values.reshape(-1, runs.n_runs)
        new = draws["new_run_loss"].values.reshape(-1, runs.n_runs)
        frame = runs.frame[[c for c in runs.frame.columns if c in ("N", "D", "C", "U", "group", "loss")]].copy()
        if "loss" in frame:
            frame = frame.rename(columns={"loss": "observed_loss"})
        frame["loss_median"] = np.median(curve, axis=0)
        frame["curve_lower"], frame["curve_upper"] = np.quantile(curve, [lo, hi], axis=0)
        frame["new_run_lower"], frame["new_run_upper"] = np.quantile(new, [lo, hi], axis=0)
        if self.model.hierarchical:
            from .hierarchy import group_labels

            frame["group"], frame["new_group"] = group_labels(self, runs, group)
        annotate(frame, self.runs, what="fit.predict", stacklevel=2, form=self.model.form_uncertainty)
        frame.attrs["prob"] = prob
        return frame

    # ---------------------------------------------------- allocation and risk
    def allocate(self, budget, prob=0.9, *, flops_per_param_token=6.0, max_unique_tokens=None,
                 group=None) -> pd.DataFrame:
        """Compute-optimal N, D, tokens per parameter and loss per budget; see :func:`bayescale.allocation.allocate`."""
        from .allocation import allocate

        return allocate(self, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                        max_unique_tokens=max_unique_tokens, group=group)

    def allocate_draws(self, budget, *, flops_per_param_token=6.0, max_unique_tokens=None, group=None) -> xr.Dataset:
        """Posterior draws of the optimal allocation; see :func:`bayescale.allocation.allocate_draws`."""
        from .allocation import allocate_draws

        return allocate_draws(self, budget, flops_per_param_token=flops_per_param_token,
                              max_unique_tokens=max_unique_tokens, group=group)

    def risk(self, budget=None, *, target=None, plan=None, prob=0.9, flops_per_param_token=6.0,
             max_unique_tokens=None, random_seed=None, group=None) -> pd.DataFrame:
        """Predictive loss bands, P(loss <= target) and allocation penalty; see :func:`bayescale.risk.risk`."""
        from .risk import risk

        return risk(self, budget, target=target, plan=plan, prob=prob, flops_per_param_token=flops_per_param_token,
                    max_unique_tokens=max_unique_tokens, random_seed=random_seed, group=group)

    def budget_for(self, target, prob=0.9, *, flops_per_param_token=6.0, max_unique_tokens=None,
                   random_seed=None, group=None) -> pd.DataFrame:
        """Smallest compute reaching `target` with probability `prob`; see :func:`bayescale.risk.budget_for`."""
        from .risk import budget_for

        return budget_for(self, target, prob, flops_per_param_token=flops_per_param_token,
                          max_unique_tokens=max_unique_tokens, random_seed=random_seed, group=group)

    def plot_frontier(self, budgets=None, *, flops_per_param_token=6.0, max_unique_tokens=None):
        """Loss vs compute with the optimal frontier and bands; see :func:`bayescale.plots.plot_frontier`."""
        from .plots import plot_frontier

        return plot_frontier(self, budgets, flops_per_param_token=flops_per_param_token,
                             max_unique_tokens=max_unique_tokens)

    def plot_allocation(self, budgets=None, *, flops_per_param_token=6.0, max_unique_tokens=None):
        """N_opt and D_opt vs compute with bands; see :func:`bayescale.plots.plot_allocation`."""
        from .plots import plot_allocation

        return plot_allocation(self, budgets, flops_per_param_token=flops_per_param_token,
                               max_unique_tokens=max_unique_tokens)

    def plot_isoflop(self, budgets=None, *, flops_per_param_token=6.0):
        """IsoFLOP curves (loss vs N at fixed C) with bands; see :func:`bayescale.plots.plot_isoflop`."""
        from .plots import plot_isoflop

        return plot_isoflop(self, budgets, flops_per_param_token=flops_per_param_token)

    # ---------------------------------------------------------------- output
    def save(self, path) -> None:
        """Write the fit (posterior, data, model specification) to one netCDF file.

        The file is written to a temporary name and renamed, so a failed save
        leaves no partial file and never replaces a good one.

        Examples
        --------
        >>> fit.save("chinchilla_fit.nc")  # doctest: +SKIP
        >>> same = bs.load("chinchilla_fit.nc")  # doctest: +SKIP
        """
        from .io import save_fit

        save_fit(self, path)

    def fit_report(self, prob=0.9) -> str:
        """Text report in sections: model, data, sampler, parameters, diagnostics."""
        d = self.diagnostics()
        s = self.settings
        frame = self.runs.frame
        lines = ["[[Model]]", f"    {self.model.law.name}: L = {self.model.law.formula}",
                 f"    likelihood: {self.model.likelihood}", "[[Priors]]"]
        lines += [f"    {k:<8} {v}" for k, v in self.priors_.items()]
        lines += ["[[Data]]", f"    {self.runs.n_runs} runs"]
        for k in self.model.law.inputs:
            lines.append(f"    {k}: {frame[k].min():.3g} to {frame[k].max():.3g}")
        lines.append(f"    loss: {frame['loss'].min():.4g} to {frame['loss'].max():.4g}")
        lines += ["[[Sampler]]",
                  f"    {s['sampler']}: {s['chains']} chains x {s['draws']} draws ({s['tune']} tuning), "
                  f"seed {s['random_seed']}, {d['sampling_seconds']:.1f} s sampling",
                  f"[[Parameters]] (median and {prob:.0%} HDI)"]
        table = self.summary(prob)
        for name, row in table.iterrows():
            lines.append(f"    {name:<8} {row['median']:<12.5g} [{row['hdi_lower']:.5g}, {row['hdi_upper']:.5g}]")
        lines.append("[[Form uncertainty]]")
        form = self.model.form_uncertainty
        if form is None:
            lines.append("    off: the law's form is taken as known beyond the fitted runs")
        else:
            from .extrapolation import Reach
            from .form import reducible_fraction, residual_scale

            r, f = residual_scale(self), reducible_fraction(self)
            reach = Reach.from_runs(self.runs)
            lines += [f"    {form}",
                      f"    r = {r:.3g}, f = {f:.3g}: one decade past the fitted range (C up to "
                      f"{reach.upper.get('C', float('nan')):.3g}), the loss may move by about "
                      f"{100 * form.loss_rate * r:.2g}% (1 sd)"]
        lines += ["[[Diagnostics]]",
                  f"    converged: {'yes' if d['converged'] else 'NO'}",
                  f"    max R-hat {d['max_r_hat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
                  f"min tail ESS {d['min_ess_tail']:.0f}",
                  f"    divergences {d['divergences']}, mean leapfrog steps {d['mean_leapfrog_steps']:.1f}, "
                  f"max tree depth {d['max_tree_depth']}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        d = self.diagnostics()
        s = self.settings
        table = self.summary()[["median", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk"]]
        head = (f"ScalingFit: {self.model.law.name} law, {self.model.likelihood} likelihood, "
                f"{self.runs.n_runs} runs\n"
                f"  {s['chains']} chains x {s['draws']} draws ({s['sampler']}), "
                f"converged: {'yes' if d['converged'] else 'NO'} (max R-hat {d['max_r_hat']:.3f}, "
                f"min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences)\n")
        tail = ("\nNext: fit.summary(), fit.predict(new_runs), fit.allocate(1e24), fit.risk(1e24, target=...), "
                "fit.fit_report(), fit.save('fit.nc')")
        return head + table.to_string(float_format=lambda v: f"{v:.4g}") + tail

    def _repr_html_(self) -> str:
        d = self.diagnostics()
        table = self.summary()[["median", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk"]]
        status = "converged" if d["converged"] else "<b>NOT converged</b>"
        return (f"<p><b>ScalingFit</b>: {self.model.law.name} law, {self.model.likelihood} likelihood, "
                f"{self.runs.n_runs} runs; {status} (max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
                f"{d['min_ess_bulk']:.0f}, {d['divergences']} divergences)</p>"
                + table.to_html(float_format=lambda v: f"{v:.4g}")
                + "<p>Next: <code>fit.summary()</code>, <code>fit.predict(new_runs)</code>, "
                  "<code>fit.save('fit.nc')</code></p>")

    def model_checks(self, prob=0.99) -> pd.DataFrame:
        """Prior-data conflict and heavy-tail checks; see :func:`bayescale.conflicts.model_checks`."""
        from .conflicts import model_checks

        return model_checks(self, prob)


def _constant_data(runs) -> xr.Dataset:
    frame = runs.frame
    data = {k: ("run", frame[k].to_numpy(dtype=float)) for k in ("N", "D", "C", "U", "loss") if k in frame}
    if "group" in frame:
        data["group"] = ("run", frame["group"].astype(str).to_numpy(dtype=str))
    return xr.Dataset(data, coords={"run": np.arange(runs.n_runs)})


def _medians(posterior) -> dict:
    """Posterior medians keyed as ArviZ labels summary rows (``E``, ``E[group]``)."""
    out = {}
    for v in posterior.data_vars:
        med = posterior[v].median(dim=SAMPLE_DIMS)
        if med.ndim == 0:
            out[v] = float(med)
        else:
            for label, value in zip(med[med.dims[0]].values, np.ravel(med.values)):
                out[f"{v}[{label}]"] = float(value)
    return out


def _pointwise_loglik(model, posterior, runs) -> xr.DataArray:
    """Log density of each run's observed log loss under each posterior draw (its group's parameters)."""
    from scipy import stats

    idx = runs.group_index
    params = {k: (posterior[k].values[..., idx] if posterior[k].ndim == 3 else posterior[k].values[..., None])
              for k in model.law.param_names}
    x = {k: v[None, None, :] for k, v in runs.inputs(model.law.inputs).items()}
    mu = np.asarray(model.law.log_loss(x, params, NUMPY))
    sigma = posterior["sigma"].values[..., None]
    y = np.log(runs.loss)[None, None, :]
    if model.likelihood == "student_t":
        ll = stats.t.logpdf(y, df=posterior["nu"].values[..., None], loc=mu, scale=sigma)
    else:
        ll = stats.norm.logpdf(y, loc=mu, scale=sigma)
    return xr.DataArray(ll, dims=(*SAMPLE_DIMS, "run"),
                        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values,
                                "run": np.arange(runs.n_runs)})
