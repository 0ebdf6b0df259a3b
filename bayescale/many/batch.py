"""Many fits at once: one model per key of a column, on any executor, with checkpoints.

:func:`fit_many` splits the runs by the values of one or more columns (an
eval set, a data mixture, a backtest cutoff, a simulation replicate) and fits
the same model to each part, in parallel. It runs on any
:class:`concurrent.futures.Executor`; a Dask ``distributed.Client`` is the way
to run on a cluster. It schedules nothing itself.

What travels between processes is plain data: the model as its
specification (:meth:`ScalingModel.to_dict`, as in a saved fit), each key's
rows, and back the fit's ``idata`` tree. Each worker process builds the
sampling graph once and reuses it for every fit it runs.
"""


from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..base.errors import BatchWarning, ConvergenceWarning, DataError
from ..fitting.model import ScalingModel, TARGET_ACCEPT, check_sampler_name
from ..base.validation import check_count, check_flag, check_sampler_settings, check_seed as _check_seed
from .resume import ResumeFolder, key_tuple, frame_digest, key_json, plain_value, key_seed
from .executors import (KeyFailed, as_executor, default_executor, error_text, main_guard_message, pool_slots,
                        stop_pool, unguarded_main_script)
from .collection import FitCollection
from ..base.errors import warn_user
from ..runs.data import RunData, from_dataframe_protocol
from ..runs.readers import read_table
from .io import fit_from_tree
from ..base.progress import KeyProgress

__all__ = ["fit_many", "FitCollection", "BatchWarning"]

_POLL_SECONDS = 0.25
# --------------------------------------------------------------------------- tasks
@dataclass
class _Task:
    """One key's work. Pickled to a worker, it carries only plain data (the model as its spec)."""

    key: object
    frame: pd.DataFrame
    spec: dict
    settings: dict
    columns: dict | None
    model: object = None  # the caller's model object, used when the executor runs in this process
    digest: str = ""  # the key's data, recorded in the fit so a checkpoint can tell when it changed

    def __getstate__(self):
        state = dict(self.__dict__)
        state["model"] = None
        return state


@dataclass
class _Outcome:
    """What a worker sends back: the fit's idata tree (and the fit itself when no pickling happened)."""

    tree: object
    seconds: float
    fit: object = None
    error: str = ""  # the key's failure, as text (workers do not log it as a crashed task)
    warnings: tuple = ()  # (category, message) of the warnings the fit raised, shown by the caller

    def __getstate__(self):
        state = dict(self.__dict__)
        state["fit"] = None
        return state


def _fit_task(task: _Task) -> _Outcome:
    """Fit one key; runs in the worker."""
    from threadpoolctl import threadpool_limits

    model = task.model if task.model is not None else ScalingModel.from_dict(task.spec)
    t0 = time.perf_counter()
    # One BLAS thread per fit: the mode search's many tiny vector operations run several times
    # slower with a BLAS thread pool contending for the cores the other fits are using.
    # Warnings are recorded and sent back: a worker process's own stderr is not where the caller looks
    # (a notebook, a log), and the caller's warning filters apply to them there.
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)  # flagged in the collection's tables instead
        warnings.simplefilter("ignore", FutureWarning)
        try:
            fit = model.fit(task.frame, columns=task.columns, **task.settings)
        except Exception as exc:  # bad data, a failed mode search ...: recorded with the key, the batch goes on
            return _Outcome(None, time.perf_counter() - t0, error=error_text(exc), warnings=_relayed(caught))
    # The worker labels its own fit; the caller never writes onto a fit it received.
    fit.idata.attrs.update(batch_key=key_json(key_tuple(task.key)), batch_data=task.digest)
    return _Outcome(fit.idata, time.perf_counter() - t0, fit, warnings=_relayed(caught))


def _relayed(caught) -> tuple:
    return tuple((w.category, str(w.message)) for w in caught)


# ------------------------------------------------------------------------ the input
def _frame_of(runs) -> pd.DataFrame:
    runs = from_dataframe_protocol(runs)
    if isinstance(runs, RunData):
        return runs.frame
    if isinstance(runs, Mapping):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in runs.items()})
    frame, _name, _note = read_table(runs)
    return frame


