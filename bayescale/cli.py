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

import argparse
import os
import re
import sys
import warnings
from pathlib import Path

import bayescale as bs

from .version import __version__
from . import nextrun, risk as R
from .errors import BayescaleError
from .files import atomic_write, check_write_path
from .form import form_from_dict
from .laws import available_laws
from .model import SAMPLERS, TARGET_ACCEPT
from .nextrun import QUANTITIES
from .progress import interactive
from .report import check_output, next_run_candidates
from .risk import to_text
from .specs import available_specs, toml_table
from .units import format_count, format_flops, parse_plan, parse_quantity
from .validation import MAX_SEED, check_number

__all__ = ["main"]

DEMO_CONFIGS = [  # (N, D): larger than any bundled run (N <= 1.6e10)
    (1e9, 20e9),
    (10e9, 200e9),
    (70e9, 1.4e12),
    (175e9, 3.5e12),
    (400e9, 8e12),
]


DEMO_BUDGETS = [5.88e23, 1e24, 1e25, 1e26]
DEMO_TARGET = 1.9


def _humanise(x: float, unit: str = "") -> str:
    return format_count(x) + unit


def _flops(x: float) -> str:
    return format_flops(x)


#: Columns of a table that a terminal reader does not need (the CSV and JSON outputs keep them).
DETAIL_COLUMNS = ("beyond_C", "beyond_N", "beyond_D", "tokens_per_param_outside", "C_mcse_decades",
                  "beyond_checked")


def _text_table(table, render=None):
    """A result table for the terminal: human units (70B, 1.4T, 1e24 FLOP), detail columns left out."""
    return (render or to_text)(table.drop(columns=[c for c in DETAIL_COLUMNS if c in table.columns]))


def cmd_demo(args) -> int:
    import pandas as pd

    if args.output is not None:
        check_write_path(args.output, "fit")  # before the fit, not after it (preflight checked the folder)
    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    print(f"Fitting the Chinchilla law to {len(runs)} runs of Hoffmann et al. 2022 "
          "(digitised by Besiroglu et al. 2024; the 5 flagged outliers dropped) ...", flush=True)
    bars, heartbeat = _progress(args)
    with _Heartbeat("demo", "fitting", heartbeat):
        fit = bs.ScalingModel("chinchilla").fit(runs, random_seed=args.seed, progressbar=bars)
    d = fit.diagnostics()
    table = fit.summary(args.prob, ci_kind="eti")[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]
    print(f"\nPosterior (median, {args.prob:.0%} {table.attrs['interval']}); sampling {d['sampling_seconds']:.1f} s, "
          f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
          f"{d['divergences']} divergences, {d['mean_leapfrog_steps']:.1f} leapfrog steps/draw")
    point = bs.Approach3().fit(runs)  # the published point-estimate procedure, side by side
    table["approach3"] = point.summary()["estimate"]
    print(table.to_string(float_format=lambda v: f"{v:.4g}", na_rep="-"))
    print("approach3 = Chinchilla Approach 3 point estimate (Huber loss, L-BFGS-B from the published start grid; "
          "its sigma is a normal scale, the posterior's a Student-t scale)")
    new = pd.DataFrame(DEMO_CONFIGS, columns=["N", "D"])
    pred = fit.predict(new, prob=args.prob)
    out = pd.DataFrame({
        "params": [_humanise(n) for n in pred["N"]],
        "tokens": [_humanise(v) for v in pred["D"]],
        "compute": [_flops(c) for c in pred["C"]],
        "loss (median)": pred["loss_median"].map(lambda v: f"{v:.3f}"),
        f"curve {args.prob:.0%}": [f"[{a:.3f}, {b:.3f}]" for a, b in zip(pred["curve_lower"], pred["curve_upper"])],
        f"new run {args.prob:.0%}": [f"[{a:.3f}, {b:.3f}]" for a, b in zip(pred["new_run_lower"],
                                                                        pred["new_run_upper"])],
    })
    print(f"\nPredicted loss for untrained configurations (largest bundled run: "
          f"{_humanise(runs['N'].max())} params)")
    print("curve = uncertainty of the expected loss; new run = range of one new training run")
    print(out.to_string(index=False))

    print("\nCompute-optimal allocation (C = 6 N D) at larger budgets")
    print(_text_table(fit.allocate(DEMO_BUDGETS, args.prob)))
    best = point.allocate(DEMO_BUDGETS)
    print("Approach 3 point estimate (one number each, no interval):")
    for c, n, d, loss in zip(best["C"], best["N_median"], best["D_median"], best["loss_median"]):
        print(f"  {_flops(c)}: {_humanise(n)} params, {_humanise(d)} tokens, loss {loss:.3f}")
    print("\nWhat more compute buys along the compute-optimal frontier")
    ret = fit.marginal_returns(DEMO_BUDGETS, args.prob)
    print(pd.DataFrame({
        "compute": [_flops(c) for c in ret["C"]],
        f"loss per 10x compute ({args.prob:.0%})": [
            f"{-m:.4f} [{-hi:.4f}, {-lo:.4f}]" for m, lo, hi in zip(ret["slope_median"], ret["slope_lower"],
                                                                    ret["slope_upper"])],
        "loss per 2x compute": [f"{v:.4f}" for v in ret["gain_doubling_median"]],
        "compute for the next 0.01": [_flops(v) for v in ret["C_next_median"]],
    }).to_string(index=False))

    grid = next_run_candidates(fit)  # N and D from the ladder's median to 10x its largest, at most 10x its compute
    nxt = fit.recommend_runs(grid, quantity="n_opt", budget=DEMO_BUDGETS[1], prob=args.prob, random_seed=args.seed)
    a = nxt.attrs
    print(f"\nWhich run to train next: expected narrowing of the {args.prob:.0%} interval of N_opt at "
          f"{_flops(DEMO_BUDGETS[1])} (today {_humanise(10 ** a['lower'])} to {_humanise(10 ** a['upper'])} params)")
    shown = nxt[nxt["rank"].notna()].sort_values("rank").head(4)  # ranked by narrowing per FLOP, in order
    print(pd.DataFrame({
        "rank per FLOP": shown["rank"].astype(int).to_numpy(),
        "run": [f"{_humanise(n)} params on {_humanise(d)} tokens" for n, d in zip(shown["N"], shown["D"])],
        "compute": [_flops(c) for c in shown["C"]],
        "narrows by": [f"{v:.1%}" for v in shown["shrinkage_fraction"]],
    }).to_string(index=False))
    print(f"\nCompute needed to reach a loss of {DEMO_TARGET} (compute-optimal run)")
    print(_text_table(fit.budget_for(DEMO_TARGET, args.prob)))
    tail = "--budget 1e24 --target 1.9 --plan 70B:1.4T"
    if args.output is not None:
        fit.save(args.output)
        print(f"\nSaved the fit to {args.output}. Next: bayescale risk {args.output} {tail}")
    else:
        print(f"\nNext: bayescale demo -o demo.nc && bayescale risk demo.nc {tail}  (-o saves this fit)")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit status 2)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse takes only "-1" and "-.5" for values; "-1e24", "-70B:1T" or "-inf" after an option would be
        # read as an unknown option ("expected one argument"), hiding what is wrong with the value. No option
        # here starts with "-<digit>", so a token that starts like a number is always a value, and the check of
        # its option says what is wrong with it.
        self._negative_number_matcher = re.compile(r"^-\.?\d|^-(inf|nan)", re.IGNORECASE)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def print_help(self, file=None):
        # argparse drops write errors here, so "--help > /dev/full" would exit 0; let them reach main()
        (sys.stdout if file is None else file).write(self.format_help())


