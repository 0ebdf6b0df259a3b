"""The result of a Bayesian fit: posterior, diagnostics and predictions."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import xarray as xr

from ..base.errors import ConvergenceWarning
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_prob as _check_prob, check_seed as _check_seed, renamed
from ..analysis.contract import check_ci_kind, interval_label
from ..runs.data import RUN_SD, load_runs
from ..analysis.predictive import log_curve, log_predict_draws, predict
from ..base.version import __version__
from .results import ResultMethods, writer
from ..base.errors import warn_user
from ..analysis.checks import prior_predictive
from ..analysis.conflicts import caveats, model_checks, warn_model_checks
from ..base.digest import DIGEST_ATTR, tree_digest
from ..core.extrapolation import Reach
from ..base.files import NETCDF_ENGINE, atomic_write
from ..core.form import residual_scale
from ..core.shifts import reducible_fraction
from ..analysis.groups import group_labels, group_param_draws, group_summary, plot_groups, tidy_posterior
from ..analysis.selection import loo
from ..runs.undertuned import FLAG_COLUMNS, flags, run_flags
from .loglik import by_run, pointwise_loglik, posterior_medians, undertuned_draws

__all__ = ["ScalingFit", "FORMAT_VERSION"]


FORMAT_VERSION = 1
RHAT_MAX = 1.01
ESS_MIN = 400


class ScalingFit(ResultMethods):
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
        ``log_likelihood`` (pointwise, for LOO). With per-run offsets
        (checkpoint data) ``log_likelihood`` holds ``log_loss`` per row (each
        row given its run's earlier rows, the offset integrated out) and
        ``log_loss_by_run`` per run (their sums: each run's marginal density),
        so ``arviz.loo(fit.idata, var_name="log_loss_by_run")`` leaves out
        whole runs, which is what predicting a new run is about; the
        per-row entries are not a leave-one-checkpoint-out (a left-out row
        still conditions the later rows of its run).
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
        posterior = tidy_posterior(model, trace["posterior"].to_dataset(), runs.groups or ())
        stats = trace["sample_stats"].to_dataset()
        stats = stats[[v for v in stats.data_vars if stats[v].dtype.kind in "biuf"]]
        run = np.arange(runs.n_runs)
        obs = xr.Dataset({"log_loss": ("run", np.log(runs.loss))}, coords={"run": run})
        const = _constant_data(runs)
        loglik = xr.Dataset({"log_loss": pointwise_loglik(model, posterior, runs)})
        if RUN_SD in posterior:  # checkpoint data: each run's marginal log density, for leave-one-run-out
            loglik["log_loss_by_run"] = by_run(loglik["log_loss"], runs)
        attrs = {
            "bayescale_format": FORMAT_VERSION,
            "bayescale_version": __version__,
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
        add_posterior_predictive(fit)
        fit._warn_if_unconverged()
        warn_model_checks(fit, stacklevel=3)
        return fit

    # ------------------------------------------------------------- contract
    #: What the parameter draws are (:mod:`bayescale.analysis.contract`): posterior draws of NUTS.
    draws_kind = "posterior"
    #: A point fit's estimate; a posterior has none (its tables centre on the draws' medians).
    point_params = None

    @property
    def law(self):
        """The fitted law."""
        return self.model.law

    @property
    def form_uncertainty(self):
        """The model's form uncertainty beyond the fitted runs (:mod:`bayescale.core.form`), or None."""
        return self.model.form_uncertainty

    @property
    def hierarchical(self) -> bool:
        """True when parameters vary by group."""
        return bool(self.model.hierarchical)

    @property
    def draw_shape(self) -> tuple:
        """(chains, draws) of the posterior."""
        post = self.idata["posterior"]
        return (post.sizes["chain"], post.sizes["draw"])

    @property
    def random_seed(self) -> int:
        """The seed the fit was sampled with; default seed of its Monte Carlo draws."""
        return self.settings["random_seed"]

    def table_problems(self, what) -> list:
        """Problems every table of this fit carries: none (convergence is its tables' ``converged`` column)."""
        return []

    def noise_draws(self, params, shape, rng) -> np.ndarray:
        """Run-to-run log-loss noise, one per draw and row: ``sigma`` times a Normal or Student-t draw.

        With per-run offsets (:attr:`within_run` ``"offset"``) each row is a new run and also gets a new
        offset, ``run_sd`` times a Normal draw.

        With possibly undertuned runs (``ScalingModel(undertuned=True)``) this
        is the noise of a well-tuned run: no excess (:mod:`bayescale.runs.undertuned`).
        """
        if self.model.likelihood == "student_t":
            noise = params["sigma"] * rng.standard_t(params["nu"], size=shape)
        else:
            noise = params["sigma"] * rng.standard_normal(shape)
        if self.within_run == "offset":
            run_sd = params.get(RUN_SD)
            if run_sd is None:
                run_sd = self.idata["posterior"][RUN_SD].values[..., None]
            noise = noise + run_sd * rng.standard_normal(shape)
        return noise

    @property
    def within_run(self) -> str:
        """``"offset"`` with per-run offsets (checkpoint data; ``run_sd`` in the posterior), else ``"none"``."""
        return "offset" if RUN_SD in self.idata["posterior"].data_vars else "none"

    def group_labels(self, runs, group=None):
        """Group label of each row of `runs` and whether it is a new (unfitted) group."""
        return group_labels(self, runs, group)

    def log_predictive_density(self, runs, *, columns=None) -> np.ndarray:
        """Log posterior predictive density of each run's observed log loss, shape (n_runs,).

        The log of the mean over posterior draws of each run's likelihood
        (for runs of a fitted group, under that group's parameters). With
        possibly undertuned runs the likelihood is the model's mixture, with
        the rows' flags (:mod:`bayescale.runs.undertuned`).

        With per-run offsets (:attr:`within_run` ``"offset"``) every run of
        `runs` is a new run: its offset is integrated out (marginal, not
        conditional on a fitted offset). The rows of one run (same ``run``
        identifier; without a ``run`` column each row is a run) get, in order
        of D, the density of each row given the run's earlier rows, so the
        values of a run's rows add up to its joint marginal log density (see
        :func:`within_run_loglik`).

        Examples
        --------
        >>> fit.log_predictive_density(runs.tail(3)).shape  # doctest: +SKIP
        (3,)
        """
        from scipy.special import logsumexp

        ll = self.log_likelihood_draws(runs, columns=columns)
        ll = ll.reshape(-1, ll.shape[-1])
        return logsumexp(ll, axis=0) - np.log(ll.shape[0])

    def log_likelihood_draws(self, runs, *, columns=None) -> np.ndarray:
        """Log density of each run's observed log loss under each posterior draw, shape (chain, draw, n_runs).

        The model's likelihood (Normal or Student-t on log loss) at each draw's
        parameters (for runs of a fitted group, that group's). With per-run
        offsets, each run's offset integrated out, its rows given its earlier
        rows (as :meth:`log_predictive_density`): the runs are new runs.

        Examples
        --------
        >>> fit.log_likelihood_draws(runs.tail(3)).shape  # doctest: +SKIP
        (4, 1000, 3)
        """
        runs = load_runs(runs, columns=columns, require=self.law.inputs)
        return pointwise_loglik(self.model, self.posterior, runs).values

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

    def summary(self, prob=0.9, *, ci_kind="hdi") -> pd.DataFrame:
        """Posterior summary table, one row per parameter.

        Parameters
        ----------
        prob : float
            Probability mass of the interval.
        ci_kind : {"hdi", "eti"}, default "hdi"
            Highest-density or equal-tailed interval.

        Returns
        -------
        DataFrame
            The columns every fit's summary starts with
            (:data:`bayescale.analysis.contract.SUMMARY_COLUMNS`): ``estimate`` (the
            posterior median), ``sd``, ``lower``, ``upper``; then ``mean``,
            ``median``, ``r_hat``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``.
            ``attrs``: ``prob``, ``interval`` (``"posterior HDI"`` or
            ``"posterior ETI"``).

        Examples
        --------
        >>> fit.summary().loc["alpha", ["estimate", "lower", "upper"]]  # doctest: +SKIP
        """
        import arviz_stats as azs

        _check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        table = azs.summary(self.posterior, ci_kind=ci_kind, ci_prob=prob, round_to="none")
        tag = f"{ci_kind}{int(round(prob * 100))}"
        table = table.rename(columns={f"{tag}_lb": "lower", f"{tag}_ub": "upper"})
        table["median"] = [posterior_medians(self.posterior)[v] for v in table.index]
        table["estimate"] = table["median"]
        table = table[["estimate", "sd", "lower", "upper", "mean", "median", "r_hat", "ess_bulk", "ess_tail",
                       "mcse_mean"]]
        table.index.name = "parameter"

        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind), caveats=caveats(self))
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
        import arviz_stats as azs

        post = self.posterior
        rhat = azs.rhat(post)
        ess_b = azs.ess(post, method="bulk")
        ess_t = azs.ess(post, method="tail")
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
            warn_user("The posterior may not be trustworthy:\n  - " + "\n  - ".join(advice),
                      ConvergenceWarning, stacklevel=4)

    # ------------------------------------------------------------ prediction
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
        random_seed = _check_seed(random_seed)

        return {k: v[..., 0] for k, v in group_param_draws(self, [group], random_seed).items()}

    def undertuned_probability(self) -> np.ndarray:
        """Posterior probability that each fitted run is undertuned (in the order of :attr:`runs`).

        The mean over posterior draws of ``p f1 / ((1 - p) f0 + p f1)``; see
        :mod:`bayescale.runs.undertuned` and :meth:`undertuned_runs`. With per-run
        offsets (checkpoint data, :attr:`within_run` ``"offset"``) one value
        per training run, in the order of ``runs.run_ids``: all rows of a run
        share its excess.

        Examples
        --------
        >>> fit = bs.ScalingModel(undertuned=True).fit(runs, random_seed=1)  # doctest: +SKIP
        >>> fit.undertuned_probability() > 0.5  # doctest: +SKIP
        """
        return undertuned_draws(self)[0].mean(axis=(0, 1))

    def undertuned_runs(self) -> pd.DataFrame:
        """Per fitted run: how likely it is undertuned, and by how much it sits above the law.

        Needs a model with ``undertuned=True`` (:mod:`bayescale.runs.undertuned`).

        Returns
        -------
        DataFrame
            One row per fitted run, in order: the inputs and ``loss``,
            ``flagged`` (the row's flag column said its sweep was incomplete),
            ``probability`` (posterior probability the run is undertuned),
            ``excess`` (posterior mean of its excess on log loss, about the
            fraction of loss lost to tuning: 0.03 is 3%),
            ``excess_if_undertuned`` (the same, given it is undertuned),
            ``tuned_loss`` (the loss with the mean excess removed:
            ``loss * exp(-excess)``), ``converged``.

            With per-run offsets (checkpoint data, :attr:`within_run`
            ``"offset"``) one row per training run, in the order of
            ``runs.run_ids``: ``run`` (its id), ``rows`` (its checkpoints),
            the inputs and ``loss`` of its last checkpoint (largest D), and
            the columns above for the whole run (its rows share one excess;
            ``flagged``: any of its rows is flagged).

        Examples
        --------
        >>> fit.undertuned_runs().query("probability > 0.5")  # doctest: +SKIP
        """
        prob, excess = undertuned_draws(self)
        frame = self.runs.frame
        cols = [c for c in ("N", "D", "C", "U", "group", "loss") if c in frame]
        if self.within_run == "offset":
            index = self.runs.run_index
            order = np.lexsort((frame["D"].to_numpy(dtype=float) if "D" in frame else np.arange(len(frame)), index))
            last = order[np.r_[index[order][1:] != index[order][:-1], True]]  # each run's last row, by run code
            out = frame.iloc[last][cols].reset_index(drop=True)
            out.insert(0, "run", np.asarray(self.runs.run_ids, dtype=object))
            out.insert(1, "rows", np.bincount(index))
            out["flagged"] = run_flags(frame, index)
        else:
            out = frame[cols].reset_index(drop=True)
            out["flagged"] = flags(frame)
        out["probability"] = prob.mean(axis=(0, 1))
        out["excess"] = (prob * excess).mean(axis=(0, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out["excess_if_undertuned"] = out["excess"] / out["probability"]
        out["tuned_loss"] = out["loss"] * np.exp(-out["excess"])
        out["converged"] = self.converged
        return out

    def loo(self):
        """PSIS-LOO of this fit (ArviZ ELPD); rank fits with :func:`bayescale.analysis.selection.compare_loo`."""
        return loo(self)

    def group_summary(self, prob=0.9, params=None) -> pd.DataFrame:
        """Per-group estimates beside the population's; see :func:`bayescale.analysis.hierarchy.group_summary`."""
        return group_summary(self, prob, params)

    def plot_groups(self, params=None, prob=0.9, *, compare=None, truth=None):
        """Forest plot of group estimates and the population; see :func:`bayescale.analysis.hierarchy.plot_groups`."""
        return plot_groups(self, params, prob, compare=compare, truth=truth)

    def residuals(self) -> np.ndarray:
        """Log-loss residual of each fitted run: log(observed loss) minus the posterior-median curve.

        With per-run offsets (:attr:`within_run` ``"offset"``) the residuals of a run's rows include
        its offset (they share it), as they include the noise.

        Returns
        -------
        ndarray
            One value per run of :attr:`runs`, in their order (for a fit with
            groups, each run against its group's curve).

        Examples
        --------
        >>> r = fit.residuals()  # doctest: +SKIP
        >>> float(1.4826 * np.median(np.abs(r - np.median(r))))  # robust scale, as bayescale.core.form uses  # doctest: +SKIP
        0.0041
        """
        if self._residuals is None:
            params = self.row_param_draws(self.runs)
            curve = log_curve(self.law, self.runs.inputs(self.law.inputs), params)
            self._residuals = np.log(self.runs.loss) - np.median(curve.reshape(-1, self.runs.n_runs), axis=0)
        return self._residuals.copy()

    def row_param_draws(self, runs, group=None, random_seed=None) -> dict:
        """Parameter draws per row of `runs`: arrays (chain, draw, n), or (chain, draw, 1) without groups."""
        if not self.model.hierarchical:
            post = self.posterior
            return {k: post[k].values[..., None] for k in self.model.param_names}

        if runs.groups is not None:
            if group is not None:
                raise ValueError("the new runs have a 'group' column; group= applies only to runs without one")
            labels = [str(g) for g in runs.frame["group"]]
        else:
            labels = [group] * runs.n_runs
        distinct = list(dict.fromkeys(labels))
        codes = np.array([distinct.index(g) for g in labels], dtype=np.intp)
        draws = group_param_draws(self, distinct, random_seed)
        return {k: v[..., codes] for k, v in draws.items()}

    def predict(self, new_runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None,
                group=None) -> pd.DataFrame:
        """Predicted loss with two bands, one row per new run.

        Parameters
        ----------
        new_runs : DataFrame, dict of arrays, RunData or path
            Inputs of the law (e.g. ``N`` and ``D``, or ``N`` and ``C``), and
            for a fit with groups optionally a ``group`` column.
        prob : float, default 0.9
            Probability of the intervals.
        ci_kind : {"eti", "hdi"}, default "eti"
            Equal-tailed or highest-density intervals.
        random_seed : int, optional
            Seed of the noise draws for the new-run band (and of new-group
            draws); default: the fit's seed.
        group : label, optional
            For a fit with groups and runs without a ``group`` column: the
            group of every row. A fitted group's label uses its posterior;
            ``None`` (default), ``"new"`` or any unseen label gives the
            population predictive of a new group (one draw of the group's
            parameters per posterior draw, shared by the rows of that label).

        Returns
        -------
        DataFrame
            The inputs, then

            - ``loss_median``: posterior median of the expected loss L(N, D);
            - ``curve_lower``, ``curve_upper``: interval of the expected loss
              — how uncertain the fitted curve is there (its parameters, and
              beyond the fitted runs the law's form);
            - ``new_run_lower``, ``new_run_upper``: interval for the loss of
              one new run — the curve's uncertainty plus run-to-run noise.
              Use this band for "what will my run get".

            For a fit with groups also ``group`` and ``new_group`` (True where
            the row's group was not fitted and the population predictive of a
            new group is used).

            ``beyond_C``, ``beyond_N``, ``beyond_D``, ``beyond``: decades
            outside the fitted runs' range (:mod:`bayescale.core.extrapolation`);
            an :class:`~bayescale.base.errors.ExtrapolationWarning` says how far
            when a row lies more than one decade outside. ``attrs``: ``prob``
            and ``interval`` (e.g. ``"posterior ETI"``). The draws are in
            :meth:`predict_draws`: ``expected_loss`` and ``new_run_loss``,
            dims (chain, draw, run), both with the model's form uncertainty
            beyond the fitted runs (:mod:`bayescale.core.form`).

        Examples
        --------
        >>> fit.predict({"N": [70e9, 400e9], "D": [1.4e12, 8e12]}, prob=0.9)  # doctest: +SKIP
        """
        return predict(self, new_runs, prob, ci_kind=ci_kind, random_seed=random_seed, columns=columns, group=group)

    # ---------------------------------------------------------------- output
    def save(self, path) -> None:
        """Write the fit (posterior, data, model specification) to one netCDF file.

        The file is written to a temporary name and renamed
        (:func:`bayescale.base.files.atomic_write`), so a failed save leaves no
        partial file and never replaces a good one; a symlink is written
        through, an existing file keeps its mode, and a directory, device,
        FIFO or socket at `path` is refused (FileWriteError). The file
        carries a SHA-256 digest of each of its parts (specification,
        posterior, runs, ...: :mod:`bayescale.base.digest`), so :func:`bayescale.load`
        refuses a file edited after saving, naming the parts that changed.

        Examples
        --------
        >>> fit.save("chinchilla_fit.nc")  # doctest: +SKIP
        >>> same = bs.load("chinchilla_fit.nc")  # doctest: +SKIP
        """
        tree = self.idata.copy(deep=False)  # the digest goes to the file, not into this fit
        tree.attrs = {**self.idata.attrs, DIGEST_ATTR: json.dumps(tree_digest(self.idata))}
        atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine=NETCDF_ENGINE), "fit")

    def fit_report(self, prob=0.9) -> str:
        """Text report in sections: model, data, sampler, parameters, diagnostics."""
        d = self.diagnostics()
        s = self.settings
        frame = self.runs.frame
        lines = ["[[Model]]", f"    {self.model.law.name}: L = {self.model.law.formula}",
                 f"    likelihood: {self.model.likelihood}", "[[Priors]]"]
        if self.model.undertuned:
            lines.insert(3, "    possibly undertuned runs: one-sided excess on log loss, rate undertuned_rate, "
                            "HalfNormal scale excess_scale; predictions for well-tuned runs"
                            + ("; one excess per training run" if self.within_run == "offset" else ""))
        lines += [f"    {k:<8} {v}" for k, v in self.priors_.items()]
        lines += ["[[Data]]", f"    {self.runs.n_runs} runs"]
        if self.runs.run_ids is not None:
            lines.append(f"    {len(self.runs.run_ids)} training runs by 'run' id; within run: " + (
                "per-run offset ~ Normal(0, run_sd) on log loss" if self.within_run == "offset"
                else "rows independent"))
        for k in self.model.law.inputs:
            lines.append(f"    {k}: {frame[k].min():.3g} to {frame[k].max():.3g}")
        lines.append(f"    loss: {frame['loss'].min():.4g} to {frame['loss'].max():.4g}")
        lines += ["[[Sampler]]",
                  f"    {s['sampler']}: {s['chains']} chains x {s['draws']} draws ({s['tune']} tuning), "
                  f"seed {s['random_seed']}, {d['sampling_seconds']:.1f} s sampling",
                  f"[[Parameters]] (median and {prob:.0%} {interval_label(self.draws_kind, 'hdi')})"]
        table = self.summary(prob)
        for name, row in table.iterrows():
            lines.append(f"    {name:<8} {row['estimate']:<12.5g} [{row['lower']:.5g}, {row['upper']:.5g}]")
        lines.append("[[Form uncertainty]]")
        form = self.model.form_uncertainty
        if form is None:
            lines.append("    off: the law's form is taken as known beyond the fitted runs")
        else:
            r, f = residual_scale(self), reducible_fraction(self)
            reach = Reach.from_runs(self.runs)
            lines += [f"    {form}",
                      f"    r = {r:.3g}, f = {f:.3g}: one decade past the fitted range (C up to "
                      f"{reach.upper.get('C', float('nan')):.3g}), the loss may move by about "
                      f"{100 * form.loss_sd(r):.2g}% (1 sd)"]
        lines += ["[[Diagnostics]]",
                  f"    converged: {'yes' if d['converged'] else 'NO'}",
                  f"    max R-hat {d['max_r_hat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
                  f"min tail ESS {d['min_ess_tail']:.0f}",
                  f"    divergences {d['divergences']}, mean leapfrog steps {d['mean_leapfrog_steps']:.1f}, "
                  f"max tree depth {d['max_tree_depth']}"]
        return "\n".join(lines)

    def sample_prior(self, draws=1000, *, random_seed=None):
        """Draw from the priors and add ArviZ ``prior`` and ``prior_predictive`` groups to :attr:`idata`.

        The draws are those of :func:`bayescale.analysis.checks.prior_predictive` on
        the fitted runs (the priors as resolved for this fit); they replace
        earlier prior groups and are saved with the fit.

        Returns
        -------
        PriorPredictive
            The check (``.summary()``, ``.plot()``).

        Examples
        --------
        >>> check = fit.sample_prior(500)  # doctest: +SKIP
        >>> arviz_plots.plot_prior_posterior(fit.idata)  # doctest: +SKIP
        """
        seed = self.settings["random_seed"] if random_seed is None else random_seed
        check = prior_predictive(self.model, self.runs, draws=draws, random_seed=seed)
        tree = check.to_datatree()
        self.idata["prior"] = xr.DataTree(tree["prior"].to_dataset())  # with groups: the prior of a new group
        self.idata["prior_predictive"] = xr.DataTree(tree["prior_predictive"].to_dataset())
        return check

    @renamed(budgets="budget")
    def report(self, path=None, *, budget=None, target=None, prob=0.9,
               flops_per_param_token=FLOPS_PER_PARAM_TOKEN, backtest=False, next_run=True, candidates=None,
               reference=None, format=None, title=None, random_seed=None, downstream=None,
               task_target=None) -> str:
        """One self-contained HTML (or Markdown) report of this fit; see :func:`bayescale.front.report.report`.

        Examples
        --------
        >>> fit.report("report.html", budget=[1e24, 1e25], target=2.0)  # doctest: +SKIP
        """
        return writer("report")(self, path, budget=budget, target=target, prob=prob,
                      flops_per_param_token=flops_per_param_token, backtest=backtest, next_run=next_run,
                      candidates=candidates, reference=reference, format=format, title=title,
                      random_seed=random_seed, downstream=downstream, task_target=task_target)

    def __repr__(self) -> str:
        d = self.diagnostics()
        s = self.settings
        table = self.summary()[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]
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
        table = self.summary()[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]
        status = "converged" if d["converged"] else "<b>NOT converged</b>"
        return (f"<p><b>ScalingFit</b>: {self.model.law.name} law, {self.model.likelihood} likelihood, "
                f"{self.runs.n_runs} runs; {status} (max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
                f"{d['min_ess_bulk']:.0f}, {d['divergences']} divergences)</p>"
                + table.to_html(float_format=lambda v: f"{v:.4g}")
                + "<p>Next: <code>fit.summary()</code>, <code>fit.predict(new_runs)</code>, "
                  "<code>fit.save('fit.nc')</code></p>")

    def model_checks(self, prob=0.99) -> pd.DataFrame:
        """Prior-data conflict and heavy-tail checks; see :func:`bayescale.analysis.conflicts.model_checks`."""
        return model_checks(self, prob)


