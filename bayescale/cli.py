"""The ``bayescale`` command line.

Commands: ``fit`` (one fit, or one per key with ``--by``), ``summary``,
``risk``, ``plot``, ``demo``. Each command has
``--help``; errors print one line and exit with status 1 (usage errors: 2).
"""

from __future__ import annotations

import argparse
import sys
import warnings

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
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}{unit}"
    return f"{x:.3g}{unit}"


def cmd_demo(args) -> int:
    import pandas as pd

    import bayescale as bs

    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    print(f"Fitting the Chinchilla law to {len(runs)} runs of Hoffmann et al. 2022 "
          "(digitised by Besiroglu et al. 2024) ...", flush=True)
    fit = bs.ScalingModel("chinchilla").fit(runs, random_seed=args.seed)
    d = fit.diagnostics()
    print(f"\nPosterior (median, {args.prob:.0%} HDI); sampling {d['sampling_seconds']:.1f} s, "
          f"max R-hat {d['max_r_hat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
          f"{d['divergences']} divergences, {d['mean_leapfrog_steps']:.1f} leapfrog steps/draw")
    table = fit.summary(args.prob)[["estimate", "lower", "upper", "r_hat", "ess_bulk"]]
    point = bs.Approach3().fit(runs)  # the published point-estimate procedure, side by side
    table["approach3"] = point.summary()["estimate"]
    print(table.to_string(float_format=lambda v: f"{v:.4g}", na_rep="-"))
    print("approach3 = Chinchilla Approach 3 point estimate (Huber loss, L-BFGS-B from the published start grid)")
    new = pd.DataFrame(DEMO_CONFIGS, columns=["N", "D"])
    pred = fit.predict(new, prob=args.prob)
    out = pd.DataFrame({
        "params": [_humanise(n) for n in pred["N"]],
        "tokens": [_humanise(v) for v in pred["D"]],
        "FLOP": [f"{c:.2e}" for c in pred["C"]],
        "loss (median)": pred["loss_median"].map(lambda v: f"{v:.3f}"),
        f"curve {args.prob:.0%}": [f"{a:.3f}-{b:.3f}" for a, b in zip(pred["curve_lower"], pred["curve_upper"])],
        f"new run {args.prob:.0%}": [f"{a:.3f}-{b:.3f}" for a, b in zip(pred["new_run_lower"], pred["new_run_upper"])],
    })
    print(f"\nPredicted loss for untrained configurations (largest bundled run: "
          f"{_humanise(runs['N'].max())} params)")
    print("curve = uncertainty of the expected loss; new run = range of one new training run")
    print(out.to_string(index=False))
    from .risk import to_text

    print("\nCompute-optimal allocation (C = 6 N D) at larger budgets")
    print(to_text(fit.allocate(DEMO_BUDGETS, args.prob)))
    best = point.allocate(DEMO_BUDGETS)
    print("Approach 3 point estimate (one number each, no interval):")
    for c, n, d, loss in zip(best["C"], best["N_median"], best["D_median"], best["loss_median"]):
        print(f"  {c:.3g} FLOP: {_humanise(n)} params, {_humanise(d)} tokens, loss {loss:.3f}")
    print(f"\nCompute needed to reach a loss of {DEMO_TARGET} (compute-optimal run)")
    print(to_text(fit.budget_for(DEMO_TARGET, args.prob)))
    print("\nNext: bayescale risk FIT.nc --budget 1e24 --target 1.9 --plan 70B:1.4T (after bayescale fit)")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _quantity(what):
    def read(text):
        from .units import parse_quantity

        try:
            return parse_quantity(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = what
    return read


def _columns(text) -> dict:
    out = {}
    for part in text.split(","):
        if part.count("=") != 1 or not all(x.strip() for x in part.split("=")):
            raise ValueError(f"--columns: cannot read {part!r}; write 'Your Name=N,Other Name=C'")
        mine, canonical = (x.strip() for x in part.split("="))
        out[mine] = canonical
    return out


def _model(args):
    import bayescale as bs

    if args.model is not None:
        if args.law is not None or args.likelihood is not None:
            raise ValueError("--model takes the law and likelihood from its spec; drop --law/--likelihood "
                             "or drop --model")
        return bs.ScalingModel.from_spec(args.model)
    return bs.ScalingModel(args.law or "chinchilla", likelihood=args.likelihood or "student_t")


def cmd_fit(args) -> int:
    import bayescale as bs
    from .files import check_write_path

    columns = _columns(args.columns) if args.columns else None
    model = _model(args)
    sampling = dict(draws=args.draws, tune=args.tune, chains=args.chains, random_seed=args.seed)
    if args.by:
        by = [c.strip() for c in args.by.split(",") if c.strip()]
        print(f"Fitting the {model.law.name} law to the runs in {args.runs}, one fit per {', '.join(by)} ...",
              file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.ConvergenceWarning)
            warnings.simplefilter("ignore", bs.BatchWarning)  # the collection printed below says the same
            fits = bs.fit_many(model, args.runs, by=by, checkpoint_dir=args.output, columns=columns, **sampling)
        print(fits)
        print()
        table = fits.diagnostics().drop(columns="error", errors="ignore")  # failures are listed above
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"\nSaved to {args.output}/. Next: bayescale summary {args.output}; "
              f"bayescale risk {args.output} --budget 1e24")
        return 0 if fits.fits else 1
    runs = model._runs(args.runs, columns)
    check_write_path(args.output, "fit")  # before the fit, not after it
    print(f"Fitting the {model.law.name} law to {runs.n_runs} runs from {args.runs} ...", file=sys.stderr, flush=True)
    fit = model.fit(runs, **sampling)
    fit.save(args.output)
    print(repr(fit).rsplit("\nNext:", 1)[0])
    print(f"\nSaved to {args.output}. Next: bayescale summary {args.output}; "
          f"bayescale risk {args.output} --budget 1e24")
    return 0


