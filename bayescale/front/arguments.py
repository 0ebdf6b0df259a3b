"""The command line's parser: the sub-commands, their options and the types that check each value.

A value out of its range is a usage error (one line, exit status 2) before any work.
"""

from __future__ import annotations

import argparse
import re
import sys

from ..base.version import __version__
from ..core.laws import available_laws
from ..fitting.model import SAMPLERS, TARGET_ACCEPT
from ..analysis.nextrun import QUANTITIES
from ..core.specs import available_specs
from ..base.units import parse_plan, parse_quantity
from ..base.validation import MAX_SEED, check_number
from .commands import (cmd_calibrate_form, cmd_demo, cmd_fit, cmd_plot, cmd_recommend, cmd_report, cmd_risk,
                       cmd_summary)

__all__ = ["build_parser"]


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
