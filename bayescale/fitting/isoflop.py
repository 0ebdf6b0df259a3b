"""Chinchilla Approach 2: isoFLOP profiles and the power laws of their minima."""


from __future__ import annotations


import numpy as np
import pandas as pd

from ..base.errors import BayescaleError, ConvergenceWarning, SpecError
from ..analysis.contract import check_ci_kind, interval_label
from ..base.validation import FLOPS_PER_PARAM_TOKEN, check_budgets as _budgets, check_prob as _check_prob
from ..base.validation import check_count, positive_array as _positive
from ..base.errors import warn_user
from ..runs.data import load_runs
from ..core.extrapolation import annotate
from ..base.tablecheck import check_table

__all__ = [
    "IsoFLOP",
    "IsoFLOPFit",
]

# ------------------------------------------------------------------- Approach 2
class IsoFLOP:
    """Chinchilla Approach 2: isoFLOP profiles (settings; data goes into :meth:`fit`).

    Runs are grouped at common compute levels. In each level the loss is
    fitted by a parabola in log N; its vertex gives N_opt(C) and
    ``D_opt = C / (k N_opt)``. Then ``log N_opt = log k_N + a log C`` and
    ``log D_opt = log k_D + b log C`` by least squares.

    Parameters
    ----------
    resolution : float, default 0.1
        Width of a compute level in decades: runs are grouped by
        ``round(log10 C / resolution)``; with `levels`, runs within
        ``resolution / 2`` decades of a level join it.
    levels : sequence of float, optional
        Compute levels in FLOPs (e.g. the budgets of the isoFLOP sweeps).
    group : str, optional
        Name of a column that labels the level of each run (overrides the
        two above).
    min_runs : int, default 5
        Fewest runs in a level for its parabola to be used.
    flops_per_param_token : float, default 6

    Examples
    --------
    >>> import bayescale as bs
    >>> fit = bs.IsoFLOP(resolution=0.25).fit(bs.datasets.load_chinchilla(drop_outliers=True))
    >>> round(fit.a, 2), round(fit.b, 2)
    (0.5, 0.5)
    """

    def __init__(self, *, resolution=0.1, levels=None, group=None, min_runs=5,
                 flops_per_param_token=FLOPS_PER_PARAM_TOKEN):
        if not (isinstance(resolution, (int, float)) and not isinstance(resolution, bool) and resolution > 0):
            raise SpecError(f"resolution must be a positive number of decades, got {resolution!r}")
        check_count(min_runs, "min_runs")
        if min_runs < 3:
            raise SpecError(f"min_runs must be at least 3 (a parabola has 3 coefficients), got {min_runs}")
        self.resolution = float(resolution)
        self.levels = None if levels is None else _budgets(levels)
        self.group = group
        self.min_runs = int(min_runs)
        self.flops_per_param_token = float(_positive(flops_per_param_token, "flops_per_param_token"))

    def __repr__(self) -> str:
        how = (f"group={self.group!r}" if self.group is not None else
               f"levels={len(self.levels)}" if self.levels is not None else f"resolution={self.resolution:g}")
        return f"IsoFLOP({how}, min_runs={self.min_runs})"

    def _labels(self, runs):
        frame = runs.frame
        log_c = np.log10(frame["C"].to_numpy(dtype=float))
        if self.group is not None:
            if self.group not in frame.columns:
                raise SpecError(f"group column {self.group!r} not in the runs; "
                                f"columns: {', '.join(map(str, frame.columns))}")
            return frame[self.group].astype(str).to_numpy(), None
        if self.levels is not None:
            lv = np.log10(self.levels)
            dist = np.abs(log_c[:, None] - lv[None, :])
            near = dist.argmin(axis=1)
            inside = dist.min(axis=1) <= self.resolution / 2
            labels = np.where(inside, near, -1)
            return labels, dict(enumerate(self.levels))
        return np.round(log_c / self.resolution).astype(int), None

    def fit(self, runs, *, columns=None) -> "IsoFLOPFit":
        """Fit the isoFLOP parabolas and the power laws of N_opt and D_opt in C.

        Parameters
        ----------
        runs : RunData, DataFrame, dict of arrays or path
            Needs ``N``, ``loss`` and ``C`` (or ``D``, from which C = 6 N D).

        Returns
        -------
        IsoFLOPFit
        """
        runs = load_runs(runs, columns=columns, require=("N", "C"), min_runs=self.min_runs)
        labels, named = self._labels(runs)
        frame = runs.frame
        log_n = np.log(frame["N"].to_numpy(dtype=float))
        loss = frame["loss"].to_numpy(dtype=float)
        c = frame["C"].to_numpy(dtype=float)
        rows = []
        for lab in pd.unique(labels):
            if named is not None and lab == -1:
                continue
            m = labels == lab
            level_c = named[lab] if named is not None else float(np.exp(np.mean(np.log(c[m]))))
            row = {"level": lab, "C": level_c, "n_runs": int(m.sum()), "N_opt": np.nan, "D_opt": np.nan,
                   "loss_min": np.nan, "curvature": np.nan, "used": False, "reason": ""}
            if m.sum() < self.min_runs:
                row["reason"] = f"fewer than {self.min_runs} runs"
            elif np.ptp(log_n[m]) <= 0:
                row["reason"] = "a single model size"
            else:
                c2, c1, c0 = np.polyfit(log_n[m], loss[m], 2)
                row["curvature"] = c2
                if c2 <= 0:
                    row["reason"] = "parabola opens downwards"
                else:
                    x = -c1 / (2 * c2)
                    if not log_n[m].min() <= x <= log_n[m].max():
                        row["reason"] = "minimum outside the sampled model sizes"
                    else:
                        row.update(N_opt=float(np.exp(x)), loss_min=float(c0 - c1 * c1 / (4 * c2)), used=True)
                        row["D_opt"] = level_c / (self.flops_per_param_token * row["N_opt"])
            rows.append(row)
        table = pd.DataFrame(rows).sort_values("C").reset_index(drop=True)
        used = table[table["used"]]
        if len(used) < 3:
            raise BayescaleError(
                f"only {len(used)} compute level(s) give an interior parabola minimum; Approach 2 needs at "
                f"least 3. Levels found: {len(table)} (see resolution=, levels= or group=)")
        fit = IsoFLOPFit(self, runs, table)
        if not fit.converged:
            warn_user(ConvergenceWarning(f"isoFLOP fit did not converge: {fit.reason}"), stacklevel=2)
        return fit


