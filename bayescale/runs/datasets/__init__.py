"""Real scaling-law runs from published work, bundled for examples and reproduction tests.

Sources (see ``README.md`` in this folder for the full provenance and reference numbers):

* ``chinchilla_runs_epoch2024.csv``: runs of Hoffmann et al. 2022 ("Training Compute-Optimal
  Large Language Models", Fig. 4), digitised by Besiroglu et al. 2024 ("Chinchilla Scaling: A
  replication attempt"), repository epoch-research/analyzing-chinchilla,
  ``data/svg_extracted_data.csv``, commit 92258837.
* ``datablations_runs_muennighoff2023.csv``: runs of Muennighoff et al. 2023 ("Scaling
  Data-Constrained Language Models"), repository huggingface/datablations (Apache-2.0), printed
  by ``utils/parametric_fit.ipynb``.
* ``porian2024_runs.csv``: runs of Porian et al. 2024 ("Resolving Discrepancies in
  Compute-Optimal Scaling of Language Models"), repository
  formll/resolving-scaling-law-discrepancies, ``data/summary_df*.pickle.xz`` (as redistributed by
  hadasah/scaling_laws, Li et al. 2025): 15 configurations, each a ladder of IsoFLOP runs.
* ``gadre2024_downstream.csv``: downstream task scores and C4 losses of the 35 RedPajama models
  of Gadre et al. 2024 ("Language models scale reliably with over-training and on downstream
  tasks"), repository mlfoundations/scaling (MIT), commit a003c491, 11 tasks; built by
  ``benchmarks/downstream/build_downstream.py``.

:func:`references` returns the published fitted parameters: Hoffmann et al. 2022 (Approach 3),
Besiroglu et al. 2024 (refit on the 240 kept Chinchilla runs, its standard errors and 95%
bootstrap intervals, and its replication of Hoffmann's procedure) and Muennighoff et al. 2023
(data-constrained law).
"""

from __future__ import annotations

import copy
from importlib.resources import files

import pandas as pd

__all__ = ["load_chinchilla", "load_datablations", "load_porian", "porian_configs", "references",
           "load_gadre_downstream"]

CHINCHILLA_SOURCE = (
    "Runs of Hoffmann et al. 2022 (\"Training Compute-Optimal Large Language Models\", Fig. 4), "
    "digitised by Besiroglu et al. 2024 (\"Chinchilla Scaling: A replication attempt\"), repository "
    "epoch-research/analyzing-chinchilla, `data/svg_extracted_data.csv`, commit 92258837. "
    "`Model Size` is N (parameters), `Training FLOP` is C; tokens are D = C / (6 N). `loss` was read "
    "off a colour scale, so it carries digitisation noise. The replication drops the 5 highest-loss "
    "points (240 remain)."
)
DATABLATIONS_SOURCE = (
    "Runs of Muennighoff et al. 2023 (\"Scaling Data-Constrained Language Models\"), repository "
    "huggingface/datablations (Apache-2.0), printed by `utils/parametric_fit.ipynb`. D is tokens "
    "seen, U unique tokens (D/U - 1 = repeated epochs). Seed replicates appear as repeated rows; "
    "one row (`4b284b12b2`) was mis-parsed by the source notebook."
)
PORIAN_SOURCE = (
    "Runs of Porian et al. 2024 (\"Resolving Discrepancies in Compute-Optimal Scaling of Language "
    "Models\"), repository formll/resolving-scaling-law-discrepancies, `data/summary_df*.pickle.xz` (as "
    "redistributed by hadasah/scaling_laws, Li et al. 2025), converted to CSV: the original "
    "(un-interpolated) runs of each IsoFLOP level. `param_count` is the N convention (kaplan = "
    "non-embedding, standard, attention = with attention FLOPs; D = flops_level / (6 N) under that "
    "convention), `val` which loss (train or held-out val). Some configurations are the same training "
    "runs seen under another N convention or loss set: treat a configuration as one ladder, not as "
    "independent evidence."
)
GADRE_DOWNSTREAM_SOURCE = (
    "Downstream evaluations of Gadre et al. 2024 (\"Language models scale reliably with over-training and on "
    "downstream tasks\", arXiv:2403.08540), repository mlfoundations/scaling (MIT), commit "
    "a003c4913793ac2ae7ef87b28ecb562955d026d5: exp_data/models/*.json (N with embeddings, tokens, the loss on "
    "the C4 eval split), exp_data/evals/*_heavy.json (LLM Foundry in-context evaluations) and "
    "exp_data/eval_metadata.csv (random baseline, number of items). Slice: the 35 RedPajama models (11M-6.9B "
    "parameters, 5-640 tokens per parameter) x 11 tasks; the full table (104 models x 46 tasks) is rebuilt by "
    "benchmarks/downstream/build_downstream.py."
)
#: Columns of the Porian et al. 2024 runs that define a configuration (one ladder), in label order.
PORIAN_CONFIG_COLUMNS = ("table", "dataset", "hparams", "warmup", "decay", "param_count", "val")
#: Columns that define the training runs themselves: configurations that agree on these are the same
#: trainings seen under another N convention (``param_count``) or loss set (``val``).
PORIAN_TRAINING_COLUMNS = ("dataset", "hparams", "warmup", "decay")

