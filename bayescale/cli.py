"""The ``bayescale`` command line.

Commands: ``demo``. Each command has ``--help``; errors print one line and
exit with status 1.
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
    table = fit.summary(args.prob)[["median", "hdi_lower", "hdi_upper", "r_hat", "ess_bulk"]]
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayescale", description="Bayesian fitting of neural scaling laws.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the bundled Chinchilla runs and print risk bands",
                          description="Fit the bundled Chinchilla runs and print the posterior and a "
                                      "predictive table for larger, untrained configurations.")
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument("--prob", type=float, default=0.9, help="interval probability (default 0.9)")
    demo.set_defaults(func=cmd_demo)
    return parser


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
        print(f"bayescale {args.command}: error: {str(exc).strip()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bayescale {args.command}: interrupted", file=sys.stderr)
        return 130
