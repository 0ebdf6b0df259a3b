"""Synthetic runs from known parameters, for checks and examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..base.errors import SpecError
from ..base.validation import check_count, check_number, check_seed, renamed
from .laws import get_law

__all__ = ["simulate_groups", "simulate_undertuned", "simulate_curves"]


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
        :mod:`bayescale.runs.undertuned` reads).

    Examples
    --------
    >>> runs = simulate_undertuned(30, dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37),
    ...                            undertuned=[3, 7], excess=0.05)
    >>> runs["excess"].gt(0).sum(), round(float(runs["excess"].max()), 2)
    (np.int64(2), 0.05)
    """
    law = get_law(law)
    if "U" in law.inputs:
        raise SpecError("simulate_undertuned draws N and D (and C = 6 N D); laws needing U are not supported")
    n = check_count(n_runs, "n_runs")
    lo, hi = (float(v) for v in n_range)
    if not 0 < lo <= hi:
        raise SpecError(f"n_range must be (low, high) with 0 < low <= high, got {n_range!r}")
    rng = np.random.default_rng(check_seed(random_seed))
    planted = _planted(n, undertuned, excess, rng, "row")
    N = 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)
    D = N * 10 ** rng.uniform(0.3, 2.3, n)
    values = {k: float(params[k]) for k in law.param_names}
    loss = law.loss({"N": N, "D": D, "C": 6 * N * D}, values) * np.exp(planted + sigma * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": loss, "excess": planted})


def _planted(n, undertuned, excess, rng, what):
    """The excess of each of `n` runs (0 where tuned): `undertuned` a fraction (drawn with `rng`) or positions."""
    if isinstance(undertuned, (float, np.floating)) and not isinstance(undertuned, bool):
        if not 0 <= undertuned <= 1:
            raise SpecError(f"undertuned as a fraction must lie in [0, 1], got {undertuned!r}")
        which = np.sort(rng.choice(n, size=int(round(undertuned * n)), replace=False))
    else:
        try:
            which = np.asarray(undertuned, dtype=int).ravel()
        except (TypeError, ValueError):
            raise SpecError(f"undertuned must be a fraction or a sequence of {what} positions, "
                            f"got {undertuned!r}") from None
        if which.size and (which.min() < 0 or which.max() >= n or len(set(which.tolist())) != which.size):
            raise SpecError(f"undertuned {what} positions must be distinct and within 0..{n - 1}, got {undertuned!r}")
    sizes = np.broadcast_to(np.asarray(excess, dtype=float), which.shape) if np.ndim(excess) == 0 else \
        np.asarray(excess, dtype=float)
    if sizes.shape != which.shape or not np.all(np.isfinite(sizes)) or np.any(sizes < 0):
        raise SpecError(f"excess must be a non-negative number or one per undertuned run ({which.size}), "
                        f"got {excess!r}")
    planted = np.zeros(n)
    planted[which] = sizes
    return planted


def simulate_curves(params, N, D_final, *, law="chinchilla", checkpoints=20, first=0.05, run_sd=0.01,
                    noise_sd=0.003, random_seed=0, undertuned=None, excess=0.04) -> pd.DataFrame:
    """A synthetic ladder of training runs, each with its checkpoint curve, from known parameters.

    Each run r (one model size N_r trained to D_final_r tokens on a constant or WSD-before-decay
    schedule, so every checkpoint lies on the law) is evaluated at `checkpoints` token counts up to
    D_final_r. Its log loss is ``log L(N_r, D) + u_r + e``: ``u_r ~ Normal(0, run_sd)`` one offset per
    run (seed, data order: what makes a whole run lower or higher), ``e ~ Normal(0, noise_sd)`` per
    checkpoint (evaluation noise). The rows of a run are therefore correlated, as in real checkpoint
    logs; :class:`bayescale.ScalingModel` models them with ``within_run="offset"``.

    Parameters
    ----------
    params : mapping
        ``{parameter: value}`` of the law.
    N : sequence of float
        Model size of each run.
    D_final : float or sequence of float
        Tokens at each run's last checkpoint (one value for all runs, or one per run).
    law : str or Law, default "chinchilla"
        A law over N, D and/or C (C = 6 N D).
    checkpoints : int or sequence of float, default 20
        Number of checkpoints per run, log-spaced from ``first * D_final`` to ``D_final``; or the
        fractions of ``D_final`` at which to evaluate (each in (0, 1], the last normally 1).
    first : float, default 0.05
        Fraction of D_final at the first checkpoint (with an integer `checkpoints`).
    run_sd, noise_sd : float
        Standard deviations of the per-run offset and of the per-checkpoint noise on log loss.
    random_seed : int, default 0
    undertuned : float or sequence of int, optional
        Plant undertuned runs: a fraction of the runs (that many, chosen at random, rounded) or their
        positions in `N`. Every checkpoint of an undertuned run sits above the law by the run's
        `excess` (one excess per run, as :class:`bayescale.ScalingModel` with ``undertuned=True``
        models checkpoint data). Default: none, and no ``excess`` column.
    excess : float or sequence of float, default 0.04
        The excess of each undertuned run on log loss (0.04: about 4% above the law): one value for
        all, or one per undertuned run.

    Returns
    -------
    DataFrame
        Columns ``run`` (``r0``, ``r1`` ...), ``N``, ``D`` (tokens seen at the checkpoint), ``C``
        (6 N D), ``loss``; one row per checkpoint, runs in the order of `N`, checkpoints by D.
        ``attrs["offsets"]`` holds the drawn u_r. With `undertuned`, a column ``excess`` (the
        planted excess on log loss of the row's run, 0 for tuned runs; a truth column, not a flag).

    Examples
    --------
    >>> runs = simulate_curves(dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37),
    ...                        N=[1e8, 4e8], D_final=2e9, checkpoints=5)
    >>> runs.groupby("run").size().to_dict(), runs["D"].max()
    ({'r0': 5, 'r1': 5}, np.float64(2000000000.0))
    >>> planted = simulate_curves(dict(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37),
    ...                           N=[1e8, 4e8], D_final=2e9, checkpoints=3, undertuned=[1], excess=0.05)
    >>> planted.groupby("run")["excess"].max().to_dict()
    {'r0': 0.0, 'r1': 0.05}
    """
    law = get_law(law)
    if "U" in law.inputs:
        raise SpecError("simulate_curves draws N and D (and C = 6 N D); laws needing U are not supported")
    N = np.atleast_1d(np.asarray(N, dtype=float))
    D_final = np.broadcast_to(np.asarray(D_final, dtype=float), N.shape) if np.ndim(D_final) == 0 else \
        np.asarray(D_final, dtype=float)
    if N.ndim != 1 or N.size == 0 or D_final.shape != N.shape:
        raise SpecError(f"N must be a non-empty sequence and D_final one number or one per run; got {N.size} N "
                        f"and D_final of shape {np.shape(D_final)}")
    if not (np.all(np.isfinite(N) & (N > 0)) and np.all(np.isfinite(D_final) & (D_final > 0))):
        raise SpecError("N and D_final must be positive finite numbers")
    if np.ndim(checkpoints) == 0:
        if isinstance(checkpoints, bool) or int(checkpoints) != checkpoints or checkpoints < 1:
            raise SpecError(f"checkpoints must be a whole number >= 1 or a sequence of fractions, got {checkpoints!r}")
        check_number(first, "first", low=0.0, high=1.0, open_low=True)
        fractions = np.geomspace(first, 1.0, int(checkpoints)) if checkpoints > 1 else np.ones(1)
    else:
        fractions = np.asarray(checkpoints, dtype=float)
        if fractions.ndim != 1 or fractions.size == 0 or not np.all((fractions > 0) & (fractions <= 1)):
            raise SpecError(f"checkpoints as fractions of D_final must lie in (0, 1], got {checkpoints!r}")
        fractions = np.unique(fractions)
    for name, v in (("run_sd", run_sd), ("noise_sd", noise_sd)):
        check_number(v, name, low=0.0)
    rng = np.random.default_rng(check_seed(random_seed))
    offsets = run_sd * rng.standard_normal(N.size)
    n_per = fractions.size
    run = np.repeat([f"r{i}" for i in range(N.size)], n_per)
    Ns = np.repeat(N, n_per)
    D = (D_final[:, None] * fractions[None, :]).ravel()
    values = {k: float(params[k]) for k in law.param_names}
    log_loss = np.log(law.loss({"N": Ns, "D": D, "C": 6 * Ns * D}, values))
    log_loss = log_loss + np.repeat(offsets, n_per) + noise_sd * rng.standard_normal(D.size)
    planted = None if undertuned is None else np.repeat(_planted(N.size, undertuned, excess, rng, "run"), n_per)
    if planted is not None:  # drawn after the curves: without undertuned runs the same seed gives the same runs
        log_loss = log_loss + planted
    frame = pd.DataFrame({"run": run, "N": Ns, "D": D, "C": 6 * Ns * D, "loss": np.exp(log_loss)})
    if planted is not None:
        frame["excess"] = planted
    frame.attrs["offsets"] = offsets
    return frame
