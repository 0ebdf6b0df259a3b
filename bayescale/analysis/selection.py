"""Model comparison by leave-one-out cross-validation (PSIS-LOO, through ArviZ).

:func:`compare_loo` ranks fits of different laws, priors, likelihoods or
pooling choices on the same runs by their expected log predictive density
for a left-out run (``elpd_loo``), with standard errors, and the difference
to the best with its own standard error. A difference smaller than about two
of its standard errors does not separate two models.

The likelihood of every bayescale model is on log loss, so all ELPDs share
that scale and compare directly. (On the scale of the loss itself every
model's ELPD would shift by the same constant, ``-sum(log loss)``.)
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from ..base.errors import DataError, SpecError

__all__ = ["loo", "compare_loo", "describe_model", "check_same_runs"]


def loo(fit):
    """PSIS-LOO of one fit.

    Parameters
    ----------
    fit : ScalingFit

    Returns
    -------
    ELPDData
        ArviZ's result: ``elpd`` (the estimate), ``se``, ``p`` (effective
        number of parameters), ``pareto_k`` (one per run; values above
        ``good_k`` mean the estimate for that run is unreliable), ``elpd_i``.

    Examples
    --------
    >>> result = loo(fit)  # doctest: +SKIP
    >>> result.elpd, result.se  # doctest: +SKIP
    """
    import arviz_stats as azs

    _check_fit(fit, "fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # high Pareto k are reported in the table instead
        return azs.loo(fit.idata, pointwise=True, var_name="log_loss")


def describe_model(model) -> str:
    """Short label of a model: law, likelihood when not the default, pooling.

    Examples
    --------
    >>> from bayescale.fitting.model import ScalingModel
    >>> describe_model(ScalingModel("chinchilla", pooling={"E": "partial", "A": "independent"}))
    'chinchilla (E partial, A independent)'
    >>> describe_model(ScalingModel("power_n", likelihood="normal"))
    'power_n, normal'
    """
    label = (model.name or model.law.name) + ("" if model.likelihood == "student_t" else f", {model.likelihood}")
    pooling = model.pooling.to_dict()
    if pooling:
        label += " (" + ", ".join(f"{k} {v}" for k, v in pooling.items()) + ")"
    return label


def _check_fit(fit, name):
    if getattr(fit, "draws_kind", None) != "posterior":
        raise SpecError(f"{name} is a {type(fit).__name__}, not a ScalingFit; pass fits made with model.fit(runs)")
    if "log_likelihood" not in fit.idata.children:
        raise SpecError(f"{name} has no pointwise log-likelihood; it cannot be compared by LOO")


def _named(fits) -> dict:
    if isinstance(fits, Mapping):
        named = {str(k): v for k, v in fits.items()}
    else:
        fits = list(fits)
        labels = [describe_model(f.model) if hasattr(f, "model") else f"fit {i}" for i, f in enumerate(fits)]
        named = {}
        for i, (label, fit) in enumerate(zip(labels, fits)):
            key = label if labels.count(label) == 1 else f"{label} #{i + 1}"
            named[key] = fit
    if len(named) < 2:
        raise SpecError(f"compare_loo needs at least two fits, got {len(named)}")
    for key, fit in named.items():
        _check_fit(fit, repr(key))
    return named


def check_same_runs(named, *, purpose, header):
    """Raise a DataError unless every fit of `named` was made on the same runs (same losses in the same order).

    `purpose` ends the message (why the runs must match, e.g. "LOO compares models fitted to the same runs");
    `header` heads it. Works for any fit of the results contract (its ``runs``).

    Examples
    --------
    >>> check_same_runs({"a": fit_a, "b": fit_b}, purpose="LOO compares models fitted to the same runs",
    ...                 header="Fits cannot be compared:")  # doctest: +SKIP
    """
    (ref_name, ref), *rest = named.items()
    y0 = np.asarray(ref.runs.loss, dtype=float)
    for key, fit in rest:
        y = np.asarray(fit.runs.loss, dtype=float)
        if y.shape != y0.shape:
            raise DataError([f"fit {key!r} was made on {y.size} runs and {ref_name!r} on {y0.size}; {purpose}"],
                            header=header)
        diff = np.flatnonzero(~np.isclose(y, y0, rtol=1e-12, atol=0.0))
        if diff.size:
            i = int(diff[0])
            raise DataError([f"fit {key!r} and {ref_name!r} differ at run {i} (loss {y[i]:.6g} vs {y0[i]:.6g}) "
                             f"and {diff.size - 1} more; {purpose} in the same order"], header=header)


def compare_loo(fits, *, method="stacking") -> pd.DataFrame:
    """Rank fits on the same runs by PSIS-LOO, with standard errors.

    Parameters
    ----------
    fits : mapping or sequence of ScalingFit
        ``{name: fit}``, or a list (named by :func:`describe_model`). All
        must be fitted to the same runs, in the same order; laws, priors,
        likelihoods and pooling choices may differ.
    method : {"stacking", "BB-pseudo-BMA", "pseudo-BMA"}
        How ArviZ weights the models (``weight`` column).

    Returns
    -------
    DataFrame
        One row per fit, best first, indexed by name. Columns: ``rank``
        (0 = best), ``elpd_loo`` and ``se``; ``elpd_diff`` (to the best,
        <= 0) and ``dse`` (standard error of the difference, which accounts
        for the runs both models find hard); ``diff_in_se`` (elpd_diff /
        dse: below about -2 the best model is clearly better); ``p_loo``
        (effective number of parameters); ``weight``; ``n_high_k`` (runs
        whose Pareto k exceeds the reliability threshold — the estimate
        leans on them; inspect with :func:`loo`); ``law``, ``pooling``,
        ``likelihood``, ``n_runs``, ``converged``.

    Raises
    ------
    DataError
        The fits were made on different runs.
    SpecError
        Fewer than two fits, or something that is not a fit.

    Examples
    --------
    >>> table = compare_loo({"pooled": pooled_fit, "independent": independent_fit,  # doctest: +SKIP
    ...                      "shared": shared_fit})
    >>> table[["rank", "elpd_loo", "se", "elpd_diff", "dse", "converged"]]  # doctest: +SKIP
    """
    import arviz_stats as azs

    if method not in ("stacking", "BB-pseudo-BMA", "pseudo-BMA"):
        raise SpecError(f"unknown method {method!r}; valid: stacking, BB-pseudo-BMA, pseudo-BMA")
    named = _named(fits)
    check_same_runs(named, purpose="LOO compares models fitted to the same runs", header="Fits cannot be compared:")
    results = {k: loo(f) for k, f in named.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare(results, method=method, round_to="none")
    rows = []
    for key in table.index:
        fit, res = named[key], results[key]
        k = np.asarray(res.pareto_k).ravel()
        good = float(getattr(res, "good_k", 0.7))
        row = table.loc[key]
        rows.append({
            "model": key,
            "rank": int(row["rank"]),
            "elpd_loo": float(res.elpd),
            "se": float(res.se),
            "elpd_diff": float(row["elpd_diff"]),
            "dse": float(row["dse"]),
            "p_loo": float(res.p),
            "weight": float(row["weight"]),
            "n_high_k": int(np.sum(k > good)),
            "law": fit.model.law.name,
            "pooling": ", ".join(f"{p} {c}" for p, c in fit.model.pooling.to_dict().items()) or "shared",
            "likelihood": fit.model.likelihood,
            "n_runs": int(fit.runs.n_runs),
            "converged": bool(fit.converged),
        })
    out = pd.DataFrame(rows).set_index("model").sort_values("rank")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff_in_se = out["elpd_diff"] / out["dse"]
    out.insert(5, "diff_in_se", diff_in_se.where(out["rank"] > 0, 0.0))
    return out
