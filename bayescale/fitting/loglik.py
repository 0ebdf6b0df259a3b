"""The pointwise log likelihood of a fit's runs, per draw: for LOO, for model checks, for reweighting.

A run is one observation: with checkpoint data (rows sharing a run), the rows of one run are scored
jointly (:func:`within_run_loglik`, the within-run term integrated out); with possibly undertuned runs, the
excess above the law is integrated out per run (:func:`undertuned_draws` gives its posterior per run).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..base.errors import SpecError
from ..analysis.contract import SAMPLE_DIMS
from ..runs.data import RUN_SD, run_prefixes
from ..core.laws import NUMPY
from ..analysis.predictive import log_curve
from ..runs.undertuned import (RATE, SCALE, excess_if_undertuned, flags, log_likelihood, probability, run_flags,
                               run_means, within_run_mixture)

__all__ = ["pointwise_loglik", "within_run_loglik", "by_run", "posterior_medians", "undertuned_draws"]


#: Gauss-Hermite nodes of the Student-t marginal over a run's offset (:func:`within_run_loglik`).
HERMITE_NODES = 24


def by_run(loglik, runs) -> xr.DataArray:
    """Per-row log-likelihood summed over the rows of each run, dims (chain, draw, run_id)."""
    index, ids = runs.run_index, runs.run_ids
    values = np.zeros(loglik.shape[:2] + (len(ids),))
    np.add.at(values, (slice(None), slice(None), index), loglik.values)
    return xr.DataArray(values, dims=(*SAMPLE_DIMS, "run_id"),
                        coords={"chain": loglik["chain"].values, "draw": loglik["draw"].values,
                                "run_id": np.asarray(ids, dtype=str)})


def posterior_medians(posterior) -> dict:
    """Posterior medians keyed as ArviZ labels summary rows (``E``, ``E[group]``)."""
    out = {}
    for v in posterior.data_vars:
        med = posterior[v].median(dim=SAMPLE_DIMS)
        if med.ndim == 0:
            out[v] = float(med)
        else:
            for label, value in zip(med[med.dims[0]].values, np.ravel(med.values)):
                out[f"{v}[{label}]"] = float(value)
    return out


def pointwise_loglik(model, posterior, runs) -> xr.DataArray:
    """Log density of each run's observed log loss under each posterior draw (its group's parameters)."""
    from scipy import stats

    idx = runs.group_index
    params = {k: (posterior[k].values[..., idx] if posterior[k].ndim == 3 else posterior[k].values[..., None])
              for k in model.law.param_names}
    x = {k: v[None, None, :] for k, v in runs.inputs(model.law.inputs).items()}
    mu = np.asarray(model.law.log_loss(x, params, NUMPY))
    sigma = posterior["sigma"].values[..., idx] if posterior["sigma"].ndim == 3 else posterior["sigma"].values[..., None]
    y = np.log(runs.loss)[None, None, :]
    nu = posterior["nu"].values[..., None] if model.likelihood == "student_t" else None
    if RUN_SD in posterior:  # checkpoint data
        order = runs.frame["D"].to_numpy(dtype=float) if runs.has("D") else np.arange(runs.n_runs, dtype=float)
        run_sd = posterior[RUN_SD].values[..., None]
        ll = within_run_loglik(y - mu, sigma, run_sd, runs.run_index, order, nu)
        if model.undertuned:  # Normal noise: a whole run undertuned or not (bayescale.runs.undertuned)

            s, rate, _ = _undertuned_params(model, posterior)
            ll = ll + within_run_mixture(y - mu, sigma, run_sd, s, rate, run_flags(runs.frame, runs.run_index),
                                         runs.run_index, order)
    elif model.undertuned:
        ll = _undertuned_loglik(model, posterior, runs, y, mu, sigma)
    elif nu is not None:
        ll = stats.t.logpdf(y, df=nu, loc=mu, scale=sigma)
    else:
        ll = stats.norm.logpdf(y, loc=mu, scale=sigma)
    return xr.DataArray(ll, dims=(*SAMPLE_DIMS, "run"),
                        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values,
                                "run": np.arange(runs.n_runs)})


def within_run_loglik(resid, sigma, run_sd, run_index, order, nu=None) -> np.ndarray:
    """Log density of each row given the earlier rows of its run, the run's offset integrated out.

    The model of a run's rows is ``resid_i = u + e_i`` with ``u ~ Normal(0, run_sd)`` shared and ``e_i``
    independent Normal(0, sigma) (or Student-t(nu, 0, sigma)). Its joint marginal density is split by
    the chain rule: the rows of a run, in increasing `order` (tokens seen), get
    ``log p(resid_t | resid_<t)``, so they add up to ``log p(resid of the run)`` exactly. Normal noise
    has this in closed form (u given the earlier rows is Normal); Student-t noise by
    :data:`HERMITE_NODES`-point Gauss-Hermite quadrature, centred and scaled at the Normal approximation
    of u given the rows (adaptive, so a run of many precise rows is integrated as well as a single row).

    Parameters
    ----------
    resid : ndarray (chain, draw, n)
        Observed minus the law's log loss.
    sigma, run_sd : ndarray (chain, draw, 1)
    run_index : ndarray (n,) of int
        Run of each row.
    order : ndarray (n,)
        Order of the rows within a run.
    nu : ndarray (chain, draw, 1), optional
        Student-t degrees of freedom; None for Normal noise.

    Returns
    -------
    ndarray (chain, draw, n)

    Examples
    --------
    >>> from scipy import stats
    >>> r = np.array([0.01, 0.03])[None, None, :]
    >>> one = np.ones((1, 1, 1))
    >>> ll = within_run_loglik(r, 0.02 * one, 0.05 * one, np.array([0, 0]), np.array([1.0, 2.0]))
    >>> cov = 0.02**2 * np.eye(2) + 0.05**2
    >>> bool(np.isclose(ll.sum(), stats.multivariate_normal.logpdf([0.01, 0.03], cov=cov)))
    True
    """
    from scipy import stats
    from scipy.special import logsumexp

    resid = np.asarray(resid, dtype=float)
    run_index = np.asarray(run_index)
    n = resid.shape[-1]
    order_, first = run_prefixes(run_index, order)
    e = resid[..., order_]
    start = first == np.arange(n)  # the sorted row opens its run
    t = np.arange(n) - first  # rows of the run before this one
    out = np.empty(np.broadcast_shapes(resid.shape, np.shape(sigma), np.shape(run_sd)))
    var_u, var_e = np.square(run_sd), np.square(sigma)
    if nu is None:
        csum = np.cumsum(e, axis=-1)
        before = csum - e - np.take(np.concatenate([np.zeros_like(csum[..., :1]), csum], axis=-1), first, axis=-1)
        precision = 1.0 / var_u + t / var_e
        mean = before / var_e / precision
        out[..., order_] = stats.norm.logpdf(e, loc=mean, scale=np.sqrt(var_e + 1.0 / precision))
        return out
    from scipy.special import gammaln

    x, w = np.polynomial.hermite.hermgauss(HERMITE_NODES)
    log_w = np.log(w / np.sqrt(np.pi)) + x ** 2  # weights over q, with q's own exp(-x**2) taken out
    nu, sigma = np.asarray(nu, dtype=float), np.asarray(sigma, dtype=float)
    half = (nu + 1) / 2  # Student-t log density, its constants once per draw; all (chain, draw, 1)
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - np.log(sigma)
    inv_nu_s2 = (1.0 / (nu * var_e))[..., None]  # (chain, draw, 1, 1) against (chain, draw, m, K)
    var_u_ = np.asarray(var_u, dtype=float)
    ll = np.empty_like(out)
    for g in np.flatnonzero(start):
        stop = g + 1
        while stop < n and not start[stop]:
            stop += 1
        previous = 0.0
        for k in range(g, stop):
            rows = e[..., g:k + 1]  # (chain, draw, m)
            m = rows.shape[-1]
            precision = 1.0 / var_u + m / var_e
            centre = rows.sum(axis=-1, keepdims=True) / var_e / precision  # (chain, draw, 1)
            spread = 1.5 / np.sqrt(precision)
            u = centre + np.sqrt(2.0) * spread * x  # nodes, (chain, draw, K)
            z2 = np.square(rows[..., None] - u[..., None, :])  # (chain, draw, m, K)
            log_f = m * const - half * np.log1p(z2 * inv_nu_s2).sum(axis=-2)
            log_prior = -0.5 * np.square(u) / var_u_ - 0.5 * np.log(2 * np.pi * var_u_)
            log_q = -0.5 * np.log(2 * np.pi) - np.log(spread)  # q's density at its nodes, without exp(-x**2)
            total = logsumexp(log_w + log_f + log_prior - log_q, axis=-1)  # (chain, draw)
            ll[..., k] = total - previous
            previous = total
    out[..., order_] = ll
    return out


# ------------------------------------------------------- possibly undertuned runs (bayescale.runs.undertuned)
def _undertuned_params(model, posterior):
    nu = posterior["nu"].values[..., None] if model.likelihood == "student_t" else None
    return posterior[SCALE].values[..., None], posterior[RATE].values[..., None], nu


def _undertuned_loglik(model, posterior, runs, y, mu, sigma) -> np.ndarray:
    """Each run's mixture log-likelihood under each draw, (chain, draw, run)."""
    s, rate, nu = _undertuned_params(model, posterior)
    return log_likelihood(y, mu, sigma, s, rate, flags(runs.frame)[None, None, :], nu)


