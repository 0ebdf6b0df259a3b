"""Possibly undertuned runs: a one-sided excess on log loss, as a mixture in the likelihood.

A rung of a ladder whose hyperparameter sweep was cut short sits *above* the
law. With ``ScalingModel(..., undertuned=True)`` each run is, with probability
``undertuned_rate`` (pi), undertuned::

    log loss = mu + e + eps,   e ~ HalfNormal(excess_scale),  eps the model's noise

and otherwise ``log loss = mu + eps`` (mu the law's log loss). The excess is
marginalised, so there is no discrete latent variable: each run's likelihood is

    log((1 - pi) f0(y) + pi f1(y))

with ``f0`` the model's likelihood (Student-t or Normal, scale ``sigma``) and
``f1`` the law's log loss plus a HalfNormal excess plus Normal noise of scale
``sigma``, which integrates in closed form to a skew-normal::

    f1 = SkewNormal(mu, omega = sqrt(sigma**2 + s**2), alpha = s / sigma)

For the Normal likelihood the model is exactly the one above. For the
Student-t likelihood the undertuned component keeps Normal noise of the same
scale (the convolution of a Student-t with a HalfNormal has no closed form):
heavy tails in both directions belong to the tuned component, the one-sided
excess to the undertuned one. A bad rung then raises its own excess, not the
law, and not ``nu``'s tail either.

Flagged rows. A boolean column ``undertuned`` (True flags a row) or
``sweep_complete`` (False flags a row) marks rungs whose sweep is known to be
incomplete; a flagged row's prior probability of being undertuned is
:data:`FLAGGED_RATE` (0.5) instead of pi (prior mean 0.1). The data still
decide: a flagged rung on the law gets a low posterior probability.

Checkpoint data. With per-run offsets (``within_run="offset"``, several rows
per ``run`` id) and Normal noise, undertuned is a property of a whole run: all
its rows share one excess ``e_r``. For run r with n rows and residuals
``z = y - mu``, ``z = u_r 1 + eps`` when tuned, with covariance
``Sigma = sigma**2 I + run_sd**2 11'`` (:func:`bayescale.fitting.graph.within_run_marginal`),
and ``z = (u_r + e_r) 1 + eps`` when undertuned. The run mean ``zbar`` is
Normal(e_r, v), ``v = run_sd**2 + sigma**2 / n``, independent of the residuals
about it, which do not involve e_r; so::

    log f1(z) = log f0(z) - log N(zbar; 0, v) + log SkewNormal(zbar; sqrt(v + s**2), s / sqrt(v))

the one-row formula above with ``v`` in place of ``sigma**2`` applied to the
run mean (:func:`run_log_ratio`). A run is flagged when any of its rows is
(:func:`run_flags`). The per-row log-likelihood (LOO) keeps the chain rule:
each row's density given the run's earlier rows is the ratio of two prefix
mixtures, so a run's rows add up to its mixture density
(:func:`within_run_mixture`). Student-t noise with per-run offsets has no such
closed form and is refused.

New runs. Predictions (:meth:`~bayescale.fitting.fit.ScalingFit.predict`, allocations,
risk) are for a *well-tuned* run: the fit's ``noise_draws`` are the tuned
component's noise, no excess. Densities of observed runs
(:meth:`~bayescale.fitting.fit.ScalingFit.log_predictive_density`, the pointwise
log-likelihood behind LOO) are the mixture, the model's own likelihood. The
fit's ``posterior_predictive`` group and the prior predictive check
(:func:`bayescale.analysis.checks.prior_predictive`) draw well-tuned runs too, so a
rung found undertuned lies above their bands, as it should.

This module holds the array side (NumPy densities, per-run probabilities and
excess, the flag column) and the likelihood term of the PyMC graph.
"""

from __future__ import annotations

import math

import numpy as np

from .data import run_prefixes
from ..base.errors import DataError

__all__ = ["RATE", "SCALE", "NAMES", "FLAGGED_RATE", "FLAG_COLUMNS", "flags", "component_logpdfs",
           "log_likelihood", "probability", "excess_if_undertuned", "pymc_likelihood", "run_flags", "run_log_ratio",
           "run_means", "within_run_mixture", "pymc_run_term"]

#: Name of the prior probability that a run is undertuned (pi).
RATE = "undertuned_rate"
#: Name of the scale s of the HalfNormal excess on log loss of an undertuned run.
SCALE = "excess_scale"
#: The component's parameters, in the order they follow the likelihood's own.
NAMES = (RATE, SCALE)
#: Prior probability that a flagged row (incomplete sweep) is undertuned.
FLAGGED_RATE = 0.5
#: Columns that flag rows, and the value that flags a row.
FLAG_COLUMNS = {"undertuned": True, "sweep_complete": False}