class _Version(argparse.Action):
    """``--version``: this package and the stack it runs on (read from the installed metadata only)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        stack = []
        for name in ("pymc", "arviz", "nutpie", "pytensor", "numpy"):
            try:
                stack.append(f"{name} {version(name)}")
            except PackageNotFoundError:
                continue
        python = ".".join(map(str, sys.version_info[:3]))
        sys.stdout.write(f"bayescale {__version__} (Python {python}; {', '.join(stack)})\n")
        parser.exit(0)


def _quantity(what):
    def read(text):
        try:
            return parse_quantity(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = what
    return read


def _plan(text):
    """``--plan``: checked when read (PARAMS:TOKENS, both positive), passed on as written."""
    try:
        parse_plan(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _number(option, low=None, high=None, *, integer=False, open_low=False, open_high=False):
    """An argparse ``type`` reading a number and checking its range; the error names option, value and range."""
    def read(text):
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            value = text
        try:
            return check_number(value, option, low, high, integer=integer, open_low=open_low, open_high=open_high)
        except ValueError as exc:  # argparse prefixes "argument --x: "
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{option} ")) from None

    read.__name__ = option
    return read


#: Resolution of ``plot --dpi``: the figures are 7 x 4.5 inches, so 1200 dpi is 8400 x 5400 pixels (180 MB
#: of raster); matplotlib refuses 2**16 pixels a side, and 100000 dpi fails with a MemoryError.
DPI_RANGE = (20, 1200)
#: Ranges of the sampler options: draws and tuning steps per chain, chains, parallel chains.
DRAWS_RANGE = (1, 100_000)
CHAINS_RANGE = (1, 64)
CORES_RANGE = (1, 1024)


def _seed_type():
    return _number("--seed", 0, MAX_SEED, integer=True)


def _prob_type(option="--prob"):
    return _number(option, 0, 1, open_low=True, open_high=True)


def _progress(args) -> tuple[bool, bool]:
    """``(bars, heartbeat)``: progress bars on a terminal; elapsed-time lines where bars cannot draw.

    Progress is on when stderr is a terminal (or a notebook runs us) unless
    ``--no-progress``; ``--progress`` forces it. Bars redraw in place, which
    a log file or pipe cannot show, so there the forced progress is a line
    every :data:`HEARTBEAT_SECONDS`.
    """
    terminal = interactive(sys.stderr)
    wanted = terminal if args.progress is None else bool(args.progress)
    return wanted and terminal, wanted and not terminal


#: Seconds between the progress lines of long work when stderr is not a terminal.
HEARTBEAT_SECONDS = 10.0


class _Heartbeat:
    """A line on stderr every ``every`` seconds while the block runs (``bayescale fit: fitting ... 20 s``)."""

    def __init__(self, command, what, enabled, every=None):
        import threading

        self.prefix = f"bayescale {command}: {what}"
        self.enabled = bool(enabled)
        self.every = HEARTBEAT_SECONDS if every is None else float(every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True) if self.enabled else None

    def _beat(self):
        import time

        start = time.perf_counter()
        while not self._stop.wait(self.every):
            try:
                print(f"{self.prefix} ... {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
            except (OSError, ValueError):
                return

    def __enter__(self):
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        return False


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
        _form_option(args.form_uncertainty)
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
        _strict_check(args, _load(args.fit))
    return status


class _Unusable(Exception):
    """A failed key, or a ``--strict`` failure: the output was written; the exit status says not to trust it."""


def _strict_check(args, fit):
    """With ``--strict``: raise naming the keys that failed or the fits that did not converge."""
    if not getattr(args, "strict", False):
        return

    if isinstance(fit, bs.FitCollection):
        bad = [f"{key!r} failed" for key in fit.errors]
        bad += [f"{key!r} did not converge" for key, one in fit.fits.items() if not one.converged]
        if bad:
            raise _Unusable(f"--strict: {len(bad)} of {len(fit.keys_all)} keys not usable: {'; '.join(bad)}")
    elif not fit.converged:
        d = fit.diagnostics()
        raise _Unusable(f"--strict: the fit did not converge (max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
                           f"{d['min_ess_bulk']:.0f}, {d['divergences']} divergences); see the fit report")


def _columns(text) -> dict:
    out = {}
    for part in text.split(","):
        if part.count("=") != 1 or not all(x.strip() for x in part.split("=")):
            raise ValueError(f"--columns: cannot read {part!r}; write 'Your Name=N,Other Name=C'")
        mine, canonical = (x.strip() for x in part.split("="))
        out[mine] = canonical
    return out


def _model(args):
    undertuned, within_run = getattr(args, "undertuned", False), getattr(args, "within_run", None)
    form = _form_option(getattr(args, "form_uncertainty", "on"))
    if args.model is not None:
        if args.law is not None or args.likelihood is not None or undertuned or within_run is not None:
            raise ValueError("--model takes the law, likelihood, undertuned and within_run settings from its spec; "
                             "drop --law/--likelihood/--undertuned/--within-run or drop --model")
        model = bs.ScalingModel.from_spec(args.model)
        if form != "on":
            model = bs.ScalingModel.from_dict({**model.to_dict(),
                                               "form_uncertainty": False if form is None else form.to_dict()})
        return model
    kwargs = {} if form == "on" else {"form_uncertainty": form}
    return bs.ScalingModel(args.law or "chinchilla", likelihood=args.likelihood or "student_t",
                           undertuned=bool(undertuned), within_run=within_run or "auto", **kwargs)


def _form_option(value):
    """``--form-uncertainty``: "on" (the default model), None for "off", or the model of a TOML file's table."""
    if value in ("on", "off"):
        return None if value == "off" else "on"
    import tomllib

    path = Path(value)
    if path.suffix.lower() != ".toml":
        raise ValueError(f"--form-uncertainty {value!r}: give on, off or a .toml file with a [form_uncertainty] "
                         "table (bayescale calibrate-form writes one)")
    if not path.is_file():
        raise ValueError(f"--form-uncertainty {value!r}: no such file")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--form-uncertainty {value!r}: not a TOML file ({err})") from None
    if not isinstance(table.get("form_uncertainty"), dict):
        raise ValueError(f"--form-uncertainty {value!r}: the file has no [form_uncertainty] table; tables present: "
                         f"{', '.join(map(repr, table)) or 'none'}")
    return form_from_dict(table["form_uncertainty"], source=f"{value}: [form_uncertainty]")