def _split(frame: pd.DataFrame, by, columns, model) -> tuple[list, dict]:
    """``(by columns, {key: rows})`` in order of first appearance."""
    by_cols = [by] if isinstance(by, str) or not isinstance(by, (list, tuple)) else list(by)
    if not by_cols:
        raise ValueError("by= needs at least one column name")
    absent = [c for c in by_cols if c not in frame.columns]
    if absent:
        raise DataError([f"by= names column {c!r}, which the runs do not have; columns present: "
                         f"{', '.join(map(repr, frame.columns))}" for c in absent])
    needed = set(model.law.inputs) | {"loss"}
    clash = [c for c in by_cols if (columns or {}).get(c, c) in needed]
    if clash:
        raise ValueError(f"by= column(s) {clash} hold an input of the law or the loss; split by a label column")
    missing = frame[by_cols].isna().any(axis=1).to_numpy()
    if missing.any():
        rows = [f"row {frame.index[i]!r}, column(s) {by_cols}: missing key value; every run needs a key"
                for i in np.flatnonzero(missing)]
        raise DataError(rows)
    keyed = by_cols[0] if len(by_cols) == 1 else by_cols  # one column: scalar keys, even for by=["col"]
    parts = {}
    for key, rows in frame.groupby(keyed, sort=False):
        key = tuple(plain_value(k) for k in key) if isinstance(key, tuple) else plain_value(key)
        parts[key] = rows.drop(columns=by_cols)
    return by_cols, parts


# ------------------------------------------------------------------------- fit_many
def fit_many(model, runs, by, *, executor=None, checkpoint_dir=None, draws=1000, tune=1000, chains=4,
             cores=1, random_seed=None, sampler="nutpie", target_accept=TARGET_ACCEPT, columns=None,
             progressbar=None, escalate=True) -> "FitCollection":
    """Fit one model per key of a column (or of several columns), in parallel.

    Parameters
    ----------
    model : ScalingModel
        Fitted to each key's runs, with the same settings.
    runs : DataFrame, dict of arrays, RunData or path
        All runs, with the key column(s).
    by : str or list of str
        Column(s) whose values name the fits: one fit per distinct value
        (or combination). Keys are scalars for one column, tuples for several.
        The key columns are dropped from each key's runs.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where the fits run. Default: a process pool over this machine's cores,
        shut down at the end. A ``ThreadPoolExecutor`` runs the fits in this
        process, one at a time (the sampling graph of a process is shared).
        For a cluster pass a Dask ``Client`` (or ``client.get_executor()``).
        A pool you pass is left running.
    checkpoint_dir : str or PathLike, optional
        Folder where each finished fit is saved as it completes
        (``<key>-<hash>.nc``, atomically, plus an ``index.json``). A rerun with
        the same folder loads the fits already there instead of redoing them
        (only if the key's data, model and settings are unchanged), so an
        interrupted batch resumes where it stopped.
    draws, tune, chains, sampler, target_accept
        As in :meth:`ScalingModel.fit`, for every key.
    cores : int, default 1
        Parallel chains per fit. Keep 1 when several fits run in parallel.
    random_seed : int, optional
        Seed of the batch; each key's seed is derived from it and the key
        (:func:`key_seed`), so results do not depend on the executor or order.
    columns : dict, optional
        Column renaming applied to each key's runs, as in :func:`load_runs`.
    progressbar : bool, optional
        A bar over keys (completed / failed / running). Default: on in
        terminals and notebooks, off otherwise.
    escalate : bool, default True
        Sample a fit that fails its diagnostics again with more tuning and
        draws, as :meth:`ScalingModel.fit` does; ``False`` keeps every fit
        at the settings given (simulation-based calibration needs that).

    Returns
    -------
    FitCollection
        ``.fits`` (key -> ScalingFit), ``.errors`` (key -> message) and
        combined tables. A key whose data is unusable does not stop the
        batch: its error is recorded and reported at the end (a
        :class:`BatchWarning`). Non-convergence is not an error; it is
        flagged in the ``converged`` column of every table.

    Raises
    ------
    DataError
        The key column is missing or has missing values.
    KeyboardInterrupt
        On interruption, after stopping the pool it created (on a Dask
        client: after cancelling the fits not yet started; running ones
        finish on their workers); fits finished so far are in
        `checkpoint_dir`.

    Examples
    --------
    >>> import bayescale as bs
    >>> fits = bs.fit_many(bs.ScalingModel("chinchilla"), "runs.csv", by="eval_set",
    ...                    checkpoint_dir="fits/", random_seed=1)  # doctest: +SKIP
    >>> fits.summary()  # doctest: +SKIP

    On a Dask cluster:

    >>> from dask.distributed import Client  # doctest: +SKIP
    >>> with Client("scheduler:8786") as client:  # doctest: +SKIP
    ...     fits = bs.fit_many(model, runs, by="eval_set", executor=client)
    """
    if getattr(mp.current_process(), "_inheriting", False):  # in a worker that is importing the main script
        raise RuntimeError(main_guard_message(getattr(sys.modules.get("__mp_main__"), "__file__", "the main script")))
    random_seed = _check_seed(random_seed)
    settings = _batch_settings(draws, tune, chains, cores, sampler, target_accept, progressbar, escalate)
    frame = _frame_of(runs)
    by_cols, parts = _split(frame, by, columns, model)
    spec = model.to_dict()
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = ResumeFolder(checkpoint_dir, spec, settings, None if random_seed is None else int(random_seed),
                           by_cols, fresh_seed=int(np.random.SeedSequence().entropy % (2**31)))
        random_seed = ckpt.random_seed
    if random_seed is None:
        random_seed = int(np.random.SeedSequence().entropy % (2**31))
    random_seed = int(random_seed)
    if ckpt is not None:
        ckpt.random_seed = random_seed

    seeds = {key: key_seed(random_seed, key) for key in parts}
    digests = {key: frame_digest(rows) for key, rows in parts.items()}
    fits, errors, resumed = {}, {}, []
    if ckpt is not None:
        for key in parts:
            fit = ckpt.reuse(key, digests[key], seeds[key], model)
            if fit is not None:
                fits[key] = fit
                resumed.append(key)
        ckpt.write_index()
    todo = [key for key in parts if key not in fits]

    own = executor is None and bool(todo)
    pool = default_executor(len(todo)) if own else (as_executor(executor) if todo else None)
    bar = KeyProgress(len(parts), enabled=progressbar, initial=len(resumed), description="fits")
    started = time.perf_counter()
    tasks = [_Task(key, parts[key], spec, {**settings, "random_seed": seeds[key]}, columns, model, digests[key])
             for key in todo]
    try:
        _run_tasks(pool, tasks, model, ckpt, bar, fits, errors, own)
    except BaseException as exc:
        _stop(pool, executor, own, bar, exc)
        raise
    if own:
        pool.shutdown(wait=True)
    bar.close()
    order = list(parts)
    collection = FitCollection(
        model, by_cols, {k: fits[k] for k in order if k in fits}, {k: errors[k] for k in order if k in errors},
        keys=order, random_seed=random_seed, seeds=seeds, resumed=tuple(resumed),
        checkpoint_dir=None if ckpt is None else ckpt.folder, wall_seconds=time.perf_counter() - started)
    collection._warn()
    return collection


