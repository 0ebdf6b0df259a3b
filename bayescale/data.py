"""Load and validate training-run data.

Every check runs before anything is raised, so a single :class:`~bayescale.errors.DataError`
lists all the problems in the data, each naming its row (the frame's index label), column and
value.
"""

from __future__ import annotations

import numbers
import os
from decimal import Decimal
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .errors import DataError, SpecError
from .validation import FLOPS_PER_PARAM_TOKEN
from .readers import MAX_LISTED, read_table

__all__ = ["RunData", "load_runs"]


#: Canonical column names and what they hold.
CANONICAL = {
    "N": "number of parameters",
    "D": "tokens seen in training",
    "C": "training FLOPs",
    "U": "unique tokens",
    "loss": "final loss",
    "group": "group label (dataset, model family, ...)",
    "run": "training-run identifier (the rows of one run are its checkpoints)",
    "D_total": "tokens of the run's whole learning-rate schedule (D at its end)",
    "schedule": "learning-rate schedule: constant, wsd or cosine",
}
#: Learning-rate schedules the ``schedule`` column may name. Rows of a ``cosine`` run before its end
#: (``D < D_total``) are not points of the final-loss law; see :attr:`RunData.law_rows`.
SCHEDULES = ("constant", "wsd", "cosine")
#: Relative tolerance within which a checkpoint's ``D`` counts as the end of its schedule (``D_total``):
#: token counts logged as steps x batch tokens differ from the nominal length by a batch or so.
END_RTOL = 1e-3
NUMERIC = ("N", "D", "C", "U", "loss")


#: Error models of the rows of one training run (``within_run`` of ScalingModel and DownstreamModel).
WITHIN_RUN = ("auto", "offset", "none")
#: The posterior name of the per-run offset's standard deviation (``within_run="offset"``).
RUN_SD = "run_sd"


def check_within_run(within_run) -> str:
    """`within_run` itself if it is one of :data:`WITHIN_RUN`; else SpecError naming the valid settings."""
    if not isinstance(within_run, str) or within_run not in WITHIN_RUN:
        raise SpecError(f"within_run must be one of {', '.join(map(repr, WITHIN_RUN))}, got {within_run!r}")
    return within_run

#: Largest factor by which a run's ``C`` may differ from ``6 N D``. FLOP accountings that count
#: attention (``6 N + 6 n_layer n_ctx d_model`` per token, about 2.3x for d_model 128 at context 2048),
#: embeddings (tens of times the non-embedding count for models of a few 1e5 parameters),
#: activation recomputation (8 N D) or mixture-of-experts active parameters all stay within
#: two orders of magnitude; a C in other units (PF-days: 8.64e19) or with a wrong exponent does not.
C_RATIO_LIMIT = 100.0


_HINTS = {"N": ("param", "model size"), "D": ("token",), "C": ("flop", "compute"),
          "U": ("unique",), "loss": ("loss",), "group": ("group", "family", "dataset"),
          "run": ("run", "seed", "name"), "D_total": ("total",), "schedule": ("schedule", "lr")}


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, (np.integer, np.bool_)):
        return repr(v.item())
    return repr(v)


def _row(label) -> str:
    return f"row {label}" if isinstance(label, (int, np.integer)) else f"row {label!r}"


def _guess(name: str, columns) -> str | None:
    """The user's column that probably holds canonical column ``name``, for hints."""
    for col in columns:
        low = str(col).lower()
        if low == name.lower() or any(k in low for k in _HINTS[name]):
            if name != "D" or "unique" not in low:
                return col
    return None


