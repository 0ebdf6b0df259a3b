"""Load and validate training-run data.

Every check runs before anything is raised, so a single :class:`~bayescale.base.errors.DataError`
lists all the problems in the data, each naming its row (the frame's index label), column and
value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..base.errors import DataError, SpecError
from .readers import read_table
from .columns import CANONICAL, END_RTOL, NUMERIC, check_require, checked_columns, raise_problems

__all__ = ["RunData", "load_runs"]


#: Error models of the rows of one training run (``within_run`` of ScalingModel and DownstreamModel).
WITHIN_RUN = ("auto", "offset", "none")
#: The posterior name of the per-run offset's standard deviation (``within_run="offset"``).
RUN_SD = "run_sd"


def check_within_run(within_run) -> str:
    """`within_run` itself if it is one of :data:`WITHIN_RUN`; else SpecError naming the valid settings."""
    if not isinstance(within_run, str) or within_run not in WITHIN_RUN:
        raise SpecError(f"within_run must be one of {', '.join(map(repr, WITHIN_RUN))}, got {within_run!r}")
    return within_run


class RunData:
    """Validated training runs, as returned by :func:`load_runs`.

    Parameters
    ----------
    source : pandas.DataFrame, path or RunData
        Equivalent to ``load_runs(source, require=())``: only ``loss`` is required.

    Attributes
    ----------
    frame : pandas.DataFrame
        The validated data: the original rows, order and index; canonical numeric columns
        (``N``, ``D``, ``C``, ``U``, ``loss``, ``D_total``) as float64, ``group`` and ``run`` as
        categoricals of strings (categories in order of first appearance), ``schedule`` in lower
        case, other columns untouched. Each access returns
        a copy-on-write view, so changing it leaves the RunData unchanged.
    derived : tuple of str
        Canonical columns computed rather than read (``D = C / (6 N)`` or ``C = 6 N D``).

    Examples
    --------
    >>> import pandas as pd
    >>> runs = load_runs(pd.DataFrame({"N": [1e8, 4e8, 1e9], "D": [2e9, 8e9, 2e10],
    ...                                "loss": [3.1, 2.8, 2.6]}))
    >>> runs
    RunData(3 runs; columns N, D, loss, C (derived); N 1e+08–1e+09, D 2e+09–2e+10, loss 2.6–3.1, C 1.2e+18–1.2e+20)
    >>> len(runs), runs.has("C"), runs.groups
    (3, True, None)
    >>> runs.inputs(["N", "D"])["D"]
    array([2.e+09, 8.e+09, 2.e+10])
    >>> runs.group_index
    array([0, 0, 0])
    """

    __slots__ = ("_frame", "_derived")

    def __init__(self, source):
        other = load_runs(source, require=())
        self._frame, self._derived = other._frame, other._derived

    @classmethod
    def _wrap(cls, frame: pd.DataFrame, derived: tuple[str, ...]) -> RunData:
        self = object.__new__(cls)
        self._frame, self._derived = frame, derived
        return self

    @property
    def frame(self) -> pd.DataFrame:
        return self._frame.copy(deep=False)  # copy-on-write: edits do not reach self._frame

    @property
    def derived(self) -> tuple[str, ...]:
        return self._derived

    @property
    def n_runs(self) -> int:
        """Number of runs (rows)."""
        return len(self._frame)

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def groups(self) -> tuple[str, ...] | None:
        """Group labels in order of first appearance, or None without a ``group`` column."""
        if "group" not in self._frame.columns:
            return None
        return tuple(self._frame["group"].cat.categories)

    @property
    def group_index(self) -> np.ndarray:
        """Integer code of each run's group in :attr:`groups` (all zeros without groups)."""
        if "group" not in self._frame.columns:
            return np.zeros(len(self._frame), dtype=np.intp)
        return self._frame["group"].cat.codes.to_numpy().astype(np.intp)

    @property
    def run_ids(self) -> tuple[str, ...] | None:
        """Training-run identifiers in order of first appearance, or None without a ``run`` column."""
        if "run" not in self._frame.columns:
            return None
        return tuple(self._frame["run"].cat.categories)

    @property
    def run_index(self) -> np.ndarray:
        """Integer code of each row's run in :attr:`run_ids`; without a ``run`` column each row is its own run."""
        if "run" not in self._frame.columns:
            return np.arange(len(self._frame), dtype=np.intp)
        return self._frame["run"].cat.codes.to_numpy().astype(np.intp)

    @property
    def has_checkpoints(self) -> bool:
        """True when the rows carry run identifiers and some run has more than one row (checkpoints)."""
        return self.run_ids is not None and bool(np.any(np.bincount(self.run_index) > 1))

    @property
    def law_rows(self) -> np.ndarray:
        """Boolean mask of the rows that are points of the final-loss law L(N, D).

        False for a checkpoint mid-way through a cosine schedule (``schedule == "cosine"`` and ``D`` below
        ``D_total`` by more than :data:`END_RTOL`): its learning rate has not decayed, so its loss lies above
        that of a run trained to D (Hoffmann et al. 2022, appendix: cosine cycle length). Rows of ``constant``
        and ``wsd`` schedules (before their decay) are kept, taking the loss at D on the same curve as a run
        stopped there; rows without a schedule count as constant.
        """
        mask = np.ones(len(self._frame), dtype=bool)
        if "schedule" in self._frame.columns and "D_total" in self._frame.columns and "D" in self._frame.columns:
            cosine = (self._frame["schedule"] == "cosine").to_numpy()
            D, total = self._frame["D"].to_numpy(dtype=float), self._frame["D_total"].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                mask &= ~(cosine & (D < total * (1 - END_RTOL)))
        return mask

    def take(self, mask) -> RunData:
        """The rows where boolean `mask` is True, as RunData (index and columns kept, labels re-coded)."""
        frame = self._frame.loc[np.asarray(mask, dtype=bool)].copy()
        for col in ("group", "run"):
            if col in frame.columns:
                frame[col] = frame[col].cat.remove_unused_categories()
        return RunData._wrap(frame, self._derived)

    def has(self, name: str) -> bool:
        """Whether column ``name`` is present (read or derived)."""
        return name in self._frame.columns

    def inputs(self, names) -> dict[str, np.ndarray]:
        """Copies of the named numeric columns as float64 arrays, keyed by name."""
        names = [names] if isinstance(names, str) else list(names)
        missing = [n for n in names if n not in self._frame.columns]
        if missing:
            raise DataError([f"missing column {n!r}; the runs have {', '.join(map(str, self._frame.columns))}"
                             for n in missing])
        return {n: self._frame[n].to_numpy(dtype=np.float64, copy=True) for n in names}

    @property
    def loss(self) -> np.ndarray:
        """The loss of each run (a float64 copy)."""
        return self._frame["loss"].to_numpy(dtype=np.float64, copy=True)

    def to_frame(self) -> pd.DataFrame:
        """A copy of :attr:`frame`."""
        return self._frame.copy()

    def __repr__(self) -> str:
        cols = [c for c in self._frame.columns if c in CANONICAL]
        names = ", ".join(c + (" (derived)" if c in self.derived else "") for c in cols)
        ranges = ", ".join(f"{c} {self._frame[c].min():.2g}–{self._frame[c].max():.2g}"
                           for c in cols if c in NUMERIC)
        groups = f"; {len(self.groups)} groups" if self.groups is not None else ""
        if self.run_ids is not None:
            groups += f"; {len(self.run_ids)} run ids"
        return f"RunData({self.n_runs} runs; columns {names}; {ranges}{groups})"


