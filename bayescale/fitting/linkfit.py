"""A fitted loss-to-task-score link (:class:`DownstreamFit`): its draws, summaries, predictions and file.

The draws live in an xarray ``DataTree`` (``fit.idata``); :class:`bayescale.fitting.downstream.DownstreamModel`
makes one, :func:`bayescale.fitting.downstream.link_from_tree` reads one back from its file.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from ..analysis.contract import check_ci_kind, interval, interval_label
from ..runs.data import RUN_SD
from ..base.digest import DIGEST_ATTR, tree_digest
from ..base.errors import ConvergenceWarning, warn_user
from ..base.files import NETCDF_ENGINE, atomic_write
from ..analysis.taskplan import band_frame, evaluation_noise, pairing, task_budget_for, task_risk
from ..base.validation import check_prob, check_seed
from ..base.version import __version__
from .fit import ESS_MIN, RHAT_MAX

__all__ = ["DownstreamFit", "FILE_KIND", "LINK_FORMAT_VERSION", "LINK_PARAMS"]


#: What a saved link's file says it holds (attribute ``bayescale_kind``): :func:`bayescale.load` reads it back
#: as a :class:`DownstreamFit`. Files of loss fits carry no kind.
FILE_KIND = "downstream link"
#: Format version of saved links; a reader refuses a newer one.
LINK_FORMAT_VERSION = 2  # 2: midpoints pooled through the edge logits; format 1 is read (its old prior fields dropped)
#: Names of the link's parameters per task, in the posterior.
LINK_PARAMS = ("slope", "midpoint", "ceiling", "concentration")


class DownstreamFit:
    """A fitted loss-to-task-score link: draws in ``idata`` (an xarray ``DataTree``), analyses as functions.

    Attributes
    ----------
    model : DownstreamModel
    data : DataFrame
        The checked task table it was fitted to.
    idata : xarray.DataTree
        ``posterior`` (``slope``, ``midpoint``, ``ceiling``, ``concentration`` per task, and the
        population parameters), ``sample_stats``, ``constant_data`` (each task's ``chance``,
        ``items``, ``loss_min``, ``loss_max``, ``rows``).
    """

    draws_kind = "posterior"

    def __init__(self, model, data, idata):
        self.model = model
        self.data = data
        self.idata = idata

    def save(self, path) -> None:
        """Write the link (draws, the fitted task table, the settings) to one netCDF file.

        Written as a loss fit is (:meth:`bayescale.ScalingFit.save`): through a temporary file renamed
        over `path`, with a digest of each part, so :func:`bayescale.load` returns an equal
        :class:`DownstreamFit` and refuses a file edited after saving. Columns of the task table that are
        neither numbers nor text are not stored.

        Examples
        --------
        >>> link.save("link.nc")  # doctest: +SKIP
        >>> same = bs.load("link.nc")  # doctest: +SKIP
        """
        table = {}
        for name in self.data.columns:
            values = self.data[name].to_numpy()
            if values.dtype.kind in "biuf":
                table[str(name)] = ("row", values)
            elif all(isinstance(v, str) for v in values):
                table[str(name)] = ("row", values.astype(str))
        tree = self.idata.copy(deep=False)
        tree["observed_data"] = xr.DataTree(xr.Dataset(table))
        tree.attrs = {**self.idata.attrs, "bayescale_format": LINK_FORMAT_VERSION, "bayescale_kind": FILE_KIND,
                      "bayescale_version": __version__, "model_spec": json.dumps(self.model.to_dict())}
        tree.attrs[DIGEST_ATTR] = json.dumps(tree_digest(tree))
        atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine=NETCDF_ENGINE), "downstream link")

    @property
    def tasks(self) -> list:
        """The fitted tasks, in the order of the posterior's ``task`` coordinate."""
        return [str(t) for t in self.idata["constant_data"]["task"].values]

    def task_info(self) -> pd.DataFrame:
        """One row per task: ``chance``, ``items``, ``rows``, ``loss_min``, ``loss_max`` of the fitted data."""
        return self.idata["constant_data"].to_dataset().to_dataframe()

    def __repr__(self):
        return f"DownstreamFit({len(self.tasks)} tasks, {len(self.data)} rows, converged={self.converged})"

    def check_task(self, task) -> list:
        """`task` (a name, a list of names or None for all) as a list of fitted task names, or ValueError."""
        if task is None:
            return self.tasks
        wanted = [task] if isinstance(task, str) else list(task)
        unknown = [t for t in wanted if t not in self.tasks]
        if unknown:
            raise ValueError(f"task {unknown[0]!r} was not fitted; fitted tasks: {', '.join(self.tasks)}")
        return wanted

    def link_draws(self, task) -> dict:
        """Per-draw link parameters of one task, flattened over (chain, draw): ``{name: array (draws,)}``."""
        (task,) = self.check_task(task)
        post = self.idata["posterior"]
        return {name: post[name].sel(task=task).values.reshape(-1) for name in LINK_PARAMS}

    def diagnostics(self) -> dict:
        """Worst R-hat, smallest bulk ESS and the divergences over the per-task parameters."""
        import arviz_stats as azs

        post = self.idata["posterior"].to_dataset()[list(LINK_PARAMS)]
        rhat = azs.rhat(post)
        ess = azs.ess(post)
        div = self.idata["sample_stats"].to_dataset().get("diverging")
        return {"r_hat_max": float(max(float(rhat[v].max()) for v in rhat.data_vars)),
                "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
                "divergences": int(div.sum()) if div is not None else 0}

    @property
    def converged(self) -> bool:
        """As for a loss fit: R-hat <= 1.01 and bulk ESS >= 400 over the per-task parameters, no divergences."""
        d = self.diagnostics()
        return d["r_hat_max"] <= RHAT_MAX and d["ess_bulk_min"] >= ESS_MIN and d["divergences"] == 0

    def _warn_if_unconverged(self):
        if self.converged:
            return
        d = self.diagnostics()
        warn_user(f"the downstream link did not pass its diagnostics (max R-hat {d['r_hat_max']:.3f}, min bulk ESS "
                  f"{d['ess_bulk_min']:.0f}, {d['divergences']} divergent transitions): more draws and tuning, or "
                  "target_accept=0.99, before a decision rests on it", ConvergenceWarning, stacklevel=3)

    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Per task and parameter: ``estimate`` (median), ``sd``, ``lower``, ``upper``.

        Examples
        --------
        >>> link.summary().loc["arc_easy"]  # doctest: +SKIP
        """
        check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        rows = []
        for task in self.tasks:
            for name, v in self.link_draws(task).items():
                est, lo, hi = interval(v[:, None], prob, ci_kind)
                rows.append(dict(task=task, parameter=name, estimate=float(est[0]), sd=float(np.std(v)),
                                 lower=float(lo[0]), upper=float(hi[0])))
        frame = pd.DataFrame(rows).set_index(["task", "parameter"])
        frame.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind))
        return frame

    def accuracy_draws(self, loss, task, *, random_seed=None, draw_index=None):
        """Each draw's expected score and one new evaluation's score at per-draw losses.

        Parameters
        ----------
        loss : array (draws, rows) or (rows,)
            Loss draws (e.g. of a loss fit at a budget), or fixed losses.
        task : str
        random_seed : int, optional
            Seed of the pairing of loss draws with link draws and of the evaluation noise.
        draw_index : array of int, optional
            Which link draw goes with each loss draw (default: a random balanced pairing).

        Returns
        -------
        curve, new : ndarray (draws, rows)
            The link's expected score at each draw's loss, and one evaluation's score on the task's
            items (Beta-Binomial around it; for a link fitted with run offsets, around the expected
            score of one new run, whose offset is drawn from the runs' spread).
        """
        loss = np.atleast_2d(np.asarray(loss, dtype=float))
        rng = np.random.default_rng(random_seed)
        n_link = self.n_draws
        if loss.shape[0] == 1:
            loss = np.repeat(loss, n_link, axis=0)
        if draw_index is None:
            draw_index = pairing(loss.shape[0], n_link, rng)
        form_normal = rng.standard_normal((loss.shape[0], 1))
        curve = self.curve_at(loss, task, draw_index, form_normal)
        items = int(self.idata["constant_data"]["items"].sel(task=task))
        kappa = self.link_draws(task)["concentration"][draw_index][:, None]
        if self.run_sd_draws is None:
            return curve, evaluation_noise(curve, kappa, items, rng)
        run = self.curve_at(loss, task, draw_index, form_normal, rng.standard_normal((loss.shape[0], 1)))
        return curve, evaluation_noise(run, kappa, items, rng)

    @property
    def n_draws(self) -> int:
        """Number of posterior draws (chains x draws)."""
        post = self.idata["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    def curve_at(self, loss, task, draw_index, form_normal, run_normal=None):
        """The link's expected score at per-draw losses (draws, rows), with the link's form discrepancy.

        Beyond the task's lowest fitted loss the sigmoid's logit moves by ``form_sd * distance *
        form_normal`` (``form_normal``: one standard normal per draw, shaped (draws, 1)), so the band
        widens with the distance in loss, as the loss law's form uncertainty widens with compute.
        With ``run_normal`` (the same shape) and a link fitted with run offsets, the logit also moves by
        ``run_sd * run_normal``: the expected score of one new run rather than of the typical run.
        """
        (task,) = self.check_task(task)
        p = {k: v[draw_index][:, None] for k, v in self.link_draws(task).items()}
        const = self.idata["constant_data"]
        chance = float(const["chance"].sel(task=task))
        beyond = np.maximum(float(const["loss_min"].sel(task=task)) - loss, 0.0)
        z = p["slope"] * (p["midpoint"] - loss) + self.form_sd * beyond * form_normal
        if run_normal is not None and self.run_sd_draws is not None:
            z = z + self.run_sd_draws[draw_index][:, None] * run_normal
        return chance + (p["ceiling"] - chance) * expit(z)

    @property
    def run_sd_draws(self):
        """Draws of the spread of the runs' logit offsets (flattened over chain and draw), or None without them."""
        post = self.idata["posterior"]
        return post[RUN_SD].values.reshape(-1) if RUN_SD in post.data_vars else None

    @property
    def form_sd(self) -> float:
        """The link's form uncertainty: sd of its logit per nat of loss below a task's fitted losses."""
        return float(self.model.form_sd)

    def predict(self, loss, task=None, prob=0.9, *, ci_kind="eti", random_seed=None) -> pd.DataFrame:
        """Task scores at given losses: the median, the curve band and the new-evaluation band.

        Parameters
        ----------
        loss : float or sequence of float
            Losses (in the units of the fitted ``loss`` column).
        task : str or list of str, optional
            Default: every fitted task.
        prob : float, default 0.9
        ci_kind : {"eti", "hdi"}
        random_seed : int, optional

        Returns
        -------
        DataFrame
            One row per (task, loss): ``task``, ``chance``, ``loss``, ``accuracy_median``,
            ``curve_lower``, ``curve_upper`` (the link's expected score), ``new_run_lower``,
            ``new_run_upper`` (one evaluation of a model with that loss on the task's items),
            ``beyond_loss`` (nats below the task's lowest fitted loss; 0 inside).

        Examples
        --------
        >>> link.predict([3.0, 2.5], task="arc_easy")  # doctest: +SKIP
        """
        check_prob(prob)
        ci_kind = check_ci_kind(ci_kind)
        random_seed = check_seed(random_seed)
        losses = np.atleast_1d(np.asarray(loss, dtype=float))
        if losses.ndim != 1 or not np.all(np.isfinite(losses) & (losses > 0)):
            raise ValueError(f"loss must be positive finite numbers, got {loss!r}")
        frames = []
        for i, t in enumerate(self.check_task(task)):
            curve, new = self.accuracy_draws(losses, t, random_seed=None if random_seed is None else random_seed + i)
            frames.append(band_frame(t, self, curve, new, prob, ci_kind).assign(loss=losses))
        out = pd.concat(frames, ignore_index=True)
        lo = self.idata["constant_data"]["loss_min"].to_series()
        out["beyond_loss"] = np.maximum(out["task"].map(lo).to_numpy() - out["loss"].to_numpy(), 0.0)
        out = out[["task", "chance", "loss", "accuracy_median", "curve_lower", "curve_upper", "new_run_lower",
                   "new_run_upper", "beyond_loss"]]
        out.attrs.update(prob=prob, interval=interval_label(self.draws_kind, ci_kind))
        return out

    # thin methods over bayescale.analysis.taskplan
    def risk(self, loss_fit, budget=None, *, plan=None, target=None, task=None, prob=0.9, ci_kind="eti",
             random_seed=None):
        """Task scores at budgets or plans through `loss_fit`; see :func:`bayescale.analysis.taskplan.task_risk`."""
        return task_risk(loss_fit, self, budget, plan=plan, target=target, task=task, prob=prob,
                         ci_kind=ci_kind, random_seed=random_seed)

    def budget_for(self, loss_fit, task, target, prob=0.9, *, random_seed=None, max_compute=1e30):
        """Compute for a task score with a probability; see :func:`bayescale.analysis.taskplan.task_budget_for`."""
        return task_budget_for(loss_fit, self, task, target, prob, random_seed=random_seed,
                               max_compute=max_compute)
