"""Synthetic runs from known parameters, for checks and examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import SpecError
from .validation import check_seed, renamed

__all__ = ["simulate_groups", "simulate_undertuned"]


@renamed(seed="random_seed")
def simulate_groups(runs_per_group, params, *, law="chinchilla", sigma=0.01, random_seed=0, labels=None,
                    n_range=(10**7.5, 10**10.5)) -> pd.DataFrame:
    """Synthetic runs of several groups from known parameters, for checks and examples.

    Parameters
    ----------
    runs_per_group : sequence of int
        Number of runs of each group.
    params : mapping
        ``{parameter: value}`` for shared parameters, ``{parameter: sequence}``
        (one value per group) for parameters that differ by group.
    law : str or Law
        A law over N, D and/or C.
    sigma : float
        Standard deviation of Normal noise on log loss.
    random_seed : int, default 0
        Seed of the draws (formerly ``seed=``).
    labels : sequence of str, optional
        Group labels; default ``g0, g1, ...``.
    n_range : (float, float)
        Range of model sizes N (log-uniform).

    Returns
    -------
    DataFrame
        Columns ``N``, ``D``, ``loss``, ``group``: N log-uniform on
        `n_range`, D = N x 10^U(0.3, 2.3) tokens (2 to 200 tokens per
        parameter).

    Examples
    --------
    >>> runs = simulate_groups([5, 10], dict(E=[1.7, 2.0], A=480.0, B=2100.0, alpha=0.35, beta=0.37))
    >>> runs.groupby("group").size().to_dict()
    {'g0': 5, 'g1': 10}
    """
    from .laws import get_law

    law = get_law(law)
    if "U" in law.inputs:
        raise SpecError("simulate_groups draws N and D (and C = 6 N D); laws needing U are not supported")
    lo, hi = (float(v) for v in n_range)
    if not 0 < lo <= hi:
        raise SpecError(f"n_range must be (low, high) with 0 < low <= high, got {n_range!r}")
    counts = [int(n) for n in runs_per_group]
    labels = [f"g{i}" for i in range(len(counts))] if labels is None else [str(g) for g in labels]
    if len(labels) != len(counts):
        raise SpecError(f"{len(labels)} labels for {len(counts)} groups")
    rng = np.random.default_rng(check_seed(random_seed))
    frames = []
    for i, (label, n) in enumerate(zip(labels, counts)):
        N = 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)
        D = N * 10 ** rng.uniform(0.3, 2.3, n)
        values = {}
        for k in law.param_names:
            v = np.asarray(params[k], dtype=float)
            if v.ndim and len(v) != len(counts):
                raise SpecError(f"params[{k!r}] has {len(v)} values for {len(counts)} groups")
            values[k] = float(v[i]) if v.ndim else float(v)
        loss = law.loss({"N": N, "D": D, "C": 6 * N * D}, values) * np.exp(sigma * rng.standard_normal(n))
        frames.append(pd.DataFrame({"N": N, "D": D, "loss": loss, "group": label}))
    return pd.concat(frames, ignore_index=True)


def simulate_undertuned(n_runs, params, *, undertuned=0.1, excess=0.04, law="chinchilla", sigma=0.01,
                        random_seed=0, n_range=(10**7.5, 10**10.5)) -> pd.DataFrame:
    """A synthetic ladder with some rungs deliberately undertuned: they sit above the law by a known excess.

    Parameters
    ----------
    n_runs : int
        Number of runs.
    params : mapping
        ``{parameter: value}`` of the law.
    undertuned : float or sequence of int, default 0.1
        Which runs are undertuned: a fraction of the runs (that many, chosen
        at random without replacement, rounded), or their row positions.
    excess : float or sequence of float, default 0.04
        The excess of each undertuned run on log loss (0.04: about 4% above
        the law, before noise): one value for all, or one per undertuned run.
    law : str or Law
        A law over N, D and/or C.
    sigma : float
        Standard deviation of Normal noise on log loss.
    random_seed : int, default 0
    n_range : (float, float)
        Range of model sizes N (log-uniform); D = N x 10^U(0.3, 2.3).

    Returns
    -------
    DataFrame
        Columns ``N``, ``D``, ``loss`` and ``excess`` (the planted excess on
        log loss, 0 for tuned runs; a truth column, not a flag that
        :mod:`bayescale.undertuned` reads).

    Examples
    --------
    >>> runs = simulate_undertuned(30, dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37),
    ...                            undertuned=[3, 7], excess=0.05)
    >>> runs["excess"].gt(0).sum(), round(float(runs["excess"].max()), 2)
    (np.int64(2), 0.05)
    """
    from .laws import get_law
    from .validation import check_count

    law = get_law(law)
    if "U" in law.inputs:
        raise SpecError("simulate_undertuned draws N and D (and C = 6 N D); laws needing U are not supported")
    n = check_count(n_runs, "n_runs")
    lo, hi = (float(v) for v in n_range)
    if not 0 < lo <= hi:
        raise SpecError(f"n_range must be (low, high) with 0 < low <= high, got {n_range!r}")
    rng = np.random.default_rng(check_seed(random_seed))
    if isinstance(undertuned, (float, np.floating)) and not isinstance(undertuned, bool):
        if not 0 <= undertuned <= 1:
            raise SpecError(f"undertuned as a fraction must lie in [0, 1], got {undertuned!r}")
        which = np.sort(rng.choice(n, size=int(round(undertuned * n)), replace=False))
    else:
        try:
            which = np.asarray(undertuned, dtype=int).ravel()
        except (TypeError, ValueError):
            raise SpecError(f"undertuned must be a fraction or a sequence of row positions, "
                            f"got {undertuned!r}") from None
        if which.size and (which.min() < 0 or which.max() >= n or len(set(which.tolist())) != which.size):
            raise SpecError(f"undertuned row positions must be distinct and within 0..{n - 1}, got {undertuned!r}")
    sizes = np.broadcast_to(np.asarray(excess, dtype=float), which.shape) if np.ndim(excess) == 0 else \
        np.asarray(excess, dtype=float)
    if sizes.shape != which.shape or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise SpecError(f"excess must be a non-negative number or one per undertuned run ({which.size}), "
                        f"got {excess!r}")
    N = 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)
    D = N * 10 ** rng.uniform(0.3, 2.3, n)
    values = {k: float(params[k]) for k in law.param_names}
    planted = np.zeros(n)
    planted[which] = sizes
    loss = law.loss({"N": N, "D": D, "C": 6 * N * D}, values) * np.exp(planted + sigma * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss, "excess": planted})
