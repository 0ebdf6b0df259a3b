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
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BayescaleError, ConvergenceWarning, DataError, FileFormatError
from .model import TARGET_ACCEPT
from .validation import check_count, check_flag, check_sampler_settings, check_seed as _check_seed

__all__ = ["fit_many", "FitCollection", "BatchWarning"]

INDEX_NAME = "index.json"
INDEX_FORMAT = 1
_POLL_SECONDS = 0.25
_SETTING_NAMES = ("draws", "tune", "chains", "cores", "sampler", "target_accept")


class BatchWarning(UserWarning):
    """Some keys of a :func:`fit_many` batch failed or did not converge."""


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

    from .model import ScalingModel

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
            return _Outcome(None, time.perf_counter() - t0, error=_error_text(exc), warnings=_relayed(caught))
    # The worker labels its own fit; the caller never writes onto a fit it received.
    fit.idata.attrs.update(batch_key=_key_json(_as_tuple(task.key)), batch_data=task.digest)
    return _Outcome(fit.idata, time.perf_counter() - t0, fit, warnings=_relayed(caught))


def _relayed(caught) -> tuple:
    return tuple((w.category, str(w.message)) for w in caught)


# ---------------------------------------------------------------------- keys, seeds
def _plain(value):
    """A key element as a plain Python value (for JSON, seeds and file names)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return str(value)
    return value


def _key_json(key: tuple) -> str:
    return json.dumps([_plain(k) for k in key], default=str, ensure_ascii=True)


def key_seed(random_seed: int, key) -> int:
    """The seed of one key's fit, derived from the batch seed and the key.

    The same batch seed and key always give the same fit, whatever the order
    or the executor the keys run on.

    Examples
    --------
    >>> key_seed(1, "task-a") == key_seed(1, "task-a") != key_seed(1, "task-b")
    True
    """
    random_seed = _check_seed(random_seed)
    key = key if isinstance(key, tuple) else (key,)
    digest = hashlib.sha256(f"{int(random_seed)}|{_key_json(key)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**31 - 1)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(key: tuple) -> str:
    """A filesystem-safe, collision-free file name for a key."""
    slug = "__".join(_UNSAFE.sub("_", str(_plain(k))) for k in key).strip("._")[:80] or "key"
    tag = hashlib.sha256(_key_json(key).encode()).hexdigest()[:10]
    return f"{slug}-{tag}.nc"


def _digest(frame: pd.DataFrame) -> str:
    """Fingerprint of a key's rows: a checkpoint is reused only for the same data."""
    h = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    try:
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists ...): fall back to the text form
        h.update(frame.to_csv().encode())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------ the input
def _frame_of(runs) -> pd.DataFrame:
    from .data import RunData, _from_dataframe_protocol, _read

    runs = _from_dataframe_protocol(runs)
    if isinstance(runs, RunData):
        return runs.frame
    if isinstance(runs, Mapping):
        return pd.DataFrame({k: np.atleast_1d(v) for k, v in runs.items()})
    frame, _name, _note = _read(runs)
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
        key = tuple(_plain(k) for k in key) if isinstance(key, tuple) else _plain(key)
        parts[key] = rows.drop(columns=by_cols)
    return by_cols, parts


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


