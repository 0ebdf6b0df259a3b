"""Held-out draws: fit a ladder's smaller runs once, keep what any band model needs to score its larger runs.

Judging a model of the law's form uncertainty out of family means scoring
it on ladders that had no say in its rates. Refitting every ladder for every
candidate would cost hours; the candidates differ only beyond the fitted
runs, where they act on the draws of the law fitted with its form known. So
each split is fitted once (``form_uncertainty=None``) and keeps, for every
held-out run, thinned posterior draws of

* ``log_curve``: the law's log loss there (the curve band without discrepancy),
* ``noise``: one new run's log-loss noise,
* ``floor``: the draw's irreducible loss E (0 for laws without one),

with the run's distance beyond the fitted range, and for every held-out
IsoFLOP level with an interior minimum, the draws of log10 N_opt against
the level's empirical optimum (the vertex of a parabola in log N, Hoffmann et
al. 2022 Approach 2). The split's ladder features (residual scale, reducible
share, span, number of sizes) come along, so that a discrepancy model may
depend on them. :mod:`bayescale.core.discrepancy` learns and scores band models
on these arrays.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..runs.data import load_runs
from ..core.discrepancy import RECALIBRATION_PENALTY, recalibrate, records
from ..base.errors import SpecError, warn_user
from ..base.files import atomic_write
from ..core.form import FormUncertainty, residual_scale
from ..core.shifts import irreducible_draws, reducible_fraction
from ..base.validation import FLOPS_PER_PARAM_TOKEN
from ..core.extrapolation import Reach, decades_beyond
from ..fitting.model import ScalingModel
from ..analysis.planning import allocate_draws
from ..analysis.predictive import predict_draws

__all__ = ["Split", "ladder_splits", "holdout_draws", "collect", "empirical_optimum", "calibrate_form", "THIN_DRAWS"]

#: Draws kept per split (thinned evenly from the posterior's chains x draws).
THIN_DRAWS = 1000
#: Fractions of a ladder's log-compute span below which its runs are fitted (one split each).
CUT_FRACTIONS = (0.5, 0.75)
#: Fewest training runs, and distinct model sizes among them, for a split to be made.
MIN_TRAIN_RUNS, MIN_TRAIN_SIZES = 7, 3  # 7: the Chinchilla law with Student-t noise has 7 parameters
#: Fewest runs of an IsoFLOP level, at distinct sizes, for its empirical optimum.
MIN_LEVEL_RUNS = 5


@dataclass(frozen=True, eq=False)
class Split:
    """One leave-future-out split of one ladder: fit ``train``, score ``test``.

    Attributes
    ----------
    name : str
        ``ladder@C<cut``.
    source, ladder, evidence : str
        The independent source (paper) of the ladder, its label, and the label of
        the training runs it scores (ladders that are the same trainings share it).
    law : str
    train, test : DataFrame
        Run tables (``N``, ``D``, ``C``, ``loss``, and ``U`` for repeated data,
        ``isoflop_level`` where the design has levels).
    cut : float
        Training runs have ``C < cut``.
    """

    name: str
    source: str
    ladder: str
    evidence: str
    law: str
    train: pd.DataFrame
    test: pd.DataFrame
    cut: float

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {self.law}, train={len(self.train)}, test={len(self.test)})"


def _sizes(n) -> int:
    n = np.sort(np.asarray(n, dtype=float))
    return int(1 + np.sum(n[1:] / n[:-1] > 1.01)) if n.size else 0


#: Cuts kept beside the fractions, for figures docs/guide/form-uncertainty.md quotes (Chinchilla above 1e21 FLOP,
#: fitted below).
EXTRA_CUTS = {"hoffmann2022/chinchilla": (1e21,)}


def ladder_splits(ladders: pd.DataFrame, fractions=CUT_FRACTIONS, extra_cuts=None) -> list:
    """Leave-future-out splits of every ladder: fit the runs below a cut in compute, score those above.

    Each ladder is cut at each fraction of its log-compute span (0.5: fit the
    lower half of its decades of compute); a cut that leaves fewer than
    :data:`MIN_TRAIN_RUNS` training runs or :data:`MIN_TRAIN_SIZES` sizes, or
    no held-out run, is skipped. Ladders with unique tokens ``U`` (repeated
    data) are fitted with the data-constrained law, the others with
    Chinchilla's. `extra_cuts` (default :data:`EXTRA_CUTS`) adds cuts in FLOP
    per ladder label.

    Examples
    --------
    >>> from bayescale.runs.corpus import bundled_ladders
    >>> splits = ladder_splits(bundled_ladders())
    >>> len(splits), splits[0].name
    (35, 'hoffmann2022/chinchilla@C<1.3e+20')
    """
    splits = []
    for ladder, frame in ladders.groupby("ladder", sort=False):
        frame = frame.reset_index(drop=True)
        repeated = "U" in frame and frame["U"].notna().all() and (frame["D"] > frame["U"] * 1.0001).any()
        law = "data_constrained" if repeated else "chinchilla"
        cols = ["N", "D", "C", "loss"] + (["U"] if repeated else []) + ["isoflop_level"]
        lo, hi = np.log10(frame["C"].min()), np.log10(frame["C"].max())
        extra = (EXTRA_CUTS if extra_cuts is None else extra_cuts).get(ladder, ())
        for cut in [10 ** (lo + fraction * (hi - lo)) for fraction in fractions] + list(extra):
            below = frame["C"] < cut
            train, test = frame.loc[below, cols], frame.loc[~below, cols]
            if len(train) < MIN_TRAIN_RUNS or _sizes(train["N"]) < MIN_TRAIN_SIZES or test.empty:
                continue
            splits.append(Split(f"{ladder}@C<{cut:.2g}", frame["source"].iloc[0], ladder,
                                str(frame["evidence"].iloc[0]), law, train.reset_index(drop=True),
                                test.reset_index(drop=True), float(cut)))
    return splits


def empirical_optimum(level: pd.DataFrame):
    """log10 N at the minimum of a parabola in log10 N through one IsoFLOP level's losses, or None.

    None when the level has fewer than :data:`MIN_LEVEL_RUNS` distinct sizes,
    the parabola opens downwards, or its vertex lies outside the sizes trained.
    """
    x = np.log10(level["N"].to_numpy(dtype=float))
    y = np.log(level["loss"].to_numpy(dtype=float))
    if _sizes(level["N"]) < MIN_LEVEL_RUNS:
        return None
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return None
    vertex = -b / (2 * a)
    return float(vertex) if x.min() < vertex < x.max() else None


def _thin(values, keep):
    values = np.asarray(values, dtype=float)
    flat = values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])
    return flat[np.linspace(0, flat.shape[0] - 1, keep).round().astype(int)]


def holdout_draws(split: Split, model=None, *, random_seed=0, keep=THIN_DRAWS) -> xr.Dataset:
    """Fit `split`'s training runs with the law's form known and keep the draws that score its held-out runs.

    Parameters
    ----------
    split : Split
    model : callable, optional
        ``law_name -> model`` with a ``fit(runs, random_seed=)``; default
        ``ScalingModel(law, form_uncertainty=None)``. Point fits with
        bootstrap resamples work too (their resamples are the draws).
    random_seed : int, default 0
    keep : int, default 1000
        Draws kept (evenly thinned).

    Returns
    -------
    xarray.Dataset or None
        None when `model` gives None for the split's law. Dims ``sample`` and ``run`` (held-out runs) and ``level`` (held-out
        IsoFLOP levels with an empirical optimum): ``log_curve``, ``noise``
        (sample, run), ``floor`` (sample), ``observed`` (log loss),
        ``beyond``, ``beyond_C``, ``C``, ``N``, ``D`` (run);
        ``log10_n_opt`` (sample, level), ``observed_log10_n_opt``,
        ``level_C``, ``level_beyond_C`` (level). Attributes: the split's
        labels, ``converged``, ``fit_seconds`` and its ladder features
        ``residual_scale``, ``reducible_fraction``, ``span_C``, ``n_train``,
        ``n_sizes``.
    """
    make = model or (lambda law: ScalingModel(law, form_uncertainty=None))
    method = make(split.law)
    if method is None:
        return None
    require = ("N", "D", "U") if split.law == "data_constrained" else ("N", "D")
    cols = [c for c in ("N", "D", "C", "U", "loss") if c in split.train]
    train = load_runs(split.train[cols], require=require)
    test = load_runs(split.test[cols], require=require)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a Bayesian model takes its seed when fitting; point models take theirs in the constructor
        fit = method.fit(train, random_seed=random_seed) if isinstance(method, ScalingModel) else method.fit(train)
        seconds = time.perf_counter() - t0
        pred = predict_draws(fit, test, random_seed=random_seed)
        params = fit.param_draws(random_seed=random_seed)
        floor = np.broadcast_to(irreducible_draws(fit, params), np.shape(params[fit.law.param_names[0]]))
        log_curve = np.log(pred["expected_loss"].values)
        noise = np.log(pred["new_run_loss"].values) - log_curve
        levels = []
        if "isoflop_level" in split.test and split.law == "chinchilla":
            for _, g in split.test.groupby("isoflop_level"):
                opt = empirical_optimum(g)
                if opt is not None:  # the level's own compute: nominal labels need not be 6 N D
                    levels.append((float(np.exp(np.log(g["C"]).mean())), opt))
        if levels:
            alloc = allocate_draws(fit, [lv for lv, _ in levels])
            n_opt = np.log10(alloc["N"].values)
        else:
            n_opt = np.zeros((*fit.draw_shape, 0))
    beyond = decades_beyond(Reach.from_runs(train), test.frame.to_dict("series"))
    level_c = np.array([lv for lv, _ in levels])
    level_beyond = decades_beyond(Reach.from_runs(train), {"C": level_c})["beyond_C"].to_numpy() if levels else level_c
    tpp = np.log10(train.frame["D"] / train.frame["N"])
    ds = xr.Dataset(
        {"log_curve": (("sample", "run"), _thin(log_curve, keep)),
         "noise": (("sample", "run"), _thin(noise, keep)),
         "floor": (("sample",), _thin(floor, keep)),
         "observed": (("run",), np.log(test.loss)),
         "beyond": (("run",), beyond["beyond"].to_numpy()),
         "beyond_C": (("run",), beyond["beyond_C"].to_numpy()),
         "C": (("run",), test.frame["C"].to_numpy(dtype=float)),
         "N": (("run",), test.frame["N"].to_numpy(dtype=float)),
         "D": (("run",), test.frame["D"].to_numpy(dtype=float)),
         "log10_n_opt": (("sample", "level"), _thin(n_opt, keep)),
         "observed_log10_n_opt": (("level",), np.array([o for _, o in levels])),
         "level_C": (("level",), level_c),
         "level_beyond_C": (("level",), level_beyond)},
        attrs={"split": split.name, "source": split.source, "ladder": split.ladder, "evidence": split.evidence,
               "law": split.law, "cut": split.cut, "converged": int(bool(fit.converged)), "fit_seconds": seconds,
               "residual_scale": residual_scale(fit), "reducible_fraction": _or_nan(reducible_fraction, fit),
               "span_C": float(np.log10(train.frame["C"].max() / train.frame["C"].min())),
               "n_train": train.n_runs, "n_sizes": _sizes(train.frame["N"]),
               "tpp_span": float(tpp.max() - tpp.min())})
    return ds


def _or_nan(func, fit) -> float:
    try:
        return float(func(fit))
    except (AttributeError, KeyError):  # a point fit has no posterior to read E's median from
        return float("nan")


def _file_name(split: Split, method: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{method}__{split.name}")
    return safe + ".nc"


def collect(splits, folder, *, method="bayes fixed form", model=None, random_seed=0, progress=None) -> list:
    """:func:`holdout_draws` of every split, each written to `folder` as it finishes; done splits are read back.

    Returns
    -------
    list of xarray.Dataset
        One per split that fitted (a failing fit is reported to `progress` and
        skipped; its split is tried again on the next call).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for split in splits:
        path = folder / _file_name(split, method)
        if path.is_file():
            out.append(xr.load_dataset(path))
            continue
        try:
            ds = holdout_draws(split, model, random_seed=random_seed)
            if ds is None:  # the method does not apply to this split's law
                continue
        except Exception as err:  # a failing fit is a result of the suite, not its end
            if progress:
                progress(f"{split.name}: failed: {type(err).__name__}: {err}")
            continue
        ds.attrs["method"] = method
        atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"), "held-out draws")
        out.append(ds)
        if progress:
            progress(f"{split.name}: {ds.sizes['run']} runs, {ds.sizes['level']} levels, "
                     f"converged={bool(ds.attrs['converged'])}, {ds.attrs['fit_seconds']:.1f}s")
    if not out and splits:
        raise SpecError("no split could be fitted")
    return out


