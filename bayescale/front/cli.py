"""The ``bayescale`` command line.

Commands: ``fit`` (one fit, or one per key with ``--by``), ``summary``,
``risk``, ``plot``, ``report``, ``recommend`` (the next run to train), ``calibrate-form`` (the form
uncertainty rescaled to a family's earlier ladders), ``demo``. Each command has ``--help``.

Exit status: 0 on success; 1 on an error (printed as one line), a failed key
of ``fit --by``, or, with ``--strict``, a fit that did not converge; 2 on a
usage error (an unknown option, or an option value out of its range); 130
when interrupted; 141 when the reader of the output went away (``| head``),
quietly. Every option is checked, and every output path, before any fit is
loaded or sampled. Warnings print as one line each on stderr. Progress of a
fit goes to stderr: the sampler's bars when stderr is a terminal, nothing
otherwise; ``--progress`` forces it (a line every 10 s where bars cannot
draw), ``--no-progress`` turns it off.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

from ..base.errors import BayescaleError
from .arguments import build_parser
from .commands import Unusable, form_option, load_saved_fit, strict_check

__all__ = ["main"]


def _check_path_text(path, option) -> str:
    text = os.fspath(path)
    if not text.strip():
        raise ValueError(f"{option}: empty path; give a file or folder name")
    if "\0" in text:
        raise ValueError(f"{option} {text!r}: the path contains a NUL character")
    return text


def _check_output_file(path, option="-o", *, formats=None, example="fit.nc") -> Path:
    """Refuse an output file that cannot be written, before any work: checked again when writing.

    A folder, a device or FIFO, a missing or unwritable folder, or (with
    ``formats``) an unknown suffix are refused with one error naming the path.
    An existing regular file (or a link to one) is replaced when the work is done.
    """
    text = _check_path_text(path, option)
    out = Path(text)
    if out.is_dir():
        raise ValueError(f"{option} {text!r} is a folder; give a file name, e.g. {str(out / example)!r}")
    if out.exists() and not out.is_file():
        raise ValueError(f"{option} {text!r} exists and is not a regular file (a device, FIFO or socket); "
                         "give the path of a file")
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(f"cannot write {text!r}: folder {str(folder)!r} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {text!r}: folder {str(folder)!r} is not writable")
    if formats is not None and out.suffix and out.suffix[1:].lower() not in formats:
        raise ValueError(f"{option} {text!r}: format {out.suffix[1:]!r} is not supported; "
                         f"use one of {', '.join(sorted(formats))}")
    return out


def _check_output_folder(path, option="-o") -> Path:
    """Refuse a checkpoint folder that cannot be made or written, before any work."""
    text = _check_path_text(path, option)
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {text!r} exists and is not a folder; with --by, {option} names a folder "
                         "that receives one fit file per key")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot make folder {text!r}: {str(existing)!r} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in {text!r}: folder {str(existing)!r} is not writable")
    return out


def _image_formats() -> set:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def _check_sampler(name):
    """A sampler's optional dependency, checked before the model is built."""
    import importlib.util

    if name == "numpyro" and (importlib.util.find_spec("numpyro") is None or importlib.util.find_spec("jax") is None):
        raise ValueError("--sampler numpyro needs the jax extra: pip install 'bayescale[jax]'")


def _preflight(args):
    """What every command must know before it does any work: its output can be written, its sampler runs."""
    if args.command == "fit":
        (_check_output_folder if args.by else _check_output_file)(args.output)
        _check_sampler(args.sampler)
        form_option(args.form_uncertainty)
    elif args.command == "calibrate-form":
        _check_output_file(args.output, formats={"toml"}, example="family.toml")
    elif args.command == "demo" and args.output is not None:
        _check_output_file(args.output, example="demo.nc")
    elif args.command == "plot":
        _check_output_file(args.output, formats=_image_formats(), example=f"{args.kind}.png")
    elif args.command == "recommend" and args.output:
        _check_output_file(args.output, formats=_image_formats(), example="next.png")


def _postflight(args, status):
    """``--strict`` for the commands that read a saved fit: its diagnostics decide the exit status."""
    if status == 0 and getattr(args, "strict", False) and args.command in ("summary", "risk", "plot", "recommend"):
        strict_check(args, load_saved_fit(args.fit))
    return status



#: Python-call hints in messages of the library, and their spelling on the command line.
_PY_HINTS = ((re.compile(r"columns=\{'([^']*)': '([^']*)'\}"), r'--columns "\1=\2"'),
             (re.compile(r"\bundertuned=True\b"), "--undertuned"),
             (re.compile(r"\bform_uncertainty=None\b"), "--form-uncertainty off"),
             (re.compile(r"\btarget_accept=([0-9.]+)"), r"--target-accept \1"),
             (re.compile(r"\bdrop_outliers=True\b"), "--drop-flagged"))


def cli_syntax(text) -> str:
    """`text` with the library's Python-call hints written as command-line options.

    Examples
    --------
    >>> cli_syntax("map yours with columns={'Model Size': 'N'}")
    'map yours with --columns "Model Size=N"'
    """
    for pattern, repl in _PY_HINTS:
        text = pattern.sub(repl, text)
    return text


def _one_line(text) -> str:
    return cli_syntax(" ".join(line.strip() for line in str(text).strip().splitlines()))


def _warning_printer(command):
    """``warnings.showwarning`` for the command line: category and message on one line, no source line."""

    def show(message, category, filename, lineno, file=None, line=None):
        stream = sys.stderr if file is None else file
        try:
            print(f"bayescale {command}: {category.__name__}: {_one_line(message)}", file=stream, flush=True)
        except (OSError, ValueError):  # stderr gone: nothing to tell
            pass

    return show


#: Exit status when the reader of our output went away (``| head``): 128 + SIGPIPE, as a shell reports it.
EXIT_BROKEN_PIPE = 141


class _Output:
    """``sys.stdout`` while a command runs: remembers a failed write (a full disk, a closed pipe)."""

    def __init__(self, stream):
        self._stream = stream
        self.failure = None

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as exc:
            self.failure = exc
            raise

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as exc:
            self.failure = exc
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _flush_stdout():
    """Flush stdout; on failure point it at the null device (so exit does not fail again) and return the error."""
    try:
        sys.stdout.flush()
        return None
    except OSError as exc:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        return exc


def main(argv=None) -> int:
    """Run the command line; returns the exit status.

    Examples
    --------
    >>> main(["risk", "fit.nc", "--budget", "-1e24"])  # doctest: +SKIP
    bayescale risk: error: argument --budget: budget: cannot read '-1e24' as a positive number; ...
    2
    """
    try:
        status, failure = _run(argv), _flush_stdout()
    except BrokenPipeError:
        _flush_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # writing --help or --version
        status, failure = 1, exc
        _flush_stdout()
    if failure is None:
        return status
    if isinstance(failure, BrokenPipeError):
        return EXIT_BROKEN_PIPE
    print(f"bayescale: error: cannot write the output: {failure.strerror or failure}", file=sys.stderr)
    return status or 1


def _run(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed; the status is ours
        return exc.code if isinstance(exc.code, int) else 2

    out = sys.stdout = _Output(sys.stdout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.showwarning = _warning_printer(args.command)
            _preflight(args)
            return _postflight(args, args.func(args))
    except BrokenPipeError:
        raise
    except Unusable as exc:
        print(f"bayescale {args.command}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (BayescaleError, ValueError, OSError) as exc:
        message = _one_line(exc)
        if exc is out.failure:
            message = f"cannot write the output: {exc.strerror or exc}"
        print(f"bayescale {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bayescale {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout = out._stream
