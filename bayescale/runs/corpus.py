"""Real ladders for out-of-family calibration: the bundled ones and an optional corpus built from public sources.

A *source* is one research group's paper (its ladders share code, data and
habits, so they are not independent evidence about a new team's ladder); a
*ladder* is one configuration of a source (one data set, recipe or training
setting) at several model sizes. Calibration of the bands beyond the fitted
runs (:mod:`bayescale.across.calibration`) holds out one source at a time.

Bundled with the package (:mod:`bayescale.runs.datasets`): Chinchilla (source
``hoffmann2022``, one ladder), datablations (``muennighoff2023``, one ladder
with repeated data) and the 15 Porian et al. 2024 ladders (``porian2024``).
More ladders are read from a corpus folder when one has been built
(``benchmarks/corpus/build_corpus.py`` writes ``runs.csv`` and
``sources.csv`` from the public repositories named in its README): the folder
``$BAYESCALE_CORPUS_DIR``, else ``~/.cache/bayescale/corpus``.

Examples
--------
>>> frame = bundled_ladders()
>>> sorted(frame["source"].unique())
['hoffmann2022', 'muennighoff2023', 'porian2024']
>>> int(frame.groupby("source")["ladder"].nunique()["porian2024"])
15
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..base.errors import DataError
from ..base.validation import FLOPS_PER_PARAM_TOKEN
from .datasets import load_chinchilla, load_datablations, load_porian

__all__ = ["bundled_ladders", "corpus_dir", "load_corpus", "all_ladders", "LADDER_COLUMNS"]

#: Columns of a ladder table: one row per training run (final loss).
LADDER_COLUMNS = ("source", "ladder", "N", "D", "C", "loss", "U", "isoflop_level")


def bundled_ladders() -> pd.DataFrame:
    """The bundled real runs as one ladder table (:data:`LADDER_COLUMNS`, plus ``evidence``).

    Chinchilla keeps the 240 runs of the replication; datablations leaves out
    its misparsed row and keeps ``U``; the Porian configurations keep their
    IsoFLOP level. ``evidence`` labels runs that are the same trainings seen
    under another N convention or loss set (Porian's ``training``), which
    count once when scores are pooled.
    """
    parts = []
    chin = load_chinchilla(drop_outliers=True)
    parts.append(pd.DataFrame({"source": "hoffmann2022", "ladder": "hoffmann2022/chinchilla", "N": chin["N"],
                               "D": chin["D"], "C": chin["C"], "loss": chin["loss"], "U": np.nan,
                               "isoflop_level": _isoflop_levels(chin["C"])}))
    blat = load_datablations()
    blat = blat[~blat["misparsed"]]
    parts.append(pd.DataFrame({"source": "muennighoff2023", "ladder": "muennighoff2023/datablations",
                               "N": blat["N"], "D": blat["D"], "C": FLOPS_PER_PARAM_TOKEN * blat["N"] * blat["D"],
                               "loss": blat["loss"], "U": blat["U"], "isoflop_level": np.nan}))
    por = load_porian()
    parts.append(pd.DataFrame({"source": "porian2024", "ladder": "porian2024/" + por["config"], "N": por["N"],
                               "D": por["D"], "C": por["C"], "loss": por["loss"], "U": np.nan,
                               "isoflop_level": por["C"], "evidence": "porian2024/" + por["training"]}))
    frame = pd.concat(parts, ignore_index=True)
    frame["evidence"] = frame["evidence"].fillna(frame["ladder"])
    return frame


def _isoflop_levels(c) -> np.ndarray:
    """Nominal IsoFLOP level of digitised compute values: runs within 10% of one another share a level."""
    c = np.asarray(c, dtype=float)
    order = np.argsort(c)
    levels = np.empty_like(c)
    start = 0
    for i in range(1, c.size + 1):
        if i == c.size or c[order[i]] > 1.1 * c[order[start]]:
            levels[order[start:i]] = np.exp(np.mean(np.log(c[order[start:i]])))
            start = i
    return levels


def corpus_dir() -> Path:
    """The corpus folder: ``$BAYESCALE_CORPUS_DIR``, else ``~/.cache/bayescale/corpus``."""
    path = os.environ.get("BAYESCALE_CORPUS_DIR")
    return Path(path).expanduser() if path else Path.home() / ".cache" / "bayescale" / "corpus"


def load_corpus(path=None) -> pd.DataFrame:
    """The ladders of a built corpus (``runs.csv``), or an empty table when none has been built.

    Parameters
    ----------
    path : str or Path, optional
        The corpus folder; default :func:`corpus_dir`.

    Returns
    -------
    DataFrame
        :data:`LADDER_COLUMNS` plus ``evidence`` (the ladder unless the file
        says otherwise); rows with a non-positive or non-finite N, D or loss
        are an error naming the row.
    """
    folder = Path(path) if path is not None else corpus_dir()
    file = folder / "runs.csv"
    if not file.is_file():
        return pd.DataFrame(columns=[*LADDER_COLUMNS, "evidence"])
    frame = pd.read_csv(file)
    missing = [c for c in ("source", "ladder", "N", "loss") if c not in frame]
    if missing or not ({"D", "C"} & set(frame)):
        raise DataError(f"{file}: needs columns source, ladder, N, loss and D or C; missing {missing or ['D/C']}")
    for col in ("D", "C", "U", "isoflop_level"):
        if col not in frame:
            frame[col] = np.nan
    k = FLOPS_PER_PARAM_TOKEN
    frame["D"] = frame["D"].fillna(frame["C"] / (k * frame["N"]))
    frame["C"] = frame["C"].fillna(k * frame["N"] * frame["D"])
    for col in ("N", "D", "C", "loss"):
        values = frame[col].to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{file}: row {row + 2} column {col} is {float(values[row])!r}; expected a positive number")
    if "evidence" not in frame:
        frame["evidence"] = frame["ladder"]
    frame["evidence"] = frame["evidence"].fillna(frame["ladder"])
    return frame[[*LADDER_COLUMNS, "evidence"]]


def all_ladders(path=None) -> pd.DataFrame:
    """The bundled ladders and those of the corpus (:func:`load_corpus`), one table."""
    corpus = load_corpus(path)
    bundled = bundled_ladders()
    corpus = corpus[~corpus["source"].isin(bundled["source"].unique())]
    return pd.concat([bundled, corpus], ignore_index=True) if len(corpus) else bundled