def calibrate_form(ladders, form=None, *, folder=None, penalty=RECALIBRATION_PENALTY, random_seed=0,
                   progress=None) -> FormUncertainty:
    """The form uncertainty rescaled to your family of ladders: its earlier ladders say how far the law misses.

    The default :class:`~bayescale.core.form.FormUncertainty` is learned on ten public sources and is right on
    average over families, not for yours: beyond the fitted runs the law misses by 0.4 to 3 times the
    default's scale depending on the family (architecture, data, schedule), and nothing in one ladder's own
    runs tells which. Ladders you trained before with the same recipe do. Each is cut at half and three
    quarters of its decades of compute, its smaller runs fitted with the form known (one NUTS fit per cut,
    about 5-30 s each), and the scale of the loss discrepancy refitted to its larger runs
    (:func:`bayescale.core.discrepancy.recalibrate`). Use the result for the family's next ladder.

    Left out one ladder at a time on the six corpus sources with several ladders, this lowered the
    left-out ladder's weighted interval score by 10% (2.03 to 1.83), with its 90% band holding 0.88
    instead of 0.81 and its 50% band 0.50 instead of 0.51, 12.7% wide instead of 15.1%; per source the
    90% band held 0.79-1.00 instead of 0.43-1.00. With one earlier ladder the factor is uncertain: it
    helped one such source and hurt the other.

    Parameters
    ----------
    ladders : DataFrame
        Earlier runs of the family: a ``ladder`` column naming each ladder, and ``N``, ``D`` (or ``C``),
        ``loss``; ``U`` for repeated data, ``isoflop_level`` where runs share a compute budget.
    form : FormUncertainty, optional
        The model to rescale; default ``FormUncertainty()``.
    folder : str or Path, optional
        Where the fits of the cuts are kept (a later call reuses them); default a temporary folder.
    penalty : float, default RECALIBRATION_PENALTY
    random_seed : int, default 0
    progress : callable, optional
        Called with a line per fitted cut.

    Returns
    -------
    FormUncertainty
        ``form`` with its ``loss_scale`` refitted; pass it as ``ScalingModel(form_uncertainty=...)``.

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.runs.corpus import bundled_ladders
    >>> ladders = bundled_ladders().query("source == 'porian2024'")
    >>> form = bs.calibrate_form(ladders[ladders.ladder.str.contains("owt2/base/short")])  # doctest: +SKIP
    >>> model = bs.ScalingModel(form_uncertainty=form)  # doctest: +SKIP
    """
    import tempfile

    form = FormUncertainty() if form is None else form
    if not isinstance(form, FormUncertainty):
        raise SpecError(f"form must be a FormUncertainty, got {type(form).__name__}")
    if not isinstance(ladders, pd.DataFrame):
        raise SpecError(f"ladders must be a DataFrame with a 'ladder' column, got {type(ladders).__name__}")
    if "ladder" not in ladders.columns:
        raise SpecError(f"ladders has no 'ladder' column naming each run's ladder; columns present: "
                        f"{', '.join(map(repr, ladders.columns))}")
    frame = load_runs(ladders, require=("N", "D")).frame
    frame["ladder"] = frame["ladder"].map(str)
    frame["C"] = frame["C"] if "C" in frame else FLOPS_PER_PARAM_TOKEN * frame["N"] * frame["D"]
    frame["source"] = frame["source"].map(str) if "source" in frame else "yours"
    frame["evidence"] = frame["evidence"].map(str) if "evidence" in frame else frame["ladder"]
    if "isoflop_level" not in frame:
        frame["isoflop_level"] = np.nan
    splits = ladder_splits(frame, extra_cuts={})
    if not splits:
        sizes = frame.groupby("ladder")["N"].agg(["size", "nunique"])
        raise SpecError(f"no ladder can be cut: each needs at least {MIN_TRAIN_RUNS} runs at {MIN_TRAIN_SIZES} sizes "
                        f"below {max(CUT_FRACTIONS):.0%} of its decades of compute and a run above; runs and sizes "
                        "per ladder: "
                        + ", ".join(f"{k!r} {r['size']}/{r['nunique']}" for k, r in sizes.iterrows()))
    cut = list(dict.fromkeys(s.ladder for s in splits))
    skipped = [name for name in dict.fromkeys(frame["ladder"]) if name not in cut]
    if len(cut) == 1 or skipped:
        said = []
        if skipped:
            said.append(f"ladders {skipped} have too few runs below {max(CUT_FRACTIONS):.0%} of their decades of "
                        f"compute to be cut (each needs {MIN_TRAIN_RUNS} runs at {MIN_TRAIN_SIZES} sizes) and say nothing")
        if len(cut) == 1:
            said.append(f"the factor rests on one ladder ({cut[0]!r}) alone: left out one ladder at a time, a factor "
                        "learned from a single earlier ladder helped one corpus source and hurt another")
        warn_user("calibrate_form: " + "; ".join(said))
    with tempfile.TemporaryDirectory(prefix="bayescale-calibrate-") as tmp:
        sets = collect(splits, folder if folder is not None else tmp, random_seed=random_seed, progress=progress)
        return recalibrate(records(sets), form, penalty=penalty, random_seed=random_seed)
