"""Two-step plans in task scores: compute -> loss (a loss fit) -> task score (a downstream link).

Each draw of the loss at a plan, from the loss fit's predictive distribution with its form
uncertainty (:func:`bayescale.analysis.risk.risk_draws`, the draws behind ``fit.risk``), is pushed through one
draw of the task's link (:class:`bayescale.fitting.downstream.DownstreamFit`), so the bands carry the
uncertainty of both steps: the law, its form beyond the runs, the run-to-run noise of a new run,
the link's posterior and its form beyond the fitted losses, and the noise of evaluating on the
task's items.

- :func:`task_risk`: the score of the compute-optimal run at budgets (or of given plans) per task,
  with ``P(score >= target)``.
- :func:`task_budget_for`: the compute at which one new run reaches a score with a probability.

The loss fit and the link must speak of the same loss (the link's ``loss`` column is the loss the
loss fit was fitted to, on the same evaluation set).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .contract import check_ci_kind, interval_label, two_bands
from ..core.shifts import irreducible_draws
from .planning import posterior_params
from .risk import (compute_optimal_plan, first_compute, plan_log_loss, planned_runs, risk_draws, run_noise,
                   search_range)
from ..base.units import format_flops, format_plan
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_prob, check_seed

__all__ = ["task_risk", "task_budget_for", "loss_draws", "link_accuracy", "pairing", "evaluation_noise", "band_frame"]


def link_accuracy(loss, floor, ceiling, slope, midpoint):
    """Expected task score at `loss` (NumPy arrays broadcast): the sigmoid between floor and ceiling.

    Examples
    --------
    >>> float(link_accuracy(3.0, 0.25, 0.95, 2.0, 3.0))
    0.6
    """
    from scipy.special import expit

    z = np.asarray(slope) * (np.asarray(midpoint) - np.asarray(loss))
    return floor + (np.asarray(ceiling) - floor) * expit(z)


def pairing(n_loss: int, n_link: int, rng) -> np.ndarray:
    """Index of the link draw paired with each of `n_loss` loss draws: each link draw used equally often.

    The two posteriors are independent (two stages), so any balanced random pairing is a draw of the joint.
    """
    reps = -(-n_loss // n_link)
    return np.concatenate([rng.permutation(n_link) for _ in range(reps)])[:n_loss]


def evaluation_noise(curve, concentration, items, rng, normals=None):
    """One evaluation's score on `items` questions: Beta-Binomial around `curve` with `concentration`.

    With `normals` (standard normals shaped like `curve`) the score is the normal approximation with the
    Beta-Binomial's mean and sd, ``curve + sd * normals`` clipped to [0, 1]: the same normals give scores
    that move with `curve`, the common random numbers a search over compute needs.
    """
    p = np.clip(curve, 1e-9, 1 - 1e-9)
    if normals is None:
        q = rng.beta(p * concentration, (1 - p) * concentration)
        return rng.binomial(items, q) / items
    sd = np.sqrt(p * (1 - p) / items * (1 + (items - 1) / (concentration + 1)))
    return np.clip(p + sd * normals, 0.0, 1.0)


def band_frame(task, link, curve, new, prob, ci_kind) -> pd.DataFrame:
    """``task``, ``chance``, ``accuracy_median``, curve and new-evaluation bands from draws (draws, rows)."""
    med, lo, hi, nlo, nhi = two_bands(curve, new, prob, ci_kind)
    chance = float(link.idata["constant_data"]["chance"].sel(task=task))
    return pd.DataFrame({"task": task, "chance": chance, "accuracy_median": med, "curve_lower": lo,
                         "curve_upper": hi, "new_run_lower": nlo, "new_run_upper": nhi})


def _check_pair(loss_fit, link):
    if not all(hasattr(link, name) for name in ("accuracy_draws", "curve_at", "link_draws", "check_task")):
        raise ValueError(f"link must be a DownstreamFit (DownstreamModel(...).fit(table)), got {type(link).__name__}")
    if not hasattr(loss_fit, "law") or not hasattr(loss_fit, "param_draws"):
        raise ValueError(f"loss_fit must be a fitted loss law (ScalingFit, PointFit or PublishedLaw), "
                         f"got {type(loss_fit).__name__}")


def _targets(target, tasks) -> dict:
    if target is None:
        return {}
    if isinstance(target, Mapping):
        unknown = [t for t in target if t not in tasks]
        if unknown:
            raise ValueError(f"target names task {unknown[0]!r}, which is not asked for; tasks: {', '.join(tasks)}")
        out = dict(target)
    else:
        out = {t: target for t in tasks}
    for t, v in out.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0 <= v <= 1:
            raise ValueError(f"target score for task {t!r} must be a number in [0, 1], got {v!r}")
    return {t: float(v) for t, v in out.items()}


def loss_draws(loss_fit, budget=None, *, plan=None, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, random_seed=None):
    """The plans and each draw's loss there: ``(plans, curve, new)``.

    ``plans`` is a DataFrame (``kind``, ``label``, ``C``, ``N``, ``D``) with one row per budget
    (its compute-optimal plan, the posterior-median N_opt) and then per plan; ``curve`` and ``new``
    are the loss fit's draws of the law's expected loss (with its form uncertainty) and of one new
    run's loss, shaped (draws, rows) (:func:`bayescale.analysis.risk.risk_draws`).
    """
    if budget is None and plan is None:
        raise ValueError("give at least one budget (FLOPs) or one plan (N, D)")
    k = float(flops_per_param_token)
    params = posterior_params(loss_fit, None, random_seed)
    kinds, n, d = planned_runs(budget, plan, lambda c: compute_optimal_plan(loss_fit, c, k, None, params))
    curve, new, _ = risk_draws(loss_fit, n, d, flops_per_param_token=k, random_seed=random_seed, params=params)
    plans = pd.DataFrame({"kind": kinds, "label": [format_plan(a, b) for a, b in zip(n, d)], "C": k * n * d,
                          "N": n, "D": d})
    return plans, curve, new


def task_risk(loss_fit, link, budget=None, *, plan=None, target=None, task=None, prob=0.9, ci_kind="eti",
              flops_per_param_token=FLOPS_PER_PARAM_TOKEN, random_seed=None) -> pd.DataFrame:
    """Task scores at compute budgets or plans, through a loss fit and a downstream link.

    Parameters
    ----------
    loss_fit : ScalingFit, PointFit or PublishedLaw
        The first step: loss as a function of N and D, fitted to the loss the link uses.
    link : DownstreamFit
        The second step: loss to task score.
    budget : float or sequence of float, optional
        Compute budgets in FLOPs: a row per task for each budget's compute-optimal plan.
    plan : (N, D), "N:D" or a list of them, optional
        Proposed runs, e.g. ``"70B:1.4T"``.
    target : float or mapping of task to float, optional
        A score to reach (one for every task, or one per task): adds ``p_target`` = P(one new run
        of the plan scores >= target on the task's items).
    task : str or list of str, optional
        Default: every task of the link.
    prob : float, default 0.9
    ci_kind : {"eti", "hdi"}
    flops_per_param_token : float, default 6
    random_seed : int, optional

    Returns
    -------
    DataFrame
        One row per (plan, task): ``kind``, ``label``, ``C``, ``N``, ``D``, ``task``, ``chance``,
        ``loss_median`` (of one new run), ``accuracy_median``, ``curve_lower``, ``curve_upper`` (the
        link's expected score at the law's expected loss), ``new_run_lower``, ``new_run_upper`` (one
        new run, evaluated on the task's items), (``target``, ``p_target``), ``beyond_loss`` (nats
        the median loss lies below the task's fitted losses). ``attrs``: ``prob``, ``interval``.

    Examples
    --------
    >>> task_risk(loss_fit, link, 1e24, target={"arc_easy": 0.8})  # doctest: +SKIP
    """
    _check_pair(loss_fit, link)
    check_prob(prob)
    ci_kind = check_ci_kind(ci_kind)
    random_seed = check_seed(random_seed)
    tasks = link.check_task(task)
    targets = _targets(target, tasks)
    plans, curve_loss, new_loss = loss_draws(loss_fit, budget, plan=plan, flops_per_param_token=flops_per_param_token,
                                             random_seed=random_seed)
    rng = np.random.default_rng(random_seed)
    index = pairing(curve_loss.shape[0], link.link_draws(tasks[0])["slope"].size, rng)
    lo = link.idata["constant_data"]["loss_min"].to_series()
    frames = []
    for t in tasks:
        seed = int(rng.integers(2**32))  # one seed: the curve and the new run share each draw's form discrepancy
        curve, _ = link.accuracy_draws(curve_loss, t, draw_index=index, random_seed=seed)
        _, new = link.accuracy_draws(new_loss, t, draw_index=index, random_seed=seed)
        f = pd.concat([plans, band_frame(t, link, curve, new, prob, ci_kind)], axis=1)
        f.insert(list(f.columns).index("accuracy_median"), "loss_median", np.median(new_loss, axis=0))
        if t in targets:
            f["target"] = targets[t]
            f["p_target"] = (new >= targets[t]).mean(axis=0)
        f["beyond_loss"] = np.maximum(lo[t] - f["loss_median"], 0.0)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(prob=prob, interval=interval_label(link.draws_kind, ci_kind))
    return out


def task_budget_for(loss_fit, link, task, target, prob=0.9, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                    random_seed=None, max_compute=1e30) -> pd.DataFrame:
    """Smallest compute at which one new compute-optimal run scores >= target on a task with probability prob.

    The compute-optimal plan at each compute is the loss fit's (posterior-median N_opt); each draw
    holds its loss-law parameters, form discrepancy, run noise, link draw and evaluation noise
    fixed while compute is scanned (common random numbers), and the first compute reaching `prob`
    is found as :func:`bayescale.analysis.risk.budget_for` finds it. The evaluation noise is the normal
    approximation of the Beta-Binomial (:func:`bayescale.fitting.downstream.evaluation_noise`). A target the link's draws do not reach
    with that probability by `max_compute` (e.g. above most draws' ceiling) gives C = inf.

    Parameters
    ----------
    loss_fit : ScalingFit, PointFit or PublishedLaw
    link : DownstreamFit
    task : str
    target : float or sequence of float
        Scores in [0, 1].
    prob : float, default 0.9
    flops_per_param_token : float, default 6
    random_seed : int, optional
    max_compute : float, default 1e30

    Returns
    -------
    DataFrame
        One row per target: ``task``, ``target``, ``prob``, ``C``, ``N``, ``D``,
        ``C_median_case`` (compute at probability 1/2), ``status``.

    Examples
    --------
    >>> task_budget_for(loss_fit, link, "arc_easy", 0.75, prob=0.9)  # doctest: +SKIP
    """
    _check_pair(loss_fit, link)
    check_prob(prob)
    random_seed = check_seed(random_seed)
    (task,) = link.check_task(task)
    targets = np.atleast_1d(np.asarray(target, dtype=float))
    for t in targets:
        if not 0 <= t <= 1:
            raise ValueError(f"target score must be in [0, 1], got {t!r}")
    k = float(flops_per_param_token)
    params = posterior_params(loss_fit, None, random_seed)
    noise = run_noise(loss_fit, random_seed)
    floor = np.asarray(irreducible_draws(loss_fit, params))[..., None]  # the form discrepancy scales the reducible loss
    shape = noise.shape
    rng = np.random.default_rng(random_seed)
    draws = link.link_draws(task)
    index = pairing(int(np.prod(shape)), draws["slope"].size, rng)
    normals = rng.standard_normal((int(np.prod(shape)), 1))
    form_e = rng.standard_normal((int(np.prod(shape)), 1))
    run_e = rng.standard_normal((int(np.prod(shape)), 1)) if getattr(link, "run_sd_draws", None) is not None else None
    items = int(link.idata["constant_data"]["items"].sel(task=task))
    log_lo, log_hi = search_range(loss_fit, k, max_compute)

    def new_score(log_c):
        n, d = compute_optimal_plan(loss_fit, float(np.exp(log_c)), k, None, params)
        log_l = plan_log_loss(loss_fit, n[0], d[0], flops_per_param_token=k, params=params, floor=floor) + noise
        curve = link.curve_at(np.exp(log_l).reshape(-1, 1), task, index, form_e, run_e)
        return evaluation_noise(curve, draws["concentration"][index][:, None], items, rng, normals=normals)

    rows = []
    for t in targets:
        def p_reach(log_c, t=t):
            with np.errstate(all="ignore"):
                return float(np.mean(new_score(log_c) >= t))

        c, status = first_compute(p_reach, prob, log_lo, log_hi, lambda: "overflow")
        c_med, _ = first_compute(p_reach, 0.5, log_lo, log_hi, lambda: "overflow")
        if np.isinf(c):
            status = (f"not reached by {format_flops(np.exp(log_hi))} with probability {prob}: the link's draws "
                      "put the task's ceiling or its rise too uncertain for that")
        n, d = compute_optimal_plan(loss_fit, c, k, None, params) if np.isfinite(c) else ([np.nan], [np.nan])
        rows.append(dict(task=task, target=float(t), prob=prob, C=c, N=float(n[0]), D=float(d[0]),
                         C_median_case=c_med, status=status))
    out = pd.DataFrame(rows)
    out.attrs.update(prob=prob, interval=interval_label(link.draws_kind, "eti"))
    return out