def flags(frame) -> np.ndarray:
    """Which rows of a runs frame are flagged as possibly undertuned (a boolean array).

    Reads the columns of :data:`FLAG_COLUMNS`: ``undertuned`` True or
    ``sweep_complete`` False flags a row. Values must be booleans (or 0/1);
    anything else raises.

    Raises
    ------
    DataError
        Listing every row whose flag is not a boolean.

    Examples
    --------
    >>> import pandas as pd
    >>> flags(pd.DataFrame({"loss": [3.0, 2.9, 2.8], "sweep_complete": [True, False, True]}))
    array([False,  True, False])
    >>> flags(pd.DataFrame({"loss": [3.0]})).tolist()
    [False]
    """
    out = np.zeros(len(frame), dtype=bool)
    problems = []
    for column, flagging in FLAG_COLUMNS.items():
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(dtype=object)
        for label, v in zip(frame.index, values):
            if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, float, np.integer, np.floating))
                                                  and v in (0, 1)):
                continue
            problems.append(f"row {label!r}, column {column!r}: {v!r} is not a boolean; expected True or False")
        if not problems:
            out |= np.array([bool(v) == flagging for v in values], dtype=bool)
    if problems:
        raise DataError(problems[:50], header="Flags of possibly undertuned runs must be booleans:")
    return out


def row_rate(rate, flagged):
    """Prior probability of each row being undertuned: ``FLAGGED_RATE`` where flagged, else `rate`."""
    flagged = np.asarray(flagged, dtype=bool)
    return np.where(flagged, FLAGGED_RATE, rate)


def _log_ndtr(x):
    from scipy.special import log_ndtr

    return log_ndtr(x)


def component_logpdfs(y, mu, sigma, s, nu=None):
    """Log densities of the tuned (f0) and undertuned (f1) components at log loss `y` (arrays broadcast).

    ``nu`` None: Normal tuned component, else Student-t with ``nu`` degrees of
    freedom. The undertuned component is the skew-normal of mean parameter
    ``mu``, scale ``sqrt(sigma**2 + s**2)`` and shape ``s / sigma``.

    Examples
    --------
    >>> from scipy import stats
    >>> f0, f1 = component_logpdfs(0.03, 0.0, 0.01, 0.04)
    >>> bool(np.isclose(f1, stats.skewnorm.logpdf(0.03, 4.0, scale=np.hypot(0.01, 0.04))))
    True
    """
    from scipy import stats

    y, mu, sigma, s = (np.asarray(a, dtype=float) for a in (y, mu, sigma, s))
    r = y - mu
    if nu is None:
        f0 = stats.norm.logpdf(r, scale=sigma)
    else:
        f0 = stats.t.logpdf(r, df=np.asarray(nu, dtype=float), scale=sigma)
    omega = np.sqrt(sigma**2 + s**2)
    z = r / omega
    f1 = math.log(2.0) - 0.5 * z**2 - 0.5 * math.log(2 * math.pi) - np.log(omega) + _log_ndtr(z * s / sigma)
    return f0, f1


def log_likelihood(y, mu, sigma, s, rate, flagged, nu=None):
    """Each run's mixture log-likelihood ``log((1 - p) f0 + p f1)``, p the row's prior probability."""
    f0, f1 = component_logpdfs(y, mu, sigma, s, nu)
    p = row_rate(rate, flagged)
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log1p(-p) + f0, np.log(p) + f1)


def probability(y, mu, sigma, s, rate, flagged, nu=None):
    """Probability that each run is undertuned given one parameter draw: ``p f1 / ((1 - p) f0 + p f1)``."""
    from scipy.special import expit

    f0, f1 = component_logpdfs(y, mu, sigma, s, nu)
    p = row_rate(rate, flagged)
    with np.errstate(divide="ignore"):
        return expit(np.log(p) + f1 - np.log1p(-p) - f0)