def from_dataframe_protocol(source):
    """Another library's data frame as a pandas DataFrame; anything else unchanged.

    Polars, PyArrow, DuckDB and other frames that export the Arrow PyCapsule
    stream (``__arrow_c_stream__``) or the dataframe interchange protocol
    (``__dataframe__``) are converted, through pyarrow for the first and
    :func:`pandas.api.interchange.from_dataframe` for the second. A source that
    is none of the accepted kinds is refused naming its type.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from_dataframe_protocol(pa.table({"N": [1e8], "D": [2e9], "loss": [3.0]})).to_dict("list")
    {'N': [100000000.0], 'D': [2000000000.0], 'loss': [3.0]}
    >>> from_dataframe_protocol([1, 2])
    Traceback (most recent call last):
    ...
    TypeError: runs must be a pandas DataFrame, a dict of arrays, a RunData, a .csv/.parquet path, or a data frame with __dataframe__ or __arrow_c_stream__ (Polars, PyArrow, ...); got builtins.list
    """
    if isinstance(source, (pd.DataFrame, RunData, Mapping, str, os.PathLike)):
        return source
    kind = f"{type(source).__module__}.{type(source).__qualname__}"
    if not (hasattr(source, "__arrow_c_stream__") or hasattr(source, "__dataframe__")):
        hint = "; call .collect() first" if hasattr(source, "collect") else ""
        raise TypeError("runs must be a pandas DataFrame, a dict of arrays, a RunData, a .csv/.parquet path, "
                        "or a data frame with __dataframe__ or __arrow_c_stream__ (Polars, PyArrow, ...); "
                        f"got {kind}{hint}")
    try:
        if hasattr(source, "__arrow_c_stream__"):
            import pyarrow

            frame = pyarrow.table(source).to_pandas()
        else:
            frame = pd.api.interchange.from_dataframe(source)
    except ImportError as exc:
        raise TypeError(f"runs: converting a {kind} to pandas needs pyarrow (pip install pyarrow): {exc}") from None
    except Exception as exc:  # the protocols are implemented unevenly across libraries
        raise TypeError(f"runs: could not convert the {kind} to a pandas DataFrame ({type(exc).__name__}: {exc}); "
                        "convert it yourself, e.g. with its .to_pandas()") from None
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"runs: converting the {kind} gave a {type(frame).__name__}, not a DataFrame")
    return frame


