"""Prior distributions and the data-scaled defaults.

Priors are small frozen objects, one class per family, set per parameter by
name in the published convention::

    ScalingModel("chinchilla", priors={"alpha": LogNormal(mu=np.log(0.34), sigma=0.2)})

Defaults are weakly informative and scaled to the run data when the model is
fitted (see :func:`default_prior`):

================  ===========================================================
kind              default prior
================  ===========================================================
irreducible (E)   LogNormal(mu = log(min loss / 2), sigma = 1)
coefficient (A)   LogNormal on the term's value at the data's centre:
                  log(A / N0**alpha) ~ Normal(log(median loss / 4), 2),
                  N0 = geometric mean of N in the data
scale (N_c)       LogNormal(mu = log(N0) + log(median loss) / 0.3, sigma = 5):
                  a power law (N_c / N)**alpha with the prior-median
                  exponent 0.3 passes through the median loss at N0
exponent (alpha)  LogNormal(mu = log 0.3, sigma = 1)
shape (R_D*)      LogNormal(mu = log 10, sigma = 1)
sigma (noise)     HalfNormal(sigma = max(sd of log loss, 0.01))
run_sd            HalfNormal(sigma = max(sd of log loss, 0.01)), as sigma: the sd of the per-run
                  offset of checkpoint data (ScalingModel within_run="offset")
nu (Student-t)    Gamma(alpha = 2, beta = 0.1)
undertuned rate   Beta(1, 9) (:mod:`bayescale.runs.undertuned`)
excess scale      LogNormal(mu = log(max(sd of log loss, 0.01) / 2), sigma = 1)
================  ===========================================================

Coefficients take a :class:`LogNormal` prior; its ``at`` argument says at
which input value the prior describes the term (``at=None``: on A itself;
``at=1e9``: on A / 1e9**alpha, the term's size at N = 1e9).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

import numpy as np

from ..base.errors import SpecError

__all__ = [
    "Prior",
    "Normal",
    "LogNormal",
    "HalfNormal",
    "Gamma",
    "Exponential",
    "StudentT",
    "Uniform",
    "Beta",
    "default_prior",
    "prior_from_dict",
]


@dataclass(frozen=True)
class Prior:
    """Base class: a prior family with named hyperparameters."""

    positive: ClassVar[bool] = False

    @property
    def family(self) -> str:
        """Family name, as in :func:`prior_from_dict`."""
        return type(self).__name__

    @property
    def hyper(self) -> dict:
        """Numeric hyperparameters by name (``at`` excluded)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "at"}

    def to_dict(self) -> dict:
        """Plain-data form for TOML/netCDF.

        Examples
        --------
        >>> Normal(0.0, 1.0).to_dict()
        {'family': 'Normal', 'mu': 0.0, 'sigma': 1.0}
        """
        return {"family": self.family, **{k: v for k, v in asdict(self).items() if v is not None}}

    def __post_init__(self):
        for name, value in self.hyper.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise SpecError(f"{self.family}: {name} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise SpecError(f"{self.family}: {name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        self._check()
        for name, value in self.hyper.items():
            _check_magnitude(self.family, name, value)
        median = self.median()
        if median is not None and not (HYPER_RANGE[0] <= median <= HYPER_RANGE[1]):
            raise SpecError(f"{self}: its median is {median:.4g}; expected between {HYPER_RANGE[0]:g} and "
                            f"{HYPER_RANGE[1]:g}. The mode search starts near the priors' centres, where such a parameter "
                            "gives the law no finite log density (the fit would fail with no finite "
                            "starting point)")

    def median(self) -> float | None:
        """The median of a positive prior (None for one on the real line), checked on construction."""
        return None

    def _check(self):
        pass

    def _require_positive(self, *names):
        for n in names:
            if getattr(self, n) <= 0:
                raise SpecError(f"{self.family}: {n} must be > 0, got {getattr(self, n)!r}")

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.hyper.items())
        return f"{self.family}({args})"

    def pymc(self, name, h, **kw):
        """The PyMC random variable `name` of this family, with hyperparameters `h` (numbers or tensors)."""
        import pymc as pm

        return getattr(pm, self.family)(name, **h, **kw)

    def dist(self, h):
        """The unnamed PyMC distribution of this family, e.g. for ``pm.logp(prior.dist(h), value)``."""
        import pymc as pm

        return getattr(pm, self.family).dist(**h)

    # Subclasses provide sample(rng, size); the family name is the PyMC distribution's name.


#: Magnitudes a prior's numbers and a positive prior's median may take (zero aside): beyond them the mode search
#: finds no finite starting point (float64 runs out of range for the law's terms, their logs or the gradients,
#: which grow as 1/sigma**2). Measured on 40 synthetic Chinchilla runs: LogNormal sigma 1e-100, 1e-200 and
#: 5e-324, HalfNormal(2e-100) on E, Uniform(0, 5e-324), Gamma(1e308, 1), Exponential(1e308) and LogNormal
#: mu 1e308 all failed that way; spreads of 1e-50 (LogNormal on E, HalfNormal on sigma), a LogNormal median of
#: exp(-230) on sigma and Gamma(1e100, 1e100) still fitted. The range keeps those margins on both sides.
HYPER_RANGE = (1e-50, 1e50)


def _check_magnitude(family, name, value):
    if value != 0 and not (HYPER_RANGE[0] <= abs(value) <= HYPER_RANGE[1]):
        kind = "subnormal" if abs(value) < 2.2250738585072014e-308 else ("too small" if abs(value) < 1 else "too large")
        raise SpecError(f"{family}: {name} = {value!r} is {kind}; expected 0 or a magnitude between "
                        f"{HYPER_RANGE[0]:g} and {HYPER_RANGE[1]:g} (beyond them the sampler finds no finite "
                        "starting point)")


def _fmt(v: float) -> str:
    return f"{v:.4g}"


@dataclass(frozen=True, repr=False)
class Normal(Prior):
    """Normal(mu, sigma) on the real line.

    Examples
    --------
    >>> print(Normal(0, 2))
    Normal(mu=0, sigma=2)
    """

    mu: float = 0.0
    sigma: float = 1.0

    def _check(self):
        self._require_positive("sigma")


    def sample(self, rng, size=None):
        return rng.normal(self.mu, self.sigma, size)


@dataclass(frozen=True, repr=False)
class LogNormal(Prior):
    """LogNormal: log(value) ~ Normal(mu, sigma).

    Parameters
    ----------
    mu, sigma : float
        Mean and sd of the log.
    at : float, optional
        For a coefficient only: the prior is on the term's value at this
        input (``A / at**alpha``) instead of on ``A`` itself.

    Examples
    --------
    >>> print(LogNormal(mu=0.0, sigma=1.0, at=1e9))
    LogNormal(mu=0, sigma=1) at 1e+09
    """

    mu: float = 0.0
    sigma: float = 1.0
    at: float | None = None
    positive: ClassVar[bool] = True

    def _check(self):
        self._require_positive("sigma")
        if self.at is not None:
            if isinstance(self.at, bool) or not isinstance(self.at, (int, float, np.floating)) or not self.at > 0 \
                    or not math.isfinite(self.at):
                raise SpecError(f"LogNormal: at must be a positive number (a finite input value such as N = 1e9), "
                                f"got {self.at!r}")
            object.__setattr__(self, "at", float(self.at))
            _check_magnitude("LogNormal", "at", self.at)

    def __str__(self):
        base = super().__str__()
        return base if self.at is None else f"{base} at {self.at:.3g}"

    def median(self):
        with np.errstate(over="ignore"):
            return float(np.exp(self.mu))


    def sample(self, rng, size=None):
        return rng.lognormal(self.mu, self.sigma, size)


@dataclass(frozen=True, repr=False)
class HalfNormal(Prior):
    """HalfNormal(sigma) on the positive reals.

    Examples
    --------
    >>> HalfNormal(0.1).positive
    True
    """

    sigma: float = 1.0
    positive: ClassVar[bool] = True

    def _check(self):
        self._require_positive("sigma")

    def median(self):
        return 0.6744897501960817 * self.sigma

    def sample(self, rng, size=None):
        return np.abs(rng.normal(0.0, self.sigma, size))


@dataclass(frozen=True, repr=False)
class Gamma(Prior):
    """Gamma(alpha, beta) with shape alpha and rate beta (mean alpha / beta).

    Examples
    --------
    >>> print(Gamma(2, 0.1))
    Gamma(alpha=2, beta=0.1)
    """

    alpha: float = 2.0
    beta: float = 0.1
    positive: ClassVar[bool] = True

    def _check(self):
        self._require_positive("alpha", "beta")

    def median(self):
        from scipy.special import gammaincinv

        with np.errstate(all="ignore"):
            return float(gammaincinv(self.alpha, 0.5) / self.beta)

    def sample(self, rng, size=None):
        return rng.gamma(self.alpha, 1.0 / self.beta, size)


@dataclass(frozen=True, repr=False)
class Exponential(Prior):
    """Exponential(lam) with rate lam.

    Examples
    --------
    >>> print(Exponential(10))
    Exponential(lam=10)
    """

    lam: float = 1.0
    positive: ClassVar[bool] = True

    def _check(self):
        self._require_positive("lam")

    def median(self):
        return math.log(2.0) / self.lam

    def sample(self, rng, size=None):
        return rng.exponential(1.0 / self.lam, size)


@dataclass(frozen=True, repr=False)
class StudentT(Prior):
    """StudentT(nu, mu, sigma) on the real line.

    Examples
    --------
    >>> print(StudentT(3, 0, 1))
    StudentT(nu=3, mu=0, sigma=1)
    """

    nu: float = 3.0
    mu: float = 0.0
    sigma: float = 1.0

    def _check(self):
        self._require_positive("nu", "sigma")


    def sample(self, rng, size=None):
        return self.mu + self.sigma * rng.standard_t(self.nu, size)


@dataclass(frozen=True, repr=False)
class Uniform(Prior):
    """Uniform(lower, upper).

    Examples
    --------
    >>> Uniform(0, 1).positive
    True
    """

    lower: float = 0.0
    upper: float = 1.0

    @property
    def positive(self):  # type: ignore[override]
        return self.lower >= 0

    def _check(self):
        if not self.upper > self.lower:
            raise SpecError(f"Uniform: upper ({self.upper}) must exceed lower ({self.lower})")

    def median(self):
        return 0.5 * (self.lower + self.upper) if self.positive else None

    def sample(self, rng, size=None):
        return rng.uniform(self.lower, self.upper, size)


@dataclass(frozen=True, repr=False)
class Beta(Prior):
    """Beta(alpha, beta) on (0, 1), for probabilities (mean alpha / (alpha + beta)).

    Examples
    --------
    >>> print(Beta(1, 9))
    Beta(alpha=1, beta=9)
    """

    alpha: float = 1.0
    beta: float = 1.0
    positive: ClassVar[bool] = True

    def _check(self):
        self._require_positive("alpha", "beta")

    def sample(self, rng, size=None):
        return rng.beta(self.alpha, self.beta, size)


FAMILIES = {c.__name__: c for c in (Normal, LogNormal, HalfNormal, Gamma, Exponential, StudentT, Uniform, Beta)}


def prior_from_dict(d) -> Prior:
    """Rebuild a prior from :meth:`Prior.to_dict` output (no code is run).

    Examples
    --------
    >>> print(prior_from_dict({"family": "Gamma", "alpha": 2, "beta": 0.1}))
    Gamma(alpha=2, beta=0.1)
    """
    if not isinstance(d, dict) or "family" not in d:
        raise SpecError(f"a prior must be a table with a 'family' key, got {d!r}")
    fam = d["family"]
    if fam not in FAMILIES:
        raise SpecError(f"unknown prior family {fam!r}; valid families: {', '.join(FAMILIES)}")
    cls = FAMILIES[fam]
    valid = [f.name for f in fields(cls)]
    extra = [k for k in d if k != "family" and k not in valid]
    if extra:
        raise SpecError(f"{fam} prior has no argument(s) {extra}; valid: {', '.join(valid)}")
    return cls(**{k: v for k, v in d.items() if k != "family"})


@dataclass(frozen=True)
class DataScale:
    """Summary of run data that the default priors are scaled to.

    Attributes
    ----------
    centres : dict
        Geometric mean of each centred input (``{"N": 3.1e8, ...}``).
    min_loss, median_loss, sd_log_loss : float
    """

    centres: dict
    min_loss: float
    median_loss: float
    sd_log_loss: float

    @classmethod
    def from_runs(cls, inputs: dict, loss, scaled_inputs: dict) -> "DataScale":
        """Compute the summary from input arrays and losses."""
        loss = np.asarray(loss, dtype=float)
        centres = {k: float(np.exp(np.mean(np.log(inputs[k])))) for k in set(scaled_inputs.values())}
        return cls(centres, float(loss.min()), float(np.median(loss)), float(np.std(np.log(loss))))


def default_prior(kind: str, scale: DataScale, scales_with=None) -> Prior:
    """The weakly informative, data-scaled default prior of a parameter kind.

    Parameters
    ----------
    kind : str
        Parameter kind (``irreducible``, ``coefficient``, ``scale``,
        ``exponent``, ``shape``, ``sigma``, ``nu``, ``undertuned_rate``,
        ``excess_scale``, ``run_sd``).
    scale : DataScale
    scales_with : tuple, optional
        The parameter's declared scaling, for coefficients and scales.

    Examples
    --------
    >>> s = DataScale({"N": 1e9}, min_loss=2.0, median_loss=3.0, sd_log_loss=0.2)
    >>> print(default_prior("irreducible", s))
    LogNormal(mu=0, sigma=1)
    >>> print(default_prior("coefficient", s, ("N", "alpha")))
    LogNormal(mu=-0.2877, sigma=2) at 1e+09
    """
    if kind == "irreducible":
        return LogNormal(mu=math.log(scale.min_loss / 2), sigma=1.0)
    if kind == "coefficient":
        return LogNormal(mu=math.log(scale.median_loss / 4), sigma=2.0, at=scale.centres[scales_with[0]])
    if kind == "scale":
        # (N_c / N0)**0.3 = median loss: centred where the law meets the data at the exponent prior's median
        return LogNormal(mu=math.log(scale.centres[scales_with[0]]) + math.log(scale.median_loss) / 0.3, sigma=5.0)
    if kind == "exponent":
        return LogNormal(mu=math.log(0.3), sigma=1.0)
    if kind == "shape":
        return LogNormal(mu=math.log(10.0), sigma=1.0)
    if kind in ("sigma", "run_sd"):
        return HalfNormal(sigma=max(scale.sd_log_loss, 0.01))
    if kind == "nu":
        return Gamma(alpha=2.0, beta=0.1)
    if kind == "undertuned_rate":
        return Beta(alpha=1.0, beta=9.0)
    if kind == "excess_scale":
        return LogNormal(mu=math.log(max(scale.sd_log_loss, 0.01) / 2), sigma=1.0)
    raise SpecError(f"unknown parameter kind {kind!r}")