# ----------------------------------------------------------------------- checkpoints
class _Checkpoint:
    """A folder of ``<key>.nc`` fits plus ``index.json``; each written atomically.

    Several processes may share a folder (with different keys): every write
    happens under the folder's lock (:func:`bayescale.files.folder_lock`),
    and the index is re-read there and this process's changes are replayed
    on it, so no writer drops another's entries.
    """

    def __init__(self, folder, spec, settings, random_seed, by, fresh_seed=None):
        from .files import folder_lock, make_folder, remove_stale_temporaries

        self.folder = make_folder(folder, "checkpoint_dir")
        self.index_path = self.folder / INDEX_NAME
        head = {"model": spec, "settings": {k: settings[k] for k in _SETTING_NAMES if k != "cores"},
                "by": list(by)}
        self.head = json.loads(json.dumps(head, default=str))  # as stored: tuples become lists
        self._pending = []  # this process's changes, replayed on the on-disk index at each write
        with folder_lock(self.folder):
            self.index = self._read_index()
            self._check_head(self.index)
            if self.index and random_seed is not None and self.index.get("random_seed") != random_seed:
                raise BayescaleError(
                    f"checkpoint folder {str(self.folder)!r} was made with random_seed="
                    f"{self.index.get('random_seed')}; got random_seed={random_seed}. Pass the same seed (or None) "
                    "to resume, or use a new folder")
            self.random_seed = self.index.get("random_seed", random_seed if random_seed is not None else fresh_seed)
            # No writer holds the lock, so no save is in progress here: temporary files are leftovers of killed
            # saves, whatever their age.
            remove_stale_temporaries(self.folder, older_than=-1.0)
            if not self.index:  # claim the folder: a second process started on it adopts this seed
                self._write_index()

    def _check_head(self, index):
        old = {k: index.get(k) for k in self.head}
        if index and old != self.head:
            changed = [k for k in self.head if old[k] != self.head[k]]
            raise BayescaleError(
                f"checkpoint folder {str(self.folder)!r} holds fits of a different {' and '.join(changed)} "
                f"({', '.join(f'{k}: {old[k]!r}' for k in changed)}); use a new folder, or delete it to refit")

    def _read_index(self) -> dict:
        if not self.index_path.exists():
            return {}
        if not self.index_path.is_file():  # reading a FIFO would block forever
            from .files import check_write_path

            check_write_path(self.index_path, "checkpoint index")  # names what is there instead
        try:
            index = json.loads(self.index_path.read_text())
            _check_index(index)
        except (ValueError, OSError, TypeError) as exc:
            raise BayescaleError(f"{str(self.index_path)!r} is not a readable fit_many index ({exc}); "
                                 "use a new checkpoint folder") from None
        return index

    def reuse(self, key, digest, seed, model):
        """The checkpointed fit of `key`, or None when it must be (re)done."""
        from .io import load

        path = self.folder / _file_name(_as_tuple(key))
        if not path.is_file():
            return None
        try:
            fit = load(path)
        except FileFormatError:
            return None
        attrs = fit.idata.attrs
        if (attrs.get("batch_key") != _key_json(_as_tuple(key)) or attrs.get("batch_data") != digest
                or int(fit.settings.get("random_seed", -1)) != seed):
            return None
        fit.model = model
        # A run killed between writing the fit and the index leaves a good fit the index lacks.
        self._pending.append(("fit", key, path.name, self._entry(key, fit)))
        return fit

    def _entry(self, key, fit) -> dict:
        return {"key": json.loads(_key_json(_as_tuple(key))), "data": fit.idata.attrs.get("batch_data", ""),
                "random_seed": int(fit.settings["random_seed"]), "converged": bool(fit.converged)}

    def store(self, key, fit):
        from .files import folder_lock

        name = _file_name(_as_tuple(key))
        with folder_lock(self.folder):
            fit.save(self.folder / name)
            self._pending.append(("fit", key, name, self._entry(key, fit)))  # listed only once it is on disk
            self._write_index()

    def record_error(self, key, text):
        self._pending.append(("error", key, None, text))
        self.write_index()

    def write_index(self):
        from .files import folder_lock

        with folder_lock(self.folder):
            self._write_index()

    def _write_index(self):
        """Merge this process's changes into the index on disk and write it; the caller holds the lock."""
        from .files import atomic_write

        index = self._read_index()
        self._check_head(index)
        if index.get("random_seed") not in (None, self.random_seed):
            raise BayescaleError(
                f"checkpoint folder {str(self.folder)!r} was claimed by another batch with random_seed="
                f"{index.get('random_seed')} while this one ran with random_seed={self.random_seed}; "
                "use one seed (or None) for every batch that shares a folder")
        index.update(self.head)
        index.setdefault("fits", {})
        index.setdefault("errors", {})
        for op, key, name, value in self._pending:
            text_key = _key_json(_as_tuple(key))
            if op == "fit":
                index["fits"][name] = value
                index["errors"].pop(text_key, None)
            else:
                index["errors"][text_key] = value
        index["bayescale_batch"] = INDEX_FORMAT
        index["random_seed"] = self.random_seed
        text = json.dumps(index, indent=1, default=str)
        atomic_write(self.index_path, lambda tmp: Path(tmp).write_text(text), "checkpoint index")
        self._pending.clear()
        self.index = index


