"""Compute-optimal allocation: the array layer (NumPy, vectorised over draws).

Minimise L(N, D) subject to ``k N D = C`` (``k = 6`` FLOPs per parameter per
token by default). For the Chinchilla law the optimum is closed-form::

    N_opt = G (C/k)^(beta/(alpha+beta)),  D_opt = (C/k) / N_opt,
    G = (alpha A / (beta B))^(1/(alpha+beta)).

For any other law with inputs ``N`` and ``D`` (and optionally ``U``) the
optimum is found numerically in log N, for every parameter draw and budget at
once (a coarse grid, then golden-section search; deterministic).

These functions take parameter *arrays* of any shape — posterior draws
shaped (chain, draw), bootstrap resamples shaped (n_boot,), or plain floats —
and budgets of any shape. Results are shaped ``params_shape + budget_shape``:
parameters shaped (S,) and budgets shaped (B,) give (S, B); a scalar budget
gives ``params_shape``.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from .errors import SpecError
from .validation import check_budgets as _budgets, check_prob as _check_prob, positive_array as _positive
from .form import irreducible_draws, shift_allocation, shift_crossover
from .laws import NUMPY, get_law

__all__ = ["chinchilla_optimum", "optimal_allocation", "crossover_compute", "allocate", "allocate_draws"]

#: Tokens per parameter searched by the numerical optimiser: 1e-6 to 1e8.
RATIO_RANGE = (1e-6, 1e8)
_GRID_POINTS = 48
_GOLDEN_STEPS = 40
_INVPHI = (np.sqrt(5.0) - 1.0) / 2.0


def chinchilla_optimum(params, budget, flops_per_param_token=6.0):
    """Closed-form compute-optimal N and D of the Chinchilla law.

    Parameters
    ----------
    params : mapping
        ``A``, ``B``, ``alpha``, ``beta`` as arrays (e.g. posterior draws) or floats.
    budget : float or array
        Compute C in FLOPs; broadcast against the parameters.
    flops_per_param_token : float, default 6

    Returns
    -------
    N_opt, D_opt : ndarray
        Computed in log space, so budgets from 1e15 to 1e30 stay finite.

    Examples
    --------
    >>> p = dict(A=406.4, B=410.7, alpha=0.34, beta=0.28)
    >>> n, d = chinchilla_optimum(p, 5.76e23)
    >>> f"{float(n):.3g} {float(d):.3g}"
    '3.22e+10 2.98e+12'
    """
    a, b = np.asarray(params["alpha"], float), np.asarray(params["beta"], float)
    log_g = (np.log(a) + np.log(params["A"]) - np.log(b) - np.log(params["B"])) / (a + b)
    log_c = np.log(np.asarray(budget, float) / flops_per_param_token)
    log_n = log_g + (b / (a + b)) * log_c
    return np.exp(log_n), np.exp(log_c - log_n)


# ---------------------------------------------------------------- checks
def _is_chinchilla(law) -> bool:
    return law.function is get_law("chinchilla").function


def _check_law(law):
    law = get_law(law)
    if "N" not in law.inputs or "D" not in law.inputs or not set(law.inputs) <= {"N", "D", "U"}:
        raise SpecError(
            f"Law {law.name!r} has inputs {list(law.inputs)}; a compute-optimal allocation needs a law of "
            "N and D (optionally U), such as chinchilla, kaplan or data_constrained"
        )
    return law


def _params(law, params: Mapping) -> tuple[dict, tuple]:
    missing = [k for k in law.param_names if k not in params]
    if missing:
        raise SpecError(f"Law {law.name!r} needs parameter(s) {missing}; got {sorted(params)}")
    arrays = np.broadcast_arrays(*[np.asarray(params[k], dtype=float) for k in law.param_names])
    return dict(zip(law.param_names, arrays)), arrays[0].shape


def _expand(params: dict, pshape: tuple, bshape: tuple, extra: int = 0) -> dict:
    """Parameters reshaped to ``pshape + (1,)*len(bshape) + (1,)*extra`` for broadcasting."""
    shape = pshape + (1,) * (len(bshape) + extra)
    return {k: v.reshape(shape) for k, v in params.items()}


# ------------------------------------------------------------ optimiser
def _log_loss_along(law, p, log_n, c_over_k, cap):
    """Log loss at N = exp(log_n), D = (C/k)/N and, for laws with U, U = min(D, cap)."""
    n = np.exp(log_n)
    d = c_over_k / n
    inputs = {"N": n, "D": d}
    if "U" in law.inputs:
        inputs["U"] = d if cap is None else np.minimum(d, cap)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        out = np.asarray(law.log_loss(inputs, p, NUMPY), dtype=float)
    return np.where(np.isfinite(out), out, np.inf)


def _numerical_log_n(law, p, c_over_k, cap):
    """Minimiser of the log loss over log N at fixed C, vectorised over every element.

    ``p`` and ``c_over_k`` broadcast to the output shape; a grid of
    ``_GRID_POINTS`` values of log N brackets the optimum, golden-section
    search refines it to about 1e-8 in log N.
    """
    log_ck = np.log(c_over_k)
    lo = 0.5 * (log_ck - np.log(RATIO_RANGE[1]))
    hi = 0.5 * (log_ck - np.log(RATIO_RANGE[0]))
    t = np.linspace(0.0, 1.0, _GRID_POINTS)
    grid = lo[..., None] + (hi - lo)[..., None] * t
    pg = {k: v[..., None] for k, v in p.items()}
    cap_g = None if cap is None else np.asarray(cap)[..., None]
    values = _log_loss_along(law, pg, grid, np.asarray(c_over_k)[..., None], cap_g)
    shape = np.broadcast_shapes(*[v.shape for v in p.values()], log_ck.shape)
    grid = np.broadcast_to(grid, shape + (_GRID_POINTS,))
    values = np.broadcast_to(values, shape + (_GRID_POINTS,))
    best = np.argmin(values, axis=-1)
    edge = (best == 0) | (best == _GRID_POINTS - 1)
    if np.any(edge):
        warnings.warn(
            f"{int(edge.sum())} of {edge.size} optima lie at the edge of the searched range of "
            f"{RATIO_RANGE[0]:g} to {RATIO_RANGE[1]:g} tokens per parameter; the law has no interior "
            "optimum there (check the parameters)", RuntimeWarning, stacklevel=3)
    a = np.take_along_axis(grid, np.clip(best - 1, 0, _GRID_POINTS - 1)[..., None], -1)[..., 0]
    b = np.take_along_axis(grid, np.clip(best + 1, 0, _GRID_POINTS - 1)[..., None], -1)[..., 0]
    x1 = b - _INVPHI * (b - a)
    x2 = a + _INVPHI * (b - a)
    f1 = _log_loss_along(law, p, x1, c_over_k, cap)
    f2 = _log_loss_along(law, p, x2, c_over_k, cap)
    for _ in range(_GOLDEN_STEPS):
        left = f1 <= f2  # minimum in [a, x2]
        b = np.where(left, x2, b)
        a = np.where(left, a, x1)
        new_x = np.where(left, b - _INVPHI * (b - a), a + _INVPHI * (b - a))
        f_new = _log_loss_along(law, p, new_x, c_over_k, cap)
        x2, f2, x1, f1 = (np.where(left, x1, new_x), np.where(left, f1, f_new),
                          np.where(left, new_x, x2), np.where(left, f_new, f2))
    return np.where(f1 <= f2, x1, x2)


def optimal_allocation(law, params: Mapping, budget, *, flops_per_param_token=6.0, max_unique_tokens=None,
                       method="auto") -> dict:
    """Compute-optimal model size, tokens and loss for every parameter draw and budget.

    Parameters
    ----------
    law : Law or str
        A law with inputs ``N`` and ``D`` (and optionally ``U``).
    params : mapping of str to array
        Parameter values by name, all broadcastable to one shape P (posterior
        draws shaped (chain, draw), bootstrap resamples shaped (n_boot,), or
        floats).
    budget : float or array, shape B
        Compute C in FLOPs.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    max_unique_tokens : float, optional
        Fresh-data cap U. For a law with a repetition term (``U`` input, e.g.
        ``data_constrained``) the optimum is found with the unique tokens
        fixed at ``min(D, U)`` (tokens repeat once D exceeds U). For a law
        without one, D is capped at U (``N = C / (k U)`` where the
        unconstrained optimum needs more than U tokens).
    method : {"auto", "closed_form", "numerical"}
        ``auto``: closed form for the Chinchilla law without a cap, the
        numerical optimiser otherwise.

    Returns
    -------
    dict of ndarray
        ``N``, ``D``, ``loss`` (the law's expected loss at the optimum),
        ``tokens_per_param`` (D/N) and ``data_bound`` (True where the cap
        binds), each shaped ``P + B``; for laws with a ``U`` input also ``U``
        (unique tokens used) and ``epochs`` (D/U). ``k N D = C`` holds to
        rounding.

    Examples
    --------
    >>> import numpy as np
    >>> p = dict(E=1.82, A=482.0, B=2085.4, alpha=0.348, beta=0.366)
    >>> out = optimal_allocation("chinchilla", p, [1e21, 5.88e23])
    >>> out["N"].shape, np.round(out["tokens_per_param"], 1)
    ((2,), array([21.6, 18.4]))
    >>> draws = {k: np.full(3, v) for k, v in p.items()}   # three identical draws
    >>> optimal_allocation("chinchilla", draws, [1e21, 5.88e23])["N"].shape
    (3, 2)
    >>> num = optimal_allocation("chinchilla", p, 5.88e23, method="numerical")
    >>> bool(abs(num["N"] / optimal_allocation("chinchilla", p, 5.88e23)["N"] - 1) < 1e-6)
    True
    """
    law = _check_law(law)
    if method not in ("auto", "closed_form", "numerical"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'numerical', got {method!r}")
    k = float(_positive(flops_per_param_token, "flops_per_param_token"))
    c = _positive(budget, "budget")
    cap = None if max_unique_tokens is None else float(_positive(max_unique_tokens, "max_unique_tokens"))
    p, pshape = _params(law, params)
    pe = _expand(p, pshape, c.shape)
    c_over_k = c / k
    closed = _is_chinchilla(law) and method != "numerical"
    if method == "closed_form" and not _is_chinchilla(law):
        raise SpecError(f"no closed-form optimum for law {law.name!r}; use method='numerical'")

    if closed:
        n, _ = chinchilla_optimum(pe, c, k)
        n = np.broadcast_to(n, pshape + c.shape)
    else:
        n = np.exp(_numerical_log_n(law, pe, c_over_k, cap if "U" in law.inputs else None))
    bound = np.zeros(n.shape, dtype=bool)
    if cap is not None and "U" not in law.inputs:
        bound = (c_over_k / n) > cap
        n = np.where(bound, c_over_k / cap, n)
    elif cap is not None:
        # Unconstrained optimum (fresh data only) needs more than U tokens: the cap binds.
        free = optimal_allocation(law, params, budget, flops_per_param_token=k, method=method)
        bound = free["D"] > cap
    n = np.broadcast_to(n, pshape + c.shape).copy()
    d = c_over_k / n
    inputs = {"N": n, "D": d}
    out = {"N": n, "D": d}
    if "U" in law.inputs:
        inputs["U"] = d if cap is None else np.minimum(d, cap)
        out["U"] = inputs["U"]
        out["epochs"] = d / inputs["U"]
    out["loss"] = np.broadcast_to(np.exp(law.log_loss(inputs, pe, NUMPY)), n.shape).copy()
    out["tokens_per_param"] = d / n
    out["data_bound"] = bound
    return out


def crossover_compute(law, params: Mapping, max_unique_tokens, *, flops_per_param_token=6.0) -> np.ndarray:
    """Compute at which the unconstrained optimal run first needs more than U unique tokens.

    Beyond this budget data, not compute, is the binding constraint.

    Parameters
    ----------
    law : Law or str
    params : mapping of str to array
        Parameter draws, broadcastable to shape P.
    max_unique_tokens : float or array, shape B
        Unique tokens available.
    flops_per_param_token : float, default 6

    Returns
    -------
    ndarray, shape ``P + B``
        Closed form for the Chinchilla law, ``C = k (G U)^((alpha+beta)/alpha)``;
        otherwise bisection on log C (the optimal D grows with C) to 1e-9 in
        log C.

    Examples
    --------
    >>> p = dict(E=1.82, A=482.0, B=2085.4, alpha=0.348, beta=0.366)
    >>> c = crossover_compute("chinchilla", p, 1e12)
    >>> f"{float(c):.3g}"
    '3.22e+23'
    >>> f'{float(optimal_allocation("chinchilla", p, c)["D"]):.6g}'
    '1e+12'
    """
    law = _check_law(law)
    k = float(_positive(flops_per_param_token, "flops_per_param_token"))
    u = _positive(max_unique_tokens, "max_unique_tokens")
    p, pshape = _params(law, params)
    pe = _expand(p, pshape, u.shape)
    if _is_chinchilla(law):
        a, b = pe["alpha"], pe["beta"]
        log_g = (np.log(a) + np.log(pe["A"]) - np.log(b) - np.log(pe["B"])) / (a + b)
        out = k * np.exp((a + b) / a * (log_g + np.log(u)))
        return np.broadcast_to(out, pshape + u.shape).copy()
    # D_opt(C) increases with C: bisection on log C, every element at once.
    shape = pshape + u.shape
    # At the crossover D = U, so C = k U^2 / (D/N) over the searched range of D/N.
    lo = np.broadcast_to(np.log(k * u * u / RATIO_RANGE[1]), shape).copy()
    hi = np.broadcast_to(np.log(k * u * u / RATIO_RANGE[0]), shape).copy()
    uu = np.broadcast_to(u, shape)
    flat = {name: np.broadcast_to(v, shape) for name, v in pe.items()}
    for _ in range(int(np.ceil(np.log2((hi - lo).max() / 1e-9)))):
        mid = 0.5 * (lo + hi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            log_n = _numerical_log_n(law, flat, np.exp(mid) / k, None)
        d = np.exp(mid) / k / np.exp(log_n)
        above = d > uu
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.exp(0.5 * (lo + hi))


# ------------------------------------------------------------ ScalingFit layer
SAMPLE_DIMS = ("chain", "draw")


def posterior_params(fit, group=None, random_seed=None) -> dict:
    """Posterior draws of the law's parameters as arrays shaped (chain, draw).

    For a fit with groups: the draws of `group` (a fitted group's label), or
    with ``group=None`` those of a new group drawn from the population
    (``fit.param_draws(group, random_seed=...)``, the same draws
    ``fit.predict_draws(..., group=group, random_seed=...)`` uses).
    """
    if hasattr(fit, "param_draws"):
        draws = fit.param_draws(group, random_seed=random_seed)
        return {k: np.asarray(draws[k]) for k in fit.model.law.param_names}
    post = fit.posterior
    return {k: post[k].values for k in fit.model.law.param_names}


def allocate_draws(fit, budget, *, flops_per_param_token=6.0, max_unique_tokens=None, group=None):
    """Posterior draws of the compute-optimal allocation at each budget.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float
        Compute budgets in FLOPs.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    max_unique_tokens : float, optional
        Fresh-data cap; see :func:`optimal_allocation`.
    group : label, optional
        Fits with groups: a fitted group's label, or ``None`` (default) /
        ``"new"`` for a new group drawn from the population. Ignored by fits
        without groups.

    Returns
    -------
    xarray.Dataset
        ``N``, ``D``, ``tokens_per_param``, ``loss`` (expected loss at the
        optimum), ``data_bound`` (and ``U``, ``epochs`` for laws with unique
        tokens), dims ``(chain, draw, budget)``. Budgets beyond the fitted
        runs' compute include the model's form uncertainty in N_opt, D_opt
        and the loss (:func:`bayescale.form.shift_allocation`) — the posterior's own chain
        and draw dimensions, so ArviZ functions apply; use
        ``ds.stack(sample=("chain", "draw"))`` for one flat draw dimension.
        Coordinate ``budget`` holds the FLOPs.

    Examples
    --------
    >>> ds = fit.allocate_draws([1e23, 1e24])  # doctest: +SKIP
    >>> ds["tokens_per_param"].median(("chain", "draw"))  # doctest: +SKIP
    """
    import xarray as xr

    c = _budgets(budget)
    params = posterior_params(fit, group)
    out = optimal_allocation(fit.model.law, params, c, flops_per_param_token=flops_per_param_token,
                             max_unique_tokens=max_unique_tokens)
    out = shift_allocation(fit, out, c, float(flops_per_param_token), max_unique_tokens, irreducible_draws(fit, params))
    post = fit.posterior
    dims = (*SAMPLE_DIMS, "budget")
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "budget": c}
    ds = xr.Dataset({k: (dims, v) for k, v in out.items()}, coords=coords)
    ds["budget"].attrs["units"] = "FLOP"
    ds.attrs.update(law=fit.model.law.name, flops_per_param_token=float(flops_per_param_token))
    if max_unique_tokens is not None:
        ds.attrs["max_unique_tokens"] = float(max_unique_tokens)
    if getattr(fit.model, "hierarchical", False):
        ds.attrs["group"] = "new" if group is None else str(group)
    return ds


def _interval(values, prob, axis=0):
    """Median and central interval along ``axis``."""
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    med, lower, upper = np.quantile(values, [0.5, lo, hi], axis=axis)
    return med, lower, upper


@np.errstate(all="ignore")  # non-finite results are reported by check_table, with their reason
def allocate(fit, budget, *, prob=0.9, flops_per_param_token=6.0, max_unique_tokens=None, group=None):
    """Compute-optimal model size, tokens and loss at each budget, with posterior intervals.

    Parameters
    ----------
    fit : ScalingFit
    budget : float or sequence of float
        Compute budgets C in FLOPs.
    prob : float, default 0.9
        Probability of the central intervals.
    flops_per_param_token : float, default 6
        k in ``C = k N D``.
    max_unique_tokens : float, optional
        Fresh-data cap U (see :func:`optimal_allocation`). Adds the columns
        ``data_bound_prob`` (posterior probability that the cap binds at that
        budget) and ``crossover_C_*`` (the compute beyond which the
        unconstrained optimal run needs more than U tokens).
    group : label or list of labels, optional
        Fits with groups: a fitted group's label, ``None`` (default) or
        ``"new"`` for a new group drawn from the population, or a list of
        them (one block of rows per group, with a ``group`` column).
        Ignored by fits without groups.

    Returns
    -------
    DataFrame
        One row per budget: ``C``, then ``*_median``, ``*_lower``, ``*_upper``
        for ``N``, ``D``, ``tokens_per_param`` and ``loss`` (the expected loss
        of the law at the optimum); for laws with unique tokens also ``U`` and
        ``epochs``; ``beyond_C``, ``beyond_N``, ``beyond_D``, ``beyond``
        (decades of the median plan outside the fitted runs' range, see
        :mod:`bayescale.extrapolation`) and ``tokens_per_param_outside``
        (the median tokens per parameter lie outside the runs' range), with
        one :class:`~bayescale.errors.ExtrapolationWarning` when a row lies
        more than one decade out or off the runs' tokens per parameter;
        ``converged`` (the fit's diagnostics). ``attrs``: ``prob``,
        ``law``, ``flops_per_param_token``, ``max_unique_tokens``. The draws
        are in :func:`allocate_draws`.

        The plan in each row is one run that spends the budget:
        ``N_median`` is the posterior median of N_opt taken on the log scale
        (``exp(median(log N_opt))``), ``D_median = C / (k N_median)`` and
        ``tokens_per_param_median = D_median / N_median``, so
        ``k N_median D_median = C`` holds to rounding however wide or
        degenerate the posterior (each draw's D_opt and D/N fall as its
        N_opt grows, so these are also the medians of their own draws). The
        intervals are the marginal quantiles of each quantity's draws, for
        N, D and tokens per parameter interpolated on the log scale as the
        median is (so lower <= median <= upper even for a few draws decades
        apart); ``loss``, ``U`` and ``epochs`` are plain marginal medians and
        quantiles. Non-finite
        values and a plan of less than one parameter or token come with a
        :class:`~bayescale.errors.DegenerateResultWarning` that names the
        columns, rows and reason.

    Examples
    --------
    >>> fit.allocate([1e23, 1e24, 1e25], prob=0.9)  # doctest: +SKIP
    """
    import pandas as pd

    from .errors import DegenerateResultWarning, ExtrapolationWarning
    from .extrapolation import annotate, warn_extrapolation
    from .tablecheck import check_table, draw_problems

    _check_prob(prob)
    reach_cols = dict(n="N_median", d="D_median", c="C", tokens_per_param="tokens_per_param_median",
                      flops_per_param_token=flops_per_param_token)
    if isinstance(group, (list, tuple)):
        with warnings.catch_warnings(record=True) as caught:  # one warning for the whole table, below
            warnings.simplefilter("ignore", ExtrapolationWarning)
            warnings.simplefilter("always", DegenerateResultWarning)
            frames = [allocate(fit, budget, prob=prob, flops_per_param_token=flops_per_param_token,
                               max_unique_tokens=max_unique_tokens, group=g) for g in group]
        out = pd.concat(frames, ignore_index=True)
        out.attrs.update(frames[0].attrs)
        warn_extrapolation(out, fit.runs, what="allocate",
                           stacklevel=3, **reach_cols, form=fit.model.form_uncertainty)
        _rewarn(caught, DegenerateResultWarning, stacklevel=3)
        return out
    ds = allocate_draws(fit, budget, flops_per_param_token=flops_per_param_token,
                        max_unique_tokens=max_unique_tokens, group=group)
    c = ds["budget"].values
    frame = pd.DataFrame({"C": c})
    if "group" in ds.attrs:
        frame.insert(0, "group", ds.attrs["group"])
    if max_unique_tokens is not None:
        frame["max_unique_tokens"] = float(max_unique_tokens)
    names = ["N", "D", "tokens_per_param", "loss"] + [k for k in ("U", "epochs") if k in ds]
    for name in names:
        flat = ds[name].values.reshape(-1, c.size)
        if name in PLAN_COLUMNS:  # quantiles on the log scale, like the plan (see the docstring)
            with np.errstate(divide="ignore", invalid="ignore"):
                flat = np.exp(_interval(np.log(flat), prob))
            frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = flat
        else:
            frame[f"{name}_median"], frame[f"{name}_lower"], frame[f"{name}_upper"] = _interval(flat, prob)
    n_draws = ds["N"].values.reshape(-1, c.size)
    _median_plan_columns(frame, n_draws, c, float(flops_per_param_token))
    usable = np.all(np.isfinite(n_draws), axis=0)
    if max_unique_tokens is not None:
        frame["data_bound_prob"] = np.where(usable, ds["data_bound"].values.reshape(-1, c.size).mean(axis=0),
                                            np.nan)  # never a probability over draws without a plan
        params = posterior_params(fit, group)
        cross = crossover_compute(fit.model.law, params, max_unique_tokens, flops_per_param_token=flops_per_param_token)
        cross = shift_crossover(fit, params, cross, max_unique_tokens, flops_per_param_token).ravel()
        frame["crossover_C_median"], frame["crossover_C_lower"], frame["crossover_C_upper"] = _interval(cross, prob)
    annotate(frame, fit.runs, what="allocate", stacklevel=3, **reach_cols, form=fit.model.form_uncertainty)
    frame["converged"] = bool(fit.converged)
    frame.attrs.update(prob=prob, law=fit.model.law.name, flops_per_param_token=float(flops_per_param_token),
                       max_unique_tokens=None if max_unique_tokens is None else float(max_unique_tokens))
    check_table(frame, "allocate", plan=("N_median", "D_median"), stacklevel=3,
                why=lambda: draw_problems(posterior_params(fit, group), n_draws))
    return frame


#: Columns of :func:`allocate` whose median is the plan and whose quantiles are taken on the log scale.
PLAN_COLUMNS = ("N", "D", "tokens_per_param")


def _median_plan_columns(frame, n_draws, budget, k):
    """Set ``N_median``, ``D_median`` and ``tokens_per_param_median`` to one plan that spends each budget.

    ``n_draws`` holds the draws of N_opt, shaped (draws, budgets): N is their
    median on the log scale, D = C / (k N), tokens per parameter D / N.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.exp(np.median(np.log(n_draws), axis=0))
        d = np.asarray(budget, dtype=float) / (k * n)
    frame["N_median"], frame["D_median"], frame["tokens_per_param_median"] = n, d, d / n


def _rewarn(caught, category, stacklevel):
    """Issue again, once each, the warnings of `category` among `caught` (others are issued as they were)."""
    seen = set()
    for w in caught:
        if not issubclass(w.category, category):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            warnings.warn(w.message, stacklevel=stacklevel + 1)
