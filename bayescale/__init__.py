"""bayescale: Bayesian, uncertainty-aware fitting of neural scaling laws.

Typical use::

    import bayescale as bs
    runs = bs.load_runs("runs.csv", columns={"Model Size": "N", "Training FLOP": "C"})
    fit = bs.ScalingModel("chinchilla").fit(runs, random_seed=1)
    fit.summary()
    fit.predict({"N": [70e9], "D": [1.4e12]})
    fit.save("fit.nc"); bs.load("fit.nc")
"""

from .base.version import __version__
from .base import moved as _moved

from .runs import datasets
from .core import laws, priors
from .runs.data import RunData, load_runs
from .base.errors import (BayescaleError, ConvergenceWarning, DataError, DegenerateResultWarning,
                          ExtrapolationWarning, FileFormatError, FileWriteError, HeavyTailWarning, ModelCheckWarning,
                          NonFiniteWarning, PriorDataConflictWarning, SpecError)
from .base.errors import CheckpointWarning, ImportanceWeightWarning, OffFrontierWarning
from .base.errors import DataAssumptionWarning, UnverifiedFileWarning
from .fitting.fit import ScalingFit
from .many.io import load
from .core.laws import Law, available_laws, get_law, law
from .fitting.model import ScalingModel
from .fitting.point import Approach3, IsoFLOP, LeastSquares, PointFit, PointModel
from .fitting.envelope_fit import Approach1
from .across.compare import compare
from .across.averaging import ModelAverage, average
from .across.backtest import backtest
from .across.calibration import calibrate
from .across.holdout import calibrate_form
from .many.batch import BatchWarning, FitCollection, fit_many
from .across.sbc import SBCResult, sbc
from .core import allocation
from .analysis import plots, risk
from .base import units
from .core.allocation import optimal_allocation
from .analysis.rendering import to_html, to_latex, to_markdown
from .analysis import checks, conflicts, hierarchy, selection
from .runs import envelope
from .core import extrapolation, form, formula
from .front import report
from .across import trends
from .core.form import FormUncertainty
from .across.allocation_check import isoflop_check
from .analysis.checks import posterior_predictive, prior_predictive
from .core.formulalaw import formula_law
from .analysis.selection import compare_loo
from .analysis.contrasts import contrast, contrast_params
from .analysis.plots import plot_contrast
from .core import specs
from .core.specs import available_specs
from .fitting.published import PublishedLaw, available_published, published, published_table
from .fitting.downstream import DownstreamFit, DownstreamModel
from .analysis.taskplan import task_budget_for, task_risk
from .analysis import nextrun
from .core import simulate

__all__ = [
    "__version__",
    "ScalingModel",
    "FormUncertainty",
    "ScalingFit",
    "PointModel",
    "Approach3",
    "LeastSquares",
    "PointFit",
    "IsoFLOP",
    "Approach1",
    "envelope",
    "trends",
    "nextrun",
    "simulate",
    "compare",
    "average",
    "ModelAverage",
    "backtest",
    "calibrate",
    "calibrate_form",
    "fit_many",
    "FitCollection",
    "BatchWarning",
    "sbc",
    "SBCResult",
    "RunData",
    "load_runs",
    "load",
    "Law",
    "law",
    "get_law",
    "available_laws",
    "datasets",
    "laws",
    "priors",
    "allocation",
    "risk",
    "plots",
    "units",
    "specs",
    "optimal_allocation",
    "to_markdown",
    "to_html",
    "to_latex",
    "checks",
    "formula",
    "hierarchy",
    "selection",
    "prior_predictive",
    "posterior_predictive",
    "isoflop_check",
    "formula_law",
    "compare_loo",
    "contrast",
    "contrast_params",
    "plot_contrast",
    "available_specs",
    "published",
    "published_table",
    "available_published",
    "PublishedLaw",
    "DownstreamModel",
    "DownstreamFit",
    "task_risk",
    "task_budget_for",
    "BayescaleError",
    "DataError",
    "SpecError",
    "FileFormatError",
    "FileWriteError",
    "ConvergenceWarning",
    "DataAssumptionWarning",
    "UnverifiedFileWarning",
    "ExtrapolationWarning",
    "NonFiniteWarning",
    "ModelCheckWarning",
    "PriorDataConflictWarning",
    "HeavyTailWarning",
    "DegenerateResultWarning",
    "CheckpointWarning",
    "ImportanceWeightWarning",
    "OffFrontierWarning",
    "conflicts",
    "extrapolation",
]

#: Modules of the flat layout that ``import bayescale`` binds: their old dotted names import without a warning.
_PUBLIC = frozenset(old for old, new in _moved.NEW_NAMES.items()
                    if getattr(globals().get(old.partition(".")[2]), "__name__", None) == new)
_moved.install(_PUBLIC)


def __getattr__(name):
    return _moved.old_attribute(name, _PUBLIC)
