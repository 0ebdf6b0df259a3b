"""Kaplan's trends and where they cross; the same picture for the Chinchilla law.

Kaplan et al. 2020, section 6.3 ("Contradictions and a conjecture"): three
trends measured on small runs cannot all continue.

* ``L(C_min)``: the loss of the compute-efficient frontier, a power law in
  compute (theirs: ``C^-0.050``). Here: the Bayesian ``power_c`` law
  ``E + K / C^gamma`` fitted on the frontier points
  (:func:`bayescale.runs.envelope.frontier`: the best run per compute bin, kept
  when no run with less compute did better).
* ``L(D)``: the loss reachable with D tokens when the model is large enough
  (theirs: large models trained with early stopping on D-token subsets,
  ``D^-0.095``). Here: the ``power_d`` law ``E + B / D^beta`` fitted on the
  data-limited runs, the lower envelope of loss over tokens
  (``frontier(runs, over="D")``: per bin of log10 D the run of least loss,
  in practice the largest model trained on about D tokens, kept when no run
  with fewer tokens did better). Fitting all runs instead would mix in runs
  limited by their model size, which lie above L(D).
* ``D(C)``: the tokens used along the frontier, ``D_opt = k_D C^b`` (theirs:
  ``C^0.27``), from :class:`bayescale.fitting.envelope_fit.Approach1`.

``L(D(C))`` is a lower bound for any run of compute C that sees D(C)
tokens, so the frontier ``L(C)`` cannot fall below it; when the frontier's
trend falls faster than ``L(D(C))`` the two cross at a compute C* (theirs:
about 1e4 PF-days, N* ~ 1e12, D* ~ 1e12 tokens, loss ~ 1.7 nats) beyond
which the trends cannot both hold. :func:`kaplan_crossover` solves
``L_C(C) = L_D(D(C))`` for each posterior draw (draw s of the ``power_c``
fit, draw s of the ``power_d`` fit and bootstrap resample s of the
D(C) line, cycled where their numbers differ; the three are treated as
independent), by bisection on log C after a scan of ``c_range``. Draws
whose trends do not cross there are counted, not dropped silently:
``crossing_prob`` is the share that cross.

For the Chinchilla law the same picture has no crossover:
:func:`chinchilla_gap` compares the compute-optimal loss ``L(N_opt, D_opt)``
with the data-limited loss at the same tokens ``E + B / D_opt^beta`` (the law
at N -> infinity). Their gap is ``A / N_opt^alpha``, positive for every draw
and every budget: the law keeps the frontier above its own data bound, so
Kaplan's contradiction is a property of pure power laws without a shared
irreducible term, not of the Chinchilla form.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..analysis.contract import check_ci_kind, interval, interval_label
from ..base.errors import OffFrontierWarning, SpecError
from ..core.laws import NUMPY
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_count, check_prob, check_seed
from ..base.units import PF_DAY
from ..base.errors import warn_user
from ..core.allocation import optimal_allocation
from ..runs.data import load_runs
from ..runs.envelope import frontier as envelope_frontier
from ..fitting.envelope_fit import Approach1
from ..core.extrapolation import annotate
from ..fitting.model import ScalingModel
from ..analysis.planning import posterior_params
from ..base.tablecheck import check_table

__all__ = ["kaplan_crossover", "KaplanCrossover", "chinchilla_gap", "OffFrontierWarning", "PF_DAY",
           "OFF_FRONTIER_LOG_LOSS", "frontier_below_fit"]

#: A compute trend is flagged as off the frontier when the frontier runs lie, on median, more than this below its
#: median curve (in log loss; 0.5%, the scatter of the bundled Chinchilla frontier runs about their own trend and
#: more than three standard errors of the median of 20 frontier runs).
OFF_FRONTIER_LOG_LOSS = 0.005
#: Model size standing for N -> infinity in the data-limited loss L(infinity, D) (finite, so laws that broadcast
#: with ``0 * N`` stay finite; A / N^alpha is then below 1e-50 for any alpha above 0.17).
_HUGE_N = 1e300
#: Scan of log10 C per draw before the bisection.
_SCAN_STEP = 0.05


def _flat(draws):
    return np.asarray(draws, dtype=float).reshape(-1)


def _law_named(fit, name, arg):
    if fit.law.name != name:
        raise SpecError(f"{arg} must be a fit of the {name!r} law, got a fit of {fit.law.name!r}")


def _trend_draws(fit, random_seed):
    draws = fit.param_draws(random_seed=random_seed)
    return {k: _flat(draws[k]) for k in fit.law.param_names}


def _log_loss(fit, x, params):
    with np.errstate(all="ignore"):
        return np.asarray(fit.law.log_loss(x, params, NUMPY), dtype=float)


class KaplanCrossover:
    """Result of :func:`kaplan_crossover`: the trends, their fits and where they cross.

    Attributes
    ----------
    table : DataFrame
        One row: ``C``, ``C_pf_days``, ``N``, ``D``, ``loss`` at the crossover,
        each as ``<q>_median``, ``<q>_lower``, ``<q>_upper`` over the draws
        that cross; ``crossing_prob`` (share of draws that cross within
        ``c_range``), ``below_prob`` (share already crossed at its low end),
        ``converged`` (both fits and the D(C) line), ``frontier_below_fit``
        (:func:`frontier_below_fit`), ``compute_fit_on_frontier``, and the extrapolation columns of the
        median crossover (:func:`bayescale.core.extrapolation.annotate`).
        ``attrs``: ``prob``, ``interval``, ``c_range``.
    exponents : DataFrame
        ``gamma`` (L(C) trend), ``beta`` (L(D)), ``b`` (D(C)) and
        ``beta_b`` (exponent of the power part of L(D(C)) in C), with
        ``median``, ``lower``, ``upper``.
    draws : DataFrame
        One row per draw: ``C``, ``N``, ``D``, ``loss`` (NaN where the
        trends do not cross) and ``status`` (``"crosses"``, ``"never"``,
        ``"below"``).
    compute_fit, data_fit : ScalingFit
        The ``power_c`` fit of L(C) and the ``power_d`` fit of L(D).
    tokens_fit : Approach1Fit
        The D(C) line along the frontier.
    frontier, data_limited : DataFrame
        The runs each trend was fitted on (when fitted here).
    runs : RunData
    """

    def __init__(self, table, exponents, draws, compute_fit, data_fit, tokens_fit, frontier, data_limited, runs,
                 params, prob):
        self.table = table
        self.exponents = exponents
        self.draws = draws
        self.compute_fit = compute_fit
        self.data_fit = data_fit
        self.tokens_fit = tokens_fit
        self.frontier = frontier
        self.data_limited = data_limited
        self.runs = runs
        self._params = params
        self.prob = prob

    @property
    def converged(self) -> bool:
        """Both fits and the D(C) line converged."""
        return bool(self.table["converged"].iloc[0])

    def trends(self, c, prob=None) -> pd.DataFrame:
        """The two trends at compute values `c`: L(C) and L(D(C)) with intervals.

        Returns
        -------
        DataFrame
            ``C``, ``D`` (median of D(C)), ``loss_C_median`` / ``_lower`` /
            ``_upper`` (the frontier's trend) and ``loss_D_median`` ... (the
            data-limited trend along D(C)).
        """
        prob = self.prob if prob is None else check_prob(prob)
        c = check_budgets(c, "c")
        p = self._params
        lc = np.log(c)[None, :]
        log_d = p["log_kD"][:, None] + p["b"][:, None] * lc
        lossc = np.exp(_log_loss(self.compute_fit, {"C": np.exp(lc)}, {k: v[:, None] for k, v in p["C"].items()}))
        lossd = np.exp(_log_loss(self.data_fit, {"D": np.exp(log_d)}, {k: v[:, None] for k, v in p["D"].items()}))
        frame = pd.DataFrame({"C": c, "D": np.exp(np.median(log_d, axis=0))})
        for name, v in (("loss_C", lossc), ("loss_D", lossd)):
            med, lo, hi = interval(v, prob)
            frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = med, lo, hi
        frame.attrs.update(prob=prob, interval=interval_label("posterior"))
        return frame

    def plot(self, *, c_range=None, ax=None, figsize=None):
        """L(C) and L(D(C)) with their bands, the runs they were fitted on, and the crossover.

        Parameters
        ----------
        c_range : (float, float), optional
            Compute axis in FLOPs; default from the smallest run to ten times
            the crossover's upper bound (or 1e6 times the largest run).
        ax : matplotlib Axes, optional
        figsize : tuple, optional

        Returns
        -------
        bayescale.base.figure.Figure
        """
        from ..base.figure import figure_and_axes, mark_unconverged

        fig, ax = figure_and_axes(ax, figsize or (7.0, 4.5))
        row = self.table.iloc[0]
        c_runs = self.runs.frame["C"].to_numpy(dtype=float)
        if c_range is None:
            hi = row["C_upper"] * 10 if np.isfinite(row["C_upper"]) else c_runs.max() * 1e6
            c_range = (c_runs.min(), max(hi, c_runs.max() * 10))
        c = np.geomspace(*c_range, 200)
        t = self.trends(c)
        ax.scatter(c_runs, self.runs.frame["loss"], s=6, color="0.8", label="runs", zorder=1)
        ax.plot(t["C"], t["loss_C_median"], color="C0", label="L(C): frontier trend (power_c)")
        ax.fill_between(t["C"], t["loss_C_lower"], t["loss_C_upper"], color="C0", alpha=0.2)
        ax.plot(t["C"], t["loss_D_median"], color="C1", label="L(D(C)): data-limited trend along D(C)")
        ax.fill_between(t["C"], t["loss_D_lower"], t["loss_D_upper"], color="C1", alpha=0.2)
        if self.frontier is not None:
            ax.scatter(self.frontier["C"], self.frontier["loss"], s=18, color="C0", edgecolor="k",
                       label="frontier runs", zorder=3)
        if self.data_limited is not None:
            # placed at the compute at which the frontier uses their tokens: C = (D / k_D)^(1 / b)
            p = self.tokens_fit.params
            c_at = np.exp((np.log(self.data_limited["D"].to_numpy(dtype=float)) - p["log_kD"]) / p["b"])
            ax.scatter(c_at, self.data_limited["loss"], s=18, marker="s", color="C1", edgecolor="k",
                       label="data-limited runs (at C where D(C) = D)", zorder=3)
        if np.isfinite(row["C_median"]):
            ax.axvspan(row["C_lower"], row["C_upper"], color="C3", alpha=0.1)
            ax.plot([row["C_median"]], [row["loss_median"]], "*", ms=14, color="C3", zorder=4,
                    label=f"crossover C* = {row['C_median']:.2g} FLOP ({row['C_pf_days_median']:.2g} PF-days)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel("loss")
        ax.set_title(f"Kaplan's trends: crossover in {row['crossing_prob']:.0%} of draws "
                     f"({self.prob:.0%} {interval_label('posterior')} bands)", fontsize=10)
        ax.legend(fontsize=7)
        mark_unconverged(ax, self)
        return fig

    def __repr__(self) -> str:
        r = self.table.iloc[0]
        head = (f"KaplanCrossover: trends cross in {r['crossing_prob']:.0%} of draws; C* = {r['C_median']:.3g} FLOP "
                f"[{r['C_lower']:.3g}, {r['C_upper']:.3g}] ({r['C_pf_days_median']:.3g} PF-days), "
                f"N* = {r['N_median']:.3g}, D* = {r['D_median']:.3g}, loss* = {r['loss_median']:.3g}")
        flag = "" if r["compute_fit_on_frontier"] else "\n  the power_c fit is NOT on the frontier (see .table)"
        return head + flag + "\nTables: .table, .exponents, .draws; fits: .compute_fit, .data_fit, .tokens_fit; .plot()"


def frontier_below_fit(compute_fit, frontier_points, draws=None) -> float:
    """Median log loss by which the frontier runs lie below a compute trend's median curve.

    About 0 for a trend of the frontier; positive for a trend fitted on runs
    above it (e.g. all runs: on the bundled Chinchilla runs 0.012, against a
    scatter of the frontier runs about their own trend of 0.005).
    """
    if draws is None:
        draws = _trend_draws(compute_fit, None)
    c = frontier_points["C"].to_numpy(dtype=float)
    curve = np.median(_log_loss(compute_fit, {"C": c[None, :]}, {k: v[:, None] for k, v in draws.items()}), axis=0)
    return float(np.median(curve - np.log(frontier_points["loss"].to_numpy(dtype=float))))


def _crossings(g_of, lo, hi, n_draws):
    """Per draw: first C in [lo, hi] (log) where g = log L_C - log L_D changes from > 0 to <= 0.

    Returns log C (NaN where none) and the status of each draw.
    """
    grid = np.arange(lo, hi + _SCAN_STEP, _SCAN_STEP)
    g = g_of(grid[None, :], np.arange(n_draws)[:, None])
    above = g > 0
    status = np.full(n_draws, "never", dtype=object)
    status[~above[:, 0]] = "below"
    down = above[:, :-1] & ~above[:, 1:]
    has = down.any(axis=1) & above[:, 0]
    status[has] = "crosses"
    j = np.argmax(down, axis=1)
    a, b = grid[j], grid[np.minimum(j + 1, len(grid) - 1)]
    rows = np.arange(n_draws)
    for _ in range(50):  # bisection: log C to 2^-50 of a scan step
        m = (a + b) / 2
        pos = g_of(m[:, None], rows[:, None])[:, 0] > 0
        a, b = np.where(pos, m, a), np.where(pos, b, m)
    out = np.where(has, (a + b) / 2, np.nan)
    return out, status


def kaplan_crossover(runs, *, data_runs=None, compute_fit=None, data_fit=None, run="run", levels=None, resolution=0.1,
                     bins_per_decade=5, c_range=(None, 1e40), prob=0.9, draws=1000, tune=1000, chains=4,
                     n_boot=1000, random_seed=None, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                     columns=None) -> KaplanCrossover:
    """Fit Kaplan's L(C_min), L(D) and D(C) trends and find the compute where L(C) falls below L(D(C)).

    Parameters
    ----------
    runs : DataFrame, dict of arrays, RunData or path
        Final runs (``N``, ``loss``, ``C`` or ``D``).
    data_runs : DataFrame, dict of arrays, RunData or path, optional
        Runs of separate data-limited experiments (Kaplan et al.: large
        models trained with early stopping on D-token subsets); L(D) is fitted
        on their lower envelope over tokens. Default: `runs`.
    compute_fit : ScalingFit or PointFit, optional
        A fit of the ``power_c`` law to use as L(C); default: fitted here on
        the frontier of `runs`. A fit whose curve lies above the frontier
        (the frontier runs below it by more than :data:`OFF_FRONTIER_LOG_LOSS`
        on median, :func:`frontier_below_fit`; e.g. a fit on all runs) is
        flagged: :class:`OffFrontierWarning`, ``compute_fit_on_frontier``
        False.
    data_fit : ScalingFit or PointFit, optional
        A fit of the ``power_d`` law to use as L(D); default: fitted here on
        the data-limited runs (the lower envelope of loss over tokens).
    run, levels, resolution, bins_per_decade
        Binning of the envelopes (:func:`bayescale.runs.envelope.frontier`).
    c_range : (float or None, float), default (None, 1e40)
        Compute range searched for the crossover, FLOPs; ``None``: the
        smallest run's compute.
    prob : float, default 0.9
    draws, tune, chains : int
        Sampling of the fits made here (:meth:`ScalingModel.fit`).
    n_boot : int, default 1000
        Bootstrap resamples of the D(C) line.
    random_seed : int, optional
        Seed of the fits, the bootstrap and the parameter draws.
    flops_per_param_token : float, default 6
        N* = C* / (k D*).
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    KaplanCrossover

    Examples
    --------
    >>> import bayescale as bs
    >>> res = bs.trends.kaplan_crossover(bs.datasets.load_chinchilla(drop_outliers=True),
    ...                                  random_seed=0)  # doctest: +SKIP
    >>> res.table[["C_median", "C_lower", "C_upper", "crossing_prob"]]  # doctest: +SKIP
    """
    prob = check_prob(prob)
    random_seed = check_seed(random_seed)
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains), ("n_boot", n_boot)):
        check_count(v, name)
    lo, hi = _c_range(c_range)
    if compute_fit is not None:
        _law_named(compute_fit, "power_c", "compute_fit")
    if data_fit is not None:
        _law_named(data_fit, "power_d", "data_fit")
    data = load_runs(runs, columns=columns, require=("N", "D", "C"))
    k = float(flops_per_param_token)
    lo = float(data.frame["C"].min()) if lo is None else lo
    if lo >= hi:
        raise SpecError(f"c_range high end {hi:.3g} lies below the smallest run's compute {lo:.3g}")
    front, limited = _envelopes(data, data_runs, columns, run, levels, resolution, bins_per_decade)
    tokens_fit = Approach1(run=run, levels=levels, resolution=resolution, bins_per_decade=bins_per_decade,
                           n_boot=n_boot, random_seed=random_seed, flops_per_param_token=k).fit(data)
    settings = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    fitted_front, fitted_limited = None, None
    if compute_fit is None:
        fitted_front = front
        compute_fit = ScalingModel("power_c").fit(front[["N", "D", "C", "loss"]], **settings)
    if data_fit is None:
        fitted_limited = limited
        data_fit = ScalingModel("power_d").fit(limited[["N", "D", "C", "loss"]], **settings)

    pc = _trend_draws(compute_fit, random_seed)
    pd_ = _trend_draws(data_fit, random_seed)
    below = frontier_below_fit(compute_fit, front, pc)
    on_frontier = below <= OFF_FRONTIER_LOG_LOSS
    if not on_frontier:
        warn_user(OffFrontierWarning(
            f"compute_fit: the frontier runs lie {below:.1%} (median, in log loss) below its curve, more than "
            f"{OFF_FRONTIER_LOG_LOSS:.1%}: it is not a trend of the compute-efficient frontier (was it fitted on all "
            f"runs?); fit the power_c law on bayescale.runs.envelope.frontier(runs), or leave compute_fit=None"),
            stacklevel=2)
    params = _joint_draws(pc, pd_, tokens_fit.line_draws())
    draws_table = _crossover_draws(compute_fit, data_fit, params, lo, hi, k)
    row = _crossover_row(draws_table, prob)
    row["converged"] = bool(compute_fit.converged and data_fit.converged and tokens_fit.converged)
    row["frontier_below_fit"] = below
    row["compute_fit_on_frontier"] = bool(on_frontier)
    table = pd.DataFrame([row])
    annotate(table, data, n="N_median", d="D_median", c="C_median", flops_per_param_token=k,
             what="kaplan_crossover", stacklevel=2)
    table.attrs.update(prob=prob, interval=interval_label("posterior"), c_range=(lo, hi))

    ex = {"gamma": params["C"]["gamma"], "beta": params["D"]["beta"], "b": params["b"],
          "beta_b": params["D"]["beta"] * params["b"]}
    exponents = pd.DataFrame([(name, *map(float, interval(v, prob))) for name, v in ex.items()],
                             columns=["parameter", "median", "lower", "upper"]).set_index("parameter")
    exponents.attrs.update(prob=prob, interval=interval_label("posterior"))
    return KaplanCrossover(table, exponents, draws_table, compute_fit, data_fit, tokens_fit, fitted_front,
                           fitted_limited, data, params, prob)


def _c_range(c_range):
    """The searched compute range's ends, checked: (low or None, high)."""
    if not (isinstance(c_range, (tuple, list)) and len(c_range) == 2):
        raise SpecError(f"c_range must be a pair (low, high) of FLOPs (low may be None), got {c_range!r}")
    hi = float(check_budgets(c_range[1], "c_range[1]")[0])
    if c_range[0] is None:
        return None, hi
    lo = float(check_budgets(c_range[0], "c_range[0]")[0])
    if lo >= hi:
        raise SpecError(f"c_range must have low < high, got {c_range!r}")
    return lo, hi


