"""Build the tidy table of downstream task accuracies of a public model ladder, with each model's loss.

Source: Gadre et al. 2024, "Language models scale reliably with over-training and on downstream
tasks" (arXiv:2403.08540), repository mlfoundations/scaling (MIT), read at a pinned commit from a
local snapshot of the repository (a bare git directory, by default under
``/work/.mirror/mlfoundations+scaling/``):

* ``exp_data/models/*.json``: 104 open_lm models (4 shapes 11M-411M x token multipliers 0.25-32 of
  20 tokens/parameter, plus 1.4B and 6.9B), trained on C4, RedPajama or RefinedWeb; N (parameters
  with embeddings), D (tokens) and the loss on the C4 eval split (``c4_val``, the paper's default).
* ``exp_data/evals/evaluation_*_heavy.json``: the 46 LLM Foundry in-context-learning evaluations of
  each model (``eval_metrics.icl``: accuracy, or exact match for generative tasks, in [0, 1]).
* ``exp_data/eval_metadata.csv``: each task's random baseline (the chance level, in percent),
  number of items, shots, category and type.

A second source, with checkpoints but without a corpus loss: the Pythia suite (Biderman et al. 2023,
"Pythia: A Suite for Analyzing Large Language Models Across Training and Scaling", arXiv:2304.01373),
repository EleutherAI/pythia (Apache-2.0), ``evals/pythia-v1/pythia-<size>[-deduped]/zero-shot/*.json``:
lm-eval zero-shot results of 8 sizes (70M-12B) on the Pile and the deduplicated Pile, each at 27
checkpoints (step 0 to 143000, 2,097,152 tokens per step), on 8 tasks; written to ``pythia_tasks.csv``
with columns ``source, suite, model, N, step, D, C, task, metric, value, stderr, chance, items,
lambada_log_ppl`` (``lambada_log_ppl``: log of the LAMBADA perplexity of the same model and step, a
task's own loss; the evaluations hold no Pile loss). ``items`` is the median over rows of
``p (1 - p) / stderr^2 + 1`` (rows with 0.05 < p < 0.95), rounded (lm-eval's stderr uses the sample
sd: this gives LAMBADA's 5153, ARC-Easy's 2376, PIQA's 1838 items).

Gadre et al. 2024: one row per (model, task), columns ``source, dataset, model, shape, N, D, C, tokens_per_param,
loss, loss_kind, task, metric, value, chance, items, shots, task_type, category, subset17``
(``subset17``: one of the 17 tasks the paper keeps for its average, those above chance at 0.154B).
``C = 6 N D``. The ladder has final checkpoints only (no intermediate steps).

Only the Python standard library, numpy and pandas are used; nothing from the snapshot is run or
unpickled (JSON and CSV read through ``git show COMMIT:path``).

Usage::

    python benchmarks/downstream/build_downstream.py [--out DIR] [--mirror DIR] [--slice FILE]

``--out`` defaults to ``$BAYESCALE_DOWNSTREAM_DIR`` or ``~/.cache/bayescale/downstream`` (it gets
``gadre2024_tasks.csv`` and ``sources.csv``); ``--mirror`` to ``$BAYESCALE_MIRROR_DIR`` or
``/work/.mirror``. ``--slice FILE`` also writes the slice bundled with the package
(``bayescale/runs/datasets/gadre2024_downstream.csv``: the RedPajama models and the tasks in
:data:`SLICE_TASKS`).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))
from build_corpus import MissingSnapshot, Repo  # noqa: E402

REPOSITORY = "mlfoundations/scaling"
COMMIT = "a003c4913793ac2ae7ef87b28ecb562955d026d5"
LICENCE = "MIT"
REFERENCE = ("Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks "
             "(arXiv:2403.08540)")
LOSS_KIND = "val: C4 eval split (c4_val), nats per token"
DATASETS = {"c4_original": "c4", "rpj": "redpajama", "rw_original": "refinedweb"}
#: The paper's 17-task subset (scaling/constants.py SUBSET): tasks above chance at 0.154B parameters.
SUBSET17 = ("bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
            "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
            "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa", "squad",
            "piqa")
#: Tasks of the bundled slice: ten of the 17 with at least 1000 items, and MMLU (5-shot), flat at chance.
SLICE_TASKS = ("arc_easy", "hellaswag", "piqa", "lambada_openai", "bigbench_qa_wikidata", "coqa", "squad",
               "boolq", "commonsense_qa", "bigbench_cs_algorithms", "mmlu")
SLICE_DATASET = "redpajama"
PYTHIA_REPOSITORY = "EleutherAI/pythia"
PYTHIA_COMMIT = "a19eecb807ec2c79a39ebf18108816e6ffffc1d5"
PYTHIA_LICENCE = "Apache-2.0"
PYTHIA_REFERENCE = ("Biderman et al. 2023, Pythia: A Suite for Analyzing Large Language Models Across Training and "
                    "Scaling (arXiv:2304.01373)")
#: Total parameters of each Pythia size (the model cards' counts).
PYTHIA_N = {"70m": 70426624, "160m": 162322944, "410m": 405334016, "1b": 1011781632, "1.4b": 1414647808,
            "2.8b": 2775208960, "6.9b": 6857302016, "12b": 11846072320}
PYTHIA_TOKENS_PER_STEP = 2097152
#: Chance level of each task as lm-eval scores it zero-shot (LAMBADA: exact next word).
PYTHIA_CHANCE = {"lambada_openai": 0.0, "piqa": 0.5, "arc_easy": 0.25, "arc_challenge": 0.25, "sciq": 0.25,
                 "winogrande": 0.5, "logiqa": 0.25, "wsc": 0.5}
PYTHIA_COLUMNS = ["source", "suite", "model", "N", "step", "D", "C", "task", "metric", "value", "stderr", "chance",
                  "items", "lambada_log_ppl"]
COLUMNS = ["source", "dataset", "model", "shape", "N", "D", "C", "tokens_per_param", "loss", "loss_kind", "task",
           "metric", "value", "chance", "items", "shots", "task_type", "category", "subset17"]


def load(repo: Repo) -> pd.DataFrame:
    meta = pd.read_csv(io.BytesIO(repo.read("exp_data/eval_metadata.csv"))).set_index("Eval Task")
    models = {}
    for path, m in repo.json_files("exp_data/models/"):
        hp = m["hyperparameters"]
        c4 = [r for r in m["results"] if r["val_data"][0].split("/")[-2] == "c4_val"]
        if len(c4) != 1:
            raise ValueError(f"{path}: expected one c4_val loss, found {len(c4)}")
        models[m["name"]] = dict(dataset=DATASETS[m["dataset_name"]], model=m["name"],
                                 shape=hp["model"].rsplit("/", 1)[-1].removesuffix(".json"),
                                 N=float(hp["params"]), D=float(hp["tokens"]),
                                 tokens_per_param=20.0 * float(hp["chinchilla_multiplier"]),
                                 loss=float(c4[0]["loss"]))
    rows = []
    for path in repo.ls("exp_data/evals/"):
        name = path.rsplit("/", 1)[1].removeprefix("evaluation_").removesuffix("_heavy.json")
        if name not in models:
            raise ValueError(f"{path}: no model json named {name}")
        base = models[name]
        for task, value in repo.json(path)["eval_metrics"]["icl"].items():
            t = meta.loc[task]
            rows.append(dict(source="gadre2024", **base, loss_kind=LOSS_KIND, task=task,
                             metric="accuracy" if t["Task Type"] in ("multiple choice", "schema") else "exact match",
                             value=float(value), chance=float(t["Random baseline"]) / 100.0,
                             items=int(t["#datapoints"]), shots=int(t["#shots"]), task_type=t["Task Type"],
                             category=t["Task Category"], subset17=task in SUBSET17))
    df = pd.DataFrame(rows)
    df["C"] = 6.0 * df["N"] * df["D"]
    return df[COLUMNS].sort_values(["dataset", "N", "D", "task"], ignore_index=True)


def load_pythia(repo: Repo) -> pd.DataFrame:
    import re

    rows = []
    for path in repo.ls("evals/pythia-v1/"):
        m = re.fullmatch(r"evals/pythia-v1/pythia-([\d.]+[mb])(-deduped|-bf16)?/zero-shot/[^/]*_step(\d+)\.json", path)
        if not m:
            continue
        size, variant, step = m.group(1), m.group(2) or "", int(m.group(3))
        res = repo.json(path)["results"]
        log_ppl = float(np.log(res["lambada_openai"]["ppl"])) if "lambada_openai" in res else np.nan
        for task, chance in PYTHIA_CHANCE.items():
            if task not in res:
                continue
            N = float(PYTHIA_N[size])
            D = float(step * PYTHIA_TOKENS_PER_STEP)
            rows.append(dict(source="biderman2023", suite="deduped" if variant == "-deduped" else "standard",
                             model=f"pythia-{size}{variant}", N=N, step=step, D=D, C=6.0 * N * D, task=task,
                             metric="acc", value=float(res[task]["acc"]), stderr=float(res[task]["acc_stderr"]),
                             chance=chance, lambada_log_ppl=log_ppl))
    df = pd.DataFrame(rows)
    p, se = df["value"], df["stderr"]
    # lm-eval's stderr is the sample sd over sqrt(n): p (1 - p) / se^2 = n - 1
    n = (p * (1 - p) / se ** 2 + 1).where((p > 0.05) & (p < 0.95) & (se > 0))
    df["items"] = df["task"].map(n.groupby(df["task"]).median().round()).astype(int)
    return df[PYTHIA_COLUMNS].sort_values(["suite", "N", "step", "task"], ignore_index=True)


def check(df: pd.DataFrame) -> list[str]:
    notes = []
    per_model = df.groupby("model")["task"].nunique()
    if (per_model != per_model.max()).any():
        notes.append(f"models with fewer tasks: {per_model[per_model != per_model.max()].to_dict()}")
    if not df["value"].between(0, 1).all():
        raise ValueError("a task value outside [0, 1]")
    below = df[df["value"] < df["chance"] - 0.05]
    if len(below):
        notes.append(f"{len(below)} (model, task) values more than 0.05 below chance "
                     f"(tasks: {', '.join(sorted(below['task'].unique())[:8])})")
    return notes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("BAYESCALE_DOWNSTREAM_DIR",
                                                    str(Path.home() / ".cache" / "bayescale" / "downstream")))
    ap.add_argument("--mirror", default=os.environ.get("BAYESCALE_MIRROR_DIR", "/work/.mirror"))
    ap.add_argument("--slice", default=None, help="also write the bundled slice to this CSV file")
    args = ap.parse_args(argv)
    try:
        repo = Repo(Path(args.mirror), REPOSITORY, COMMIT)
    except MissingSnapshot as exc:
        print(f"[skip] gadre2024: {exc}", file=sys.stderr)
        return 1
    df = load(repo)
    notes = check(df)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "gadre2024_tasks.csv", index=False, float_format="%.10g")
    sources = [dict(source="gadre2024", reference=REFERENCE, repository=REPOSITORY, commit=COMMIT,
                    paths="exp_data/models/*.json; exp_data/evals/*_heavy.json; exp_data/eval_metadata.csv",
                    licence=LICENCE, models=df["model"].nunique(), tasks=df["task"].nunique(), rows=len(df),
                    notes="; ".join(notes))]
    print(f"wrote {len(df)} rows ({df['model'].nunique()} models x {df['task'].nunique()} tasks) to {out}")
    try:
        pythia = load_pythia(Repo(Path(args.mirror), PYTHIA_REPOSITORY, PYTHIA_COMMIT))
    except MissingSnapshot as exc:
        print(f"[skip] biderman2023: {exc}", file=sys.stderr)
    else:
        pythia.to_csv(out / "pythia_tasks.csv", index=False, float_format="%.10g")
        sources.append(dict(source="biderman2023", reference=PYTHIA_REFERENCE, repository=PYTHIA_REPOSITORY,
                            commit=PYTHIA_COMMIT, paths="evals/pythia-v1/pythia-*/zero-shot/*.json",
                            licence=PYTHIA_LICENCE, models=pythia["model"].nunique(), tasks=pythia["task"].nunique(),
                            rows=len(pythia), notes="no corpus loss; lambada_log_ppl is LAMBADA's own loss"))
        print(f"wrote {len(pythia)} rows ({pythia['model'].nunique()} models x {pythia['step'].nunique()} steps x "
              f"{pythia['task'].nunique()} tasks) to {out / 'pythia_tasks.csv'}")
    pd.DataFrame(sources).to_csv(out / "sources.csv", index=False)
    for note in notes:
        print("  check:", note)
    if args.slice:
        part = df[(df["dataset"] == SLICE_DATASET) & df["task"].isin(SLICE_TASKS)]
        part = part.drop(columns=["source", "loss_kind", "subset17"])
        part.to_csv(args.slice, index=False, float_format="%.8g")
        print(f"wrote the slice: {len(part)} rows ({part['model'].nunique()} models x {part['task'].nunique()} "
              f"tasks) to {args.slice}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
