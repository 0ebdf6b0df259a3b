"""Leave-future-out calibration suite on the bundled real ladders.

A risk band is only as good as its out-of-sample coverage where it is used:
beyond the largest run of a ladder. This module fixes a catalogue of
leave-future-out splits of the bundled real data (:mod:`bayescale.runs.datasets`)
— fit the small runs, score the runs above a cut in compute, model size or
repeated epochs — and scores any set of methods on all of them with
:func:`bayescale.across.backtest.backtest`, so every model change is judged by the
same held-out real runs.

* :func:`calibration_splits` — the catalogue (``"full"``: 23 splits,
  ``"ci"``: 3 cheap representative ones);
* :func:`calibrate` — fit every method on every split and score it: coverage
  of the new-run band at each nominal probability, its width relative to the
  loss, interval score, CRPS of log loss and error of the median, per split,
  pooled per family and overall, and per held-out run with its extrapolation
  distance.

Evidence that is not independent. The Porian et al. 2024 configurations that
share a ``training`` label (same dataset, hyper-parameters, warm-up and
decay) are the same training runs counted under another N convention or loss
set; the Chinchilla splits at C < 1e20, 3e20 and 1e21 score nested sets of the
same runs, as do the two N cuts. Pooled scores weight each held-out run of a
Porian split by ``1 / k`` for ``k`` configurations sharing its training runs,
so each set of trainings counts once (``n_effective``); the split table keeps
every configuration.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..base.errors import SpecError
from ..base.validation import check_seed as _check_seed
from ..base import errors
from .backtest import score_method
from ..runs.data import load_runs
from ..runs.datasets import load_chinchilla, load_datablations, load_porian
from ..fitting.model import ScalingModel
from ..fitting.point import PointModel

__all__ = ["CalibrationSplit", "CalibrationResult", "calibration_splits", "calibrate", "SUBSETS"]

#: Names of the catalogue subsets.
SUBSETS = ("full", "ci")
#: Splits of the ``"ci"`` subset: one Chinchilla compute cut and two Porian ladders (Kaplan's
#: settings and the tuned constant-LR setting, the two ends of the paper's exponent range).
CI_SPLITS = ("chinchilla/C<1e21", "porian/main/rw/base/long/kaplan/kaplan/train",
             "porian/main/rw/tuned/short/const/standard/val")
#: Compute cut of every Porian ladder (FLOP level): fit below, score at and above.
PORIAN_CUT = 3e18
#: Repeated-data cut of the datablations epochs split (epochs = D / U): fit below, score at and above.
EPOCHS_CUT = 5.0
#: Model-size cut of the datablations size split: fit below, score at and above.
DATABLATIONS_N_CUT = 4e9


@dataclass(frozen=True, eq=False)
class CalibrationSplit:
    """One leave-future-out split: fit ``law`` on ``train``, score its predictions of ``test``.

    Attributes
    ----------
    name : str
        Unique label, e.g. ``"chinchilla/C<1e21"`` or ``"porian/<config>"``.
    family : str
        Dataset: ``"chinchilla"``, ``"datablations"`` or ``"porian"``.
    law : str
        Name of the law to fit (:func:`bayescale.available_laws`).
    train, test : RunData
        Training runs (all strictly below the cut) and held-out runs (at or above it).
    quantity : str
        What the cut is on: ``"C"``, ``"N"``, ``"D"`` or ``"epochs"`` (D / U).
    cut : float
        Training runs have ``quantity < cut`` and held-out runs ``quantity >= cut``.
    description : str
        The cut in words.
    evidence : str
        Label of the independent evidence behind the split: splits that share it score the same
        training runs (Porian configurations of one ``training`` label).

    Examples
    --------
    >>> split = calibration_splits("ci")[0]
    >>> split.name, split.law, split.train.n_runs, split.test.n_runs
    ('chinchilla/C<1e21', 'chinchilla', 217, 23)
    """

    name: str
    family: str
    law: str
    train: object = field(repr=False)
    test: object = field(repr=False)
    quantity: str
    cut: float
    description: str
    evidence: str

    def values(self, runs) -> np.ndarray:
        """The cut quantity of `runs` (``D / U`` for ``"epochs"``)."""
        frame = runs.frame
        if self.quantity == "epochs":
            return frame["D"].to_numpy(dtype=float) / frame["U"].to_numpy(dtype=float)
        return frame[self.quantity].to_numpy(dtype=float)

    def __repr__(self) -> str:
        return (f"CalibrationSplit({self.name!r}, law={self.law!r}, train={self.train.n_runs}, "
                f"test={self.test.n_runs}: {self.description})")


def _make(name, family, law, frame, quantity, cut, description, evidence=None, require=("N", "D")):
    values = (frame["D"] / frame["U"] if quantity == "epochs" else frame[quantity]).to_numpy(dtype=float)
    held = values >= cut
    train = load_runs(frame[~held], require=require)
    test = load_runs(frame[held], require=require)
    return CalibrationSplit(name, family, law, train, test, quantity, float(cut), description,
                            evidence or name)


def _model_size_starts(n) -> np.ndarray:
    """Smallest N of each model size (digitised N of one size differ by < 1%)."""
    n = np.sort(np.unique(np.asarray(n, dtype=float)))
    return n[np.r_[True, n[1:] / n[:-1] > 1.01]]


def _catalogue() -> list:
    splits = []
    chin = load_chinchilla(drop_outliers=True).drop(columns="dropped_in_replication")
    for cut in (1e20, 3e20, 1e21):
        splits.append(_make(f"chinchilla/C<{cut:.0e}".replace("e+", "e"), "chinchilla", "chinchilla", chin, "C",
                            cut, f"Chinchilla (240 kept runs): fit C < {cut:.0e} FLOP, score C >= {cut:.0e}"))
    for cut in (2.5e8, 1e9):
        # held out: N > cut, i.e. N >= the smallest size above it
        above = chin["N"][chin["N"] > cut].min()
        splits.append(_make(f"chinchilla/N<={cut:.2g}".replace("e+0", "e"), "chinchilla", "chinchilla", chin, "N", above,
                            f"Chinchilla small ladder: fit N <= {cut:.2g}, score the larger models (N >= {above:.3g})"))
    sizes = _model_size_starts(chin["N"])
    splits.append(_make("chinchilla/5 smallest sizes", "chinchilla", "chinchilla", chin, "N", sizes[5],
                        f"Chinchilla smallest ladder: fit the 5 smallest model sizes (N < {sizes[5]:.3g}), "
                        f"score the other {len(sizes) - 5}"))
    blat = load_datablations()
    blat = blat[~blat["misparsed"]].drop(columns="misparsed")
    req = ("N", "D", "U")
    splits.append(_make("datablations/N<4e9", "datablations", "data_constrained", blat, "N", DATABLATIONS_N_CUT,
                        f"Datablations (295 runs): fit N < {DATABLATIONS_N_CUT:.0e}, score the largest models "
                        "(4.2e9 and 8.7e9)", require=req))
    splits.append(_make("datablations/epochs<5", "datablations", "data_constrained", blat, "epochs", EPOCHS_CUT,
                        f"Datablations: fit runs with fewer than {EPOCHS_CUT:g} epochs (D / U), score the runs "
                        "with more repeats", require=req))
    por = load_porian()
    for config, frame in por.groupby("config", sort=False):
        frame = frame[["N", "D", "C", "loss", "training"]]
        splits.append(_make(f"porian/{config}", "porian", "chinchilla", frame, "C", PORIAN_CUT,
                            f"Porian et al. 2024 ladder {config}: fit C < {PORIAN_CUT:.0e} FLOP, score the "
                            f"levels >= {PORIAN_CUT:.0e}", evidence=f"porian/{frame['training'].iloc[0]}"))
    return splits


def calibration_splits(subset="full", names=None) -> list:
    """The leave-future-out splits of the bundled real data.

    Parameters
    ----------
    subset : {"full", "ci"}, default "full"
        ``full``: 23 splits — Chinchilla (240 kept runs) fitted below C = 1e20,
        3e20 and 1e21 FLOP, on models with N <= 2.5e8 and N <= 1e9, and on the
        5 smallest model sizes; datablations (data-constrained law, 295 runs)
        cut at N = 4e9 and at 5 epochs; each of the 15 Porian et al. 2024
        ladders fitted below 3e18 FLOP. ``ci``: 3 cheap representative splits
        (:data:`CI_SPLITS`).
    names : str or sequence of str, optional
        Keep only splits whose name contains one of these strings.

    Returns
    -------
    list of CalibrationSplit

    Examples
    --------
    >>> splits = calibration_splits()
    >>> len(splits), sorted({s.family for s in splits})
    (23, ['chinchilla', 'datablations', 'porian'])
    >>> [s.name for s in calibration_splits("ci")]  # doctest: +NORMALIZE_WHITESPACE
    ['chinchilla/C<1e21', 'porian/main/rw/base/long/kaplan/kaplan/train',
     'porian/main/rw/tuned/short/const/standard/val']
    """
    if subset not in SUBSETS:
        raise SpecError(f"subset must be one of {SUBSETS}, got {subset!r}")
    splits = _catalogue()
    if subset == "ci":
        splits = [s for s in splits if s.name in CI_SPLITS]
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        splits = [s for s in splits if any(n in s.name for n in names)]
        if not splits:
            raise SpecError(f"no calibration split matches {names}")
    return splits


def _resolve_splits(splits) -> list:
    if splits is None:
        return calibration_splits("full")
    if isinstance(splits, str):
        return calibration_splits(splits)
    if isinstance(splits, CalibrationSplit):
        return [splits]
    splits = list(splits)
    if not splits or not all(isinstance(s, CalibrationSplit) for s in splits):
        raise SpecError("splits must be a subset name ('full', 'ci'), a CalibrationSplit or a list of them")
    return splits


def _method_for(name, method, law):
    """The model to fit on a split with this law, or None to skip the split for this method."""
    if isinstance(method, (ScalingModel, PointModel)):
        return method if method.law.name == law else None
    if callable(method):
        return method(law)
    raise SpecError(f"method {name!r} must be a function law_name -> ScalingModel or PointModel (None to skip "
                    f"a law), or a model (used on the splits of its own law); got {type(method).__name__}")


def _quiet_categories() -> list:
    """Warnings a suite of fits would repeat: its tables keep the verdicts (``converged``, scores)."""
    names = ("ConvergenceWarning", "ExtrapolationWarning", "HeavyTailWarning", "PriorDataConflictWarning",
             "ModelCheckWarning", "DegenerateResultWarning")
    return [getattr(errors, n) for n in names if hasattr(errors, n)] + [RuntimeWarning]


def _tag(p) -> str:
    return f"{100 * p:g}".replace(".", "_")


def calibrate(methods, splits=None, probs=(0.5, 0.8, 0.9), random_seed=0, progress=None) -> "CalibrationResult":
    """Fit every method on every split's training runs and score its bands on the held-out runs.

    Parameters
    ----------
    methods : dict of name -> callable
        ``law_name -> model``: returns a :class:`~bayescale.ScalingModel` or a
        point model (:class:`~bayescale.Approach3`,
        :class:`~bayescale.LeastSquares`, ...) for the split's law, or
        ``None`` to skip splits of that law (e.g. Approach 3 exists only for
        the Chinchilla law). A model instance is used as is on the splits of
        its own law and skips the others.
    splits : {"full", "ci"}, CalibrationSplit or list of them, optional
        Default: the full catalogue (:func:`calibration_splits`).
    probs : sequence of float, default (0.5, 0.8, 0.9)
        Nominal probabilities of the new-run bands scored.
    random_seed : int, default 0
        Seed of every Bayesian fit.
    progress : callable, optional
        Called with one line of text after each fit (e.g. ``print``).

    Returns
    -------
    CalibrationResult

    Notes
    -----
    Each split and method is scored by the scoring of
    :func:`bayescale.across.backtest.backtest` (new-run band coverage and width,
    interval score, CRPS of log loss, error of the median, log predictive
    density). A fit that raises is recorded with its error (``error``
    column) and scores NaN. Convergence and model-check warnings are not
    raised (the verdict is the ``converged`` column, the consequences are the
    scores), nor are extrapolation warnings: predicting beyond the fitted
    range is what the suite measures.

    Examples
    --------
    >>> import bayescale as bs
    >>> result = calibrate({"least squares": bs.LeastSquares, "bayes": bs.ScalingModel},
    ...                    calibration_splits("ci"))  # doctest: +SKIP
    >>> result.pooled[["coverage_50", "coverage_80", "coverage_90"]]  # doctest: +SKIP
    >>> fig = result.plot()  # doctest: +SKIP
    """
    random_seed = _check_seed(random_seed)

    if not isinstance(methods, dict) or not methods:
        raise SpecError("methods must be a non-empty dict of name -> (law_name -> model)")
    probs = tuple(float(p) for p in np.atleast_1d(np.asarray(probs, dtype=float)))
    if not all(0 < p < 1 for p in probs):
        raise ValueError(f"every prob must be strictly between 0 and 1, got {probs!r}")
    splits = _resolve_splits(splits)
    rows, runs = [], []
    for split in splits:
        for name, method in methods.items():
            model = _method_for(name, method, split.law)
            if model is None:
                continue
            base = {"split": split.name, "family": split.family, "law": split.law, "method": name}
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    for category in _quiet_categories():
                        warnings.simplefilter("ignore", category)
                    row, run = score_method(name, model, split.train, split.test, probs, random_seed)
            except Exception as err:  # a failing fit is a result, not the end of the suite
                rows.append({**base, "n_train": split.train.n_runs, "n_test": split.test.n_runs,
                             "converged": False, "seconds": time.perf_counter() - t0,
                             "error": f"{type(err).__name__}: {err}"})
                if progress:
                    progress(f"{split.name:58s} {name:22s} failed: {type(err).__name__}: {err}")
                continue
            row = {**base, **{k: v for k, v in row.items() if k != "method"}}
            row["seconds"] = row.pop("fit_seconds")
            row["beyond_mean"] = float(run["beyond"].mean())
            row["error"] = ""
            rows.append(row)
            run = run.drop(columns="method").rename(columns={"observed_loss": "observed"})
            run.insert(0, "method", name)
            run.insert(0, "evidence", split.evidence)
            run.insert(0, "family", split.family)
            run.insert(0, "split", split.name)
            runs.append(run.reset_index(drop=True))
            if progress:
                progress(f"{split.name:58s} {name:22s} " + " ".join(
                    f"cov{_tag(p)}={row[f'coverage_{_tag(p)}']:.2f}" for p in probs)
                    + f" mape={row['mape']:.2f} conv={row['converged']} {row['seconds']:.1f}s")
    table = pd.DataFrame(rows)
    per_run = pd.concat(runs, ignore_index=True) if runs else pd.DataFrame()
    if len(per_run):
        # Splits sharing their evidence (the same training runs) count once per method.
        shared = per_run.groupby(["method", "evidence"])["split"].transform("nunique")
        per_run.insert(4, "weight", 1.0 / shared)
    return CalibrationResult(table=_order(table, probs), runs=per_run, probs=probs)


def _order(table, probs) -> pd.DataFrame:
    if table.empty:
        return table
    first = ["split", "family", "law", "method", "n_train", "n_test"]
    scores = ([f"coverage_{_tag(p)}" for p in probs] + [f"rel_width_{_tag(p)}" for p in probs]
              + [f"interval_score_{_tag(p)}" for p in probs]
              + ["crps", "mape", "max_ape", "lpd", "beyond_mean", "converged", "seconds", "error"])
    rest = [c for c in table.columns if c not in first + scores]
    return table[[c for c in first + scores + rest if c in table.columns]]


def _pool(runs, probs) -> pd.DataFrame:
    """Weighted scores per method and family, and per method over all families."""
    rows = []
    for (method, family), g in list(runs.groupby(["method", "family"], sort=False)) + [
            ((m, "all"), g) for m, g in runs.groupby("method", sort=False)]:
        w = g["weight"].to_numpy()
        row = {"method": method, "family": family, "n_splits": g["split"].nunique(), "n_runs": len(g),
               "n_effective": float(w.sum())}
        for p in probs:
            t = _tag(p)
            row[f"coverage_{t}"] = float(np.average(g[f"covered_{t}"], weights=w))
        for p in probs:
            t = _tag(p)
            width = (g[f"new_run_upper_{t}"] - g[f"new_run_lower_{t}"]) / g["observed"]
            row[f"rel_width_{t}"] = float(np.average(width, weights=w))
        for p in probs:
            row[f"interval_score_{_tag(p)}"] = float(np.average(g[f"interval_score_{_tag(p)}"], weights=w))
        row["crps"] = float(np.average(g["crps"], weights=w))
        row["mape"] = float(np.average(g["ape"], weights=w))
        rows.append(row)
    order = {"chinchilla": 0, "datablations": 1, "porian": 2, "all": 3}
    out = pd.DataFrame(rows)
    out["_k"] = out["family"].map(order).fillna(2.5)
    return out.sort_values(["method", "_k"], kind="stable").drop(columns="_k").reset_index(drop=True)


#: Bins of extrapolation distance (decades beyond the fitted range) of :meth:`CalibrationResult.by_distance`.
DISTANCE_BINS = (0.0, 0.25, 0.5, 1.0, 1.5, np.inf)


@dataclass(eq=False)
class CalibrationResult:
    """Scores of :func:`calibrate`.

    Attributes
    ----------
    table : DataFrame
        One row per split and method: ``split``, ``family``, ``law``,
        ``method``, ``n_train``, ``n_test``, ``coverage_<p>``,
        ``rel_width_<p>``, ``interval_score_<p>`` per probability, ``crps``
        (of log loss), ``mape``, ``max_ape``, ``lpd``, ``beyond_mean`` (mean
        decades of the held-out runs beyond the fitted range), ``converged``,
        ``seconds`` and ``error`` (empty unless the fit raised).
    runs : DataFrame
        One row per held-out run, split and method: ``split``, ``family``,
        ``evidence``, ``method``, ``weight`` (``1 / k`` for ``k`` splits
        sharing the run's training runs), the inputs, ``observed``,
        ``loss_median``, ``ape``, band ends ``new_run_lower_<p>`` /
        ``new_run_upper_<p>``, ``covered_<p>``, ``interval_score_<p>``,
        ``lpd``, ``crps``, ``log_sd`` and ``beyond_C``, ``beyond_N``,
        ``beyond_D``, ``beyond``.
    probs : tuple of float
    """

    table: pd.DataFrame
    runs: pd.DataFrame
    probs: tuple

    @property
    def pooled(self) -> pd.DataFrame:
        """Scores per method pooled over held-out runs, per family and over all (``family == "all"``).

        Weighted means over runs (weights of :attr:`runs`), so the Porian configurations that are
        the same training runs under another N convention or loss set count once: ``n_runs`` is
        the number of scored rows, ``n_effective`` the sum of their weights. Chinchilla splits
        score nested sets of the same runs and are pooled as they are.
        """
        if self.runs.empty:
            return pd.DataFrame()
        return _pool(self.runs, self.probs)

    def by_distance(self, bins=DISTANCE_BINS) -> pd.DataFrame:
        """Weighted coverage per method and bin of extrapolation distance (``beyond``, decades)."""
        runs = self.runs
        cut = pd.cut(runs["beyond"], list(bins), right=False, include_lowest=True)
        rows = []
        for (method, interval), g in runs.groupby(["method", cut], sort=False, observed=True):
            w = g["weight"].to_numpy()
            row = {"method": method, "beyond_from": interval.left, "beyond_to": interval.right, "n_runs": len(g),
                   "beyond_mean": float(np.average(g["beyond"], weights=w))}
            for p in self.probs:
                row[f"coverage_{_tag(p)}"] = float(np.average(g[f"covered_{_tag(p)}"], weights=w))
            rows.append(row)
        return pd.DataFrame(rows).sort_values(["method", "beyond_from"], kind="stable").reset_index(drop=True)

    def plot(self, size=(11.0, 4.5)):
        """Nominal against observed coverage per method, and coverage against extrapolation distance.

        Returns
        -------
        matplotlib.figure.Figure
            Left: pooled coverage of each method at each nominal probability
            (filled: all families; open markers: per family), with the
            diagonal of perfect calibration. Right: coverage of the widest
            band against decades beyond the fitted range.
        """
        from ..base.figure import new_figure

        fig = new_figure(size)
        ax, ax2 = fig.subplots(1, 2)
        pooled = self.pooled
        probs = np.asarray(self.probs)
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="nominal")
        markers = {"chinchilla": "o", "datablations": "s", "porian": "^"}
        dist = self.by_distance()
        top = max(self.probs)
        for k, (method, g) in enumerate(pooled.groupby("method", sort=False)):
            color = f"C{k}"
            cov = lambda row: [row[f"coverage_{_tag(p)}"] for p in probs]  # noqa: E731
            for _, row in g.iterrows():
                if row["family"] == "all":
                    ax.plot(probs, cov(row), "-o", color=color, label=method)
                else:
                    ax.plot(probs, cov(row), ls="none", marker=markers.get(row["family"], "x"), mfc="none",
                            color=color, alpha=0.7)
            d = dist[dist["method"] == method]
            ax2.plot(d["beyond_mean"], d[f"coverage_{_tag(top)}"], "-o", color=color, label=method)
        for family, m in markers.items():
            if (pooled["family"] == family).any():
                ax.plot([], [], ls="none", marker=m, mfc="none", color="0.3", label=family)
        ax.set(xlabel="nominal probability of the new-run band", ylabel="share of held-out runs inside",
               xlim=(0, 1), ylim=(0, 1.02), title="Coverage on held-out real runs (pooled)")
        ax.legend(fontsize="small")
        ax2.axhline(top, color="0.6", lw=1, ls="--")
        ax2.set(xlabel="decades beyond the fitted range (C, N or D)", ylabel=f"coverage of the {top:.0%} band",
                ylim=(0, 1.02), title="Coverage against extrapolation distance")
        ax2.legend(fontsize="small")
        return fig

    def __repr__(self) -> str:
        methods = list(dict.fromkeys(self.table["method"])) if len(self.table) else []
        return (f"CalibrationResult({self.table['split'].nunique() if len(self.table) else 0} splits, "
                f"methods {methods}, {len(self.runs)} scored held-out runs, probs {self.probs})")
