"""Extrapolation backtests: fit on the small runs, predict the large ones.

:func:`backtest` fits every method on the runs below a cutoff (in compute,
model size or tokens, or a mask of your own), predicts the held-out runs and
scores each method on them:

* ``mape`` / ``max_ape``: mean and largest absolute percentage error of the
  median prediction (``loss_median``) against the observed loss;
* ``coverage_50``, ``coverage_90`` (one per requested probability): share of
  held-out runs whose observed loss lies inside the **new-run band**
  (``new_run_lower`` to ``new_run_upper`` of ``predict``), the band meant to
  hold one new run's loss; ``width_50``, ``width_90``: its mean width in loss
  units. Well-calibrated bands cover about their nominal share;
* ``rel_width_50`` ...: mean of the band's width divided by the observed loss
  (a width in loss fractions, comparable across datasets);
* ``interval_score_50`` ...: interval score of the central band (Gneiting and
  Raftery 2007, eq. 43) on the loss scale, averaged over held-out runs:
  ``(u - l) + (2 / a) (l - y) [y < l] + (2 / a) (y - u) [y > u]`` with
  ``a = 1 - p``. It rewards narrow bands and charges misses by how far they
  miss; lower is better, and a band that covers scores its width;
* ``crps``: continuous ranked probability score of the predictive distribution
  of one new run's **log** loss, averaged over held-out runs (lower is
  better; for a point prediction it is the absolute error of the log loss).
  Bayesian fits: from the predictive draws ``fit.predict_draws(test)``; point
  fits with bootstrap: from their bootstrapped new-run draws; point fits
  without: the closed form of their Normal plug-in predictive (curve,
  residual scale ``sigma``);
* ``lpd``: mean log predictive density of the held-out runs' log loss (nats
  per run; higher is better). Bayesian fits: log of the posterior-averaged
  density of each run (log pointwise predictive density). Point fits: the
  Normal plug-in density with the residual scale (averaged over bootstrap
  fits when bootstrapped). NaN for methods without a density;
* ``converged``: the fit's own verdict (R-hat, ESS and divergences for a
  Bayesian fit; L-BFGS-B convergence at the best start for a point fit).

The band each kind of fit is scored on is listed in the Notes of :func:`backtest`.
"""

from __future__ import annotations

import contextlib
import time
import warnings

import numpy as np
import pandas as pd

from ..analysis.contract import ScalingResult
from ..base.errors import SpecError
from ..analysis.predictive import log_curve, predict_draws
from ..base.validation import check_seed as _check_seed
from ..base import errors
from ..runs.data import load_runs
from ..core.extrapolation import Reach, decades_beyond
from ..fitting.model import ScalingModel
from ..fitting.point import IsoFLOP, IsoFLOPFit

__all__ = ["backtest", "split_runs", "interval_score", "crps_draws", "crps_normal"]

HOLDOUT_COLUMNS = ("C", "N", "D")
DETAILS = ("method", "run")


def split_runs(runs, holdout="C", *, cutoff=None, fraction=None, columns=None):
    """Split runs into a training set and a held-out set of larger runs.

    Parameters
    ----------
    runs : RunData, DataFrame, dict of arrays or path
    holdout : {"C", "N", "D"} or array of bool
        Column to cut on, or a mask with True for held-out runs.
    cutoff : float, optional
        Hold out runs with ``holdout >= cutoff``.
    fraction : float, optional
        Hold out the largest `fraction` of runs by `holdout` (ties at the
        boundary are held out too). Default 0.1 when neither is given.
    columns : dict, optional
        Column renaming, as in :func:`bayescale.load_runs`.

    Returns
    -------
    train, test : RunData

    Examples
    --------
    >>> import bayescale as bs
    >>> train, test = split_runs(bs.datasets.load_chinchilla(drop_outliers=True), "C", cutoff=1e21)
    >>> len(train), len(test), bool(test.frame["C"].min() >= 1e21 > train.frame["C"].max())
    (217, 23, True)
    """
    train, test, _ = _split(runs, holdout, cutoff, fraction, columns)
    return train, test


