"""bayescale: Bayesian, uncertainty-aware fitting of neural scaling laws.

Typical use::

    import bayescale as bs
    runs = bs.load_runs("runs.csv", columns={"Model Size": "N", "Training FLOP": "C"})
    fit = bs.ScalingModel("chinchilla").fit(runs, random_seed=1)
    fit.summary()
    fit.predict({"N": [70e9], "D": [1.4e12]})
    fit.save("fit.nc"); bs.load("fit.nc")
"""

from .version import __version__

from . import datasets, laws, priors
from .data import RunData, load_runs
from .errors import (BayescaleError, ConvergenceWarning, DataError, DegenerateResultWarning, ExtrapolationWarning,
                     FileFormatError, FileWriteError, HeavyTailWarning, ModelCheckWarning, NonFiniteWarning,
                     PriorDataConflictWarning, SpecError)
from .errors import CheckpointWarning, ImportanceWeightWarning, OffFrontierWarning
from .errors import DataAssumptionWarning, UnverifiedFileWarning
from .fit import ScalingFit
from .io import load
from .laws import Law, available_laws, get_law, law
from .model import ScalingModel
from .point import Approach3, IsoFLOP, LeastSquares, PointFit, PointModel
from .envelope_fit import Approach1
from .compare import compare
from .averaging import ModelAverage, average
from .backtest import backtest
from .calibration import calibrate
from .holdout import calibrate_form
from .batch import BatchWarning, FitCollection, fit_many
from .sbc import SBCResult, sbc
from . import allocation, plots, risk, units
from .allocation import optimal_allocation
from .rendering import to_html, to_latex, to_markdown
from . import checks, conflicts, envelope, extrapolation, form, formula, hierarchy, report, selection, trends
from .form import FormUncertainty
from .allocation_check import isoflop_check
from .checks import posterior_predictive, prior_predictive
from .formulalaw import formula_law
from .selection import compare_loo
from .contrasts import contrast, contrast_params
from .plots import plot_contrast
from .specs import available_specs
from .published import PublishedLaw, available_published, published, published_table
from .downstream import DownstreamFit, DownstreamModel
from .taskplan import task_budget_for, task_risk

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
