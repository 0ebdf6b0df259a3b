"""Result tables rendered for people: numbers in human units, and Markdown, HTML, LaTeX or plain text.

Every table a fit returns is a DataFrame of plain numbers; these functions only format it (headers and
units for known columns, the interval and probability from its ``attrs`` in a caption).
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from .contract import caption as interval_caption
from ..base.units import format_count, format_flops

__all__ = ["humanize", "markdown_text", "to_markdown", "to_html", "to_text", "to_latex"]


# --------------------------------------------------------------- rendering
_HEADERS = {
    "C": "compute", "N": "params", "D": "tokens", "U": "unique tokens", "max_unique_tokens": "unique-token cap",
    "tokens_per_param": "tokens/param", "epochs": "epochs", "loss": "loss at optimum",
    "loss_median": "loss (median)", "penalty": "penalty vs optimum", "crossover_C": "data-bound from",
    "data_bound_prob": "P(data-bound)", "target": "target loss", "prob": "P(reach)",
    "C_median_case": "compute (median case)", "C_next": "compute for the next 0.01", "slope": "slope",
    "gain_doubling": "loss gained by 2x compute", "kind": "row", "label": "plan", "status": "status",
    "converged": "converged",
}


def _formatter(base):
    return _finite_only(_raw_formatter(base))


def _raw_formatter(base):
    if base in ("C", "C_median_case", "crossover_C", "C_next"):
        return lambda v: format_flops(v)
    if base in ("N", "D", "U", "max_unique_tokens"):
        return format_count
    if base in ("loss", "loss_median", "curve", "new_run", "target"):
        return lambda v: f"{v:.3f}"
    if base in ("penalty", "slope", "gain_doubling"):
        return lambda v: f"{v:.4f}"
    if base in ("tokens_per_param", "epochs"):
        return lambda v: f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if base in ("p_target", "data_bound_prob", "prob"):
        return lambda v: f"{v:.2f}"
    if base == "converged":
        return lambda v: "yes" if v else "NO"
    return lambda v: v if isinstance(v, str) else f"{v:.4g}"


def _finite_only(f):
    """Wrap a number formatter: NaN -> "-", infinity -> "inf"."""

    def g(v):
        if isinstance(v, (float, np.floating)) and not np.isfinite(v):
            return "-" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        return f(v)

    return g


def humanize(frame: pd.DataFrame) -> pd.DataFrame:
    """Table of strings in the units people read: ``1.2e24 FLOP``, ``70B``, ``1.4T``.

    ``X_median``, ``X_lower``, ``X_upper`` become one column ``"median [lower,
    upper]"``; ``curve_*`` and ``new_run_*`` become ``[lower, upper]``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"C": [1e24], "N_median": [4.1e10], "N_lower": [3.5e10], "N_upper": [4.8e10],
    ...                   "converged": [True]})
    >>> t.attrs["prob"] = 0.9
    >>> humanize(t).to_dict("records")
    [{'compute': '1e24 FLOP', 'params (90%)': '41B [35B, 48B]', 'converged': 'yes'}]
    """
    prob = frame.attrs.get("prob")
    tag = f" ({prob:.0%})" if prob is not None else ""
    out = {}
    cols = list(frame.columns)
    done = set()
    for col in cols:
        if col in done:
            continue
        for suffix in ("_median", "_lower"):
            base = col[: -len(suffix)] if col.endswith(suffix) else None
            if base is None:
                continue
            if suffix == "_median" and {f"{base}_lower", f"{base}_upper"} <= set(cols):
                f = _formatter(base)
                out[f"{_HEADERS.get(base, base)}{tag}"] = [
                    f"{f(m)} [{f(a)}, {f(b)}]"
                    for m, a, b in zip(frame[col], frame[f"{base}_lower"], frame[f"{base}_upper"])]
                done |= {col, f"{base}_lower", f"{base}_upper"}
                break
            if suffix == "_lower" and f"{base}_upper" in cols:
                f = _formatter(base)
                name = {"curve": "curve", "new_run": "new run"}.get(base, _HEADERS.get(base, base))
                out[f"{name}{tag}"] = [f"[{f(a)}, {f(b)}]" for a, b in zip(frame[col], frame[f"{base}_upper"])]
                done |= {col, f"{base}_upper"}
                break
        if col in done:
            continue
        base = col
        if col == "p_target":
            header = f"P(loss <= {frame.attrs['target']:.3g})" if frame.attrs.get("target") else "P(target)"
        elif col not in _HEADERS and col.endswith("_median") and col[: -len("_median")] in _HEADERS:
            base = col[: -len("_median")]  # a median without its interval, e.g. N_median: 96.9B
            header = f"{_HEADERS[base]} (median)"
        else:
            header = _HEADERS.get(col, col)
        f = _formatter(base)
        out[header] = [f(v) for v in frame[col]]
        done.add(col)
    return pd.DataFrame(out)


def _caption(frame) -> str:
    bits = []
    prob = frame.attrs.get("prob")
    if prob is not None and any(c.endswith(("_lower", "_upper")) for c in frame.columns):
        bits.append(f"Intervals: {interval_caption(frame)}.")
    if frame.attrs.get("draws_kind") == "bootstrap" and "p_target" not in frame.columns and "C" in frame:
        bits.append("Probabilities are over bootstrap resamples.")
    if "curve_lower" in frame.columns:
        bits.append("curve: uncertainty of the expected loss; new run: one training run, with run-to-run noise.")
    if "p_target" in frame.columns:
        bits.append("P(loss <= target) is for one new run.")
    if "converged" in frame.columns and not frame["converged"].all():
        bits.append("WARNING: the fit did not converge (see fit.diagnostics()); do not rely on these numbers.")
    bits += [f"Caveat: {text}." for text in frame.attrs.get("caveats", ())]
    return " ".join(bits)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_text(text) -> str:
    """`text` safe to place in Markdown: every ``<`` that could open an HTML tag is written ``&lt;``.

    Markdown passes raw HTML through, so a label such as ``<script>`` or ``<img onerror=...>`` taken
    from the data would run in a rendered report; ``<=`` and the like stay as they are.

    Examples
    --------
    >>> markdown_text("<script>alert(1)</script> P(loss <= 2)")
    '&lt;script>alert(1)&lt;/script> P(loss <= 2)'
    """
    return _TAG_START.sub("&lt;", str(text))


def to_markdown(frame: pd.DataFrame, caption=True) -> str:
    """Markdown table in human units, with a one-line caption, ready to paste into a proposal.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"C": [1e24], "loss_median": [1.9512], "converged": [True]})
    >>> print(to_markdown(t))
    | compute | loss (median) | converged |
    |---|---|---|
    | 1e24 FLOP | 1.951 | yes |
    """
    table = humanize(frame)

    def cell(v):
        return markdown_text(v).replace("|", r"\|")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    text = markdown_text(_caption(frame)) if caption else ""
    return "\n".join(lines) + (f"\n\n{text}" if text else "")


def to_html(frame: pd.DataFrame, caption=True) -> str:
    """HTML table in human units (escaped), with the caption as a paragraph.

    Examples
    --------
    >>> import pandas as pd
    >>> "<td>70B</td>" in to_html(pd.DataFrame({"N": [70e9]}))
    True
    """
    body = humanize(frame).to_html(index=False, escape=True, border=0)
    text = _caption(frame) if caption else ""
    return body + (f"\n<p>{html.escape(text)}</p>" if text else "")


def to_text(frame: pd.DataFrame, caption=True) -> str:
    """Plain-text table in human units (for terminals).

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_text(pd.DataFrame({"D": [1.4e12]})))
    tokens
      1.4T
    """
    text = _caption(frame) if caption else ""
    return humanize(frame).to_string(index=False) + (f"\n{text}" if text else "")


#: Characters with a meaning in LaTeX, written so that they print as themselves.
_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
          "<": r"\textless{}", ">": r"\textgreater{}"}


def _latex_escape(value) -> str:
    text = str(value).replace("<=", "\0le\0").replace(">=", "\0ge\0")
    text = "".join(_LATEX.get(ch, ch) for ch in text)
    return text.replace("\0le\0", r"$\le$").replace("\0ge\0", r"$\ge$")


def to_latex(frame: pd.DataFrame, caption=True, label=None) -> str:
    """LaTeX table in human units, with the caption as ``\\caption``, ready for a proposal.

    A ``table`` float holding a ``tabular`` with booktabs rules (the
    document needs ``\\usepackage{booktabs}``). Every cell is escaped, so
    column names and group labels print as written.

    Parameters
    ----------
    frame : DataFrame
        A table of :meth:`ScalingFit.allocate`, :meth:`ScalingFit.risk`, ...
    caption : bool, default True
        Add the caption (interval kind and probability, what the bands mean,
        a warning if the fit did not converge), as :func:`to_markdown` does.
    label : str, optional
        ``\\label`` of the table, for ``\\ref`` (written as given).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"C": [1e24], "loss_median": [1.9512], "converged": [True]})
    >>> print(to_latex(t))
    \\begin{table}[htbp]
    \\centering
    \\begin{tabular}{lll}
    \\toprule
    compute & loss (median) & converged \\\\
    \\midrule
    1e24 FLOP & 1.951 & yes \\\\
    \\bottomrule
    \\end{tabular}
    \\end{table}
    """
    table = humanize(frame)
    lines = [r"\begin{table}[htbp]", r"\centering"]
    text = _caption(frame) if caption else ""
    if text:
        lines.append(rf"\caption{{{_latex_escape(text)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{'l' * max(len(table.columns), 1)}}}", r"\toprule",
              " & ".join(_latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(v) for v in row) + r" \\" for row in table.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)