def _to_float(s: pd.Series, label: str, flag, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Coerce ``s`` to float64; return values and a mask of rows already flagged."""
    bad = np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s) and not (
        pd.api.types.is_bool_dtype(s) or pd.api.types.is_complex_dtype(s)
    ):
        return s.to_numpy(dtype=np.float64, na_value=np.nan), bad
    out, found = np.full(len(s), np.nan), {}
    for i, v in enumerate(s.to_numpy(dtype=object)):
        if isinstance(v, (bool, np.bool_)):
            found[i] = f"boolean {_fmt(v)} is not a number"
        elif isinstance(v, (numbers.Real, Decimal)):
            out[i] = float(v)
        elif isinstance(v, str) and v.strip():
            try:
                out[i] = float(v)
            except ValueError:
                found[i] = f"text {v!r} is not a number"
        elif not (v is None or v is pd.NA or v is pd.NaT or isinstance(v, str)):
            found[i] = f"{_fmt(v)} ({type(v).__name__}) is not a number"
        # None, NA, NaT and blank text are missing values, flagged by the NaN check
    bad[list(found)] = True
    flag(bad, rank, lambda i: f"column {label}: {found[i]}")
    return out, bad


def _raise(shown: list[str], total: int, name: str, note: str = "") -> None:
    shown = shown[:MAX_LISTED]
    if total > len(shown):
        shown = shown + [f"... and {total - len(shown)} more"]
    raise DataError(shown, header=f"{name} has {total} problem{'s' if total != 1 else ''}{note}:")


def _check_require(require, require_loss=True) -> tuple[str, ...]:
    require = (require,) if isinstance(require, str) else tuple(require)
    unknown = [r for r in require if r not in CANONICAL]
    if unknown:
        raise ValueError(f"require= names {unknown}, which are not canonical columns {list(CANONICAL)}")
    return tuple(dict.fromkeys((("loss",) if require_loss else ()) + require))


def _validate(frame: pd.DataFrame, name: str, note: str, columns, derive_D_from_C: bool, require, min_runs: int):
    general: list[str] = []
    findings: list[tuple[np.ndarray, int, object]] = []  # (row positions, column rank, message(i))

    def flag(mask, rank, message):
        findings.append((np.flatnonzero(mask), rank, message))

    if len(frame) == 0:
        general.append(f"the data has no rows (columns: {', '.join(map(repr, frame.columns)) or 'none'})")
    frame, original = _mapped(frame, columns, general)

    def label(col):
        return f"{col!r}" if col not in original else f"{original[col]!r} ({col})"

    values, bad, ok = {}, {}, {}
    for rank, col in enumerate(NUMERIC):
        if col in frame.columns:
            values[col], bad[col] = _to_float(frame[col], label(col), flag, rank)
    for col in list(values):
        _check_positive(values, bad, ok, col, label(col), flag)
    derived = _derive(values, bad, ok, derive_D_from_C, flag)
    if {"N", "D", "C"} <= values.keys() and not derived:
        _check_compute(values, ok, label, flag)
    general.extend(_missing_columns(frame, values, require, derive_D_from_C))
    if "D" in values and "U" in values:
        D, U = values["D"], values["U"]
        flag(ok["D"] & ok["U"] & (D < U), NUMERIC.index("U"),
             lambda i: f"columns {label('D')}, {label('U')}: D = {_fmt(D[i])} is less than "
                       f"U = {_fmt(U[i])}; unique tokens cannot exceed tokens seen")
    if "group" in frame.columns:
        _check_groups(frame, label("group"), flag, general)
    extra = _checkpoint_columns(frame, values, ok, label, flag, general)
    if 0 < len(frame) < min_runs:
        general.append(f"{len(frame)} runs, but the law has {min_runs} parameters; "
                       f"need at least {min_runs} runs")
    _raise_findings(frame, general, findings, name, note)
    out = frame.copy()
    for col, v in {**values, **extra}.items():
        out[col] = v
    for col in ("group", "run"):
        if col in out.columns:
            labels = out[col].map(str)
            out[col] = pd.Categorical(labels, categories=list(dict.fromkeys(labels)))
    return out, tuple(derived)


def _mapped(frame, columns, general):
    """`frame` with `columns=` applied (bad entries and duplicate names go to `general`); canonical -> user name."""
    mapping = dict(columns or {})  # a mapping, checked by load_runs
    for key, target in mapping.items():
        if key not in frame.columns:
            general.append(f"columns= maps {key!r}, but there is no such column; "
                           f"columns present: {', '.join(map(repr, frame.columns))}")
        if target not in CANONICAL:
            general.append(f"columns= maps {key!r} to {target!r}, which is not a canonical name; "
                           f"use one of {', '.join(CANONICAL)}")
    mapping = {k: v for k, v in mapping.items() if k in frame.columns and v in CANONICAL}
    frame = frame.rename(columns=mapping)
    dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if dupes:
        general.append(f"more than one column is named (or mapped to) {', '.join(map(repr, dupes))}")
        frame = frame.loc[:, ~frame.columns.duplicated()]
    return frame, {v: k for k, v in mapping.items()}


def _check_positive(values, bad, ok, col, where, flag) -> None:
    """Flag missing, infinite and non-positive values of `col`; ``ok[col]`` marks the usable ones."""
    v, good, rank = values[col], ~bad[col], NUMERIC.index(col)
    with np.errstate(invalid="ignore"):
        flag(good & np.isnan(v), rank,
             lambda i: f"column {where}: missing value (NaN); expected a positive number")
        flag(good & np.isinf(v), rank,
             lambda i: f"column {where}: {_fmt(v[i])} is not finite; expected a positive number")
        flag(good & np.isfinite(v) & (v <= 0), rank, lambda i:
             f"column {where}: {_fmt(v[i])} is not positive; expected {col} > 0 ({CANONICAL[col]})")
        ok[col] = good & np.isfinite(v) & (v > 0)


def _derive(values, bad, ok, derive_D_from_C, flag) -> list:
    """D from C / (6 N) (when asked) or C from 6 N D, when missing; the names derived."""
    derived = []
    if "D" not in values and derive_D_from_C and "C" in values and "N" in values:
        with np.errstate(all="ignore"):  # bad N or C are reported as problems below
            values["D"] = values["C"] / (6 * values["N"])
        bad["D"] = ~(ok["C"] & ok["N"])
        derived.append("D")
        _check_positive(values, bad, ok, "D", "'D' (derived as C / (6 N))", flag)
    if "C" not in values and "N" in values and "D" in values:
        with np.errstate(all="ignore"):
            values["C"] = 6 * values["N"] * values["D"]
        bad["C"] = ~(ok["N"] & ok["D"])
        derived.append("C")
        _check_positive(values, bad, ok, "C", "'C' (derived as 6 N D)", flag)
    return derived


def _check_compute(values, ok, label, flag) -> None:
    """Flag rows whose C is far from 6 N D (C in other units)."""
    N, D, C = values["N"], values["D"], values["C"]
    with np.errstate(all="ignore"):
        ratio = C / (FLOPS_PER_PARAM_TOKEN * N * D)
        off = ok["N"] & ok["D"] & ok["C"] & ((ratio > C_RATIO_LIMIT) | (ratio < 1 / C_RATIO_LIMIT))
    flag(off, NUMERIC.index("C"),
         lambda i: f"columns {label('N')}, {label('D')}, {label('C')}: C = {C[i]:.4g} is {ratio[i]:.3g} times "
                   f"6 N D = {6 * N[i] * D[i]:.4g} (N = {N[i]:.4g}, D = {D[i]:.4g}); expected within a factor "
                   f"of {C_RATIO_LIMIT:g} of it (C in other units? leave C out to derive it as 6 N D)")


def _missing_columns(frame, values, require, derive_D_from_C) -> list:
    """One message per required column that is missing, with the mapping that would supply it."""
    out = []
    for col in require:
        if col in values or col in frame.columns:
            continue
        if col == "D" and derive_D_from_C and "C" in values and "N" not in values and "N" in require:
            continue  # derived as C / (6 N) once N is there: the missing N is the one problem
        guess = _guess(col, frame.columns)
        hint = f"columns={{{(guess or 'your column name')!r}: {col!r}}}"
        extra = " (or derive it from C and N with derive_D_from_C=True)" if (
            col == "D" and {"C", "N"} <= values.keys()) else ""
        compute = _guess("C", frame.columns) if col == "D" and "C" not in values and derive_D_from_C else None
        if compute is not None and _guess("D", frame.columns) is None:
            out.append(f"missing column {col!r} ({CANONICAL[col]}), or C to derive it as C / (6 N); "
                       f"columns present: {', '.join(map(repr, frame.columns))}; map the compute with "
                       f"columns={{{compute!r}: 'C'}}")
            continue
        out.append(f"missing required column {col!r} ({CANONICAL[col]}); columns present: "
                   f"{', '.join(map(repr, frame.columns))}; map yours with {hint}{extra}")
    return out


def _check_groups(frame, where, flag, general) -> None:
    """Flag missing and unusable group labels, and labels that clash once written as text."""
    flag(frame["group"].isna().to_numpy(), len(NUMERIC), lambda i: f"column {where}: missing group label")
    not_label = _not_labels(frame["group"])
    flag(not_label, len(NUMERIC), lambda i: f"column {where}: {_cell(frame['group'].iloc[i])} is "
                                            "not a group label; give text or a number")
    general.extend(_label_clashes(frame["group"][~not_label], where))


def _raise_findings(frame, general, findings, name, note) -> None:
    """Raise one DataError listing the general problems, then the rows' problems in row and column order."""
    pos = np.concatenate([f[0] for f in findings] or [np.array([], dtype=np.intp)])
    total = len(general) + len(pos)
    if not total:
        return
    ranks = np.concatenate([np.full(len(f[0]), f[1]) for f in findings] or [pos])
    which = np.concatenate([np.full(len(f[0]), k) for k, f in enumerate(findings)] or [pos])
    order = np.lexsort((which, ranks, pos))[: max(MAX_LISTED - len(general), 0)]
    shown = general + [f"{_row(frame.index[pos[k]])}, {findings[which[k]][2](pos[k])}" for k in order]
    _raise(shown, total, name, note)


def _checkpoint_columns(frame, values, ok, label, flag, general) -> dict:
    """Check the checkpoint columns ``run``, ``D_total`` and ``schedule``; return their cleaned values.

    A run's rows must agree on N, group, schedule and D_total, and name distinct D; D may not exceed
    D_total; a ``cosine`` row needs D_total (the cycle length). Problems go to `flag` and `general`.
    """
    rank = len(NUMERIC) + 1
    out, n = {}, len(frame)
    sched = None
    if "schedule" in frame.columns:
        raw = frame["schedule"].to_numpy(dtype=object)
        sched = np.array([v.strip().lower() if isinstance(v, str) else v for v in raw], dtype=object)
        missing = pd.isna(frame["schedule"]).to_numpy()
        flag(missing, rank + 2, lambda i: f"column {label('schedule')}: missing value; expected one of "
                                          f"{', '.join(SCHEDULES)}")
        unknown = ~missing & np.array([v not in SCHEDULES for v in sched], dtype=bool)
        flag(unknown, rank + 2, lambda i: f"column {label('schedule')}: {_fmt(raw[i])} is not a schedule; "
                                          f"expected one of {', '.join(SCHEDULES)}")
        out["schedule"] = sched
    cosine = np.array([v == "cosine" for v in sched], dtype=bool) if sched is not None else np.zeros(n, bool)
    total = None
    if "D_total" in frame.columns:
        total, bad = _to_float(frame["D_total"], label("D_total"), flag, rank + 1)
        with np.errstate(invalid="ignore"):
            flag(~bad & np.isnan(total) & cosine, rank + 1, lambda i: f"column {label('D_total')}: missing value "
                 "on a cosine row; expected the cosine schedule's length in tokens (D at its end)")
            flag(~bad & np.isinf(total), rank + 1, lambda i: f"column {label('D_total')}: {_fmt(total[i])} is not "
                 "finite; expected a positive number (tokens)")
            flag(~bad & np.isfinite(total) & (total <= 0), rank + 1, lambda i: f"column {label('D_total')}: "
                 f"{_fmt(total[i])} is not positive; expected D_total > 0 ({CANONICAL['D_total']})")
            good = ~bad & np.isfinite(total) & (total > 0)
            if "D" in values:
                D = values["D"]
                flag(good & ok.get("D", np.zeros(n, bool)) & (D > total * (1 + END_RTOL)), rank + 1,
                     lambda i: f"columns {label('D')}, {label('D_total')}: D = {_fmt(D[i])} is more than "
                               f"D_total = {_fmt(total[i])}; tokens seen cannot exceed the schedule's length")
        out["D_total"] = total
    elif cosine.any():
        general.append(f"column {label('schedule')} names 'cosine' on {int(cosine.sum())} row(s), but there is no "
                       "'D_total' column; give each cosine run's schedule length in tokens (map yours with "
                       "columns={'your column': 'D_total'})")
    if "run" in frame.columns:
        ids = frame["run"]
        flag(ids.isna().to_numpy(), rank, lambda i: f"column {label('run')}: missing run identifier")
        not_label = _not_labels(ids)
        flag(not_label, rank, lambda i: f"column {label('run')}: {_cell(ids.iloc[i])} is not a run identifier; "
                                        "give text or a number")
        general.extend(_label_clashes(ids[~not_label], label("run"), what="run identifiers"))
        key = ids.map(str).to_numpy(dtype=object)
        first = pd.Series(np.arange(n)).groupby(key).transform("first").to_numpy()
        shared = [(c, values[c]) for c in ("N",) if c in values]
        shared += [(c, frame[c].to_numpy(dtype=object)) for c in ("group",) if c in frame.columns]
        shared += [(c, v) for c, v in (("schedule", sched), ("D_total", total)) if v is not None]
        for col, v in shared:
            same = np.array([_same(v[i], v[j]) for i, j in enumerate(first)], dtype=bool)
            if col in ok:  # a bad value is reported once, by its own check
                same |= ~ok[col] | ~ok[col][first]
            flag(~same, rank, lambda i, col=col, v=v: f"column {label(col)}: {_fmt(v[i])}, but the first row of run "
                 f"{key[i]!r} ({_row(frame.index[first[i]])}) has {_fmt(v[first[i]])}; the rows of one run share "
                 f"{col}")
        if "D" in values:
            dup = pd.DataFrame({"r": key, "D": values["D"]}).duplicated(keep="first").to_numpy() & ok.get("D", True)
            flag(dup, rank, lambda i: f"columns {label('run')}, {label('D')}: run {key[i]!r} has another row at "
                                      f"D = {_fmt(values['D'][i])}; one row per checkpoint")
    return out


def _same(a, b) -> bool:
    """Whether two cells hold the same value (two missing values are the same)."""
    def missing(v):
        return v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v))

    if missing(a) or missing(b):
        return missing(a) and missing(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _not_labels(labels: pd.Series) -> np.ndarray:
    """Cells that cannot be a label: containers (a list, dict, set or array read from a nested file)."""
    return np.array([isinstance(v, (list, dict, set, np.ndarray)) for v in labels.to_numpy(dtype=object)], dtype=bool)


def _cell(value) -> str:
    """A cell shown in a message, shortened."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _label_clashes(labels: pd.Series, where: str, what: str = "group labels") -> list[str]:
    """Distinct labels that would read as the same text (1 and "1", True and "True")."""
    texts: dict[str, dict[str, None]] = {}
    for v in pd.unique(labels.dropna().to_numpy(dtype=object)):
        v = v.item() if isinstance(v, np.generic) else v
        texts.setdefault(str(v), {}).setdefault(f"{v!r} ({type(v).__name__})")
    return [f"column {where}: {what} {' and '.join(seen)} are different values that read as the same "
            f"label {text!r}; make the column all text or all numbers"
            for text, seen in texts.items() if len(seen) > 1]


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
    bayescale.errors.DataError: Run data has 2 problems:
      - row 1, column 'N': -1.0 is not positive; expected N > 0 (number of parameters)
      - row 1, column 'loss': text 'n/a' is not a number
    """
    require = _check_require(require, require_loss)
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
            _raise(problems, len(problems), "Run data")
        return source
    frame, name, note = read_table(from_dataframe_protocol(source))
    out, derived = _validate(frame, name, note, columns, derive_D_from_C, require, int(min_runs))
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
