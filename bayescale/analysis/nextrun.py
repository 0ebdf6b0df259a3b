"""Which small run to train next: the expected shrinkage of an interval per FLOP, for any fit.

A ladder of small runs leaves the answer to a planning question uncertain:
the compute-optimal model size at a budget, the loss of the compute-optimal
run there, or the compute a target loss needs. :func:`recommend_runs` ranks
candidate runs by how much one more run is expected to narrow the
``prob`` interval of that answer, per FLOP it costs.

Preposterior analysis, without refitting (Raiffa & Schlaifer 1961; the
importance-sampling shortcut of Vehtari et al.'s PSIS-LOO run forwards):

1. For a candidate run x, draw ``outcomes`` losses y_s from the fit's
   posterior predictive at x (a parameter draw, then that draw's run-to-run
   noise: :func:`bayescale.analysis.predictive.predict_draws`).
2. For each y_s, reweight the fit's existing draws theta_j by the likelihood
   of y_s under each, ``w_j ∝ p(y_s | theta_j)``
   (:meth:`~bayescale.analysis.contract.ScalingResult.log_likelihood_draws`), Pareto-
   smoothed (:func:`arviz_stats` PSIS). The reweighted draws stand for the
   posterior after the run; the draw that generated y_s is left out, so a
   draw never confirms itself.
3. The weighted equal-tailed interval of the quantity (numpy's weighted
   quantiles) has a width; its mean over the outcomes is the expected width
   after the run, its shortfall from today's width the expected shrinkage.

Beyond the fitted runs the quantities carry the model's form uncertainty
(:mod:`bayescale.core.form`), which grows with the distance from the fitted range.
A candidate outside that range extends it, so its expected width is taken
with the extended range: a refit with the run would report exactly that.

Reweighting is only as good as the overlap of the old and new posteriors. Each
row reports the effective sample size of its weights (Kish: ``1 / sum w^2``,
smallest and median over the outcomes) and the largest Pareto k; rows where
more than :data:`UNRELIABLE_SHARE` of the outcomes have fewer than
:data:`REWEIGHTED_ESS_MIN` effective draws or a Pareto k above :data:`PARETO_K_MAX` are
marked ``reliable = False`` and warned about
(:class:`~bayescale.base.errors.ImportanceWeightWarning`): there the run would teach
more than the existing draws can show, so the expected width is too coarse
(refit with a simulated outcome, or draw more posterior samples). A point fit
without bootstrap has one parameter value, so no run can narrow its intervals.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..core.allocation import optimal_allocation
from .contract import check_group, interval_label
from ..base.errors import ImportanceWeightWarning
from ..core.extrapolation import Reach, annotate
from ..core.shifts import irreducible_draws, shift_allocation, shift_log_loss
from .planning import allocate_draws, median_plan, posterior_params
from .predictive import log_curve, new_runs, predict_draws
from .risk import SCAN_POINTS
from ..base.units import format_count, format_flops, parse_quantity
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_count, check_prob, check_seed, positive_array
from ..base.errors import warn_user
from .plots import count_axis
from ..core.reweighting import PARETO_K_MAX, REWEIGHTED_ESS_MIN, importance_weights, kish_ess, weighted_interval

__all__ = ["QUANTITIES", "REWEIGHTED_ESS_MIN", "PARETO_K_MAX", "UNRELIABLE_SHARE", "candidate_grid", "recommend_runs",
           "plot_recommendations", "importance_weights", "kish_ess", "weighted_interval"]


#: What a run's value is measured on: the width of the interval of ...
#: ``n_opt``: log10 of the compute-optimal N at ``budget`` (decades);
#: ``loss``: the expected loss of the compute-optimal run at ``budget`` (the risk table's curve band);
#: ``new_run_loss``: the loss of one such training run (its new-run band);
#: ``budget_for``: log10 of the compute at which the compute-optimal expected loss reaches ``target`` (decades).
QUANTITIES = ("n_opt", "loss", "new_run_loss", "budget_for")

#: Units of each quantity's width, for the table's attrs and the figure.
UNITS = {"n_opt": "decades of N", "loss": "loss", "new_run_loss": "loss", "budget_for": "decades of C"}


#: Largest share of a candidate's outcomes whose weights fall short of :data:`REWEIGHTED_ESS_MIN` or :data:`PARETO_K_MAX`
#: for the row to count as reliable: a few outcomes from the posterior's tails always concentrate the weights,
#: and move the mean width over the outcomes little.
UNRELIABLE_SHARE = 0.1


def __getattr__(name):
    if name == "ESS_MIN":  # renamed: it meant something else than bayescale.fitting.fit.ESS_MIN
        import warnings

        warnings.warn("bayescale.analysis.nextrun.ESS_MIN is now REWEIGHTED_ESS_MIN (ESS_MIN will be removed in the next "
                      "release)", DeprecationWarning, stacklevel=2)
        return REWEIGHTED_ESS_MIN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -------------------------------------------------------------- candidates
def candidate_grid(n_range, d_range, *, points=7, max_cost=None,
                   flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> pd.DataFrame:
    """Candidate runs on a log-spaced grid of model sizes N and tokens D.

    Parameters
    ----------
    n_range, d_range : (float, float)
        Smallest and largest N and D (``"100M"``, ``"2B"`` are read too).
    points : int or (int, int), default 7
        Grid points along N and along D.
    max_cost : float, optional
        Drop candidates costing more FLOPs than this.
    flops_per_param_token : float, default 6
        k in the cost ``C = k N D``.

    Returns
    -------
    DataFrame
        ``N``, ``D``, ``C``, one row per candidate.

    Examples
    --------
    >>> grid = candidate_grid((1e8, 1e9), ("2B", "20B"), points=3, max_cost=1e19)
    >>> (grid[["N", "D"]] / 1e9).round(2).to_numpy().tolist()
    [[0.1, 2.0], [0.1, 6.32], [0.32, 2.0]]
    """
    k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
    ranges = {}
    for name, value in (("n_range", n_range), ("d_range", d_range)):
        try:
            low, high = (parse_quantity(v, name) for v in value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be (low, high), two positive numbers, got {value!r}") from exc
        if low > high:
            raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}")
        ranges[name] = (low, high)
    n_pts, d_pts = (points, points) if np.ndim(points) == 0 else tuple(points)
    n_pts, d_pts = check_count(n_pts, "points"), check_count(d_pts, "points")
    n = np.geomspace(*ranges["n_range"], n_pts)
    d = np.geomspace(*ranges["d_range"], d_pts)
    nn, dd = (a.ravel() for a in np.meshgrid(n, d, indexing="ij"))
    frame = pd.DataFrame({"N": nn, "D": dd, "C": k * nn * dd})
    if max_cost is not None:
        frame = frame[frame["C"] <= float(parse_quantity(max_cost, "max_cost"))].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"max_cost={max_cost!r}: every candidate of the grid costs more; the cheapest costs "
                            f"{format_flops(k * n[0] * d[0])}")
    return frame


# -------------------------------------------------------------- quantities
def _check_quantity(quantity, budget, target):
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {', '.join(map(repr, QUANTITIES))}, got {quantity!r}")
    if quantity == "budget_for":
        if target is None:
            raise ValueError("quantity='budget_for' needs target= (the loss to reach), got target=None")
        return None, float(parse_quantity(target, "target"))
    if budget is None:
        raise ValueError(f"quantity={quantity!r} needs budget= (the compute of the planned run, in FLOPs), "
                        "got budget=None")
    c = np.atleast_1d(positive_array(budget, "budget"))
    if c.size != 1:
        raise ValueError(f"budget must be one compute budget, got {budget!r}")
    return float(c[0]), None


def _check_target(floor, target):
    """A target at or below the irreducible loss of most draws: no compute reaches it, no run narrows that."""
    floor = np.asarray(floor, dtype=float).ravel()
    share = float(np.mean(floor >= target))
    if share >= 0.5:
        lo, mid, hi = np.quantile(floor, [0.05, 0.5, 0.95])
        raise ValueError(f"target={target:g} lies at or below the fit's irreducible loss in {share:.0%} of its draws "
                         f"(median {mid:.4g}, 90% interval {lo:.4g} to {hi:.4g}): no compute reaches it, so the "
                         "compute for it has no finite width for a run to narrow; give a target above the "
                         "irreducible loss")


class _Quantity:
    """Draws of the quantity, flat over (chain, draw), with distances measured from a given fitted range."""

    def __init__(self, fit, quantity, budget, target, k, random_seed, group=None):
        self.fit, self.quantity, self.budget, self.target, self.k = fit, quantity, budget, target, k
        self.params = posterior_params(fit, group, random_seed)
        self.floor = irreducible_draws(fit, self.params)
        self._cache = {}
        if quantity in ("loss", "new_run_loss"):
            # The plan is the risk table's compute-optimal plan at the budget, fixed by today's fit: the run to train.
            central = self.params if fit.point_params is None else {
                k_: np.asarray(v, dtype=float) for k_, v in fit.point_params.items()}
            n_opt = optimal_allocation(fit.law, central, [budget], flops_per_param_token=k)["N"]
            n, d = median_plan(np.reshape(n_opt, (-1, 1)), [budget], k)
            self.plan = {"N": n, "D": d, "C": np.array([budget])}
            if "U" in fit.law.inputs:
                self.plan["U"] = d
            self.noise = 0.0
            if quantity == "new_run_loss":
                rng = np.random.default_rng(fit.random_seed if random_seed is None else random_seed)
                draws = fit.param_draws(group, random_seed=random_seed)
                self.noise = np.asarray(fit.noise_draws({k_: np.asarray(v)[..., None] for k_, v in draws.items()},
                                                        (*fit.draw_shape, 1), rng))[..., 0].ravel()
        elif quantity == "budget_for":
            runs = fit.runs.inputs(["N", "D"])
            low = float(np.min(k * runs["N"] * runs["D"])) / 1e3
            self.grid = np.geomspace(low, 1e40, SCAN_POINTS)

    def draws(self, reach) -> np.ndarray:
        key = (tuple(sorted(reach.lower.items())), tuple(sorted(reach.upper.items())))
        if key not in self._cache:
            with np.errstate(all="ignore"):
                self._cache[key] = self._draws(reach)
        return self._cache[key]

    def _draws(self, reach):
        fit, k = self.fit, self.k
        if self.quantity == "n_opt":
            out = optimal_allocation(fit.law, self.params, [self.budget], flops_per_param_token=k)
            out = shift_allocation(fit, out, [self.budget], k, None, self.floor, reach)
            return np.log10(out["N"][..., 0]).ravel()
        if self.quantity in ("loss", "new_run_loss"):
            inputs = {name: self.plan[name] for name in fit.law.inputs}
            log_l = log_curve(fit.law, inputs, {k_: np.asarray(v)[..., None] for k_, v in self.params.items()})
            floor = np.asarray(self.floor, dtype=float)[..., None]
            log_l = shift_log_loss(fit, log_l, self.plan, floor, reach)[..., 0].ravel()
            return np.exp(log_l + self.noise)
        out = optimal_allocation(fit.law, self.params, self.grid, flops_per_param_token=k)
        out = shift_allocation(fit, out, self.grid, k, None, self.floor, reach)
        loss = out["loss"].reshape(-1, self.grid.size)
        return _first_crossing(np.log10(self.grid), loss, self.target)


def _first_crossing(log_c, loss, target) -> np.ndarray:
    """Per row of `loss` (draws x grid), log10 C where it first falls to `target` (linear in log C).

    A draw that never reaches the target on the grid (its irreducible loss lies above it, or the compute needed
    lies beyond the grid's end, 1e40 FLOP) is put at the grid's end: the interval then reaches "not by 1e40 FLOP"
    and its width counts that, as :func:`bayescale.analysis.risk.budget_for` reports such a target.
    """
    below = loss <= target
    hit = below.any(axis=1)
    first = np.argmax(below, axis=1)
    prev = np.maximum(first - 1, 0)
    rows = np.arange(loss.shape[0])
    l0, l1 = loss[rows, prev], loss[rows, first]
    with np.errstate(all="ignore"):
        frac = np.where(l0 > l1, (l0 - target) / (l0 - l1), 0.0)
    out = log_c[prev] + np.clip(np.nan_to_num(frac), 0.0, 1.0) * (log_c[first] - log_c[prev])
    out = np.where(first == 0, log_c[0], out)
    return np.where(hit, out, log_c[-1])


# ----------------------------------------------------------------- ranking
#: Candidates whose tokens per parameter lie more than this factor from the fit's compute-optimal one at their
#: compute are left out of recommend_runs unless asked (tokens_per_param_factor=None).
TOKENS_PER_PARAM_FACTOR = 10.0


def _off_frontier(fit, runs, factor, k, group) -> np.ndarray:
    """Per candidate: its D/N lies more than `factor` from the median compute-optimal D/N at its compute."""
    if factor is None or not {"N", "D"} <= set(fit.law.inputs):
        return np.zeros(runs.n_runs, dtype=bool)

    frame = runs.frame
    c = k * frame["N"].to_numpy(dtype=float) * frame["D"].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # candidates beyond the runs are what is being judged
        alloc = allocate_draws(fit, np.unique(c), flops_per_param_token=k, group=group)
    tpp = np.exp(np.log(alloc["tokens_per_param"]).median(("chain", "draw"))).to_pandas()
    optimum = tpp.reindex(c).to_numpy()
    mine = frame["D"].to_numpy(dtype=float) / frame["N"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.abs(np.log(mine / optimum)) > np.log(factor)
    return np.where(np.isfinite(optimum), off, False)


def recommend_runs(fit, candidates, *, quantity="n_opt", budget=None, target=None, prob=0.9, outcomes=100,
                   psis=True, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, columns=None, group=None,
                   random_seed=None, tokens_per_param_factor=TOKENS_PER_PARAM_FACTOR) -> pd.DataFrame:
    """Rank candidate runs by the expected shrinkage, per FLOP, of the interval of a planning quantity.

    Parameters
    ----------
    fit : ScalingResult
        Any fit (:mod:`bayescale.analysis.contract`); for a fit with groups, see `group`.
    candidates : DataFrame, dict of arrays, RunData or path
        The runs you could train next: the law's inputs (``N``, ``D``; ``C``
        is derived as ``6 N D`` unless given), and optionally a ``cost``
        column (FLOPs or any unit; default ``C``). :func:`candidate_grid`
        makes a grid.
    quantity : {"n_opt", "loss", "new_run_loss", "budget_for"}, default "n_opt"
        Whose interval to narrow (:data:`QUANTITIES`): log10 N_opt at
        `budget`; the expected loss, or one training run's loss, of the
        compute-optimal plan at `budget` (the plan of
        :func:`bayescale.analysis.risk.risk`, fixed by today's fit); or log10 of the
        compute at which the compute-optimal expected loss reaches `target`
        (per draw: the draw's own frontier, with the form uncertainty; a draw
        that never reaches it counts as 1e40 FLOP, the end of the search of
        :func:`bayescale.analysis.risk.budget_for`). The expected width after a run can
        exceed today's (negative shrinkage): for a skewed quantity, outcomes
        that favour its long tail widen the interval more than the others
        narrow it.
    budget : float
        Compute of the planned run (FLOPs); for every quantity but ``budget_for``.
    target : float
        Target loss; for ``budget_for``.
    prob : float, default 0.9
        Probability of the interval whose width is measured.
    outcomes : int, default 100
        Simulated outcomes per candidate. The Monte Carlo error of the
        expected width is the column ``expected_width_se``; the same draws
        generate every candidate's outcomes, so differences between rows are
        more precise than that.
    psis : bool, default True
        Pareto-smooth the importance weights and report their Pareto k.
    flops_per_param_token : float, default 6
        k in ``C = k N D`` for the compute-optimal plans.
    columns : mapping, optional
        Your column names to canonical ones, as for :func:`bayescale.load_runs`.
    group : label, optional
        For a fit with groups (required there): the fitted group the
        candidate runs would join; the quantity is that group's (its N_opt,
        its loss, its compute for the target). The reweighting updates the
        whole posterior (shared and population parameters too), so a run in
        a weakly determined group is worth more than the same run in a group
        the ladder already pins down.
    random_seed : int, optional
        Seed of the outcomes (default the fit's seed).
    tokens_per_param_factor : float or None, default 10
        Leave out candidates whose tokens per parameter lie more than this
        factor from the fit's compute-optimal one (median) at their compute:
        runs far off the frontier teach little about the frontier. ``None``
        keeps every candidate.

    Returns
    -------
    DataFrame
        One row per candidate, best first (largest ``shrinkage_per_flop``;
        candidates expected to narrow the interval by no more than twice the
        Monte Carlo error of their expected width get no ``rank`` and come
        last, cheapest first): ``rank``, the inputs (``N``, ``D``, ``C``), ``cost``, ``width`` (the
        width of today's interval), ``expected_width`` (after the run, mean
        over the outcomes) and ``expected_width_se``, ``shrinkage`` (width -
        expected width, in the quantity's units; what a refit with the run
        would show), ``shrinkage_information`` (the part the run's outcome
        teaches: the same reweighting with the fitted range held as it is)
        and ``shrinkage_range`` (the rest: the form uncertainty shrinking as
        the fitted range grows to hold the run), ``shrinkage_fraction``,
        ``shrinkage_per_flop`` (shrinkage / cost), ``ess_min``,
        ``ess_median`` (Kish effective draws of the weights over the
        outcomes), ``pareto_k_max`` (NaN without `psis`),
        ``unreliable_share`` (share of the outcomes whose weights have fewer
        than :data:`REWEIGHTED_ESS_MIN` effective draws or a Pareto k above
        :data:`PARETO_K_MAX`), ``reliable`` (that share at most
        :data:`UNRELIABLE_SHARE`), the
        candidate's ``beyond_*`` distances from the fitted runs
        (:mod:`bayescale.core.extrapolation`), ``converged`` (the fit's verdict).
        ``attrs``: ``quantity``, ``units`` (of the widths), ``prob``,
        ``tokens_per_param_factor``, ``dropped_off_frontier`` (candidates left
        out),
        ``interval`` (the fit's kind, equal-tailed), ``budget``, ``target``,
        ``outcomes``, ``median``, ``lower``, ``upper`` (today's interval).

    Raises
    ------
    ValueError
        A ``budget_for`` target at or below the irreducible loss of half
        the draws or more (no compute reaches it), an unknown quantity, a
        missing budget or target, a fit with groups
        without a fitted `group` (the message lists them), an outcome count
        below 10.
    DataError
        Unusable candidates (as :func:`bayescale.load_runs` says).

    Examples
    --------
    >>> grid = candidate_grid((1e8, 2e9), (2e9, 4e10), points=5)
    >>> table = fit.recommend_runs(grid, quantity="n_opt", budget=1e23)  # doctest: +SKIP
    >>> table[["N", "D", "shrinkage_fraction", "shrinkage_per_flop", "reliable"]].head(3)  # doctest: +SKIP
    """
    budget, target = _check_quantity(quantity, budget, target)
    prob = check_prob(prob)
    outcomes = check_count(outcomes, "outcomes")
    if outcomes < 10:
        raise ValueError(f"outcomes must be at least 10 simulated outcomes per candidate, got {outcomes}")
    random_seed = check_seed(random_seed)
    if psis not in (True, False):
        raise ValueError(f"psis must be True or False, got {psis!r}")
    k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
    group = _joined_group(fit, group)
    if tokens_per_param_factor is not None:
        tokens_per_param_factor = float(positive_array(tokens_per_param_factor, "tokens_per_param_factor"))
        if not tokens_per_param_factor >= 1:
            raise ValueError(f"tokens_per_param_factor must be None or a number >= 1, got {tokens_per_param_factor!r}")
    runs, dropped, cost = _candidates(fit, candidates, columns, group, tokens_per_param_factor, k)

    q = _Quantity(fit, quantity, budget, target, k, random_seed, group)
    if quantity == "budget_for":
        _check_target(q.floor, target)
    reach = Reach.from_runs(fit.runs)
    current = q.draws(reach)
    if not np.all(np.isfinite(current)):
        raise ValueError(f"the fit's draws of {quantity} are not all finite; see fit.summary()")
    lo0, hi0 = weighted_interval(current, np.full(current.size, 1.0 / current.size), prob)
    rows = _expected_widths(fit, runs, q, current, reach, group, prob, outcomes, psis, random_seed)
    table = _ranked(fit, runs.frame, cost, float(hi0 - lo0), rows)
    table.attrs.update(quantity=quantity, units=UNITS[quantity], prob=prob,
                       interval=interval_label(fit.draws_kind, "eti"), budget=budget, target=target,
                       outcomes=outcomes, median=float(np.quantile(current, 0.5)), lower=float(lo0),
                       upper=float(hi0), law=fit.law.name, group=group,
                       tokens_per_param_factor=tokens_per_param_factor, dropped_off_frontier=int(dropped.sum()))
    _warn_unreliable(table)
    return table


def _joined_group(fit, group):
    """The fitted group (as a string) candidate runs would join; None for a fit without groups."""
    if not fit.hierarchical:
        check_group(fit, group)
        return group
    fitted = [str(g) for g in fit.runs.groups or ()]
    if group is None or str(group) not in fitted:
        raise ValueError(f"recommend_runs on a fit with groups needs group= naming the fitted group the runs "
                         f"would join; got group={group!r}; valid: {', '.join(map(repr, fitted))}")
    return str(group)


def _candidates(fit, candidates, columns, group, factor, k):
    """The candidate runs kept near the frontier, the mask of those left out, and the kept runs' costs."""
    runs = new_runs(fit, candidates, columns)
    if group is not None:
        runs = new_runs(fit, runs.frame.assign(group=group))
    dropped = _off_frontier(fit, runs, factor, k, group)
    if dropped.any():
        if dropped.all():
            raise ValueError(f"recommend_runs: every candidate's tokens per parameter lies more than a factor "
                             f"{factor:g} from the fit's compute-optimal one at its compute; widen "
                             "tokens_per_param_factor, or None to keep every candidate")
        runs = new_runs(fit, runs.frame.loc[~dropped].reset_index(drop=True))
    frame = runs.frame
    if "cost" in frame:
        cost = positive_array(frame["cost"].to_numpy(), "cost column of candidates")
    elif "C" in frame:
        cost = frame["C"].to_numpy(dtype=float)
    else:
        raise ValueError("candidates need a C or cost column (or N and D, C = 6 N D) to rank by cost")
    return runs, dropped, cost


def _expected_widths(fit, runs, q, current, reach, group, prob, outcomes, psis, random_seed) -> list:
    """Per candidate: the interval's expected width after its run (over simulated outcomes) and the weights' health."""
    m = current.size
    inputs = runs.inputs(fit.law.inputs)
    rng = np.random.default_rng(fit.random_seed if random_seed is None else random_seed)
    seed = int(rng.integers(2**31))
    y = np.log(predict_draws(fit, runs, random_seed=seed)["new_run_loss"].values.reshape(m, runs.n_runs))
    pick = rng.choice(m, size=outcomes, replace=outcomes > m)
    rows = []
    for i in range(runs.n_runs):
        one = {name: np.repeat(inputs[name][i], outcomes) for name in fit.law.inputs}
        if group is not None:
            one["group"] = np.repeat(group, outcomes)
        ll = np.asarray(fit.log_likelihood_draws({**one, "loss": np.exp(y[pick, i])}), dtype=float)
        ll = ll.reshape(m, outcomes).T  # (outcome, draw)
        ll[np.arange(outcomes), pick] = -np.inf  # the draw that made the outcome does not vouch for it
        ll = np.where(np.isfinite(ll), ll, np.min(np.where(np.isfinite(ll), ll, np.inf), axis=1, keepdims=True))
        w, k_hat = importance_weights(ll, psis=psis)
        # with the run, the fitted range grows to hold it; only the form uncertainty depends on that range
        grown = reach if fit.form_uncertainty is None else Reach.from_frame(
            pd.concat([fit.runs.frame, runs.frame.iloc[[i]]], ignore_index=True))
        lo, hi = weighted_interval(q.draws(grown), w, prob)
        # the same weights on today's draws: what the run's outcome teaches, the fitted range held as it is
        lo_i, hi_i = (lo, hi) if grown is reach else weighted_interval(current, w, prob)
        ess = kish_ess(w)
        with np.errstate(invalid="ignore"):
            widths = hi - lo
            se = float(np.std(widths, ddof=1) / np.sqrt(outcomes)) if np.all(np.isfinite(widths)) else np.nan
        rows.append(dict(expected_width=float(np.mean(widths)), expected_width_se=se,
                         expected_width_information=float(np.mean(hi_i - lo_i)),
                         ess_min=float(ess.min()), ess_median=float(np.median(ess)),
                         pareto_k_max=float(np.nanmax(k_hat)) if psis and not np.isnan(k_hat).all() else np.nan,
                         unreliable_share=float(np.mean((ess < REWEIGHTED_ESS_MIN) | (k_hat > PARETO_K_MAX)))))
    return rows


def _ranked(fit, frame, cost, width0, rows) -> pd.DataFrame:
    """The candidates' table: inputs, cost, widths and shrinkages, best first; runs worth nothing unranked, last."""
    table = frame[[c for c in ("N", "D", "C", "U") if c in frame]].reset_index(drop=True)
    table["cost"] = cost
    table["width"] = width0
    table = pd.concat([table, pd.DataFrame(rows)], axis=1)
    table["shrinkage"] = table["width"] - table["expected_width"]
    table["shrinkage_information"] = table["width"] - table["expected_width_information"]
    table["shrinkage_range"] = table["shrinkage"] - table["shrinkage_information"]
    table["shrinkage_fraction"] = table["shrinkage"] / width0 if width0 > 0 else 0.0
    table["shrinkage_per_flop"] = table["shrinkage"] / table["cost"]
    table = table[["N", "D", "C", *(["U"] if "U" in table else []), "cost", "width", "expected_width",
                   "expected_width_se", "shrinkage", "shrinkage_information", "shrinkage_range",
                   "shrinkage_fraction", "shrinkage_per_flop", "ess_min", "ess_median", "pareto_k_max",
                   "unreliable_share"]]
    table["reliable"] = table["unreliable_share"] <= UNRELIABLE_SHARE
    annotate(table, fit.runs, what="recommend_runs", stacklevel=4,
             form=fit.form_uncertainty, bands=fit.draws_kind != "point")
    table["converged"] = bool(fit.converged)
    # A run expected to narrow nothing (or, within the Monte Carlo error of the reweighting, to widen) has no
    # value to rank: it gets no rank and goes last, cheapest first.
    worth = table["shrinkage"] > 2 * table["expected_width_se"].fillna(0.0)
    table = pd.concat([table[worth].sort_values("shrinkage_per_flop", ascending=False, kind="stable"),
                       table[~worth].sort_values("cost", kind="stable")]).reset_index(drop=True)
    table.insert(0, "rank", pd.array(list(range(1, int(worth.sum()) + 1)) + [pd.NA] * int((~worth).sum()),
                                     dtype="Int64"))
    return table


def _warn_unreliable(table) -> None:
    """Warn when candidates' expected widths rest on few effective draws, naming the first such candidate."""
    bad = ~table["reliable"]
    if not bad.any():
        return
    worst = table.loc[bad].iloc[0]
    which = "unranked" if pd.isna(worst["rank"]) else f"rank {int(worst['rank'])}"
    warn_user(
        f"recommend_runs: {int(bad.sum())} of {len(table)} candidates rest on few effective draws: for more "
        f"than {UNRELIABLE_SHARE:.0%} of their outcomes the reweighted draws have fewer than {REWEIGHTED_ESS_MIN} "
        f"effective draws or a Pareto k above {PARETO_K_MAX} (up to {table.loc[bad, 'unreliable_share'].max():.0%}), "
        f"e.g. the candidate {which} ({format_count(worst['N'])} params on {format_count(worst['D'])} tokens): such "
        "a run would teach more than the existing draws can show, so its expected width is coarse; draw more "
        "posterior samples or refit with a simulated outcome", ImportanceWeightWarning, stacklevel=4)


# ------------------------------------------------------------------ figure
def plot_recommendations(fit, table, *, ax=None):
    """Expected shrinkage per FLOP of each candidate over the (N, D) plane, with the fitted runs.

    Parameters
    ----------
    fit : ScalingResult
        The fit the table was made from (its runs are drawn).
    table : DataFrame
        A table of :func:`recommend_runs` (needs ``N``, ``D``, ``shrinkage_per_flop``, ``rank``).
    ax : matplotlib Axes, optional

    Returns
    -------
    bayescale.base.figure.Figure
        Candidates coloured by expected shrinkage per FLOP (grey: none
        expected), candidates with unreliable weights ringed, the fitted runs
        as crosses, the top candidate starred, lines of equal compute dotted.

    Examples
    --------
    >>> fig = plot_recommendations(fit, fit.recommend_runs(grid, budget=1e23))  # doctest: +SKIP
    """
    from matplotlib.colors import LogNorm

    from ..base.figure import figure_and_axes, mark_unconverged

    need = {"N", "D", "shrinkage_per_flop", "rank"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"table must be a table of recommend_runs with columns {sorted(need)}")
    fig, ax = figure_and_axes(ax, size=(7.0, 5.2))
    runs = fit.runs.inputs(["N", "D"])
    value = table["shrinkage_per_flop"].to_numpy(dtype=float)
    good = np.isfinite(value) & (value > 0)
    ax.scatter(table["N"][~good], table["D"][~good], s=40, color="0.8", label="no shrinkage expected", zorder=2)
    if good.any():
        norm = LogNorm(vmin=value[good].min(), vmax=value[good].max()) if value[good].max() > value[good].min() \
            else None
        points = ax.scatter(table["N"][good], table["D"][good], c=value[good], s=60, cmap="viridis", norm=norm,
                            zorder=3, label="candidates")
        units = table.attrs.get("units", "")
        fig.colorbar(points, ax=ax, label=f"expected shrinkage per FLOP ({units})" if units else
                     "expected shrinkage per FLOP")
    if "reliable" in table:
        weak = ~table["reliable"].to_numpy(dtype=bool)
        if weak.any():
            ax.scatter(table["N"][weak], table["D"][weak], s=130, facecolors="none", edgecolors="C3", zorder=4,
                       label="few effective draws")
    ax.scatter(runs["N"], runs["D"], marker="x", color="k", s=20, zorder=5, label="fitted runs")
    top = table.loc[table["rank"].idxmin()]
    ax.scatter([top["N"]], [top["D"]], marker="*", s=320, color="C1", edgecolors="k", zorder=6,
               label=f"best: {format_count(top['N'])} params, {format_count(top['D'])} tokens")
    ax.set_xscale("log")
    ax.set_yscale("log")
    n_all = np.concatenate([runs["N"], table["N"].to_numpy(dtype=float)])
    d_all = np.concatenate([runs["D"], table["D"].to_numpy(dtype=float)])
    n_line = np.geomspace(n_all.min() / 1.5, n_all.max() * 1.5, 50)
    for c in 10.0 ** np.arange(np.floor(np.log10(6 * n_all.min() * d_all.min())),
                               np.ceil(np.log10(6 * n_all.max() * d_all.max())) + 1):
        ax.plot(n_line, c / (6 * n_line), color="0.85", linestyle=":", linewidth=0.8, zorder=1)
    ax.set_xlim(n_all.min() / 1.5, n_all.max() * 1.5)
    ax.set_ylim(d_all.min() / 1.5, d_all.max() * 1.5)
    count_axis(ax.xaxis)
    count_axis(ax.yaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    what = {"n_opt": "N_opt", "loss": "loss at the optimum", "new_run_loss": "new-run loss at the optimum",
            "budget_for": "compute for the target"}.get(table.attrs.get("quantity"), "the quantity")
    at = table.attrs.get("budget")
    where = f" at {format_flops(at)}" if at else (f" (target {table.attrs['target']:g})"
                                                  if table.attrs.get("target") else "")
    ax.set_title(f"Next run: expected narrowing of the {table.attrs.get('prob', 0.9):.0%} interval of\n"
                 f"{what}{where}, per FLOP (dotted: equal compute)", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    mark_unconverged(ax, fit)
    return fig