def cmd_calibrate_form(args) -> int:
    columns = _columns(args.columns) if args.columns else None
    frame = bs.load_runs(args.ladders, columns=columns, require=("N", "D")).frame
    if args.ladder_column not in frame.columns:
        raise ValueError(f"{args.ladders} has no column {args.ladder_column!r} naming each run's ladder; columns "
                         f"present: {', '.join(map(repr, frame.columns))}; name yours with --ladder-column")
    frame = frame.rename(columns={args.ladder_column: "ladder"})
    check_write_path(args.output, "form uncertainty")
    n = frame["ladder"].nunique()
    print(f"Cutting {n} ladder(s) of {args.ladders} at half and three quarters of their compute and fitting the "
          "smaller runs of each cut ...", file=sys.stderr, flush=True)
    progress = (lambda line: print("  " + line, file=sys.stderr, flush=True)) if args.progress is not False else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.ConvergenceWarning)
        form = bs.calibrate_form(frame, folder=args.folder, random_seed=args.seed if args.seed is not None else 0,
                                 progress=progress)
    default = bs.FormUncertainty().loss_scale
    factor = form.loss_scale / default
    lines = [f"# Form uncertainty rescaled on {n} ladder(s) of {os.path.basename(args.ladders)} "
             f"(bayescale {__version__}): loss_scale x{factor:.3g} the default's.",
             f"# Use: bayescale fit runs.csv --form-uncertainty {os.path.basename(args.output)} -o fit.nc",
             *toml_table("form_uncertainty", form.to_dict())]
    atomic_write(Path(args.output), lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8"),
                 "form uncertainty")
    print(f"loss scale x{factor:.3g} the default's ({form.loss_scale:.4g} against {default:.4g})")
    print(f"\nSaved to {args.output}. Next: bayescale fit runs.csv --form-uncertainty {args.output} -o fit.nc")
    return 0


_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f", ""}