def _split(runs, holdout, cutoff, fraction, columns):
    runs = load_runs(runs, columns=columns, require=())
    frame = runs.frame
    if isinstance(holdout, str):
        if holdout not in HOLDOUT_COLUMNS:
            raise SpecError(f"holdout={holdout!r}: cut on one of {', '.join(HOLDOUT_COLUMNS)}, or pass a boolean mask")
        if holdout not in frame:
            raise SpecError(f"holdout={holdout!r}, but the runs have no {holdout!r} column")
        if cutoff is not None and fraction is not None:
            raise SpecError("give cutoff= or fraction=, not both")
        values = frame[holdout].to_numpy(dtype=float)
        if cutoff is None:
            fraction = 0.1 if fraction is None else fraction
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
                raise SpecError(f"fraction must be strictly between 0 and 1, got {fraction!r}")
            k = max(int(np.ceil(fraction * len(values))), 1)
            cutoff = float(np.sort(values)[-k])
        mask = values >= float(cutoff)
        what = f"{holdout} >= {float(cutoff):.4g}"
    else:
        if cutoff is not None or fraction is not None:
            raise SpecError("cutoff= and fraction= apply to a column holdout, not to a mask")
        mask = np.asarray(holdout)
        if mask.dtype != bool or mask.shape != (runs.n_runs,):
            raise SpecError(f"a holdout mask must be an array of {runs.n_runs} booleans (True = held out), "
                            f"got dtype {mask.dtype} and shape {mask.shape}")
        what = "mask"
    if mask.all() or not mask.any():
        side = "no training" if mask.all() else "no held-out"
        span = (f"; {holdout} ranges from {values.min():.4g} to {values.max():.4g}"
                if isinstance(holdout, str) else "")
        raise SpecError(f"holdout ({what}) leaves {side} runs among the {runs.n_runs}{span}")
    return load_runs(frame[~mask], require=()), load_runs(frame[mask], require=()), what


def _same_runs(a, b) -> bool:
    cols = [c for c in ("N", "D", "C", "U", "loss") if c in a.frame and c in b.frame]
    return a.n_runs == b.n_runs and all(
        np.array_equal(a.frame[c].to_numpy(dtype=float), b.frame[c].to_numpy(dtype=float)) for c in cols)


def _fit_method(name, method, runs, random_seed):
    """Fit of `method` on the training `runs`, and whether backtest made it (False: passed in fitted)."""
    if isinstance(method, ScalingResult):
        if not _same_runs(method.runs, runs):
            raise SpecError(
                f"method {name!r} is a fit made on {method.runs.n_runs} runs that are not this backtest's "
                f"{runs.n_runs} training runs; it may have seen the held-out runs. Pass its spec (e.g. "
                "bs.Approach3() or bs.ScalingModel(...)), or fit it on split_runs(...)[0]")
        return method, False
    if isinstance(method, (IsoFLOP, IsoFLOPFit)):
        raise SpecError(f"method {name!r} is an isoFLOP fit, which predicts allocations, not losses; "
                        "backtest methods must predict the loss of runs")
    if isinstance(method, ScalingModel):
        return method.fit(runs, random_seed=random_seed), True
    if hasattr(method, "fit"):
        return method.fit(runs), True
    if callable(method):
        return method(runs), True
    raise SpecError(f"method {name!r} must be a ScalingModel, a PointModel (anything with .fit(runs)), a "
                    f"function runs -> fit, or a fit made on the training runs; got {type(method).__name__}")


def _lpd(fit, test) -> np.ndarray:
    """Log predictive density of each held-out run's log loss."""
    return np.asarray(fit.log_predictive_density(test), dtype=float)


def interval_score(lower, upper, observed, prob) -> np.ndarray:
    """Interval score of central ``prob`` bands (Gneiting and Raftery 2007, eq. 43), per run.

    ``(u - l) + (2 / a) (l - y) [y < l] + (2 / a) (y - u) [y > u]`` with
    ``a = 1 - prob``: the width, plus a penalty for a miss that grows with
    its distance. Lower is better; the expected score is smallest for the
    band between the true ``a / 2`` and ``1 - a / 2`` quantiles.

    Parameters
    ----------
    lower, upper, observed : array_like
        Band ends and observations, on the same scale.
    prob : float
        Nominal probability of the band, strictly between 0 and 1.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> interval_score([1.0, 1.0], [2.0, 2.0], [1.5, 2.5], 0.9)  # covers: the width; misses by 0.5: + 20 * 0.5
    array([ 1., 11.])
    """
    lower, upper, y = (np.asarray(v, dtype=float) for v in (lower, upper, observed))
    a = 1.0 - float(prob)
    return (upper - lower) + (2 / a) * np.maximum(lower - y, 0.0) + (2 / a) * np.maximum(y - upper, 0.0)


