"""Pooling that keeps real differences: Porian et al. (2024)'s 15 configurations in one fit, every parameter partial.

One fit of all 15 ladders (each a group; the Chinchilla law with E, A, B, alpha and beta partially pooled)
at the default sampler settings, then :func:`bayescale.isoflop_check` per configuration: Approach 2
(isoFLOP parabolas) on the configuration's own runs against the same estimator on runs replicated from the
group's posterior predictive at the same sizes and tokens. Beside it, the same check of each configuration
fitted alone (no pooling), and the law's own ``beta / (alpha + beta)`` interval, which the isoFLOP estimate
approaches only with many well-spread levels.

Prints the fit's time (including compile on a cold cache), R-hat, bulk ESS and divergences, and per
configuration the observed exponent, the replicated 90% interval of the pooled and the alone fit, and
the law's interval. Targets (issue: "hierarchy on real data"): converged at defaults in at most 3 minutes
including compile; the observed exponent inside its group's 90% interval for at least 13 of 15.

Then three ladders x 30 runs (every tenth ladder by name from offsets 0, 1 and 2; 30 runs spread over
each ladder's compute), at defaults: the time of each fit and its diagnostics. Target: at most 30 s.

Run: ./dev bench porian_pooled [--no-alone] [--no-three]
"""

import argparse
import sys
import time
import warnings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-alone", action="store_true", help="skip the fits of each configuration alone")
    parser.add_argument("--no-three", action="store_true", help="skip the fits of three ladders x 30 runs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import pandas as pd

    import bayescale as bs
    from bayescale.runs.corpus import bundled_ladders

    pd.set_option("display.width", 220, "display.max_columns", 30)
    ladders = bundled_ladders()
    porian = ladders[ladders["source"] == "porian2024"]
    runs = porian[["ladder", "N", "D", "C", "loss"]].rename(columns={"ladder": "group"})
    runs["group"] = runs["group"].str.removeprefix("porian2024/")
    pooling = {p: "partial" for p in ("E", "A", "B", "alpha", "beta")}
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bs.ScalingModel("chinchilla", pooling=pooling).fit(runs, random_seed=args.seed, progressbar=False)
    seconds = time.perf_counter() - t
    d = fit.diagnostics()
    print(f"{runs['group'].nunique()} configurations, {len(runs)} runs, all five parameters partial: {seconds:.0f} s "
          f"(setup {fit.timing['setup_seconds']:.0f} s, sampling {d['sampling_seconds']:.0f} s); max R-hat "
          f"{d['max_r_hat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}, {d['divergences']} divergences", flush=True)
    t = time.perf_counter()
    pooled = bs.isoflop_check(fit, random_seed=args.seed)
    print(f"isoflop_check of the pooled fit: {time.perf_counter() - t:.0f} s", flush=True)
    table = pooled.rename(columns=lambda c: c if c in ("group", "levels", "a_observed") else f"pooled_{c}")
    if not args.no_alone:
        alone = []
        for label, own in runs.groupby("group", sort=False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                single = bs.ScalingModel("chinchilla").fit(own.drop(columns="group"), random_seed=args.seed,
                                                           progressbar=False)
            row = bs.isoflop_check(single, random_seed=args.seed).iloc[0].to_dict()
            row.update(group=label, converged=bool(single.converged))
            alone.append(row)
        alone = pd.DataFrame(alone)
        table = table.merge(alone[["group", "a_replicated_lower", "a_replicated_upper", "inside", "a_law_median",
                                   "inside_law", "converged"]].add_prefix("alone_").rename(
            columns={"alone_group": "group"}), on="group")
    cols = [c for c in ("group", "levels", "a_observed", "pooled_a_replicated_lower", "pooled_a_replicated_upper",
                        "pooled_inside", "pooled_p_value", "pooled_a_law_median", "pooled_a_law_lower",
                        "pooled_a_law_upper", "pooled_inside_law", "alone_a_replicated_lower",
                        "alone_a_replicated_upper", "alone_inside", "alone_a_law_median", "alone_inside_law",
                        "alone_converged") if c in table]
    print(table[cols].round(3).to_string(index=False))
    checked = table[table["levels"] >= 3]
    print(f"\nconfigurations with at least 3 usable isoFLOP levels: {len(checked)} of {len(table)}")
    print(f"observed exponent inside the pooled fit's replicated 90% interval: {int(checked['pooled_inside'].sum())}"
          f"; inside the pooled law's beta/(alpha+beta) interval: {int(checked['pooled_inside_law'].sum())}")
    if "alone_inside" in checked:
        print(f"fitted alone: inside the replicated interval {int(checked['alone_inside'].sum())}, inside the law's "
              f"{int(checked['alone_inside_law'].sum())}")
    ok = (d["max_r_hat"] <= 1.01 and d["divergences"] == 0 and d["min_ess_bulk"] >= 400 and seconds <= 180
          and checked["pooled_inside"].sum() >= 13)
    print("targets (converged in <= 3 min; >= 13 of 15 inside):", "met" if ok else "NOT met")
    if not args.no_three:
        three_ladders(runs, args.seed)
    return table


def three_ladders(runs, seed, per_ladder=30):
    """Fit three ladders x `per_ladder` runs at defaults, for three choices of ladders; print time and diagnostics."""
    import numpy as np
    import pandas as pd

    import bayescale as bs

    names = sorted(runs["group"].unique())
    print(f"\nthree ladders x {per_ladder} runs, default pooling and settings:")
    worst = 0.0
    for offset in range(3):
        pick = names[offset::5][:3]
        parts = []
        for g in pick:
            own = runs[runs["group"] == g].sort_values("C")
            keep = np.unique(np.linspace(0, len(own) - 1, per_ladder).round().astype(int))
            parts.append(own.iloc[keep])
        sub = pd.concat(parts, ignore_index=True)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bs.ScalingModel("chinchilla").fit(sub, random_seed=seed, progressbar=False)
        seconds = time.perf_counter() - t
        worst = max(worst, seconds)
        d = fit.diagnostics()
        print(f"  {seconds:5.1f} s, {fit.timing['attempts']} attempt(s), max R-hat {d['max_r_hat']:.4f}, min bulk ESS "
              f"{d['min_ess_bulk']:.0f}, {d['divergences']} divergences: {', '.join(pick)}", flush=True)
    print("target (three ladders x 30 runs in at most 30 s):", "met" if worst <= 30 else "NOT met")


if __name__ == "__main__":
    main(sys.argv[1:])