def _drop_flagged(runs, column, source):
    """`runs` (a RunData) without the rows whose boolean `column` is true, and how many were dropped.

    Raises a ValueError naming the option, the column and what is expected, before any fit.
    """
    import numpy as np
    import pandas as pd

    frame = runs.frame
    if column not in frame.columns:
        raise ValueError(f"--drop-flagged {column}: {source} has no column {column!r}; columns present: "
                         f"{', '.join(map(repr, frame.columns))}; expected a column of true/false (true: drop the "
                         "run), e.g. dropped_in_replication in the bundled Chinchilla file")
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        flags = values.to_numpy(dtype=bool)
    else:
        text = values.map(lambda v: str(v).strip().lower() if pd.notna(v) else "")
        bad = ~text.isin(_TRUE | _FALSE)
        if bad.any():
            first = values[bad].iloc[0]
            raise ValueError(f"--drop-flagged {column}: {int(bad.sum())} value(s) of column {column!r} are not "
                             f"true/false (the first: {first!r}); expected true/false, 1/0 or yes/no")
        flags = text.isin(_TRUE).to_numpy()
    if flags.all():
        raise ValueError(f"--drop-flagged {column}: every one of the {len(flags)} runs is flagged; nothing left "
                         "to fit")
    return frame.loc[~np.asarray(flags, bool)].drop(columns=[column]), int(flags.sum())


def cmd_fit(args) -> int:
    columns = _columns(args.columns) if args.columns else None
    model = _model(args)
    source = args.runs
    if args.drop_flagged is not None:
        kept, dropped = _drop_flagged(bs.load_runs(args.runs, columns=columns, require=()), args.drop_flagged,
                                      args.runs)
        print(f"Dropped {dropped} run(s) flagged in column {args.drop_flagged!r} of {args.runs}.", file=sys.stderr,
              flush=True)
        source, columns = kept, None
    sampling = dict(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed,
                    sampler=args.sampler, target_accept=args.target_accept)
    if args.cores is not None:
        sampling["cores"] = args.cores
    if args.by:
        by = [c.strip() for c in args.by.split(",") if c.strip()]
        print(f"Fitting the {model.law.name} law to the runs in {args.runs}, one fit per {', '.join(by)} ...",
              file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.ConvergenceWarning)
            warnings.simplefilter("ignore", bs.BatchWarning)  # the collection printed below says the same
            bars, heartbeat = _progress(args)
            with _Heartbeat("fit", "fitting", heartbeat):
                fits = bs.fit_many(model, source, by=by, checkpoint_dir=args.output, columns=columns,
                                   progressbar=bars, **sampling)
        print(fits)
        print()
        table = fits.diagnostics().drop(columns="error", errors="ignore")  # failures are listed above
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"\nSaved to {args.output}/. Next: bayescale summary {args.output}; "
              f"bayescale risk {args.output} --budget 1e24")
        _strict_check(args, fits)
        if fits.errors:  # a key that failed is a failure of the command, whatever the others did
            failed = ", ".join(map(repr, fits.errors))
            raise _Unusable(f"{len(fits.errors)} of {len(fits.keys_all)} keys failed ({failed}); "
                               "their errors are listed above")
        return 0
    runs = model._runs(source, columns)
    check_write_path(args.output, "fit")  # before the fit, not after it
    print(f"Fitting the {model.law.name} law to {runs.n_runs} runs from {args.runs} ...", file=sys.stderr, flush=True)
    bars, heartbeat = _progress(args)
    with _Heartbeat("fit", "fitting", heartbeat):
        fit = model.fit(runs, progressbar=bars, **sampling)
    fit.save(args.output)
    print(repr(fit).rsplit("\nNext:", 1)[0])
    print(f"\nSaved to {args.output}. Next: bayescale summary {args.output}; "
          f"bayescale risk {args.output} --budget 1e24")
    _strict_check(args, fit)
    return 0


def _load(path):
    """A saved fit, or the collection of a ``fit --by`` folder."""
    from pathlib import Path

    return bs.FitCollection.load(path) if Path(path).is_dir() else bs.load(path)


def cmd_summary(args) -> int:
    fit = _load(args.fit)
    if isinstance(fit, bs.FitCollection):
        print(fit)
        print()
        print(fit.summary(args.prob).to_string(float_format=lambda v: f"{v:.4g}"))
    else:
        print(fit.fit_report(args.prob))
    return 0