def crps_draws(draws, observed) -> np.ndarray:
    """CRPS of a sample-based predictive, per column: ``E|X - y| - E|X - X'| / 2``.

    Computed exactly for the empirical distribution of the draws, from the
    sorted sample (``E|X - X'| = 2 / m^2 sum_i (2 i - m - 1) x_(i)``), in
    O(m log m) per column.

    Parameters
    ----------
    draws : array_like, shape (m, n) or (m,)
        ``m`` predictive draws for each of ``n`` observations.
    observed : array_like, shape (n,) or scalar

    Returns
    -------
    ndarray, shape (n,)

    Examples
    --------
    >>> crps_draws([[2.0], [2.0]], [2.5])  # a point mass: the absolute error
    array([0.5])
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    y = np.broadcast_to(np.asarray(observed, dtype=float), x.shape[1:])
    m = x.shape[0]
    xs = np.sort(x, axis=0)
    spread = ((2 * np.arange(1, m + 1) - m - 1)[:, None] * xs).sum(axis=0) / m**2
    return np.abs(x - y[None, :]).mean(axis=0) - spread


def crps_normal(mu, sigma, observed) -> np.ndarray:
    """CRPS of Normal(mu, sigma) predictives, closed form (Gneiting and Raftery 2007, eq. 21).

    ``sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with ``z = (y - mu) / sigma``;
    ``|y - mu|`` where ``sigma = 0``.

    Examples
    --------
    >>> round(float(crps_normal(0.0, 1.0, 0.0)[0]), 6)  # (sqrt(2) - 1) / sqrt(pi)
    0.233695
    """
    from scipy import stats

    mu, sigma, y = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (mu, sigma, observed)))
    out = np.abs(y - mu).astype(float)
    pos = sigma > 0
    z = (y[pos] - mu[pos]) / sigma[pos]
    out[pos] = sigma[pos] * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    return out


def _log_predictive_draws(fit, test):
    """Draws (m, n) of one new run's log loss at the held-out runs; None for a point estimate (exact CRPS)."""
    if fit.draws_kind == "point":
        return None
    with np.errstate(all="ignore"):
        draws = predict_draws(fit, test)["new_run_loss"].values
        # A draw whose loss over- or underflowed (extremely heavy-tailed noise) is clipped at the
        # float range, which makes the CRPS of such a predictive a lower bound.
        tiny, big = np.finfo(float).tiny, np.finfo(float).max
        return np.log(np.clip(draws.reshape(-1, test.n_runs), tiny, big))


def _crps(fit, test, draws) -> np.ndarray:
    """CRPS of each held-out run's log loss: from predictive draws, or exact for a point estimate's Normal."""
    y = np.log(test.loss)
    if draws is not None:
        return crps_draws(draws, y)
    mu = log_curve(fit.law, test.inputs(fit.law.inputs), {k: np.asarray(v) for k, v in fit.point_params.items()})
    return crps_normal(mu.ravel(), fit.sigma, y)


def _beyond(train, test) -> pd.DataFrame:
    """Decades of C, N and D by which each held-out run lies outside the training runs' range."""
    values = {q: test.frame[q].to_numpy(dtype=float) for q in HOLDOUT_COLUMNS if q in test.frame}
    return decades_beyond(Reach.from_runs(train), values)


@contextlib.contextmanager
def _quiet():
    """Silence the extrapolation warnings a backtest provokes on purpose (it predicts beyond the fit)."""
    with warnings.catch_warnings():
        category = getattr(errors, "ExtrapolationWarning", None)
        if category is not None:
            warnings.simplefilter("ignore", category)
        yield


def _tag(p) -> str:
    return f"{100 * p:g}".replace(".", "_")