def excess_if_undertuned(y, mu, sigma, s):
    """Mean excess e on log loss of a run given it is undertuned, for one parameter draw.

    Under the undertuned component with Normal noise, e given the residual
    ``r = y - mu`` is Normal(r s^2 / (s^2 + sigma^2), s^2 sigma^2 / (s^2 + sigma^2))
    truncated to e >= 0; this is its mean.

    Examples
    --------
    >>> round(float(excess_if_undertuned(0.05, 0.0, 0.001, 0.1)), 4)  # noise small: the residual itself
    0.05
    """
    from scipy.special import log_ndtr

    y, mu, sigma, s = (np.asarray(a, dtype=float) for a in (y, mu, sigma, s))
    v = s**2 * sigma**2 / (s**2 + sigma**2)
    m = (y - mu) * s**2 / (s**2 + sigma**2)
    sd = np.sqrt(v)
    a = m / sd
    # mean of N(m, sd) truncated below at 0: m + sd phi(a) / Phi(a), with the ratio computed on the log scale
    ratio = np.exp(-0.5 * a**2 - 0.5 * math.log(2 * math.pi) - log_ndtr(a))
    return np.maximum(m + sd * ratio, 0.0)


# ------------------------------------------------------------------ checkpoint data: a whole run undertuned
def run_flags(frame, run_index) -> np.ndarray:
    """Which runs are flagged (a boolean array over runs, in the order of `run_index`'s codes).

    A run is flagged when any of its rows is (:func:`flags`): a flag marks the
    run's sweep, so one flagged checkpoint flags the run.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"loss": [3.0, 2.9, 2.8, 2.7], "undertuned": [False, True, False, False]})
    >>> run_flags(frame, np.array([0, 0, 1, 1])).tolist()
    [True, False]
    """
    run_index = np.asarray(run_index)
    n = int(run_index.max()) + 1 if run_index.size else 0
    return np.bincount(run_index, weights=flags(frame).astype(float), minlength=n) > 0


def run_log_ratio(zbar, v, s):
    """``log f1(z) - log f0(z)`` of a run from its mean residual `zbar` and ``v = run_sd**2 + sigma**2 / n``.

    The log of ``SkewNormal(zbar; sqrt(v + s**2), s / sqrt(v)) / Normal(zbar; 0, sqrt(v))``: how much
    likelier the run's rows are if it is undertuned (excess HalfNormal(s)) than if tuned. Arrays broadcast.

    Examples
    --------
    >>> bool(run_log_ratio(0.05, 0.005**2, 0.05) > 20)  # a run 10 sds above the law
    True
    >>> bool(abs(run_log_ratio(0.0, 0.005**2, 0.05) + np.log(np.hypot(1, 10))) < 1e-12)  # at the law
    True
    """
    f0, f1 = component_logpdfs(zbar, 0.0, np.sqrt(v), s)
    return f1 - f0


def run_means(resid, sigma, run_sd, run_index):
    """Each run's mean residual ``zbar`` and ``v = run_sd**2 + sigma**2 / n``, shapes (..., n_runs).

    `resid` is (..., n_rows); `sigma`, `run_sd` broadcast against it (e.g. (chain, draw, 1)).
    """
    resid = np.asarray(resid, dtype=float)
    run_index = np.asarray(run_index)
    n_runs = int(run_index.max()) + 1
    rows = np.bincount(run_index, minlength=n_runs).astype(float)
    sums = np.zeros(resid.shape[:-1] + (n_runs,))
    np.add.at(sums, (..., run_index), resid)
    v = np.square(run_sd) + np.square(sigma) / rows
    return sums / rows, v


