"""How far a question lies from the runs a law was fitted on.

A scaling law is fitted on a ladder of small runs and asked about runs 100 to
10,000 times larger. How wrong its form may be there grows with that distance,
so every prediction, allocation and risk table says how far it reaches, in
decades (powers of ten) of compute C, parameters N and tokens D beyond the
fitted range.

:class:`Reach` is the fitted range; :func:`decades_beyond` measures new points
against it. Both are plain NumPy and pandas, used by the result objects and
their tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Reach", "decades_beyond", "QUANTITIES", "WARN_DECADES"]

#: Quantities whose range is measured, in this order.
QUANTITIES = ("C", "N", "D")

#: Extrapolation distance (decades of any quantity) past which tables warn. One decade beyond the
#: largest run is where leave-future-out errors on the bundled real ladders grow past the noise.
WARN_DECADES = 1.0


@dataclass(frozen=True)
class Reach:
    """The fitted range: smallest and largest C, N, D and tokens per parameter of the training runs.

    Attributes
    ----------
    lower, upper : dict
        ``{quantity: value}`` for each of ``C``, ``N``, ``D`` the runs have.
    tokens_per_param : tuple of float
        Smallest and largest D / N of the runs (NaN without both N and D).

    Examples
    --------
    >>> import pandas as pd
    >>> reach = Reach.from_frame(pd.DataFrame({"N": [1e8, 1e9], "D": [2e9, 2e10], "C": [1.2e18, 1.2e20]}))
    >>> reach.upper["C"], reach.tokens_per_param
    (1.2e+20, (20.0, 20.0))
    """

    lower: dict
    upper: dict
    tokens_per_param: tuple = (float("nan"), float("nan"))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Reach":
        """The range of the canonical columns of a run table (e.g. ``RunData.frame``)."""
        lower, upper = {}, {}
        for q in QUANTITIES:
            if q in frame:
                values = frame[q].to_numpy(dtype=float)
                values = values[np.isfinite(values) & (values > 0)]
                if values.size:
                    lower[q], upper[q] = float(values.min()), float(values.max())
        tpp = (float("nan"), float("nan"))
        if "N" in frame and "D" in frame:
            ratio = frame["D"].to_numpy(dtype=float) / frame["N"].to_numpy(dtype=float)
            ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
            if ratio.size:
                tpp = (float(ratio.min()), float(ratio.max()))
        return cls(lower, upper, tpp)

    @classmethod
    def from_runs(cls, runs) -> "Reach":
        """The range of a :class:`~bayescale.RunData`."""
        return cls.from_frame(runs.frame)


def decades_beyond(reach: Reach, values: dict) -> pd.DataFrame:
    """Decades by which new points lie outside the fitted range, per quantity and overall.

    Parameters
    ----------
    reach : Reach
        The fitted range.
    values : dict
        ``{quantity: array}`` of the new points, for any of ``C``, ``N``,
        ``D`` (missing ones are skipped; ``C`` is not derived here).

    Returns
    -------
    DataFrame
        ``beyond_C``, ``beyond_N``, ``beyond_D`` (those measurable: present in
        both), each ``max(0, log10(x / largest), log10(smallest / x))``, and
        ``beyond``, their maximum: 0 inside the fitted range, 1 a tenfold
        step past its edge.

    Examples
    --------
    >>> reach = Reach({"C": 1e18, "N": 1e7}, {"C": 1e21, "N": 1e9})
    >>> decades_beyond(reach, {"C": [1e20, 1e24], "N": [1e9, 1e8]})
       beyond_C  beyond_N  beyond
    0       0.0       0.0     0.0
    1       3.0       0.0     3.0
    """
    cols = {}
    n = None
    for q in QUANTITIES:
        if q in values and q in reach.upper:
            x = np.asarray(values[q], dtype=float).ravel()
            n = x.size
            with np.errstate(divide="ignore", invalid="ignore"):
                up = np.log10(x / reach.upper[q])
                down = np.log10(reach.lower[q] / x)
            cols[f"beyond_{q}"] = np.maximum(np.maximum(up, down), 0.0)
    frame = pd.DataFrame(cols, index=pd.RangeIndex(n or 0))
    frame["beyond"] = frame.max(axis=1) if cols else 0.0
    return frame
