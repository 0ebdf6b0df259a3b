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
:mod:`bayescale.core.extrapolation`) as ``g(d) = d ** power`` (held to its slope
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

Every parameter was learned from held-out real runs (:mod:`bayescale.core.discrepancy`,
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

from ..base.errors import SpecError
from ..base.validation import check_seed as _check_seed
from ..base.errors import warn_user

__all__ = ["FormUncertainty", "form_from_dict", "residual_scale", "loss_discrepancy", "allocation_discrepancy",
           "growth", "REACH", "R_REF"]


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
    bayescale.base.errors.SpecError: form_uncertainty: loss_scale must be a finite number >= 0, got -1
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