def _envelopes(data, data_runs, columns, run, levels, resolution, bins_per_decade):
    """The compute-efficient frontier of `data` and the lower envelope over tokens of the data-limited runs."""
    run_col = run if run is not None and run in data.frame.columns else None
    front = envelope_frontier(data, levels=levels, resolution=resolution, bins_per_decade=bins_per_decade,
                              run=run_col)
    if data_runs is None:
        return front, envelope_frontier(data, over="D", bins_per_decade=bins_per_decade, run=run_col)
    more = load_runs(data_runs, columns=columns, require=("N", "D", "C"))
    return front, envelope_frontier(more, over="D", bins_per_decade=bins_per_decade,
                                    run=run if run is not None and run in more.frame.columns else None)


def _joint_draws(pc, pd_, line) -> dict:
    """The L(C), L(D) and D(C) draws side by side, the shorter sets cycled to the longest trend's length."""
    n_draws = max(len(next(iter(pc.values()))), len(next(iter(pd_.values()))))

    def cycle(v):
        return v[np.arange(n_draws) % len(v)]

    return {"C": {k_: cycle(v) for k_, v in pc.items()}, "D": {k_: cycle(v) for k_, v in pd_.items()},
            "log_kD": cycle(line["log_kD"]), "b": cycle(line["b"])}


