"""A progress bar over the keys of a batch: completed, failed and running fits.

Uses ``tqdm`` when it is installed (its ``tqdm.auto`` flavour draws a widget in
notebooks), otherwise ``rich`` (installed with PyMC), otherwise plain text
lines. It is off unless asked for or the output is a terminal or a notebook.
"""

from __future__ import annotations

import sys

__all__ = ["KeyProgress", "interactive"]


def interactive(stream=None) -> bool:
    """Whether `stream` (default stderr) is a terminal, or we run inside a Jupyter kernel."""
    stream = sys.stderr if stream is None else stream
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell":
                return True
        except ImportError:
            pass
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class KeyProgress:
    """Progress over `total` keys.

    Parameters
    ----------
    total : int
        Number of keys.
    enabled : bool, optional
        Show the bar; default :func:`interactive`.
    initial : int
        Keys already done (e.g. resumed from a checkpoint).
    description : str
    backend : {"tqdm", "rich", "text"}, optional
        Default: the first one installed.
    stream : file, optional
        Where to draw (default stderr).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = KeyProgress(3, enabled=True, backend="text", stream=out, description="fits")
    >>> bar.update(ok=1, failed=1, running=1)
    >>> bar.close()
    >>> print(out.getvalue().strip().splitlines()[-1])
    fits: 2/3 done (1 ok, 1 failed, 1 running)
    """

    def __init__(self, total, *, enabled=None, initial=0, description="fits", backend=None, stream=None):
        self.total = int(total)
        self.initial = int(initial)
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.enabled = interactive(self.stream) if enabled is None else bool(enabled)
        self._state = (self.initial, 0, 0)
        self._last = None
        self._impl = None
        self.backend = None
        if self.enabled and self.total:
            self.backend = backend or _first_installed()
            self._impl = {"tqdm": _Tqdm, "rich": _Rich, "text": _Text}[self.backend](self)
            self._draw()

    def update(self, *, ok, failed, running):
        """Show the current counts: fits done, failed, and running now."""
        self._state = (int(ok), int(failed), int(running))
        if self._impl is not None and self._state != self._last:
            self._draw()

    def _draw(self):
        self._last = self._state
        self._impl.draw(*self._state)

    def label(self, ok, failed, running) -> str:
        return f"{ok} ok, {failed} failed, {running} running"

    def close(self):
        """Finish the bar (idempotent)."""
        if self._impl is not None:
            self._impl.close()
            self._impl = None


def _first_installed() -> str:
    for name in ("tqdm", "rich"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return "text"


class _Tqdm:
    def __init__(self, owner):
        from tqdm.auto import tqdm

        self.owner = owner
        self.bar = tqdm(total=owner.total, initial=owner.initial, desc=owner.description, unit="fit",
                        file=owner.stream, dynamic_ncols=True)

    def draw(self, ok, failed, running):
        self.bar.n = ok + failed
        self.bar.set_postfix_str(self.owner.label(ok, failed, running), refresh=True)

    def close(self):
        self.bar.close()


class _Rich:
    def __init__(self, owner):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.owner = owner
        console = Console(file=owner.stream) if owner.stream is not sys.stderr else Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), console=console,
                                 transient=False)
        self.task = self.progress.add_task(owner.description, total=owner.total, completed=owner.initial,
                                           counts="")
        self.progress.start()

    def draw(self, ok, failed, running):
        self.progress.update(self.task, completed=ok + failed, counts=self.owner.label(ok, failed, running))

    def close(self):
        self.progress.stop()


class _Text:
    def __init__(self, owner):
        self.owner = owner

    def draw(self, ok, failed, running):
        o = self.owner
        print(f"{o.description}: {ok + failed}/{o.total} done ({o.label(ok, failed, running)})", file=o.stream,
              flush=True)

    def close(self):
        pass
