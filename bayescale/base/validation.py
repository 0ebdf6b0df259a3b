"""Argument checks and constants shared by every layer.

The ground floor of the package: it imports nothing from bayescale except
:mod:`bayescale.base.errors`, so any module may use it. Each check raises one
error that names the argument, the value given and what is expected.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import SpecError
from .errors import warn_user

__all__ = [
    "FLOPS_PER_PARAM_TOKEN",
    "MAX_SEED",
    "check_prob",
    "check_count",
    "check_number",
    "check_seed",
    "check_flag",
    "check_sampler_settings",
    "positive_array",
    "check_budgets",
    "renamed",
]

#: Training FLOPs per parameter per token, C = 6 N D (Kaplan et al. 2020; Hoffmann et al. 2022).
FLOPS_PER_PARAM_TOKEN = 6.0

#: Largest seed accepted: the samplers take unsigned 64-bit seeds, NumPy any non-negative integer.
MAX_SEED = 2**63 - 1


def check_prob(prob, name: str = "prob") -> float:
    """Return ``prob`` as a float, or raise ``ValueError`` unless it lies strictly in (0, 1).

    Examples
    --------
    >>> check_prob(0.9)
    0.9
    >>> check_prob(1.0)
    Traceback (most recent call last):
    ...
    ValueError: prob must be a number strictly between 0 and 1, got 1.0
    """
    if isinstance(prob, bool) or not isinstance(prob, numbers.Real) or not 0 < prob < 1:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {prob!r}")
    return float(prob)


def check_count(value, name: str, *, allow_zero: bool = False, error=SpecError) -> int:
    """Return ``value`` as an int, or raise ``error`` unless it is a (non-negative) integer.

    Examples
    --------
    >>> check_count(4, "chains")
    4
    >>> check_count(1.5, "chains")
    Traceback (most recent call last):
    ...
    bayescale.base.errors.SpecError: chains must be a positive integer, got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if allow_zero else 1):
        raise error(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}")
    return int(value)


def check_number(value, name: str, low=None, high=None, *, integer: bool = False, open_low: bool = False,
                 open_high: bool = False):
    """Return ``value`` (an int if ``integer``), or raise ``ValueError`` unless it lies in the range.

    Parameters
    ----------
    value : number
        Booleans, NaN and infinities are refused.
    name : str
        Named in the error, e.g. ``"--dpi"``.
    low, high : number, optional
        Bounds, included unless ``open_low`` / ``open_high``.
    integer : bool, default False
        Refuse non-integers (``2.0`` included).

    Examples
    --------
    >>> check_number(150, "--dpi", 20, 1200, integer=True)
    150
    >>> check_number(100000, "--dpi", 20, 1200, integer=True)
    Traceback (most recent call last):
    ...
    ValueError: --dpi must be an integer from 20 to 1200, got 100000
    >>> check_number(1.0, "--target-accept", 0, 1, open_low=True, open_high=True)
    Traceback (most recent call last):
    ...
    ValueError: --target-accept must be a number greater than 0 and less than 1, got 1.0
    """
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None and integer and not (open_low or open_high):
        expected = f"{kind} from {low} to {high}"
    else:
        bits = [f"{'greater than' if open_low else 'at least'} {low}" if low is not None else "",
                f"{'less than' if open_high else 'at most'} {high}" if high is not None else ""]
        expected = " and ".join(b for b in bits if b)
        expected = f"{kind} {expected}".strip()
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (numbers.Integral if integer else numbers.Real))
    if ok and not integer:
        ok = bool(np.isfinite(value))
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return int(value) if integer else float(value)


def check_seed(random_seed, name: str = "random_seed") -> int | None:
    """Return a seed as an int (or None), or raise ``ValueError`` naming the value.

    A seed is None or an integer in ``[0, MAX_SEED]``; booleans, floats and
    strings are refused rather than silently converted.

    Examples
    --------
    >>> check_seed(7), check_seed(None)
    (7, None)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: random_seed must be None or an integer from 0 to 9223372036854775807, got -1
    """
    if random_seed is None:
        return None
    if (isinstance(random_seed, bool) or not isinstance(random_seed, numbers.Integral)
            or not 0 <= random_seed <= MAX_SEED):
        raise ValueError(f"{name} must be None or an integer from 0 to {MAX_SEED}, got {random_seed!r}")
    return int(random_seed)


def check_flag(value, name: str, *, allow_none: bool = False):
    """Return ``value`` as a bool, or raise ``TypeError`` unless it is True or False (or None if allowed).

    Examples
    --------
    >>> check_flag(False, "escalate")
    False
    >>> check_flag("no", "progressbar")
    Traceback (most recent call last):
    ...
    TypeError: progressbar must be True or False, got 'no'
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False{' (or None)' if allow_none else ''}, got {value!r}")
    return bool(value)


def check_sampler_settings(*, draws, tune, chains, cores, target_accept, error=SpecError) -> dict:
    """Sampler settings checked before any model is built, as plain Python numbers.

    ``draws``, ``tune``, ``chains`` and ``cores`` (None: decided later) are
    positive integers, ``target_accept`` a number strictly between 0 and 1.

    Examples
    --------
    >>> check_sampler_settings(draws=1000, tune=1000, chains=4, cores=None, target_accept=0.95)
    {'draws': 1000, 'tune': 1000, 'chains': 4, 'cores': None, 'target_accept': 0.95}
    >>> check_sampler_settings(draws=0, tune=1000, chains=4, cores=None, target_accept=0.95)
    Traceback (most recent call last):
    ...
    bayescale.base.errors.SpecError: draws must be a positive integer, got 0
    """
    out = {"draws": check_count(draws, "draws", error=error), "tune": check_count(tune, "tune", error=error),
           "chains": check_count(chains, "chains", error=error),
           "cores": None if cores is None else check_count(cores, "cores", error=error)}
    try:
        out["target_accept"] = check_prob(target_accept, "target_accept")
    except ValueError as exc:
        raise error(str(exc)) from None
    return out


def positive_array(value, name: str) -> np.ndarray:
    """``value`` as a float array of positive finite numbers, or ``ValueError`` naming it.

    Booleans are refused: ``True`` is not a budget of 1 FLOP.

    Examples
    --------
    >>> positive_array([1e21, 1e22], "budget")
    array([1.e+21, 1.e+22])
    """
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype == bool):
        raise ValueError(f"{name} must be a positive number or an array of them, got {value!r}")
    if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in value):
        raise ValueError(f"{name} must be positive numbers, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or an array of them, got {value!r}") from None
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return arr


def check_budgets(budget, name: str = "budget") -> np.ndarray:
    """Compute budgets in FLOPs as a 1-d array of positive finite numbers.

    Examples
    --------
    >>> check_budgets(1e24)
    array([1.e+24])
    """
    arr = np.atleast_1d(positive_array(budget, name))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a number or a 1-d sequence of numbers, got shape {arr.shape}")
    return arr


def renamed(**old_to_new):
    """Decorator: accept a keyword argument's former name with a ``DeprecationWarning``.

    Examples
    --------
    >>> @renamed(budgets="budget")
    ... def plot(budget=None):
    ...     return budget
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     plot(budgets=1e24), caught[0].category.__name__
    (1e+24, 'DeprecationWarning')
    """
    import functools
    import warnings

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old}= and {new}=; {old}= is the former "
                                        f"name of {new}=, pass only {new}=")
                    warn_user(f"{func.__name__}(): {old}= is now called {new}=", DeprecationWarning,
                              stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper

    return decorate
