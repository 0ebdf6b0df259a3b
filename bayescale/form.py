"""Uncertainty about the law's form beyond the fitted runs.

A posterior says how well the data pin down a law's parameters *if the law
is right*. Beyond the ladder it is not exactly right: the local exponents of
real ladders drift with scale (Porian et al. 2024 move Chinchilla's and
Kaplan's exponents into each other by changing warm-up, decay and the count
of N), and a law fitted to the small runs misses the large ones by more than
its posterior allows. On the bundled real ladders the misses are unbiased and
grow with the distance from the fitted range.

:class:`FormUncertainty` carries that as a model discrepancy (Kennedy &
O'Hagan 2001) that is zero inside the fitted range and grows linearly with
the distance ``d`` (decades of C, N or D beyond it, see
:mod:`bayescale.extrapolation`):

* loss: the reducible part moves, ``L = E + (law(N, D) - E) exp(s d)``, with
  one slope ``s ~ Normal(0, tau_L r / f)`` per posterior draw, shared by
  every point asked about, so that each draw stays a smooth curve above its
  irreducible loss E. ``r`` is the ladder's own residual scale (1.4826
  times the median absolute deviation of the fitted runs' log-loss
  residuals about the posterior-median curve, :meth:`ScalingFit.residuals`)
  and ``f`` the reducible share of its loss: a ladder the law fits to 0.4%
  (Chinchilla) extrapolates far better than one it fits to 4% (the Porian
  ladders), and in units of ``r`` the errors of both are alike. Acting on
  the reducible part keeps the bands above E and lets the loss keep falling
  with compute far out, where a discrepancy on the whole loss would outgrow
  the gains;
* allocation: ``log10 N_opt = log10 N_opt(law) + s_a d_C``, ``s_a ~
  Normal(0, sqrt((tau_a r)**2 + floor**2))``, D_opt = C / (k N_opt); the loss
  at the optimum takes the loss discrepancy. The floor keeps a clean ladder's
  small ``r`` from hiding how uncertain its allocation exponent is: the
  Chinchilla runs below and above 1e20 FLOP, each fitted to 0.4%, put N_opt
  at 1e24 FLOP a factor 7 apart.

The rates ``tau_L`` and ``tau_a`` are themselves uncertain: each posterior
draw takes ``tau = rate * exp(spread * z)``, ``z ~ Normal(0, 1)`` (shared by
the two), which gives the discrepancy heavier than Normal tails. The default
rates were measured by leave-future-out calibration on the bundled real
ladders (``benchmarks/bench_calibration.py``; the figures are in the
README). Inside the fitted range nothing changes: the fit, its posterior
and its in-sample bands are those of the law alone.

``ScalingModel(..., form_uncertainty=None)`` turns it off: the right choice
when the law's form is known (simulations, SBC).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import SpecError
from .validation import check_seed as _check_seed, positive_array

__all__ = ["FormUncertainty", "form_from_dict", "loss_shift", "shift_log_loss", "allocation_shift", "shift_allocation",
           "shift_crossover", "residual_scale", "reducible_fraction", "irreducible_draws"]

#: Offset mixed into the fit's seed for the discrepancy draws, so they never repeat the noise draws.
_STREAM = 0x5CA1E


@dataclass(frozen=True)
class FormUncertainty:
    """Discrepancy of the law beyond the fitted range, growing with the distance from it.

    Parameters
    ----------
    loss_rate : float
        Typical sd, per decade beyond the fitted range, of the discrepancy of
        the log reducible loss log(L - E), in units of ``r / f``: the
        ladder's residual scale over the reducible share of its loss
        (:func:`reducible_fraction`). Near the fitted runs that moves the log
        loss by about ``loss_rate * r`` per decade (7: one decade out, the law
        may be off by seven times its typical in-sample miss, one sd); far
        out it shrinks with the reducible loss.
    allocation_rate : float
        Typical sd of log10 N_opt per decade of compute beyond the fitted
        range, in units of the residual scale ``r`` (15 with r = 0.004:
        0.06, one decade out N_opt may be off by a factor 10**0.06 = 1.15,
        one sd).
    allocation_floor : float
        Smallest typical sd of log10 N_opt per decade of compute, whatever
        ``r``; added in quadrature to ``allocation_rate * r``.
    spread : float
        sd of the log of both rates across posterior draws.

    Examples
    --------
    >>> form = FormUncertainty()
    >>> form.loss_rate > 0 and form.allocation_rate > 0
    True
    >>> FormUncertainty(loss_rate=-1)
    Traceback (most recent call last):
    ...
    bayescale.errors.SpecError: form_uncertainty: loss_rate must be a finite number >= 0, got -1
    """

    loss_rate: float = 7.0
    allocation_rate: float = 15.0
    allocation_floor: float = 0.1
    spread: float = 0.5

    def __post_init__(self):
        for name in ("loss_rate", "allocation_rate", "allocation_floor", "spread"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                    or not math.isfinite(float(value)) or value < 0):
                raise SpecError(f"form_uncertainty: {name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict:
        """Plain-data form, as in a TOML spec's ``[form_uncertainty]`` table.

        Examples
        --------
        >>> sorted(FormUncertainty().to_dict())
        ['allocation_floor', 'allocation_rate', 'loss_rate', 'spread']
        """
        return asdict(self)

    def slopes(self, shape, seed, residual_scale) -> tuple:
        """Per-draw discrepancy slopes ``(s, s_a)``, each shaped `shape` (chain, draw).

        ``s`` in log loss per decade, sd ``loss_rate * r`` (divided by the
        reducible fraction where it is applied); ``s_a`` in log10
        N_opt per decade of compute, sd ``hypot(allocation_rate * r,
        allocation_floor)``; both times the draw's rate factor
        ``exp(spread * z)``. The same `seed` gives the same slopes, so every
        table of one fit sees the same discrepancy draws.

        Parameters
        ----------
        shape : tuple
        seed : int
        residual_scale : float
            The ladder's residual scale ``r`` (:func:`residual_scale`).

        Examples
        --------
        >>> s, s_a = FormUncertainty().slopes((4, 1000), seed=1, residual_scale=0.004)
        >>> s.shape, bool(0.028 < s.std() < 0.045), bool(0.09 < s_a.std() < 0.16)
        ((4, 1000), True, True)
        """
        seed = _check_seed(seed, "seed")
        rng = np.random.default_rng([int(seed), _STREAM])
        z = rng.standard_normal((3, *shape))
        scale = np.exp(self.spread * z[0])
        r = float(residual_scale)
        return (self.loss_rate * r * scale * z[1],
                float(np.hypot(self.allocation_rate * r, self.allocation_floor)) * scale * z[2])

    def __str__(self) -> str:
        return (f"form uncertainty beyond the fitted runs, sd per decade: log reducible loss {self.loss_rate:g} r/f, "
                f"log10 N_opt hypot({self.allocation_rate:g} r, {self.allocation_floor:g}); rates spread "
                f"{self.spread:g} (r: the ladder's residual scale, f: the reducible share of its loss)")


def form_from_dict(d, source="form_uncertainty"):
    """A :class:`FormUncertainty` from its table, ``None`` for ``false``/``"none"``.

    Examples
    --------
    >>> form_from_dict({"loss_rate": 2.5}).loss_rate
    2.5
    >>> form_from_dict(False) is None
    True
    """
    if d is None or d is False or (isinstance(d, str) and d.lower() == "none"):
        return None
    if isinstance(d, FormUncertainty):
        return d
    if not isinstance(d, dict):
        raise SpecError(f"{source}: expected a table with loss_rate, allocation_rate, allocation_floor, spread "
                        f"(or false), got {d!r}")
    valid = ("loss_rate", "allocation_rate", "allocation_floor", "spread")
    extra = [k for k in d if k not in valid]
    if extra:
        raise SpecError(f"{source}: unknown key(s) {extra}; valid keys: {', '.join(valid)}")
    return FormUncertainty(**d)


# ------------------------------------------------------------------ fit layer
def _setting(fit):
    return fit.form_uncertainty


def _slopes(fit):
    s, s_a = _setting(fit).slopes(fit.draw_shape, fit.random_seed, residual_scale(fit))
    return s / reducible_fraction(fit), s_a


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
        runs, :mod:`bayescale.nextrun`).

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


def residual_scale(fit) -> float:
    """The ladder's residual scale r: 1.4826 x the median absolute deviation of the fitted runs' residuals.

    Robust to outlying runs (a Student-t fit with small nu has a small
    ``sigma`` and a few large residuals); in log loss, so 0.004 is 0.4%.

    Examples
    --------
    >>> residual_scale(fit)  # doctest: +SKIP
    0.0041
    """
    r = np.asarray(fit.residuals(), dtype=float)
    r = r[np.isfinite(r)]
    return float(1.4826 * np.median(np.abs(r - np.median(r)))) if r.size else 0.0


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
        ``s * d``: zero inside the fitted range, and everywhere when the
        fit's model has ``form_uncertainty=None``. Applied to the loss by
        :func:`shift_log_loss`.

    Examples
    --------
    >>> loss_shift(fit, {"C": [1e25], "N": [1e11], "D": [1.7e13]}).shape  # doctest: +SKIP
    (4, 1000, 1)
    """
    from .extrapolation import Reach, decades_beyond

    values = {q: np.atleast_1d(np.asarray(values[q], dtype=float)) for q in ("C", "N", "D", "U", "epochs")
              if q in values}
    shape = np.broadcast_shapes(*(v.shape for v in values.values())) if values else (0,)
    values = {q: np.broadcast_to(v, shape).ravel() for q, v in values.items()}
    d = decades_beyond(Reach.from_runs(fit.runs) if reach is None else reach, values)["beyond"].to_numpy().reshape(shape)
    if _setting(fit) is None or not d.any():
        return np.zeros((*fit.draw_shape, shape[-1]))
    s, _ = _slopes(fit)
    return s[..., None] * d