def cmd_risk(args) -> int:
    import json

    if not args.budget and not args.plan:
        raise ValueError("give at least one --budget (FLOPs) or --plan PARAMS:TOKENS")
    fit = _load(args.fit)
    opts = dict(flops_per_param_token=args.flops_per_param_token, max_unique_tokens=args.max_unique_tokens)
    tables = {}
    if args.budget:
        tables["allocation"] = fit.allocate(args.budget, args.prob, **opts)
    tables["risk"] = fit.risk(args.budget or None, target=args.target, plan=args.plan or None, prob=args.prob,
                              random_seed=args.seed, **opts)
    if args.target is not None and not isinstance(fit, bs.FitCollection):
        tables["budget_for"] = fit.budget_for(args.target, args.prob, random_seed=args.seed, **opts)
    if args.budget and not isinstance(fit, bs.FitCollection):
        tables["returns"] = fit.marginal_returns(args.budget, args.prob, cost_per_flop=args.cost_per_flop, **opts)
    if args.format == "csv":
        sys.stdout.write(tables["risk"].to_csv(index=False))
    elif args.format == "json":
        print(json.dumps({k: json.loads(t.to_json(orient="records")) for k, t in tables.items()}, indent=1))
    else:
        titles = {"allocation": "Compute-optimal allocation", "risk": "Risk of the planned runs",
                  "budget_for": f"Compute needed to reach loss {args.target or 0:g}",
                  "returns": "What more compute buys (slope: d loss / d log10 C; gain_doubling: loss gained by 2x "
                             "compute; C_next: compute for the next 0.01 of loss)"}
        render = {"md": R.to_markdown, "latex": R.to_latex}.get(args.format, R.to_text)
        head = {"md": "## ", "latex": "% "}.get(args.format, "")
        print("\n\n".join(f"{head}{titles[k]}\n\n{_text_table(t, render)}" for k, t in tables.items()))
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    check_write_path(args.output, "figure")  # before the work of drawing it
    fit = bs.load(args.fit)
    if args.kind == "frontier":
        fig = fit.plot_frontier(args.budget or None, max_unique_tokens=args.max_unique_tokens)
    elif args.kind == "allocation":
        fig = fit.plot_allocation(args.budget or None, max_unique_tokens=args.max_unique_tokens)
    else:
        fig = fit.plot_isoflop(args.budget or None)
    out = Path(args.output)
    fmt = out.suffix[1:].lower() or None  # the temporary file's suffix is not the figure's format
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=args.dpi, format=fmt), "figure")
    print(f"Wrote {out}")
    return 0


def _range(option):
    """``LOW:HIGH`` (e.g. ``100M:2B``) as two positive numbers, low <= high."""
    def read(text):
        parts = str(text).split(":")
        try:
            if len(parts) != 2:
                raise ValueError(f"expected LOW:HIGH, e.g. 100M:2B, got {text!r}")
            low, high = (parse_quantity(v, option) for v in parts)
            if low > high:
                raise ValueError(f"expected LOW:HIGH with LOW <= HIGH, got {text!r}")
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return low, high

    read.__name__ = option
    return read


def cmd_recommend(args) -> int:
    import json

    import pandas as pd

    if args.candidates is None and (args.n_range is None or args.d_range is None):
        raise ValueError("give --candidates CSV, or --n-range LOW:HIGH and --d-range LOW:HIGH for a grid")
    if args.candidates is not None and (args.n_range is not None or args.d_range is not None):
        raise ValueError("give either --candidates or --n-range/--d-range, not both")
    if args.quantity == "budget_for" and args.target is None:
        raise ValueError("--quantity budget_for needs --target LOSS")
    if args.quantity != "budget_for" and args.budget is None:
        raise ValueError(f"--quantity {args.quantity} needs --budget FLOP")
    if args.output:
        check_write_path(args.output, "figure")
    if args.candidates is not None:
        candidates = bs.load_runs(args.candidates, require=("N", "D"), require_loss=False)
    else:
        candidates = nextrun.candidate_grid(args.n_range, args.d_range, points=args.points, max_cost=args.max_cost,
                                            flops_per_param_token=args.flops_per_param_token)
    fit = bs.load(args.fit)
    table = fit.recommend_runs(candidates, quantity=args.quantity, budget=args.budget, target=args.target,
                               prob=args.prob, outcomes=args.outcomes, flops_per_param_token=args.flops_per_param_token,
                               group=args.group, random_seed=args.seed,
                               tokens_per_param_factor=None if args.all_candidates else args.tokens_per_param_factor)
    shown = table.head(args.top) if args.top else table
    if args.format == "csv":
        sys.stdout.write(shown.to_csv(index=False))
    elif args.format == "json":
        print(json.dumps({"attrs": {k: v for k, v in table.attrs.items()},
                          "candidates": json.loads(shown.to_json(orient="records"))}, indent=1))
    else:
        a = table.attrs
        if a["quantity"] == "budget_for":
            what = f"log10 of the compute reaching loss {a['target']:g}"
        else:
            what = {"n_opt": "log10 N_opt", "loss": "the expected loss of the compute-optimal plan",
                    "new_run_loss": "the loss of one run of the compute-optimal plan"}[a["quantity"]]
            what += f" at {a['budget']:g} FLOP"
        head = {"md": "## ", "latex": "% "}.get(args.format, "")
        render = {"md": R.to_markdown, "latex": R.to_latex}.get(args.format, R.to_text)
        cols = ["rank", "N", "D", "C", "expected_width", "shrinkage", "shrinkage_information", "shrinkage_range",
                "shrinkage_fraction", "shrinkage_per_flop", "ess_min", "reliable", "beyond", "converged"]
        print(f"{head}Next run: expected shrinkage of the {a['prob']:.0%} interval of {what} "
              f"(today {a['lower']:.4g} to {a['upper']:.4g}, width {a['upper'] - a['lower']:.4g} {a['units']}; "
              f"{a['interval']}), best per FLOP first; information: what the run's outcome teaches, range: the "
              "form uncertainty shrinking as the fitted range grows"
              + (f"; {a['dropped_off_frontier']} candidates more than {a['tokens_per_param_factor']:g}x off the "
                 "compute-optimal tokens per parameter left out (--all-candidates keeps them)"
                 if a.get("dropped_off_frontier") else "") + "\n")
        shown = shown[cols].assign(reliable=shown["reliable"].map({True: "yes", False: "NO"}),
                                   rank=[str(r) if pd.notna(r) else "-" for r in shown["rank"]])
        print(render(shown))
    if args.output:
        from pathlib import Path

        fig = fit.plot_recommendations(table)
        out = Path(args.output)
        fmt = out.suffix[1:].lower() or None
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=150, format=fmt), "figure")
        print(f"Wrote {out}", file=sys.stderr)
    return 0


