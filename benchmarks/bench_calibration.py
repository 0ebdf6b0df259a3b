"""Leave-future-out calibration of every method on the bundled real ladders.

Fits each method on the training runs of every split of :func:`bayescale.calibration.calibration_splits`
(Chinchilla compute and size cuts, datablations size and epoch cuts, the 15 Porian et al. 2024
ladders) and scores its new-run bands on the held-out larger runs. Methods:

* ``bayes``: ``bs.ScalingModel(law)``, the default model;
* ``bayes fixed form``: ``bs.ScalingModel(law, form_uncertainty=None)``, the same model with the
  law's form taken as known (no discrepancy beyond the fitted runs);
* ``approach3+bootstrap``: Approach 3 with 200 bootstrap resamples (Chinchilla law only);
* ``bayes undertuned``: ``bs.ScalingModel(law, undertuned=True)``, possibly undertuned runs allowed;
* ``least squares``: least squares on log loss, no bootstrap (its band is the curve plus the
  residual quantiles).

Prints the per-split table, the pooled summary (shared Porian trainings counted once) and
coverage by extrapolation distance; writes the calibration figure and the per-run CSV.

Run: .venv/bin/python benchmarks/bench_calibration.py [--subset full|ci] [--splits porian,chinchilla]
     [--methods bayes,"least squares"] [--out /tmp/calibration]
"""

import argparse
import os
import sys
import time


def methods_available(bs, n_boot=200):
    methods = {"bayes": lambda law: bs.ScalingModel(law),
               "bayes fixed form": lambda law: bs.ScalingModel(law, form_uncertainty=None),
               "bayes undertuned": lambda law: bs.ScalingModel(law, undertuned=True)}
    methods["approach3+bootstrap"] = (
        lambda law: bs.Approach3(n_boot=n_boot, random_seed=0) if law == "chinchilla" else None)
    methods["least squares"] = lambda law: bs.LeastSquares(law)
    return methods


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subset", choices=("full", "ci"), default="full")
    parser.add_argument("--splits", default=None, help="comma-separated substrings of split names to keep")
    parser.add_argument("--methods", default=None, help="comma-separated method names to run")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--out", default="/tmp/bayescale_calibration", help="folder for the figure and CSVs")
    args = parser.parse_args(argv)

    import pandas as pd

    import bayescale as bs
    from bayescale.calibration import calibrate, calibration_splits

    methods = methods_available(bs, args.n_boot)
    if args.methods:
        keep = [m.strip() for m in args.methods.split(",")]
        methods = {k: v for k, v in methods.items() if k in keep}
    names = args.splits.split(",") if args.splits else None
    splits = calibration_splits(args.subset, names=names)
    print(f"{len(splits)} splits, methods {list(methods)}, {os.cpu_count()} cores")
    t0 = time.perf_counter()
    result = calibrate(methods, splits, progress=lambda line: print(line, flush=True))
    total = time.perf_counter() - t0

    pd.set_option("display.width", 250, "display.max_columns", 40, "display.max_rows", 500)
    cols = ["split", "method", "n_train", "n_test", "coverage_50", "coverage_80", "coverage_90", "rel_width_90",
            "interval_score_90", "crps", "mape", "beyond_mean", "converged", "seconds"]
    print("\nPer split")
    print(result.table[cols].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nPooled over held-out runs (weights: shared Porian trainings count once)")
    print(result.pooled.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nCoverage by decades beyond the fitted range")
    print(result.by_distance().to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    converged = result.table.groupby("method", sort=False)["converged"].agg(["sum", "size"])
    print("\nConverged fits: " + ", ".join(f"{m} {r['sum']}/{r['size']}" for m, r in converged.iterrows()))
    print(f"Total {total:.0f} s")

    os.makedirs(args.out, exist_ok=True)
    result.table.to_csv(os.path.join(args.out, "calibration_table.csv"), index=False)
    result.runs.to_csv(os.path.join(args.out, "calibration_runs.csv"), index=False)
    fig = result.plot()
    path = os.path.join(args.out, "calibration.png")
    fig.savefig(path, dpi=120)
    print(f"Wrote {path} and the CSVs in {args.out}")
    if args.subset == "full" and not args.splits:
        split_ladder(bs)
    return result


def split_ladder(bs, budget=1e24, cut=1e20):
    """The Chinchilla runs below and above `cut` FLOP fitted apart: do their N_opt intervals at `budget` overlap?"""
    import warnings

    runs = bs.datasets.load_chinchilla(drop_outliers=True)
    halves = {"below": runs[runs["C"] < cut], "above": runs[runs["C"] >= cut]}
    print(f"\nSplit ladder: N_opt at {budget:.0e} FLOP from the runs below and above {cut:.0e} FLOP (90% intervals)")
    for label, form in (("default", bs.FormUncertainty()), ("fixed form", None)):
        rows = {}
        for half, part in halves.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bs.ExtrapolationWarning)
                fit = bs.ScalingModel("chinchilla", form_uncertainty=form).fit(part, random_seed=1)
                rows[half] = fit.allocate(budget).iloc[0]
        lo = max(r["N_lower"] for r in rows.values())
        hi = min(r["N_upper"] for r in rows.values())
        text = ", ".join(f"{h} {r['N_median']:.3g} [{r['N_lower']:.3g}, {r['N_upper']:.3g}]" for h, r in rows.items())
        print(f"  {label:10s} {text}: {'overlap' if lo <= hi else 'NO overlap'}")


if __name__ == "__main__":
    main(sys.argv[1:])
