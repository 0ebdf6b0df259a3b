"""The probabilistic model: a law, priors by parameter and a likelihood on log loss.

:class:`ScalingModel` holds settings only; :meth:`ScalingModel.fit` takes run
data and returns a :class:`~bayescale.fitting.fit.ScalingFit`.

Internally the model centres every input that a coefficient scales with
(``N / N0`` with N0 the geometric mean of N in the data) and samples the
centred coefficient ``log(A / N0**alpha)`` instead of ``log A``. The two are
related by a shift with unit Jacobian, so the user's prior on A is kept
exactly, while the posterior of (centred coefficient, exponent) is close to
uncorrelated and NUTS runs at low tree depth. Only published parameters
(E, A, B, alpha, beta, sigma, nu ...) reach the posterior.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..runs.data import RunData, check_within_run
from ..base.errors import DataError, SpecError
from ..core.form import FormUncertainty, form_from_dict
from ..core.laws import Law, get_law
from ..core.specs import LIKELIHOODS, read_spec, spec_path, spec_settings
from ..base.validation import check_flag, check_sampler_settings, check_seed as _check_seed
from ..base.errors import warn_user
from ..core.assumptions import check_assumptions
from ..base.compiled import cache_dir as _cache_dir
from ..core.pooling import (GROUP_NOISE, Pooling, SD_SUFFIX, level_coordinates, pooled_in_level_form, pop_name,
                            sd_name)
from ..base.progress import interactive
from .graph import build_model
from .modelpriors import check_priors, group_sd_default, level_kinds, priors_for
from .modelruns import check_run_offsets, law_rows, model_runs
from .sampling import run_sampler
from ..runs.undertuned import NAMES, flags

__all__ = ["ScalingModel", "LIKELIHOODS", "SAMPLERS", "model_from_dict", "load_spec"]

SAMPLERS = ("nutpie", "pymc", "numpyro")
#: Most runs one Bayesian fit takes. Sampling time and the memory of the pointwise log-likelihood
#: (chains x draws x runs doubles, kept with the fit) grow with the runs; see docs/guide/warnings.md, "Sizes".
MAX_RUNS = 10_000
#: Most groups one hierarchical fit takes: every group adds free parameters to one joint posterior.
MAX_GROUPS = 200
#: Fits with at least this many runs or groups show their progress by default (in a terminal or notebook).
PROGRESS_RUNS = 2_000
PROGRESS_GROUPS = 20
#: Default target acceptance rate of NUTS step-size adaptation (see ScalingModel.fit).
TARGET_ACCEPT = 0.95
NOISE_KINDS = {"sigma": "sigma", "nu": "nu", "undertuned_rate": "undertuned_rate", "excess_scale": "excess_scale",
               "run_sd": "run_sd"}


class ScalingModel:
    """A Bayesian scaling-law model: law + priors + likelihood.

    Parameters
    ----------
    law : str or Law, default "chinchilla"
        A shipped law name (see :func:`bayescale.core.laws.available_laws`) or a
        :class:`~bayescale.core.laws.Law`.
    priors : dict, optional
        ``{parameter name: Prior}`` overriding the data-scaled defaults. Names
        are the published ones (``E``, ``A``, ``alpha`` ...), plus ``sigma``
        (scale of the noise on log loss) and, for the Student-t likelihood,
        ``nu`` (its degrees of freedom).
    likelihood : {"student_t", "normal"}
        Distribution of log loss around the law.
    pooling : dict or Pooling, optional
        How law parameters vary across the runs' ``group`` column:
        ``{"E": "partial", "A": "partial"}``; each one ``"shared"`` (the
        default for a parameter not named), ``"partial"`` (partial pooling
        towards a population value, with hyperparameters ``<name>_pop`` and
        ``<name>_group_sd``) or ``"independent"``. See
        :mod:`bayescale.analysis.hierarchy`. With partial pooling the prior of a
        parameter is the prior of its population value; ``priors`` may also
        set ``<name>_group_sd``. Not given (None): when the runs have two or
        more groups and the law has a level form (the Chinchilla law and
        the laws with one irreducible term and one or two power terms),
        every law parameter is partial, the choice leave-one-out prefers on
        real ladders (docs/guide/groups.md); otherwise every parameter is
        shared. ``{}`` shares every parameter whatever the runs.
    form_uncertainty : FormUncertainty or None, default FormUncertainty()
        How far the law's form may be off beyond the fitted runs: a
        discrepancy that is zero inside the fitted range and grows with the
        distance from it, added to predictions, allocations and risk (see
        :mod:`bayescale.core.form`; the default rates come from leave-future-out
        calibration on real ladders). ``None``: the law's form is taken as
        known (simulations, SBC); bands then reflect parameter uncertainty
        and run-to-run noise only.
    within_run : {"auto", "offset", "none"}, default "auto"
        How the rows of one training run (its checkpoints, sharing a ``run``
        identifier) are modelled. ``"offset"``: log loss of row i of run r is
        ``log L(N, D_i) + u_r + e_i`` with a per-run offset
        ``u_r ~ Normal(0, run_sd)`` (seed, data order: a whole run lower or
        higher) besides the row noise ``e_i`` (sigma, nu), so twenty
        checkpoints of one run count as one run's worth of evidence on the
        level, not twenty; ``run_sd`` gets a prior like ``sigma``'s and is
        reported in the summary. A new run drawn for predictions gets a new
        offset. ``"none"``: every row is an independent run (the model
        without checkpoints). ``"auto"``: ``"offset"`` when the runs carry a
        ``run`` column with some run having more than one row, else
        ``"none"``. Checkpoints mid-way through a cosine schedule are left
        out of any fit (see :attr:`bayescale.runs.data.RunData.law_rows`). With
        ``likelihood="normal"`` the offsets are integrated out in closed form
        (as fast as independent rows); with Student-t noise they are sampled,
        one per run, and their mean trades off against the law's level: on 30
        runs of 20 checkpoints, bulk ESS of E and alpha was about 60 per 2000
        draws (Normal: 700), so such fits often escalate. Prefer the Normal
        likelihood for checkpoint data unless single checkpoints are outliers.
    undertuned : bool, default False
        Allow possibly undertuned runs: each run may sit *above* the law by a
        non-negative excess, with probability ``undertuned_rate`` (prior
        Beta(1, 9); 0.5 for rows flagged by an ``undertuned`` True or
        ``sweep_complete`` False column) and a HalfNormal excess of scale
        ``excess_scale`` on log loss, so a badly tuned rung raises its own
        excess, not the law. Predictions are for well-tuned runs. With
        per-run offsets (checkpoint data) a whole run is undertuned or not
        (its rows share one excess); this needs ``likelihood="normal"``
        (offset and excess integrated out in closed form) and raises a
        SpecError with Student-t noise. See :mod:`bayescale.runs.undertuned` and
        :meth:`~bayescale.fitting.fit.ScalingFit.undertuned_runs`.

    Attributes
    ----------
    name, description : str or None
        Set when the model comes from a spec (:meth:`from_spec`).
    references : tuple of str

    Examples
    --------
    >>> import bayescale as bs
    >>> model = bs.ScalingModel("chinchilla", priors={"alpha": bs.priors.LogNormal(-1.1, 0.5)})
    >>> model.param_names
    ('E', 'A', 'B', 'alpha', 'beta', 'sigma', 'nu')
    >>> bs.ScalingModel("chinchilla", pooling={"E": "partial"}).published_names
    ('E', 'A', 'B', 'alpha', 'beta', 'sigma', 'nu', 'E_pop', 'E_group_sd')
    """

    def __init__(self, law="chinchilla", *, priors=None, likelihood="student_t", pooling=None,
                 form_uncertainty=FormUncertainty(), undertuned=False, within_run="auto"):
        self.law: Law = get_law(law)
        if likelihood not in LIKELIHOODS:
            raise SpecError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
        self.likelihood = likelihood
        self.undertuned = _check_undertuned(undertuned)
        self.pooling = Pooling(pooling)
        self.pooling.check(self.law.param_names, self.param_names)
        self._pooling_given = pooling is not None
        if priors is not None and not isinstance(priors, Mapping):
            raise SpecError(f"priors must be a mapping {{parameter name: prior}} such as "
                            f"{{'alpha': LogNormal(mu=-1.0, sigma=0.5)}}, got {type(priors).__name__} {priors!r}")
        self.priors = dict(priors or {})
        self.form_uncertainty = form_from_dict(form_uncertainty)
        self.within_run = check_within_run(within_run)
        self.name = None
        self.description = None
        self.references = ()
        check_priors(self)

    # ----------------------------------------------------------------- settings
    @property
    def param_names(self) -> tuple:
        """Law parameters followed by the likelihood's own parameters."""
        noise = ("sigma", "nu") if self.likelihood == "student_t" else ("sigma",)
        return self.law.param_names + noise + _undertuned_names(self)

    @property
    def hierarchical(self) -> bool:
        """True when some parameter varies by group."""
        return bool(self.pooling)

    def pooling_of(self, name: str) -> str:
        """``"shared"``, ``"partial"`` or ``"independent"`` for a law parameter."""
        return self.pooling[name]

    @property
    def varying_names(self) -> tuple:
        """Law parameters whose published values differ by group.

        Those pooled ``partial`` or ``independent``, and coefficients whose
        exponent varies (their size at the data's centre may be shared, the
        published coefficient then still differs by group).
        """
        out = []
        for p in self.law.parameters:
            varies = self.pooling[p.name] != "shared"
            if p.scales_with is not None and isinstance(p.scales_with[1], str):
                varies = varies or self.pooling[p.scales_with[1]] != "shared"
            if varies:
                out.append(p.name)
        return tuple(out)

    @property
    def hyper_names(self) -> tuple:
        """Population parameters: ``<name>_pop`` and ``<name>_group_sd`` per partially pooled parameter.

        When every parameter of a level-form law is partial, the groups vary in level coordinates: then
        ``<name>_pop`` per parameter and ``<coordinate>_group_sd`` per level coordinate
        (:func:`bayescale.core.pooling.level_coordinates`), and ``sigma_pop``, ``sigma_group_sd`` for the
        groups' noise scales.
        """
        partial = [n for n in self.law.param_names if self.pooling[n] == "partial"]
        if pooled_in_level_form(self.law, self.pooling):
            return (tuple(pop_name(n) for n in (*partial, GROUP_NOISE))
                    + tuple(sd_name(c) for c, _ in level_coordinates(self.law)) + (sd_name(GROUP_NOISE),))
        return tuple(f(n) for n in partial for f in (pop_name, sd_name))

    @property
    def prior_names(self) -> tuple:
        """Names that take a prior: :attr:`param_names` and the ``<name>_group_sd`` hyperparameters."""
        return self.param_names + tuple(n for n in self.hyper_names if n.endswith(SD_SUFFIX))

    @property
    def published_names(self) -> tuple:
        """Variables of the posterior: :attr:`param_names` then :attr:`hyper_names`."""
        return self.param_names + self.hyper_names

    def kind(self, name: str) -> str:
        """Kind of a parameter (decides its default prior)."""
        if name in NOISE_KINDS and name not in self.law.param_names:
            return NOISE_KINDS[name]
        if name.endswith(SD_SUFFIX) and name in self.hyper_names:
            return "group_sd"
        return self.law.parameter(name).kind

    def resolve_priors(self, runs) -> dict:
        """All priors for `runs`: the user's, and the data-scaled defaults for the rest.

        Parameters
        ----------
        runs : RunData, DataFrame or path

        Returns
        -------
        dict
            ``{name: Prior}`` for every name in :attr:`param_names`.
        """
        _, _, priors = priors_for(self, law_rows(self, model_runs(self, runs)))
        return priors

    def read_runs(self, runs, columns=None) -> RunData:
        """`runs` as this model reads them: the law's inputs and loss (and ``group`` for a pooled model), checked.

        Parameters
        ----------
        runs : RunData, DataFrame or path
        columns : dict, optional
            Column renaming, as in :func:`bayescale.load_runs`.

        Returns
        -------
        RunData

        Examples
        --------
        >>> import bayescale as bs
        >>> bs.ScalingModel("chinchilla").read_runs(bs.datasets.load_chinchilla()).n_runs
        245
        """
        return model_runs(self, runs, columns)

    # ------------------------------------------------------------ size limits
    def _check_size(self, runs, chains, draws):
        """Refuse, before any work, a ladder or a number of groups beyond what one fit handles."""
        n = runs.n_runs
        if n > MAX_RUNS:
            gb = 8 * n * int(chains) * int(draws) / 1e9
            raise DataError(
                [f"{n:,} runs; one Bayesian fit takes at most {MAX_RUNS:,} (bayescale.fitting.model.MAX_RUNS). Its time "
                 f"and memory grow with the runs (the pointwise log-likelihood alone is {gb:,.1f} GB at "
                 f"{chains} chains x {draws} draws). Keep one row per training run (e.g. its final loss) or "
                 "average repeated runs of one (N, D), fit a PointModel (Approach3, LeastSquares), or raise "
                 "bayescale.fitting.model.MAX_RUNS knowingly"], header="Run data too large for one fit:")
        groups = len(runs.groups or ()) if self.hierarchical else 0
        if groups > MAX_GROUPS:
            raise DataError(
                [f"{groups:,} groups; one hierarchical fit takes at most {MAX_GROUPS:,} "
                 "(bayescale.fitting.model.MAX_GROUPS): every group adds parameters to one joint posterior, and the mode "
                 "search and sampling slow down with each. Fit the groups separately with "
                 "bs.fit_many(ScalingModel(law), runs, by='group'), pool groups that share their data, or raise "
                 "bayescale.fitting.model.MAX_GROUPS knowingly"], header="Too many groups for one fit:")

    # ---------------------------------------------------------------- fitting
    def fit(self, runs, *, draws=1000, tune=1000, chains=4, cores=None, random_seed=None, sampler="nutpie",
            target_accept=TARGET_ACCEPT, columns=None, progressbar=None, escalate=True, cache_dir=None):
        """Sample the posterior with NUTS.

        Parameters
        ----------
        runs : RunData, DataFrame or path
            Training runs; see :func:`bayescale.load_runs`.
        draws, tune : int
            Draws kept per chain, and tuning steps per chain.
        chains : int, default 4
        cores : int, optional
            Parallel chains; default all cores.
        random_seed : int, optional
            The same seed gives the same posterior. Default: a fresh seed,
            recorded in the result.
        sampler : {"nutpie", "pymc", "numpyro"}
            NUTS implementation. ``nutpie`` (default) is the fastest here;
            ``numpyro`` needs the ``jax`` extra.
        target_accept : float, default 0.95
            Target acceptance rate of step-size adaptation. 0.95 rather than
            0.9: ladders of a few dozen runs give posteriors with long ridges
            (a term that may vanish), where 0.9 leaves a few divergences; on
            the Chinchilla runs it costs about 8 instead of 7 leapfrog steps
            per draw.
        columns : dict, optional
            Column renaming, as in :func:`bayescale.load_runs`.
        progressbar : bool, optional
            Show the mode search's starts and the sampler's progress. Default:
            shown for large fits (at least :data:`PROGRESS_RUNS` runs or
            :data:`PROGRESS_GROUPS` groups) when the output is a terminal or a
            notebook.
        escalate : bool, default True
            When the diagnostics fail (R-hat > 1.01, bulk ESS < 400 or a
            divergence), sample again from the same starting point with 2,
            then 4, then 8 times the tuning and draws (``target_accept`` 0.99
            after an attempt that diverged) before warning; the fit records
            the draws it kept and ``timing["attempts"]``. Sampling then costs
            at most 15 times the first attempt, and only for fits that need
            it.
        cache_dir : str, Path or False, optional
            Folder of compiled models kept across processes (nutpie only): a
            fresh process loads the model's compiled log density from there
            instead of compiling it again. Default: ``$BAYESCALE_CACHE_DIR``,
            else the user's cache folder (``~/.cache/bayescale`` on Linux);
            ``False``: no disk cache. See :mod:`bayescale.base.compiled`.

        Returns
        -------
        ScalingFit
            ``fit.timing`` records where the time went (graph, compile, mode
            search, sampling, result).

        Raises
        ------
        DataError
            Before any work, for more than :data:`MAX_RUNS` runs or (with
            groups) more than :data:`MAX_GROUPS` groups; the message says what
            to do instead; for ``within_run="offset"`` without a ``run``
            column.

        Warns
        -----
        CheckpointWarning
            When rows mid-way through a cosine schedule are left out (the
            fit's ``runs`` hold the rows fitted).
        DataAssumptionWarning
            Before sampling, for rows that repeat another exactly or whose
            loss rises with N or D beyond noise
            (:func:`bayescale.core.assumptions.check_assumptions`).

        Examples
        --------
        >>> import bayescale as bs
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> fit = bs.ScalingModel("chinchilla").fit(runs, random_seed=1)  # doctest: +SKIP
        >>> fit.summary()  # doctest: +SKIP
        """
        random_seed = _check_seed(random_seed)
        check_sampler_name(sampler)
        s = check_sampler_settings(draws=draws, tune=tune, chains=chains, cores=cores, target_accept=target_accept)
        progressbar, escalate = check_flag(progressbar, "progressbar", allow_none=True), check_flag(escalate, "escalate")

        _cache_dir(cache_dir)  # a bad folder argument fails here, before any work
        runs = law_rows(self, model_runs(self, runs, columns))
        model = self.for_runs(runs)  # the runs' groups may set the pooling: the rest is that model's
        check_run_offsets(model, runs)
        model._check_size(runs, chains, draws)

        check_assumptions(runs)  # repeated rows, loss rising with scale: warned before any sampling
        if model.undertuned:
            flags(runs.frame)  # a bad flag column fails here, before any work
        if random_seed is None:
            random_seed = int(np.random.SeedSequence().entropy % (2**31))

        person = interactive()
        notices = progressbar is not False and person
        if progressbar is None:
            large = runs.n_runs >= PROGRESS_RUNS or (model.hierarchical and len(runs.groups or ()) >= PROGRESS_GROUPS)
            progressbar = large and person
        settings = SampleSettings(s["draws"], s["tune"], s["chains"], s["cores"] or os.cpu_count() or 1,
                                  int(random_seed), sampler, s["target_accept"], progressbar, escalate, notices)
        return run_sampler(model, runs, settings, cache=cache_dir)

    def build(self, runs, *, level_form=False, columns=None):
        """The PyMC model of this specification with the data of `runs`, for inspection or customisation.

        Parameters
        ----------
        runs : RunData, DataFrame or path
        level_form : bool, default False
            ``False``: the priors are random variables on the published
            parameters (``E``, ``alpha``, ``beta``, ``sigma``, ``nu``; the
            coefficients as ``A__centred``, the log of A at the centre of the
            runs' N, with ``A`` itself a Deterministic), so
            ``pm.sample_prior_predictive`` and every PyMC tool work on it.
            ``True``: exactly the graph :meth:`fit` samples. For the Chinchilla
            law and the other laws with one irreducible term and one or two
            power terms (no groups) that is the *level form*: flat free
            variables ``level__log``, ``E__share``, ``A__weight``,
            ``alpha__slope_log`` ... (the loss at the data's centre, the
            irreducible share, the terms' local slopes) with the priors added
            as a ``pm.Potential``; the posterior is the same, the geometry
            better, but it cannot be forward-sampled. Runs with groups whose
            every law parameter is partial (the default pooling for groups)
            vary in level coordinates, which only ``True`` expresses: ``False``
            is then a ValueError saying so.
        columns : dict, optional
            Column renaming, as in :func:`bayescale.load_runs`.

        Returns
        -------
        pymc.Model
            A new model (changing it does not touch the graphs :meth:`fit`
            caches). Data enter as ``pm.Data``: ``input_N``, ``input_D``
            (divided by their centres, ``log_centre_N`` ...),
            ``observed_log_loss``, the priors' hyperparameters
            ``prior_<name>_<hyper>``. The likelihood is ``log_loss`` on the
            log scale, as in ``fit.idata.observed_data``.

        Examples
        --------
        >>> import bayescale as bs, pymc as pm
        >>> runs = bs.datasets.load_chinchilla(drop_outliers=True)
        >>> model = bs.ScalingModel("chinchilla").build(runs)
        >>> sorted(v.name for v in model.free_RVs)
        ['A__centred', 'B__centred', 'E', 'alpha', 'beta', 'nu', 'sigma']
        >>> prior = pm.sample_prior_predictive(draws=50, model=model, random_seed=1)  # doctest: +SKIP
        >>> sorted(v.name for v in bs.ScalingModel("chinchilla").build(runs, level_form=True).free_RVs)[:2]
        ['A__weight', 'E__share']
        """
        runs = law_rows(self, model_runs(self, runs, columns))
        model = self.for_runs(runs)
        if model.hierarchical and not level_form and pooled_in_level_form(model.law, model.pooling):
            raise ValueError(
                f"build(level_form=False): the groups of these runs ({len(runs.groups)}) vary in level coordinates "
                "(every law parameter partial, the default for runs with groups), which only the level form "
                "expresses; build(runs, level_form=True) gives the graph fit samples, or name the pooled "
                f"parameters, e.g. ScalingModel(..., pooling={{{model.law.param_names[0]!r}: 'partial'}}), for a "
                "graph with priors on the published parameters")
        check_run_offsets(model, runs)
        return build_model(model, runs, level=bool(level_form))

    def for_runs(self, runs):
        """The model :meth:`fit` samples for `runs`: this one, or with the default pooling for runs with groups.

        When ``pooling`` was not given, runs with two or more groups make
        every law parameter partial if the law has a level form (the groups
        then vary in level coordinates, :mod:`bayescale.core.pooling`); for other
        laws every parameter stays shared, with a warning saying so.

        Examples
        --------
        >>> import bayescale as bs, pandas as pd
        >>> runs = pd.DataFrame({"N": [1e8, 2e8, 4e8] * 4, "D": [2e9, 4e9, 8e9] * 4, "loss": 3.0,
        ...                      "group": ["a"] * 6 + ["b"] * 6})
        >>> bs.ScalingModel("chinchilla").for_runs(runs).pooling.to_dict()
        {'E': 'partial', 'A': 'partial', 'B': 'partial', 'alpha': 'partial', 'beta': 'partial'}
        >>> bs.ScalingModel("chinchilla", pooling={}).for_runs(runs).pooling.to_dict()
        {}
        """
        if not isinstance(runs, RunData):
            runs = model_runs(self, runs)
        if self._pooling_given or len(runs.groups or ()) < 2:
            return self
        model = copy.copy(self)
        model.pooling = self._group_default()
        model._pooling_given = True
        if not model.pooling:
            warn_user(f"the runs have {len(runs.groups)} groups and the {self.law.name} law has no level form, so "
                      "every parameter is shared across them; pass pooling={'E': 'partial', ...} to let some vary "
                      "(or pooling={} to silence this)", UserWarning, stacklevel=3)
        return model

    def _group_default(self):
        """The pooling of runs with groups when none is given: every law parameter partial if the law has a level
        form, else none (every parameter shared)."""
        every = Pooling({name: "partial" for name in self.law.param_names})
        return every if pooled_in_level_form(self.law, every) else Pooling()

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """Plain-data specification, the same tables as a TOML spec in ``models/``.

        Law (a shipped law's name, or the formula table of a custom law),
        likelihood, user priors, form uncertainty (``False`` when off), and
        when set: pooling, name, description, references.

        Examples
        --------
        >>> ScalingModel("power_n", form_uncertainty=None).to_dict()
        {'law': 'power_n', 'likelihood': 'student_t', 'priors': {}, 'form_uncertainty': False}
        >>> ScalingModel("power_n", pooling={"E": "partial"}).to_dict()["pooling"]
        {'E': 'partial'}
        """
        law = self.law.to_dict() if hasattr(self.law, "to_dict") else self.law.name
        out = {
            "law": law,
            "likelihood": self.likelihood,
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
            "form_uncertainty": self.form_uncertainty.to_dict() if self.form_uncertainty else False,
        }
        if self.pooling or self._pooling_given:
            out["pooling"] = self.pooling.to_dict()
        if self.within_run != "auto":
            out["within_run"] = self.within_run
        if self.undertuned:
            out["undertuned"] = True
        for key in ("name", "description"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.references:
            out["references"] = list(self.references)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ScalingModel":
        """Inverse of :meth:`to_dict`; checks every key (see :func:`model_from_dict`).

        Examples
        --------
        >>> ScalingModel.from_dict({"law": "kaplan", "likelihood": "normal", "priors": {}}).likelihood
        'normal'
        """
        return model_from_dict(d)

    @classmethod
    def from_spec(cls, spec) -> "ScalingModel":
        """A model from a TOML spec: a shipped spec's name or a path to a ``.toml`` file.

        See :mod:`bayescale.core.specs` for the format and
        :func:`bayescale.core.specs.available_specs` for the shipped names.

        Examples
        --------
        >>> m = ScalingModel.from_spec("chinchilla")
        >>> m.law.name, m.name
        ('chinchilla', 'chinchilla')
        """
        return load_spec(spec)

    # ---------------------------------------------------------------- display
    def __str__(self) -> str:
        lines = [
            f"ScalingModel: {self.law.name} law, {LIKELIHOODS[self.likelihood]}",
            f"  L = {self.law.formula}",
        ]
        if self.name:
            lines.insert(1, f"  spec {self.name!r}" + (f": {self.description}" if self.description else ""))
        lines.append(f"  {self.form_uncertainty}" if self.form_uncertainty
                     else "  form uncertainty: off (the law's form is taken as known)")
        if not self._pooling_given:
            if self._group_default():
                lines.append("  by group: runs with groups get every law parameter partial (pooling={} shares them)")
        elif self.pooling:
            lines.append("  by group: " + ", ".join(f"{k} {v}" for k, v in self.pooling.to_dict().items())
                         + "; other parameters shared")
            if level_kinds(self):
                lines.append("  groups vary in level coordinates: " + ", ".join(level_kinds(self))
                             + " (each from a population; spreads <coordinate>_group_sd, sigma_group_sd)")
        if self.within_run != "auto":
            lines.append(f"  within run: {self.within_run}")
        if self.undertuned:
            lines.append("  possibly undertuned runs: a one-sided excess on log loss (mixture; predictions for "
                         "well-tuned runs)")
        lines.append("  priors:")
        width = max(8, *(len(n) for n in self.prior_names))
        for name in self.prior_names:
            p = self.priors.get(name)
            if p is None and self.kind(name) == "group_sd":
                p = f"default {group_sd_default(self, name)}"
            lines.append(f"    {name:<{width}} {p if p is not None else 'data-scaled default (set at fit time)'}")
        lines.append("Next: fit = model.fit(runs); then fit.summary(), fit.predict(new_runs)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        pooling = f", pooling={self.pooling.to_dict()!r}" if self.pooling else ""
        form = "" if self.form_uncertainty == FormUncertainty() else f", form_uncertainty={self.form_uncertainty!r}"
        tuned = ", undertuned=True" if self.undertuned else ""
        within = "" if self.within_run == "auto" else f", within_run={self.within_run!r}"
        return (f"ScalingModel(law={self.law.name!r}, likelihood={self.likelihood!r}, "
                f"priors={{{', '.join(self.priors)}}}{pooling}{form}{tuned}{within})")


# ------------------------------------------------------- possibly undertuned runs (bayescale.runs.undertuned)
def check_sampler_name(sampler) -> str:
    """`sampler` when it names one of :data:`SAMPLERS`; a SpecError listing them otherwise."""
    if sampler not in SAMPLERS:
        raise SpecError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    return sampler


def _check_undertuned(value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise SpecError(f"undertuned must be True or False (allow possibly undertuned runs), got {value!r}")
    return bool(value)


def _undertuned_names(model) -> tuple:
    return NAMES if model.undertuned else ()




@dataclass(frozen=True)
class SampleSettings:
    """Sampler settings recorded with every fit."""

    draws: int
    tune: int
    chains: int
    cores: int
    random_seed: int
    sampler: str
    target_accept: float
    progressbar: bool = False
    escalate: bool = True
    #: Say on stderr (a terminal or a notebook) when the model's log density has to be compiled.
    notices: bool = True


def model_from_dict(d, source="model specification") -> ScalingModel:
    """Build and check a :class:`ScalingModel` from spec tables (:func:`bayescale.core.specs.spec_settings`).

    Examples
    --------
    >>> model_from_dict({"law": "power_n", "pooling": {"E": "partial"}}).pooling_of("E")
    'partial'
    """
    settings = spec_settings(d, source)
    labels = {key: settings.pop(key) for key in ("name", "description", "references")}
    try:
        model = ScalingModel(**settings)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    for key, value in labels.items():
        setattr(model, key, value)
    return model


def load_spec(spec) -> ScalingModel:
    """Load a :class:`ScalingModel` from a shipped spec's name or a ``.toml`` path (:mod:`bayescale.core.specs`).

    Examples
    --------
    >>> m = load_spec("data_constrained_muennighoff2023")
    >>> m.law.name, str(m.priors["alpha"])
    ('data_constrained', 'LogNormal(mu=-1.042, sigma=0.1)')
    """
    path = spec_path(spec)
    return model_from_dict(read_spec(path), source=repr(str(path)))
