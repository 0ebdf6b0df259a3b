"""The runs a :class:`~bayescale.fitting.model.ScalingModel` fits: read with its law's columns, checkpoints
mid-way through a cosine schedule left out, and the per-run offsets of checkpoint data.

Functions of a model's settings and runs; :meth:`ScalingModel.read_runs` is the public entry.
"""

from __future__ import annotations

from ..base.errors import CheckpointWarning, DataError, SpecError, warn_user
from ..runs.data import load_runs

__all__ = ["model_runs", "law_rows", "offset_count", "check_run_offsets"]


def model_runs(model, runs, columns=None):
    """`runs` read for `model`: its law's inputs and loss, ``group`` when it pools, enough rows for its parameters."""
    require = model.law.inputs + (("group",) if model.hierarchical else ())
    return load_runs(runs, columns=columns, require=require, min_runs=len(model.param_names))


def offset_count(model, runs) -> int:
    """Number of per-run offsets the fit of `runs` has: the runs' identifiers, or 0 (rows independent)."""
    if model.within_run == "none" or runs.run_ids is None:
        return 0
    if model.within_run == "auto" and not runs.has_checkpoints:
        return 0
    return len(runs.run_ids)


def check_run_offsets(model, runs) -> None:
    """Refuse per-run offsets that `runs` cannot carry: no run column, or undertuned runs without Normal noise."""
    if model.within_run == "offset" and runs.run_ids is None:
        raise DataError(["within_run='offset' needs a 'run' column naming each row's training run (map yours "
                         "with columns={'your column': 'run'}); without one use within_run='auto' or 'none'"],
                        header="Run data cannot be fitted with per-run offsets:")
    if model.undertuned and offset_count(model, runs) and model.likelihood != "normal":
        raise SpecError(f"undertuned=True with per-run offsets needs likelihood='normal', got "
                        f"likelihood={model.likelihood!r}: these runs have several rows per 'run' id "
                        "(checkpoints), and only Normal noise integrates a whole run's offset and excess out "
                        "in closed form; set likelihood='normal', fit one row per run (e.g. the final "
                        "checkpoints), or set within_run='none' to treat the rows as independent runs")


def law_rows(model, runs):
    """`runs` without checkpoints mid-way through a cosine schedule (warning how many were left out)."""
    keep = runs.law_rows
    if keep.all():
        return runs
    if keep.sum() < len(model.param_names):
        raise DataError(
            [f"{int((~keep).sum())} of {runs.n_runs} rows are checkpoints mid-way through a cosine schedule "
             f"(schedule 'cosine' with D < D_total), which are no points of the final-loss law; "
             f"{int(keep.sum())} row(s) remain, and the law has {len(model.param_names)} parameters. Add each "
             "cosine run's final checkpoint (D = D_total), or check the D_total column (the schedule's length "
             "in tokens) and the schedule column"], header="Run data has too few points of the law:")
    warn_user(f"{int((~keep).sum())} of {runs.n_runs} rows are checkpoints mid-way through a cosine "
              "schedule (D < D_total), not final losses; left out of the fit (each run's last row is kept)",
              CheckpointWarning, stacklevel=3)
    return runs.take(keep)
