"""Budget risk: predictive loss of planned runs, P(loss <= target), the compute a target needs.

Definitions used throughout:

- The *compute-optimal plan* at budget C is the posterior-median optimal
  model size ``N = median(N_opt)`` with ``D = C / (k N)``: one concrete run
  you can train. Its risk includes the uncertainty of the allocation itself
  (the ``penalty`` columns show what not knowing the true optimum costs).
- The *curve* band is the posterior of the law's expected loss at the plan;
  the *new run* band adds run-to-run noise (the likelihood's sigma and, for
  the Student-t likelihood, nu), as in :meth:`ScalingFit.predict`.
- ``P(loss <= target)`` is computed from the **new-run** predictive
  distribution: the probability that one training run of that plan reaches
  the target.
- A probability is computed only over draws that are all finite numbers.
  Where some draws are NaN or infinite (the law overflows or is undefined
  at that plan), the probability is NaN, never the share of the finite
  draws, and a :class:`~bayescale.base.errors.NonFiniteWarning` names the rows
  (in :func:`budget_for`: the target, whose ``C`` is then NaN).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.allocation import optimal_allocation
from .planning import median_plan, posterior_params
from .conflicts import caveats
from .contract import interval, interval_label, two_bands
from ..base.validation import (FLOPS_PER_PARAM_TOKEN, check_budgets as _budgets, check_prob as _check_prob,
                               positive_array as _positive, check_seed as _check_seed)
from ..base.errors import DegenerateResultWarning, ExtrapolationWarning, NonFiniteWarning
from ..core.extrapolation import annotate, warn_extrapolation
from ..core.form import REACH
from ..core.shifts import irreducible_draws, shift_log_loss
from ..core.laws import NUMPY
from .predictive import predict_draws
from ..base.tablecheck import check_table, draw_problems, rewarn
from ..base.units import format_flops, format_plan, parse_plan, parse_quantity
from ..base.errors import warn_user

__all__ = ["risk", "risk_draws", "risk_frame", "budget_for", "plan_log_loss", "first_compute", "search_range",
           "planned_runs", "compute_optimal_plan"]


# ----------------------------------------------------------------- helpers
def _plans(plan) -> list:
    """``(N, D)``, ``"70B:1.4T"`` or a sequence of them -> list of (N, D)."""
    if plan is None:
        return []
    if isinstance(plan, str):
        return [parse_plan(plan)]
    if isinstance(plan, Sequence) and len(plan) == 2 and not isinstance(plan[0], (str, Sequence)):
        return [parse_plan(tuple(plan))]
    if isinstance(plan, Sequence):
        return [parse_plan(p) for p in plan]
    raise ValueError(f"plan must be (N, D), 'N:D' (e.g. '70B:1.4T') or a list of them, got {plan!r}")


def _plan_inputs(law, n, d, cap) -> dict:
    inputs = {"N": np.asarray(n, float), "D": np.asarray(d, float)}
    if "U" in law.inputs:
        inputs["U"] = inputs["D"] if cap is None else np.minimum(inputs["D"], cap)
    return inputs


def compute_optimal_plan(fit, c, k, cap, params):
    """The posterior-median optimal N at each budget (a point fit's: its estimate's), and D = C / (k N).

    `params` are the fit's parameter draws (:func:`bayescale.analysis.planning.posterior_params`); `cap` the unique
    tokens available (None: no cap).
    """
    if getattr(fit, "point_params", None) is not None:
        params = {name: np.asarray(v, dtype=float) for name, v in fit.point_params.items()}
    alloc = optimal_allocation(fit.law, params, c, flops_per_param_token=k,
                               max_unique_tokens=cap)
    return median_plan(alloc["N"].reshape(-1, np.size(c)), c, k)


def planned_runs(budget, plan, plan_at):
    """The runs a risk table scores: the compute-optimal plan at each budget, then each ``(N, D)`` plan.

    `plan_at(c)` gives the plan's ``(N, D)`` arrays at the checked budgets ``c``. Returns the rows'
    kinds (``"compute-optimal"`` or ``"plan"``) and their N and D as float arrays.
    """
    kinds, ns, ds = [], [], []
    if budget is not None:
        c = _budgets(budget)
        n, d = plan_at(c)
        kinds += ["compute-optimal"] * c.size
        ns += list(n)
        ds += list(d)
    for n, d in _plans(plan):
        kinds.append("plan")
        ns.append(n)
        ds.append(d)
    return kinds, np.array(ns, dtype=float), np.array(ds, dtype=float)


def check_target(target):
    if target is None:
        return None
    return parse_quantity(target, "target loss")


# -------------------------------------------------------------------- risk
@np.errstate(all="ignore")  # non-finite results are reported by check_table, with their reason
def risk(fit, budget=None, *, target=None, plan=None, prob=0.9, ci_kind="eti",
         flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
         max_unique_tokens=None, random_seed=None, group=None) -> pd.DataFrame:
    """Predictive loss, P(loss <= target) and the allocation penalty of planned runs.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float, optional
        Compute budgets in FLOPs; each gives a row for its compute-optimal
        plan (posterior-median N_opt, D = C / (k N)).
    target : float, optional
        Target loss; adds ``p_target`` = P(loss of one new run <= target).
    plan : (N, D), "N:D" string or a list of them, optional
        User-proposed runs, e.g. ``(70e9, 1.4e12)`` or ``"70B:1.4T"``; each
        gives a row at its own compute ``k N D``.
    prob : float, default 0.9
        Probability of the intervals.
    ci_kind : {"eti", "hdi"}, default "eti"
        Equal-tailed or highest-density intervals of the draws.
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap: the optimum is the capped one (see
        :func:`~bayescale.core.allocation.optimal_allocation`) and, for laws with
        unique tokens, plans repeat data beyond it.
    random_seed : int, optional
        Seed of the run-to-run noise draws (and of a new group's draws);
        default the fit's seed.
    group : label or list of labels, optional
        Fits with groups: a fitted group's label, ``None`` (default) or
        ``"new"`` for a new group drawn from the population, or a list (one
        block of rows per group, with a ``group`` column). Ignored by fits
        without groups.

    Returns
    -------
    DataFrame
        One row per budget, then per plan: ``kind`` (``compute-optimal`` or
        ``plan``), ``label`` ("70B params on 1.4T tokens"), ``C``, ``N``,
        ``D``, ``tokens_per_param``, (``U``, ``epochs``), ``loss_median``,
        ``curve_lower/upper``, ``new_run_lower/upper``, (``p_target``),
        ``penalty_median/lower/upper`` (expected loss of the row's plan minus
        the optimum at the same compute, per posterior draw: >= 0, and > 0
        for a plan off the optimum), ``beyond_C``, ``beyond_N``,
        ``beyond_D``, ``beyond`` (decades outside the fitted runs' range,
        :mod:`bayescale.core.extrapolation`), ``tokens_per_param_outside``,
        ``converged``; one :class:`~bayescale.base.errors.ExtrapolationWarning`
        when a row lies more than one decade out or off the runs' tokens per
        parameter. ``attrs``: ``prob``,
        ``target``, ``flops_per_param_token``, ``max_unique_tokens``.

    Examples
    --------
    >>> fit.risk([1e24], target=1.9, plan="70B:1.4T")  # doctest: +SKIP
    """
    random_seed = _check_seed(random_seed)
    _check_prob(prob)
    if budget is None and plan is None:
        raise ValueError("risk needs at least one budget (FLOPs) or one plan (N, D)")
    if isinstance(group, (list, tuple)):
        with warnings.catch_warnings(record=True) as caught:  # one warning for the whole table, below
            warnings.simplefilter("ignore", ExtrapolationWarning)
            warnings.simplefilter("always", DegenerateResultWarning)
            frames = [risk(fit, budget, target=target, plan=plan, prob=prob, ci_kind=ci_kind,
                           flops_per_param_token=flops_per_param_token, max_unique_tokens=max_unique_tokens,
                           random_seed=random_seed, group=g) for g in group]
        out = pd.concat(frames, ignore_index=True)
        out.attrs.update(frames[0].attrs)
        warn_extrapolation(out, fit.runs, what="risk", tokens_per_param="tokens_per_param",
                           stacklevel=3, form=fit.form_uncertainty, bands=fit.draws_kind != "point")
        rewarn(caught, DegenerateResultWarning, stacklevel=3)
        return out
    law = fit.law
    params = posterior_params(fit, group, random_seed)
    k = float(_positive(flops_per_param_token, "flops_per_param_token"))
    cap = None if max_unique_tokens is None else float(_positive(max_unique_tokens, "max_unique_tokens"))
    target = check_target(target)
    kinds, n, d = planned_runs(budget, plan, lambda c: compute_optimal_plan(fit, c, k, cap, params))
    with np.errstate(invalid="ignore"):
        planless = ~(np.isfinite(n) & np.isfinite(d) & (n > 0) & (d > 0))
    if planless.any():
        # No finite plan at these budgets (the draws' optima are not finite): the rows are computed at a stand-in
        # run (the first fitted one) and reported as NaN, with a warning below.
        first = fit.runs.inputs(["N", "D"])
        n, d = np.where(planless, first["N"][0], n), np.where(planless, first["D"][0], d)
        budgets = np.full(len(kinds), np.nan)
        if budget is not None:
            budgets[:c.size] = c
    curve, new, penalty = risk_draws(fit, n, d, flops_per_param_token=k, max_unique_tokens=cap,
                                     random_seed=random_seed, group=group, params=params)
    frame = risk_frame(law, kinds, n, d, curve, new, penalty, prob=prob, ci_kind=ci_kind, target=target,
                       flops_per_param_token=k, max_unique_tokens=cap)
    if planless.any():
        numeric = [col for col in frame.columns if frame[col].dtype.kind == "f"]
        frame.loc[planless, numeric] = np.nan
        frame.loc[planless, "C"] = budgets[planless]
        frame.loc[planless, "label"] = "no finite plan"
    annotate(frame, fit.runs, what="risk", tokens_per_param="tokens_per_param",
             stacklevel=3, form=fit.form_uncertainty, bands=fit.draws_kind != "point")
    frame["converged"] = bool(fit.converged)
    if fit.hierarchical:
        frame.insert(0, "group", "new" if group is None else str(group))
    frame.attrs.update(prob=prob, interval=interval_label(fit.draws_kind, ci_kind), target=target, caveats=caveats(fit),
                       flops_per_param_token=k, max_unique_tokens=cap, law=law.name)
    check_table(frame, "risk", plan=("N", "D"), problems=fit.table_problems("risk"), stacklevel=3,
                why=lambda: draw_problems(params, curve) or "the run-to-run noise draws are not finite")
    return frame


def risk_draws(fit, n, d, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, random_seed=None,
               group=None, params=None):
    """Per-draw losses of the planned runs (n, d): the curve, one new run, and the penalty against the optimum.

    The draws behind :func:`risk`'s bands, for plans chosen by the caller (e.g. the median plan of a mixture
    of fits, :mod:`bayescale.across.averaging`).

    Parameters
    ----------
    fit : ScalingResult
    n, d : ndarray
        Parameters and tokens of each plan, shape (rows,).
    flops_per_param_token, max_unique_tokens, random_seed, group
        As for :func:`risk`.
    params : mapping, optional
        The fit's parameter draws (:func:`bayescale.analysis.planning.posterior_params`), when the caller has them.

    Returns
    -------
    curve, new, penalty : ndarray
        Shaped (draws, rows): the law's expected loss at the plan (with the form discrepancy), one new run's
        loss, and the expected loss minus that of the optimum at the same compute.
    """
    law = fit.law
    k = float(flops_per_param_token)
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    if params is None:
        params = posterior_params(fit, group, random_seed)
    c = k * n * d
    inputs = _plan_inputs(law, n, d, max_unique_tokens)
    draws = predict_draws(fit, {name: inputs[name] for name in law.inputs}, random_seed=random_seed,
                          group=group if fit.hierarchical else None)
    curve = draws["expected_loss"].values.reshape(-1, n.size)
    new = draws["new_run_loss"].values.reshape(-1, n.size)
    best = optimal_allocation(law, params, c, flops_per_param_token=k,
                              max_unique_tokens=max_unique_tokens)["loss"].reshape(-1, n.size)
    # The plan's curve carries the form discrepancy at the plan; the optimum at the same compute shares it, so
    # the penalty is the law's own, scaled alike.
    floor = np.asarray(irreducible_draws(fit, params))[..., None]  # per draw, against the rows
    best = np.exp(shift_log_loss(fit, np.log(best).reshape(draws["expected_loss"].shape), {"C": c, **inputs},
                                 floor)).reshape(-1, n.size)
    return curve, new, curve - best


def risk_frame(law, kinds, n, d, curve, new, penalty, *, prob=0.9, ci_kind="eti", target=None,
               flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, stacklevel=3) -> pd.DataFrame:
    """The columns of :func:`risk` from the draws of :func:`risk_draws` (of one fit or a mixture of fits)."""
    k = float(flops_per_param_token)
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    inputs = _plan_inputs(law, n, d, max_unique_tokens)
    frame = pd.DataFrame({"kind": kinds, "label": [format_plan(a, b) for a, b in zip(n, d)],
                          "C": k * n * d, "N": n, "D": d, "tokens_per_param": d / n})
    if "U" in law.inputs:
        frame["U"] = inputs["U"]
        frame["epochs"] = d / inputs["U"]
    (frame["loss_median"], frame["curve_lower"], frame["curve_upper"], frame["new_run_lower"],
     frame["new_run_upper"]) = two_bands(curve, new, prob, ci_kind)
    if target is not None:
        frame["p_target"] = _probability(new <= target, new, frame["label"], stacklevel=stacklevel + 1)
    frame["penalty_median"], frame["penalty_lower"], frame["penalty_upper"] = interval(penalty, prob, ci_kind)
    return frame


def _probability(hits, draws, labels, stacklevel=2) -> np.ndarray:
    """Mean of `hits` over draws (axis 0), NaN (with one warning) for columns with a non-finite draw."""
    bad = (~np.isfinite(draws)).sum(axis=0)
    p = hits.mean(axis=0)
    if bad.any():
        p = np.where(bad > 0, np.nan, p)
        rows = [f"{label} ({n} of {draws.shape[0]} draws)" for label, n in zip(labels, bad) if n]
        warn_user(f"P(loss <= target) is NaN for {len(rows)} row(s) whose predictive draws are not all finite "
                  f"(the law overflows or is undefined there): {'; '.join(rows[:10])}",
                  NonFiniteWarning, stacklevel=stacklevel + 1)
    return p


# -------------------------------------------------------------- budget_for
def plan_log_loss(fit, n, d, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, params,
                  floor=0.0) -> np.ndarray:
    """Each draw's expected log loss (with the form discrepancy) of one plan (n, d), shaped like the draws.

    Add :func:`run_noise` for one new run's log loss: :func:`budget_for` and mixtures of fits
    (:mod:`bayescale.across.averaging`) scan compute with it.
    """
    k = float(flops_per_param_token)
    inputs = _plan_inputs(fit.law, n, d, max_unique_tokens)
    log_l = fit.law.log_loss(inputs, params, NUMPY)[..., None]
    return shift_log_loss(fit, log_l, {"C": k * n * d, **inputs}, floor)[..., 0]


def search_range(fit, flops_per_param_token, max_compute) -> tuple:
    """Natural logs of the compute range :func:`budget_for` searches: 1/1000 of the smallest run to max_compute."""
    runs = fit.runs.inputs(["N", "D"])
    observed = float(flops_per_param_token) * runs["N"] * runs["D"]
    return np.log(observed.min() / 1e3), np.log(float(_positive(max_compute, "max_compute")))


def first_compute(p_reach, prob, log_lo, log_hi, problems):
    """The smallest compute at which ``p_reach(log C)`` reaches `prob`, and a status, for :func:`budget_for`.

    Scans :data:`SCAN_POINTS` points of log C from `log_lo` to `log_hi`, then bisects inside the first step
    that reaches `prob` (to 1e-6 relative in C). `problems` is called for the text of a NaN probability (draws
    without a finite loss). Returns ``(C, status)``: C is inf when `prob` is never reached, NaN when not
    computed.
    """
    def undefined(log_c):
        return np.nan, (f"not computed: at {format_flops(np.exp(log_c))} some posterior draws give no finite loss "
                        f"({problems()}); the fit is degenerate, see fit.summary()")

    # Beyond the fitted runs the form uncertainty widens with compute, so the probability can rise and then
    # fall again: scan a grid for the first compute that reaches p, then bisect inside that step.
    grid = np.linspace(log_lo, log_hi, SCAN_POINTS)
    probs = np.array([p_reach(g) for g in grid])
    if np.isnan(probs).any():
        where = format_flops(np.exp(grid[np.argmax(np.isnan(probs))]))
        return np.nan, (f"not computed: at {int(np.isnan(probs).sum())} of {SCAN_POINTS} budgets searched "
                        f"(the first {where}) some posterior draws give no finite loss "
                        f"({problems()}); the fit is degenerate, see fit.summary()")
    stop = probs >= prob
    if not stop.any():
        best = probs.max()
        return np.inf, (f"not reached by {format_flops(np.exp(log_hi))} (the probability peaks at {best:.2f}: "
                        "the law's form uncertainty grows with the distance from the fitted runs)")
    first = int(np.argmax(stop))
    if first == 0:
        return float(np.exp(log_lo)), f"reached at or below {format_flops(np.exp(log_lo))}"
    lo, hi = grid[first - 1], grid[first]
    while hi - lo > 1e-6:  # 1e-6 relative in C
        mid = 0.5 * (lo + hi)
        p_mid = p_reach(mid)
        if np.isnan(p_mid):
            return undefined(mid)
        lo, hi = (lo, mid) if p_mid >= prob else (mid, hi)
    return float(np.exp(hi)), "ok"


def run_noise(fit, random_seed, group=None):
    """Per-draw log-noise of one new run, shaped (chain, draw), from :meth:`ScalingFit.predict_draws`."""
    first = {name: v[:1] for name, v in fit.runs.inputs(fit.law.inputs).items()}
    draws = predict_draws(fit, first, random_seed=random_seed, group=group if fit.hierarchical else None)
    return (np.log(draws["new_run_loss"]) - np.log(draws["expected_loss"])).values[..., 0]


#: Grid points (over log compute) that budget_for scans for the first compute reaching the probability.
SCAN_POINTS = 241
#: Half-width (decades of compute) of the difference that gives the probability's slope for budget_for's MCSE.
MCSE_STEP = 0.1


def budget_mcse(hit, p_reach, log_c) -> float:
    """Monte Carlo standard error, in decades, of :func:`budget_for`'s compute at natural log `log_c`.

    The MCSE of the probability there (``sqrt(p (1 - p) / ESS)``, the ESS of
    the indicator `hit` shaped (chain, draw) by ArviZ's bulk ESS; the draw
    count for flat draws) over the probability's slope in log10 C (a central
    difference of `p_reach`, a function of natural log C, over
    :data:`MCSE_STEP` decades either side). Infinite where the probability
    does not rise there.
    """
    from arviz_stats.base import array_stats

    hit = np.asarray(hit, dtype=float)
    p_at = float(hit.mean())
    if hit.ndim == 2 and hit.shape[1] >= 4 and 0 < p_at < 1:
        n_eff = float(array_stats.ess(hit, chain_axis=0, draw_axis=1))
    else:
        n_eff = float(hit.size)
    se_p = np.sqrt(max(p_at * (1 - p_at), 1.0 / hit.size) / n_eff)
    h = MCSE_STEP * np.log(10.0)
    slope = (p_reach(log_c + h) - p_reach(log_c - h)) / (2 * MCSE_STEP)
    return float(se_p / slope) if slope > 0 else float("inf")


def mark_beyond_checked(frame) -> None:
    """Add ``beyond_checked``: the answer lies farther beyond the fitted runs than the bands were checked.

    The form discrepancy was learned from held-out runs up to about
    :data:`bayescale.core.form.REACH` beyond their ladders; an answer farther out rests on
    its growth continued, not on evidence.
    """
    frame["beyond_checked"] = frame["beyond"].to_numpy(dtype=float) > REACH


@np.errstate(all="ignore")  # non-finite results are reported by check_table, with their reason
def budget_for_settings(target, prob, flops_per_param_token, max_unique_tokens, random_seed) -> tuple:
    """The checked arguments of a budget search: ``(targets, random_seed, k, cap)``, each raising a clear error.

    Shared by :func:`budget_for` and :meth:`bayescale.across.averaging.ModelAverage.budget_for`.

    Examples
    --------
    >>> budget_for_settings(1.9, 0.9, 6, None, None)
    (array([1.9]), None, 6.0, None)
    """
    random_seed = _check_seed(random_seed)
    _check_prob(prob)
    targets = np.atleast_1d(np.asarray([parse_quantity(t, "target loss")
                                        for t in np.atleast_1d(np.asarray(target, dtype=object))]))
    k = float(_positive(flops_per_param_token, "flops_per_param_token"))
    cap = None if max_unique_tokens is None else float(_positive(max_unique_tokens, "max_unique_tokens"))
    return targets, random_seed, k, cap


def budget_for(fit, target, prob=0.9, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
               random_seed=None, max_compute=1e40, group=None) -> pd.DataFrame:
    """Smallest compute at which the compute-optimal run reaches a target loss with a given probability.

    The probability is that of one new run (new-run predictive distribution,
    as ``p_target`` in :func:`risk`) of the compute-optimal plan at that
    compute (posterior-median N_opt). The answer is the first compute on a
    grid of log C (:data:`SCAN_POINTS` points) that reaches ``prob``, refined
    by bisection inside that step, with each posterior draw's run-to-run
    noise and form discrepancy held fixed; ``risk(fit, C,
    target=target)["p_target"]`` at the returned C is therefore about
    ``prob``. Far beyond the fitted runs the law's form uncertainty widens
    faster than the curve falls, so the probability can peak and fall
    again: a target that needs that much extrapolation is reported as not
    reached, with the peak probability.

    Parameters
    ----------
    fit : ScalingFit
    target : float or sequence of float
        Target loss(es).
    prob : float, default 0.9
        Required probability of reaching the target.
    flops_per_param_token : float, default 6
    max_unique_tokens : float, optional
        Fresh-data cap for the optimal plan.
    random_seed : int, optional
        Seed of the noise draws; default the fit's seed.
    max_compute : float, default 1e40
        Upper end of the search.
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) /
        ``"new"`` for a new group drawn from the population.

    Returns
    -------
    DataFrame
        One row per target: ``target``, ``prob``, ``C`` (compute needed at
        probability ``prob``), ``N``, ``D`` (the plan there),
        ``C_mcse_decades`` (Monte Carlo standard error of log10 C: the
        probability's MCSE, from the effective sample size of the draws
        reaching the target, over the probability's slope in log10 C; two
        seeds' answers differ by about sqrt(2) times it),
        ``C_median_case`` (compute at which the probability is 1/2),
        ``status`` (``ok``; ``not reached by ...`` when even
        ``max_compute`` is not enough, with C = inf; ``below the irreducible
        loss E ≈ ...`` when the target is under the posterior median of E,
        also with C = inf; ``reached at or below ...`` when the smallest
        compute searched already suffices), ``tokens_per_param``,
        ``beyond_C``, ``beyond_N``, ``beyond_D``, ``beyond``,
        ``tokens_per_param_outside`` (as in :func:`risk`), ``beyond_checked``
        (the answer lies more than :data:`bayescale.core.form.REACH` beyond the fitted
        runs, farther than the form uncertainty was checked on held-out real
        runs), ``converged``.

    Examples
    --------
    >>> fit.budget_for(1.9, prob=0.9)  # doctest: +SKIP
    """
    targets, random_seed, k, cap = budget_for_settings(target, prob, flops_per_param_token, max_unique_tokens,
                                                       random_seed)
    law = fit.law
    params = posterior_params(fit, group, random_seed)
    noise = run_noise(fit, random_seed, group)
    floor = np.asarray(irreducible_draws(fit, params))[..., None]  # per draw, against the rows
    log_lo, log_hi = search_range(fit, k, max_compute)

    def log_new_run(log_c):
        c = float(np.exp(log_c))
        n, d = compute_optimal_plan(fit, c, k, cap, params)
        return plan_log_loss(fit, n[0], d[0], flops_per_param_token=k, max_unique_tokens=cap, params=params,
                             floor=floor) + noise

    def p_reach(log_c, t):
        """P(loss <= t) at compute exp(log_c); NaN when a draw's loss there is not finite."""
        with np.errstate(invalid="ignore"):
            values = log_new_run(log_c)
        if not np.all(np.isfinite(values)):  # never a probability over part of the draws
            return np.nan
        return float(np.mean(values <= np.log(t)))

    def solve(t, p):
        return first_compute(lambda log_c: p_reach(log_c, t), p, log_lo, log_hi,
                             lambda: draw_problems(params) or "overflow")

    def mcse_decades(t, c):
        if not np.isfinite(c):
            return np.nan
        with np.errstate(invalid="ignore"):
            hit = log_new_run(np.log(c)) <= np.log(t)
        return budget_mcse(hit, lambda log_c: p_reach(log_c, t), np.log(c))

    rows = []
    floor_median = float(np.median(floor))
    for t in targets:
        c, status = solve(t, prob)
        if np.isinf(c) and t <= floor_median:
            status = (f"below the irreducible loss E \u2248 {floor_median:.3f} (posterior median): no compute "
                      "reaches it; choose a target above E")
        c_med, _ = solve(t, 0.5)
        n, d = compute_optimal_plan(fit, c, k, cap, params) if np.isfinite(c) else (np.array([np.nan]), np.array([np.nan]))
        rows.append(dict(target=float(t), prob=prob, C=c, C_mcse_decades=mcse_decades(t, c), N=float(n[0]),
                         D=float(d[0]), C_median_case=c_med, status=status))
    frame = pd.DataFrame(rows)
    with np.errstate(invalid="ignore"):
        frame["tokens_per_param"] = frame["D"] / frame["N"]
    annotate(frame, fit.runs, what="budget_for", tokens_per_param="tokens_per_param",
             stacklevel=3, form=fit.form_uncertainty, bands=fit.draws_kind != "point")
    mark_beyond_checked(frame)
    frame["converged"] = bool(fit.converged)
    if fit.hierarchical:
        frame.insert(0, "group", "new" if group is None else str(group))
    frame.attrs.update(prob=prob, draws_kind=fit.draws_kind, flops_per_param_token=k, caveats=caveats(fit),
                       max_unique_tokens=cap, law=law.name)
    check_table(frame, "budget_for", plan=("N", "D"), label="target", problems=fit.table_problems("budget_for"),
                stacklevel=3,
                why=lambda: "; ".join(sorted(set(frame.loc[~np.isfinite(frame["C"]), "status"]))) or None)
    return frame
