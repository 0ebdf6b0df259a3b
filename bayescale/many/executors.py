"""Process pools and other executors that run :func:`bayescale.many.batch.fit_many`'s fits."""


from __future__ import annotations

import concurrent.futures as cf
import os
from pathlib import Path


__all__ = []

# ------------------------------------------------------------------------ executors
def default_executor(n_tasks: int):
    import multiprocessing as mp

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    workers = max(1, min(n_tasks, os.cpu_count() or 1))
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))


def as_executor(executor):
    """A concurrent.futures Executor from an Executor or a Dask ``distributed.Client``."""
    if isinstance(executor, cf.Executor):
        return executor
    if hasattr(executor, "get_executor") and hasattr(executor, "scheduler_info"):  # distributed.Client
        return executor.get_executor(pure=False)
    raise TypeError(f"executor must be a concurrent.futures.Executor or a dask.distributed Client, "
                    f"not {type(executor).__name__}")


def pool_slots(pool) -> int:
    """How many fits `pool` runs at once (for the progress bar's running count)."""
    if getattr(pool, "_max_workers", None):  # process and thread pools
        return int(pool._max_workers)
    client = getattr(pool, "_client", None)  # the executor of a distributed.Client
    try:
        return max(1, sum(int(n) for n in client.nthreads().values()))
    except Exception:  # another kind of executor: futures do not say whether they run
        return 1


def stop_pool(pool):
    """Stop a pool we created, without waiting for the fits it is running."""
    pool.shutdown(wait=False, cancel_futures=True)
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):  # None once the pool broke
        if proc.is_alive():
            proc.terminate()


def main_guard_message(script) -> str:
    return (f"fit_many was called while its worker processes start: each worker re-runs {script} from the top, "
            "and that script calls fit_many without an `if __name__ == \"__main__\":` guard. Put the code that "
            "calls fit_many under that guard (see \"Safe importing of main module\" in Python's multiprocessing "
            "documentation), or pass executor=concurrent.futures.ThreadPoolExecutor() to fit in this process")


def unguarded_main_script():
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


class KeyFailed(Exception):
    """A key's fit failed in the worker; the message is the error as the worker saw it."""


def error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
