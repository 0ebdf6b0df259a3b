"""The command line's sub-commands: each ``cmd_<name>(args)`` runs one, given the parsed arguments.

They print to stdout and return the exit status; :mod:`bayescale.front.cli` checks the options before them and
turns their errors into one line. :mod:`bayescale.front.arguments` builds the parser that names them.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from ..across.holdout import calibrate_form
from ..base.errors import ConvergenceWarning
from ..base.version import __version__
from ..core.form import FormUncertainty, form_from_dict
from ..fitting.model import ScalingModel
from ..fitting.point import Approach3
from ..many.batch import BatchWarning, FitCollection, fit_many
from ..many.io import load
from ..runs import datasets
from ..runs.data import load_runs
from ..analysis import nextrun
from ..base.files import atomic_write, check_write_path
from ..base.progress import interactive
from ..analysis.document import check_output
from .report import next_run_candidates
from ..analysis.rendering import to_latex, to_markdown, to_text
from ..core.specs import toml_table
from ..base.units import format_count, format_flops

__all__ = ["Unusable", "cmd_calibrate_form", "cmd_demo", "cmd_fit", "cmd_plot", "cmd_recommend", "cmd_report",
           "cmd_risk", "cmd_summary", "form_option", "load_saved_fit", "strict_check"]


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
    runs = datasets.load_chinchilla(drop_outliers=True)
    print(f"Fitting the Chinchilla law to {len(runs)} runs of Hoffmann et al. 2022 "
          "(digitised by Besiroglu et al. 2024; the 5 flagged outliers dropped) ...", flush=True)
    bars, heartbeat = _progress(args)
    with _Heartbeat("demo", "fitting", heartbeat):
        fit = ScalingModel("chinchilla").fit(runs, random_seed=args.seed, progressbar=bars)
    d = fit.diagnostics()
    table = fit.summary(args.prob, ci_kind="eti")[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]
    print(f"\nPosterior (median, {args.prob:.0%} {table.attrs['interval']}); sampling {d['sampling_seconds']:.1f} s, "
          f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
          f"{d['divergences']} divergences, {d['mean_leapfrog_steps']:.1f} leapfrog steps/draw")
    point = Approach3().fit(runs)  # the published point-estimate procedure, side by side
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



class Unusable(Exception):
    """A failed key, or a ``--strict`` failure: the output was written; the exit status says not to trust it."""


def strict_check(args, fit):
    """With ``--strict``: raise naming the keys that failed or the fits that did not converge."""
    if not getattr(args, "strict", False):
        return

    if isinstance(fit, FitCollection):
        bad = [f"{key!r} failed" for key in fit.errors]
        bad += [f"{key!r} did not converge" for key, one in fit.fits.items() if not one.converged]
        if bad:
            raise Unusable(f"--strict: {len(bad)} of {len(fit.keys_all)} keys not usable: {'; '.join(bad)}")
    elif not fit.converged:
        d = fit.diagnostics()
        raise Unusable(f"--strict: the fit did not converge (max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
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
    form = form_option(getattr(args, "form_uncertainty", "on"))
    if args.model is not None:
        if args.law is not None or args.likelihood is not None or undertuned or within_run is not None:
            raise ValueError("--model takes the law, likelihood, undertuned and within_run settings from its spec; "
                             "drop --law/--likelihood/--undertuned/--within-run or drop --model")
        model = ScalingModel.from_spec(args.model)
        if form != "on":
            model = ScalingModel.from_dict({**model.to_dict(),
                                               "form_uncertainty": False if form is None else form.to_dict()})
        return model
    kwargs = {} if form == "on" else {"form_uncertainty": form}
    return ScalingModel(args.law or "chinchilla", likelihood=args.likelihood or "student_t",
                           undertuned=bool(undertuned), within_run=within_run or "auto", **kwargs)


def form_option(value):
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
    frame = load_runs(args.ladders, columns=columns, require=("N", "D")).frame
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
        warnings.simplefilter("ignore", ConvergenceWarning)
        form = calibrate_form(frame, folder=args.folder, random_seed=args.seed if args.seed is not None else 0,
                                 progress=progress)
    default = FormUncertainty().loss_scale
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
        kept, dropped = _drop_flagged(load_runs(args.runs, columns=columns, require=()), args.drop_flagged,
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
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", BatchWarning)  # the collection printed below says the same
            bars, heartbeat = _progress(args)
            with _Heartbeat("fit", "fitting", heartbeat):
                fits = fit_many(model, source, by=by, checkpoint_dir=args.output, columns=columns,
                                   progressbar=bars, **sampling)
        print(fits)
        print()
        table = fits.diagnostics().drop(columns="error", errors="ignore")  # failures are listed above
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"\nSaved to {args.output}/. Next: bayescale summary {args.output}; "
              f"bayescale risk {args.output} --budget 1e24")
        strict_check(args, fits)
        if fits.errors:  # a key that failed is a failure of the command, whatever the others did
            failed = ", ".join(map(repr, fits.errors))
            raise Unusable(f"{len(fits.errors)} of {len(fits.keys_all)} keys failed ({failed}); "
                               "their errors are listed above")
        return 0
    runs = model.read_runs(source, columns)
    check_write_path(args.output, "fit")  # before the fit, not after it
    print(f"Fitting the {model.law.name} law to {runs.n_runs} runs from {args.runs} ...", file=sys.stderr, flush=True)
    bars, heartbeat = _progress(args)
    with _Heartbeat("fit", "fitting", heartbeat):
        fit = model.fit(runs, progressbar=bars, **sampling)
    fit.save(args.output)
    print(repr(fit).rsplit("\nNext:", 1)[0])
    print(f"\nSaved to {args.output}. Next: bayescale summary {args.output}; "
          f"bayescale risk {args.output} --budget 1e24")
    strict_check(args, fit)
    return 0


def load_saved_fit(path):
    """A saved fit, or the collection of a ``fit --by`` folder."""
    from pathlib import Path

    return FitCollection.load(path) if Path(path).is_dir() else load(path)


def cmd_summary(args) -> int:
    fit = load_saved_fit(args.fit)
    if isinstance(fit, FitCollection):
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
    fit = load_saved_fit(args.fit)
    opts = dict(flops_per_param_token=args.flops_per_param_token, max_unique_tokens=args.max_unique_tokens)
    tables = {}
    if args.budget:
        tables["allocation"] = fit.allocate(args.budget, args.prob, **opts)
    tables["risk"] = fit.risk(args.budget or None, target=args.target, plan=args.plan or None, prob=args.prob,
                              random_seed=args.seed, **opts)
    if args.target is not None and not isinstance(fit, FitCollection):
        tables["budget_for"] = fit.budget_for(args.target, args.prob, random_seed=args.seed, **opts)
    if args.budget and not isinstance(fit, FitCollection):
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
        render = {"md": to_markdown, "latex": to_latex}.get(args.format, to_text)
        head = {"md": "## ", "latex": "% "}.get(args.format, "")
        print("\n\n".join(f"{head}{titles[k]}\n\n{_text_table(t, render)}" for k, t in tables.items()))
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    check_write_path(args.output, "figure")  # before the work of drawing it
    fit = load(args.fit)
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
        candidates = load_runs(args.candidates, require=("N", "D"), require_loss=False)
    else:
        candidates = nextrun.candidate_grid(args.n_range, args.d_range, points=args.points, max_cost=args.max_cost,
                                            flops_per_param_token=args.flops_per_param_token)
    fit = load(args.fit)
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
        render = {"md": to_markdown, "latex": to_latex}.get(args.format, to_text)
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



# ------------------------------------------------------------------ report
def cmd_report(args) -> int:
    fmt = check_output(args.output, args.format)  # before loading anything
    fit = load(args.fit)
    fit.report(args.output, budget=args.budget or None, target=args.target, prob=args.prob,
               flops_per_param_token=args.flops_per_param_token, backtest=args.backtest, format=fmt,
               random_seed=args.seed)
    print(f"Wrote {args.output}")
    return 0
