"""Uncertainty about the law's form beyond the fitted runs.

A posterior says how well the data pin down a law's parameters *if the law
is right*. Beyond the ladder it is not exactly right: the local exponents of
real ladders drift with scale (Porian et al. 2024 move Chinchilla's and
Kaplan's exponents into each other by changing warm-up, decay and the count
of N), and a law fitted to the small runs misses the large ones by more than
its posterior allows.

:class:`FormUncertainty` carries that as a model discrepancy (Kennedy &
O'Hagan 2001) that is zero inside the fitted range and grows with the
distance ``d`` (decades of C, N or D beyond it, see
:mod:`bayescale.extrapolation`) as ``g(d) = d ** power`` (held to its slope
at :data:`REACH` decades beyond that, the farthest the calibration data
reach):

* loss: the reducible part moves, ``L = E + (law(N, D) - E) exp(z s g(d) / f)``,
  with one standardised draw ``z`` per posterior draw, shared by every point
  asked about, so that each draw stays a smooth curve above its irreducible
  loss E; ``f`` is the reducible share of the ladder's loss, so that near the
  fitted runs the log loss moves by about ``s g(d)`` (one sd), and
  ``s = loss_scale (r / 0.01) ** loss_residual_power`` with ``r`` the
  ladder's residual scale (1.4826 times the median absolute deviation of its
  log-loss residuals);
* allocation: ``log10 N_opt = log10 N_opt(law) + z_a allocation_scale g_a(d_C)``
  with ``g_a(d) = d ** allocation_power``, D_opt = C / (k N_opt); the loss at
  the optimum takes the loss discrepancy.

``z = c sign(x) |x| ** shape exp(spread y)`` with ``x, y`` standard Normal
(``c`` gives unit sd): heavier than Normal tails (a ladder whose law breaks
is not a 3-sigma event) and, with ``shape`` below 1, less mass near zero (a
law fitted to a ladder is rarely exactly right beyond it; it misses by about
its scale, to one side or the other). Along a
compute-optimal frontier a draw's discrepancy never outruns the law's own
decline: ``z`` is held where the frontier loss would start to rise with
compute (:func:`shift_allocation`).

Every parameter was learned from held-out real runs (:mod:`bayescale.discrepancy`,
``./dev bench calibration``), scored with each source left out of the
learning; docs/guide/form-uncertainty.md has the figures. Inside the fitted range nothing
changes: the fit, its posterior and its in-sample bands are those of the law
alone. ``ScalingModel(..., form_uncertainty=None)`` turns it off: the right
choice when the law's form is known (simulations, SBC).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from .errors import SpecError
from .validation import check_seed as _check_seed, positive_array
from .errors import warn_user
from .extrapolation import Reach, decades_beyond
from .laws import get_law

__all__ = ["FormUncertainty", "form_from_dict", "loss_shift", "shift_log_loss", "allocation_shift", "shift_allocation",
           "shift_crossover", "residual_scale", "reducible_fraction", "irreducible_draws", "loss_discrepancy",
           "allocation_discrepancy", "REACH"]

#: Offset mixed into the fit's seed for the discrepancy draws, so they never repeat the noise draws.
_STREAM = 0x5CA1E
#: Decades beyond the fitted range up to which the discrepancy grows as d ** power; beyond, at its slope there.
REACH = 2.0
#: Residual scale at which ``loss_scale`` is the sd of the log-loss discrepancy one decade out.
R_REF = 0.01
#: Keys of the earlier, linear model (rates per decade in units of r); read with a warning.
_LEGACY_KEYS = ("loss_rate", "allocation_rate", "allocation_floor")


def growth(d, power, offset=0.0) -> np.ndarray:
    """``(d + offset) ** power`` for points beyond the fitted range (d > 0), 0 inside it.

    Up to :data:`REACH` decades; beyond, continued along its tangent there.
    `offset` (decades) is the discrepancy's reach at the very edge: the
    runs just past the largest fitted one already miss by more than the
    posterior allows.
    """
    d = np.maximum(np.asarray(d, dtype=float), 0.0)
    x = np.minimum(d, REACH) + offset
    with np.errstate(invalid="ignore", divide="ignore"):
        near = x ** power
    slope = power * (REACH + offset) ** (power - 1)
    value = np.where(d <= REACH, near, (REACH + offset) ** power + slope * (d - REACH))
    return np.where(d > 0, value, 0.0)


@dataclass(frozen=True)
class FormUncertainty:
    """Discrepancy of the law beyond the fitted range, growing with the distance from it.

    Parameters
    ----------
    loss_scale : float
        sd of the discrepancy of the log loss one decade beyond the fitted
        range, for a ladder whose residual scale is 0.01 (1%); 0.02: the
        law may be 2% off there (one sd).
    loss_residual_power : float
        How the loss scale follows the ladder's residual scale ``r``: times
        ``(r / 0.01) ** loss_residual_power`` (0: not at all, 1: in
        proportion).
    loss_power : float
        Growth with the distance: ``d ** loss_power``.
    loss_offset : float
        Decades added to the distance of every point beyond the fitted range:
        ``(d + loss_offset) ** loss_power``, so the discrepancy is already
        there at the edge.
    loss_bias : float
        Mean of the standardised loss discrepancy (sd units): negative when
        larger runs tend to do better than the law fitted to smaller ones
        extrapolates.
    spread : float
        Heaviness of the tails: each draw's standardised discrepancy is
        ``c sign(x) |x| ** shape exp(spread y)``, x and y standard Normal.
    shape : float
        Where the standardised discrepancy's mass lies: 1 is Normal; below 1
        it moves from zero towards +-1 sd (0.1 is nearly +-1, a law that is
        off by about its scale beyond the ladder, to one side). In [0.1, 2].
    allocation_scale : float
        sd of log10 N_opt one decade of compute beyond the fitted range, for
        a ladder whose residual scale is 0.01.
    allocation_residual_power : float
        How the allocation scale follows the residual scale: times
        ``(r / 0.01) ** allocation_residual_power``.
    allocation_power : float
        Its growth with the decades of compute.

    Examples
    --------
    >>> form = FormUncertainty()
    >>> form.loss_scale > 0 and form.allocation_scale > 0
    True
    >>> FormUncertainty(loss_scale=-1)
    Traceback (most recent call last):
    ...
    bayescale.errors.SpecError: form_uncertainty: loss_scale must be a finite number >= 0, got -1
    """

    # learned on the held-out runs of all 10 sources, 50% and 90% bands holding at least their share
    # (benchmarks/bench_calibration.py)
    loss_scale: float = 0.044
    loss_residual_power: float = 0.633
    loss_power: float = 1.3
    loss_bias: float = 0.0
    loss_offset: float = 0.253
    spread: float = 0.351
    shape: float = 0.204
    allocation_scale: float = 0.23
    allocation_residual_power: float = 0.527
    allocation_power: float = 0.486

    def __post_init__(self):
        bias = self.loss_bias
        if (isinstance(bias, bool) or not isinstance(bias, (int, float, np.integer, np.floating))
                or not math.isfinite(float(bias)) or abs(bias) > 3):
            raise SpecError(f"form_uncertainty: loss_bias must be a number in [-3, 3] (sd units), got {bias!r}")
        object.__setattr__(self, "loss_bias", float(bias))
        for name in ("loss_scale", "loss_residual_power", "loss_power", "loss_offset", "spread", "shape",
                     "allocation_scale", "allocation_residual_power", "allocation_power"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                    or not math.isfinite(float(value)) or value < 0):
                raise SpecError(f"form_uncertainty: {name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not 0.1 <= self.shape <= 2:
            raise SpecError(f"form_uncertainty: shape must lie in [0.1, 2] (1: Normal discrepancies; below 1 "
                            f"less mass near zero), got {self.shape!r}")
        for name in ("loss_power", "allocation_power"):
            if not 0.25 <= getattr(self, name) <= 4:
                raise SpecError(f"form_uncertainty: {name} must lie in [0.25, 4] (growth d ** power with the "
                                f"decades d beyond the fitted runs), got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """Plain-data form, as in a TOML spec's ``[form_uncertainty]`` table.

        Examples
        --------
        >>> sorted(FormUncertainty().to_dict())  # doctest: +NORMALIZE_WHITESPACE
        ['allocation_power', 'allocation_residual_power', 'allocation_scale', 'loss_bias', 'loss_offset',
         'loss_power', 'loss_residual_power', 'loss_scale', 'shape', 'spread']
        """
        return asdict(self)

    def loss_scale_for(self, residual_scale, reducible=1.0):
        """The sd of the log reducible-loss discrepancy one decade out, for a ladder's ``r`` and share ``f``."""
        r = np.maximum(np.asarray(residual_scale, dtype=float), 1e-5)
        return self.loss_scale * (r / R_REF) ** self.loss_residual_power / np.asarray(reducible, dtype=float)

    def loss_sd(self, residual_scale, distance=1.0) -> float:
        """Typical sd of the log loss (near the fitted runs, relative) `distance` decades beyond them.

        Examples
        --------
        >>> sd = FormUncertainty().loss_sd(0.004, 1.0)
        >>> bool(0 < sd < 0.1)
        True
        """
        return float(self.loss_scale_for(residual_scale) * growth(distance, self.loss_power, self.loss_offset))

    def allocation_scale_for(self, residual_scale):
        """The sd of log10 N_opt one decade of compute out, for a ladder's residual scale ``r``."""
        r = np.maximum(np.asarray(residual_scale, dtype=float), 1e-5)
        return self.allocation_scale * (r / R_REF) ** self.allocation_residual_power

    def standard_draws(self, n, seed) -> tuple:
        """The standardised discrepancy draws ``(z, z_a)`` of `n` posterior draws (heavy-tailed, sd about 1).

        The same `seed` gives the same draws, so every table of one fit sees the same discrepancy.

        Examples
        --------
        >>> z, z_a = FormUncertainty().standard_draws(4000, seed=1)
        >>> z.shape, bool(0.8 < np.median(np.abs(z)) < 1.2)  # the law misses by about one scale, either way
        ((4000,), True)
        """
        seed = _check_seed(seed, "seed")
        rng = np.random.default_rng([int(seed), _STREAM])
        x = rng.standard_normal((3, int(n)))
        heavy = np.exp(self.spread * x[0])
        # E|x| ** (2 shape) = 2 ** shape Gamma(shape + 1/2) / sqrt(pi) for a standard Normal x
        unit = math.exp(-0.5 * (self.shape * math.log(2) + math.lgamma(self.shape + 0.5) - 0.5 * math.log(math.pi)))
        shaped = x[1] if self.shape == 1 else unit * np.sign(x[1]) * np.abs(x[1]) ** self.shape
        return self.loss_bias + shaped * heavy, x[2] * heavy

    def __str__(self) -> str:
        return (f"form uncertainty beyond the fitted runs (sd, d decades beyond): log loss "
                f"{self.loss_scale:.3g} (r/0.01)^{self.loss_residual_power:.2g} (d + {self.loss_offset:.2g})"
                f"^{self.loss_power:.2g}, mean "
                f"{self.loss_bias:+.2g} sd; "
                f"log10 N_opt {self.allocation_scale:.3g} (r/0.01)^{self.allocation_residual_power:.2g} "
                f"d_C^{self.allocation_power:.2g}; tails spread "
                f"{self.spread:.2g}, shape {self.shape:.2g} (r: the ladder's residual scale)")


