"""The form uncertainty applied to a fit's draws: its loss and its allocation shifted, draw by draw, by
the discrepancy of :class:`bayescale.core.form.FormUncertainty` at each point's distance beyond the fitted runs.

The shifts act on the reducible part of the loss (:func:`reducible_fraction`, :func:`irreducible_draws`);
for laws with a frontier exponent a draw's loss shift grows no faster than its frontier falls, so its
compute-optimal loss does not rise with compute.
"""

from __future__ import annotations

import numpy as np

from ..base.validation import positive_array
from .extrapolation import Reach, decades_beyond
from .laws import get_law
from .form import REACH, growth, residual_scale

__all__ = ["loss_shift", "shift_log_loss", "allocation_shift", "shift_allocation", "shift_crossover",
           "reducible_fraction", "irreducible_draws"]


# ------------------------------------------------------------------ fit layer
def _setting(fit):
    return fit.form_uncertainty


def _frontier_decline(fit):
    """Per draw, how fast the law's compute-optimal reducible loss falls: gamma ln 10 per decade, or None.

    For laws with model-size and data exponents ``alpha`` and ``beta`` (the
    Chinchilla form, its tied and data-constrained variants) the frontier's
    reducible loss falls as C ** -gamma, gamma = alpha beta / (alpha + beta).
    """
    params = fit.param_draws()
    if not {"alpha", "beta"} <= set(params):
        return None
    a, b = np.asarray(params["alpha"], dtype=float), np.asarray(params["beta"], dtype=float)
    return a * b / (a + b) * np.log(10.0)


def _draws(fit):
    """Per posterior draw, the loss discrepancy's scale ``z s / f`` and the allocation's ``z_a allocation_scale``.

    A draw whose loss discrepancy would grow faster than its frontier's
    reducible loss falls (so that its compute-optimal loss would rise with
    compute somewhere) is held at 95% of that decline.
    """
    form = _setting(fit)
    z, z_a = form.standard_draws(int(np.prod(fit.draw_shape)), fit.random_seed)
    s = z.reshape(fit.draw_shape) * float(form.loss_scale_for(residual_scale(fit), reducible_fraction(fit)))
    decline = _frontier_decline(fit)
    if decline is not None:
        # the steepest slope of growth(d) (at the reach for powers >= 1, at the edge below 1)
        edge = max(form.loss_offset, 0.02)
        steepest = form.loss_power * max(REACH + form.loss_offset, edge) ** (form.loss_power - 1) \
            if form.loss_power >= 1 else form.loss_power * edge ** (form.loss_power - 1)
        s = np.minimum(s, 0.95 * decline / steepest)
    return s, z_a.reshape(fit.draw_shape) * float(form.allocation_scale_for(residual_scale(fit)))


def _irreducible_name(law):
    names = [p.name for p in law.parameters if p.kind == "irreducible"]
    return names[0] if len(names) == 1 else None


def reducible_fraction(fit) -> float:
    """Median share of the fitted runs' loss above the irreducible loss, (L - E) / L; 1 for laws without E.

    The loss discrepancy acts on the reducible part, so its rate per decade is
    the residual scale divided by this share: near the fitted runs it moves
    the loss by about ``loss_rate * r`` per decade, and far out it shrinks with
    the reducible loss instead of outgrowing it.

    Examples
    --------
    >>> reducible_fraction(fit)  # doctest: +SKIP
    0.14
    """
    name = _irreducible_name(fit.law)
    if name is None:
        return 1.0
    curve = fit.runs.loss / np.exp(fit.residuals())
    floor = float(np.median(fit.posterior[name].values))
    return float(np.clip(np.median(1.0 - floor / curve), 1e-3, 1.0))


def irreducible_draws(fit, params) -> np.ndarray | float:
    """The irreducible loss of each draw in `params` (0 for laws without one), for :func:`shift_log_loss`."""
    name = _irreducible_name(fit.law)
    return 0.0 if name is None else np.asarray(params[name], dtype=float)


