"""The results contract: what every fit answers, and how its intervals are made.

Every fit type — :class:`~bayescale.fitting.fit.ScalingFit` (NUTS posterior),
:class:`~bayescale.fitting.point.PointFit` (a point estimate, optionally
bootstrapped) — implements :class:`ScalingResult`. The analyses
(:mod:`bayescale.analysis.predictive`, :mod:`bayescale.analysis.planning`, :mod:`bayescale.analysis.risk`,
:mod:`bayescale.analysis.plots`, :mod:`bayescale.across.compare`, :mod:`bayescale.across.backtest`)
are written once against it, so a bootstrapped Approach 3 gets the same risk
bands and figures as a posterior, with its interval kind shown.

Draws. Parameter draws are arrays shaped ``(chain, draw)``: the posterior's
own chains for a Bayesian fit; one chain of the bootstrap resamples for a
bootstrapped point fit; one chain of copies of the estimate for a point fit
without bootstrap (its curve band is then a single curve, and only the
run-to-run noise spreads the new-run band).

Interval kinds (``attrs["interval"]`` of every table, shown in its caption):

========================  ====================================================
``posterior ETI``         equal-tailed interval of posterior draws
``posterior HDI``         highest-density interval of posterior draws
``bootstrap percentile``  percentile interval of bootstrap resamples
``point estimate``        no parameter uncertainty: the curve band is the
                          estimate; new-run bands hold residual scatter only
``t interval``            Student-t interval of a least-squares line
                          (Approach 2's exponents)
========================  ====================================================
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..base.validation import check_prob

__all__ = [
    "ScalingResult",
    "SUMMARY_COLUMNS",
    "CI_KINDS",
    "interval_label",
    "check_ci_kind",
    "interval",
    "two_bands",
    "caption",
]

#: Columns every ``summary(prob)`` starts with, whatever the fit type.
SUMMARY_COLUMNS = ("estimate", "sd", "lower", "upper")

#: Interval kinds a user may ask of draws: equal-tailed or highest-density.
CI_KINDS = ("eti", "hdi")

#: Names of the draw dimensions of every result's parameter draws.
SAMPLE_DIMS = ("chain", "draw")


@runtime_checkable
class ScalingResult(Protocol):
    """What every fit answers; the analyses use nothing else.

    Attributes
    ----------
    law : Law
        The fitted law.
    runs : RunData
        The runs it was fitted to.
    form_uncertainty : FormUncertainty or None
        Discrepancy of the law's form beyond the fitted runs
        (:mod:`bayescale.core.form`); None for fits that take the form as known.
    hierarchical : bool
        True when parameters vary by group.
    converged : bool
        The fit's own verdict: NUTS diagnostics, or the optimiser's.
    draws_kind : str
        ``"posterior"``, ``"bootstrap"`` or ``"point"``: what the parameter
        draws are; with the requested ``ci_kind`` it names a table's
        intervals (:func:`interval_label`).
    random_seed : int or None
        Default seed of the fit's Monte Carlo draws.
    """

    law: object
    runs: object
    form_uncertainty: object
    hierarchical: bool
    converged: bool
    draws_kind: str
    random_seed: int | None

    def param_draws(self, group=None, *, random_seed=None) -> dict:
        """Draws of the law's parameters and the noise parameters, arrays shaped (chain, draw)."""

    def noise_draws(self, params: dict, shape: tuple, rng) -> np.ndarray:
        """Log-loss noise of new runs, one per draw and row, shaped like ``shape`` = (chain, draw, n)."""

    def residuals(self) -> np.ndarray:
        """Log-loss residual of each fitted run against the fit's central curve."""

    def log_predictive_density(self, runs, *, columns=None) -> np.ndarray:
        """Log predictive density of each run's observed log loss, shape (n_runs,)."""

    def log_likelihood_draws(self, runs, *, columns=None) -> np.ndarray:
        """Log density of each run's observed log loss under each draw, shape (chain, draw, n_runs).

        The likelihood the fit was made with, draw by draw (``draw_shape`` leads), so that the
        draws can be reweighted by new runs (:mod:`bayescale.analysis.nextrun`); its mean density over
        the draws is :meth:`log_predictive_density`.
        """

    def summary(self, prob=0.9) -> pd.DataFrame:
        """Parameter table starting with :data:`SUMMARY_COLUMNS`."""

    def table_problems(self, what) -> list:
        """Problems every table of the fit carries (e.g. a point estimate that failed its checks), as text."""