def _batch_settings(draws, tune, chains, cores, sampler, target_accept, progressbar, escalate) -> dict:
    """Every key's sampler settings, checked (before any work)."""
    check_sampler_name(sampler)
    checked = check_sampler_settings(draws=draws, tune=tune, chains=chains, cores=cores,
                                     target_accept=target_accept)
    check_flag(progressbar, "progressbar", allow_none=True), check_flag(escalate, "escalate")
    return {"draws": checked["draws"], "tune": checked["tune"], "chains": checked["chains"],
            "cores": check_count(cores, "cores"), "sampler": sampler,
            "target_accept": checked["target_accept"], "escalate": bool(escalate),
            "progressbar": False}  # one bar for the batch, none per fit


def _run_tasks(pool, tasks, model, ckpt, bar, fits, errors, own) -> None:
    """Submit `tasks` to `pool` and collect each outcome into `fits` or `errors` (and the resume folder) as it ends."""
    futures = {}
    try:
        for task in tasks:
            futures[pool.submit(_fit_task, task)] = task.key
        _collect(futures, pool, model, ckpt, bar, fits, errors, own)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise


def _collect(futures, pool, model, ckpt, bar, fits, errors, own) -> None:
    """Wait for `futures`, filing each outcome as it ends and moving the bar."""
    slots = pool_slots(pool) if pool is not None else 1
    pending = set(futures)
    while pending:
        done, pending = cf.wait(pending, timeout=_POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            key = futures[fut]
            try:
                fit = _adopt(fut.result(), model, key)
            except Exception as exc:  # a failing key never stops the batch
                if own and isinstance(exc, cf.process.BrokenProcessPool) and unguarded_main_script():
                    raise  # the workers died re-running the script: said once, by _stop
                errors[key] = str(exc) if isinstance(exc, KeyFailed) else error_text(exc)
                if ckpt is not None:
                    ckpt.record_error(key, errors[key])
            else:
                if ckpt is not None:
                    ckpt.store(key, fit)
                fits[key] = fit
        bar.update(ok=len(fits), failed=len(errors), running=min(len(pending), slots))


def _stop(pool, executor, own, bar, exc) -> None:
    """On an interruption or a broken pool: stop what this batch started; a script without a main guard is named."""
    if own:
        stop_pool(pool)
    elif pool is not None and pool is not executor:  # our executor over a Dask client: cancel its tasks
        pool.shutdown(wait=False)
    bar.close()
    script = unguarded_main_script() if own and isinstance(exc, cf.process.BrokenProcessPool) else None
    if script is not None:
        raise RuntimeError(main_guard_message(script)) from None


def _adopt(outcome: _Outcome, model, key):
    """The ScalingFit of a worker's outcome, with the caller's model object attached."""
    for category, message in outcome.warnings:  # the worker's warnings, under this process's filters
        warn_user(f"key {key!r}: {message}", category, stacklevel=2)
    if outcome.error:
        raise KeyFailed(outcome.error)
    if outcome.fit is not None:
        return outcome.fit
    return fit_from_tree(outcome.tree, f"the fit of key {key!r}", model=model)
