"""Model checks made when a fit is created: prior-data conflict and heavy-tailed noise.

Two questions a converged posterior does not answer by itself:

*Prior-data conflict.* Where a parameter's posterior median lies in its
prior's far tail, the data pull it to where the prior says it almost surely is
not. Either the prior is wrong for these runs (a preset centred on another
paper's fit, say) or the law does not describe them and a parameter absorbs
the misfit. Either way the bands inherit the tension. A parameter is flagged
when its posterior median lies outside the prior's central 99% interval
(:data:`CONFLICT_PROB`). The distance is also reported as ``prior_z``: prior
standard deviations from the prior mean on the prior's natural scale, the log
for LogNormal priors, where 99% is ``|z| > 2.58``.

*Heavy tails.* A Student-t likelihood whose degrees of freedom ``nu`` have
posterior median below 2 (:data:`NU_MIN`) describes noise without a finite
variance: the new-run band is then set by the tails, not by a typical
run-to-run spread.

*Undertuned share.* With ``undertuned=True`` a few rungs may sit above the
law; when the posterior median of ``undertuned_rate`` exceeds
:data:`UNDERTUNED_RATE_MAX` the component is labelling a large part of the
ladder undertuned: it absorbs the law's misfit rather than a few bad rungs, the
noise of the "well-tuned" runs shrinks and so do the bands. Measured on the 15
Porian et al. ladders (leave-future-out, ``benchmarks/bench_calibration.py``):
rates of 0.35-0.44 on the ladders where it happened, and 90% new-run coverage
of 0.79 against 0.97 for the same model without the component.

Each check warns by name when a fit is made
(:class:`~bayescale.base.errors.PriorDataConflictWarning`,
:class:`~bayescale.base.errors.HeavyTailWarning`, both
:class:`~bayescale.base.errors.ModelCheckWarning`); :func:`model_checks` (or
``fit.model_checks()``) returns the table behind the warnings.

Coefficient priors (``A`` of ``A / N**alpha``) are priors on the term at the
prior's ``at`` input, ``log(A) - alpha log(at)``; the check compares that
quantity's posterior with the prior. Partially pooled parameters are checked
through their population value ``<name>_pop``; independent ones per group.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .contract import SAMPLE_DIMS
from ..base.errors import HeavyTailWarning, ModelCheckWarning, PriorDataConflictWarning
from ..core.priors import HalfNormal, LogNormal, Normal, StudentT, Exponential
from ..base.errors import warn_user
from ..core.pooling import pop_name
from ..base.validation import check_prob as _check_prob

__all__ = ["caveats", "model_checks", "warn_model_checks", "CONFLICT_PROB", "NU_MIN", "UNDERTUNED_RATE_MAX"]

#: Central prior probability outside which a posterior median is a conflict.
CONFLICT_PROB = 0.99
#: Posterior median of the Student-t nu below which the noise has no finite variance.
NU_MIN = 2.0
#: Posterior median of ``undertuned_rate`` above which the undertuned component explains the ladder, not a few rungs.
UNDERTUNED_RATE_MAX = 0.2
_N_PRIOR = 200_000


def _prior_position(prior, value, rng):
    """(prior CDF at value, z on the prior's natural scale, one-sided) for a posterior median."""
    from scipy import stats

    if isinstance(prior, LogNormal):
        z = (np.log(value) - prior.mu) / prior.sigma
        return float(stats.norm.cdf(z)), float(z), False
    if isinstance(prior, Normal):
        z = (value - prior.mu) / prior.sigma
        return float(stats.norm.cdf(z)), float(z), False
    if isinstance(prior, StudentT):
        z = (value - prior.mu) / prior.sigma
        return float(stats.t.cdf(z, prior.nu)), float(z), False
    draws = np.asarray(prior.sample(rng, _N_PRIOR), dtype=float)
    sd = float(np.std(draws))
    z = (value - float(np.mean(draws))) / sd if sd > 0 else 0.0
    # Densities that peak at zero (HalfNormal, Exponential): only the upper tail is a tail.
    one_sided = isinstance(prior, (HalfNormal, Exponential))
    return float(np.mean(draws <= value)), float(z), one_sided


def _values(fit, name):
    """Posterior draws of the quantity `name`'s prior describes, shaped (chain, draw[, group])."""
    post = fit.posterior
    law = fit.model.law
    pooled = pop_name(name) in post
    var = post[pop_name(name)] if pooled else post[name]
    values = var.transpose(*SAMPLE_DIMS, ...).values
    prior = fit.priors_[name]
    sw = law.parameter(name).scales_with if name in law.param_names else None
    if sw is None or not isinstance(prior, LogNormal):
        return values, var.dims, False
    inp, expo = sw
    log_c = float(np.log(fit.centres_[law.scaled_inputs[inp]]))
    log_at = 0.0 if prior.at is None else float(np.log(prior.at))

    def exponent(pop):
        if not isinstance(expo, str):
            return float(expo)
        if pop and pop_name(expo) in post:
            return post[pop_name(expo)].values
        k = post[expo].transpose(*SAMPLE_DIMS, ...).values
        if pop and k.ndim == 3:  # independent exponent: the population value is the geometric mean
            return np.exp(np.log(k).mean(axis=-1))
        return k

    k_own = exponent(pooled)
    k_pop = exponent(True)
    if fit.model.hierarchical and fit.model.pooling_of(name) == "independent":
        k_pop = k_own
    if np.ndim(k_pop) == 2 and values.ndim == 3:
        k_pop = k_pop[..., None]
    if np.ndim(k_own) == 2 and values.ndim == 3:
        k_own = k_own[..., None]
    # The sampler's prior: log(A) - k log(centre) ~ Normal(mu + k_pop (log(at) - log(centre)), sigma).
    log_term = np.log(values) - k_own * log_c - k_pop * (log_at - log_c)
    dims = var.dims if values.ndim == 2 else (*SAMPLE_DIMS, "group")
    return np.exp(log_term), dims, True


def model_checks(fit, prob=CONFLICT_PROB) -> pd.DataFrame:
    """Prior-data conflict and heavy-tail checks of a fit, one row per checked quantity.

    Parameters
    ----------
    fit : ScalingFit
    prob : float, default 0.99
        Central prior probability: a posterior median outside the prior's
        central ``prob`` interval is a conflict.

    Returns
    -------
    DataFrame
        Index ``check``: ``prior:<name>`` (``prior:<name>[<group>]`` for
        independent groups) per prior, and ``heavy_tail:nu`` for a Student-t
        likelihood. Columns ``prior`` (text), ``posterior_median`` (of the
        quantity the prior describes: the term at ``at`` for coefficients),
        ``prior_quantile`` (the prior's CDF there), ``prior_z`` (prior sds
        from the prior mean, on the log for LogNormal priors), ``flagged``
        and ``message`` (empty when not flagged). ``attrs["prob"]``. A model
        with ``undertuned=True`` adds ``undertuned:rate``.

    Examples
    --------
    >>> fit.model_checks()[["posterior_median", "prior_quantile", "flagged"]]  # doctest: +SKIP
    >>> # coefficients: posterior_median is that of A / at**alpha, the quantity the LogNormal prior is on
    """
    _check_prob(prob)
    rng = np.random.default_rng(0)
    tail = (1 - prob) / 2
    rows = []
    post = fit.posterior
    for name, prior in fit.priors_.items():
        if name not in post:
            continue
        values, dims, term = _values(fit, name)
        medians = np.median(values.reshape(-1, *values.shape[2:]), axis=0)
        labels = [None] if medians.ndim == 0 else [str(g) for g in post["group"].values]
        for label, med in zip(labels, np.ravel(medians)):
            q, z, one_sided = _prior_position(prior, float(med), rng)
            flagged = bool(q > 1 - tail if one_sided else (q < tail or q > 1 - tail))
            key = name if label is None else f"{name}[{label}]"
            message = ""
            if flagged:
                scale = "on the log scale " if isinstance(prior, LogNormal) else ""
                if term:
                    at = "" if prior.at is None else f" / {prior.at:.3g}**{fit.model.law.parameter(name).scales_with[1]}"
                    shown = f"of {key}{at}, {med:.4g},"
                else:
                    shown = f"{med:.4g}"
                message = (f"{key}: posterior median {shown} is outside the central {prob:.0%} of its prior "
                           f"{prior} (quantile {q:.2g}, {z:+.1f} sd{' ' + scale.strip() if scale else ''}); check the prior or the law")
            rows.append(dict(check=f"prior:{key}", prior=str(prior),
                             posterior_median=float(med),
                             prior_quantile=q, prior_z=z, flagged=flagged, message=message))
    if fit.model.likelihood == "student_t" and "nu" in post:
        nu = float(post["nu"].median())
        flagged = nu < NU_MIN
        message = (f"heavy tails: Student-t nu = {nu:.3g} < {NU_MIN:g}, so the run-to-run noise has no finite "
                   "variance; look for outlying or mislabelled runs before trusting new-run bands") if flagged else ""
        rows.append(dict(check="heavy_tail:nu", prior=str(fit.priors_.get("nu", "")), posterior_median=nu,
                         prior_quantile=np.nan, prior_z=np.nan, flagged=flagged, message=message))
    if "undertuned_rate" in post:
        rate = float(post["undertuned_rate"].median())
        flagged = rate > UNDERTUNED_RATE_MAX
        message = (f"undertuned_rate: posterior median {rate:.2f} > {UNDERTUNED_RATE_MAX:g}, so the component is "
                   "absorbing the law's misfit and bands come out too narrow; fit without undertuned=True") if flagged else ""
        rows.append(dict(check="undertuned:rate", prior=str(fit.priors_.get("undertuned_rate", "")),
                         posterior_median=rate, prior_quantile=np.nan, prior_z=np.nan, flagged=flagged,
                         message=message))
    table = pd.DataFrame(rows, columns=["check", "prior", "posterior_median", "prior_quantile", "prior_z",
                                        "flagged", "message"]).set_index("check")
    table.attrs["prob"] = prob
    return table


def caveats(result) -> list:
    """The messages of a fit's failing heavy-tail and undertuned-rate checks, for the tables made from it.

    Read from the posterior, so a saved and loaded fit carries the same verdict;
    empty for fits without those checks (point fits). Prior-data conflicts are
    warned about when fitting and listed by :func:`model_checks`.
    """
    checks = getattr(result, "model_checks", None)
    if checks is None or getattr(result, "model", None) is None:
        return []
    table = checks()
    keep = table["flagged"] & (table.index.str.startswith("heavy_tail:") | table.index.str.startswith("undertuned:"))
    return [str(m) for m in table.loc[keep, "message"]]


def warn_model_checks(fit, stacklevel=2) -> pd.DataFrame:
    """Run :func:`model_checks` and warn once per failing kind of check; returns the table."""
    table = model_checks(fit)
    prior_rows = table[table["flagged"] & table.index.str.startswith("prior:")]
    if len(prior_rows):
        warn_user("Prior-data conflict:\n  - " + "\n  - ".join(prior_rows["message"]),
                  PriorDataConflictWarning, stacklevel=stacklevel + 1)
    tail_rows = table[table["flagged"] & table.index.str.startswith("heavy_tail:")]
    if len(tail_rows):
        warn_user(tail_rows["message"].iloc[0], HeavyTailWarning, stacklevel=stacklevel + 1)
    share_rows = table[table["flagged"] & table.index.str.startswith("undertuned:")]
    if len(share_rows):
        warn_user(share_rows["message"].iloc[0], ModelCheckWarning, stacklevel=stacklevel + 1)
    return table