def loss_discrepancy(form, distance, scale, n_draws, seed) -> np.ndarray:
    """Draws of the log reducible-loss discrepancy, ``z * scale * growth(d)``, shaped (n_draws, n).

    `scale` is per point (:meth:`FormUncertainty.loss_scale_for`), `distance` the decades beyond the fitted range.
    """
    z, _ = form.standard_draws(n_draws, seed)
    return z[:, None] * np.asarray(scale, dtype=float).reshape(1, -1) * growth(distance, form.loss_power, form.loss_offset).reshape(1, -1)


def allocation_discrepancy(form, distance_c, scale, n_draws, seed) -> np.ndarray:
    """Draws of the log10 N_opt discrepancy, ``z_a * scale * growth(d_C)``, shaped (n_draws, n).

    `scale` is per point (:meth:`FormUncertainty.allocation_scale_for`).
    """
    _, z_a = form.standard_draws(n_draws, seed)
    return (z_a[:, None] * np.asarray(scale, dtype=float).reshape(1, -1)
            * growth(distance_c, form.allocation_power).reshape(1, -1))


def form_from_dict(d, source="form_uncertainty"):
    """A :class:`FormUncertainty` from its table, ``None`` for ``false``/``"none"``.

    Tables of the earlier linear model (``loss_rate``, ``allocation_rate``,
    ``allocation_floor``) are read as the nearest model of this form, with a
    ``DeprecationWarning``: linear growth from the edge, the loss scale in
    proportion to ``r`` (exactly the earlier loss model), the allocation
    floor as the allocation scale (the earlier ``allocation_rate * r`` term
    is dropped).

    Examples
    --------
    >>> form_from_dict({"loss_scale": 0.025}).loss_scale
    0.025
    >>> form_from_dict(False) is None
    True
    """
    if d is None or d is False or (isinstance(d, str) and d.lower() == "none"):
        return None
    if isinstance(d, FormUncertainty):
        return d
    if not isinstance(d, dict):
        raise SpecError(f"{source}: expected a table with {', '.join(_KEYS)} (or false), got {d!r}")
    legacy = [k for k in d if k in _LEGACY_KEYS]
    if legacy:
        warn_user(f"{source}: {', '.join(legacy)} belong to the earlier linear form-uncertainty model; read as "
                  "loss_scale = loss_rate / 100, loss_residual_power = 1, loss_power = 1, loss_offset = 0, "
                  "allocation_scale = allocation_floor, allocation_residual_power = 0, allocation_power = 1 (set "
                  "the new keys to silence this)",
                  DeprecationWarning, stacklevel=3)
        d = dict(d)
        old = {k: d.pop(k) for k in legacy}
        d.setdefault("loss_scale", float(old.get("loss_rate", 7.0)) * R_REF)
        d.setdefault("loss_residual_power", 1.0)
        d.setdefault("loss_power", 1.0)
        d.setdefault("loss_offset", 0.0)
        d.setdefault("allocation_scale", float(old.get("allocation_floor", 0.1)))
        d.setdefault("allocation_residual_power", 0.0)
        d.setdefault("allocation_power", 1.0)
        d.setdefault("spread", 0.5)
        d.setdefault("loss_bias", 0.0)  # now a table written in full before the later keys existed
    if all(k in d for k in _KEYS if k not in _LATER_KEYS):
        # a table written in full before `shape` existed (a saved fit): its draws were Normal-shaped
        d = {**d, **{k: v for k, v in _LATER_KEYS.items() if k not in d}}
    extra = [k for k in d if k not in _KEYS]
    if extra:
        raise SpecError(f"{source}: unknown key(s) {extra}; valid keys: {', '.join(_KEYS)}")
    return FormUncertainty(**d)


_KEYS = tuple(f.name for f in fields(FormUncertainty))
#: Keys added after the first release of this model, with the values that reproduce the model without them.
_LATER_KEYS = {"shape": 1.0}


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
    """An optimal allocation's draws (:func:`~bayescale.allocation.optimal_allocation`) with form uncertainty.

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