def shift_log_loss(fit, log_loss, values, floor, reach=None) -> np.ndarray:
    """Log loss with the form discrepancy on its reducible part: ``log(E + (L - E) exp(s d))``.

    Parameters
    ----------
    fit : ScalingFit
    log_loss : ndarray, shape (chain, draw, n)
        The law's log loss at the n points.
    values : mapping
        Their C, N, D, as for :func:`loss_shift`.
    floor : ndarray or float
        Each draw's irreducible loss (:func:`irreducible_draws`), broadcastable
        to `log_loss`.
    reach : Reach, optional
        The fitted range the distance is measured from; default that of
        ``fit.runs`` (another range asks what the bands would be with more
        runs, :mod:`bayescale.analysis.nextrun`).

    Returns
    -------
    ndarray
        `log_loss` itself where the points lie inside the fitted range or the
        model has no form uncertainty. The loss stays above the floor, and
        along a compute-optimal frontier keeps falling unless a draw's
        discrepancy outruns the law's own exponent.
    """
    delta = loss_shift(fit, values, reach)
    if not delta.any():
        return log_loss
    loss = np.exp(log_loss)
    floor = np.minimum(np.asarray(floor, dtype=float), loss)
    with np.errstate(over="ignore"):
        return np.log(floor + (loss - floor) * np.exp(delta))


def loss_shift(fit, values, reach=None) -> np.ndarray:
    """Draws of the discrepancy of the log reducible loss at new points, shaped (chain, draw, n).

    Parameters
    ----------
    fit : ScalingFit
    values : mapping
        ``{quantity: array}`` for any of ``C``, ``N``, ``D`` (and ``U`` or
        ``epochs``) of the n points (e.g. a run table's frame), or arrays
        shaped (chain, draw, n) when the points differ by draw (an
        allocation's optimum).
    reach : Reach, optional
        The fitted range; default that of ``fit.runs``.

    Returns
    -------
    ndarray
        ``z s growth(d)``: zero inside the fitted range, and everywhere when the
        fit's model has ``form_uncertainty=None``. Applied to the loss by
        :func:`shift_log_loss`.

    Examples
    --------
    >>> loss_shift(fit, {"C": [1e25], "N": [1e11], "D": [1.7e13]}).shape  # doctest: +SKIP
    (4, 1000, 1)
    """
    values = {q: np.atleast_1d(np.asarray(values[q], dtype=float)) for q in ("C", "N", "D", "U", "epochs")
              if q in values}
    shape = np.broadcast_shapes(*(v.shape for v in values.values())) if values else (0,)
    values = {q: np.broadcast_to(v, shape).ravel() for q, v in values.items()}
    d = decades_beyond(Reach.from_runs(fit.runs) if reach is None else reach, values)["beyond"].to_numpy().reshape(shape)
    if _setting(fit) is None or not d.any():
        return np.zeros((*fit.draw_shape, shape[-1]))
    s, _ = _draws(fit)
    return s[..., None] * growth(d, _setting(fit).loss_power, _setting(fit).loss_offset)


def shift_allocation(fit, out, budget, flops_per_param_token, max_unique_tokens=None, floor=0.0, reach=None):
    """An optimal allocation's draws (:func:`~bayescale.core.allocation.optimal_allocation`) with form uncertainty.

    N_opt moves by :func:`allocation_shift` where the data cap does not bind
    (D = C / (k N) follows; a plan pushed past a cap on fresh tokens is held
    at the cap, as the capped optimum would be), and the loss at the optimum
    by :func:`shift_log_loss` at the budget's distance beyond the fitted
    compute (`floor`: each
    draw's irreducible loss, shaped (chain, draw), from
    :func:`irreducible_draws`); distances from `reach` (default the range of
    ``fit.runs``). Returns a new dict; the input is unchanged.
    """
    out = dict(out)
    shift = allocation_shift(fit, budget, reach)
    c = np.asarray(budget, dtype=float)
    k = float(flops_per_param_token)
    if shift.any():
        free = ~np.asarray(out.get("data_bound", False), dtype=bool)
        n = np.where(free, out["N"] * 10.0**shift, out["N"])
        d = np.where(free, c / (k * n), out["D"])
        if max_unique_tokens is not None and "U" not in out:
            capped = d > max_unique_tokens
            d = np.where(capped, max_unique_tokens, d)
            n = np.where(capped, c / (k * d), n)
            out["data_bound"] = np.asarray(out["data_bound"], dtype=bool) | capped
        elif "U" in out and max_unique_tokens is not None:
            out["U"] = np.minimum(d, max_unique_tokens)
            out["epochs"] = d / out["U"]
        elif "U" in out:
            out["U"], out["epochs"] = d, np.ones_like(d)
        out["N"], out["D"], out["tokens_per_param"] = n, d, d / n
    shape = np.shape(out["loss"])
    # The loss of the compute-optimal plan: the law's optimal loss, moved by the discrepancy at the budget's
    # distance (the allocation discrepancy says where the optimum lies, not that the plan is off it).
    values = {"C": np.broadcast_to(c, shape[-1:])}
    out["loss"] = np.exp(shift_log_loss(fit, np.log(out["loss"]), values, np.asarray(floor, dtype=float)[..., None],
                                       reach))
    return out


