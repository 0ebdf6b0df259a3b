"""Model-averaged decisions: predictions, allocations, risk and marginal returns of a weighted mixture of fits.

A decision should not rest on one law when the data do not single one out.
:func:`average` weighs fits of the same runs — by LOO stacking
(:func:`bayescale.analysis.selection.compare_loo`, Yao et al. 2018), pseudo-BMA, or
weights given by hand — and answers the questions a fit answers from the
*mixture* of their draws: for ``S`` draws in all, fit k gives ``round(w_k S)``
of its own (largest-remainder rounding, so the counts add up to ``S``; drawn
without replacement where it has enough, chosen once, seeded), and every band
is an interval of those pooled draws. A probability (``p_target``, the
compute :meth:`ModelAverage.budget_for` needs) is the mixture's: the share of
the pooled draws.

The compute-optimal plan of the mixture at a budget is the median plan of the
pooled draws of N_opt (:func:`bayescale.analysis.planning.median_plan`), and every fit
is asked about that one run. With all the weight on one fit, every table is
that fit's own, number for number.

Each table's ``attrs["interval"]`` names the mixture, e.g. ``"stacked
posterior ETI"``; :attr:`ModelAverage.weights` is the table of weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..core.allocation import crossover_compute, optimal_allocation
from ..analysis.contract import check_ci_kind, interval, interval_label, two_bands
from ..runs.data import load_runs
from ..base.errors import SpecError
from ..core.extrapolation import annotate
from ..core.shifts import irreducible_draws, shift_crossover
from ..analysis.planning import PLAN_COLUMNS, allocate_draws, median_plan, posterior_params
from ..analysis.predictive import predict_draws
from ..analysis.returns import marginal_draws, returns_table
from ..analysis.selection import check_same_runs, compare_loo
from ..analysis.risk import (check_target, budget_for_settings, budget_mcse, first_compute, mark_beyond_checked,
                             plan_log_loss, planned_runs, risk_draws, risk_frame, run_noise, search_range)
from ..base.tablecheck import check_table
from ..base.validation import (FLOPS_PER_PARAM_TOKEN, check_budgets, check_count, check_prob, check_seed,
                               positive_array)

__all__ = ["ModelAverage", "average", "WEIGHT_METHODS"]

#: Weights computed from the fits' PSIS-LOO (:func:`bayescale.analysis.selection.compare_loo`'s ``method``).
WEIGHT_METHODS = ("stacking", "pseudo-BMA", "BB-pseudo-BMA")

#: How each kind of weights names the mixture's intervals.
_PREFIX = {"stacking": "stacked", "pseudo-BMA": "pseudo-BMA", "BB-pseudo-BMA": "BB-pseudo-BMA", "given": "weighted"}


def average(fits, weights="stacking", *, draws=None, random_seed=None) -> "ModelAverage":
    """A weighted mixture of fits of the same runs, asked as one fit is.

    Parameters
    ----------
    fits : mapping or sequence of fits
        ``{name: fit}``, or a list (named by their laws). All must be fitted
        to the same runs, in the same order.
    weights : {"stacking", "pseudo-BMA", "BB-pseudo-BMA"}, mapping or array, default "stacking"
        LOO weights computed by :func:`bayescale.analysis.selection.compare_loo` (the
        fits must be posteriors with a pointwise log-likelihood), or weights
        by hand: ``{name: weight}`` or one number per fit, non-negative, not
        all zero (normalised to sum to 1).
    draws : int, optional
        Draws of the mixture; default the largest number of draws of a fit.
    random_seed : int, optional
        Seed of the choice of each fit's draws (default: the first fit's seed,
        else 0). The fits' own Monte Carlo draws (run-to-run noise) keep
        their seeds unless a method is given one.

    Returns
    -------
    ModelAverage

    Examples
    --------
    >>> avg = bs.average({"chinchilla": fit, "kaplan": other})  # doctest: +SKIP
    >>> avg.weights  # doctest: +SKIP
    >>> avg.allocate(1e24)  # doctest: +SKIP
    """
    return ModelAverage(fits, weights, draws=draws, random_seed=random_seed)


def _named(fits) -> dict:
    if isinstance(fits, Mapping):
        named = {str(k): v for k, v in fits.items()}
    else:
        fits = list(fits)
        labels = [str(getattr(getattr(f, "law", None), "name", f"fit {i}")) for i, f in enumerate(fits)]
        named = {(label if labels.count(label) == 1 else f"{label} #{i + 1}"): f
                 for i, (label, f) in enumerate(zip(labels, fits))}
    if len(named) < 2:
        raise SpecError(f"average needs at least two fits, got {len(named)}")
    for key, fit in named.items():
        if not all(hasattr(fit, a) for a in ("law", "runs", "param_draws", "draw_shape")):
            raise SpecError(f"fits[{key!r}] is a {type(fit).__name__}, not a fit; pass fits made with model.fit(runs)")
    return named


def _weights(named, weights):
    """(method, weights as an array in the order of `named`, LOO table or None)."""
    names = list(named)
    if isinstance(weights, str):
        method = {m.lower(): m for m in WEIGHT_METHODS}.get(weights.lower())
        if method is None:
            raise SpecError(f"unknown weights {weights!r}; valid: {', '.join(repr(m) for m in WEIGHT_METHODS)}, "
                            "or one weight per fit ({name: weight} or an array)")
        table = compare_loo(named, method=method)
        return method, table.loc[names, "weight"].to_numpy(dtype=float), table.loc[names]
    if isinstance(weights, Mapping):
        keys = {str(k) for k in weights}
        if keys != set(names):
            raise SpecError(f"weights must name every fit once: fits {names}, weights for {sorted(keys)}")
        by_name = {str(k): v for k, v in weights.items()}
        values = [by_name[k] for k in names]
    else:
        values = weights
    try:
        w = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"weights must be {', '.join(repr(m) for m in WEIGHT_METHODS)}, a mapping or an array of "
                        f"numbers, got {weights!r}") from None
    if w.shape != (len(names),):
        raise SpecError(f"weights must hold one number per fit ({len(names)}), got {weights!r}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise SpecError(f"weights must be finite, non-negative and not all zero, got {weights!r}")
    return "given", w / w.sum(), None


def _apportion(w, total):
    """Counts adding up to `total`, proportional to `w` (largest remainders)."""
    raw = w * total
    counts = np.floor(raw).astype(int)
    short = total - counts.sum()
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


class ModelAverage:
    """A weighted mixture of fits of the same runs; see :func:`average`.

    Every question (``predict``, ``allocate``, ``risk``, ``budget_for``,
    ``marginal_returns``) takes ``group=`` for fits with groups, as the fits'
    own methods do: a fitted group's label, or a new group.

    Attributes
    ----------
    fits : dict
        The fits by name.
    weights : DataFrame
        One row per fit: ``weight``, ``draws`` (its draws in the mixture),
        ``law``, ``draws_kind``, ``converged``, and for LOO weights
        ``elpd_loo``, ``se``, ``elpd_diff``, ``dse``.
    method : str
        ``"stacking"``, ``"pseudo-BMA"``, ``"BB-pseudo-BMA"`` or ``"given"``.
    """

    def __init__(self, fits, weights="stacking", *, draws=None, random_seed=None):
        named = _named(fits)
        check_same_runs(named, purpose="a mixture averages fits of the same runs", header="Fits cannot be averaged:")
        random_seed = check_seed(random_seed)
        total = None if draws is None else check_count(draws, "draws")
        self.fits = named
        self.method, w, loo = _weights(named, weights)
        first = next(iter(named.values()))
        seed = random_seed if random_seed is not None else (getattr(first, "random_seed", None) or 0)
        self.random_seed = seed
        sizes = np.array([int(np.prod(f.draw_shape)) for f in named.values()])
        total = int(sizes.max()) if total is None else total
        counts = _apportion(w, total)
        rng = np.random.default_rng([int(seed), 0xA7E])
        self._picks = {}
        for (name, _fit), size, count in zip(named.items(), sizes, counts):
            if count == size:
                picks = np.arange(size)
            else:
                picks = np.concatenate([np.tile(np.arange(size), count // size),
                                        np.sort(rng.choice(size, count % size, replace=False))])
            self._picks[name] = picks
        table = pd.DataFrame({"weight": w, "draws": counts,
                              "law": [f.law.name for f in named.values()],
                              "draws_kind": [f.draws_kind for f in named.values()],
                              "converged": [bool(f.converged) for f in named.values()]},
                             index=pd.Index(list(named), name="fit"))
        if loo is not None:
            for col in ("elpd_loo", "se", "elpd_diff", "dse"):
                table[col] = loo[col].to_numpy()
        table.attrs["method"] = self.method
        self.weights = table

    # ------------------------------------------------------------- helpers
    @property
    def runs(self):
        """The runs every fit was made on."""
        return next(iter(self.fits.values())).runs

    @property
    def converged(self) -> bool:
        """True when every fit with weight converged."""
        return bool(all(f.converged for name, f in self.fits.items() if self._picks[name].size))

    def _used(self):
        return [(name, fit) for name, fit in self.fits.items() if self._picks[name].size]

    def mix(self, per_fit: Mapping) -> np.ndarray:
        """Pool per-fit draws ``{name: array (draws of that fit, ...)}`` into the mixture's draws (S, ...)."""
        return np.concatenate([np.asarray(per_fit[name])[self._picks[name]] for name, _ in self._used()], axis=0)

    def _as_chains(self, values) -> np.ndarray:
        """Mixture draws shaped (chain, draw) when they are one fit's draws in their order (its chains then
        measure the effective sample size), flat otherwise."""
        values = np.asarray(values).ravel()
        used = self._used()
        if len(used) == 1:
            name, fit = used[0]
            picks = np.asarray(self._picks[name])
            if picks.size == values.size == int(np.prod(fit.draw_shape)) and np.array_equal(picks, np.arange(picks.size)):
                return values.reshape(fit.draw_shape)
        return values

    def _mix_flat(self, per_fit: Mapping, columns) -> np.ndarray:
        return self.mix({k: np.asarray(v).reshape(-1, columns) for k, v in per_fit.items()})

    def interval_label(self, ci_kind="eti") -> str:
        """The name of the mixture's intervals, e.g. ``"stacked posterior ETI"``."""
        kinds = {f.draws_kind for _, f in self._used()}
        base = interval_label(kinds.pop(), ci_kind) if len(kinds) == 1 else f"mixture {check_ci_kind(ci_kind).upper()}"
        return f"{_PREFIX[self.method]} {base}"

    def _form(self):
        return next(iter(self.fits.values())).form_uncertainty

    def _finish(self, frame, prob, ci_kind, **attrs):
        frame["converged"] = self.converged
        frame.attrs.update(prob=prob, interval=self.interval_label(ci_kind), method=self.method,
                           weights={name: float(w) for name, w in self.weights["weight"].items()}, **attrs)
        return frame

    # ------------------------------------------------------------ questions
    def predict(self, new_runs, prob=0.9, *, ci_kind="eti", random_seed=None, columns=None,
                group=None) -> pd.DataFrame:
        """Predicted loss of the mixture at new runs: curve band and new-run band, as :func:`predictive.predict`.

        Examples
        --------
        >>> avg.predict({"N": [7e10], "D": [1.4e12]})  # doctest: +SKIP
        """
        check_prob(prob)
        check_ci_kind(ci_kind)
        random_seed = check_seed(random_seed)
        inputs = sorted({name for _, f in self._used() for name in f.law.inputs})
        runs = load_runs(new_runs, columns=columns, require=inputs, require_loss=False)
        curve, new = {}, {}
        for name, fit in self._used():
            draws = predict_draws(fit, runs, random_seed=random_seed, group=group)
            curve[name], new[name] = draws["expected_loss"].values, draws["new_run_loss"].values
        curve, new = self._mix_flat(curve, runs.n_runs), self._mix_flat(new, runs.n_runs)
        frame = runs.frame[[c for c in runs.frame.columns if c in ("N", "D", "C", "U", "loss")]].copy()
        if "loss" in frame:
            frame = frame.rename(columns={"loss": "observed_loss"})
        (frame["loss_median"], frame["curve_lower"], frame["curve_upper"], frame["new_run_lower"],
         frame["new_run_upper"]) = two_bands(curve, new, prob, ci_kind)
        annotate(frame, self.runs, what="average.predict", stacklevel=2, form=self._form())
        frame.attrs.update(prob=prob, interval=self.interval_label(ci_kind), method=self.method)
        return frame

    def allocate(self, budget, prob=0.9, *, ci_kind="eti", flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                 max_unique_tokens=None, group=None) -> pd.DataFrame:
        """Compute-optimal N, D, tokens per parameter and loss of the mixture, as :func:`planning.allocate`.

        Examples
        --------
        >>> avg.allocate([1e23, 1e24])  # doctest: +SKIP
        """
        check_prob(prob)
        check_ci_kind(ci_kind)
        c = check_budgets(budget)
        k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
        per_fit = {name: allocate_draws(fit, c, flops_per_param_token=k, max_unique_tokens=max_unique_tokens,
                                        group=group)
                   for name, fit in self._used()}
        names = ["N", "D", "tokens_per_param", "loss"] + [q for q in ("U", "epochs")
                                                          if all(q in ds for ds in per_fit.values())]
        frame = pd.DataFrame({"C": c})
        if max_unique_tokens is not None:
            frame["max_unique_tokens"] = float(max_unique_tokens)
        mixed = {q: self._mix_flat({name: ds[q].values for name, ds in per_fit.items()}, c.size)
                 for q in names + ["data_bound"]}
        for q in names:
            if q in PLAN_COLUMNS:
                frame[f"{q}_median"], frame[f"{q}_lower"], frame[f"{q}_upper"] = np.exp(
                    interval(np.log(mixed[q]), prob, ci_kind))
            else:
                frame[f"{q}_median"], frame[f"{q}_lower"], frame[f"{q}_upper"] = interval(mixed[q], prob, ci_kind)
        n, d = median_plan(mixed["N"], c, k)
        frame["N_median"], frame["D_median"], frame["tokens_per_param_median"] = n, d, d / n
        if max_unique_tokens is not None:
            usable = np.all(np.isfinite(mixed["N"]), axis=0)
            frame["data_bound_prob"] = np.where(usable, mixed["data_bound"].mean(axis=0), np.nan)
            cross = {}
            for name, fit in self._used():
                params = posterior_params(fit, group)
                raw = crossover_compute(fit.law, params, max_unique_tokens, flops_per_param_token=k)
                cross[name] = shift_crossover(fit, params, raw, max_unique_tokens, k).ravel()
            frame["crossover_C_median"], frame["crossover_C_lower"], frame["crossover_C_upper"] = interval(
                self.mix(cross), prob, ci_kind)
        annotate(frame, self.runs, what="average.allocate", n="N_median", d="D_median", c="C",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=k, stacklevel=2,
                 form=self._form())
        self._finish(frame, prob, ci_kind, flops_per_param_token=k,
                     max_unique_tokens=None if max_unique_tokens is None else float(max_unique_tokens))
        check_table(frame, "average.allocate", plan=("N_median", "D_median"), stacklevel=2)
        return frame

    def _optimal_n(self, c, k, cap, params):
        """Pooled draws of N_opt (the law's own optimum, as risk's plans take it), shaped (S, budgets)."""
        return self._mix_flat({name: optimal_allocation(fit.law, params[name], c, flops_per_param_token=k,
                                                        max_unique_tokens=cap)["N"]
                               for name, fit in self._used()}, np.size(c))

    def risk(self, budget=None, *, target=None, plan=None, prob=0.9, ci_kind="eti",
             flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None, random_seed=None,
             group=None) -> pd.DataFrame:
        """Predictive loss bands, P(loss <= target) and allocation penalty of the mixture, as :func:`risk.risk`.

        The compute-optimal row's plan is the mixture's median plan; ``p_target`` is the share of the pooled
        new-run draws that reach the target.

        Examples
        --------
        >>> avg.risk([1e24], target=1.9, plan="70B:1.4T")  # doctest: +SKIP
        """
        random_seed = check_seed(random_seed)
        check_prob(prob)
        check_ci_kind(ci_kind)
        if budget is None and plan is None:
            raise ValueError("risk needs at least one budget (FLOPs) or one plan (N, D)")
        k = float(positive_array(flops_per_param_token, "flops_per_param_token"))
        cap = None if max_unique_tokens is None else float(positive_array(max_unique_tokens, "max_unique_tokens"))
        target = check_target(target)
        params = {name: posterior_params(fit, group, random_seed) for name, fit in self._used()}
        kinds, n, d = planned_runs(budget, plan, lambda c: median_plan(self._optimal_n(c, k, cap, params), c, k))
        curve, new, penalty = {}, {}, {}
        for name, fit in self._used():
            curve[name], new[name], penalty[name] = risk_draws(fit, n, d, flops_per_param_token=k,
                                                               max_unique_tokens=cap, random_seed=random_seed,
                                                               group=group, params=params[name])
        first = self._used()[0][1]
        frame = risk_frame(first.law, kinds, n, d, self.mix(curve), self.mix(new), self.mix(penalty), prob=prob,
                           ci_kind=ci_kind, target=target, flops_per_param_token=k, max_unique_tokens=cap)
        annotate(frame, self.runs, what="average.risk", tokens_per_param="tokens_per_param", stacklevel=2,
                 form=self._form())
        self._finish(frame, prob, ci_kind, target=target, flops_per_param_token=k, max_unique_tokens=cap)
        check_table(frame, "average.risk", plan=("N", "D"), stacklevel=2)
        return frame

    def budget_for(self, target, prob=0.9, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
                   random_seed=None, max_compute=1e40, group=None) -> pd.DataFrame:
        """Smallest compute at which the mixture's median plan reaches `target` with probability `prob`.

        As :func:`bayescale.analysis.risk.budget_for`, with the probability that of the mixture: the share of the pooled
        new-run draws (each fit's, at the mixture's median plan) at or below the target.

        Examples
        --------
        >>> avg.budget_for(1.9, prob=0.9)  # doctest: +SKIP
        """
        targets, random_seed, k, cap = budget_for_settings(target, prob, flops_per_param_token, max_unique_tokens,
                                                           random_seed)
        used = self._used()
        params = {name: posterior_params(fit, group, random_seed) for name, fit in used}
        noise = {name: run_noise(fit, random_seed, group) for name, fit in used}
        floor = {name: np.asarray(irreducible_draws(fit, params[name]))[..., None] for name, fit in used}
        log_lo, log_hi = search_range(used[0][1], k, max_compute)

        def plan(c):
            n, d = median_plan(self._optimal_n(np.atleast_1d(c), k, cap, params), np.atleast_1d(c), k)
            return float(n[0]), float(d[0])

        def log_new_run(log_c):
            n, d = plan(float(np.exp(log_c)))
            with np.errstate(invalid="ignore", over="ignore"):
                return self._mix_flat({name: plan_log_loss(fit, n, d, flops_per_param_token=k,
                                                            max_unique_tokens=cap, params=params[name],
                                                            floor=floor[name]) + noise[name]
                                       for name, fit in used}, 1)

        def p_reach(log_c, t):
            values = log_new_run(log_c)
            if not np.all(np.isfinite(values)):
                return np.nan
            return float(np.mean(values <= np.log(t)))

        def problems():
            return "overflow"

        rows = []
        for t in targets:
            c, status = first_compute(lambda g: p_reach(g, t), prob, log_lo, log_hi, problems)
            c_med, _ = first_compute(lambda g: p_reach(g, t), 0.5, log_lo, log_hi, problems)
            n, d = plan(c) if np.isfinite(c) else (np.nan, np.nan)
            with np.errstate(invalid="ignore"):
                mcse = (budget_mcse(self._as_chains(log_new_run(np.log(c)) <= np.log(t)), lambda g: p_reach(g, t),
                                    np.log(c)) if np.isfinite(c) else np.nan)
            rows.append(dict(target=float(t), prob=prob, C=c, C_mcse_decades=mcse, N=n, D=d, C_median_case=c_med,
                             status=status))
        frame = pd.DataFrame(rows)
        with np.errstate(invalid="ignore"):
            frame["tokens_per_param"] = frame["D"] / frame["N"]
        annotate(frame, self.runs, what="average.budget_for", tokens_per_param="tokens_per_param", stacklevel=2,
                 form=self._form())
        mark_beyond_checked(frame)
        frame["converged"] = self.converged
        frame.attrs.update(prob=prob, method=self.method, flops_per_param_token=k, max_unique_tokens=cap,
                           weights={name: float(w) for name, w in self.weights["weight"].items()})
        check_table(frame, "average.budget_for", plan=("N", "D"), label="target", stacklevel=2,
                    why=lambda: "; ".join(sorted(set(frame.loc[~np.isfinite(frame["C"]), "status"]))) or None)
        return frame

    def marginal_returns(self, budget, prob=0.9, *, ci_kind="eti", cost_per_flop=None, loss_step=0.01,
                         flops_per_param_token=FLOPS_PER_PARAM_TOKEN, max_unique_tokens=None,
                         max_compute=1e40, group=None) -> pd.DataFrame:
        """Slope, gain per doubling and compute for the next 0.01 of the mixture, as :func:`returns.marginal_returns`.

        Examples
        --------
        >>> avg.marginal_returns([1e23, 1e24], cost_per_flop=2e-18)  # doctest: +SKIP
        """
        import xarray as xr

        check_prob(prob)
        check_ci_kind(ci_kind)
        c = check_budgets(budget)
        per_fit = {name: marginal_draws(fit, c, loss_step=loss_step, flops_per_param_token=flops_per_param_token,
                                        max_unique_tokens=max_unique_tokens, max_compute=max_compute, group=group)
                   for name, fit in self._used()}
        first = next(iter(per_fit.values()))
        mixed = xr.Dataset({q: (("chain", "draw", "budget"),
                                self._mix_flat({name: ds[q].values for name, ds in per_fit.items()}, c.size)[None])
                            for q in first.data_vars}, coords={"budget": c})
        mixed.attrs.update(first.attrs)
        frame = returns_table(mixed, prob, ci_kind=ci_kind, cost_per_flop=cost_per_flop)
        annotate(frame, self.runs, what="average.marginal_returns", n="N_median", d="D_median", c="C",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=flops_per_param_token,
                 stacklevel=2, form=self._form())
        self._finish(frame, prob, ci_kind)
        unbounded = [col for col in frame.columns if col.startswith(("C_next", "cost_next"))]
        check_table(frame.drop(columns=unbounded), "average.marginal_returns", plan=("N_median", "D_median"),
                    stacklevel=2)
        return frame

    # ------------------------------------------------------------- display
    def __str__(self) -> str:
        what = {"stacking": "stacking weights", "pseudo-BMA": "pseudo-BMA weights",
                "BB-pseudo-BMA": "BB-pseudo-BMA weights", "given": "weights given"}[self.method]
        parts = ", ".join(f"{name} {w:.3f}" for name, w in self.weights["weight"].items())
        total = int(self.weights["draws"].sum())
        lines = [f"ModelAverage of {len(self.fits)} fits on {self.runs.n_runs} runs, {what}: {parts}",
                 f"  {total} mixture draws (seed {self.random_seed}); converged: {'yes' if self.converged else 'NO'}",
                 "  next: avg.weights, avg.predict(new_runs), avg.allocate(1e24), avg.risk(1e24, target=...), "
                 "avg.budget_for(target), avg.marginal_returns(1e24)"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