def check_group(result, group):
    """`group` itself, or a ValueError when it names a group of a fit that has none (it would be ignored).

    Examples
    --------
    >>> class Plain:
    ...     hierarchical = False
    >>> check_group(Plain(), None) is None
    True
    >>> check_group(Plain(), "web")
    Traceback (most recent call last):
    ...
    ValueError: group='web' applies to fits with groups (pooling across a group column); this fit has none: leave group out
    """
    if group is not None and not getattr(result, "hierarchical", False):
        raise ValueError(f"group={group!r} applies to fits with groups (pooling across a group column); this fit "
                         "has none: leave group out")
    return group


def check_ci_kind(ci_kind) -> str:
    """Return ``ci_kind`` lower-cased, or raise ``ValueError`` listing the valid kinds.

    Examples
    --------
    >>> check_ci_kind("HDI")
    'hdi'
    """
    if not isinstance(ci_kind, str) or ci_kind.lower() not in CI_KINDS:
        raise ValueError(f"ci_kind must be one of {', '.join(repr(k) for k in CI_KINDS)}, got {ci_kind!r}")
    return ci_kind.lower()


def interval_label(draws_kind: str, ci_kind: str = "eti") -> str:
    """The name of a table's intervals, recorded as ``attrs["interval"]`` and shown in captions.

    Examples
    --------
    >>> interval_label("posterior"), interval_label("posterior", "hdi"), interval_label("bootstrap")
    ('posterior ETI', 'posterior HDI', 'bootstrap percentile')
    """
    if draws_kind == "posterior":
        return f"posterior {check_ci_kind(ci_kind).upper()}"
    if draws_kind == "bootstrap":
        return "bootstrap percentile" if check_ci_kind(ci_kind) == "eti" else "bootstrap HDI"
    if draws_kind == "t":
        return "t interval"
    return "point estimate"


def interval(values, prob, ci_kind="eti", axis=0):
    """Median and interval (lower, upper) of draws along ``axis``.

    Parameters
    ----------
    values : array_like
        Draws.
    prob : float
        Probability mass of the interval.
    ci_kind : {"eti", "hdi"}
        Equal-tailed (central) or highest-density interval; the HDI is that
        of :func:`arviz_stats` on each column.

    Returns
    -------
    median, lower, upper : ndarray

    Examples
    --------
    >>> med, lo, hi = interval(np.arange(101.0), 0.9)
    >>> round(float(med), 6), round(float(lo), 6), round(float(hi), 6)
    (50.0, 5.0, 95.0)
    """
    check_prob(prob)
    values = np.asarray(values, dtype=float)
    med = np.quantile(values, 0.5, axis=axis)
    if check_ci_kind(ci_kind) == "eti":
        lower, upper = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2], axis=axis)
        return med, lower, upper
    from arviz_stats.base import array_stats

    moved = np.moveaxis(values, axis, -1)
    bounds = np.asarray(array_stats.hdi(moved, prob, axis=-1))
    return med, bounds[..., 0], bounds[..., 1]


def two_bands(curve, new, prob, ci_kind="eti"):
    """The curve band and the new-run band of draws (draws, points): ``median, lower, upper, new_lower, new_upper``.

    A new run's value is the curve's plus noise, so its band holds the
    curve's; where Monte Carlo error over finite draws would put a new-run
    bound inside the curve band (noise far below the curve's uncertainty),
    the bound is the curve band's.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> curve = rng.normal(size=(400, 3))
    >>> med, lo, hi, nlo, nhi = two_bands(curve, curve + 1e-6 * rng.normal(size=(400, 3)), 0.9)
    >>> bool(np.all(nlo <= lo) and np.all(hi <= nhi))
    True
    """
    med, lower, upper = interval(curve, prob, ci_kind)
    _, new_lower, new_upper = interval(new, prob, ci_kind)
    return med, lower, upper, np.minimum(new_lower, lower), np.maximum(new_upper, upper)


def caption(frame: pd.DataFrame) -> str:
    """The interval sentence of a table's caption, from its ``attrs``.

    Examples
    --------
    >>> t = pd.DataFrame({"C": [1e24]})
    >>> t.attrs.update(prob=0.9, interval="bootstrap percentile")
    >>> caption(t)
    '90% bootstrap percentile intervals'
    """
    prob = frame.attrs.get("prob")
    kind = frame.attrs.get("interval", "posterior ETI")
    if kind == "point estimate":
        return "point estimate (no parameter uncertainty)"
    return f"{prob:.0%} {kind} intervals" if prob is not None else f"{kind} intervals"