def allocation_shift(fit, budget, reach=None) -> np.ndarray:
    """Draws of the discrepancy of log10 N_opt at each budget, shaped (chain, draw, budget).

    Zero for budgets inside the fitted range of compute (`reach`, default
    that of ``fit.runs``) and when the fit's model has ``form_uncertainty=None``.

    Examples
    --------
    >>> allocation_shift(fit, [1e24]).shape  # doctest: +SKIP
    (4, 1000, 1)
    """
    c = np.atleast_1d(positive_array(budget, "budget"))
    d = decades_beyond(Reach.from_runs(fit.runs) if reach is None else reach, {"C": c})
    d = d["beyond_C"].to_numpy() if "beyond_C" in d else np.zeros(c.size)
    if _setting(fit) is None or not d.any():
        return np.zeros((*fit.draw_shape, c.size))
    _, s_a = _draws(fit)
    return s_a[..., None] * growth(d, _setting(fit).allocation_power)


def shift_crossover(fit, params, crossover, max_unique_tokens, flops_per_param_token):
    """The compute at which a data cap starts to bind, with the allocation discrepancy of :func:`allocation_shift`.

    For the Chinchilla law, per draw: ln D_opt = (1 - a) ln(C / k) - ln G
    - ln(10) s_a growth(d_C) beyond the fitted compute, with a = beta / (alpha
    + beta); the crossover is the first compute on a grid of 0.02 decades
    (refined linearly) where it reaches the cap, infinite where it never does
    within 60 decades. Crossovers inside the fitted range, other laws and
    fits without form uncertainty keep the law's own `crossover`.
    """

    if _setting(fit) is None or fit.law.function is not get_law("chinchilla").function:
        return crossover  # the closed form holds for the Chinchilla law itself, not for a law that shares its name
    _, s_a = _draws(fit)
    s_a = s_a.reshape(np.shape(crossover)[: s_a.ndim] + (1,) * (np.ndim(crossover) - s_a.ndim))
    c_max = Reach.from_runs(fit.runs).upper["C"]
    a_, b_ = (np.asarray(params[name], dtype=float) for name in ("alpha", "beta"))
    a = (b_ / (a_ + b_)).reshape(s_a.shape)
    log_g = ((np.log(a_) + np.log(params["A"]) - np.log(b_) - np.log(params["B"])) / (a_ + b_)).reshape(s_a.shape)
    k = float(flops_per_param_token)
    x = np.arange(0.0, 60.0 + 1e-9, 0.02)  # decades beyond c_max
    grow = growth(x, _setting(fit).allocation_power)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_d = ((1.0 - a)[..., None] * (np.log(c_max / k) + np.log(10.0) * x) - log_g[..., None]
                 - np.log(10.0) * s_a[..., None] * grow)
        gap = log_d - np.log(max_unique_tokens)
        reached = gap >= 0
        first = np.argmax(reached, axis=-1)
        ever = reached.any(axis=-1)
        i = np.maximum(first - 1, 0)
        g0 = np.take_along_axis(gap, i[..., None], -1)[..., 0]
        g1 = np.take_along_axis(gap, first[..., None], -1)[..., 0]
        frac = np.where((first > 0) & (g1 > g0), -g0 / (g1 - g0), 0.0)
        x_cross = x[i] + frac * (x[first] - x[i])
        shifted = np.where(ever, c_max * 10.0 ** x_cross, np.inf)
    return np.where(crossover > c_max, np.maximum(shifted, c_max), crossover)