def _crossover_draws(compute_fit, data_fit, params, lo, hi, k) -> pd.DataFrame:
    """Per draw: the compute where L(C) falls below L(D(C)) in [lo, hi], its N, D and loss, and the status."""
    n_draws = len(params["b"])

    def g_of(log10_c, rows):
        lc = log10_c * np.log(10)
        log_d = params["log_kD"][rows] + params["b"][rows] * lc
        a = _log_loss(compute_fit, {"C": np.exp(lc)}, {k_: v[rows] for k_, v in params["C"].items()})
        b = _log_loss(data_fit, {"D": np.exp(log_d)}, {k_: v[rows] for k_, v in params["D"].items()})
        return a - b

    log10_c, status = _crossings(g_of, np.log10(lo), np.log10(hi), n_draws)
    c_star = 10 ** log10_c
    d_star = np.exp(params["log_kD"] + params["b"] * np.log(c_star))
    loss_star = np.exp(_log_loss(compute_fit, {"C": c_star}, params["C"]))
    return pd.DataFrame({"C": c_star, "N": c_star / (k * d_star), "D": d_star, "loss": loss_star,
                         "status": status})


def _crossover_row(draws_table, prob) -> dict:
    """Medians and intervals of the crossover over the draws that cross, and the shares that cross or stay below."""
    status = draws_table["status"].to_numpy()
    crosses = status == "crosses"
    row = {}
    c_star = draws_table["C"].to_numpy()
    for q, v in (("C", c_star), ("C_pf_days", c_star / PF_DAY), ("N", draws_table["N"].to_numpy()),
                 ("D", draws_table["D"].to_numpy()), ("loss", draws_table["loss"].to_numpy())):
        if crosses.any():
            med, l_, u_ = interval(np.log(v[crosses]), prob)
            row.update({f"{q}_median": float(np.exp(med)), f"{q}_lower": float(np.exp(l_)),
                        f"{q}_upper": float(np.exp(u_))})
        else:
            row.update({f"{q}_median": np.nan, f"{q}_lower": np.nan, f"{q}_upper": np.nan})
    row["crossing_prob"] = float(crosses.mean())
    row["below_prob"] = float((status == "below").mean())
    return row


