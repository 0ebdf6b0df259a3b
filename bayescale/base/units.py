"""Numbers in the units people write in budget proposals.

Reads ``"1.2e24"``, ``"70B"``, ``"1.4T"``, ``"500M"``, ``"70e9"``; writes
``1.2e24 FLOP``, ``70B`` params, ``1.4T`` tokens.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_quantity", "parse_plan", "format_count", "format_flops", "format_plan", "PF_DAY"]

#: FLOPs in one petaflop/s-day (Kaplan et al. 2020, Section 1.3: 1e15 x 86400).
PF_DAY = 1e15 * 86400

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}
_WORDS = ("flops", "flop", "params", "param", "parameters", "tokens", "token")
_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgtp]?)\s*$", re.IGNORECASE)


def parse_quantity(text, what="value") -> float:
    """Read a positive number written with an optional K/M/B/T suffix.

    Parameters
    ----------
    text : str or number
        ``"70B"``, ``"1.4T"``, ``"1.2e24"``, ``"500M"``, ``"1.2e24 FLOP"``;
        suffixes K=1e3, M=1e6, B=G=1e9, T=1e12, P=1e15 (any case). A unit word
        (FLOP, params, tokens) at the end is ignored.
    what : str
        Name of the quantity, for the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Naming the text and the accepted forms.

    Examples
    --------
    >>> parse_quantity("70B"), parse_quantity("1.4T"), parse_quantity("1.2e24 FLOP")
    (70000000000.0, 1400000000000.0, 1.2e+24)
    >>> parse_quantity("lots", "budget")
    Traceback (most recent call last):
    ...
    ValueError: budget: cannot read 'lots' as a positive number; write e.g. 1.2e24, 70e9, 70B or 1.4T
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip()
        low = s.lower()
        for word in _WORDS:
            if low.endswith(word):
                s = s[: len(s) - len(word)]
                break
        m = _NUMBER.match(s)
        if not m:
            raise ValueError(f"{what}: cannot read {str(text)!r} as a positive number; "
                             "write e.g. 1.2e24, 70e9, 70B or 1.4T")
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be positive and finite, got {text!r}")
    return value


def parse_plan(text) -> tuple[float, float]:
    """Read a training plan ``"N:D"`` (parameters, tokens).

    Examples
    --------
    >>> parse_plan("70B:1.4T")
    (70000000000.0, 1400000000000.0)
    >>> parse_plan("70e9:1.4e12")
    (70000000000.0, 1400000000000.0)
    >>> parse_plan("70B")
    Traceback (most recent call last):
    ...
    ValueError: plan '70B': expected PARAMS:TOKENS, e.g. 70e9:1.4e12 or 70B:1.4T
    """
    if isinstance(text, (tuple, list)) and len(text) == 2:
        return parse_quantity(text[0], "plan parameters"), parse_quantity(text[1], "plan tokens")
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError(f"plan {str(text)!r}: expected PARAMS:TOKENS, e.g. 70e9:1.4e12 or 70B:1.4T")
    return parse_quantity(parts[0], "plan parameters"), parse_quantity(parts[1], "plan tokens")


def _sig(x: float, digits: int) -> str:
    return f"{x:.{digits}g}"


def format_count(x, digits=3) -> str:
    """A count of parameters or tokens with a K/M/B/T suffix.

    Examples
    --------
    >>> format_count(70e9), format_count(1.4e12), format_count(5.2e5), format_count(12)
    ('70B', '1.4T', '520K', '12')
    >>> format_count(2.5e16), format_count(999.9e9)
    ('2.5e16', '1T')
    """
    x = float(x)
    if not math.isfinite(x):
        return "inf" if x > 0 else "nan"
    x = float(_sig(x, digits))  # round first, so 999.9e9 becomes 1T, not 1e+03B
    if abs(x) >= 1e15:
        return format_flops(x, digits, unit="")
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= div:
            return f"{_sig(x / div, digits)}{suffix}"
    return _sig(x, digits)


def format_flops(x, digits=3, unit=" FLOP") -> str:
    """Compute in scientific notation, e.g. ``1.2e24 FLOP``.

    Examples
    --------
    >>> format_flops(1.2e24), format_flops(5.88e23), format_flops(1e24, unit="")
    ('1.2e24 FLOP', '5.88e23 FLOP', '1e24')
    """
    x = float(x)
    if not math.isfinite(x):
        return ("inf" if x > 0 else "nan") + unit
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}{unit}"


def format_plan(n, d) -> str:
    """``"70B params on 1.4T tokens"``.

    Examples
    --------
    >>> format_plan(70e9, 1.4e12)
    '70B params on 1.4T tokens'
    """
    return f"{format_count(n)} params on {format_count(d)} tokens"
