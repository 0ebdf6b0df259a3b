"""Leave-future-out test of two-step task-score predictions on Gadre et al. 2024's ladders.

For each training set (C4, RedPajama, RefinedWeb): fit the loss law (Chinchilla form, NUTS, the
default form uncertainty) and the pooled downstream link on the models below 1e9 parameters
(32 models: 11M-411M, 5-640 tokens per parameter), then predict the held-out 1.4B (20 and 640 or
80 tokens per parameter) and 6.9B models' scores on the paper's 17 above-chance tasks from their
(N, D) alone: 3 models x 17 tasks = 51 (task, model) pairs per training set, 153 in all.

Baseline: the two-step point fit with bootstrap: Approach 3 (Hoffmann's Huber fit) with 200
bootstrap resamples of the runs for the loss, and per task a least-squares sigmoid (floor at
chance, ceiling in [chance, 1]) refitted on 200 bootstrap resamples of the models, each loss
resample pushed through one link resample; percentile intervals.

Scores per task and overall: coverage of the 50% and 90% bands (the new-run band for the
Bayesian chain: one new run evaluated on the task's items), mean width of the 90% band, and the
interval score of the 90% band (width + 20 x the miss distance; lower is better).

``--pythia``: the link alone (step 2) on a second source, with a task's own loss. Pythia (8 sizes,
27 checkpoints each, no corpus loss): the link from LAMBADA's log perplexity to the 7 other tasks'
accuracies, fitted on the standard-suite checkpoints (step >= 1000) of the models up to 1.4B, predicts
the final checkpoints of 2.8B, 6.9B and 12B from their observed LAMBADA loss (21 pairs), against the
per-task least-squares sigmoid with bootstrap over the fitted rows. ``--pythia --runs``: the same with
each model's checkpoints as one run (a logit offset per model and task).

Needs the full tables: ``python benchmarks/downstream/build_downstream.py`` (writes
``~/.cache/bayescale/downstream/gadre2024_tasks.csv`` and ``pythia_tasks.csv``).

Usage::

    python benchmarks/bench_downstream.py [--datasets redpajama,...] [--form-sd X] [--draws 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

import bayescale as bs
from bayescale.fitting.downstream import DownstreamModel, link_accuracy
from bayescale.analysis.risk import risk_draws
from bayescale.analysis.taskplan import task_risk

sys.path.insert(0, str(Path(__file__).resolve().parent / "downstream"))
from build_downstream import SUBSET17  # noqa: E402

TABLE = Path(os.environ.get("BAYESCALE_DOWNSTREAM_DIR", Path.home() / ".cache" / "bayescale" / "downstream"))
SPLIT_N = 1e9
N_BOOT = 200


def interval_score(y, lo, hi, alpha):
    return (hi - lo) + (2 / alpha) * np.maximum(lo - y, 0) + (2 / alpha) * np.maximum(y - hi, 0)


def sigmoid_fit(loss, value, chance, x0):
    def resid(p):
        ceil, slope, mid = p
        return link_accuracy(loss, chance, ceil, slope, mid) - value

    lo = [chance + 1e-3, 1e-3, 0.0]
    hi = [1.0, 100.0, 10.0]
    x0 = np.clip(x0, np.array(lo) + 1e-6, np.array(hi) - 1e-6)
    return least_squares(resid, x0, bounds=(lo, hi)).x


def baseline(train, test_models, tasks, rng, prob_levels=(0.5, 0.9)):
    """Two-step point fit + bootstrap: percentile bands per (model, task)."""
    runs = train.drop_duplicates("model")[["N", "D", "loss"]].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lfit = bs.Approach3().fit(runs).bootstrap(N_BOOT, random_seed=int(rng.integers(2**31)))
        curve, _, _ = risk_draws(lfit, test_models["N"].to_numpy(), test_models["D"].to_numpy(), random_seed=1)
    curve = curve[-N_BOOT:] if curve.shape[0] > N_BOOT else curve  # the resamples' curves
    rows = []
    models = train["model"].unique()
    for t in tasks:
        g = train[train["task"] == t].set_index("model")
        chance = float(g["chance"].iloc[0])
        p0 = sigmoid_fit(g["loss"].to_numpy(), g["value"].to_numpy(), chance, [min(0.9, g["value"].max() + 0.1), 2.0,
                                                                                 float(g["loss"].min())])
        preds = np.empty((N_BOOT, len(test_models)))
        for b in range(N_BOOT):
            pick = rng.choice(models, size=len(models), replace=True)
            gb = g.loc[pick]
            pb = sigmoid_fit(gb["loss"].to_numpy(), gb["value"].to_numpy(), chance, p0)
            preds[b] = link_accuracy(curve[b % curve.shape[0]], chance, *pb)
        for j, m in enumerate(test_models["model"]):
            row = dict(model=m, task=t, median=float(np.median(preds[:, j])))
            for p in prob_levels:
                row[f"lo{int(p * 100)}"], row[f"hi{int(p * 100)}"] = np.quantile(preds[:, j], [(1 - p) / 2, (1 + p) / 2])
            rows.append(row)
    return pd.DataFrame(rows)


def bayes(train, test_models, tasks, form_sd, draws, seed):
    runs = train.drop_duplicates("model")[["N", "D", "loss"]].reset_index(drop=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lfit = bs.ScalingModel("chinchilla").fit(runs, random_seed=seed, progressbar=False)
    t1 = time.perf_counter()
    link = DownstreamModel(draws=draws, tune=draws, form_sd=form_sd).fit(train[train["task"].isin(tasks)],
                                                                         random_seed=seed)
    t2 = time.perf_counter()
    plans = list(zip(test_models["N"], test_models["D"]))
    out = []
    for p in (0.5, 0.9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = task_risk(lfit, link, plan=plans, task=tasks, prob=p, random_seed=seed)
        r["model"] = np.tile(test_models["model"].to_numpy(), len(tasks))
        out.append(r.rename(columns={"new_run_lower": f"lo{int(p * 100)}", "new_run_upper": f"hi{int(p * 100)}",
                                     "accuracy_median": "median"}))
    res = out[1][["model", "task", "median", "lo90", "hi90", "loss_median"]].merge(
        out[0][["model", "task", "lo50", "hi50"]], on=["model", "task"])
    info = dict(loss_fit_s=t1 - t0, link_fit_s=t2 - t1, loss_converged=bool(lfit.converged),
                link=link.diagnostics(), lfit=lfit, linkfit=link)
    return res, info


def score(pred, truth):
    d = pred.merge(truth, on=["model", "task"])
    y = d["value"].to_numpy()
    d["in50"] = (d["lo50"] <= y) & (y <= d["hi50"])
    d["in90"] = (d["lo90"] <= y) & (y <= d["hi90"])
    d["width90"] = d["hi90"] - d["lo90"]
    d["is90"] = interval_score(y, d["lo90"].to_numpy(), d["hi90"].to_numpy(), 0.1)
    return d


def table(d):
    per = d.groupby("task").agg(pairs=("in90", "size"), cover50=("in50", "mean"), cover90=("in90", "mean"),
                                width90=("width90", "mean"), is90=("is90", "mean"))
    per.loc["ALL"] = [len(d), d["in50"].mean(), d["in90"].mean(), d["width90"].mean(), d["is90"].mean()]
    return per


def pythia(draws, seed, runs=False):
    """The link alone on Pythia: LAMBADA log perplexity -> the other tasks, larger models held out.

    With `runs`, each model's checkpoints are one run (the table's ``run`` column): one logit offset per
    (model, task).
    """
    d = pd.read_csv(TABLE / "pythia_tasks.csv")
    d = d[(d["suite"] == "standard") & (d["task"] != "lambada_openai") & (d["step"] >= 1000)]
    d = d.assign(loss=d["lambada_log_ppl"])
    train = d[d["N"] < 2e9]
    if runs:
        train = train.assign(run=train["model"])
    test = d[(d["N"] > 2e9) & (d["step"] == d["step"].max())]
    tasks = sorted(d["task"].unique())
    t0 = time.perf_counter()
    link = DownstreamModel(draws=draws, tune=draws).fit(train, random_seed=seed)
    print(f"\n== pythia: link on {len(train)} rows ({train['model'].nunique()} models x {train['step'].nunique()} "
          f"steps), {time.perf_counter() - t0:.0f} s, {link.diagnostics()}")
    rows = []
    for p in (0.5, 0.9):
        for _, r in test.iterrows():
            pr = link.predict(r["loss"], task=r["task"], prob=p, random_seed=seed).iloc[0]
            rows.append(dict(model=r["model"], task=r["task"], p=p, lo=pr["new_run_lower"], hi=pr["new_run_upper"],
                             median=pr["accuracy_median"]))
    pr = pd.DataFrame(rows)
    bayes = pr[pr["p"] == 0.9].rename(columns={"lo": "lo90", "hi": "hi90"}).drop(columns="p").merge(
        pr[pr["p"] == 0.5][["model", "task", "lo", "hi"]].rename(columns={"lo": "lo50", "hi": "hi50"}),
        on=["model", "task"])
    rng = np.random.default_rng(seed)
    base = []
    for t in tasks:
        g = train[train["task"] == t].reset_index(drop=True)
        chance = float(g["chance"].iloc[0])
        p0 = sigmoid_fit(g["loss"].to_numpy(), g["value"].to_numpy(), chance,
                         [min(0.95, g["value"].max() + 0.1), 2.0, float(g["loss"].min())])
        tt = test[test["task"] == t]
        preds = np.empty((N_BOOT, len(tt)))
        for b in range(N_BOOT):
            gb = g.iloc[rng.integers(0, len(g), len(g))]
            preds[b] = link_accuracy(tt["loss"].to_numpy(), chance,
                                     *sigmoid_fit(gb["loss"].to_numpy(), gb["value"].to_numpy(), chance, p0))
        for j, m in enumerate(tt["model"]):
            base.append(dict(model=m, task=t, median=float(np.median(preds[:, j])),
                             lo50=np.quantile(preds[:, j], 0.25), hi50=np.quantile(preds[:, j], 0.75),
                             lo90=np.quantile(preds[:, j], 0.05), hi90=np.quantile(preds[:, j], 0.95)))
    truth = test[["model", "task", "value"]]
    for name, pred in (("bayes link", bayes), ("point link + bootstrap", pd.DataFrame(base))):
        print(f"--- pythia, {name}")
        print(table(score(pred, truth)).round(3).to_string())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="c4,redpajama,refinedweb")
    ap.add_argument("--form-sd", type=float, default=None)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--save", default=None, help="write the per-pair scores to this CSV")
    ap.add_argument("--pythia", action="store_true", help="only the link-alone test on Pythia")
    ap.add_argument("--runs", action="store_true", help="with --pythia: each model's checkpoints as one run")
    args = ap.parse_args(argv)
    if args.pythia:
        pythia(args.draws, args.seed, runs=args.runs)
        return 0
    path = TABLE / "gadre2024_tasks.csv"
    if not path.is_file():
        print(f"missing {path}: run python benchmarks/downstream/build_downstream.py first", file=sys.stderr)
        return 1
    full = pd.read_csv(path)
    full = full[full["task"].isin(SUBSET17)]
    tasks = list(SUBSET17)
    rng = np.random.default_rng(args.seed)
    scored = []
    for ds in args.datasets.split(","):
        df = full[full["dataset"] == ds]
        train, test = df[df["N"] < SPLIT_N], df[df["N"] > SPLIT_N]
        test_models = test.drop_duplicates("model")[["model", "N", "D", "loss"]].reset_index(drop=True)
        truth = test[["model", "task", "value"]]
        t0 = time.perf_counter()
        pb, info = bayes(train, test_models, tasks, args.form_sd, args.draws, args.seed)
        t1 = time.perf_counter()
        pp = baseline(train, test_models, tasks, rng)
        t2 = time.perf_counter()
        loss_err = pb.drop_duplicates("model").merge(test_models, on="model")
        print(f"\n== {ds}: {train['model'].nunique()} models fitted, {len(test_models)} held out "
              f"({', '.join(test_models['model'])}); loss fit {info['loss_fit_s']:.0f} s (converged "
              f"{info['loss_converged']}), link fit {info['link_fit_s']:.0f} s {info['link']}, baseline {t2 - t1:.0f} s")
        print("   held-out loss: observed", np.round(loss_err["loss"].to_numpy(), 3), "predicted median",
              np.round(loss_err["loss_median"].to_numpy(), 3))
        for name, pred in (("bayes", pb), ("point+bootstrap", pp)):
            d = score(pred, truth).assign(dataset=ds, method=name)
            scored.append(d)
    all_ = pd.concat(scored, ignore_index=True)
    if args.save:
        all_.to_csv(args.save, index=False)
    pd.set_option("display.width", 200)
    for name in ("bayes", "point+bootstrap"):
        d = all_[all_["method"] == name]
        print(f"\n--- {name}: per task over {d['dataset'].nunique()} training sets")
        print(table(d).round(3).to_string())
        print(f"--- {name}: per training set")
        print(d.groupby("dataset").agg(pairs=("in90", "size"), cover50=("in50", "mean"), cover90=("in90", "mean"),
                                       width90=("width90", "mean"), is90=("is90", "mean")).round(3).to_string())
    b, p = (all_[all_["method"] == m]["is90"].mean() for m in ("bayes", "point+bootstrap"))
    print(f"\ninterval score (90%): bayes {b:.4f}, point+bootstrap {p:.4f} (ratio {b / p:.3f}; met if <= 1.02)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