def add_posterior_predictive(fit) -> None:
    """Give ``fit.idata`` an ArviZ ``posterior_predictive`` group, unless it has one.

    ``log_loss`` with dims (chain, draw, run): one new run at each fitted
    run's inputs per posterior draw (:meth:`ScalingFit.predict_draws`, the
    fit's seed), on the same variable and scale as ``observed_data``
    (log loss), so ``arviz_plots.plot_ppc_dist(fit.idata)`` and the other
    ArviZ predictive checks work on it. Stored as float32 (it is noise
    draws; half the file space).
    """
    if "posterior_predictive" in fit.idata.children:
        return
    draws = log_predict_draws(fit, fit.runs)
    run = fit.idata["observed_data"]["run"].values
    log_loss = draws["log_new_run_loss"].astype(np.float32).assign_coords(run=run)
    pp = xr.Dataset({"log_loss": log_loss})
    pp.attrs["description"] = "log loss of one new run at each fitted run's inputs, per posterior draw"
    fit.idata["posterior_predictive"] = xr.DataTree(pp)


def _constant_data(runs) -> xr.Dataset:
    frame = runs.frame
    data = {k: ("run", frame[k].to_numpy(dtype=float)) for k in ("N", "D", "C", "U", "loss") if k in frame}
    if "group" in frame:
        data["group"] = ("run", frame["group"].astype(str).to_numpy(dtype=str))
    # checkpoint columns ("run" is the rows' dimension here, so the identifier is stored as "run_id")
    if "run" in frame:
        data["run_id"] = ("run", frame["run"].astype(str).to_numpy(dtype=str))
    if "schedule" in frame:
        data["schedule"] = ("run", frame["schedule"].astype(str).to_numpy(dtype=str))
    if "D_total" in frame:
        data["D_total"] = ("run", frame["D_total"].to_numpy(dtype=float))

    if any(c in frame for c in FLAG_COLUMNS):
        data["undertuned_flag"] = ("run", flags(frame).astype(np.int8))
    return xr.Dataset(data, coords={"run": np.arange(runs.n_runs)})