def _add_calibrate_form_command(sub):
    cal = sub.add_parser("calibrate-form", help="rescale the form uncertainty to your family's earlier ladders",
                         description="Cut each earlier ladder at half and three quarters of its compute, fit the "
                                     "smaller runs with the law's form known, and refit the scale of the form "
                                     "uncertainty to the larger runs; write it as a [form_uncertainty] table for "
                                     "fit --form-uncertainty.")
    cal.add_argument("ladders", help="CSV or Parquet file of earlier runs: N, D (or C), loss and a ladder column")
    cal.add_argument("-o", "--output", required=True, help="TOML file to write (e.g. family.toml)")
    cal.add_argument("--ladder-column", default="ladder", metavar="NAME",
                     help="the column naming each run's ladder (default ladder)")
    cal.add_argument("--columns", default=None, metavar="MAP", help='rename columns: "Model Size=N,Training FLOP=C"')
    cal.add_argument("--folder", default=None, help="keep the fits of the cuts here, for a later call to reuse")
    cal.add_argument("--seed", type=_seed_type(), default=None, help="random seed of the fits (default 0)")
    cal.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="a line per fitted cut on stderr (default on)")
    cal.set_defaults(func=cmd_calibrate_form)


def _add_recommend_command(sub):
    rec = sub.add_parser("recommend", help="rank candidate runs by the expected narrowing of an interval per FLOP",
                         description="Which small run to train next: for each candidate run, the expected shrinkage "
                                     "of the interval of N_opt at --budget (or of the loss there, or of the compute "
                                     "a --target needs) once it is trained, per FLOP it costs, from simulated "
                                     "outcomes and reweighted posterior draws (no refit).")
    rec.add_argument("fit", help="netCDF file written by 'bayescale fit'")
    rec.add_argument("--quantity", choices=list(QUANTITIES), default="n_opt",
                     help="whose interval to narrow (default n_opt)")
    rec.add_argument("--budget", type=_quantity("budget"), default=None, metavar="FLOP",
                     help="compute of the planned run, e.g. 1e24")
    rec.add_argument("--target", type=_quantity("target"), default=None, help="target loss (--quantity budget_for)")
    rec.add_argument("--candidates", default=None, metavar="CSV",
                     help="CSV or Parquet file of candidate runs (N, D; optional C and cost)")
    rec.add_argument("--n-range", type=_range("--n-range"), default=None, metavar="LOW:HIGH",
                     help="grid of model sizes, e.g. 100M:2B")
    rec.add_argument("--d-range", type=_range("--d-range"), default=None, metavar="LOW:HIGH",
                     help="grid of token counts, e.g. 2B:40B")
    rec.add_argument("--points", type=_number("--points", 1, 50, integer=True), default=7,
                     help="grid points along N and along D (default 7)")
    rec.add_argument("--max-cost", type=_quantity("max-cost"), default=None, metavar="FLOP",
                     help="drop grid candidates costing more")
    rec.add_argument("--prob", type=_prob_type(), default=0.9, help="interval probability (default 0.9)")
    rec.add_argument("--outcomes", type=_number("--outcomes", 10, 10_000, integer=True), default=100,
                     help="simulated outcomes per candidate (default 100)")
    rec.add_argument("--top", type=_number("--top", 1, 10**9, integer=True), default=None,
                     help="print only the best TOP candidates")
    rec.add_argument("--format", choices=["table", "md", "latex", "csv", "json"], default="table",
                     help="output format (default table)")
    rec.add_argument("-o", "--output", default=None, help="also draw the figure to this image file, e.g. next.png")
    rec.add_argument("--seed", type=_seed_type(), default=None, help="seed of the simulated outcomes")
    rec.add_argument("--group", default=None, metavar="LABEL",
                     help="fit with groups: the fitted group the candidate runs would join")
    rec.add_argument("--flops-per-param-token", type=_quantity("flops-per-param-token"), default=6.0, metavar="K",
                     help="k in C = k N D (default 6)")
    rec.add_argument("--tokens-per-param-factor", type=_number("--tokens-per-param-factor", 1, 1e12), default=10.0,
                     metavar="F", help="leave out candidates whose tokens per parameter lie more than F times off "
                                       "the compute-optimal one at their compute (default 10)")
    rec.add_argument("--all-candidates", action="store_true",
                     help="keep every candidate, however far from the compute-optimal tokens per parameter")
    _add_strict_option(rec)
    rec.set_defaults(func=cmd_recommend)


def _add_allocation_options(p):
    p.add_argument("--max-unique-tokens", type=_quantity("max-unique-tokens"), default=None, metavar="U",
                   help="fresh-data cap in tokens, e.g. 2T")
    p.add_argument("--flops-per-param-token", type=_quantity("flops-per-param-token"), default=6.0, metavar="K",
                   help="k in C = k N D (default 6)")


def _add_progress_option(p):
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress of the sampling on stderr (default: on when stderr is a terminal)")


