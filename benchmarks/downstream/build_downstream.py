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

One row per (model, task), columns ``source, dataset, model, shape, N, D, C, tokens_per_param,
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
(``bayescale/datasets/gadre2024_downstream.csv``: the RedPajama models and the tasks in
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
COLUMNS = ["source", "dataset", "model", "shape", "N", "D", "C", "tokens_per_param", "loss", "loss_kind", "task",
           "metric", "value", "chance", "items", "shots", "task_type", "category", "subset17"]


def load(repo: Repo) -> pd.DataFrame:
    meta = pd.read_csv(io.BytesIO(repo.read("exp_data/eval_metadata.csv"))).set_index("Eval Task")
    models = {}
    for path in repo.ls("exp_data/models/"):
        if not path.endswith(".json"):
            continue
        m = repo.json(path)
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
    pd.DataFrame([dict(source="gadre2024", reference=REFERENCE, repository=REPOSITORY, commit=COMMIT,
                       paths="exp_data/models/*.json; exp_data/evals/*_heavy.json; exp_data/eval_metadata.csv",
                       licence=LICENCE, models=df["model"].nunique(), tasks=df["task"].nunique(), rows=len(df),
                       notes="; ".join(notes))]).to_csv(out / "sources.csv", index=False)
    print(f"wrote {len(df)} rows ({df['model'].nunique()} models x {df['task'].nunique()} tasks) to {out}")
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
