"""Exceptions and warnings raised by bayescale."""

from __future__ import annotations

import os
import warnings

__all__ = [
    "BayescaleError",
    "DataError",
    "SpecError",
    "FileFormatError",
    "FileWriteError",
    "ConvergenceWarning",
    "BatchWarning",
    "ExtrapolationWarning",
    "NonFiniteWarning",
    "ModelCheckWarning",
    "PriorDataConflictWarning",
    "HeavyTailWarning",
    "ImportanceWeightWarning",
    "CheckpointWarning",
    "OffFrontierWarning",
    "DegenerateResultWarning",
    "UnverifiedFileWarning",
    "DataAssumptionWarning",
]


class BayescaleError(Exception):
    """Base class of every error bayescale raises on purpose."""


class DataError(BayescaleError, ValueError):
    """Run data is unusable.

    The message lists every problem found, each naming the row and column
    concerned, so a user can fix the whole file in one pass.

    Parameters
    ----------
    problems : list of str
        One human-readable line per problem.
    header : str, optional
        First line of the message.

    Examples
    --------
    >>> err = DataError(["row 3, column 'N': -1.0 is not a positive number"])
    >>> print(err)
    Run data has 1 problem:
      - row 3, column 'N': -1.0 is not a positive number
    >>> import copy  # copies rebuild it from its parts, as sending it to another process does
    >>> str(copy.copy(err)) == str(err)
    True
    """

    def __init__(self, problems, header: str | None = None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        n = len(self.problems)
        if header is None:
            header = f"Run data has {n} problem{'s' if n != 1 else ''}:"
        self.header = header
        super().__init__(header + "\n" + "\n".join(f"  - {p}" for p in self.problems))

    def __reduce__(self):
        # Rebuild from the parts, not the message, so the error survives pickling (process pools, Dask).
        return type(self), (self.problems, self.header)


class SpecError(BayescaleError, ValueError):
    """A model specification (law, priors, likelihood, formula or TOML file) is invalid."""


class FileFormatError(BayescaleError, OSError):
    """A saved fit cannot be read: truncated, foreign, or from a newer format version."""


class FileWriteError(BayescaleError, OSError):
    """A file cannot be written where asked: not a regular file there, a missing or unwritable folder."""


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy."""


class ExtrapolationWarning(UserWarning):
    """A table reaches far outside the fitted runs.

    Issued once per prediction, allocation or risk table when a row lies more
    than :data:`bayescale.core.extrapolation.WARN_DECADES` (one decade) of compute,
    parameters or tokens outside the range of the fitted runs, or when an
    allocation's tokens per parameter lie outside the runs' range. The
    ``beyond*`` and ``tokens_per_param_outside`` columns of the table say
    which rows.
    """


class ModelCheckWarning(UserWarning):
    """Base class of the model checks made when a fit is created (:mod:`bayescale.analysis.conflicts`).

    Filter this class to silence every check; each check has its own subclass.
    """


class PriorDataConflictWarning(ModelCheckWarning):
    """A parameter's posterior median lies outside its prior's central 99% interval.

    The data pull the parameter where the prior says it almost surely is not:
    either the prior is wrong for these runs or the law does not describe
    them. See :meth:`bayescale.ScalingFit.model_checks`.
    """


class HeavyTailWarning(ModelCheckWarning):
    """The Student-t likelihood's degrees of freedom nu have posterior median below 2.

    The run-to-run noise then has no finite variance: the new-run bands are
    quantiles and stay defined, but a few runs far from the curve set the
    noise. Every table of such a fit carries the verdict (``attrs["caveats"]``,
    its caption, the report), saved fits too.
    """


class DegenerateResultWarning(UserWarning):
    """A published table holds numbers that cannot be used as they stand.

    Issued once per table, naming the columns and rows concerned and why:
    values that are not finite (NaN or infinite, e.g. from parameter draws
    that overflow), a compute-optimal plan of less than one parameter or one
    token, or a point fit whose optimum failed its checks (see
    ``PointFit.reason``).
    """


class NonFiniteWarning(DegenerateResultWarning):
    """A table holds NaN where the draws it rests on are not all finite numbers.

    A probability such as ``p_target`` is computed only over a full set of
    finite draws: where some draws of a row are NaN or infinite (the law
    overflows or is undefined there), the row's probability is NaN and this
    warning names the rows and how many draws.
    """


class CheckpointWarning(UserWarning):
    """Rows of checkpoint data are left out of a fit: checkpoints mid-way through a cosine schedule.

    Their learning rate has not decayed, so their loss lies above the final-loss law at their tokens
    (see :attr:`bayescale.runs.data.RunData.law_rows`); the warning says how many rows.
    """


class BatchWarning(UserWarning):
    """Some keys of a :func:`fit_many` batch failed or did not converge."""


class ImportanceWeightWarning(UserWarning):
    """Reweighted posterior draws rest on too few effective draws to be trusted.

    :func:`bayescale.analysis.nextrun.recommend_runs` reweights a fit's draws by the likelihood of a simulated new run; where
    the effective sample size of the weights is small or their Pareto k large, the run would teach more than the
    existing draws can show, and the table marks the row ``reliable = False``.
    """


class OffFrontierWarning(UserWarning):
    """A fit meant to describe the compute-efficient frontier was fitted on runs that are mostly off it.

    ``L(C_min)`` is a trend of the frontier's loss; a ``power_c`` law fitted
    on all runs (most of which are not compute-efficient) describes their
    average, which lies above the frontier, and moves the crossover.
    """


class UnverifiedFileWarning(UserWarning):
    """A saved fit carries no digest of its content (written before bayescale stored one), so edits made after
    saving cannot be detected; issued once per file and process. Save the fit again to add one."""


class DataAssumptionWarning(UserWarning):
    """Run data contradict what every scaling law assumes, before any fitting.

    Issued by :func:`bayescale.core.assumptions.check_assumptions` (called by :meth:`ScalingModel.fit`) for rows that
    repeat another row exactly (the same inputs and loss: a table concatenated with itself counts every run
    twice and narrows the posterior), and for loss that rises with scale beyond noise (a larger model at the
    same tokens, more tokens at the same model size, or a later checkpoint of one run, with a clearly higher
    loss). The message names the rows.
    """


#: Folders of this package: a warning is attributed to the first frame outside them (the user's line).
PACKAGE_DIRS = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
                      os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep})


def _in_package(frame) -> bool:
    return frame.f_code.co_filename.startswith(PACKAGE_DIRS)


def caller_frame():
    """The frame that called into bayescale: the first frame outside the package past its outermost frame.

    Frames of other libraries between two frames of bayescale (decorators, context managers) are skipped;
    None when no frame of the stack lies outside the package.
    """
    import sys

    frame, found, inside = sys._getframe(1), None, False
    while frame is not None:
        if _in_package(frame):
            inside, found = True, None
        elif inside and found is None:
            found = frame
        frame = frame.f_back
    return found


def warn_user(message, category=None, stacklevel=2) -> None:
    """Issue a warning attributed to the user's line: the caller of bayescale's outermost frame.

    Parameters
    ----------
    message : str or Warning
    category : type of Warning, optional
        Default the class of `message` when it is a Warning, else UserWarning.
    stacklevel : int, default 2
        Accepted for the signature of :func:`warnings.warn`; the frames of
        bayescale (and of libraries it calls through) are skipped whatever the
        depth of the call.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("a short warning", UserWarning)
    >>> caught[0].filename.startswith(PACKAGE_DIRS)
    False
    """
    if isinstance(message, Warning):
        category = message.__class__
    category = UserWarning if category is None else category
    frame = caller_frame()
    if frame is None:
        warnings.warn(message, category, stacklevel=2)
        return
    globs = frame.f_globals
    registry = globs.setdefault("__warningregistry__", {})
    # module_globals only lets the source line be read through the module's loader; a namespace without
    # one (a notebook cell, exec) makes warn_explicit raise, so it is passed only with a loader
    spec = globs.get("__spec__")
    loaded = getattr(spec, "loader", None) is not None if spec is not None else "__spec__" not in globs
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=globs.get("__name__"), registry=registry,
                           module_globals=globs if loaded else None)