def load_runs(source, *, columns=None, derive_D_from_C=True, require=("N", "D"), min_runs=1,
              require_loss=True) -> RunData:
    """Read and validate training runs.

    Parameters
    ----------
    source : pandas.DataFrame, dict of arrays, str, os.PathLike or RunData
        The runs, or a path to a ``.csv`` or ``.parquet`` file. A RunData is returned
        unchanged once ``require`` and ``min_runs`` are re-checked.
    columns : mapping, optional
        Your column names to canonical ones: ``N`` (parameters), ``D`` (tokens seen),
        ``C`` (training FLOPs), ``U`` (unique tokens), ``loss`` and ``group``; for
        checkpoint data also ``run`` (the training run a row belongs to: its rows are
        the run's checkpoints, D the tokens seen at each), ``schedule`` (``constant``,
        ``wsd`` or ``cosine``, any case) and ``D_total`` (tokens of the whole schedule;
        needed on ``cosine`` rows, whose rows before the end are no points of the
        final-loss law, see :attr:`RunData.law_rows`). The rows of one run must share
        N, group, schedule and D_total and have distinct D, with D <= D_total.
        When ``N``, ``D`` and ``C`` are all given, each run's ``C`` must lie within a
        factor :data:`C_RATIO_LIMIT` (100) of ``6 N D``: FLOP accountings with attention,
        embeddings or recomputation do, a C in other units does not. Group labels are
        compared as text, so ``1`` and ``"1"`` in one column are refused.
    derive_D_from_C : bool, default True
        If ``D`` is absent, compute it as ``C / (6 N)``. ``C`` is always derived as ``6 N D``
        when absent; both columns are kept.
    require : sequence of str, default ("N", "D")
        Canonical columns the law needs; ``loss`` is always required.
    min_runs : int, default 1
        Fewest runs accepted (a law passes its number of parameters).
    require_loss : bool, default True
        False for runs that are to be predicted, not fitted.

    Returns
    -------
    RunData
        Same rows, order and index as the input; other columns are passed through.

    Raises
    ------
    DataError
        Listing every problem found: missing or unreadable file, a path that is not a
        regular file (a directory, FIFO or device), CSV rows with more fields than the
        header or a header naming a column twice, dict columns of unequal length, bad
        ``columns`` mapping, missing required columns, non-numeric, boolean, NaN, infinite
        or non-positive values, ``D < U``, a ``C`` more than :data:`C_RATIO_LIMIT` times
        away from ``6 N D``, group labels or run identifiers that differ but read alike
        (``1`` and ``"1"``), checkpoint columns as above (unknown schedule, missing or
        non-positive D_total on a cosine row, D > D_total, rows of one run that disagree
        or repeat a D), too few runs. At most 50 are listed.
    TypeError
        ``columns`` is not a mapping.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Model Size": [1e8, 1e9], "Training FLOP": [1.2e18, 1.2e20],
    ...                    "loss": [3.1, 2.6]})
    >>> runs = load_runs(df, columns={"Model Size": "N", "Training FLOP": "C"})
    >>> runs.inputs("D")["D"]
    array([2.e+09, 2.e+10])
    >>> load_runs(pd.DataFrame({"N": [1e8, -1.0], "D": [2e9, 4e9], "loss": [3.0, "n/a"]}))
    Traceback (most recent call last):
    ...
    bayescale.base.errors.DataError: Run data has 2 problems:
      - row 1, column 'N': -1.0 is not positive; expected N > 0 (number of parameters)
      - row 1, column 'loss': text 'n/a' is not a number
    """
    require = check_require(require, require_loss)
    if columns is not None and not isinstance(columns, Mapping):
        raise TypeError(f"columns= must be a mapping from your column names to canonical ones, such as "
                        f"{{'Model Size': 'N'}}; got {type(columns).__name__} {columns!r}")
    if isinstance(source, Mapping):
        arrays = {k: np.atleast_1d(v) for k, v in source.items()}
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise DataError([f"column {k!r} has {n} value{'s' if n != 1 else ''}" for k, n in lengths.items()],
                            header="Run data columns must all have the same length:")
        source = pd.DataFrame(arrays)
    if isinstance(source, RunData):
        if columns:
            raise ValueError("columns= cannot be applied to RunData, whose columns are already canonical")
        problems = [f"missing required column {c!r} ({CANONICAL[c]}); the runs have "
                    f"{', '.join(map(str, source.frame.columns))}" for c in require if not source.has(c)]
        if source.n_runs < min_runs:
            problems.append(f"{source.n_runs} runs, but the law has {min_runs} parameters; "
                            f"need at least {min_runs} runs")
        if problems:
            raise_problems(problems, len(problems), "Run data")
        return source
    frame, name, note = read_table(from_dataframe_protocol(source))
    out, derived = checked_columns(frame, name, note, columns, derive_D_from_C, require, int(min_runs))
    return RunData._wrap(out, derived)


def run_prefixes(run_index, order) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by run, then by `order` within a run (checkpoint data: tokens seen), and where each run starts.

    Returns ``(sort, first)``: ``sort`` the row order (``values[..., sort]`` puts each run's rows together, in
    order), ``first`` for each sorted row the sorted position of its run's first row, so ``arange(n) - first``
    counts the rows of its run before it.

    Examples
    --------
    >>> sort, first = run_prefixes(np.array([1, 0, 1, 0]), np.array([2.0, 5.0, 1.0, 3.0]))
    >>> sort.tolist(), first.tolist()
    ([3, 1, 2, 0], [0, 0, 2, 2])
    """
    run_index = np.asarray(run_index)
    sort = np.lexsort((np.asarray(order, dtype=float), run_index))
    runs_sorted = run_index[sort]
    n = run_index.size
    start = np.r_[True, runs_sorted[1:] != runs_sorted[:-1]] if n else np.zeros(0, dtype=bool)
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, dtype=int)
    return sort, first