def within_run_mixture(resid, sigma, run_sd, s, rate, run_flagged, run_index, order) -> np.ndarray:
    """Per row: what the undertuned mixture adds to its log density given the earlier rows of its run.

    With ``M_k = log((1 - p) + p exp(run_log_ratio(zbar_k, v_k, s)))`` for the first k rows of a run
    (``zbar_k`` their mean residual, ``v_k = run_sd**2 + sigma**2 / k``, p the run's prior probability),
    the k-th row (in increasing `order`) gets ``M_k - M_(k-1)``, ``M_0 = 0``. Added to the tuned
    chain-rule terms (:func:`bayescale.fitting.loglik.within_run_loglik`, Normal noise), each row gets
    ``log p(y_k | y_<k)`` of the mixture, and a run's rows add up to ``log((1 - p) f0 + p f1)`` of the run.

    Parameters
    ----------
    resid : ndarray (chain, draw, n)
        Observed minus the law's log loss.
    sigma, run_sd, s, rate : ndarray (chain, draw, 1)
    run_flagged : ndarray (n_runs,) of bool
        Flagged runs (:func:`run_flags`).
    run_index, order : ndarray (n,)
        Run of each row, and the order of the rows within a run.

    Returns
    -------
    ndarray (chain, draw, n)

    Examples
    --------
    >>> one = np.ones((1, 1, 1))
    >>> r = np.array([0.05, 0.06, 0.0])[None, None, :]
    >>> terms = within_run_mixture(r, 0.005 * one, 0.005 * one, 0.05 * one, 0.1 * one, np.array([False, False]),
    ...                            np.array([0, 0, 1]), np.array([1.0, 2.0, 1.0]))
    >>> zbar, v = run_means(r, 0.005, 0.005, np.array([0, 0, 1]))
    >>> m = np.logaddexp(np.log(0.9), np.log(0.1) + run_log_ratio(zbar, v, 0.05))
    >>> bool(np.allclose([terms[..., :2].sum(), terms[..., 2].sum()], m.ravel()))
    True
    """
    resid = np.asarray(resid, dtype=float)
    run_index = np.asarray(run_index)
    n = resid.shape[-1]
    order_, first = run_prefixes(run_index, order)
    e = resid[..., order_]
    k = (np.arange(n) - first + 1).astype(float)  # rows of the prefix, this one included
    csum = np.cumsum(e, axis=-1)
    before = np.take(np.concatenate([np.zeros_like(csum[..., :1]), csum], axis=-1), first, axis=-1)
    zbar = (csum - before) / k
    v = np.square(run_sd) + np.square(sigma) / k
    p = row_rate(rate, np.asarray(run_flagged, dtype=bool)[run_index[order_]])
    with np.errstate(divide="ignore"):
        m = np.logaddexp(np.log1p(-p), np.log(p) + run_log_ratio(zbar, v, s))
    previous = np.where(first == np.arange(n), 0.0, np.concatenate([np.zeros_like(m[..., :1]), m[..., :-1]], axis=-1))
    out = np.empty_like(m)
    out[..., order_] = m - previous
    return out


def pymc_run_term(zbar, v, s, rate, flagged):
    """Each run's ``log((1 - p) + p exp(run_log_ratio(zbar, v, s)))`` as a PyTensor expression.

    Added to the tuned joint density of a run's rows (offsets integrated out) it gives the run's
    mixture density; `flagged` is 0/1 per run. ``run_log_ratio`` simplifies to
    ``log 2 - log1p(s**2 / v) / 2 + a**2 / 2 + log Phi(a)`` with ``a = zbar s / sqrt(v (v + s**2))``.
    """
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import normal_lcdf

    p = flagged * FLAGGED_RATE + (1.0 - flagged) * rate
    a = zbar * s / pt.sqrt(v * (v + s**2))
    ratio = math.log(2.0) - 0.5 * pt.log1p(s**2 / v) + 0.5 * a**2 + normal_lcdf(0.0, 1.0, a)
    return pt.logaddexp(pt.log1p(-p), pt.log(p) + ratio)


def pymc_likelihood(name, mu, observed, sigma, s, rate, flagged, nu=None):
    """The mixture likelihood of the PyMC graph: an observed ``pm.CustomDist`` named `name`.

    `flagged` is a tensor of 0/1 per row (``pm.Data``). The log density is
    computed stably (the skew-normal's normal CDF on the log scale), and the
    variable can be forward-sampled (``pm.sample_prior_predictive``).
    """
    import pymc as pm
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import normal_lcdf

    student = nu is not None
    p = flagged * FLAGGED_RATE + (1.0 - flagged) * rate

    def logp(value, mu, sigma, s, p, *rest):
        r = value - mu
        if student:
            f0 = pm.logp(pm.StudentT.dist(nu=rest[0], mu=0.0, sigma=sigma), r)
        else:
            f0 = pm.logp(pm.Normal.dist(mu=0.0, sigma=sigma), r)
        omega = pt.sqrt(sigma**2 + s**2)
        z = r / omega
        f1 = (math.log(2.0) - 0.5 * z**2 - 0.5 * math.log(2 * math.pi) - pt.log(omega)
              + normal_lcdf(0.0, 1.0, z * s / sigma))
        return pt.logaddexp(pt.log1p(-p) + f0, pt.log(p) + f1)

    def random(mu, sigma, s, p, *rest, rng=None, size=None):
        shape = np.broadcast_shapes(np.shape(mu), np.shape(p)) if size is None else size
        undertuned = rng.uniform(size=shape) < p
        noise = rng.standard_normal(shape)
        if student:  # the tuned component's noise is Student-t, the undertuned one's Normal
            noise = np.where(undertuned, noise, rng.standard_t(rest[0], size=shape))
        return mu + sigma * noise + undertuned * s * np.abs(rng.standard_normal(shape))

    params = (mu, sigma, s, p) + ((nu,) if student else ())
    return pm.CustomDist(name, *params, logp=logp, random=random, observed=observed, shape=observed.shape)