def score_method(name, method, train, test, probs, random_seed):
    """Fit `method` on `train` and score it on `test`: the method row and the per-run table."""
    observed = test.loss
    t0 = time.perf_counter()
    fit, fitted_here = _fit_method(name, method, train, random_seed)
    seconds = time.perf_counter() - t0 if fitted_here else np.nan
    if not isinstance(fit, ScalingResult):
        raise SpecError(f"method {name!r} gave a {type(fit).__name__}, which is not a fit of a scaling law "
                        "(a ScalingFit or PointFit: param_draws, predict, log_predictive_density)")
    row = {"method": name, "n_train": train.n_runs, "n_test": test.n_runs}
    run = test.frame[[c for c in ("N", "D", "C", "U") if c in test.frame]].copy()
    run.insert(0, "method", name)
    run["observed_loss"] = observed
    extra = {}
    with _quiet():
        ape = None
        for p in probs:
            pred = fit.predict(test, prob=p)
            med = pred["loss_median"].to_numpy(dtype=float)
            lo = pred["new_run_lower"].to_numpy(dtype=float)
            hi = pred["new_run_upper"].to_numpy(dtype=float)
            if ape is None:
                ape = 100 * np.abs(med - observed) / observed
                row["mape"], row["max_ape"] = float(ape.mean()), float(ape.max())
                run["loss_median"], run["ape"] = med, ape
            inside = (observed >= lo) & (observed <= hi)
            score = interval_score(lo, hi, observed, p)
            row[f"coverage_{_tag(p)}"] = float(inside.mean())
            row[f"width_{_tag(p)}"] = float(np.mean(hi - lo))
            extra[f"rel_width_{_tag(p)}"] = float(np.mean((hi - lo) / observed))
            extra[f"interval_score_{_tag(p)}"] = float(score.mean())
            run[f"new_run_lower_{_tag(p)}"], run[f"new_run_upper_{_tag(p)}"] = lo, hi
            run[f"covered_{_tag(p)}"] = inside
            run[f"interval_score_{_tag(p)}"] = score
        lpd = _lpd(fit, test)
        draws = _log_predictive_draws(fit, test)
        crps = _crps(fit, test, draws)
    row["lpd"] = float(np.mean(lpd))
    row["converged"] = bool(fit.converged)
    row["fit_seconds"] = seconds
    row.update(extra)
    row["crps"] = float(np.mean(crps))
    run["lpd"] = lpd
    run["crps"] = crps
    run["log_sd"] = draws.std(axis=0) if draws is not None else np.full(test.n_runs, float(fit.sigma))
    beyond = _beyond(train, test)
    for col in beyond.columns:
        run[col] = beyond[col].to_numpy()
    return row, run


