"""One document for a budget proposal: a self-contained HTML (or Markdown) report of a fit.

:func:`report` (also ``fit.report(path)`` and ``bayescale report FIT.nc -o
report.html``) opens with the decision: a one-paragraph verdict (converged,
model-check caveats, how far the budgets lie beyond the fitted runs, what was
checked out of sample) and the decision table (per budget: N_opt, D_opt,
tokens per parameter, the loss and its band, P(loss <= target)), then the
compute needed for the target when one is given. The evidence follows: what
was fitted, the sampler's diagnostics, the posterior beside a point estimate
(Hoffmann et al.'s Approach 3 for the Chinchilla law, the same Huber fit for
other laws), the full allocation and risk tables, the groups compared (fits
with groups), the returns to compute, the next run, the figures (frontier,
allocation, isoFLOP curves, posterior predictive check), optionally a
backtest on the largest runs, and the assumptions and caveats.

The HTML file needs nothing else: figures are embedded as base64 PNG, the
style sheet is inline (with print rules: no page breaks inside a figure or a
table), and nothing is fetched from the network. Markdown embeds the same
figures as ``data:`` URIs.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import warnings

import numpy as np
import pandas as pd

from ..analysis.conflicts import caveats
from ..fitting.results import register_writer
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets, check_prob, renamed
from ..base.version import __version__
from ..across.backtest import backtest
from ..analysis.checks import posterior_predictive
from ..analysis.contract import interval_label
from ..analysis.contrasts import contrast, contrast_params, fitted_groups
from ..core.extrapolation import Reach, decades_beyond
from ..core.form import FormUncertainty, residual_scale
from ..core.shifts import reducible_fraction
from ..analysis.nextrun import candidate_grid, plot_recommendations
from ..analysis.plots import plot_contrast
from ..fitting.point import Approach3, PointModel
from ..analysis.taskplan import task_risk
from ..base.units import format_count, format_flops
from ..analysis.document import CSS, Document, check_output, write_document

__all__ = ["report"]


def default_budgets(fit, flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> np.ndarray:
    """Three budgets for a report: the power of ten at or above the largest fitted run, then 10x and 100x.

    Examples
    --------
    >>> default_budgets(fit)  # doctest: +SKIP
    array([1.e+23, 1.e+24, 1.e+25])
    """
    runs = fit.runs.inputs(["N", "D"])
    top = float(np.max(flops_per_param_token * runs["N"] * runs["D"]))
    first = 10.0 ** math.ceil(math.log10(top))
    return first * np.array([1.0, 10.0, 100.0])


def _point_fit(fit):
    """Approach 3 (Chinchilla law) or the same Huber fit for another law; None for fits with groups."""
    if getattr(fit.model, "hierarchical", False):
        return None
    law = fit.model.law
    spec = Approach3() if law.name == "chinchilla" else PointModel(law, loss="huber")
    return spec.fit(fit.runs)


def _parameters(doc, fit, prob):
    label = interval_label(fit.draws_kind, "eti")  # the name the decision and risk tables use
    table = fit.summary(prob, ci_kind="eti")[["estimate", "lower", "upper", "r_hat", "ess_bulk"]].copy()
    lower, upper = f"{prob:.0%} ETI lower", f"{prob:.0%} ETI upper"
    table = table.rename(columns={"estimate": "posterior median", "lower": lower, "upper": upper})
    try:
        point = _point_fit(fit)
    except Exception as err:  # a failed baseline must not cost the report
        point, failed = None, f"the point estimate failed: {type(err).__name__}: {err}"
    else:
        failed = None
    if point is not None:
        est = point.summary()["estimate"].reindex(list(fit.model.law.param_names))  # noise scales differ
        table.insert(3, "point estimate", est.reindex(table.index))
        inside = (table["point estimate"] >= table[lower]) & (table["point estimate"] <= table[upper])
        table.insert(4, "point inside ETI", np.where(table["point estimate"].isna(), "", np.where(inside, "yes", "no")))
        name = "Approach 3 (Hoffmann et al. 2022: Huber loss on log loss, L-BFGS-B from a grid)" \
            if fit.model.law.name == "chinchilla" else "Huber loss on log loss (as Approach 3), L-BFGS-B from a grid"
        doc.para(f"Posterior median and {prob:.0%} {label} (equal-tailed interval) beside the point estimate of "
                 f"{name}. R-hat and bulk ESS per parameter.")
    elif failed:
        doc.para(f"Posterior median and {prob:.0%} {label}; {failed}.")
    else:
        doc.para(f"Posterior median and {prob:.0%} {label} (fits with groups: population "
                 "parameters; no point estimate).")
    doc.table(table)
    return point


#: What the default form-uncertainty model did out of sample (docs/guide/form-uncertainty.md,
#: ``./dev bench calibration``): learned and scored leave-one-source-out on 10 public sources (68 splits,
#: 2267 held-out runs); the share of held-out runs inside its 90% band overall, by decades beyond the
#: fitted runs, and with the form taken as known.
CALIBRATION = {"sources": 10, "splits": 68, "held_out": 2267, "inside_90": 0.87, "form_known_inside_90": 0.64,
               "by_distance": (("within 0.25", 0.95), ("0.25-1", 0.88), ("1-1.5", 0.78), ("1.5-2", 0.87),
                               ("beyond 2", 0.79))}


def _nb(text) -> str:
    """`text` with no line break inside a bracketed interval (it may break before the bracket)."""
    return text.replace(", ", ",\u00a0")


def _band(f, med, lo, hi) -> str:
    return f"{f(med)} " + _nb(f"[{f(lo)}, {f(hi)}]")


def _out_of_sample(form) -> str:
    """What was checked out of sample, for the verdict."""
    cal = CALIBRATION
    far = dict(cal["by_distance"])
    scored = (f"learned and scored leave-one-source-out on {cal['sources']} public sources ({cal['splits']} splits, "
              f"{cal['held_out']:,} held-out runs)")
    if form is None:
        return (f"Form uncertainty is off: the bands are this law's parameter uncertainty alone; bands of that kind "
                f"held {cal['form_known_inside_90']:.0%} of held-out runs in their 90% band when {scored}.")
    if form != FormUncertainty():
        return (f"The bands carry a form-uncertainty model other than the default ({form}), not scored out of "
                f"sample; the default, {scored}, held {cal['inside_90']:.0%} of held-out runs in its 90% band.")
    return (f"Beyond the runs the bands include the law's form uncertainty, {scored}: its 90% band held "
            f"{cal['inside_90']:.0%} of held-out runs ({far['within 0.25']:.0%} within a quarter decade, "
            f"{far['beyond 2']:.0%} beyond 2 decades; {cal['form_known_inside_90']:.0%} with the form taken as known).")


def _decision(doc, fit, budgets, target, prob, k, seed):
    """The verdict paragraph and the decision tables; returns the allocation and risk tables."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict states the distances
        alloc = fit.allocate(budgets, prob, flops_per_param_token=k)
        risk = fit.risk(budgets, target=target, prob=prob, flops_per_param_token=k, random_seed=seed)
    checks = caveats(fit)
    bits = []
    if fit.converged:
        bits.append("The sampler converged (R-hat <= 1.01, bulk ESS >= 400, no divergences).")
    else:
        bits.append("The sampler did NOT converge: do not use these numbers for a decision until it does "
                    "(see Diagnostics).")
    bits.append("Model checks: " + "; ".join(checks) + "." if checks else "The model checks found no heavy tails.")
    beyond = alloc["beyond"].to_numpy(dtype=float)
    runs = fit.runs.inputs(["N", "D"])
    top = float(np.max(k * np.asarray(runs["N"], float) * np.asarray(runs["D"], float)))
    if np.all(~np.isfinite(beyond) | (beyond <= 0)):
        bits.append(f"Every budget lies within the fitted runs (largest: {format_flops(top)}).")
    else:
        lo, hi = np.nanmin(beyond), np.nanmax(beyond)
        span = f"{hi:.1f}" if np.isclose(lo, hi, atol=0.05) else f"{max(lo, 0):.1f} to {hi:.1f}"
        bits.append(f"The budgets lie {span} decades beyond the fitted runs (largest of compute, N and D; the "
                    f"largest run used {format_flops(top)}).")
    bits.append(_out_of_sample(fit.model.form_uncertainty))
    doc.para(" ".join(bits), cls="verdict")

    q = lambda v: f"{v:.3g}"  # noqa: E731
    plan = pd.DataFrame({
        "compute": [format_flops(c) for c in alloc["C"]],
        "params N_opt": [_band(format_count, *r) for r in alloc[["N_median", "N_lower", "N_upper"]].to_numpy()],
        "tokens D_opt": [_band(format_count, *r) for r in alloc[["D_median", "D_lower", "D_upper"]].to_numpy()],
        "tokens/param": [_band(q, *r) for r in alloc[["tokens_per_param_median", "tokens_per_param_lower",
                                                     "tokens_per_param_upper"]].to_numpy()],
    })
    loss = lambda v: f"{v:.3f}"  # noqa: E731
    outcome = pd.DataFrame({
        "compute": [format_flops(c) for c in risk["C"]],
        "loss (median)": [loss(v) for v in risk["loss_median"]],
        f"loss, {prob:.0%} band": [_nb(f"[{loss(a)}, {loss(b)}]") for a, b in zip(risk["new_run_lower"],
                                                                                risk["new_run_upper"])],
    })
    if target is not None:
        outcome[f"P(loss <= {target:g})"] = [f"{v:.2f}" for v in risk["p_target"]]
    outcome["decades beyond the runs"] = [f"{max(v, 0):.1f}" if np.isfinite(v) else "-" for v in risk["beyond"]]
    label = interval_label(fit.draws_kind)
    doc.para(f"The plan at each budget: the compute-optimal model size and tokens (median and {prob:.0%} {label}), "
             f"with C = {k:g} N D.")
    doc.text_table(plan, "decision")
    doc.para(f"What it reaches: the loss of one new training run on that plan (median and {prob:.0%} band, "
             "run-to-run noise included)" + (f", and the probability it reaches the target loss {target:g}"
                                             if target is not None else "") + ".")
    doc.text_table(outcome, "decision")
    return alloc, risk


