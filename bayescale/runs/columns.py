"""The columns of a run table, checked row by row: canonical names, positive numbers, D or C derived, the
checkpoint columns, group labels.

Every problem found is listed in one :class:`~bayescale.base.errors.DataError` naming the row, the column, the
value and what is expected (:func:`checked_columns`); :func:`bayescale.load_runs` calls it.
"""

from __future__ import annotations

import numbers
from decimal import Decimal

import numpy as np
import pandas as pd

from ..base.errors import DataError
from ..base.validation import FLOPS_PER_PARAM_TOKEN
from .readers import MAX_LISTED

__all__ = ["CANONICAL", "NUMERIC", "END_RTOL", "SCHEDULES", "checked_columns", "check_require", "raise_problems"]


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


def raise_problems(shown: list[str], total: int, name: str, note: str = "") -> None:
    shown = shown[:MAX_LISTED]
    if total > len(shown):
        shown = shown + [f"... and {total - len(shown)} more"]
    raise DataError(shown, header=f"{name} has {total} problem{'s' if total != 1 else ''}{note}:")


def check_require(require, require_loss=True) -> tuple[str, ...]:
    require = (require,) if isinstance(require, str) else tuple(require)
    unknown = [r for r in require if r not in CANONICAL]
    if unknown:
        raise ValueError(f"require= names {unknown}, which are not canonical columns {list(CANONICAL)}")
    return tuple(dict.fromkeys((("loss",) if require_loss else ()) + require))


def checked_columns(frame: pd.DataFrame, name: str, note: str, columns, derive_D_from_C: bool, require, min_runs: int):
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
    raise_problems(shown, total, name, note)


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
