"""Chinchilla Approach 1: power laws of the compute-efficient frontier, with bootstrap intervals.

Hoffmann et al. 2022, Approach 1: take the lower envelope of loss over
compute (:mod:`bayescale.runs.envelope`: from training curves, the least loss over
all curves at each compute; from final runs, the best run per compute bin),
then fit ``log N_opt = log k_N + a log C`` and ``log D_opt = log k_D + b log C``
by least squares on its points. Points whose run has the smallest or largest
model size among the candidates (``edge``) are left out by default: the
optimum may lie beyond the models sampled there.

Intervals: the bootstrap resamples runs (whole curves) with replacement,
recomputes the envelope from the runs drawn and refits both lines; percentile
intervals. A run drawn twice changes no minimum, so a resample is the
envelope of the distinct runs it holds (about 63% of them): the intervals
show how much the frontier leans on single runs. Without bootstrap
(``n_boot=0``) the intervals are Student-t intervals of the lines, as for
Approach 2 (:class:`~bayescale.fitting.isoflop.IsoFLOPFit`).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..analysis.contract import check_ci_kind, interval, interval_label
from ..runs.envelope import check_envelope_settings, curve_candidates, frontier_candidates, is_curves
from ..base.errors import BayescaleError, ConvergenceWarning, SpecError
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_count, check_flag, check_prob, check_seed
from ..base.validation import positive_array
from ..base.errors import warn_user
from ..runs.data import load_runs
from ..core.extrapolation import annotate
from ..base.tablecheck import check_table

__all__ = ["Approach1", "Approach1Fit"]

#: Fewest frontier points the two lines need.
MIN_POINTS = 3
_PARAMS = ("a", "b", "log_kN", "log_kD")


def _line(x, y):
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(len(x) - 2, 1)
    s2 = float(resid @ resid / dof)
    return coef, s2 * np.linalg.inv(X.T @ X), dof


def _lines(points, drop_edges):
    used = ~points["edge"].to_numpy(dtype=bool) if drop_edges else np.ones(len(points), dtype=bool)
    x = np.log(points["C"].to_numpy(dtype=float)[used])
    if len(x) < MIN_POINTS or np.ptp(x) <= 0:
        return None, used
    return {name: _line(x, np.log(points[col].to_numpy(dtype=float)[used])) for name, col in (("N", "N"), ("D", "D"))}, used


class Approach1:
    """Chinchilla Approach 1 (settings; data goes into :meth:`fit`).

    Parameters
    ----------
    run : str, default "run"
        Column of run ids. With a run that has several rows the data are
        training curves (Hoffmann's Approach 1 proper); otherwise final runs,
        binned by compute (see :func:`bayescale.runs.envelope.frontier`).
    levels, resolution, bins_per_decade
        Binning of final runs (:func:`bayescale.runs.envelope.frontier`).
    points_per_decade, min_curves
        Compute grid of training curves (:func:`bayescale.runs.envelope.curve_envelope`).
    drop_edges : bool, default True
        Leave out frontier points at the smallest or largest model of their bin.
    n_boot : int, default 1000
        Bootstrap resamples of runs (0: t intervals of the lines instead).
    random_seed : int, optional
        Seed of the bootstrap.
    flops_per_param_token : float, default 6

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach1(random_seed=0).fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> round(fit.a, 2), round(fit.b, 2)  # Hoffmann et al.'s Approach 1 (curves): 0.50, 0.50
    (0.47, 0.53)
    """

    def __init__(self, *, run="run", levels=None, resolution=0.1, bins_per_decade=5, points_per_decade=20,
                 min_curves=2, drop_edges=True, n_boot=1000, random_seed=None,
                 flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
        self.run = run
        self.levels = None if levels is None else check_budgets(levels, "levels")
        self.resolution = resolution
        self.bins_per_decade = bins_per_decade
        self.points_per_decade = points_per_decade
        self.min_curves = check_count(min_curves, "min_curves")
        self.drop_edges = check_flag(drop_edges, "drop_edges")
        self.n_boot = check_count(n_boot, "n_boot", allow_zero=True)
        self.random_seed = check_seed(random_seed)
        self.flops_per_param_token = float(positive_array(flops_per_param_token, "flops_per_param_token"))

        check_envelope_settings(bins_per_decade, resolution)
        if not (isinstance(points_per_decade, (int, float)) and not isinstance(points_per_decade, bool)
                and points_per_decade > 0):
            raise SpecError(f"points_per_decade must be a positive number, got {points_per_decade!r}")

    def __repr__(self) -> str:
        return f"Approach1(run={self.run!r}, drop_edges={self.drop_edges}, n_boot={self.n_boot})"

    def candidates(self, data, *, columns=None):
        """The envelope's candidates for `data` (internal; used by :meth:`fit` and its bootstrap)."""
        if is_curves(data, self.run, columns):
            return curve_candidates(data, run=self.run, points_per_decade=self.points_per_decade,
                                     min_curves=self.min_curves, columns=columns)

        frame = load_runs(data, columns=columns, require=("N",)).frame
        run = self.run if self.run is not None and self.run in frame.columns else None
        return frontier_candidates(data, levels=self.levels, resolution=self.resolution,
                                    bins_per_decade=self.bins_per_decade, run=run, columns=columns)

    def fit(self, runs, *, columns=None) -> "Approach1Fit":
        """Envelope, power laws of N_opt and D_opt in C, and (with ``n_boot``) their bootstrap.

        Parameters
        ----------
        runs : DataFrame, dict of arrays, RunData or path
            Final runs or training curves (``N``, ``loss``, ``C`` or ``D``,
            and for curves a run id column).
        columns : dict, optional
            Column renaming, as in :func:`bayescale.load_runs`.

        Returns
        -------
        Approach1Fit

        Raises
        ------
        BayescaleError
            Fewer than 3 usable frontier points.
        """
        data = load_runs(runs, columns=columns, require=("N", "D", "C"))
        cand = self.candidates(data)
        points = cand.pick()
        lines, used = _lines(points, self.drop_edges)
        points["used"] = used
        if lines is None:
            raise BayescaleError(
                f"only {int(used.sum())} frontier point(s) away from the edges of the model sizes; Approach 1 needs "
                f"at least {MIN_POINTS} (frontier: {len(points)} points; see drop_edges=, bins_per_decade=)")
        boot = None
        if self.n_boot:
            rng = np.random.default_rng(self.random_seed)
            n_runs = len(cand.run_ids)
            rows = []
            for _ in range(self.n_boot):
                keep = np.unique(rng.integers(0, n_runs, n_runs))
                fit_b, _u = _lines(cand.pick(keep), self.drop_edges)
                if fit_b is None:
                    rows.append((np.nan,) * 4 + (False,))
                else:
                    rows.append((fit_b["N"][0][1], fit_b["D"][0][1], fit_b["N"][0][0], fit_b["D"][0][0], True))
            boot = pd.DataFrame(rows, columns=[*_PARAMS, "success"])
        fit = Approach1Fit(self, data, points, lines, boot, cand.method)
        if not fit.converged:
            warn_user(ConvergenceWarning(f"Approach 1 fit did not converge: {fit.reason}"), stacklevel=2)
        return fit


class Approach1Fit:
    """Result of :meth:`Approach1.fit`: ``N_opt ∝ C^a`` and ``D_opt ∝ C^b`` along the frontier.

    Attributes
    ----------
    frontier : DataFrame
        The envelope's points (:func:`bayescale.runs.envelope.frontier` columns)
        and ``used`` (in the line fits).
    a, b : float
        Exponents of N_opt and D_opt in C.
    params : dict
        ``a``, ``b``, ``log_kN``, ``log_kD`` (intercepts, natural log, C in FLOPs).
    boot : DataFrame or None
        Bootstrap estimates, one row per resample, with ``success``.
    method : str
        ``"curves"``, ``"levels"`` or ``"bins"``: how the envelope was made.
    converged : bool
        Finite exponents with ``0 < a < 1`` (both N_opt and D_opt grow with
        compute); :attr:`reason` says why not.
    """

    def __init__(self, model, runs, frontier, lines, boot, method):
        self.model = model
        self.runs = runs
        self.frontier = frontier
        self._fits = lines
        self.boot = boot
        self.method = method
        self.a = float(lines["N"][0][1])
        self.b = float(lines["D"][0][1])
        self.params = {"a": self.a, "b": self.b, "log_kN": float(lines["N"][0][0]), "log_kD": float(lines["D"][0][0])}
        if not all(np.isfinite(v) for v in self.params.values()):
            self.reason = "the fitted lines are not finite"
        elif not 0 < self.a < 1:
            self.reason = f"a = {self.a:.3g}: N_opt ∝ C^a needs 0 < a < 1 for both N and D to grow with compute"
        elif boot is not None and boot["success"].mean() < 0.5:
            self.reason = f"only {boot['success'].mean():.0%} of the bootstrap resamples give a frontier to fit"
        else:
            self.reason = ""
        self.converged = not self.reason

    @property
    def draws_kind(self) -> str:
        """``"bootstrap"`` with resamples, else ``"t"`` (t intervals of the lines)."""
        return "bootstrap" if self.boot is not None else "t"

    @property
    def random_seed(self):
        """Seed of the bootstrap."""
        return self.model.random_seed

    def line_draws(self) -> dict:
        """Bootstrap draws of ``a``, ``b``, ``log_kN``, ``log_kD`` (successful resamples), or the estimate alone."""
        if self.boot is None:
            return {k: np.array([v]) for k, v in self.params.items()}
        ok = self.boot[self.boot["success"]]
        return {k: ok[k].to_numpy(dtype=float) for k in _PARAMS}

    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Exponents and intercepts with bootstrap percentile (or t) intervals.

        Returns
        -------
        DataFrame
            Rows ``a``, ``b``, ``log_kN``, ``log_kD``; columns ``estimate``,
            ``sd``, ``lower``, ``upper``; ``attrs``: ``prob``, ``interval``.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach1(n_boot=200, random_seed=0).fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.summary().loc["a", ["lower", "upper"]].round(2).tolist()
        [0.45, 0.58]
        """
        from scipy import stats

        check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        rows = []
        if self.boot is not None:
            draws = self.line_draws()
            for name in _PARAMS:
                _m, lo, hi = interval(draws[name], prob, ci_kind)
                rows.append((name, self.params[name], float(np.std(draws[name], ddof=1)), float(lo), float(hi)))
        else:
            for name, (which, j) in {"a": ("N", 1), "b": ("D", 1), "log_kN": ("N", 0), "log_kD": ("D", 0)}.items():
                coef, cov, dof = self._fits[which]
                sd = float(np.sqrt(cov[j, j]))
                t = stats.t.ppf((1 + prob) / 2, dof)
                rows.append((name, coef[j], sd, coef[j] - t * sd, coef[j] + t * sd))
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "sd", "lower", "upper"]).set_index("parameter")
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind))
        return table

    def _line_bands(self, log_c, prob):
        """Estimate, lower, upper of log N_opt and log D_opt at ``log_c``."""
        from scipy import stats

        out = {}
        X = np.column_stack([np.ones_like(log_c), log_c])
        for name, (ka, kb) in {"N": ("log_kN", "a"), "D": ("log_kD", "b")}.items():
            mean = self.params[ka] + self.params[kb] * log_c
            if self.boot is not None:
                d = self.line_draws()
                vals = d[ka][:, None] + d[kb][:, None] * log_c[None, :]
                _m, lo, hi = interval(vals, prob)
            else:
                coef, cov, dof = self._fits[name]
                se = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
                t = stats.t.ppf((1 + prob) / 2, dof)
                lo, hi = mean - t * se, mean + t * se
            out[name] = (mean, lo, hi)
        return out

    def predict(self, new_runs, prob=0.9, **_ignored):
        raise BayescaleError("an Approach 1 fit gives compute-optimal allocations, not losses at given (N, D); "
                             "use fit.allocate(budget), or a PointModel / ScalingModel for predictions")

    def allocate(self, budget, prob=0.9, *, flops_per_param_token=None, max_unique_tokens=None) -> pd.DataFrame:
        """N_opt and D_opt at each budget from the frontier's power laws, with intervals.

        Parameters
        ----------
        budget : float or sequence of float
            Compute budgets in FLOPs.
        prob : float, default 0.9
        flops_per_param_token : float, optional
            k in ``C = k N D``; default the spec's.
        max_unique_tokens : None
            Not supported.

        Returns
        -------
        DataFrame
            As :meth:`IsoFLOPFit.allocate <bayescale.fitting.isoflop.IsoFLOPFit.allocate>`:
            ``C``, ``N_*``, ``D_*``, ``tokens_per_param_*``, extrapolation
            columns and ``converged``. ``N_median`` is the fitted line,
            ``D_median = C / (k N_median)``; the bands are the bootstrap's
            (or t intervals of the lines).

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.Approach1(n_boot=100, random_seed=0).fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.allocate([1e21])[["N_median", "D_median"]].shape
        (1, 2)
        """
        check_prob(prob)
        if max_unique_tokens is not None:
            raise SpecError("an Approach 1 fit has no data-repetition model; max_unique_tokens is not supported")
        k = self.model.flops_per_param_token if flops_per_param_token is None else float(
            positive_array(flops_per_param_token, "flops_per_param_token"))
        c = check_budgets(budget)
        bands = self._line_bands(np.log(c), prob)
        frame = pd.DataFrame({"C": c})
        n_med = np.exp(bands["N"][0])
        frame["N_median"], frame["N_lower"], frame["N_upper"] = n_med, np.exp(bands["N"][1]), np.exp(bands["N"][2])
        shift = np.log(self.model.flops_per_param_token / k)
        frame["D_median"] = c / (k * n_med)
        frame["D_lower"], frame["D_upper"] = np.exp(bands["D"][1] + shift), np.exp(bands["D"][2] + shift)
        frame["tokens_per_param_median"] = frame["D_median"] / frame["N_median"]
        frame["tokens_per_param_lower"] = frame["D_lower"] / frame["N_upper"]
        frame["tokens_per_param_upper"] = frame["D_upper"] / frame["N_lower"]
        annotate(frame, self.runs, what="allocate", n="N_median", d="D_median",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=k, stacklevel=2)
        frame["converged"] = self.converged
        frame.attrs.update(prob=prob, law="approach1", flops_per_param_token=k, max_unique_tokens=None,
                           interval=interval_label(self.draws_kind))
        check_table(frame, "allocate", plan=("N_median", "D_median"), stacklevel=2,
                    problems=[] if self.converged else [f"the Approach 1 fit did not converge ({self.reason})"])
        return frame

    def fit_report(self, prob=0.9) -> str:
        """Text report: the frontier and the fitted exponents."""
        used = self.frontier[self.frontier["used"]]
        lines = ["[[Model]]", "    Approach 1 (compute-efficient frontier): lower envelope of loss over compute,",
                 "    then N_opt = k_N C^a, D_opt = k_D C^b", "[[Frontier]]",
                 f"    {self.method}: {len(used)} of {len(self.frontier)} frontier points used "
                 f"({self.runs.n_runs} rows)"]
        if self.boot is not None:
            lines.append(f"    bootstrap: {int(self.boot['success'].sum())} of {len(self.boot)} resamples fitted")
        if not self.converged:
            lines.append(f"    not converged: {self.reason}")
        table = self.summary(prob)
        lines.append(f"[[Exponents]] (estimate and {prob:.0%} {table.attrs['interval']})")
        for name, row in table.iterrows():
            lines.append(f"    {name:<7} {row['estimate']:<10.4g} [{row['lower']:.4g}, {row['upper']:.4g}]")
        return "\n".join(lines)

    def __repr__(self) -> str:
        used = int(self.frontier["used"].sum())
        return (f"Approach1Fit: N_opt ∝ C^{self.a:.3f}, D_opt ∝ C^{self.b:.3f} from {used} frontier points "
                f"({self.method})\nNext: fit.summary(), fit.frontier, fit.allocate(budget), fit.fit_report()")