def _budget_for(doc, fit, target, prob, k, seed):
    """The compute needed for the target: at probability `prob` and in the median case."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        need = fit.budget_for(target, prob, flops_per_param_token=k, random_seed=seed)
    r = need.iloc[0]
    E = float(np.median(fit.posterior["E"].values)) if "E" in fit.posterior else float("nan")
    if not np.isfinite(r["C"]):
        doc.para(f"No budget reaches the loss {target:g} with probability {prob:.0%}"
                 + (f" (the irreducible loss E is about {E:.3f})" if np.isfinite(E) else "")
                 + f": {r['status']}.")
        return need
    table = pd.DataFrame({
        "target loss": [f"{target:g}"],
        f"compute for P = {prob:.0%}": [format_flops(r["C"])],
        "compute, median case": [format_flops(r["C_median_case"]) if np.isfinite(r["C_median_case"]) else "-"],
        "params": [format_count(r["N"])], "tokens": [format_count(r["D"])],
        "tokens/param": [f"{r['tokens_per_param']:.3g}"],
        "decades beyond the runs": [f"{max(r['beyond'], 0):.1f}" if np.isfinite(r["beyond"]) else "-"],
    })
    doc.para(f"The compute at which one new compute-optimal run reaches a loss of {target:g} with probability "
             f"{prob:.0%}, the compute at which it is even odds (median case), and the plan there.")
    doc.text_table(table, "decision")
    return need


def _caveats(doc, fit, budgets, k):
    reach = Reach.from_runs(fit.runs)
    lines = []
    form = fit.model.form_uncertainty
    if form is None:
        lines.append("Form uncertainty is off: the law's functional form is taken as exactly right beyond the "
                     "fitted runs, so the bands there only hold if it is.")
    else:
        r, f = residual_scale(fit), reducible_fraction(fit)
        lines.append(f"Form uncertainty: {form}. With r = {r:.3g} and f = {f:.3g}, one decade past the fitted "
                     f"range the loss may move by about {100 * form.loss_sd(r):.2g}% (1 sd) beyond what the "
                     "law's parameters allow; the bands include it.")
    lines.append(f"The bands are conditional on the {fit.model.law.name} law ({fit.model.law.formula}) and a "
                 f"{fit.model.likelihood} likelihood on log loss; a different family of laws can extrapolate "
                 "differently (compare laws with bayescale.analysis.selection).")
    if budgets is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the distance is the point of this caveat
            alloc = fit.allocate(budgets, flops_per_param_token=k)
        dist = decades_beyond(reach, {"C": np.asarray(budgets, float), "N": alloc["N_median"].to_numpy(),
                                      "D": alloc["D_median"].to_numpy()})

        far = ", ".join(f"{format_flops(c)}: {b:.2g} decades" for c, b in zip(budgets, dist["beyond"]))
        held = "; ".join(f"{d} decades {v:.2f}" for d, v in CALIBRATION["by_distance"])
        lines.append(f"Extrapolation distance of each budget's plan beyond the fitted runs (largest of C, N, D): "
                     f"{far}. Scored out of sample (leave one source out), the default model's 90% band held "
                     f"this share of held-out runs by distance: {held}; the bands widen with the distance, so "
                     "coverage holds roughly level, but few held-out runs lay beyond 2 decades.")
    lines.append(f"Fitted range: C from {reach.lower.get('C', float('nan')):.3g} to "
                 f"{reach.upper.get('C', float('nan')):.3g} FLOP, N from {reach.lower.get('N', float('nan')):.3g} "
                 f"to {reach.upper.get('N', float('nan')):.3g}, D from {reach.lower.get('D', float('nan')):.3g} to "
                 f"{reach.upper.get('D', float('nan')):.3g}.")
    lines.append(f"Compute is C = {k:g} N D; the compute-optimal plan is the posterior-median optimal N with "
                 "D = C / (k N); 'new run' bands add run-to-run noise to the curve's uncertainty.")
    if not fit.converged:
        lines.append("The sampler did not converge: every number in this report is unreliable until it does.")
    doc.items(lines)


def _returns(doc, fit, budgets, prob, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the caveats section states the distances
        table = fit.marginal_returns(budgets, prob, flops_per_param_token=k)
        fig = fit.plot_marginal_returns(budgets, flops_per_param_token=k)
    doc.para(f"Along the compute-optimal frontier, per budget: the loss, its slope d loss / d log10 C, the loss "
             f"gained by doubling the compute, and the compute at which the expected loss is 0.01 lower "
             f"(median and {prob:.0%} interval; never_prob: share of draws that never gain 0.01).")
    keep = [c for c in table.columns if c == "C" or c == "never_prob"
            or c.rsplit("_", 1)[0] in ("loss", "slope", "gain_doubling", "C_next")]
    doc.table(table[keep], index=False)
    doc.figure(fig, "Loss gained per decade of compute along the compute-optimal frontier, with 50% and 90% bands.")


#: Candidate runs of the report's next-run section: a 5 x 5 grid of N and D.
NEXT_RUN_POINTS = 5


def next_run_candidates(fit, flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
    """The report's default candidate runs: N and D from the ladder's median up to 10x its largest, costing no
    more than 10x its largest run (:func:`bayescale.analysis.nextrun.candidate_grid`, 5 x 5 points).

    Examples
    --------
    >>> next_run_candidates(fit).shape  # doctest: +SKIP
    (20, 3)
    """
    runs = fit.runs.inputs(["N", "D"])
    n, d = np.asarray(runs["N"], float), np.asarray(runs["D"], float)
    top = float(np.max(flops_per_param_token * n * d))
    return candidate_grid((float(np.median(n)), 10 * float(n.max())), (float(np.median(d)), 10 * float(d.max())),
                          points=NEXT_RUN_POINTS, max_cost=10 * top, flops_per_param_token=flops_per_param_token)


def _contrasts(doc, fit, reference, groups, budgets, prob, k):
    others = [g for g in groups if g != reference]
    rows, moved = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in others:
            t = contrast(fit, reference, g, budgets, prob=prob, flops_per_param_token=k)
            for _, r in t.iterrows():
                rows.append({"group": g, "C": r["C"],
                             "compute multiplier": f"{r['compute_multiplier_median']:.3g} "
                                                   f"[{r['compute_multiplier_lower']:.3g}, "
                                                   f"{r['compute_multiplier_upper']:.3g}]",
                             "loss difference": f"{r['loss_difference_median']:+.4f} "
                                                f"[{r['loss_difference_lower']:+.4f}, "
                                                f"{r['loss_difference_upper']:+.4f}]",
                             "P(better)": f"{r['prob_other_better']:.2f}"})
            params = contrast_params(fit, reference, g, prob=prob)
            which = params.loc[params["moved"], "parameter"].tolist()
            moved.append(f"{g}: " + (", ".join(which) + " moved" if which else "no parameter moved")
                         + f" ({prob:.0%} interval of the ratio to {reference} excludes 1)")
        fig = plot_contrast(fit, reference, others, budgets, flops_per_param_token=k)
    doc.para(f"Each group against {reference} at the budgets (compute-optimal plans of each): the compute "
             f"multiplier is how many times less compute the group needs to reach the loss {reference} reaches "
             f"at C (above 1: more efficient; 0: never, its irreducible loss is higher); the loss difference is "
             f"group - {reference} (negative: better); medians and {prob:.0%} intervals. The form uncertainty "
             f"beyond the runs is common to both groups and left out.")
    frame = pd.DataFrame(rows)
    frame["C"] = [f"{c:.3g}" for c in frame["C"]]
    doc.table(frame, index=False)
    doc.items(moved)
    doc.figure(fig, f"Compute multiplier (upper, log scale) and loss difference (lower) of each group against "
                    f"{reference}, with 50% and 90% bands; shaded: beyond the fitted runs.")


def _next_run(doc, fit, candidates, budget, prob, k, random_seed, group=None):
    if candidates is None:
        candidates = next_run_candidates(fit, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = fit.recommend_runs(candidates, quantity="n_opt", budget=budget, prob=prob,
                                   flops_per_param_token=k, random_seed=random_seed, group=group)
        fig = plot_recommendations(fit, table)
    a = table.attrs
    doc.para(f"Candidate runs ranked by how much one more run is expected to narrow the {prob:.0%} interval of "
             f"log10 N_opt at {budget:.3g} FLOP (today {a['lower']:.4g} to {a['upper']:.4g}, "
             f"{a['upper'] - a['lower']:.3g} {a['units']}), per FLOP it costs: preposterior analysis by importance "
             "reweighting of the posterior draws (bayescale.analysis.nextrun). ess_min: fewest effective draws over the "
             "simulated outcomes; reliable = no: the run would teach more than the draws can show.")
    cols = ["rank", "N", "D", "C", "expected_width", "shrinkage_fraction", "shrinkage_per_flop", "ess_min",
            "reliable", "beyond"]
    doc.table(table[cols].head(8), index=False)
    doc.figure(fig, "Expected shrinkage per FLOP over the (N, D) plane; dots: the fitted runs; star: the best "
                    "candidate; dotted: lines of equal compute.")


def _undertuned(doc, fit, prob):
    table = fit.undertuned_runs()
    likely = table[table["probability"] >= 0.5]
    doc.para(f"The model lets each run sit above the law by a non-negative excess (possibly undertuned runs). "
             f"{len(likely)} of {len(table)} runs are undertuned with posterior probability >= 0.5"
             + (":" if len(likely) else "."))
    if len(likely):
        doc.table(likely, index=False)


def _backtest(doc, fit, prob, random_seed):
    methods = {"bayescale": fit.model}
    if not getattr(fit.model, "hierarchical", False):
        methods["point estimate"] = Approach3() if fit.model.law.name == "chinchilla" else \
            PointModel(fit.model.law, loss="huber")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = backtest(methods, fit.runs, prob=(0.5, prob), random_seed=random_seed)
    doc.para(f"Each method fitted on the smaller runs and scored on the largest 10% by compute "
             f"({table.attrs.get('holdout', '')}): mean and largest absolute percentage error (mape, max_ape, "
             "in %), coverage of the new-run bands, mean log predictive density (lpd).")
    keep = [c for c in table.columns if c in ("method", "n_train", "n_test", "mape", "max_ape", "lpd", "converged")
            or c.startswith("coverage_")]
    doc.table(table[keep], index=False)


@renamed(budgets="budget")
def _downstream(doc, fit, link, budgets, task_target, prob, k, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = task_risk(fit, link, budgets, target=task_target, prob=prob, flops_per_param_token=k,
                          random_seed=seed)
    doc.para(f"Two steps: each draw of the loss of the compute-optimal run (this fit's predictive distribution, "
             f"with its form uncertainty) pushed through a draw of each task's link from loss to score (a sigmoid "
             f"between the task's chance level and a learned ceiling, fitted on {len(link.data)} (model, task) "
             f"scores of {len(link.tasks)} tasks). The curve band is the link's expected score; the new-run band "
             f"one new run evaluated on the task's items. beyond_loss: nats below the task's fitted losses.")
    keep = ["C", "task", "chance", "loss_median", "accuracy_median", "curve_lower", "curve_upper", "new_run_lower",
            "new_run_upper", "target", "p_target", "beyond_loss"]
    doc.table(table[[c for c in keep if c in table.columns]], index=False, digits=3)
    mids = link.summary(prob).xs("midpoint", level="parameter")
    doc.para(f"Each task's midpoint (the loss half-way from chance to its ceiling), {prob:.0%} intervals; a task "
             "flat over the fitted losses has a wide one, and its scores beyond the data are uncertain:")
    doc.table(mids[["estimate", "lower", "upper"]], digits=3)


def report(fit, path=None, *, budget=None, target=None, prob=0.9, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
           backtest=False, next_run=True, candidates=None, reference=None,
           format=None, title=None, random_seed=None, downstream=None, task_target=None) -> str:
    """Write one self-contained report of a fit (HTML or Markdown).

    Parameters
    ----------
    fit : ScalingFit
    path : str or Path, optional
        File to write (``.html``/``.htm`` or ``.md``; written atomically).
        Without it the text is only returned.
    budget : float or sequence of float, optional
        Compute budgets (FLOPs) of the allocation and risk tables and figure
        readouts; default :func:`default_budgets` (the power of ten at or
        above the largest fitted run, 10x and 100x).
    target : float, optional
        Target loss: the risk table adds P(loss <= target) per budget.
    prob : float, default 0.9
        Probability of the intervals in the tables.
    flops_per_param_token : float, default 6
    backtest : bool, default False
        Also refit on the smaller runs and score the largest 10% (two more
        fits: tens of seconds).
    next_run : bool, default True
        Include the section on which run to train next
        (:func:`bayescale.analysis.nextrun.recommend_runs` for the compute-optimal N
        at the middle budget; a few seconds).
    candidates : DataFrame, optional
        Candidate runs of that section (``N``, ``D``, optional ``cost``);
        default :func:`next_run_candidates`.
    reference : label, optional
        Fits with groups: the group the others are compared against in the
        section on groups (compute multiplier, loss difference, which
        parameters moved: :func:`bayescale.contrast`), and the group the
        next run would join; default the first fitted group. A ValueError
        on fits without groups.
    format : {"html", "markdown"}, optional
        Default from the suffix of `path`, else HTML.
    title : str, optional
    random_seed : int, optional
        Seed of the predictive draws (default the fit's).
    downstream : DownstreamFit, optional
        A fitted link from this fit's loss to task scores: adds a section with each task's score at the
        budgets (:func:`bayescale.analysis.taskplan.task_risk`) and the link's midpoints.
    task_target : float or mapping of task to float, optional
        Scores to reach, for that section's P(score >= target).

    Returns
    -------
    str
        The report's text.

    Raises
    ------
    ValueError
        For an unknown format or suffix; FileNotFoundError when the folder
        of `path` does not exist (both before any work).

    Examples
    --------
    >>> html = fit.report("report.html", budget=[1e24, 1e25], target=2.0)  # doctest: +SKIP
    >>> fit.report("report.md")  # doctest: +SKIP
    """
    fmt = check_output(path, format)
    check_prob(prob)
    groups, reference = _reference_group(fit, reference)
    k = float(flops_per_param_token)
    budgets = default_budgets(fit, k) if budget is None else check_budgets(budget)
    if target is not None and not (isinstance(target, (int, float)) and not isinstance(target, bool)
                                   and math.isfinite(target) and target > 0):
        raise ValueError(f"target must be a positive loss, got {target!r}")
    seed = fit.settings.get("random_seed") if random_seed is None else random_seed
    doc = Document()
    title = title or f"Scaling-law fit report: {fit.model.law.name} law, {fit.runs.n_runs} runs"
    doc.heading(title, 1)
    doc.para(f"bayescale {__version__}, written {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
             cls="note")
    _status(doc, fit)

    doc.heading("The decision")
    alloc, risk = _decision(doc, fit, budgets, target, prob, k, seed)
    if target is not None:
        doc.heading("Budget for the target")
        _budget_for(doc, fit, target, prob, k, seed)
    doc.heading("What was fitted")
    _fitted(doc, fit)
    doc.heading("Diagnostics")
    _diagnostics(doc, fit)
    doc.heading("Parameters: posterior and point estimate")
    _parameters(doc, fit, prob)
    doc.heading("Allocation and risk at the budgets")
    _allocation_and_risk(doc, alloc, risk, target)
    if downstream is not None:
        doc.heading("Task scores at the budgets")
        _downstream(doc, fit, downstream, budgets, task_target, prob, k, seed)
    if groups is not None and len(groups) > 1:
        doc.heading(f"Groups compared with {reference}")
        _contrasts(doc, fit, reference, groups, budgets, prob, k)
    doc.heading("What more compute buys")
    _returns(doc, fit, budgets, prob, k)
    if next_run:
        doc.heading("Which run to train next" + ("" if groups is None else f" (joining {reference})"))
        _next_run(doc, fit, candidates, float(budgets[len(budgets) // 2]), prob, k, seed, reference)
    if getattr(fit.model, "undertuned", False):
        doc.heading("Possibly undertuned runs")
        _undertuned(doc, fit, prob)
    doc.heading("Figures")
    _figures(doc, fit, budgets, prob, k, seed)
    if backtest:
        doc.heading("Backtest on the largest runs")
        _backtest(doc, fit, prob, seed)
    doc.heading("Assumptions and caveats")
    _caveats(doc, fit, budgets, k)

    if fmt == "html":
        text = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
                + "\n".join(doc.html) + "\n</body>\n</html>\n")
    else:
        text = "\n".join(doc.md)
    if path is not None:
        write_document(path, text)
    return text


def _reference_group(fit, reference):
    """The fitted groups (None without groups) and the reference group of the sections on groups."""
    if not getattr(fit.model, "hierarchical", False):
        if reference is not None:
            raise ValueError(f"reference={reference!r} names a group, but this fit has no groups")
        return None, None
    groups = fitted_groups(fit)
    reference = groups[0] if reference is None else reference
    if str(reference) not in groups:
        raise ValueError(f"reference={reference!r} is not a fitted group; fitted groups: {', '.join(groups)}")
    return groups, str(reference)


def _status(doc, fit) -> None:
    """The coloured line under the title: converged and checked, converged with a failed check, or not converged."""
    checks = caveats(fit)
    if fit.converged and not checks:
        doc.para("Sampler converged; model checks passed.", cls="status ok")
    elif fit.converged:
        doc.para("Sampler converged, but a model check failed (see the verdict below).", cls="status bad")
    else:
        doc.para("NOT CONVERGED: the sampler failed its diagnostics; do not use these numbers for a decision "
                 "until it does (see Diagnostics).", cls="status bad")


def _fitted(doc, fit) -> None:
    """Law, likelihood, priors, form uncertainty, the data's ranges and the sampler's settings."""
    law, s, frame = fit.model.law, fit.settings, fit.runs.frame
    doc.items([f"Law: {law.name}, L = {law.formula}", f"Likelihood: {fit.model.likelihood} on log loss",
               f"Priors: " + ", ".join(f"{name} ~ {p}" for name, p in fit.priors_.items()),
               f"Form uncertainty: {fit.model.form_uncertainty if fit.model.form_uncertainty else 'off'}",
               f"Data: {fit.runs.n_runs} runs; " + "; ".join(
                   f"{c} {frame[c].min():.3g} to {frame[c].max():.3g}" for c in (*law.inputs, "loss")),
               f"Sampler: {s['sampler']}, {s['chains']} chains x {s['draws']} draws ({s['tune']} tuning), "
               f"seed {s['random_seed']}"])


def _diagnostics(doc, fit) -> None:
    """The sampler's diagnostics beside the values wanted."""
    d = fit.diagnostics()
    diag = pd.DataFrame({"value": [f"{d['max_r_hat']:.4f}", f"{d['min_ess_bulk']:.0f}", f"{d['min_ess_tail']:.0f}",
                                   str(d["divergences"]), f"{d['mean_leapfrog_steps']:.1f}", str(d["max_tree_depth"]),
                                   f"{d['sampling_seconds']:.1f}", "yes" if fit.converged else "NO"],
                         "wanted": ["<= 1.01", ">= 400", ">= 400", "0", "", "", "", "yes"]},
                        index=pd.Index(["max R-hat", "min bulk ESS", "min tail ESS", "divergences",
                                        "mean leapfrog steps", "max tree depth", "sampling seconds", "converged"],
                                       name="diagnostic"))
    doc.table(diag)


def _allocation_and_risk(doc, alloc, risk, target) -> None:
    """The allocation table and the loss of the compute-optimal plan at each budget."""
    doc.para("Compute-optimal allocation (posterior of N_opt, D_opt and the loss at the optimum):")
    doc.human_table(alloc.drop(columns=["converged"], errors="ignore"))
    keep = ["C", "loss_median", "curve_lower", "curve_upper", "new_run_lower", "new_run_upper"] + (
        ["p_target"] if target is not None else []) + ["beyond"]
    doc.para("Loss of the compute-optimal plan at each budget: the expected loss (curve) and one new run"
             + (f", and P(loss <= {target:g})" if target is not None else "") + ":")
    doc.human_table(risk[[c for c in keep if c in risk.columns]])


def _figures(doc, fit, budgets, prob, k, seed) -> None:
    """The frontier, the allocation, the isoFLOP curves and the posterior predictive check, with captions."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figures = [
            (fit.plot_frontier(budgets, flops_per_param_token=k, random_seed=seed),
             "Loss against compute: observed runs, the compute-optimal frontier with its 50% and 90% bands "
             "(shaded: curve; dashed: one new run), readouts at the budgets, extrapolation shaded."),
            (fit.plot_allocation(budgets, flops_per_param_token=k),
             "Compute-optimal parameters N and tokens D against compute, with 50% and 90% bands."),
            (fit.plot_isoflop(flops_per_param_token=k),
             "IsoFLOP curves: loss against model size at fixed compute, with bands and the runs near each level."),
            (posterior_predictive(fit, prob=prob, random_seed=seed).plot(),
             "Posterior predictive check on the fitted runs: observed / predicted with the new-run band, and "
             "the PIT histogram (flat if calibrated)."),
        ]
    for fig, caption in figures:
        doc.figure(fig, caption)


register_writer("report", report)  # ScalingFit.report writes through it (results sit below the front ends)