#: Run name whose N/D/U were mis-parsed from the name by the source notebook (see load_datablations).
MISPARSED = ("4b284b12b2",)

_REFERENCES = {
    "hoffmann2022": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    # unrounded log-space fit: A = exp(a), B = exp(b), E = exp(e)
    "hoffmann2022_logspace": {"a": 6.0073404, "b": 6.0179186, "e": 0.5267228,
                              "alpha": 0.33917084, "beta": 0.2849083},
    "besiroglu2024": {"E": 1.817, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3659},
    "besiroglu2024_se": {"E": 0.0257, "A": 124.5, "B": 1293.3, "alpha": 0.0154, "beta": 0.0206},
    "besiroglu2024_ci95": {"E": (1.769, 1.871), "A": (285.2, 743.6), "B": (1042.4, 5810.3),
                           "alpha": (0.317, 0.373), "beta": (0.331, 0.415)},
    "besiroglu2024_hoffmann_procedure": {"E": 1.8172, "A": 477.84, "B": 2143.86,
                                         "alpha": 0.3473, "beta": 0.3672},
    # approximate ("about") compute-optimal tokens per parameter at the Chinchilla budget
    "chinchilla_budget": {"C": 5.88e23, "tokens_per_param_besiroglu2024": 20.0,
                          "tokens_per_param_hoffmann2022": 70.0},
    "muennighoff2023": {"E": 1.870, "A": 520.8, "B": 1487.7, "alpha": 0.3527, "beta": 0.3527,
                        "R_D_star": 15.39, "R_N_star": 5.31},
}