def backtest(methods, runs, holdout="C", *, cutoff=None, fraction=None, prob=(0.5, 0.9), random_seed=0,
             detail="method", columns=None) -> pd.DataFrame:
    """Fit each method on the smaller runs and score its predictions of the held-out larger runs.

    Parameters
    ----------
    methods : dict of name -> method
        A :class:`~bayescale.fitting.model.ScalingModel` (fitted with
        ``random_seed``), a point-fit spec such as
        :class:`~bayescale.fitting.point.Approach3` (anything with ``.fit(runs)``),
        a function ``runs -> fit`` (e.g. to pass sampler settings), or a fit
        already made on exactly the training runs (``split_runs(...)[0]``;
        checked, so held-out runs cannot leak in), e.g. to score it twice
        with different ``detail``. The fit must have
        ``predict(new_runs, prob)``. The band each kind of fit is scored
        on is listed in the Notes below.
    runs : RunData, DataFrame, dict of arrays or path
    holdout : {"C", "N", "D"} or array of bool, default "C"
        See :func:`split_runs`; with ``cutoff`` or ``fraction`` (default:
        the largest 10% of runs are held out).
    prob : sequence of float, default (0.5, 0.9)
        Nominal probabilities of the new-run bands scored.
    random_seed : int, default 0
        Seed given to ScalingModel fits.
    detail : {"method", "run"}
        ``method``: one row per method (the scores); ``run``: one row per
        method and held-out run (predictions, errors, coverage, density).

    Returns
    -------
    DataFrame
        ``detail="method"``: ``method``, ``n_train``, ``n_test``, ``mape``,
        ``max_ape`` (percent), ``coverage_<p>`` and ``width_<p>`` per
        probability, ``lpd`` (mean log density of log loss per held-out run),
        ``converged``, ``fit_seconds`` (NaN for a fit passed in fitted), then
        ``rel_width_<p>`` and ``interval_score_<p>`` per probability and
        ``crps`` (of log loss; see the module notes).
        ``detail="run"``: ``method``, the inputs, ``observed_loss``,
        ``loss_median``, ``ape``,
        ``new_run_lower_<p>``, ``new_run_upper_<p>``, ``covered_<p>``,
        ``interval_score_<p>``, ``lpd``, ``crps``, ``log_sd`` (sd of the
        predictive distribution of log loss: of the draws, or the plug-in
        ``sigma`` of a point fit without bootstrap), and ``beyond_C``,
        ``beyond_N``, ``beyond_D``, ``beyond``: decades by which the run lies
        outside the training runs' range
        (:func:`bayescale.core.extrapolation.decades_beyond`). ``attrs``: ``holdout`` (the cut, e.g. ``"C >= 1e+21"``),
        ``band`` (``"new_run"``), ``prob``.

    Raises
    ------
    SpecError
        For an unknown holdout column, a cutoff that leaves no training or no
        held-out runs, a mask of the wrong length or type, both ``cutoff``
        and ``fraction``, or a method that cannot predict losses.

    Notes
    -----
    Every method is scored on its **new-run band** (``new_run_lower`` to
    ``new_run_upper`` of its ``predict``), the band meant to hold the loss of
    one new training run; what that band is depends on the kind of fit:

    * :class:`~bayescale.fitting.fit.ScalingFit` (Bayesian): central interval of the
      posterior predictive of one new run — each posterior draw's curve plus a
      draw of its likelihood's noise (Student-t or Normal on log loss), so it
      carries both the uncertainty of the curve in extrapolation and run-to-run
      scatter;
    * :class:`~bayescale.fitting.point.PointFit` with bootstrap: central interval of
      bootstrapped curves plus residuals resampled from the full-data fit;
    * :class:`~bayescale.fitting.point.PointFit` without bootstrap: the point curve
      shifted by the empirical quantiles of its residuals on log loss — no
      uncertainty about the curve, which is why such bands under-cover when the
      extrapolation is far.

    The log predictive density is the Student-t (or Normal) likelihood of
    the Bayesian model averaged over posterior draws; for point fits the
    Normal plug-in density with the residual scale ``sigma`` (averaged over
    bootstrap fits when bootstrapped).

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
    >>> table = backtest({"Approach 3": bs.Approach3(n_boot=20, random_seed=0)}, runs, "C", cutoff=1e21)
    >>> table.columns.tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['method', 'n_train', 'n_test', 'mape', 'max_ape', 'coverage_50', 'width_50', 'coverage_90', 'width_90',
     'lpd', 'converged', 'fit_seconds', 'rel_width_50', 'interval_score_50', 'rel_width_90', 'interval_score_90',
     'crps']
    """
    random_seed = _check_seed(random_seed)
    if detail not in DETAILS:
        raise SpecError(f"detail must be one of {DETAILS}, got {detail!r}")
    if not isinstance(methods, dict) or not methods:
        raise SpecError("methods must be a non-empty dict of name -> ScalingModel, PointModel or function")
    probs = tuple(np.atleast_1d(np.asarray(prob, dtype=float)).tolist())
    if not all(0 < p < 1 for p in probs):
        raise ValueError(f"every prob must be strictly between 0 and 1, got {prob!r}")
    train, test, holdout_what = _split(runs, holdout, cutoff, fraction, columns)
    rows, per_run = [], []
    for name, method in methods.items():
        row, run = score_method(name, method, train, test, probs, random_seed)
        rows.append(row)
        per_run.append(run)
    if detail == "run":
        out = pd.concat(per_run).rename_axis("run").reset_index()
    else:
        out = pd.DataFrame(rows)
    out.attrs.update(holdout=holdout_what, band="new_run", lpd="log density of log loss, nats per held-out run",
                     prob=probs)
    return out
