"""Posterior draws reweighted by the likelihood of new data: importance weights (Pareto-smoothed), the
Kish effective number of draws, and weighted intervals.

Arrays in, arrays out; :func:`bayescale.analysis.nextrun.recommend_runs` uses them to value a run before it is
trained (the importance-sampling shortcut of PSIS-LOO run forwards).
"""

from __future__ import annotations

import numpy as np

from ..base.validation import check_prob

__all__ = ["REWEIGHTED_ESS_MIN", "PARETO_K_MAX", "importance_weights", "kish_ess", "weighted_interval"]


#: Fewest effective draws (Kish) of the reweighted posterior of an outcome for it to count as well estimated:
#: a 90% interval's ends rest on ~5% of the weight, 5 effective draws at 100. (Not the fit's convergence
#: threshold, :data:`bayescale.fitting.fit.ESS_MIN`, a bulk ESS of the sampler's draws.)
REWEIGHTED_ESS_MIN = 100

#: Largest Pareto k of an outcome's importance weights for it to count as well estimated (Vehtari et al. 2024: above 0.7
#: the PSIS estimate's error falls too slowly with the number of draws to be trusted).
PARETO_K_MAX = 0.7


# ------------------------------------------------------------------- arrays
def kish_ess(weights) -> np.ndarray:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` along the last axis.

    Examples
    --------
    >>> kish_ess(np.ones(400)), kish_ess([1.0, 0.0, 0.0])
    (np.float64(400.0), np.float64(1.0))
    """
    w = np.asarray(weights, dtype=float)
    return w.sum(axis=-1) ** 2 / np.sum(w**2, axis=-1)


def importance_weights(log_ratios, *, psis=True):
    """Normalised importance weights (along the last axis) and their Pareto k.

    Parameters
    ----------
    log_ratios : array_like, shape (..., draws)
        Log importance ratios, e.g. a new run's log likelihood under each draw.
    psis : bool, default True
        Pareto-smooth the largest ratios (:func:`arviz_stats` PSIS); without
        it the weights are the plain normalised ratios and k is NaN.

    Returns
    -------
    weights : ndarray, shape (..., draws)
        Non-negative, summing to 1 along the last axis.
    pareto_k : ndarray, shape (...)

    Examples
    --------
    >>> w, k = importance_weights(np.log([[1.0, 1.0, 2.0]]), psis=False)
    >>> w.round(2).tolist(), bool(np.isnan(k).all())
    ([[0.25, 0.25, 0.5]], True)
    """
    from scipy.special import logsumexp

    lr = np.asarray(log_ratios, dtype=float)
    lr = lr - np.max(lr, axis=-1, keepdims=True)
    k = np.full(lr.shape[:-1], np.nan)
    if psis:
        lr, k = _psis(lr.reshape(-1, lr.shape[-1]))
        lr, k = lr.reshape(np.shape(log_ratios)), k.reshape(np.shape(log_ratios)[:-1])
    lw = lr - logsumexp(lr, axis=-1, keepdims=True)
    return np.exp(lw), k


def _psis(lr):
    """PSIS log weights and Pareto k of each row of `lr` (rows x draws).

    Equal ratios need no smoothing (k = 0). A row whose tail is all ties (a bootstrap's repeated resamples)
    cannot be smoothed: it keeps its plain ratios and k = NaN.
    """
    from arviz_stats.base import array_stats

    out, k = lr.copy(), np.zeros(lr.shape[0])
    rows = np.flatnonzero(np.ptp(lr, axis=-1) > 0)
    # A tail too heavy to smooth (k far above 0.7) overflows inside the Pareto quantiles; the weights stay finite
    # and its k says it is not to be trusted, which the callers report.
    with np.errstate(over="ignore"):
        try:  # arviz's convention: the ratios of -ary (LOO's 1 / p(y | theta))
            smoothed, k_rows = array_stats.psislw(-lr[rows], axis=-1)
            out[rows], k[rows] = smoothed, k_rows
        except ValueError:  # "All tail values are the same" in some row
            for i in rows:
                try:
                    out[i], k[i] = array_stats.psislw(-lr[i], axis=-1)
                except ValueError:
                    k[i] = np.nan
    return out, k


def weighted_interval(values, weights, prob):
    """Lower and upper ends of the weighted equal-tailed ``prob`` interval, along the last axis.

    NumPy's weighted quantiles (the inverse of the weighted empirical CDF);
    with equal weights the ends are sample values, as ``np.quantile(...,
    method="inverted_cdf")``.

    Examples
    --------
    >>> lo, hi = weighted_interval(np.arange(100.0), np.ones(100), 0.9)
    >>> float(lo), float(hi)
    (4.0, 94.0)
    >>> lo, hi = weighted_interval(np.arange(100.0), (np.arange(100) >= 50).astype(float), 0.9)
    >>> float(lo), float(hi)
    (52.0, 97.0)
    """
    prob = check_prob(prob)
    w = np.asarray(weights, dtype=float)
    v = np.broadcast_to(np.asarray(values, dtype=float), w.shape)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    lo, hi = np.quantile(v, q, axis=-1, weights=w, method="inverted_cdf")
    return lo, hi