def chinchilla_gap(fit, budget, *, prob=0.9, ci_kind="eti", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                   random_seed=None) -> pd.DataFrame:
    """Compute-optimal loss against the data-limited loss at the same tokens, for any fit of a law in (N, D).

    At each budget and for each parameter draw: the compute-optimal plan
    ``(N_opt, D_opt)`` (:func:`bayescale.core.allocation.optimal_allocation`), its
    loss ``L(N_opt, D_opt)``, the data-limited loss ``L(infinity, D_opt)``
    (for the Chinchilla law ``E + B / D_opt^beta``) and their gap (for the
    Chinchilla law ``A / N_opt^alpha``, positive for every draw: the two never
    cross, unlike Kaplan's trends; see the module notes). The law is taken
    as known (no form uncertainty).

    Parameters
    ----------
    fit : ScalingFit or PointFit
        A fit of a law with inputs N and D (e.g. ``chinchilla``).
    budget : float or sequence of float
        Compute budgets in FLOPs.
    prob : float, default 0.9
    ci_kind : {"eti", "hdi"}
    flops_per_param_token : float, default 6
    random_seed : int, optional
        Seed of the parameter draws (fits whose draws are random).

    Returns
    -------
    DataFrame
        One row per budget: ``C``, ``N_median``, ``D_median`` (medians of the
        optimal plans), then ``loss_*``, ``data_limited_loss_*`` and ``gap_*``
        (``_median``, ``_lower``, ``_upper``), ``gap_positive_prob`` (share of
        draws with a positive gap), the extrapolation columns and
        ``converged``. ``attrs``: ``prob``, ``interval``, ``law``.

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.Approach3().fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> gap = chinchilla_gap(fit, [1e21, 1e24])
    >>> gap["gap_median"].round(3).tolist(), gap["gap_positive_prob"].tolist()
    ([0.25, 0.073], [1.0, 1.0])
    """
    prob = check_prob(prob)
    ci_kind = check_ci_kind(ci_kind)
    c = check_budgets(budget)
    if not {"N", "D"} <= set(fit.law.inputs) or set(fit.law.inputs) - {"N", "D"}:
        raise SpecError(f"chinchilla_gap needs a fit of a law in N and D (e.g. 'chinchilla'); the fit's law "
                        f"{fit.law.name!r} has inputs {', '.join(fit.law.inputs)}")
    params = posterior_params(fit, random_seed=random_seed)
    flat = {k: _flat(v)[:, None] for k, v in params.items()}
    out = optimal_allocation(fit.law, {k: v[:, 0] for k, v in flat.items()}, c,
                             flops_per_param_token=flops_per_param_token)
    with np.errstate(all="ignore"):
        limited = np.exp(np.asarray(fit.law.log_loss({"N": np.full_like(out["D"], _HUGE_N), "D": out["D"]},
                                                     flat, NUMPY), dtype=float))
    gap = out["loss"] - limited
    frame = pd.DataFrame({"C": c, "N_median": np.exp(np.median(np.log(out["N"]), axis=0)),
                          "D_median": np.exp(np.median(np.log(out["D"]), axis=0))})
    for name, v in (("loss", out["loss"]), ("data_limited_loss", limited), ("gap", gap)):
        med, lo, hi = interval(v, prob, ci_kind)
        frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = med, lo, hi
    frame["gap_positive_prob"] = np.mean(gap > 0, axis=0)
    annotate(frame, fit.runs, n="N_median", d="D_median", flops_per_param_token=flops_per_param_token,
             what="chinchilla_gap", stacklevel=2)
    frame["converged"] = bool(fit.converged)
    frame.attrs.update(prob=prob, interval=interval_label(fit.draws_kind, ci_kind), law=fit.law.name)
    check_table(frame, "chinchilla_gap", plan=("N_median", "D_median"), stacklevel=2,
                problems=fit.table_problems("chinchilla_gap"))
    return frame