def shift_allocation(fit, out, budget, flops_per_param_token, max_unique_tokens=None, floor=0.0, reach=None):
    """An optimal allocation's draws (:func:`~bayescale.allocation.optimal_allocation`) with form uncertainty.

    N_opt moves by :func:`allocation_shift` where the data cap does not bind
    (D = C / (k N) follows; a plan pushed past a cap on fresh tokens is held
    at the cap, as the capped optimum would be), and the loss at the optimum
    by :func:`shift_log_loss` at the optimum's C, N and D (`floor`: each
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
    values = {"C": np.broadcast_to(c, shape), "N": out["N"], "D": out["D"], **({"U": out["U"]} if "U" in out else {})}
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
    from .extrapolation import Reach, decades_beyond

    c = np.atleast_1d(positive_array(budget, "budget"))
    d = decades_beyond(Reach.from_runs(fit.runs) if reach is None else reach, {"C": c})
    d = d["beyond_C"].to_numpy() if "beyond_C" in d else np.zeros(c.size)
    if _setting(fit) is None or not d.any():
        return np.zeros((*fit.draw_shape, c.size))
    _, s_a = _slopes(fit)
    return s_a[..., None] * d


def shift_crossover(fit, params, crossover, max_unique_tokens, flops_per_param_token):
    """The compute at which a data cap starts to bind, with the allocation discrepancy of :func:`allocation_shift`.

    For the Chinchilla law, per draw: log D_opt = (1 - a) log(C / k) - log G
    - s_a (log C - log C_max) beyond the fitted compute (natural logs), with
    a = beta / (alpha + beta), so the crossover solves in closed form (infinite
    where the shifted D_opt stops growing with C). Crossovers inside the
    fitted range, other laws and fits without form uncertainty keep the law's
    own `crossover`.
    """
    from .extrapolation import Reach

    from .laws import get_law

    if _setting(fit) is None or fit.law.function is not get_law("chinchilla").function:
        return crossover  # the closed form holds for the Chinchilla law itself, not for a law that shares its name
    _, s_a = _slopes(fit)
    s_a = s_a.reshape(np.shape(crossover)[: s_a.ndim] + (1,) * (np.ndim(crossover) - s_a.ndim))
    c_max = Reach.from_runs(fit.runs).upper["C"]
    a_, b_ = (np.asarray(params[name], dtype=float) for name in ("alpha", "beta"))
    a = (b_ / (a_ + b_)).reshape(s_a.shape)
    log_g = ((np.log(a_) + np.log(params["A"]) - np.log(b_) - np.log(params["B"])) / (a_ + b_)).reshape(s_a.shape)
    k = float(flops_per_param_token)
    slope = 1.0 - a - s_a
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_c = (np.log(max_unique_tokens) + (1.0 - a) * np.log(k) + log_g - s_a * np.log(c_max)) / slope
        shifted = np.where(slope > 0, np.exp(log_c), np.inf)
    return np.where(crossover > c_max, np.maximum(shifted, c_max), crossover)
