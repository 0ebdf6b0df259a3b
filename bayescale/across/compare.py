"""Side-by-side comparison of fits: Bayesian posteriors, point estimates, isoFLOP exponents.

:func:`compare` takes any number of fits — :class:`~bayescale.fitting.fit.ScalingFit`,
:class:`~bayescale.fitting.point.PointFit` (with or without bootstrap),
:class:`~bayescale.fitting.point.IsoFLOPFit`, :class:`~bayescale.fitting.envelope_fit.Approach1Fit` — and returns a :class:`Comparison` with
one parameter table, one prediction table and one allocation table, columns
per method, and a plot overlaying the fits and their bands.

Intervals are equal-tailed (central) for every method so they compare like
with like: posterior quantiles for a Bayesian fit, bootstrap percentiles for a
bootstrapped point fit, t intervals for isoFLOP exponents. A point fit
without bootstrap has no parameter interval (NaN) and a degenerate curve band.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis.contract import ScalingResult, interval_label
from ..base.validation import check_prob as _check_prob, renamed
from ..base.errors import SpecError
from ..runs.data import load_runs
from ..fitting.envelope_fit import Approach1Fit
from ..fitting.fit import ScalingFit
from ..fitting.point import Approach3, IsoFLOPFit, LeastSquares, PointFit

__all__ = ["compare", "Comparison", "method_name"]

_RESERVED = ("data",)


def method_name(fit) -> str:
    """Default display name of a fit.

    Examples
    --------
    >>> import bayescale as bs
    >>> method_name(bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True)))
    'Approach 3'
    """
    if isinstance(fit, ScalingFit):
        return f"Bayesian ({fit.model.likelihood})"
    if isinstance(fit, PointFit):
        if isinstance(fit.model, Approach3):
            base = "Approach 3"
        elif isinstance(fit.model, LeastSquares):
            base = f"least squares ({fit.model.on})"
        else:
            base = f"point ({fit.model.loss})"
        return base + (" + bootstrap" if fit.bootstrapped else "")
    if isinstance(fit, IsoFLOPFit):
        return "Approach 2 (isoFLOP)"
    if isinstance(fit, Approach1Fit):
        return "Approach 1 (envelope)"
    return type(fit).__name__


def _named(fits) -> dict:
    if isinstance(fits, dict):
        out = {str(k): v for k, v in fits.items()}
    elif isinstance(fits, (list, tuple)):
        out = {}
        for fit in fits:
            name = method_name(fit)
            k = 2
            while name in out:
                name = f"{method_name(fit)} ({k})"
                k += 1
            out[name] = fit
    else:
        raise TypeError(f"fits must be a dict name -> fit or a list of fits, got {type(fits).__name__}")
    if not out:
        raise ValueError("compare() needs at least one fit")
    bad = [k for k in out if k in _RESERVED]
    if bad:
        raise SpecError(f"method name(s) {bad} are reserved for the data columns; choose other names")
    return out


def _param_rows(fit, prob) -> pd.DataFrame:
    """estimate / lower / upper per parameter for one fit (equal-tailed intervals)."""
    table = fit.summary(prob, ci_kind="eti")
    return table[["estimate", "lower", "upper"]].rename_axis(None)


#: What each kind of fit's new-run band adds to its curve band, for :attr:`Comparison.methods`.
_NOISE = {
    "posterior": "; new-run band adds the likelihood's noise",
    "bootstrap": "; new-run band adds resampled residuals",
    "point": " (none for the parameters); new-run band from residual quantiles",
    "t": " of the log-log line fit",
}


def _method_row(fit) -> dict:
    """Kind, size, interval and convergence of one fit (a row of :attr:`Comparison.methods`)."""
    kind = fit.draws_kind
    # fits that give allocations only (Approaches 1 and 2) have intervals of their log-log lines
    what = _NOISE.get(kind, "") if _can_predict(fit) else _NOISE["t"]
    return {"kind": kind, "n_runs": fit.runs.n_runs,
            "interval": interval_label(kind, "eti") + what, "converged": bool(fit.converged)}


def _can_predict(fit) -> bool:
    """Fits of a law predict losses; an isoFLOP fit gives allocations only."""
    return isinstance(fit, ScalingResult)


class Comparison:
    """Tables and a plot comparing fits (returned by :func:`compare`).

    Attributes
    ----------
    fits : dict
        Name -> fit.
    methods : DataFrame
        One row per method: ``kind`` (posterior, bootstrap, point, t), ``n_runs``,
        ``interval`` (what its intervals are) and ``converged``.
    params : DataFrame
        Index: parameter; columns: (method, ``estimate`` | ``lower`` | ``upper``).
        ``estimate`` is the posterior median (Bayesian) or the point estimate.
    predictions : DataFrame or None
        Index: the new runs' inputs; columns: (method, ``loss_median`` |
        ``curve_lower`` | ``curve_upper`` | ``new_run_lower`` |
        ``new_run_upper``), plus (``data``, ``observed_loss``) when the new runs
        have a loss.
    allocations : DataFrame or None
        Index: budget ``C``; columns: (method, ``N_median`` ... ``loss_upper``,
        ``converged``).
    prob : float
    """

    def __init__(self, fits, params, predictions, allocations, prob, new_runs, budgets):
        self.fits = fits
        self.methods = pd.DataFrame.from_dict({name: _method_row(fit) for name, fit in fits.items()},
                                              orient="index")
        self.methods.index.name = "method"
        self.params = params
        self.predictions = predictions
        self.allocations = allocations
        self.prob = prob
        self._new_runs = new_runs
        self._budgets = budgets

    def __repr__(self) -> str:
        est = self.params.xs("estimate", axis=1, level=1)
        parts = [f"Comparison of {len(self.fits)} fits ({', '.join(self.fits)}), {self.prob:.0%} intervals",
                 "Estimates:", est.to_string(float_format=lambda v: f"{v:.5g}"),
                 "Methods:", self.methods[["kind", "n_runs", "converged"]].to_string()]
        parts.append("Tables: .methods, .params, " + (".predictions, " if self.predictions is not None else "")
                     + (".allocations, " if self.allocations is not None else "") + "plot with .plot()")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return (f"<p><b>Comparison</b> of {len(self.fits)} fits, {self.prob:.0%} intervals</p>"
                + self.params.to_html(float_format=lambda v: f"{v:.5g}")
                + "<p>Tables: <code>.params</code>, <code>.predictions</code>, <code>.allocations</code>; "
                  "<code>.plot()</code></p>")

    def plot(self, x="C", *, figsize=None):
        """Overlay the fits: predictions with bands, allocations with bands, parameter intervals.

        Parameters
        ----------
        x : {"C", "N", "D"}
            Horizontal axis of the prediction panel.
        figsize : tuple, optional

        Returns
        -------
        bayescale.base.figure.Figure
            Made without pyplot (shown once, as the cell's value). Panels:
            predicted loss at the new runs (median, curve band as thick bars,
            new-run band as thin bars, observed loss as black crosses,
            training runs in grey); compute-optimal N per budget with its band;
            parameters relative to the first method's estimate, with intervals.
        """
        import matplotlib

        from ..base.figure import new_figure

        panels = [p for p, on in (("pred", self.predictions is not None),
                                  ("alloc", self.allocations is not None), ("params", True)) if on]
        fig = new_figure(figsize or (5.2 * len(panels), 4.2))
        axes = fig.subplots(1, len(panels), squeeze=False)
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        colour = {name: colours[i % len(colours)] for i, name in enumerate(self.fits)}
        for ax, panel in zip(axes[0], panels):
            getattr(self, f"_plot_{panel}")(ax, colour, x)
        return fig

    def _plot_pred(self, ax, colour, x):
        frame = self._new_runs.frame
        if x not in frame:
            raise SpecError(f"x={x!r} is not a column of the new runs; choose one of "
                            f"{[c for c in ('C', 'N', 'D') if c in frame]}")
        xv = frame[x].to_numpy(dtype=float)
        first = next(iter(self.fits.values()))
        if getattr(first, "runs", None) is not None and x in first.runs.frame:
            tr = first.runs.frame
            ax.scatter(tr[x], tr["loss"], s=8, color="0.75", label="training runs", zorder=1)
        methods = [m for m in self.fits if m in self.predictions.columns.get_level_values(0)]
        spread = 0.03 * (np.ptp(np.log10(xv)) + 0.5)
        for i, name in enumerate(methods):
            p = self.predictions[name]
            shift = 10 ** ((i - (len(methods) - 1) / 2) * spread)
            xs = xv * shift
            med = p["loss_median"].to_numpy()
            c = colour[name]
            ax.errorbar(xs, med, yerr=[med - p["new_run_lower"], p["new_run_upper"] - med], fmt="none",
                        ecolor=c, elinewidth=1, alpha=0.7, zorder=2)
            ax.errorbar(xs, med, yerr=[med - p["curve_lower"], p["curve_upper"] - med], fmt="o", ms=3,
                        color=c, elinewidth=3, label=name, zorder=3)
        if ("data", "observed_loss") in self.predictions.columns:
            ax.scatter(xv, self.predictions[("data", "observed_loss")], marker="x", color="k", s=25,
                       label="observed", zorder=4)
        ax.set_xscale("log")
        ax.set_xlabel({"C": "compute C (FLOPs)", "N": "parameters N", "D": "tokens D"}.get(x, x))
        ax.set_ylabel("loss")
        ax.set_title(f"Predicted loss ({self.prob:.0%}: thick curve, thin new run)", fontsize=10)
        ax.legend(fontsize=7)

    def _plot_alloc(self, ax, colour, x):
        c = self.allocations.index.to_numpy(dtype=float)
        for name in self.allocations.columns.get_level_values(0).unique():
            a = self.allocations[name]
            ax.plot(c, a["N_median"], "-o", ms=3, color=colour[name], label=name)
            ax.fill_between(c, a["N_lower"], a["N_upper"], color=colour[name], alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("budget C (FLOPs)")
        ax.set_ylabel("compute-optimal N")
        ax.set_title(f"Optimal model size ({self.prob:.0%} band)", fontsize=10)
        ax.legend(fontsize=7)

    def _plot_params(self, ax, colour, x):
        est = self.params.xs("estimate", axis=1, level=1).astype(float)
        names = [p for p in est.index if (est.loc[p] > 0).any()]
        # each parameter is shown relative to the first method that estimates it
        ref = np.array([est.loc[p][est.loc[p] > 0].iloc[0] for p in names])
        ref_of = {p: est.loc[p][est.loc[p] > 0].index[0] for p in names}
        methods = list(est.columns)
        for i, name in enumerate(methods):
            ys = np.arange(len(names)) + 0.8 * (i - (len(methods) - 1) / 2) / max(len(methods), 1)
            e = self.params.loc[names, (name, "estimate")].to_numpy(dtype=float) / ref
            lo = self.params.loc[names, (name, "lower")].to_numpy(dtype=float) / ref
            hi = self.params.loc[names, (name, "upper")].to_numpy(dtype=float) / ref
            has = np.isfinite(lo) & np.isfinite(hi)
            ax.errorbar(e[has], ys[has], xerr=[e[has] - lo[has], hi[has] - e[has]], fmt="none", ecolor=colour[name])
            ax.plot(e, ys, "o", ms=4, color=colour[name], label=name)
        ax.set_yticks(np.arange(len(names)), names)
        ax.axvline(1.0, color="0.6", lw=0.8)
        ax.set_xscale("log")
        first = methods[0]
        others = sorted({v for v in ref_of.values() if v != first})
        ax.set_xlabel(f"relative to {first}" + (f" (or {', '.join(others)})" if others else ""))
        ax.set_title(f"Parameters ({self.prob:.0%} intervals)", fontsize=10)
        ax.invert_yaxis()
        ax.legend(fontsize=7)


@renamed(budgets="budget")
def compare(fits, new_runs=None, budget=None, *, prob=0.9, columns=None) -> Comparison:
    """Compare fits side by side: parameters, predictions at new runs, allocations at budgets.

    Parameters
    ----------
    fits : dict of name -> fit, or list of fits
        :class:`~bayescale.fitting.fit.ScalingFit`, :class:`~bayescale.fitting.point.PointFit`,
        :class:`~bayescale.fitting.point.IsoFLOPFit`,
        :class:`~bayescale.fitting.envelope_fit.Approach1Fit` (parameters and allocations only).
        A list gets names from :func:`method_name`.
    new_runs : DataFrame, dict of arrays, RunData or path, optional
        Runs to predict (with a ``loss`` column, observed losses are shown).
    budget : float or sequence of float, optional
        Compute budgets (FLOPs) for the allocation table (formerly ``budgets=``).
    prob : float, default 0.9
        Probability of every interval (equal-tailed).
    columns : dict, optional
        Column renaming for `new_runs`, as in :func:`bayescale.load_runs`.

    Returns
    -------
    Comparison
        ``.methods`` (one row per method, with ``converged``), ``.params``,
        ``.predictions``, ``.allocations`` (a column block per method) and
        ``.plot()``.

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
    >>> a3 = bs.Approach3().fit(runs)
    >>> ls = bs.LeastSquares().fit(runs)
    >>> cmp = bs.compare({"Approach 3": a3, "LS": ls}, new_runs={"N": [70e9], "D": [1.4e12]}, budget=[1e24])
    >>> cmp.params.xs("estimate", axis=1, level=1).loc["alpha"].round(3).tolist()
    [0.347, 0.36]
    >>> cmp.allocations.columns.get_level_values(0).unique().tolist()
    ['Approach 3', 'LS']
    """
    _check_prob(prob)
    named = _named(fits)
    params = pd.concat({name: _param_rows(fit, prob) for name, fit in named.items()}, axis=1)
    params.index.name = "parameter"
    params.columns.names = ["method", "stat"]

    predictions, runs = None, None
    if new_runs is not None:
        predicting = {n: f for n, f in named.items() if _can_predict(f)}
        needed = sorted({i for f in predicting.values() for i in f.law.inputs})
        runs = load_runs(new_runs, columns=columns, require=needed, require_loss=False)
        frame = runs.frame
        keys = [c for c in ("N", "D", "C", "U") if c in frame]
        blocks = {}
        cols = ["loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"]
        for name, fit in predicting.items():
            blocks[name] = fit.predict(runs, prob=prob)[cols].reset_index(drop=True)
        if "loss" in frame:
            blocks["data"] = pd.DataFrame({"observed_loss": frame["loss"].to_numpy()})
        predictions = pd.concat(blocks, axis=1)
        predictions.index = pd.MultiIndex.from_frame(frame[keys].reset_index(drop=True))
        predictions.columns.names = ["method", "stat"]

    allocations = None
    if budget is not None:
        blocks = {}
        for name, fit in named.items():
            table = fit.allocate(budget, prob=prob)
            keep = [c for c in table.columns if c.rsplit("_", 1)[-1] in ("median", "lower", "upper")]
            keep.append("converged")
            blocks[name] = table.set_index("C")[keep]
        allocations = pd.concat(blocks, axis=1)
        allocations.columns.names = ["method", "stat"]
    return Comparison(named, params, predictions, allocations, prob, runs, budget)