def _load(path):
    """A saved fit, or the collection of a ``fit --by`` folder."""
    from pathlib import Path

    import bayescale as bs

    return bs.FitCollection.load(path) if Path(path).is_dir() else bs.load(path)


def cmd_summary(args) -> int:
    import bayescale as bs

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

    import bayescale as bs
    from . import risk as R

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
    if args.format == "csv":
        sys.stdout.write(tables["risk"].to_csv(index=False))
    elif args.format == "json":
        print(json.dumps({k: json.loads(t.to_json(orient="records")) for k, t in tables.items()}, indent=1))
    else:
        titles = {"allocation": "Compute-optimal allocation", "risk": "Risk of the planned runs",
                  "budget_for": f"Compute needed to reach loss {args.target or 0:g}"}
        render = R.to_markdown if args.format == "md" else R.to_text
        head = "## " if args.format == "md" else ""
        print("\n\n".join(f"{head}{titles[k]}\n\n{render(t)}" for k, t in tables.items()))
    return 0


def cmd_plot(args) -> int:
    from pathlib import Path

    import bayescale as bs
    from .files import atomic_write, check_write_path

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


def _add_allocation_options(p):
    p.add_argument("--max-unique-tokens", type=_quantity("max-unique-tokens"), default=None, metavar="U",
                   help="fresh-data cap in tokens, e.g. 2T")
    p.add_argument("--flops-per-param-token", type=_quantity("flops-per-param-token"), default=6.0, metavar="K",
                   help="k in C = k N D (default 6)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayescale", description="Bayesian fitting of neural scaling laws.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the bundled Chinchilla runs and print risk bands",
                          description="Fit the bundled Chinchilla runs and print the posterior and a "
                                      "predictive table for larger, untrained configurations.")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    demo.set_defaults(func=cmd_demo)

    from .laws import available_laws
    from .specs import available_specs

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
    fit.add_argument("--by", default=None, metavar="COLUMNS",
                     help="one fit per value of these column(s), e.g. task or task,mixture; "
                          "-o is then a folder, resumable after an interruption")
    fit.add_argument("--columns", default=None, metavar="MAP",
                     help='rename columns: "Model Size=N,Training FLOP=C"')
    fit.add_argument("--seed", type=int, default=None, help="random seed (default: fresh, recorded in the file)")
    fit.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    fit.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    fit.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    fit.set_defaults(func=cmd_fit)

    summary = sub.add_parser("summary", help="print the fit report of a saved fit",
                             description="Print model, data, sampler, posterior and diagnostics of a saved fit.")
    summary.add_argument("fit", help="netCDF file written by 'bayescale fit' (or its folder, with --by)")
    summary.add_argument("--prob", type=float, default=0.9, help="HDI probability (default 0.9)")
    summary.set_defaults(func=cmd_summary)

    risk = sub.add_parser("risk", help="allocation, loss bands and P(loss <= target) at budgets and plans",
                          description="Compute-optimal allocation and predictive loss at compute budgets and "
                                      "proposed runs; with --target, the probability of reaching it and the "
                                      "compute it needs. csv prints the risk table only; json all tables.")
    risk.add_argument("fit", help="netCDF file written by 'bayescale fit' (or its folder, with --by: "
                                  "tables per key, no budget search)")
    risk.add_argument("--budget", action="append", type=_quantity("budget"), default=[], metavar="FLOP",
                      help="compute budget, e.g. 1e24 (repeatable)")
    risk.add_argument("--plan", action="append", default=[], metavar="PARAMS:TOKENS",
                      help="proposed run, e.g. 70e9:1.4e12 or 70B:1.4T (repeatable)")
    risk.add_argument("--target", type=_quantity("target"), default=None, help="target loss, e.g. 1.9")
    risk.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    risk.add_argument("--format", choices=["table", "md", "csv", "json"], default="table",
                      help="output format (default table)")
    risk.add_argument("--seed", type=int, default=None, help="seed of the run-to-run noise draws")
    _add_allocation_options(risk)
    risk.set_defaults(func=cmd_risk)

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
    plot.add_argument("--dpi", type=int, default=150, help="resolution (default 150)")
    plot.set_defaults(func=cmd_plot)
    _add_report_command(sub)
    return parser


# ------------------------------------------------------------------ report
def cmd_report(args) -> int:
    import bayescale as bs
    from .report import check_output

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
    report.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    report.add_argument("--flops-per-param-token", type=_quantity("flops-per-param-token"), default=6.0,
                        metavar="K", help="k in C = k N D (default 6)")
    report.add_argument("--backtest", action="store_true",
                        help="also refit on the smaller runs and score the largest 10%% (two more fits)")
    report.add_argument("--seed", type=int, default=None, help="seed of the predictive draws")
    report.set_defaults(func=cmd_report)


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import BayescaleError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return args.func(args)
    except (BayescaleError, ValueError, OSError) as exc:
        message = " ".join(line.strip() for line in str(exc).strip().splitlines())  # one line
        print(f"bayescale {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bayescale {args.command}: interrupted", file=sys.stderr)
        return 130
