"""Downstream laws: the link from a model's loss to its score on a task, pooled across tasks.

The link of task t is a sigmoid in the loss L between the task's chance level and a ceiling::

    accuracy_t(L) = floor_t + (ceiling_t - floor_t) * sigmoid(slope_t * (midpoint_t - L))

``floor_t`` is the task's chance level (known: 1/4 for four-choice questions, 0 for exact match),
``ceiling_t <= 1`` is learned (or given), and the slopes (log scale) and the sigmoid's logit at each
task's lowest fitted loss (its *edge logit*; ``midpoint_t = loss_min_t + edge_logit_t / slope_t``) are
partially pooled across tasks (non-centred; the edge logits with Student-t tails, so one task still at
chance does not widen the spread of the rest). A task's score on ``items`` questions is Beta-Binomial: the
questions' binomial noise plus a learned per-task overdispersion (concentration ``kappa_t``, also
pooled) for what the loss alone does not explain (another training set with the same loss scores a
little differently). This is the second step of the two-step chain (compute -> loss -> task score)
of the Llama 3 report and of Bhagia et al. 2024, fitted with NUTS instead of a point fit; the first
step is any loss fit, and :mod:`bayescale.analysis.taskplan` carries both posteriors into the answer.

A task that is flat at chance over the fitted losses constrains its midpoint only from one side
(it lies below the losses seen so far): the posterior keeps every later rise the pooled prior
allows, and the bands beyond the data span chance to high scores instead of one confident sigmoid.
For such a task the data bound one number, the edge logit (from above); in the coordinates of the
midpoint that bound is a wall whose steepness grows with the slope, which NUTS crossed with divergent
transitions on real ladders (7-12 in each fit of the bundled Gadre et al. slice, 33 on Pythia); in
the edge logit's coordinates it is the same wall at every slope.

:class:`DownstreamModel` holds the settings, :meth:`DownstreamModel.fit` takes the data and returns a
:class:`DownstreamFit`, whose draws live in an xarray ``DataTree`` (``fit.idata``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import xarray as xr

from ..runs.data import RUN_SD, check_within_run
from ..base.digest import DIGEST_ATTR
from ..base.errors import DataError, FileFormatError, SpecError, warn_user
from .graph import Graph
from .sampling import ESCALATION, compile_for_nutpie, escalated
from ..base.validation import check_flag, check_seed
from .linkfit import DownstreamFit, FILE_KIND, LINK_FORMAT_VERSION, LINK_PARAMS
from ..analysis.taskplan import link_accuracy

__all__ = ["DownstreamModel", "DownstreamFit", "LinkPriors", "link_accuracy", "link_from_tree", "TASK_COLUMNS",
           "FILE_KIND"]


#: Columns a task table needs: the task's name, the model's loss, its score in [0, 1], the task's chance
#: level in [0, 1) and its number of items (questions).
TASK_COLUMNS = ("task", "loss", "value", "chance", "items")
#: Default form uncertainty of the link (sd of the logit per nat of loss beyond a task's fitted losses).
#: Scored on the two sources' held-out evaluations (docs/guide/downstream.md), 0.2-0.4 nats beyond the fitted
#: losses: on Pythia the interval score falls from 0.339 (0) to 0.167 (0.75, the best of 0-1.5) and the 90%
#: band holds 20 of 21 instead of 12; on Gadre et al. it is 0.285 at 0, 0.286 at 0.5, 0.291 at 0.75, 0.297 at 1.
LINK_FORM_SD = 0.75


@dataclass(frozen=True)
class LinkPriors:
    """Priors of the pooled link (loss in nats; slopes in logits per nat).

    ``log_slope`` population mean ~ Normal(``slope_mu``, ``slope_mu_sd``), its spread across tasks
    ~ HalfNormal(``slope_sd``). The edge logit of task t (the sigmoid's logit at the task's lowest
    fitted loss, so ``midpoint_t = loss_min_t + edge_logit_t / slope_t``) = population mean +
    spread x a Student-t(``edge_nu``) draw, with the mean ~ Normal(``edge_mu``, ``edge_mu_sd``) and
    the spread ~ HalfNormal(``edge_sd``): 0 is halfway up a task's room at its best fitted model,
    -4 about 2% of the way. The share of the room above chance a task can reach, ``(ceiling -
    floor) / (1 - floor)``, ~ Beta(``ceiling_a``, ``ceiling_b``); log concentration's population
    mean ~ Normal(``concentration_mu``, 1.5), spread ~ HalfNormal(1). With several evaluations of one
    run on a task (checkpoints), each (run, task) has a logit offset ~ Normal(0, s), with the spread s
    (``run_sd`` in the posterior) ~ HalfNormal(``run_sd``).

    ``midpoint_offset``, ``midpoint_mu_sd`` and ``midpoint_sd`` (the midpoints' own population,
    before the edge logits replaced it) are deprecated: accepted with a FutureWarning and ignored.
    """

    slope_mu: float = float(np.log(2.0))
    slope_mu_sd: float = 0.75
    slope_sd: float = 0.75
    edge_mu: float = 0.0
    edge_mu_sd: float = 1.5
    edge_sd: float = 2.0
    edge_nu: float = 3.0
    ceiling_a: float = 2.0
    ceiling_b: float = 1.0
    concentration_mu: float = float(np.log(300.0))
    run_sd: float = 0.5
    midpoint_offset: float | None = field(default=None, repr=False, compare=False)
    midpoint_mu_sd: float | None = field(default=None, repr=False, compare=False)
    midpoint_sd: float | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        old = [name for name in DEPRECATED_PRIORS if getattr(self, name) is not None]
        if old:
            warn_user(f"LinkPriors({', '.join(old)}) is deprecated and ignored: the midpoints are pooled through "
                      "the edge logits (edge_mu, edge_mu_sd, edge_sd, edge_nu)", FutureWarning, stacklevel=3)
            for name in old:
                object.__setattr__(self, name, None)
        for name, value in self.to_dict().items():
            if not (isinstance(value, (int, float)) and np.isfinite(value)):
                raise SpecError(f"LinkPriors.{name} must be a finite number, got {value!r}")
        for name in ("slope_mu_sd", "slope_sd", "edge_mu_sd", "edge_sd", "edge_nu", "ceiling_a", "ceiling_b", "run_sd"):
            if getattr(self, name) <= 0:
                raise SpecError(f"LinkPriors.{name} must be positive, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        """The priors as plain data (the deprecated fields left out).

        Examples
        --------
        >>> LinkPriors(slope_sd=0.5).to_dict()["slope_sd"]
        0.5
        """
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in DEPRECATED_PRIORS}


#: Fields of :class:`LinkPriors` that no longer act (the midpoints' own population).
DEPRECATED_PRIORS = ("midpoint_offset", "midpoint_mu_sd", "midpoint_sd")


def check_tasks(table, columns=None) -> pd.DataFrame:
    """The task table as floats, or one :class:`DataError` listing every unusable cell.

    `columns` renames the caller's columns to :data:`TASK_COLUMNS` (``{"acc": "value"}``). Rows with
    the same task must share its chance level and item count.
    """
    if not isinstance(table, pd.DataFrame):
        raise DataError([f"the task table must be a pandas DataFrame, got {type(table).__name__}"],
                        header="Task data is unusable:")
    df = table.rename(columns=dict(columns or {}))
    missing = [c for c in TASK_COLUMNS if c not in df.columns]
    if missing:
        raise DataError([f"missing column {c!r} (needed: {', '.join(TASK_COLUMNS)}; have: "
                         f"{', '.join(map(str, table.columns))})" for c in missing],
                        header="Task data is unusable:")
    if len(df) == 0:
        raise DataError(["the table has no rows"], header="Task data is unusable:")
    out = pd.DataFrame({"task": df["task"].astype(str).to_numpy()}, index=df.index)
    problems = []
    for col, ok, expected in (("loss", lambda v: np.isfinite(v) & (v > 0), "a positive loss"),
                              ("value", lambda v: (v >= 0) & (v <= 1), "a score in [0, 1]"),
                              ("chance", lambda v: (v >= 0) & (v < 1), "a chance level in [0, 1)"),
                              ("items", lambda v: np.isfinite(v) & (v >= 1) & (v == np.round(v)),
                               "a whole number of items >= 1")):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~ok(values)
        for row in np.flatnonzero(bad)[:10]:
            cell = df[col].iloc[row]
            cell = cell.item() if hasattr(cell, "item") else cell
            problems.append(f"row {df.index[row]!r}, column {col!r}: {cell!r} is not {expected}")
        if bad.sum() > 10:
            problems.append(f"... and {int(bad.sum()) - 10} more rows in column {col!r}")
        out[col] = values
    if not problems:
        for col in ("chance", "items"):
            spread = out.groupby("task")[col].nunique()
            for task in spread[spread > 1].index:
                problems.append(f"task {task!r}: column {col!r} takes several values "
                                f"({sorted(out.loc[out['task'] == task, col].unique())[:4]}); one per task expected")
    if problems:
        raise DataError(problems, header=f"Task data has {len(problems)} problem{'s' * (len(problems) != 1)}:")
    return out


# ----------------------------------------------------------------------------- the PyMC model
_GRAPHS: dict = {}


def _pymc_model(n_tasks: int, learned_ceiling: bool, priors: LinkPriors, n_offsets: int = 0):
    import pymc as pm
    import pytensor.tensor as pt

    coords = {"task": np.arange(n_tasks)}
    with pm.Model(coords=coords) as m:
        task = pm.Data("task_index", np.zeros(2, dtype="int64"))
        x = pm.Data("loss_centred", np.zeros(2))
        correct = pm.Data("correct", np.zeros(2, dtype="int64"))
        items = pm.Data("items_row", np.ones(2, dtype="int64"))
        floor = pm.Data("floor", np.zeros(n_tasks), dims="task")
        edge = pm.Data("edge", np.zeros(n_tasks), dims="task")  # each task's lowest fitted loss, centred
        slope_mu = pm.Normal("slope_log_mu", priors.slope_mu, priors.slope_mu_sd)
        slope_sd = pm.HalfNormal("slope_log_sd", priors.slope_sd)
        slope_z = pm.Normal("slope_z", 0.0, 1.0, dims="task")
        slope = pm.Deterministic("slope", pt.exp(slope_mu + slope_sd * slope_z), dims="task")
        edge_mu = pm.Normal("edge_logit_mu", priors.edge_mu, priors.edge_mu_sd)
        edge_sd = pm.HalfNormal("edge_logit_sd", priors.edge_sd)
        edge_z = pm.StudentT("edge_logit_z", nu=priors.edge_nu, mu=0.0, sigma=1.0, dims="task")
        edge_logit = pm.Deterministic("edge_logit", edge_mu + edge_sd * edge_z, dims="task")
        midpoint = pm.Deterministic("midpoint", edge + edge_logit / slope, dims="task")
        if learned_ceiling:
            room = pm.Beta("ceiling_share", priors.ceiling_a, priors.ceiling_b, dims="task")
            ceiling = pm.Deterministic("ceiling", floor + (1.0 - floor) * room, dims="task")
        else:
            fixed_ceiling = pm.Data("fixed_ceiling", np.ones(n_tasks), dims="task")
            ceiling = pm.Deterministic("ceiling", fixed_ceiling + 0.0 * floor, dims="task")
        conc_mu = pm.Normal("concentration_log_mu", priors.concentration_mu, 1.5)
        conc_sd = pm.HalfNormal("concentration_log_sd", 1.0)
        conc_z = pm.Normal("concentration_z", 0.0, 1.0, dims="task")
        kappa = pm.Deterministic("concentration", pt.exp(conc_mu + conc_sd * conc_z), dims="task")
        z = slope[task] * (midpoint[task] - x)
        if n_offsets:  # one logit offset per (run, task): a run's evaluations at its checkpoints move together
            which = pm.Data("offset_index", np.zeros(2, dtype="int64"))
            run_sd = pm.HalfNormal(RUN_SD, priors.run_sd)
            run_z = pm.Normal("run_z", 0.0, 1.0, shape=n_offsets)
            z = z + run_sd * run_z[which]
        p = floor[task] + (ceiling[task] - floor[task]) * pm.math.sigmoid(z)
        p = pt.clip(p, 1e-6, 1.0 - 1e-6)
        pm.BetaBinomial("score", n=items, alpha=p * kappa[task], beta=(1.0 - p) * kappa[task], observed=correct)
    return m


def _graph(n_tasks: int, learned_ceiling: bool, priors: LinkPriors, n_offsets: int = 0):
    key = (n_tasks, learned_ceiling, priors, n_offsets)
    if key not in _GRAPHS:
        m = _pymc_model(n_tasks, learned_ceiling, priors, n_offsets)
        _GRAPHS[key] = Graph(m, ("slope", "midpoint", "ceiling", "concentration", "edge_logit", "slope_log_mu",
                                 "slope_log_sd", "edge_logit_mu", "edge_logit_sd", "concentration_log_mu",
                                 "concentration_log_sd") + ((RUN_SD,) if n_offsets else ()),
                             n_groups=n_tasks)
    return _GRAPHS[key]


# ----------------------------------------------------------------------------- spec and fit
class DownstreamModel:
    """Settings of a pooled loss-to-task-score link (the spec; :meth:`fit` takes the data).

    Parameters
    ----------
    ceiling : "learned" or float, default "learned"
        ``"learned"``: each task's ceiling between its chance level and 1 (prior: the share of the
        room above chance ~ Beta(2, 1)); a float in (0, 1]: every task's known ceiling.
    priors : LinkPriors, optional
        The link's priors (default :class:`LinkPriors`).
    draws, tune, chains : int, default 500, 500, 4
        NUTS draws and tuning steps per chain, and chains (nutpie).
    cores : int, optional
        Chains run at once; default the machine's CPU count.
    target_accept : float, default 0.95
    within_run : {"auto", "offset", "none"}, default "auto"
        Rows that share a ``run`` (the same training run evaluated at several checkpoints) are not
        independent evaluations: ``"offset"`` gives each (run, task) a logit offset drawn from one
        pooled spread (``run_sd`` in the posterior), which a new run's band then carries; ``"auto"``
        does so when the table has a ``run`` column and some run has several rows on one task;
        ``"none"`` treats every row as its own run.
    escalate : bool, default True
        A fit that fails its diagnostics (R-hat <= 1.01, bulk ESS >= 400, no divergences) is sampled
        again with 2, 4 and 8 times the draws and tuning (and target_accept 0.99 after divergences) until
        one passes, as loss fits are (:data:`bayescale.fitting.sampling.ESCALATION`); the fit returned says how
        many attempts it took (``idata.attrs["sampler"]``).
    form_sd : float, default :data:`LINK_FORM_SD`
        The link's form uncertainty, applied to predictions: the sd of the sigmoid's logit per nat of
        loss below a task's lowest fitted loss (a sigmoid fitted inside the data is not known to hold
        beyond it). 0 takes the sigmoid's form as known.

    Examples
    --------
    >>> import bayescale as bs
    >>> table = bs.datasets.load_gadre_downstream()
    >>> link = DownstreamModel(draws=300).fit(table[table["N"] < 1e9], random_seed=1)  # doctest: +SKIP
    >>> link.predict(2.5, task="arc_easy")  # doctest: +SKIP
    """

    def __init__(self, ceiling="learned", *, priors=None, draws=500, tune=500, chains=4, cores=None,
                 target_accept=0.95, form_sd=None, escalate=True, within_run="auto"):
        form_sd = LINK_FORM_SD if form_sd is None else form_sd
        if isinstance(form_sd, bool) or not isinstance(form_sd, (int, float)) or not 0 <= form_sd < np.inf:
            raise SpecError(f"form_sd must be a finite number >= 0 (logits per nat), got {form_sd!r}")
        if isinstance(ceiling, str):
            if ceiling != "learned":
                raise SpecError(f"ceiling must be 'learned' or a number in (0, 1], got {ceiling!r}")
        elif isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or not 0 < ceiling <= 1:
            raise SpecError(f"ceiling must be 'learned' or a number in (0, 1], got {ceiling!r}")
        if priors is not None and not isinstance(priors, LinkPriors):
            raise SpecError(f"priors must be a bayescale.fitting.downstream.LinkPriors, got {type(priors).__name__}")
        for name, value, low in (("draws", draws, 10), ("tune", tune, 10), ("chains", chains, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise SpecError(f"{name} must be an integer >= {low}, got {value!r}")
        if cores is not None and (isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 1):
            raise SpecError(f"cores must be a positive integer or None, got {cores!r}")
        if not isinstance(target_accept, float) or not 0.5 <= target_accept < 1:
            raise SpecError(f"target_accept must be a float in [0.5, 1), got {target_accept!r}")
        self.ceiling = ceiling
        self.priors = priors or LinkPriors()
        self.draws, self.tune, self.chains = int(draws), int(tune), int(chains)
        self.cores = cores
        self.target_accept = target_accept
        self.form_sd = float(form_sd)
        self.escalate = check_flag(escalate, "escalate")
        self.within_run = check_within_run(within_run)

    def __repr__(self):
        return (f"DownstreamModel(ceiling={self.ceiling!r}, draws={self.draws}, tune={self.tune}, "
                f"chains={self.chains})")

    def to_dict(self) -> dict:
        """The settings as plain data (what a saved link stores; :meth:`from_dict` reads it back).

        Examples
        --------
        >>> DownstreamModel.from_dict(DownstreamModel(draws=300).to_dict()).draws
        300
        """
        return {"ceiling": self.ceiling, "priors": self.priors.to_dict(), "draws": self.draws,
                "tune": self.tune, "chains": self.chains, "cores": self.cores, "target_accept": self.target_accept,
                "form_sd": self.form_sd, "escalate": self.escalate, "within_run": self.within_run}

    @classmethod
    def from_dict(cls, spec) -> "DownstreamModel":
        """A model from :meth:`to_dict`'s plain data; SpecError names a missing or unknown key."""
        if not isinstance(spec, dict):
            raise SpecError(f"a downstream model's settings must be a mapping, got {type(spec).__name__}")
        known = {"ceiling", "priors", "draws", "tune", "chains", "cores", "target_accept", "form_sd", "escalate",
                 "within_run"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SpecError(f"unknown downstream model setting(s) {unknown}; known: {sorted(known)}")
        settings = dict(spec)
        priors = settings.pop("priors", None)
        if priors is not None:
            if not isinstance(priors, dict):
                raise SpecError(f"priors must be a mapping of LinkPriors fields, got {type(priors).__name__}")
            try:
                priors = LinkPriors(**priors)
            except TypeError as exc:
                raise SpecError(f"priors: {exc}") from None
        return cls(priors=priors, **settings)

    def fit(self, table, *, columns=None, random_seed=None, cache_dir=None) -> "DownstreamFit":
        """Sample the link's posterior given a task table.

        Parameters
        ----------
        table : DataFrame
            One row per (model, task): columns ``task``, ``loss``, ``value`` (score in [0, 1]),
            ``chance`` (the task's chance level), ``items`` (its number of questions); others are
            kept in ``fit.data``.
            An optional ``run`` column names the training run of each row: rows of one run at several
            checkpoints get a shared logit offset per task (see ``within_run``).
        columns : mapping, optional
            Renames the table's columns to those names, e.g. ``{"acc": "value", "model": "run"}``.
        random_seed : int, optional
        cache_dir : path, False or None
            Folder of compiled models (:func:`bayescale.base.compiled.cache_dir`); False: none.

        Returns
        -------
        DownstreamFit

        Raises
        ------
        DataError
            Listing every unusable cell (row, column, value, what is expected), before any sampling.
        """
        random_seed = check_seed(random_seed)
        data = check_tasks(table, columns)
        tasks = list(dict.fromkeys(data["task"]))
        offsets = run_offsets(table.rename(columns=dict(columns or {})), data, self.within_run)
        info = data.groupby("task", sort=False).agg(chance=("chance", "first"), items=("items", "first"),
                                                    rows=("loss", "size"), loss_min=("loss", "min"),
                                                    loss_max=("loss", "max")).loc[tasks]
        if isinstance(self.ceiling, float) or isinstance(self.ceiling, int):
            low = info[info["chance"] >= self.ceiling]
            if len(low):
                raise SpecError(f"ceiling={self.ceiling} is not above the chance level of task(s) "
                                f"{list(low.index)} ({low['chance'].tolist()})")
        centre = float(np.median(data["loss"]))
        values = {
            "task_index": data["task"].map({t: i for i, t in enumerate(tasks)}).to_numpy(dtype="int64"),
            "loss_centred": data["loss"].to_numpy() - centre,
            "correct": np.round(data["value"].to_numpy() * data["items"].to_numpy()).astype("int64"),
            "items_row": data["items"].to_numpy(dtype="int64"),
            "floor": info["chance"].to_numpy(dtype=float),
            "edge": info["loss_min"].to_numpy(dtype=float) - centre,
        }
        if self.ceiling != "learned":
            values["fixed_ceiling"] = np.full(len(tasks), float(self.ceiling))
        n_offsets = 0 if offsets is None else int(offsets.max()) + 1
        if n_offsets:
            values["offset_index"] = offsets
        graph = _graph(len(tasks), self.ceiling == "learned", self.priors, n_offsets)
        t0 = time.perf_counter()
        compile_for_nutpie(graph, cache_dir)
        import nutpie

        compiled = graph.nutpie_model.with_data(**values)
        t1 = time.perf_counter()
        seed = int(np.random.default_rng().integers(2**31)) if random_seed is None else random_seed
        draws, tune, target, factors = self.draws, self.tune, self.target_accept, (ESCALATION if self.escalate else ())
        extra = {c: table[c].to_numpy() for c in table.columns if c not in data.columns and columns is None}
        fitted = data.assign(**extra)
        for attempt in range(len(factors) + 1):
            t2 = time.perf_counter()
            trace = nutpie.sample(compiled, draws=draws, tune=tune, chains=self.chains,
                                  cores=self.cores or os.cpu_count() or 1, seed=seed, progress_bar=False,
                                  target_accept=target)
            t3 = time.perf_counter()
            tree = _link_tree(trace, tasks, centre, info)
            tree.attrs.update(ceiling=json.dumps(self.ceiling), priors=json.dumps(self.priors.to_dict()),
                              sampler=json.dumps(dict(draws=draws, tune=tune, chains=self.chains, target_accept=target,
                                                      random_seed=random_seed, attempts=attempt + 1)),
                              timing=json.dumps(dict(compile_seconds=t1 - t0, sampling_seconds=t3 - t1)))
            fit = DownstreamFit(self, fitted, tree)
            if attempt == len(factors) or fit.converged:
                break
            tune, draws, target = escalated(self.tune, self.draws, target, factors[attempt],
                                            fit.diagnostics()["divergences"])
        fit._warn_if_unconverged()
        return fit


def run_offsets(table, data, within_run):
    """Index of each row's (run, task) offset, or None: no ``run`` column, ``"none"``, or (auto) one row per pair.

    Raises
    ------
    DataError
        ``within_run="offset"`` without a ``run`` column, or a missing run name (naming the rows).
    """
    if within_run == "none":
        return None
    if "run" not in table.columns:
        if within_run == "offset":
            raise DataError(["within_run='offset' needs a 'run' column naming each row's training run (have: "
                             f"{', '.join(map(str, table.columns))})"], header="Task data is unusable:")
        return None
    run = table.loc[data.index, "run"]
    missing = run.index[run.isna()]
    if len(missing):
        raise DataError([f"row {i!r}, column 'run': a missing run name; name every row's run, or drop the column"
                         for i in missing[:10]], header="Task data is unusable:")
    pairs = pd.Series(list(zip(run.astype(str), data["task"])), index=data.index)
    if within_run == "auto" and not pairs.duplicated().any():
        return None
    return pd.factorize(pairs)[0].astype("int64")


def _link_tree(trace, tasks, centre, info):
    """The link's draws as a DataTree: the per-task and population parameters, sample stats, the task table."""
    post = trace["posterior"].to_dataset() if hasattr(trace["posterior"], "to_dataset") else trace["posterior"]
    post = post.assign_coords(task=tasks)
    post["midpoint"] = post["midpoint"] + centre
    keep = [v for v in post.data_vars if not v.endswith("_z") and v != "ceiling_share"]
    stats = trace["sample_stats"].to_dataset() if hasattr(trace["sample_stats"], "to_dataset") \
        else trace["sample_stats"]
    stats = stats[[v for v in stats.data_vars if stats[v].dtype.kind in "biuf"]]
    const = xr.Dataset({"chance": ("task", info["chance"].to_numpy()),
                        "items": ("task", info["items"].to_numpy()),
                        "loss_min": ("task", info["loss_min"].to_numpy()),
                        "loss_max": ("task", info["loss_max"].to_numpy()),
                        "rows": ("task", info["rows"].to_numpy())}, coords={"task": tasks})
    return xr.DataTree.from_dict({"posterior": post[keep], "sample_stats": stats, "constant_data": const})


def link_from_tree(tree, source="the link") -> DownstreamFit:
    """Rebuild a :class:`DownstreamFit` from the tree :meth:`DownstreamFit.save` wrote (read by :func:`bayescale.load`).

    Raises
    ------
    FileFormatError
        The tree is not a saved link, is from a newer format, lacks a part, or its settings do not parse.
    """
    if tree.attrs.get("bayescale_kind") != FILE_KIND:
        raise FileFormatError(f"{source} is not a saved downstream link (attribute bayescale_kind is "
                              f"{tree.attrs.get('bayescale_kind')!r}, expected {FILE_KIND!r})")
    try:
        fmt = int(tree.attrs.get("bayescale_format"))
    except (TypeError, ValueError):
        raise FileFormatError(f"{source}: format version {tree.attrs.get('bayescale_format')!r} is not an integer; "
                              "the file is damaged") from None
    if fmt > LINK_FORMAT_VERSION:
        raise FileFormatError(f"{source} was written in downstream link format {fmt} (by bayescale "
                              f"{tree.attrs.get('bayescale_version', '?')}); this version reads format <= "
                              f"{LINK_FORMAT_VERSION}. Upgrade bayescale.")
    missing = [g for g in ("posterior", "constant_data", "observed_data") if g not in tree.children]
    missing += [a for a in ("model_spec",) if a not in tree.attrs]
    if missing:
        raise FileFormatError(f"{source} is missing group(s) or attribute(s) {missing}; the file is incomplete")
    try:
        spec = json.loads(tree.attrs["model_spec"])
        if fmt < 2 and isinstance(spec, dict) and isinstance(spec.get("priors"), dict):  # the midpoints' old priors
            spec["priors"] = {k: v for k, v in spec["priors"].items() if k not in DEPRECATED_PRIORS}
        model = DownstreamModel.from_dict(spec)
    except (ValueError, SpecError) as exc:
        raise FileFormatError(f"{source}: the link's settings (attribute model_spec) are unreadable ({exc})") from None
    absent = [n for n in LINK_PARAMS if n not in tree["posterior"].data_vars]
    if absent:
        raise FileFormatError(f"{source}: the posterior lacks {absent}; the file is damaged")
    table = tree["observed_data"].to_dataset()
    data = pd.DataFrame({name: table[name].values for name in table.data_vars})
    idata = tree.copy(deep=False)
    del idata["observed_data"]
    idata.attrs = {k: v for k, v in tree.attrs.items()
                   if k not in (DIGEST_ATTR, "bayescale_format", "bayescale_kind", "bayescale_version", "model_spec")}
    return DownstreamFit(model, data, idata)
