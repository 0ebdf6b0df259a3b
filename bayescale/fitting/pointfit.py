"""The result of a point fit: :class:`PointFit`, its bootstrap and its read API (:mod:`bayescale.analysis.contract`)."""


from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..core.laws import NUMPY
from ..analysis.contract import check_ci_kind, interval, interval_label, two_bands
from ..analysis.predictive import new_runs as load_new_runs
from .results import ResultMethods
from ..base.validation import check_count, check_prob as _check_prob, check_seed as _check_seed
from ..core.pointsearch import BIG_OBJECTIVE, Problem, minimize_from, one_blas_thread, to_params, estimate_problems
from ..base.errors import warn_user
from ..runs.data import load_runs
from ..core.extrapolation import annotate
from ..base.tablecheck import check_table

__all__ = [
    "PointFit",
    "POINT_DRAWS",
]

#: Draws a point fit without bootstrap offers the shared read API: copies of the estimate, each with its own
#: resampled residual, so a new-run band holds the run-to-run scatter.
POINT_DRAWS = 4000


# ----------------------------------------------------------------------- result
class PointFit(ResultMethods):
    """A point estimate of a scaling law (returned by :meth:`PointModel.fit`).

    Reads like :class:`~bayescale.fitting.fit.ScalingFit`: :meth:`summary`,
    :meth:`predict` and :meth:`allocate` return the same columns, so the two
    can be swapped in a notebook.

    Bands. Without bootstrap the curve band is degenerate (lower = upper =
    the estimate): a point fit carries no uncertainty about the curve. The
    new-run band adds the empirical quantiles of the fit's residuals on log
    loss (run-to-run scatter). After :meth:`bootstrap`, the curve band is the
    percentile interval of the resampled fits, and the new-run band combines
    resampled curves with resampled residuals.

    Attributes
    ----------
    model : PointModel
        The settings that produced this fit.
    runs : RunData
    params : dict
        Estimates by name, published convention (``E``, ``A``, ...).
    objective : float
        Minimum of the objective.
    success, converged : bool
        Whether the estimate can be used: L-BFGS-B reported convergence at
        the best start and the estimate passes :func:`estimate_problems`.
    optimizer_success : bool
        L-BFGS-B's own verdict alone.
    reason : str
        Why the fit did not converge ("" when it did).
    starts : DataFrame
        One row per start run: start, end point, objective, ``at_best``.
    sigma : float
        Residual standard deviation on log loss, ``sqrt(sum r^2 / (n - k))``:
        the scale of the Normal plug-in density (:meth:`log_predictive_density`).
    boot : DataFrame or None
        Bootstrap estimates, one row per resample (parameters, ``sigma``,
        ``success``).
    """

    def __init__(self, model, runs, theta, objective, success, starts, timing, boot=None, boot_seed=None):
        self.model = model
        self.law = model.law
        self.runs = runs
        self.theta = np.asarray(theta, dtype=float)
        self.params = {k: float(v) for k, v in to_params(self.law, self.theta).items()}
        self.objective = objective
        self.optimizer_success = bool(success)
        self.problems = estimate_problems(self.law, self.theta, runs.inputs(self.law.inputs), self.optimizer_success,
                                          getattr(starts, "attrs", {}).get("flat"))
        self.success = not self.problems
        self.reason = "; ".join(self.problems)
        self.starts = starts
        self.timing = dict(timing)
        self.boot = boot
        self.boot_seed = boot_seed
        pred = self._log_curve(runs.inputs(self.law.inputs), self.params)
        self._residuals = np.log(runs.loss) - pred
        dof = max(runs.n_runs - len(self.law.param_names), 1)
        self.sigma = float(np.sqrt(np.sum(self._residuals**2) / dof))

    # ------------------------------------------------------------- contract
    #: A fit of known form: no discrepancy beyond the fitted runs (:mod:`bayescale.core.form`).
    form_uncertainty = None
    #: Parameters are shared by all runs.
    hierarchical = False

    @property
    def draws_kind(self) -> str:
        """``"bootstrap"`` after :meth:`bootstrap`, else ``"point"`` (:mod:`bayescale.analysis.contract`)."""
        return "bootstrap" if self.bootstrapped else "point"

    @property
    def converged(self) -> bool:
        """The optimiser's verdict at the best start (:attr:`success`): the estimate can be used (see :attr:`reason`
        when not)."""
        return bool(self.success)

    @property
    def random_seed(self):
        """Default seed of the fit's Monte Carlo draws: the bootstrap's, else the model's."""
        return self.boot_seed if self.boot_seed is not None else self.model.random_seed

    @property
    def point_params(self) -> dict:
        """The estimate, which the tables report as their central value."""
        return dict(self.params)

    @property
    def draw_shape(self) -> tuple:
        """(1, resamples) after :meth:`bootstrap`, else (1, :data:`POINT_DRAWS`)."""
        return (1, len(self.boot) if self.bootstrapped else POINT_DRAWS)

    def residuals(self) -> np.ndarray:
        """``log(observed) - log(predicted)`` of each fitted run, in the order of :attr:`runs`."""
        return self._residuals.copy()

    def param_draws(self, group=None, *, random_seed=None) -> dict:
        """Parameter draws shaped (1, S): the bootstrap resamples, or S copies of the estimate.

        ``group`` and ``random_seed`` are accepted for the shared read API
        (:mod:`bayescale.analysis.contract`); a point fit has no groups and no random
        parameter draws.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.param_draws()["alpha"].shape
        (1, 4000)
        """
        names = list(self.law.param_names) + ["sigma"]
        if self.bootstrapped:
            return {k: self.boot[k].to_numpy(dtype=float)[None, :] for k in names}
        values = dict(self.params, sigma=self.sigma)
        return {k: np.full((1, POINT_DRAWS), values[k]) for k in names}

    def noise_draws(self, params, shape, rng) -> np.ndarray:
        """Run-to-run log-loss noise: the fit's own residuals, resampled."""
        return rng.choice(self._residuals, size=shape)

    # --------------------------------------------------------------- helpers
    def table_problems(self, what) -> list:
        """Problems every table of this fit carries (:func:`bayescale.base.tablecheck.check_table`): an unusable estimate."""
        return [] if self.success else [f"the {type(self.model).__name__} fit did not converge ({self.reason}); the table "
                                         "is not an estimate"]

    def _log_curve(self, inputs, params):
        x = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
        with np.errstate(all="ignore"):
            return np.asarray(self.law.log_loss(x, params, NUMPY), dtype=float)

    def _boot_params(self) -> dict:
        return {k: self.boot[k].to_numpy() for k in self.law.param_names}

    def _seed(self, random_seed):
        return self.boot_seed if random_seed is None else random_seed

    @property
    def bootstrapped(self) -> bool:
        """True when bootstrap resamples are attached."""
        return self.boot is not None

    # ------------------------------------------------------------- bootstrap
    def bootstrap(self, n_boot=1000, *, random_seed=None) -> "PointFit":
        """Resample runs with replacement and refit each resample.

        Each refit starts from this fit's estimate (warm start) and minimises
        the same objective with the resampled runs, i.e. with each run weighted
        by how often it was drawn.

        Parameters
        ----------
        n_boot : int, default 1000
        random_seed : int, optional
            Default: the spec's ``random_seed``, else a fresh seed (recorded in
            :attr:`boot_seed`).

        Returns
        -------
        PointFit
            A copy of this fit with :attr:`boot` filled.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> boot = fit.bootstrap(50, random_seed=0)
        >>> boot.summary().columns.tolist()
        ['estimate', 'sd', 'lower', 'upper']
        """
        random_seed = _check_seed(random_seed)
        check_count(n_boot, "n_boot")
        seed = random_seed if random_seed is not None else self.model.random_seed
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        problem = Problem(self.law, self.model.loss, self.model.delta, self.runs)
        n = self.runs.n_runs
        dof = max(n - len(self.law.param_names), 1)
        x_runs = self.runs.inputs(self.law.inputs)
        log_y = np.log(self.runs.loss)
        thetas, sigmas, ok = [], [], []
        with one_blas_thread():
            for _ in range(int(n_boot)):
                w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(float)
                with np.errstate(all="ignore"):
                    res = minimize_from(problem.single(w), self.theta, self.model.options)
                thetas.append(res.x)
                r = log_y - self._log_curve(x_runs, to_params(self.law, res.x))
                sigmas.append(float(np.sqrt(np.sum(w * r**2) / dof)))
                drawn = {k: v[w > 0] for k, v in x_runs.items()}
                ok.append(bool(res.success) and res.fun < BIG_OBJECTIVE and not estimate_problems(self.law, res.x, drawn))
        boot = pd.DataFrame(to_params(self.law, np.array(thetas)))
        boot["sigma"] = sigmas
        boot["success"] = ok
        boot.index.name = "resample"
        failed = int((~boot["success"]).sum())
        if failed > 0.05 * n_boot:
            warn_user(f"{failed} of {n_boot} bootstrap refits did not report convergence; their estimates "
                      "are kept, but check fit.boot", RuntimeWarning, stacklevel=2)
        timing = dict(self.timing, bootstrap_seconds=time.perf_counter() - t0)
        return PointFit(self.model, self.runs, self.theta, self.objective, self.success, self.starts, timing,
                        boot=boot, boot_seed=seed)

    # ------------------------------------------------------------- summaries
    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Parameter table, one row per parameter (law parameters, then ``sigma``).

        Parameters
        ----------
        prob : float, default 0.9
            Probability of the bootstrap interval.
        ci_kind : {"eti", "hdi"}, default "eti"
            Percentile (equal-tailed) or highest-density interval of the
            resamples.

        Returns
        -------
        DataFrame
            The columns every fit's summary starts with
            (:data:`bayescale.analysis.contract.SUMMARY_COLUMNS`): ``estimate``, ``sd``
            (bootstrap standard deviation), ``lower`` and ``upper``
            (bootstrap interval). Without :meth:`bootstrap` the fit has no
            parameter interval: ``sd``, ``lower`` and ``upper`` are NaN and
            ``attrs["interval"]`` says ``"point estimate"``. ``attrs``:
            ``prob``, ``interval`` (``"bootstrap percentile"`` or ``"point
            estimate"``), ``n_boot``.

        Examples
        --------
        >>> import bayescale as bs
        >>> table = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True)).summary()
        >>> table.index.tolist(), table.columns.tolist()
        (['E', 'A', 'B', 'alpha', 'beta', 'sigma'], ['estimate', 'sd', 'lower', 'upper'])
        """
        _check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        names = list(self.law.param_names) + ["sigma"]
        est = [self.params[k] for k in self.law.param_names] + [self.sigma]
        table = pd.DataFrame({"estimate": est}, index=pd.Index(names, name="parameter"))
        if self.bootstrapped:
            values = self.boot[names].to_numpy(dtype=float)
            table["sd"] = values.std(axis=0, ddof=1)
            _, table["lower"], table["upper"] = interval(values, prob, ci_kind)
        else:
            table["sd"] = table["lower"] = table["upper"] = np.nan
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind),
                           n_boot=0 if self.boot is None else len(self.boot))
        return table

    # ------------------------------------------------------------ prediction
    def _draws(self, runs, random_seed=None, n_mc=4000):
        """Log curve draws (S, n) and log new-run draws (M, n) at `runs`."""
        inputs = runs.inputs(self.law.inputs)
        if not self.bootstrapped:
            return self._log_curve(inputs, self.params)[None, :], None
        bp = {k: v[:, None] for k, v in self._boot_params().items()}
        curves = self._log_curve({k: v[None, :] for k, v in inputs.items()}, bp)
        rng = np.random.default_rng(self._seed(random_seed))
        pick = rng.integers(0, curves.shape[0], size=n_mc)
        noise = rng.choice(self._residuals, size=(n_mc, curves.shape[1]))
        return curves, curves[pick] + noise

    def predict(self, new_runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None,
                group=None) -> pd.DataFrame:
        """Predicted loss with a curve band and a new-run band, one row per new run.

        Parameters
        ----------
        new_runs : DataFrame, dict of arrays, RunData or path
            Inputs of the law.
        prob : float, default 0.9
        ci_kind : {"eti", "hdi"}, default "eti"
            Percentile (equal-tailed) or highest-density intervals of a
            bootstrapped fit's draws.
        random_seed : int, optional
            Seed of the Monte Carlo new-run band of a bootstrapped fit.
        group : None
            Accepted for the shared read API; a point fit has no groups.

        Returns
        -------
        DataFrame
            Exact quantiles where the fit allows (the estimate and its
            residuals), so the bands may differ in the last digits from the
            Monte Carlo draws of :meth:`predict_draws`. The inputs (and
            ``observed_loss`` if given), then

            - ``loss_median``: the point estimate of the expected loss;
            - ``curve_lower``, ``curve_upper``: bootstrap percentile interval of
              the expected loss (equal to the estimate without bootstrap);
            - ``new_run_lower``, ``new_run_upper``: interval for one new run —
              the curve (or the bootstrapped curves) plus the empirical
              residuals of the fit on log loss.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.predict({"N": [70e9], "D": [1.4e12]}).columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['N', 'D', 'C', 'loss_median', 'curve_lower', 'curve_upper', 'new_run_lower', 'new_run_upper',
         'beyond_C', 'beyond_N', 'beyond_D', 'beyond']
        """
        random_seed = _check_seed(random_seed)

        _check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        if group is not None:
            raise ValueError(f"group={group!r}: a point fit has no groups; leave group=None")
        runs = load_new_runs(self, new_runs, columns)
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        point = self._log_curve(runs.inputs(self.law.inputs), self.params)
        curves, new = self._draws(runs, random_seed)
        frame = runs.frame[[c for c in runs.frame.columns if c in ("N", "D", "C", "U", "group", "loss")]].copy()
        if "loss" in frame:
            frame = frame.rename(columns={"loss": "observed_loss"})
        frame["loss_median"] = np.exp(point)
        if new is None:
            frame["curve_lower"] = frame["curve_upper"] = np.exp(point)
            q_lo, q_hi = np.quantile(self._residuals, [lo, hi])
            frame["new_run_lower"], frame["new_run_upper"] = np.exp(point + q_lo), np.exp(point + q_hi)
        else:
            _, c_lo, c_hi, n_lo, n_hi = two_bands(curves, new, prob, ci_kind)
            frame["curve_lower"], frame["curve_upper"] = np.exp(c_lo), np.exp(c_hi)
            frame["new_run_lower"], frame["new_run_upper"] = np.exp(n_lo), np.exp(n_hi)
        annotate(frame, self.runs, what="predict", stacklevel=2)
        frame.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind))
        check_table(frame, "predict", problems=self.table_problems("predict"), label="N", stacklevel=2)
        return frame

    def log_predictive_density(self, runs, *, columns=None) -> np.ndarray:
        """Log density of each run's observed log loss under the fit's noise model.

        The noise model is Normal on log loss with scale :attr:`sigma` (plug-in).
        After :meth:`bootstrap` the density is averaged over the resampled
        fits, each with its own ``sigma``.

        Returns
        -------
        ndarray, shape (n_runs,)

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> fit = bs.Approach3().fit(runs)
        >>> fit.log_predictive_density(runs.tail(3)).shape
        (3,)
        """
        from scipy import stats
        from scipy.special import logsumexp

        runs = load_runs(runs, columns=columns, require=self.law.inputs)
        y = np.log(runs.loss)
        inputs = runs.inputs(self.law.inputs)
        if not self.bootstrapped:
            return stats.norm.logpdf(y, loc=self._log_curve(inputs, self.params), scale=self.sigma)
        ll = self.log_likelihood_draws(runs)[0]
        return logsumexp(ll, axis=0) - np.log(ll.shape[0])

    def log_likelihood_draws(self, runs, *, columns=None) -> np.ndarray:
        """Log density of each run's observed log loss under each parameter draw, shape (1, S, n_runs).

        The noise model of :meth:`log_predictive_density` (Normal on log loss)
        at each draw of :meth:`param_draws`: each bootstrap resample with its
        own ``sigma``, or S copies of the estimate.

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> bs.Approach3().fit(runs).log_likelihood_draws(runs.tail(3)).shape
        (1, 4000, 3)
        """
        from scipy import stats

        runs = load_runs(runs, columns=columns, require=self.law.inputs)
        y = np.log(runs.loss)
        inputs = runs.inputs(self.law.inputs)
        draws = self.param_draws()
        params = {k: draws[k][0][:, None] for k in self.law.param_names}
        mu = self._log_curve({k: v[None, :] for k, v in inputs.items()}, params)
        return stats.norm.logpdf(y[None, :], loc=mu, scale=draws["sigma"][0][:, None])[None]

    # ---------------------------------------------------------------- report
    def fit_report(self, prob=0.9) -> str:
        """Text report in sections: model, data, optimiser, parameters, residuals."""
        t = self.starts
        frame = self.runs.frame
        lines = ["[[Model]]", f"    {self.law.name}: L = {self.law.formula}", f"    {self.model._describe()}",
                 "[[Data]]", f"    {self.runs.n_runs} runs"]
        for k in self.law.inputs:
            lines.append(f"    {k}: {frame[k].min():.3g} to {frame[k].max():.3g}")
        minima = _count_minima(t)
        lines += ["[[Optimiser]]",
                  f"    L-BFGS-B (ftol={self.model.options['ftol']:g}, gtol={self.model.options['gtol']:g}, "
                  f"maxls={self.model.options['maxls']}) from {len(t)} of {t.attrs['n_grid']} grid starts "
                  f"({t.attrs['search']} search), {self.timing['grid_seconds']:.2f} s",
                  f"    best objective {self.objective:.10g}, reached from {int(t['at_best'].sum())} starts; "
                  f"{minima} distinct end points; converged: {'yes' if self.success else 'NO'}"]
        if not self.success:
            lines.append(f"    not converged: {self.reason}")
        table = self.summary(prob)
        if self.bootstrapped:
            lines.append(f"[[Parameters]] (estimate and {prob:.0%} bootstrap percentile interval, "
                         f"{len(self.boot)} resamples, seed {self.boot_seed}, "
                         f"{self.timing['bootstrap_seconds']:.2f} s)")
            for name, row in table.iterrows():
                lines.append(f"    {name:<8} {row['estimate']:<12.5g} [{row['lower']:.5g}, {row['upper']:.5g}]")
        else:
            lines.append("[[Parameters]] (estimate; call fit.bootstrap(1000) for intervals)")
            for name, row in table.iterrows():
                lines.append(f"    {name:<8} {row['estimate']:.5g}")
        q = np.quantile(self._residuals, [0.05, 0.5, 0.95])
        lines += ["[[Residuals]] (log observed - log predicted)",
                  f"    sd {self.sigma:.4g}; 5%, 50%, 95% quantiles {q[0]:.4g}, {q[1]:.4g}, {q[2]:.4g}"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        table = self.summary()
        head = (f"PointFit: {self.law.name} law, {self.model._describe()}, {self.runs.n_runs} runs\n"
                f"  best of {len(self.starts)} L-BFGS-B starts, objective {self.objective:.6g}, "
                f"converged: {'yes' if self.success else 'NO (' + self.reason + ')'}"
                + (f"; {len(self.boot)} bootstrap resamples\n" if self.bootstrapped else "\n"))
        tail = ("\nNext: fit.summary(), fit.predict(new_runs), fit.allocate(budget), fit.fit_report()"
                + ("" if self.bootstrapped else ", fit.bootstrap(1000)"))
        return head + table.to_string(float_format=lambda v: f"{v:.5g}") + tail

    def _repr_html_(self) -> str:
        return ("<pre>" + repr(self).split("\n")[0] + "</pre>"
                + self.summary().to_html(float_format=lambda v: f"{v:.5g}")
                + "<p>Next: <code>fit.predict(new_runs)</code>, <code>fit.allocate(budget)</code>, "
                  "<code>fit.fit_report()</code></p>")


def _count_minima(table) -> int:
    ok = table[table["success"]] if table["success"].any() else table
    return int(np.unique(np.round(np.log(np.maximum(ok["objective"].to_numpy(), 1e-300)), 6)).size)