def undertuned_draws(fit):
    """Per draw and fitted run: the probability it is undertuned and its mean excess if so, (chain, draw, run).

    With per-run offsets, "run" is a training run (:attr:`RunData.run_ids`), not a row.
    """
    if not fit.model.undertuned:
        raise SpecError("this fit's model has no undertuned component; fit ScalingModel(..., undertuned=True) "
                        "to estimate which runs are undertuned")
    runs, post = fit.runs, fit.posterior
    params = fit.row_param_draws(runs)
    mu = log_curve(fit.law, runs.inputs(fit.law.inputs), params)
    y = np.log(runs.loss)[None, None, :]
    sigma = params["sigma"]
    s, rate, nu = _undertuned_params(fit.model, post)
    if fit.within_run == "offset":  # checkpoint data: per run, from its mean residual

        zbar, v = run_means(y - mu, sigma, post[RUN_SD].values[..., None], runs.run_index)
        sd = np.sqrt(v)
        prob = probability(zbar, 0.0, sd, s, rate, run_flags(runs.frame, runs.run_index)[None, None, :])
        return prob, excess_if_undertuned(zbar, 0.0, sd, s)
    prob = probability(y, mu, sigma, s, rate, flags(runs.frame)[None, None, :], nu)
    return prob, excess_if_undertuned(y, mu, sigma, s)
