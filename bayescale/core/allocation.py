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
gives ``params_shape``. The tables of a fit's allocation are in
:mod:`bayescale.analysis.planning`.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from ..base.errors import SpecError
from .laws import NUMPY, get_law
from ..base.validation import FLOPS_PER_PARAM_TOKEN, positive_array as _positive
from ..base.errors import warn_user

__all__ = ["chinchilla_optimum", "optimal_allocation", "crossover_compute"]

#: Tokens per parameter searched by the numerical optimiser: 1e-6 to 1e8.
RATIO_RANGE = (1e-6, 1e8)
_GRID_POINTS = 48
_GOLDEN_STEPS = 40
_INVPHI = (np.sqrt(5.0) - 1.0) / 2.0


def chinchilla_optimum(params, budget, flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
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
    log_c = np.log(_positive(budget, "budget") / _positive(flops_per_param_token, "flops_per_param_token"))
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
        warn_user(
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


def optimal_allocation(law, params: Mapping, budget, *, flops_per_param_token=FLOPS_PER_PARAM_TOKEN,
                       max_unique_tokens=None,
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


def crossover_compute(law, params: Mapping, max_unique_tokens, *,
                      flops_per_param_token=FLOPS_PER_PARAM_TOKEN) -> np.ndarray:
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
