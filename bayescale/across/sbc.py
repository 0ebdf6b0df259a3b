"""Simulation-based calibration (Talts et al. 2018, "Validating Bayesian Inference Algorithms
with Simulation-Based Calibration").

Draw parameters from the priors, simulate runs on a fixed design with the
likelihood's noise, fit each simulated data set, and record the rank of each
true parameter among thinned posterior draws. If the model and sampler are
right, every rank is uniform on ``0 .. n_ranks``; a U shape means intervals are
too narrow, a hump too wide, a slope a bias.

Priors must stay fixed across simulations. The data-scaled default priors
change with the data, so :func:`sbc` resolves them once, from the design's own
``loss`` column (or takes them all from the model) and fits every simulated
data set with those same priors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..base.errors import SpecError
from ..base.validation import MAX_SEED, check_seed as _check_seed
from ..many.batch import fit_many
from ..runs.data import load_runs
from ..fitting.model import ScalingModel

__all__ = ["sbc", "SBCResult", "draw_parameters", "simulate_runs"]


def _fixed_model(model, design):
    """A copy of `model` with every prior explicit (resolved once from the design if needed)."""
    if getattr(model, "hierarchical", False):
        raise SpecError("sbc() supports models without groups; fit a model with shared parameters")
    missing = [n for n in model.param_names if n not in model.priors]
    if missing and not design.has("loss"):
        raise SpecError(
            f"sbc() needs priors fixed across simulations, but {', '.join(missing)} use data-scaled defaults. "
            "Give the design a 'loss' column (e.g. your real runs) to scale them once, or set priors for "
            "every parameter in ScalingModel(priors=...)")
    priors = model.resolve_priors(design) if missing else dict(model.priors)
    spec = model.to_dict()
    spec["priors"] = {k: priors[k].to_dict() for k in model.param_names}
    return ScalingModel.from_dict(spec)


def draw_parameters(model, n, rng) -> pd.DataFrame:
    """Draw `n` parameter sets from a model's (explicit) priors.

    Coefficients follow the model's convention: for ``A`` scaling as
    ``A / N**alpha`` with prior ``LogNormal(mu, sigma, at)``,
    ``log(A / at**alpha) ~ Normal(mu, sigma)`` (``at=None`` means 1), so the
    exponent is drawn first.

    Parameters
    ----------
    model : ScalingModel
        With a prior for every parameter.
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    DataFrame
        One column per parameter (:attr:`ScalingModel.param_names`), `n` rows.

    Examples
    --------
    >>> import numpy as np, bayescale as bs
    >>> from bayescale.core.priors import LogNormal, HalfNormal
    >>> m = bs.ScalingModel("power_n", likelihood="normal", priors={"E": LogNormal(0.5, 0.1),
    ...     "A": LogNormal(0.0, 0.3, at=1e9), "alpha": LogNormal(-1.0, 0.1), "sigma": HalfNormal(0.01)})
    >>> draw_parameters(m, 3, np.random.default_rng(0)).columns.tolist()
    ['E', 'A', 'alpha', 'sigma']
    """
    law = model.law
    missing = [k for k in model.param_names if k not in model.priors]
    if missing:
        raise SpecError(f"draw_parameters() needs explicit priors; missing for {', '.join(missing)}")
    out = {}
    scaled = {p.name: p.scales_with for p in law.parameters if p.scales_with is not None}
    for name in model.param_names:
        if name not in scaled:
            out[name] = np.asarray(model.priors[name].sample(rng, n), dtype=float)
    for name, (_inp, expo) in scaled.items():
        prior = model.priors[name]
        k = out[expo] if isinstance(expo, str) else float(expo)
        log_at = 0.0 if prior.at is None else np.log(prior.at)
        out[name] = np.exp(prior.mu + k * log_at + prior.sigma * rng.standard_normal(n))
    return pd.DataFrame({k: out[k] for k in model.param_names})


def simulate_runs(model, design, params: pd.DataFrame, rng, noise_scale=1.0) -> pd.DataFrame:
    """Simulate one data set per row of `params` on the design, with the likelihood's noise.

    Parameters
    ----------
    model : ScalingModel
    design : RunData
        Inputs of the law.
    params : DataFrame
        One parameter set per row (e.g. from :func:`draw_parameters`).
    rng : numpy.random.Generator
    noise_scale : float
        Multiplies the noise on log loss. 1 simulates from the model; other
        values deliberately mis-specify it (a negative control for SBC).

    Returns
    -------
    DataFrame
        Column ``sim`` (the row label of `params`), the law's inputs and ``loss``.
    """
    law = model.law
    inputs = {k: v[None, :] for k, v in design.inputs(law.inputs).items()}
    values = {k: params[k].to_numpy(dtype=float)[:, None] for k in model.param_names}
    with np.errstate(all="ignore"):
        log_mu = np.asarray(law.log_loss(inputs, values))
        shape = (len(params), design.n_runs)
        if model.likelihood == "student_t":
            noise = rng.standard_t(np.broadcast_to(values["nu"], shape))
        else:
            noise = rng.standard_normal(shape)
        loss = np.exp(log_mu + noise_scale * values["sigma"] * noise)
    frame = pd.DataFrame({"sim": np.repeat(params.index.to_numpy(), design.n_runs)})
    for k, v in design.inputs(law.inputs).items():
        frame[k] = np.tile(v, len(params))
    frame["loss"] = loss.ravel()
    return frame


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def default_bins(n_ranks, n_sims) -> int:
    """Bins for the rank test: the most that divide the ``n_ranks + 1`` rank values evenly and keep
    about 5 or more simulations per bin.

    Examples
    --------
    >>> default_bins(99, 40), default_bins(99, 100), default_bins(99, 1000)
    (5, 20, 100)
    """
    cap = max(2, n_sims // 5)
    fits = [d for d in _divisors(n_ranks + 1) if 2 <= d <= cap]
    return max(fits) if fits else 2 if (n_ranks + 1) % 2 == 0 else n_ranks + 1


def sbc(model, design, n_sims=100, *, draws=200, tune=200, chains=2, n_ranks=99, noise_scale=1.0,
        executor=None, checkpoint_dir=None, random_seed=None, progressbar=None) -> "SBCResult":
    """Simulation-based calibration of a model on a design.

    Parameters
    ----------
    model : ScalingModel
        The model to check. Priors missing from it are resolved once from the
        design's ``loss`` column and then kept fixed.
    design : DataFrame, RunData or path
        The runs' inputs (e.g. an (N, D) grid), as in :func:`load_runs`;
        a ``loss`` column is used only to resolve default priors.
    n_sims : int
        Number of simulated data sets.
    draws, tune, chains : int
        Sampler settings of each fit (``chains * draws >= n_ranks``).
    n_ranks : int, default 99
        Posterior draws kept (evenly thinned) for each rank, so ranks run
        from 0 to `n_ranks`; thinning reduces autocorrelation, as Talts et al.
        recommend.
    noise_scale : float, default 1
        Multiplies the simulated noise. Values other than 1 mis-specify the
        likelihood on purpose: a negative control that SBC must flag.
    executor, checkpoint_dir, progressbar
        As in :func:`fit_many`, which runs the fits (one key per simulation).
    random_seed : int, optional
        Seeds the parameter draws, the noise and the fits.

    Returns
    -------
    SBCResult
        ``.ranks``, ``.truths``, ``.test()`` (chi-square uniformity test per
        parameter), ``.plot()`` (rank histograms).

    Examples
    --------
    >>> import bayescale as bs
    >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
    >>> result = bs.sbc(bs.ScalingModel("chinchilla"), runs.sample(20, random_state=0),
    ...                 n_sims=100, random_seed=1)  # doctest: +SKIP
    >>> result.test()  # doctest: +SKIP
    >>> result.plot()  # doctest: +SKIP
    """
    random_seed = _check_seed(random_seed)

    for name, value in (("n_sims", n_sims), ("draws", draws), ("chains", chains), ("n_ranks", n_ranks)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if chains * draws < n_ranks:
        raise ValueError(f"chains * draws = {chains * draws} posterior draws cannot be thinned to "
                         f"n_ranks = {n_ranks}; raise draws or lower n_ranks")
    if not (isinstance(noise_scale, (int, float)) and noise_scale > 0):
        raise ValueError(f"noise_scale must be a positive number, got {noise_scale!r}")
    runs = load_runs(design, require=model.law.inputs, require_loss=False,
                     min_runs=len(model.param_names))
    fixed = _fixed_model(model, runs)
    seq = np.random.SeedSequence(random_seed)
    if random_seed is None:
        random_seed = int(seq.entropy % (2**31))
    rng = np.random.default_rng(seq)
    truths = draw_parameters(fixed, n_sims, rng)
    truths.index = pd.RangeIndex(n_sims, name="sim")
    frame = simulate_runs(fixed, runs, truths, rng, noise_scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is counted in the result
        fits = fit_many(fixed, frame, by="sim", executor=executor, checkpoint_dir=checkpoint_dir, draws=draws,
                        tune=tune, chains=chains, cores=1, random_seed=(int(random_seed) + 1) % (MAX_SEED + 1),
                        progressbar=progressbar, escalate=False)  # ranks need the settings fixed in advance
    ranks = {}
    for sim, fit in fits.items():
        post = fit.posterior
        row = {}
        for name in fixed.param_names:
            flat = post[name].values.reshape(-1)
            keep = flat[np.round(np.linspace(0, flat.size - 1, n_ranks)).astype(int)]
            row[name] = int(np.sum(keep < truths.at[sim, name]))
        ranks[sim] = row
    ranks = pd.DataFrame.from_dict(ranks, orient="index", columns=list(fixed.param_names)).sort_index()
    ranks.index.name = "sim"
    converged = pd.Series({sim: fits.converged(sim) for sim in ranks.index}, name="converged", dtype=bool)
    return SBCResult(fixed, runs, truths, ranks, n_ranks, converged, dict(fits.errors), fits, noise_scale)


class SBCResult:
    """Ranks of the true parameters among posterior draws, over simulations (from :func:`sbc`).

    Attributes
    ----------
    model : ScalingModel
        The model fitted, with the fixed priors used.
    design : RunData
    truths : DataFrame
        The simulated parameters, one row per simulation.
    ranks : DataFrame
        Rank (0 .. `n_ranks`) of each true parameter among the thinned posterior
        draws, one row per simulation that fitted.
    converged : Series
        Whether each simulation's fit converged.
    errors : dict
        Simulations whose fit failed, with the error.
    fits : FitCollection
    """

    def __init__(self, model, design, truths, ranks, n_ranks, converged, errors, fits, noise_scale=1.0):
        self.model = model
        self.design = design
        self.truths = truths
        self.ranks = ranks
        self.n_ranks = int(n_ranks)
        self.converged = converged
        self.errors = errors
        self.fits = fits
        self.noise_scale = noise_scale

    @property
    def n_sims(self) -> int:
        """Simulations with a fit (failed ones excluded)."""
        return len(self.ranks)

    def _bins(self, bins):
        bins = default_bins(self.n_ranks, self.n_sims) if bins is None else int(bins)
        if (self.n_ranks + 1) % bins:
            raise ValueError(f"bins must divide the {self.n_ranks + 1} rank values evenly; "
                             f"valid: {[d for d in _divisors(self.n_ranks + 1) if d >= 2]}")
        return bins

    def counts(self, bins=None) -> pd.DataFrame:
        """Histogram of the ranks: one row per bin, one column per parameter."""
        bins = self._bins(bins)
        width = (self.n_ranks + 1) // bins
        out = {name: np.bincount(self.ranks[name].to_numpy() // width, minlength=bins) for name in self.ranks}
        return pd.DataFrame(out, index=pd.RangeIndex(bins, name="bin"))

    def test(self, bins=None) -> pd.DataFrame:
        """Uniformity test of the ranks of each parameter.

        Pearson's chi-square test of the binned ranks against equal counts
        (``bins - 1`` degrees of freedom). Bins group equal numbers of rank
        values, so under calibration each bin has probability ``1 / bins``
        exactly. A small p-value says the posterior is miscalibrated for that
        parameter (look at :meth:`plot` to see how).

        Parameters
        ----------
        bins : int, optional
            Must divide ``n_ranks + 1``; default about 5 simulations per bin
            (:func:`default_bins`).

        Returns
        -------
        DataFrame
            Index ``parameter``; columns ``n_sims``, ``bins``, ``chi2``,
            ``p_value``, ``n_not_converged`` (simulations whose fit failed
            the convergence checks) and ``converged`` (True when none did).
        """
        from scipy import stats

        counts = self.counts(bins)
        bad = int((~self.converged.reindex(self.ranks.index, fill_value=False)).sum())
        rows = {}
        for name in counts:
            res = stats.chisquare(counts[name].to_numpy())
            rows[name] = {"n_sims": self.n_sims, "bins": len(counts), "chi2": float(res.statistic),
                          "p_value": float(res.pvalue), "n_not_converged": bad, "converged": bad == 0}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "parameter"
        return table

    def plot(self, bins=None):
        """Rank histograms, one panel per parameter, with the expected count and its 99% band.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from scipy import stats

        from ..base.figure import new_figure

        counts = self.counts(bins)
        n_bins, names = len(counts), list(counts)
        cols = min(4, len(names))
        rows = -(-len(names) // cols)
        fig = new_figure((3.2 * cols, 2.6 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        lo, hi = stats.binom.ppf([0.005, 0.995], self.n_sims, 1 / n_bins)
        p_values = self.test(n_bins)["p_value"]
        for ax, name in zip(axes.flat, names):
            ax.axhspan(lo, hi, color="0.85", label="99% band if calibrated")
            ax.axhline(self.n_sims / n_bins, color="0.4", lw=1)
            ax.bar(np.arange(n_bins), counts[name], width=0.9, color="C0")
            ax.set_title(f"{name} (p = {p_values[name]:.2g})", fontsize=10)
            ax.set_xlabel(f"rank bin (of {n_bins})")
            ax.set_ylabel("simulations")
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=7, loc="upper left")
        fig.suptitle(f"SBC rank histograms: {self.model.law.name}, {self.n_sims} simulations, "
                     f"{self.n_ranks} draws per rank")
        return fig

    def __repr__(self) -> str:
        table = self.test()
        lines = [f"SBCResult: {self.model.law.name} law, {self.model.likelihood} likelihood, {self.n_sims} "
                 f"simulations on {self.design.n_runs} runs ({len(self.errors)} failed, "
                 f"{int((~self.converged).sum())} not converged)",
                 "  uniformity of ranks (chi-square p-value per parameter):"]
        lines += [f"    {name:<8} p = {row['p_value']:.3g}" for name, row in table.iterrows()]
        lines.append("Next: result.plot(), result.test(bins=...), result.ranks")
        return "\n".join(lines)
