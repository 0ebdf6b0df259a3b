"""Build the calibration corpus of published scaling-law training runs.

Reads each source from a local snapshot of its public repository (a bare git directory, by
default under ``/work/.mirror/<owner>+<name>/``), at a pinned commit, and writes one tidy table:

* ``runs.csv``: one row per training run (final or last-checkpoint loss), columns
  ``source, ladder, run, N, D, C, loss, U, loss_kind, isoflop_level``.
* ``ladders.csv``: one row per ladder with its size, ranges and the checks below.
* ``sources.csv``: one row per source (paper / group) with reference, repository, commit, paths,
  licence, counts and notes.

Only the Python standard library, numpy and pandas are used. Nothing is unpickled and no code
from the snapshots is run: the script reads CSV, JSON and notebook-JSON text through
``git show COMMIT:path``.

Usage::

    python benchmarks/corpus/build_corpus.py [--out DIR] [--mirror DIR]

``--out`` defaults to ``$BAYESCALE_CORPUS_DIR`` or ``~/.cache/bayescale/corpus``; ``--mirror``
to ``$BAYESCALE_MIRROR_DIR`` or ``/work/.mirror``. A source whose snapshot (or pinned commit) is
missing is skipped with a message naming the repository to fetch.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

RUN_COLUMNS = ["source", "ladder", "run", "N", "D", "C", "loss", "U", "loss_kind", "isoflop_level"]
MIN_RUNS = 8  # a ladder meets the corpus criteria with >= 8 runs ...
MIN_DECADES = 1.0  # ... spanning >= 1 decade in C or in N


# --------------------------------------------------------------------------------------------
# Snapshot access
# --------------------------------------------------------------------------------------------


class MissingSnapshot(RuntimeError):
    pass


class Repo:
    """A bare git snapshot of ``owner/name`` read at one pinned commit."""

    def __init__(self, mirror: Path, slug: str, commit: str):
        self.slug = slug
        self.commit = commit
        self.git_dir = self._locate(mirror, slug)
        if self.git_dir is None:
            raise MissingSnapshot(f"no snapshot of {slug} under {mirror}: fetch github:{slug} first")
        ok = subprocess.run(["git", "--git-dir", str(self.git_dir), "cat-file", "-e", commit + "^{commit}"],
                            capture_output=True)
        if ok.returncode != 0:
            raise MissingSnapshot(f"snapshot of {slug} at {self.git_dir} lacks commit {commit}: "
                                  f"fetch github:{slug} again")

    @staticmethod
    def _locate(mirror: Path, slug: str) -> Path | None:
        base = mirror / slug.replace("/", "+")
        for cand in (base / "repo", base, base / ".git"):
            if (cand / "HEAD").is_file() and (cand / "objects").is_dir():
                return cand
        if base.is_dir():
            for head in sorted(base.rglob("HEAD")):
                if (head.parent / "objects").is_dir():
                    return head.parent
        return None

    def read(self, path: str) -> bytes:
        out = subprocess.run(["git", "--git-dir", str(self.git_dir), "show", f"{self.commit}:{path}"],
                             capture_output=True)
        if out.returncode != 0:
            raise MissingSnapshot(f"{self.slug}@{self.commit[:8]} has no {path}")
        return out.stdout

    def text(self, path: str) -> str:
        return self.read(path).decode("utf-8")

    def csv(self, path: str, **kw) -> pd.DataFrame:
        return pd.read_csv(io.BytesIO(self.read(path)), **kw)

    def json(self, path: str):
        return json.loads(self.text(path))

    def ls(self, prefix: str) -> list[str]:
        out = subprocess.run(["git", "--git-dir", str(self.git_dir), "ls-tree", "-r", "--name-only",
                              self.commit, prefix], capture_output=True, text=True)
        return [p for p in out.stdout.splitlines() if p]

    def json_files(self, prefix: str):
        """``(path, parsed JSON)`` of every ``.json`` file under `prefix`."""
        for path in self.ls(prefix):
            if path.endswith(".json"):
                yield path, self.json(path)


# --------------------------------------------------------------------------------------------
# Notebook HTML tables (pandas.read_html would need lxml; use the standard library parser)
# --------------------------------------------------------------------------------------------


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def notebook_table(nb: dict, source_contains: str, required: list[str]) -> pd.DataFrame:
    """The HTML table printed by the first cell whose source contains ``source_contains``."""
    for cell in nb["cells"]:
        if source_contains not in "".join(cell.get("source", [])):
            continue
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html")
            if not html:
                continue
            parser = _Tables()
            parser.feed("".join(html))
            for table in parser.tables:
                header = table[0]
                if all(col in header for col in required):
                    if any(row and row[0] == "..." for row in table[1:]):
                        raise ValueError(f"table under {source_contains!r} is truncated")
                    return pd.DataFrame([r for r in table[1:] if len(r) == len(header)], columns=header)
    raise ValueError(f"no table with {required} under a cell containing {source_contains!r}")


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@dataclass
class Source:
    name: str
    reference: str
    repository: str
    commit: str
    paths: list[str]
    licence: str
    notes: str
    loader: Callable[["Repo"], pd.DataFrame]
    exclusions: list[str] = field(default_factory=list)


def _frame(**cols) -> pd.DataFrame:
    df = pd.DataFrame(cols)
    for col in RUN_COLUMNS:
        if col not in df:
            df[col] = np.nan
    return df[RUN_COLUMNS]


# --- Gadre et al. 2024 ---------------------------------------------------------------------

GADRE_DATASETS = {"c4_original": "c4", "rpj": "redpajama", "rw_original": "refinedweb"}


def load_gadre(repo: Repo) -> pd.DataFrame:
    rows = []
    for path, m in repo.json_files("exp_data/models/"):
        hp = m["hyperparameters"]
        c4 = [r for r in m["results"] if r["val_data"][0].split("/")[-2] == "c4_val"]
        if len(c4) != 1:
            continue
        N, D = float(hp["params"]), float(hp["tokens"])
        rows.append(dict(source="gadre2024", ladder=f"gadre2024/{GADRE_DATASETS[m['dataset_name']]}",
                         run=m["name"], N=N, D=D, C=6.0 * N * D, loss=float(c4[0]["loss"]),
                         loss_kind="val: C4 eval split (c4_val)"))
    # Hyperparameter grid at 20 tokens/parameter: keys model-…-tokens-warmup-cooldown; keep the best
    # warmup per architecture (one run per shape).
    grid = repo.json("exp_data/grid.json")
    best: dict[str, tuple[float, str, float]] = {}
    for key, loss in grid.items():
        parts = key.split("-")
        shape, tokens = parts[0], float(parts[5])
        if shape not in best or loss < best[shape][0]:
            best[shape] = (float(loss), key, tokens)
    for shape, (loss, key, tokens) in best.items():
        N = tokens / 20.0
        rows.append(dict(source="gadre2024", ladder="gadre2024/grid_20tpp", run=key, N=N, D=tokens,
                         C=6.0 * N * tokens, loss=loss,
                         loss_kind="val: set not documented in grid.json (best warmup per shape)"))
    return _frame(**pd.DataFrame(rows).to_dict("list"))


# --- Li et al. 2025 ------------------------------------------------------------------------

LI_BAD_SWEEP = "2024_11_10-23_08_29_sweep_test"  # misfitting_17m: identical losses under different lrs


def load_li(repo: Repo) -> pd.DataFrame:
    d = repo.csv("data/scaling_results_last_ckpt_only.csv", dtype={"C": str, "C_6ND": str})
    d = d[d["portion_steps_elapsed"] == 1.0]
    d = d[~((d["model"] == "misfitting_17m") & (d["sweep"] == LI_BAD_SWEEP))]
    lr = d["peak_lr"].map(lambda v: f"{v:g}")
    return _frame(source="li2025", ladder="li2025/lr" + lr, run=d["model"] + "_" + d["D"].astype(str) + "_lr" + lr
                  + "_" + d["sweep"], N=d["N"].astype(float), D=d["D"].astype(float),
                  C=d["C"].astype(float), loss=d["C4 Eval Loss"].astype(float),
                  loss_kind="val: C4 eval loss")


# --- xLSTM scaling laws (Beck et al. 2025) --------------------------------------------------


def load_xlstm(repo: Repo) -> pd.DataFrame:
    cols = ["num_params", "num_tokens_training", "num_flops_training", "val/.dclm_loss"]
    nb = repo.json("notebooks/paper_plots/token_param_ratio_plots--slopes.ipynb")
    ml = notebook_table(nb, "mlstm_scl_df_tfla[columns]", cols + ["Model Size"])
    ml["run"] = "mlstm_" + ml["Model Size"] + "_D" + ml["num_tokens_training"]
    nb = repo.json("notebooks/run_dataset_tables.ipynb")
    ll = notebook_table(nb, 'df[(df["experiment_set"] == "tokenparam") & (df["model_type"] == "llama")]',
                        cols + ["name"])
    ll["run"] = ll["name"]
    out = []
    for df, arch in ((ml, "mlstm"), (ll, "llama")):
        out.append(_frame(source="xlstm2025", ladder=f"xlstm2025/{arch}_tokenparam_ctx8192", run=df["run"],
                          N=df["num_params"].astype(float), D=df["num_tokens_training"].astype(float),
                          C=df["num_flops_training"].astype(float), loss=df["val/.dclm_loss"].astype(float),
                          loss_kind="val: DCLM validation loss"))
    return pd.concat(out, ignore_index=True)


# --- Marin scaling ladders (vendored by Open-Athena) ----------------------------------------

MARIN_FILES = {"comma": "isoflop-comma.csv", "dclm": "isoflop-dclm.csv", "nemotron": "isoflop-nemotron.csv"}
MARIN_DIR = "data/isoflops/extract/marin_202603/raw/"


def load_marin(repo: Repo) -> pd.DataFrame:
    out = []
    for ds, fname in MARIN_FILES.items():
        x = repo.csv(MARIN_DIR + fname)
        label = x["Name"].str.extract(r"-(\d+(?:\.\d+)?e[+-]\d+)-")[0].astype(float)
        iso = label.where(x["Name"].str.startswith("isoflop-"))
        out.append(_frame(source="marin2026", ladder=f"marin2026/{ds}", run=x["Name"],
                          N=x["parameter_count"].astype(float), D=x["throughput/total_tokens"].astype(float),
                          C=x["throughput/total_gflops"].astype(float) * 1e9,
                          loss=x["eval/paloma/macro_loss"].astype(float),
                          loss_kind="val: Paloma macro-average loss", isoflop_level=iso))
    return pd.concat(out, ignore_index=True)


# --- Llama 3 IsoFLOP points (digitised) -----------------------------------------------------


def load_llama3(repo: Repo) -> pd.DataFrame:
    x = repo.csv("isoflops_points.csv")
    C = x["compute_budget"].astype(float)
    D = x["training_tokens"].astype(float)
    return _frame(source="llama3_2024", ladder="llama3_2024/isoflops", run="llama3_C" + x["compute_budget"].astype(str)
                  + "_D" + D.map(lambda v: f"{v:.4g}"), N=C / (6.0 * D), D=D, C=C,
                  loss=x["validation_loss"].astype(float),
                  loss_kind="val: validation loss as plotted in Llama 3 Fig. 2 (digitised)", isoflop_level=C)


# --- Clark et al. 2022, routed language models ---------------------------------------------

CLARK_TOKENS_PER_STEP = 256 * 2048  # assumed, see notes


def load_clark(repo: Repo) -> pd.DataFrame:
    x = pd.read_csv(io.BytesIO(gzip.decompress(repo.read("data/curves.csv.gz"))))
    f = x.loc[x.groupby("hyper_id")["step"].idxmax()].copy()
    dense = (f["router_type"] == "Dense") & (f["flop_increase"] == 1.0)
    routed = (f["router_type"] != "Dense") & (f["k"] == 1) & (f["routing_frequency"] == 0.5)
    f = f[dense | routed]
    ladder = np.where(f["router_type"] == "Dense", "clark2022/dense",
                      "clark2022/" + f["router_type"].str.lower().str.replace("-", "") + "_E"
                      + f["num_experts"].astype(str))
    return _frame(source="clark2022", ladder=ladder,
                  run="hyper" + f["hyper_id"].astype(str) + "_" + f["model_size_label"] + "_seed" + f["seed"].astype(str),
                  N=f["dense_parameter_count"].astype(float), D=f["step"].astype(float) * CLARK_TOKENS_PER_STEP,
                  C=3.0 * f["flops_per_step"].astype(float) * f["step"].astype(float),
                  loss=f["loss_validation"].astype(float), loss_kind="val: held-out split of the training corpus")


# --- Bhagia et al. 2024, OLMo model ladder -------------------------------------------------

OLMO_LADDERS = {"peteish-moreeval": "cosine", "peteish-moreeval-decay": "wsd_decay"}
OLMO_LOSS = "eval/c4_en-validation/CrossEntropyLoss"


def load_olmo(repo: Repo) -> pd.DataFrame:
    n_of = {}
    for cfg in ("scripts/scaling/decay.json",):
        for entry in repo.json(cfg).values():
            size = entry["path"].rsplit("/", 1)[1].split("-")[0]
            n_of[size] = float(entry["n"])
    rows = []
    for folder, tag in OLMO_LADDERS.items():
        for path in repo.ls(f"scripts/scaling/data/{folder}/"):
            fname = path.rsplit("/", 1)[1]
            m = re.fullmatch(r"(\d+[MB])-([\d.]+xC)(-rerun)?\.csv", fname)
            if not m or m.group(3):  # skip peteish*_eval targets and the 1xC re-runs (same config)
                continue
            x = repo.csv(path)
            x = x.dropna(subset=[OLMO_LOSS, "throughput/total_tokens", "throughput/total_training_Gflops"])
            last = x.iloc[-1]
            rows.append(dict(source="bhagia2024", ladder=f"bhagia2024/peteish_{tag}", run=f"{folder}/{fname[:-4]}",
                             N=n_of[m.group(1)], D=float(last["throughput/total_tokens"]),
                             C=float(last["throughput/total_training_Gflops"]) * 1e9, loss=float(last[OLMO_LOSS]),
                             loss_kind="val: C4 (en) validation cross-entropy"))
    return _frame(**pd.DataFrame(rows).to_dict("list"))


SOURCES = [
    Source("gadre2024",
           "Gadre et al. 2024, Language models scale reliably with over-training and on downstream tasks (arXiv:2403.08540)",
           "mlfoundations/scaling", "a003c4913793ac2ae7ef87b28ecb562955d026d5",
           ["exp_data/models/*.json", "exp_data/grid.json"], "MIT",
           "N = params incl. embeddings (hyperparameters.params); D = tokens; C = 6ND. Ladders c4/redpajama/"
           "refinedweb: 4 shapes (11M-411M) x token multipliers 0.25-32 plus open_lm 1B/7B, loss on the C4 eval "
           "split (the paper's default). grid_20tpp: hyperparameter grid at 20 tokens/param, N = tokens/20, "
           "best warmup per shape kept (min over 1-4 warmups); its eval set and data set are not documented.",
           load_gadre),
    Source("li2025",
           "Li, Kudugunta & Zettlemoyer 2025, (Mis)Fitting Scaling Laws: A Survey of Scaling Law Fitting Techniques "
           "in Deep Learning (ICLR 2025, arXiv:2502.18969)",
           "hadasah/scaling_laws", "1f3708c0a12df0effb0ee906b1da5f9f0ff4f4f1",
           ["data/scaling_results_last_ckpt_only.csv"], "not stated",
           "Own open_lm runs, final checkpoints; one ladder per peak learning rate. N = params incl. embeddings "
           "(N_no_emb also in the file); C as given (= 6ND with that N); loss = C4 eval loss.",
           load_li,
           ["misfitting_17m runs of sweep 2024_11_10-23_08_29 (42 runs): the same losses appear under different "
            "peak_lr labels, so the lr cannot be attributed",
            "data/epoch_ai.csv (digitised Chinchilla, already bundled), data/rsld/*.pickle.xz (Porian et al., "
            "already bundled; pickles), data/gshard.csv and data/spm.csv (MoE learning-rate sweeps at 2 sizes, "
            "runs marked failed, no parameter counts), data/data.csv and dense.csv (earlier spreadsheet of the "
            "same runs), scaling_results.csv (intermediate checkpoints of the same runs)"]),
    Source("xlstm2025",
           "Beck et al. 2025, xLSTM Scaling Laws: Competitive Performance with Linear Time-Complexity (NX-AI)",
           "NX-AI/xlstm_scaling_laws", "604bb3062d3a7681bb33e467108cb0a6f81267fc",
           ["notebooks/paper_plots/token_param_ratio_plots--slopes.ipynb",
            "notebooks/run_dataset_tables.ipynb"], "not stated",
           "Token/param experiment set (context 8192, DCLM data), read from the HTML tables stored in the "
           "notebooks' outputs (the repo's run tables are pickles and were not read). N = num_params (incl. "
           "embeddings); C = num_flops_training as reported (the authors' own FLOP count: C/6ND 1.13-1.38 for Llama, 0.78-0.98 for mLSTM); "
           "loss = DCLM validation loss. Learning rate and batch size vary across runs of a ladder.",
           load_xlstm,
           ["IsoFLOP experiment sets (ctx 2048/8192/16384): only available as pickles; the one printed table "
            "(a single 3e19 level with repeated rows) was not used"]),
    Source("marin2026",
           "Marin community, scaling ladders (IsoFLOP sweeps on Comma, DCLM and Nemotron-CC mixes; W&B report "
           "'Scaling Ladders', 2026), as vendored by Open-Athena/scaling-law-analysis",
           "Open-Athena/scaling-law-analysis", "3e0656ee3dce1a2c89aa67691920f5eb9d30f0fc",
           [MARIN_DIR + f for f in MARIN_FILES.values()], "not stated",
           "W&B exports. N = parameter_count (incl. embeddings); D = throughput/total_tokens; C = "
           "throughput/total_gflops x 1e9 as reported (C/6ND 0.74-1.07). isoflop_level = the level in the run "
           "name (the runs' reported C is ~3x this label). 'validation-optimal' runs (1 per level, comma and "
           "nemotron) are kept with empty isoflop_level; their reported C equals their label, and 4 of them repeat an IsoFLOP run's configuration (same N and D, loss within 0.003). loss = Paloma "
           "macro-average eval loss.",
           load_marin),
    Source("llama3_2024",
           "Llama Team, Meta 2024, The Llama 3 Herd of Models (arXiv:2407.21783), Fig. 2 IsoFLOP curves, "
           "digitised from the figure's vector graphics by eric-czech/llama3_isoflop_extraction",
           "eric-czech/llama3_isoflop_extraction", "1bc1755b76e6ee55a911549c8ec52b71cb480320",
           ["isoflops_points.csv"], "not stated",
           "Digitised: C = the nominal IsoFLOP level, D = training tokens read off the x axis, N = C/(6D) "
           "(derived). loss = the figure's validation loss (the paper does not say which held-out set; values "
           "~0.8-0.95, i.e. not in the same units as the other sources).",
           load_llama3),
    Source("clark2022",
           "Clark et al. 2022, Unified Scaling Laws for Routed Language Models (ICML 2022, arXiv:2202.01169)",
           "google-deepmind/scaling_laws_for_routing", "42da0c392b127df2c01fa7b705f72396050d05e5",
           ["data/curves.csv.gz"], "CC-BY-4.0 (data; code Apache-2.0)",
           "Last evaluation (step 249k-250k) of each run. N = dense_parameter_count (parameters used per "
           "token; total_parameter_count differs for routed models); every run has the same number of steps. "
           "D = step x 256 x 2048 tokens (batch size and sequence length not in the CSV; taken from the paper's "
           "setup, treat as approximate). C = 3 x flops_per_step x step (the CSV gives forward FLOPs per step). "
           "Ladders: dense (k=1, no FFN widening; 3 seeds at 130M) and one per router (Hash, RL-R, S-Base) x "
           "expert count with routing_frequency 0.5, k=1. Routed ladders have 5-6 runs (below the 8-run bar).",
           load_clark,
           ["dense runs with flop_increase > 1, routed runs with k > 1 or routing_frequency != 0.5 (1-3 runs each)"]),
    Source("bhagia2024",
           "Bhagia et al. 2024, Establishing Task Scaling Laws via Compute-Efficient Model Ladders (AI2, "
           "arXiv:2412.04403); OLMo 2 'peteish' ladder",
           "allenai/OLMo", "9bc064c72b1439640993e7ff28238e7b8f855aee",
           [f"scripts/scaling/data/{k}/*.csv" for k in OLMO_LADDERS] + ["scripts/scaling/decay.json"],
           "Apache-2.0",
           "Commit on branch ladder-1xC (not on main). W&B exports of 5 sizes (190M-3.2B) x 0.5/1/2/5/10 x "
           "Chinchilla tokens; last evaluation of each run. N = non-embedding parameters as given in "
           "scripts/scaling/decay.json; D = throughput/total_tokens; C = throughput/total_training_Gflops x 1e9 "
           "as reported (C/6ND ~1.3-1.7). loss = C4 (en) validation CE. Ladders: cosine schedule "
           "(peteish-moreeval) and WSD-style decays (peteish-moreeval-decay).",
           load_olmo,
           ["*-1xC-rerun.csv (re-run of the same configuration; final losses within 0.001 of the original)",
            "peteish-final-new (same runs; its c4 column at the last rows is not a loss, ~9-10)",
            "peteish-moreeval-const (constant-LR runs, 5 runs)",
            "peteish7/13 target runs (different recipe, no token/FLOP columns)"]),
]


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def clean(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    notes = []
    num = runs[["N", "D", "C", "loss"]].astype(float)
    bad = ~np.isfinite(num).all(axis=1) | (num <= 0).any(axis=1)
    if bad.any():
        for lad, n in runs[bad].groupby("ladder").size().items():
            notes.append(f"{lad}: dropped {n} rows with non-positive or non-finite N/D/C/loss")
    runs = runs[~bad].copy()
    dup = runs.duplicated(subset=["ladder", "N", "D", "loss"], keep="first")
    if dup.any():
        for lad, n in runs[dup].groupby("ladder").size().items():
            notes.append(f"{lad}: dropped {n} exact duplicate rows (same N, D, loss)")
    runs = runs[~dup].copy()
    return runs, notes


def ladder_table(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (src, lad), g in runs.groupby(["source", "ladder"], sort=False):
        ratio = g["C"] / (6.0 * g["N"] * g["D"])
        g = g.sort_values("C")
        # frontier: running minimum of loss along C; check the best loss in the top third of log C is
        # below the best in the bottom third
        lc = np.log10(g["C"].to_numpy())
        lo, hi = lc.min(), lc.max()
        span = hi - lo
        low = g["loss"].to_numpy()[lc <= lo + span / 3].min()
        high = g["loss"].to_numpy()[lc >= hi - span / 3].min()
        frontier_ok = bool(high < low) if span > 0 else False
        c_dec = float(span)
        n_dec = float(np.log10(g["N"].max() / g["N"].min()))
        meets = len(g) >= MIN_RUNS and max(c_dec, n_dec) >= MIN_DECADES and g["N"].nunique() >= 3
        rows.append(dict(source=src, ladder=lad, runs=len(g), distinct_N=g["N"].nunique(),
                         N_min=g["N"].min(), N_max=g["N"].max(), D_min=g["D"].min(), D_max=g["D"].max(),
                         C_min=g["C"].min(), C_max=g["C"].max(), C_decades=round(c_dec, 2),
                         N_decades=round(n_dec, 2), C_over_6ND_min=round(float(ratio.min()), 3),
                         C_over_6ND_max=round(float(ratio.max()), 3), loss_min=g["loss"].min(),
                         loss_max=g["loss"].max(), frontier_decreasing=frontier_ok, meets_criteria=meets,
                         isoflop=bool(g["isoflop_level"].notna().any()), loss_kind=g["loss_kind"].iloc[0]))
    return pd.DataFrame(rows)


def _rng(lo: float, hi: float) -> str:
    return f"{lo:.3g}-{hi:.3g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("BAYESCALE_CORPUS_DIR",
                                                    str(Path.home() / ".cache" / "bayescale" / "corpus")))
    ap.add_argument("--mirror", default=os.environ.get("BAYESCALE_MIRROR_DIR", "/work/.mirror"))
    args = ap.parse_args(argv)
    mirror, out = Path(args.mirror), Path(args.out)

    frames, srows, skipped, check_notes = [], [], [], []
    for src in SOURCES:
        try:
            repo = Repo(mirror, src.repository, src.commit)
            df = src.loader(repo)
        except MissingSnapshot as exc:
            print(f"[skip] {src.name}: {exc}", file=sys.stderr)
            skipped.append(src.repository)
            continue
        df, notes = clean(df)
        check_notes += notes
        frames.append(df)
        lad = ladder_table(df)
        notes_txt = src.notes
        if src.exclusions:
            notes_txt += " Excluded: " + "; ".join(src.exclusions) + "."
        if notes:
            notes_txt += " Checks: " + "; ".join(notes) + "."
        srows.append(dict(source=src.name, reference=src.reference, repository=src.repository, commit=src.commit,
                          paths="; ".join(src.paths), licence=src.licence, ladders=len(lad), runs=len(df),
                          ladders_meeting_criteria=int(lad["meets_criteria"].sum()),
                          N_range=_rng(df["N"].min(), df["N"].max()), C_range=_rng(df["C"].min(), df["C"].max()),
                          loss_kind="; ".join(sorted(df["loss_kind"].unique())), notes=notes_txt))
        print(f"[ok] {src.name}: {len(lad)} ladders, {len(df)} runs")

    if not frames:
        print("nothing built: fetch the repositories listed above first", file=sys.stderr)
        return 1
    runs = pd.concat(frames, ignore_index=True)
    ladders = ladder_table(runs)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False, float_format="%.10g")
    ladders.to_csv(out / "ladders.csv", index=False, float_format="%.6g")
    pd.DataFrame(srows).to_csv(out / "sources.csv", index=False)
    print(f"wrote {len(runs)} runs in {len(ladders)} ladders ({int(ladders['meets_criteria'].sum())} meet "
          f">= {MIN_RUNS} runs, >= {MIN_DECADES:g} decade, >= 3 sizes) from {len(srows)} sources to {out}")
    for note in check_notes:
        print("  check:", note)
    for lad in ladders[~ladders["frontier_decreasing"]]["ladder"]:
        print("  check: loss does not decrease along the C frontier:", lad)
    if skipped:
        print("missing snapshots, fetch then rerun: " + ", ".join(f"github:{s}" for s in skipped), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