def _check_index(index) -> None:
    """Raise ValueError unless `index` is a fit_many index this version reads."""
    fmt = index.get("bayescale_batch") if isinstance(index, dict) else None
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise ValueError("not a bayescale fit_many index (no 'bayescale_batch' format number)")
    if fmt > INDEX_FORMAT:
        raise ValueError(f"written in fit_many index format {fmt}; this version reads format <= {INDEX_FORMAT}. "
                         "Upgrade bayescale")


# ------------------------------------------------------------------------ executors
def _default_executor(n_tasks: int):
    import multiprocessing as mp

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    workers = max(1, min(n_tasks, os.cpu_count() or 1))
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))


def _as_executor(executor):
    """A concurrent.futures Executor from an Executor or a Dask ``distributed.Client``."""
    if isinstance(executor, cf.Executor):
        return executor
    if hasattr(executor, "get_executor") and hasattr(executor, "scheduler_info"):  # distributed.Client
        return executor.get_executor(pure=False)
    raise TypeError(f"executor must be a concurrent.futures.Executor or a dask.distributed Client, "
                    f"not {type(executor).__name__}")


def _slots(pool) -> int:
    """How many fits `pool` runs at once (for the progress bar's running count)."""
    if getattr(pool, "_max_workers", None):  # process and thread pools
        return int(pool._max_workers)
    client = getattr(pool, "_client", None)  # the executor of a distributed.Client
    try:
        return max(1, sum(int(n) for n in client.nthreads().values()))
    except Exception:  # another kind of executor: futures do not say whether they run
        return 1


def _stop_pool(pool):
    """Stop a pool we created, without waiting for the fits it is running."""
    pool.shutdown(wait=False, cancel_futures=True)
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):  # None once the pool broke
        if proc.is_alive():
            proc.terminate()


def _main_guard_message(script) -> str:
    return (f"fit_many was called while its worker processes start: each worker re-runs {script} from the top, "
            "and that script calls fit_many without an `if __name__ == \"__main__\":` guard. Put the code that "
            "calls fit_many under that guard (see \"Safe importing of main module\" in Python's multiprocessing "
            "documentation), or pass executor=concurrent.futures.ThreadPoolExecutor() to fit in this process")


def _unguarded_main_script():
    """The path of the script being run if its workers would re-run it unguarded, else None.

    Worker processes started by spawn or forkserver import the main script again; without an
    ``if __name__ == "__main__":`` test at its top level, the script's own call of fit_many runs
    again in every worker. The script is parsed, never run.
    """
    import ast
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and any(isinstance(n, ast.Name) and n.id == "__name__"
                                            for n in ast.walk(node.test)):
            return None
    return str(path)


class _KeyFailed(Exception):
    """A key's fit failed in the worker; the message is the error as the worker saw it."""