def _add_strict_option(p, what="the fit"):
    p.add_argument("--strict", action="store_true",
                   help=f"exit with status 1 if {what} did not converge (or, for a folder, any key failed); "
                        "the output is written all the same")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayescale", description="Bayesian fitting of neural scaling laws.",
                     epilog="Exit status: 0 ok; 1 error, failed key, or --strict and not converged; "
                            "2 usage error; 130 interrupted.")
    parser.add_argument("--version", action=_Version, help="print the versions of bayescale and its stack")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo_command, _add_fit_command, _add_calibrate_form_command, _add_summary_command,
                _add_risk_command, _add_plot_command, _add_report_command, _add_recommend_command):
        add(sub)
    return parser



def _add_demo_command(sub) -> None:
    """The ``demo`` sub-command: fit the bundled Chinchilla runs, print risk bands."""
    demo = sub.add_parser("demo", help="fit the bundled Chinchilla runs and print risk bands",
                          description="Fit the bundled Chinchilla runs and print the posterior and a "
                                      "predictive table for larger, untrained configurations.")
    demo.add_argument("--seed", type=_seed_type(), default=1, help="random seed (default 1)")
    demo.add_argument("--prob", type=_prob_type(), default=0.9, help="interval probability (default 0.9)")
    demo.add_argument("-o", "--output", default=None, metavar="FIT.nc",
                      help="also save the fit to this netCDF file, for bayescale risk, summary and report")
    _add_progress_option(demo)
    demo.set_defaults(func=cmd_demo)


def _add_fit_command(sub) -> None:
    """The ``fit`` sub-command: fit a law to a runs file (one fit per key with ``--by``)."""
    fit = sub.add_parser("fit", help="fit a scaling law to runs in a CSV or Parquet file",
                         description="Fit a scaling law to training runs and save the posterior to a netCDF file.")
    fit.add_argument("runs", help="CSV or Parquet file with N, D (or C) and loss columns")
    fit.add_argument("-o", "--output", required=True, help="netCDF file to write (e.g. fit.nc); a folder with --by")
    fit.add_argument("--law", default=None, choices=available_laws(), help="scaling law (default chinchilla)")
    fit.add_argument("--likelihood", default=None, choices=["student_t", "normal"],
                     help="noise model on log loss (default student_t)")
    fit.add_argument("--model", default=None, metavar="SPEC",
                     help=f"model spec: a shipped name ({', '.join(available_specs())}) or a .toml file; "
                          "sets law, likelihood, priors and pooling")
    fit.add_argument("--undertuned", action="store_true",
                     help="allow possibly undertuned runs (a run may sit above the law by a non-negative excess); "
                          "columns sweep_complete (False) or undertuned (True) flag doubtful rungs")
    fit.add_argument("--within-run", default=None, choices=["auto", "offset", "none"],
                     help="checkpoint rows sharing a 'run' id: a per-run offset (auto: when a run has several "
                          "rows; none: rows as independent runs)")
    fit.add_argument("--by", default=None, metavar="COLUMNS",
                     help="one fit per value of these column(s), e.g. task or task,mixture; "
                          "-o is then a folder, resumable after an interruption")
    fit.add_argument("--columns", default=None, metavar="MAP",
                     help='rename columns: "Model Size=N,Training FLOP=C" (D is derived as C / (6 N) when missing)')
    fit.add_argument("--drop-flagged", nargs="?", const="dropped_in_replication", default=None, metavar="COLUMN",
                     help="leave out the runs flagged true in this column of the file (default column: "
                          "dropped_in_replication, the 5 outliers of the bundled Chinchilla file)")
    fit.add_argument("--form-uncertainty", default="on", metavar="{on,off,FILE.toml}",
                     help="off: take the law's form as exact beyond the fitted runs (bands: parameter "
                          "uncertainty only); a .toml file with a [form_uncertainty] table (as written by "
                          "bayescale calibrate-form): that model; default on")
    fit.add_argument("--seed", type=_seed_type(), default=None,
                     help="random seed (default: fresh, recorded in the file)")
    fit.add_argument("--draws", type=_number("--draws", *DRAWS_RANGE, integer=True), default=1000,
                     help="draws per chain (default 1000)")
    fit.add_argument("--tune", type=_number("--tune", *DRAWS_RANGE, integer=True), default=1000,
                     help="tuning steps per chain (default 1000)")
    fit.add_argument("--chains", type=_number("--chains", *CHAINS_RANGE, integer=True), default=4,
                     help="chains (default 4)")
    fit.add_argument("--cores", type=_number("--cores", *CORES_RANGE, integer=True), default=None,
                     help="chains sampled in parallel (default: all cores; with --by, 1 per fit)")
    fit.add_argument("--sampler", choices=list(SAMPLERS), default="nutpie",
                     help="NUTS implementation (default nutpie; numpyro needs the jax extra)")
    fit.add_argument("--target-accept", type=_prob_type("--target-accept"), default=TARGET_ACCEPT,
                     help=f"target acceptance rate of the step-size adaptation (default {TARGET_ACCEPT})")
    _add_progress_option(fit)
    _add_strict_option(fit, "the fit (or any key's fit)")
    fit.set_defaults(func=cmd_fit)