class IsoFLOPFit:
    """Result of :meth:`IsoFLOP.fit`: exponents a, b of ``N_opt ∝ C^a``, ``D_opt ∝ C^b``.

    Attributes
    ----------
    levels : DataFrame
        One row per compute level: ``C``, ``n_runs``, ``N_opt``, ``D_opt``,
        ``loss_min``, ``curvature``, ``used`` and the ``reason`` a level was not.
    a, b : float
        Exponents of N_opt and D_opt in C (``a + b = 1`` since ``D_opt = C / (k N_opt)``).
    params : dict
        ``a``, ``b``, ``log_kN``, ``log_kD`` (intercepts, natural log).
    converged : bool
        Whether the fitted exponents describe an allocation: ``0 < a < 1``
        (both N_opt and D_opt grow with compute) and finite.
    reason : str
        Why not ("" when converged).
    """

    def __init__(self, model, runs, levels):
        self.model = model
        self.runs = runs
        self.levels = levels
        used = levels[levels["used"]]
        x = np.log(used["C"].to_numpy(dtype=float))
        self._x = x
        self._fits = {}
        for name, col in (("N", "N_opt"), ("D", "D_opt")):
            y = np.log(used[col].to_numpy(dtype=float))
            X = np.column_stack([np.ones_like(x), x])
            coef, *_ = np.linalg.lstsq(X, y, rcond=None)
            resid = y - X @ coef
            dof = max(len(x) - 2, 1)
            s2 = float(resid @ resid / dof)
            self._fits[name] = (coef, s2 * np.linalg.inv(X.T @ X), dof)
        self.a = float(self._fits["N"][0][1])
        self.b = float(self._fits["D"][0][1])
        self.params = {"a": self.a, "b": self.b, "log_kN": float(self._fits["N"][0][0]),
                       "log_kD": float(self._fits["D"][0][0])}
        if not all(np.isfinite(v) for v in self.params.values()):
            self.reason = "the fitted lines are not finite"
        elif not 0 < self.a < 1:
            self.reason = (f"a = {self.a:.3g}: N_opt ∝ C^a needs 0 < a < 1 for both the model size and the tokens to "
                           "grow with compute")
        else:
            self.reason = ""
        self.converged = not self.reason

    #: Its intervals are Student-t intervals of the log-log lines (:func:`bayescale.analysis.contract.interval_label`).
    draws_kind = "t"

    def summary(self, prob=0.9, *, ci_kind="eti") -> pd.DataFrame:
        """Exponents and intercepts with least-squares standard errors and t intervals.

        Parameters
        ----------
        prob : float, default 0.9
        ci_kind : {"eti", "hdi"}
            Accepted for the shared read API; a t interval is both.

        Returns
        -------
        DataFrame
            Rows ``a``, ``b``, ``log_kN``, ``log_kD``; columns ``estimate``,
            ``sd``, ``lower``, ``upper``; ``attrs``: ``prob``, ``interval``
            (``"t interval"``).
        """
        from scipy import stats

        _check_prob(prob)
        check_ci_kind(ci_kind)
        rows = []
        for name, (which, j) in {"a": ("N", 1), "b": ("D", 1), "log_kN": ("N", 0), "log_kD": ("D", 0)}.items():
            coef, cov, dof = self._fits[which]
            sd = float(np.sqrt(cov[j, j]))
            t = stats.t.ppf((1 + prob) / 2, dof)
            rows.append((name, coef[j], sd, coef[j] - t * sd, coef[j] + t * sd))
        table = pd.DataFrame(rows, columns=["parameter", "estimate", "sd", "lower", "upper"]).set_index("parameter")
        table.attrs.update(prob=prob, interval=interval_label(self.draws_kind))
        return table

    def predict(self, new_runs, prob=0.9, **_ignored):
        raise BayescaleError("an isoFLOP (Approach 2) fit gives compute-optimal allocations, not losses at given "
                             "(N, D); use fit.allocate(budget), or a PointModel / ScalingModel for predictions")

    def allocate(self, budget, prob=0.9, *, flops_per_param_token=None, max_unique_tokens=None) -> pd.DataFrame:
        """N_opt and D_opt at each budget from the fitted power laws, with t intervals of the line.

        Parameters
        ----------
        budget : float or sequence of float
            Compute budgets in FLOPs.
        prob : float, default 0.9
        flops_per_param_token : float, optional
            k in ``C = k N D``; default the spec's (:class:`IsoFLOP`). The
            model-size line does not depend on it; D and tokens per parameter
            follow as ``D = C / (k N)``.
        max_unique_tokens : None
            Not supported (no data-repetition model).

        Returns
        -------
        DataFrame
            The columns of :meth:`ScalingFit.allocate` for N, D and tokens per
            parameter, without ``loss_*``: Approach 2 does not model the loss
            away from the profiles (``fit.levels["loss_min"]`` holds the
            profiles' minima). ``k N_median D_median = C`` holds to rounding.
            A fit that did not converge (:attr:`reason`) warns.

        Examples
        --------
        >>> import bayescale as bs
        >>> fit = bs.IsoFLOP(resolution=0.25).fit(bs.datasets.load_chinchilla(drop_outliers=True))
        >>> fit.allocate([1e21, 1e24])[["C", "N_median", "tokens_per_param_median"]].shape
        (2, 3)
        """
        from scipy import stats

        _check_prob(prob)
        if max_unique_tokens is not None:
            raise SpecError("an isoFLOP fit has no data-repetition model; max_unique_tokens is not supported")
        k_fit = self.model.flops_per_param_token
        k = k_fit if flops_per_param_token is None else float(_positive(flops_per_param_token,
                                                                          "flops_per_param_token"))
        shift = np.log(k_fit / k)  # D = C / (k N): the D line was fitted with the spec's k
        c = _budgets(budget)
        lx = np.log(c)
        X = np.column_stack([np.ones_like(lx), lx])
        frame = pd.DataFrame({"C": c})
        out = {}
        for name in ("N", "D"):
            coef, cov, dof = self._fits[name]
            mean = X @ coef
            se = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
            t = stats.t.ppf((1 + prob) / 2, dof)
            out[name] = (mean, mean - t * se, mean + t * se)
        out["D"] = tuple(v + shift for v in out["D"])
        for name in ("N", "D"):
            mean, lo, hi = out[name]
            frame[f"{name}_median"] = np.exp(mean)
            frame[f"{name}_lower"], frame[f"{name}_upper"] = np.exp(lo), np.exp(hi)
        ratio = out["D"][0] - out["N"][0]
        frame["tokens_per_param_median"] = np.exp(ratio)
        # D/N bounds from the N and D bands (conservative: the two lines share their data).
        frame["tokens_per_param_lower"] = np.exp(out["D"][1] - out["N"][2])
        frame["tokens_per_param_upper"] = np.exp(out["D"][2] - out["N"][1])

        annotate(frame, self.runs, what="allocate", n="N_median", d="D_median",
                 tokens_per_param="tokens_per_param_median", flops_per_param_token=k, stacklevel=2)
        frame["converged"] = self.converged
        frame.attrs.update(prob=prob, law="isoflop", flops_per_param_token=k, max_unique_tokens=None)
        check_table(frame, "allocate", plan=("N_median", "D_median"), stacklevel=2,
                    problems=[] if self.converged else [f"the isoFLOP fit did not converge ({self.reason})"])
        return frame

    def fit_report(self, prob=0.9) -> str:
        """Text report: levels used and the fitted exponents."""
        used = self.levels[self.levels["used"]]
        lines = ["[[Model]]", "    Approach 2 (isoFLOP profiles): parabola of loss in log N per compute level,",
                 "    then N_opt = k_N C^a, D_opt = k_D C^b", "[[Levels]]",
                 f"    {len(used)} of {len(self.levels)} levels used ({self.runs.n_runs} runs)"]
        for _, r in self.levels.iterrows():
            what = f"N_opt {r['N_opt']:.3g}, D_opt {r['D_opt']:.3g}" if r["used"] else f"not used: {r['reason']}"
            lines.append(f"    C {r['C']:.3g}: {r['n_runs']} runs, {what}")
        if not self.converged:
            lines.append(f"    not converged: {self.reason}")
        lines.append(f"[[Exponents]] (estimate and {prob:.0%} t interval)")
        for name, row in self.summary(prob).iterrows():
            lines.append(f"    {name:<7} {row['estimate']:<10.4g} [{row['lower']:.4g}, {row['upper']:.4g}]")
        return "\n".join(lines)

    def __repr__(self) -> str:
        used = int(self.levels["used"].sum())
        return (f"IsoFLOPFit: N_opt ∝ C^{self.a:.3f}, D_opt ∝ C^{self.b:.3f} from {used} compute levels\n"
                "Next: fit.summary(), fit.levels, fit.allocate(budget), fit.fit_report()")