def _one_line(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    from .model import SAMPLERS
    from .progress import KeyProgress

    import multiprocessing as mp

    if getattr(mp.current_process(), "_inheriting", False):  # in a worker that is importing the main script
        raise RuntimeError(_main_guard_message(getattr(__import__("sys").modules.get("__mp_main__"), "__file__",
                                                       "the main script")))
    random_seed = _check_seed(random_seed)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    checked = check_sampler_settings(draws=draws, tune=tune, chains=chains, cores=cores,
                                     target_accept=target_accept, error=ValueError)
    check_flag(progressbar, "progressbar", allow_none=True), check_flag(escalate, "escalate")
    frame = _frame_of(runs)
    by_cols, parts = _split(frame, by, columns, model)
    spec = model.to_dict()
    settings = {"draws": checked["draws"], "tune": checked["tune"], "chains": checked["chains"],
                "cores": check_count(cores, "cores", error=ValueError), "sampler": sampler,
                "target_accept": checked["target_accept"], "escalate": bool(escalate),
                "progressbar": False}  # one bar for the batch (below), none per fit
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = _Checkpoint(checkpoint_dir, spec, settings, None if random_seed is None else int(random_seed),
                           by_cols, fresh_seed=int(np.random.SeedSequence().entropy % (2**31)))
        random_seed = ckpt.random_seed
    if random_seed is None:
        random_seed = int(np.random.SeedSequence().entropy % (2**31))
    random_seed = int(random_seed)
    if ckpt is not None:
        ckpt.random_seed = random_seed

    seeds = {key: key_seed(random_seed, key) for key in parts}
    digests = {key: _digest(rows) for key, rows in parts.items()}
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
    pool = _default_executor(len(todo)) if own else (_as_executor(executor) if todo else None)
    bar = KeyProgress(len(parts), enabled=progressbar, initial=len(resumed), description="fits")
    started = time.perf_counter()
    slots = _slots(pool) if pool is not None else 1
    futures = {}
    try:
        for key in todo:
            task = _Task(key, parts[key], spec, {**settings, "random_seed": seeds[key]}, columns, model, digests[key])
            futures[pool.submit(_fit_task, task)] = key
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=_POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                key = futures[fut]
                try:
                    outcome = fut.result()
                    fit = _adopt(outcome, model, key)
                except Exception as exc:  # a failing key never stops the batch
                    if own and isinstance(exc, cf.process.BrokenProcessPool) and _unguarded_main_script():
                        raise  # the workers died re-running the script: said once, below
                    errors[key] = str(exc) if isinstance(exc, _KeyFailed) else _error_text(exc)
                    if ckpt is not None:
                        ckpt.record_error(key, errors[key])
                else:
                    if ckpt is not None:
                        ckpt.store(key, fit)
                    fits[key] = fit
            running = min(len(pending), slots)
            bar.update(ok=len(fits), failed=len(errors), running=running)
    except BaseException as exc:
        for fut in futures:
            fut.cancel()
        if own:
            _stop_pool(pool)
        elif pool is not None and pool is not executor:  # our executor over a Dask client: cancel its tasks
            pool.shutdown(wait=False)
        bar.close()
        script = _unguarded_main_script() if own and isinstance(exc, cf.process.BrokenProcessPool) else None
        if script is not None:
            raise RuntimeError(_main_guard_message(script)) from None
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


def _adopt(outcome: _Outcome, model, key):
    """The ScalingFit of a worker's outcome, with the caller's model object attached."""
    from .io import fit_from_tree

    for category, message in outcome.warnings:  # the worker's warnings, under this process's filters
        warnings.warn(f"key {key!r}: {message}", category, stacklevel=2)
    if outcome.error:
        raise _KeyFailed(outcome.error)
    if outcome.fit is not None:
        return outcome.fit
    return fit_from_tree(outcome.tree, f"the fit of key {key!r}", model=model)


def _unlisted_fits(folder: Path, listed: set, spec: dict, keys: set) -> list:
    """``[(key, fit)]`` of the fit_many fits in `folder` that its index does not list, with one warning.

    A writer killed between saving a fit and updating the index (or an index
    written by an older version without the folder lock) leaves such files.
    A file is taken when it is a readable fit of a batch (it carries its key)
    with the index's model and a key not already listed; others are named in
    the warning and left alone.
    """
    from .io import load

    found, skipped = [], []
    for path in sorted(folder.glob("*.nc")):
        if path.name in listed or not path.is_file():
            continue
        try:
            fit = load(path)
            key = tuple(json.loads(fit.idata.attrs["batch_key"]))
            same_model = json.loads(fit.idata.attrs["model_spec"]) == spec
        except (FileFormatError, KeyError, ValueError, TypeError) as exc:
            skipped.append(f"{path.name} ({_one_line(str(exc), 100) or type(exc).__name__})")
            continue
        if not same_model:
            skipped.append(f"{path.name} (a fit of another model)")
        elif key in keys:
            skipped.append(f"{path.name} (key {list(key)} is listed under another file)")
        else:
            keys.add(key)
            found.append((key, fit))
    if found or skipped:
        lines = [f"the index of {str(folder)!r} does not list {len(found) + len(skipped)} fit file(s)"]
        if found:
            lines.append(f"loaded {len(found)} from the key each file carries: "
                         + ", ".join(repr(k[0] if len(k) == 1 else k) for k, _ in found[:10])
                         + (" ..." if len(found) > 10 else ""))
        if skipped:
            lines.append("left out: " + "; ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
        warnings.warn("; ".join(lines), BatchWarning, stacklevel=3)
    return found


# ----------------------------------------------------------------------- collection
class FitCollection(Mapping):
    """The fits of a :func:`fit_many` batch: a mapping key -> ScalingFit, plus errors and tables.

    Attributes
    ----------
    fits : dict
        Key -> :class:`ScalingFit` for every key that was fitted (or resumed).
    errors : dict
        Key -> error message for every key that failed.
    keys_all : list
        Every key of the batch, in order of first appearance in the runs.
    by : list of str
        The key column(s).
    random_seed : int
        The batch seed; ``seeds`` maps each key to its own seed.
    resumed : tuple
        Keys loaded from the checkpoint folder rather than fitted.

    Examples
    --------
    >>> fits = bs.fit_many(model, runs, by="eval_set", random_seed=1)  # doctest: +SKIP
    >>> fits["mmlu"].summary()  # doctest: +SKIP
    >>> fits.summary()  # key x parameter, with a 'converged' column  # doctest: +SKIP
    >>> fits.predict({"N": [70e9], "D": [1.4e12]})  # doctest: +SKIP
    """

    def __init__(self, model, by, fits, errors, *, keys, random_seed, seeds=None, resumed=(), checkpoint_dir=None,
                 wall_seconds=float("nan")):
        self.model = model
        self.by = list(by)
        self.fits = dict(fits)
        self.errors = dict(errors)
        self.keys_all = list(keys)
        self.random_seed = random_seed
        self.seeds = dict(seeds or {})
        self.resumed = tuple(resumed)
        self.checkpoint_dir = checkpoint_dir
        self.wall_seconds = wall_seconds
        self._diagnostics = {}

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key):
        if key in self.fits:
            return self.fits[key]
        if key in self.errors:
            raise KeyError(f"key {key!r} failed: {self.errors[key]}")
        raise KeyError(f"no key {key!r}; keys: {', '.join(map(repr, self.keys_all[:20]))}"
                       f"{' ...' if len(self.keys_all) > 20 else ''}")

    def __iter__(self):
        return iter(self.fits)

    def __len__(self):
        return len(self.fits)

    # ------------------------------------------------------------------ status
    def diagnostics_of(self, key) -> dict:
        """:meth:`ScalingFit.diagnostics` of one key (computed once)."""
        if key not in self._diagnostics:
            self._diagnostics[key] = self.fits[key].diagnostics()
        return self._diagnostics[key]

    def converged(self, key) -> bool:
        """Whether the fit of `key` converged (R-hat, ESS and divergences; see ScalingFit.converged)."""
        return bool(self.diagnostics_of(key)["converged"])

    @property
    def not_converged(self) -> list:
        """Keys whose fits did not converge."""
        return [k for k in self.fits if not self.converged(k)]

    def _key_columns(self, key) -> dict:
        return dict(zip(self.by, _as_tuple(key)))

    def _keyed(self, key, table: pd.DataFrame) -> pd.DataFrame:
        table = table.copy()
        for i, (col, value) in enumerate(self._key_columns(key).items()):
            name = col if col not in table.columns else f"key_{col}"
            table.insert(i, name, value)
        if "converged" not in table.columns:
            table["converged"] = self.converged(key)
        return table

    def _combine(self, make) -> pd.DataFrame:
        tables = [self._keyed(key, make(fit)) for key, fit in self.fits.items()]
        if not tables:
            return pd.DataFrame(columns=[*self.by, "converged"])
        out = pd.concat(tables, ignore_index=True)
        out.attrs.update(tables[0].attrs)
        return out

    # ------------------------------------------------------------------ tables
    def diagnostics(self) -> pd.DataFrame:
        """One row per key: ``status`` (ok / not converged / failed), convergence figures and any error."""
        rows = []
        for key in self.keys_all:
            row = self._key_columns(key)
            if key in self.fits:
                d = self.diagnostics_of(key)
                row.update(status="ok" if d["converged"] else "not converged", converged=d["converged"],
                           max_r_hat=d["max_r_hat"], min_ess_bulk=d["min_ess_bulk"],
                           min_ess_tail=d["min_ess_tail"], divergences=d["divergences"],
                           sampling_seconds=d["sampling_seconds"], resumed=key in self.resumed, error="")
            else:
                row.update(status="failed", converged=False, max_r_hat=np.nan, min_ess_bulk=np.nan,
                           min_ess_tail=np.nan, divergences=-1, sampling_seconds=np.nan, resumed=False,
                           error=self.errors.get(key, ""))
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self, prob=0.9) -> pd.DataFrame:
        """Posterior summaries of every key: one row per key and parameter, with ``converged``.

        Examples
        --------
        >>> fits.summary().query("parameter == 'alpha'")  # doctest: +SKIP
        """
        return self._combine(lambda fit: fit.summary(prob).reset_index())

    def predict(self, new_runs, prob=0.9, *, random_seed=None, columns=None) -> pd.DataFrame:
        """:meth:`ScalingFit.predict` for every key, stacked with the key column(s) first."""
        random_seed = _check_seed(random_seed)
        return self._combine(lambda fit: fit.predict(new_runs, prob, random_seed=random_seed, columns=columns))

    def allocate(self, budget, prob=0.9, *, flops_per_param_token=6.0, max_unique_tokens=None) -> pd.DataFrame:
        """:meth:`ScalingFit.allocate` for every key, stacked with the key column(s) first."""
        return self._combine(lambda fit: fit.allocate(budget, prob, flops_per_param_token=flops_per_param_token,
                                                      max_unique_tokens=max_unique_tokens))

    def risk(self, budget=None, *, target=None, plan=None, prob=0.9, flops_per_param_token=6.0,
             max_unique_tokens=None, random_seed=None) -> pd.DataFrame:
        """:meth:`ScalingFit.risk` for every key, stacked with the key column(s) first."""
        random_seed = _check_seed(random_seed)
        return self._combine(lambda fit: fit.risk(budget, target=target, plan=plan, prob=prob,
                                                  flops_per_param_token=flops_per_param_token,
                                                  max_unique_tokens=max_unique_tokens, random_seed=random_seed))

    def apply(self, func) -> pd.DataFrame:
        """Stack ``func(fit)`` (a DataFrame) over keys, with the key column(s) and ``converged``.

        Examples
        --------
        >>> fits.apply(lambda fit: fit.budget_for(1.9))  # doctest: +SKIP
        """
        return self._combine(func)

    # ------------------------------------------------------------------ output
    def save(self, folder) -> None:
        """Write every fit to `folder` as ``<key>-<hash>.nc`` with an ``index.json`` (see :meth:`load`)."""
        spec = self.model.to_dict()
        any_fit = next(iter(self.fits.values()), None)
        settings = {k: v for k, v in (any_fit.settings if any_fit else {}).items() if k in _SETTING_NAMES}
        settings = {k: settings.get(k) for k in _SETTING_NAMES}
        ckpt = _Checkpoint(folder, spec, settings, self.random_seed, self.by)
        for key, fit in self.fits.items():
            ckpt.store(key, fit)
        for key, text in self.errors.items():
            ckpt.record_error(key, text)

    @classmethod
    def load(cls, folder) -> "FitCollection":
        """Read the fits of a checkpoint folder (or of :meth:`save`) back into a collection.

        Fit files of the batch that the index does not list (a writer killed
        between the two writes) are loaded too, from the key each file
        carries, with a :class:`BatchWarning` naming them.

        Examples
        --------
        >>> fits = bs.FitCollection.load("fits/")  # doctest: +SKIP
        """
        from .io import load
        from .model import ScalingModel

        folder = Path(folder)
        path = folder / INDEX_NAME
        if not path.is_file():
            raise FileFormatError(f"no {INDEX_NAME} in {str(folder)!r}; not a fit_many folder")
        try:
            index = json.loads(path.read_text())
            _check_index(index)
            model = ScalingModel.from_dict(index["model"])
            by = list(index["by"])
            entries = {}
            for name, entry in index["fits"].items():
                if Path(name).name != name or not name.endswith(".nc"):
                    raise ValueError(f"fit file name {name!r} is not a file in the folder")
                entries[name] = tuple(entry["key"])
            failed = {tuple(json.loads(text_key)): str(text) for text_key, text in index.get("errors", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FileFormatError(f"{str(path)!r} is not a readable fit_many index ({exc})") from None

        def scalar(key):
            return key[0] if len(by) == 1 else key

        fits, keys = {}, []
        for name, key in entries.items():
            fit = load(folder / name)
            fit.model = model
            fits[scalar(key)] = fit
            keys.append(scalar(key))
        for key, fit in _unlisted_fits(folder, set(entries), index["model"], set(map(tuple, entries.values()))):
            fit.model = model
            fits[scalar(key)] = fit
            keys.append(scalar(key))
            failed.pop(key, None)
        errors = {}
        for key, text in failed.items():
            errors[scalar(key)] = text
            keys.append(scalar(key))
        seeds = {k: int(f.settings["random_seed"]) for k, f in fits.items()}
        return cls(model, by, fits, errors, keys=keys, random_seed=index.get("random_seed"), seeds=seeds,
                   resumed=tuple(fits), checkpoint_dir=folder)

    # ------------------------------------------------------------------ display
    def _warn(self):
        lines = []
        if self.errors:
            lines.append(f"{len(self.errors)} of {len(self.keys_all)} keys failed:")
            lines += [f"  {k!r}: {_one_line(v)}" for k, v in list(self.errors.items())[:10]]
        bad = self.not_converged
        if bad:
            lines.append(f"{len(bad)} fits did not converge (R-hat > 1.01, bulk ESS < 400 or divergences): "
                         f"{', '.join(map(repr, bad[:10]))}{' ...' if len(bad) > 10 else ''}")
        if lines:
            lines.append("See collection.diagnostics() for every key.")
            warnings.warn("\n".join(lines), BatchWarning, stacklevel=3)

    def __repr__(self) -> str:
        n_bad = len(self.not_converged)
        head = (f"FitCollection: {self.model.law.name} law by {', '.join(self.by)}; {len(self.keys_all)} keys: "
                f"{len(self.fits) - n_bad} converged, {n_bad} not converged, {len(self.errors)} failed"
                + (f" ({len(self.resumed)} resumed from checkpoint)" if self.resumed else ""))
        lines = [head]
        for key, text in list(self.errors.items())[:5]:
            lines.append(f"  failed {key!r}: {_one_line(text)}")
        lines.append("Next: fits.summary(), fits.diagnostics(), fits.predict(new_runs), fits[key]")
        return "\n".join(lines)