def _add_summary_command(sub) -> None:
    """The ``summary`` sub-command: the fit report of a saved fit."""
    summary = sub.add_parser("summary", help="print the fit report of a saved fit",
                             description="Print model, data, sampler, posterior and diagnostics of a saved fit.")
    summary.add_argument("fit", help="netCDF file written by 'bayescale fit' (or its folder, with --by)")
    summary.add_argument("--prob", type=_prob_type(), default=0.9, help="interval probability (default 0.9)")
    _add_strict_option(summary)
    summary.set_defaults(func=cmd_summary)


def _add_risk_command(sub) -> None:
    """The ``risk`` sub-command: allocation, loss bands and P(loss <= target) of a saved fit."""
    risk = sub.add_parser("risk", help="allocation, loss bands and P(loss <= target) at budgets and plans",
                          description="Compute-optimal allocation and predictive loss at compute budgets and "
                                      "proposed runs; with --target, the probability of reaching it and the "
                                      "compute it needs. csv prints the risk table only; json all tables.")
    risk.add_argument("fit", help="netCDF file written by 'bayescale fit' (or its folder, with --by: "
                                  "tables per key, no budget search)")
    risk.add_argument("--budget", action="append", type=_quantity("budget"), default=[], metavar="FLOP",
                      help="compute budget, e.g. 1e24 (repeatable)")
    risk.add_argument("--plan", action="append", type=_plan, default=[], metavar="PARAMS:TOKENS",
                      help="proposed run, e.g. 70e9:1.4e12 or 70B:1.4T (repeatable)")
    risk.add_argument("--target", type=_quantity("target"), default=None, help="target loss, e.g. 1.9")
    risk.add_argument("--prob", type=_prob_type(), default=0.9, help="interval probability (default 0.9)")
    risk.add_argument("--format", choices=["table", "md", "latex", "csv", "json"], default="table",
                      help="output format (default table; latex: booktabs tables with captions)")
    risk.add_argument("--seed", type=_seed_type(), default=None, help="seed of the run-to-run noise draws")
    risk.add_argument("--cost-per-flop", type=_quantity("cost-per-flop"), default=None, metavar="MONEY",
                      help="price of one FLOP: adds the cost of the next 0.01 of loss and of a doubling")
    _add_allocation_options(risk)
    _add_strict_option(risk)
    risk.set_defaults(func=cmd_risk)


def _add_plot_command(sub) -> None:
    """The ``plot`` sub-command: a picture of a saved fit to an image file."""
    plot = sub.add_parser("plot", help="draw the frontier, allocation or isoFLOP picture of a saved fit",
                          description="Draw a picture of a saved fit to an image file (format from the suffix).")
    plot.add_argument("fit", help="netCDF file written by 'bayescale fit'")
    plot.add_argument("-o", "--output", required=True, help="image file to write, e.g. fig.png or fig.pdf")
    plot.add_argument("--kind", choices=["frontier", "allocation", "isoflop"], default="frontier",
                      help="picture (default frontier)")
    plot.add_argument("--budget", action="append", type=_quantity("budget"), default=[], metavar="FLOP",
                      help="budget to mark (isoflop: compute of a curve); repeatable")
    plot.add_argument("--max-unique-tokens", type=_quantity("max-unique-tokens"), default=None, metavar="U",
                      help="fresh-data cap in tokens (frontier, allocation)")
    plot.add_argument("--dpi", type=_number("--dpi", *DPI_RANGE, integer=True), default=150,
                      help=f"resolution, {DPI_RANGE[0]} to {DPI_RANGE[1]} (default 150)")
    _add_strict_option(plot)
    plot.set_defaults(func=cmd_plot)

# ------------------------------------------------------------------ report
def cmd_report(args) -> int:
    fmt = check_output(args.output, args.format)  # before loading anything
    fit = bs.load(args.fit)
    fit.report(args.output, budget=args.budget or None, target=args.target, prob=args.prob,
               flops_per_param_token=args.flops_per_param_token, backtest=args.backtest, format=fmt,
               random_seed=args.seed)
    print(f"Wrote {args.output}")
    return 0


def _add_report_command(sub):
    report = sub.add_parser("report", help="write one self-contained HTML (or Markdown) report of a saved fit",
                            description="Write one self-contained report of a saved fit: what was fitted, "
                                        "diagnostics, posterior beside the point estimate, allocation and risk "
                                        "tables, figures, caveats. HTML embeds its figures and needs no network.")
    report.add_argument("fit", help="netCDF file written by 'bayescale fit'")
    report.add_argument("-o", "--output", required=True, help="file to write: report.html or report.md")
    report.add_argument("--format", choices=["html", "markdown"], default=None,
                        help="default from the suffix of --output")
    report.add_argument("--budget", action="append", type=_quantity("budget"), default=[], metavar="FLOP",
                        help="compute budget of the tables, e.g. 1e24 (repeatable; default: 1, 10 and 100 times "
                             "the power of ten above the largest fitted run)")
    report.add_argument("--target", type=_quantity("target"), default=None, help="target loss, e.g. 1.9")
    report.add_argument("--prob", type=_prob_type(), default=0.9, help="interval probability (default 0.9)")
    report.add_argument("--flops-per-param-token", type=_quantity("flops-per-param-token"), default=6.0,
                        metavar="K", help="k in C = k N D (default 6)")
    report.add_argument("--backtest", action="store_true",
                        help="also refit on the smaller runs and score the largest 10%% (two more fits)")
    report.add_argument("--seed", type=_seed_type(), default=None, help="seed of the predictive draws")
    report.set_defaults(func=cmd_report)


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
    except _Unusable as exc:
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