def _read(name: str) -> pd.DataFrame:
    with files(__name__).joinpath(name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def load_chinchilla(drop_outliers: bool = False) -> pd.DataFrame:
    """The 245 Chinchilla runs digitised by Besiroglu et al. 2024.

    Parameters
    ----------
    drop_outliers : bool, default False
        Return only the 240 runs the replication keeps (it drops the 5 highest-loss runs).

    Returns
    -------
    pandas.DataFrame
        Columns ``N`` (parameters, "Model Size"), ``C`` (training FLOPs, "Training FLOP"),
        ``D = C / (6 N)``, ``loss`` and ``dropped_in_replication`` (True for the 5 highest-loss
        runs). The index is the row number in the CSV, kept when rows are dropped.
        ``.attrs["source"]`` holds the provenance.

    Examples
    --------
    >>> df = load_chinchilla()
    >>> len(df), int(df["dropped_in_replication"].sum()), len(load_chinchilla(drop_outliers=True))
    (245, 5, 240)
    >>> list(df.columns)
    ['N', 'C', 'D', 'loss', 'dropped_in_replication']
    """
    raw = _read("chinchilla_runs_epoch2024.csv")
    df = pd.DataFrame({"N": raw["Model Size"].astype(float), "C": raw["Training FLOP"].astype(float)})
    df["D"] = df["C"] / (6 * df["N"])
    df["loss"] = raw["loss"].astype(float)
    df["dropped_in_replication"] = df.index.isin(df["loss"].nlargest(5).index)
    if drop_outliers:
        df = df[~df["dropped_in_replication"]].copy()
    df.attrs["source"] = CHINCHILLA_SOURCE
    return df


def load_datablations() -> pd.DataFrame:
    """The 296 data-constrained runs of Muennighoff et al. 2023.

    One row, ``4b284b12b2`` (CSV row 53), is flagged ``misparsed``. The source notebook derives
    D and U from the run name, where ``NbM`` reads as N.M billion (``2b855b1b25`` has
    U = 1.25e9); the trailing ``2`` of this name made it split as ``4b2|84b1|2b2``, giving
    D = 8.41e10 and U = 2.2e9, while the name most likely means D = 84e9 tokens, U = 12e9 unique
    (a second run of ``4b284b12b``). The recorded values pass validation (D > U, all positive),
    but its loss, 2.5205, is that of the U = 12e9 runs (2.526-2.538), not of a run with about
    2e9 unique tokens (U = 1.9e9 gives 3.08-3.28), so D and U are wrong. The row is kept
    unchanged and flagged; exclude it with ``df[~df["misparsed"]]``.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``N`` ("N_params"), ``D`` ("D_tokens"), ``U`` ("U_unique_tokens"),
        ``loss`` ("val_loss") and ``misparsed``. Seed replicates are repeated rows.
        ``.attrs["source"]`` holds the provenance.

    Examples
    --------
    >>> df = load_datablations()
    >>> len(df), df.loc[df["misparsed"], "name"].tolist()
    (296, ['4b284b12b2'])
    """
    raw = _read("datablations_runs_muennighoff2023.csv")
    df = pd.DataFrame({
        "name": raw["name"],
        "N": raw["N_params"].astype(float),
        "D": raw["D_tokens"].astype(float),
        "U": raw["U_unique_tokens"].astype(float),
        "loss": raw["val_loss"].astype(float),
    })
    df["misparsed"] = df["name"].isin(MISPARSED)
    df.attrs["source"] = DATABLATIONS_SOURCE
    return df


def load_porian(config=None) -> pd.DataFrame:
    """The 1745 runs of Porian et al. 2024: 15 configurations, each a ladder of IsoFLOP runs.

    Parameters
    ----------
    config : str or sequence of str, optional
        Return only these configurations (labels of :func:`porian_configs`).
        Default: all 15.

    Returns
    -------
    pandas.DataFrame
        Columns ``N``, ``D``, ``C`` (the run's IsoFLOP level, ``flops_level``; ``C = 6 N D`` under
        the configuration's N convention), ``loss``, the configuration columns ``table``,
        ``dataset`` (``rw`` RefinedWeb, ``owt2`` OpenWebText2), ``hparams`` (base/tuned),
        ``warmup`` (long/short), ``decay`` (kaplan/chinchilla/const), ``param_count`` (the N
        convention: kaplan, standard or attention), ``val`` (train or val loss), then ``config``
        (the label ``table/dataset/hparams/warmup/decay/param_count/val``) and ``training`` (the
        label ``dataset/hparams/warmup/decay`` of the training runs). Configurations that share a
        ``training`` label are the same training runs counted under another N convention or loss
        set: they are not independent evidence. ``.attrs["source"]`` holds the provenance.

    Raises
    ------
    KeyError
        For a configuration label that is not one of :func:`porian_configs`.

    Examples
    --------
    >>> df = load_porian()
    >>> len(df), df["config"].nunique(), df["training"].nunique()
    (1745, 15, 9)
    >>> list(df.columns[:4])
    ['N', 'D', 'C', 'loss']
    >>> len(load_porian("main/rw/base/long/kaplan/kaplan/train"))
    107
    """
    raw = _read("porian2024_runs.csv")
    df = pd.DataFrame({"N": raw["N"].astype(float), "D": raw["D"].astype(float),
                       "C": raw["flops_level"].astype(float), "loss": raw["loss"].astype(float)})
    for col in PORIAN_CONFIG_COLUMNS:
        df[col] = raw[col].astype(str)
    df["config"] = raw[list(PORIAN_CONFIG_COLUMNS)].astype(str).agg("/".join, axis=1)
    df["training"] = raw[list(PORIAN_TRAINING_COLUMNS)].astype(str).agg("/".join, axis=1)
    if config is not None:
        wanted = [config] if isinstance(config, str) else list(config)
        known = list(dict.fromkeys(df["config"]))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            raise KeyError(f"unknown Porian configuration(s) {unknown}; valid: {', '.join(known)}")
        df = df[df["config"].isin(wanted)].copy()
    df.attrs["source"] = PORIAN_SOURCE
    return df


def load_gadre_downstream() -> pd.DataFrame:
    """Task scores and losses of the 35 RedPajama models of Gadre et al. 2024 on 11 tasks.

    One row per (model, task). Models: four open_lm shapes from 11M to 411M parameters, each at
    token multipliers 0.25-32 of 20 tokens per parameter, plus 1.4B (20 and 640 tokens per
    parameter) and 6.9B (20): a ladder with its largest rungs to hold out. Tasks: ten of the
    paper's 17 above-chance tasks with >= 1000 items (ARC-Easy, HellaSwag 10-shot, PIQA, LAMBADA,
    BIG-bench QA WikiData, CoQA, SQuAD, BoolQ, CommonsenseQA, BIG-bench CS algorithms) and MMLU
    5-shot, flat at chance at these sizes.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset`` (``redpajama``), ``model`` (the source's run name), ``shape``, ``N``
        (parameters with embeddings), ``D`` (tokens), ``C = 6 N D``, ``tokens_per_param``, ``loss``
        (the C4 eval-split loss, nats per token), ``task``, ``metric`` (``accuracy`` or
        ``exact match``), ``value`` (in [0, 1]), ``chance`` (the task's random baseline),
        ``items`` (its number of questions), ``shots``, ``task_type``, ``category``.
        ``.attrs["source"]`` holds the provenance.

    Examples
    --------
    >>> df = load_gadre_downstream()
    >>> len(df), df["model"].nunique(), df["task"].nunique()
    (385, 35, 11)
    >>> float(df.loc[df["task"] == "mmlu", "chance"].iloc[0])
    0.25
    """
    df = _read("gadre2024_downstream.csv")
    df["items"] = df["items"].astype(int)
    df.attrs["source"] = GADRE_DOWNSTREAM_SOURCE
    return df


def porian_configs() -> list[str]:
    """Labels of the 15 Porian et al. 2024 configurations, in file order.

    Each label is ``table/dataset/hparams/warmup/decay/param_count/val``, e.g.
    ``main/rw/base/long/kaplan/kaplan/train`` (Kaplan's settings on RefinedWeb).

    Examples
    --------
    >>> labels = porian_configs()
    >>> len(labels), labels[0]
    (15, 'main/rw/base/long/kaplan/kaplan/train')
    """
    raw = _read("porian2024_runs.csv")
    return list(dict.fromkeys(raw[list(PORIAN_CONFIG_COLUMNS)].astype(str).agg("/".join, axis=1)))


def references() -> dict[str, dict]:
    """Published fitted parameters of the Chinchilla law L = E + A / N^alpha + B / D^beta.

    Keys: ``hoffmann2022`` (Approach 3, rounded), ``hoffmann2022_logspace`` (unrounded
    ``a = log A``, ``b = log B``, ``e = log E``, alpha, beta), ``besiroglu2024`` (Huber MLE on the
    240 kept runs), ``besiroglu2024_se`` (its standard errors), ``besiroglu2024_ci95`` (95%
    bootstrap intervals, as (low, high)), ``besiroglu2024_hoffmann_procedure``,
    ``chinchilla_budget`` (C = 5.88e23 FLOP and the approximate compute-optimal tokens per
    parameter each paper implies there) and ``muennighoff2023`` (data-constrained law, with
    ``R_D_star`` and ``R_N_star``). Each call returns a fresh copy.

    Examples
    --------
    >>> references()["besiroglu2024"]["E"]
    1.817
    >>> references()["besiroglu2024_ci95"]["alpha"]
    (0.317, 0.373)
    """
    return copy.deepcopy(_REFERENCES)
