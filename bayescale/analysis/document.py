"""A self-contained document, HTML or Markdown: headings, paragraphs, lists, tables and embedded figures.

:func:`check_output` checks the file a document will be written to (its folder, its format) before any
work; :func:`write_document` writes it atomically. :mod:`bayescale.front.report` fills one with a fit's sections.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from .rendering import markdown_text, to_html, to_markdown
from ..base.files import atomic_write

__all__ = ["Document", "check_output", "write_document", "CSS", "FORMATS"]


FORMATS = ("html", "markdown")
_SUFFIX = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}
_DROP = ("beyond_C", "beyond_N", "beyond_D", "tokens_per_param_outside")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #1f77b4; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; color: #1f4e79; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .88rem; }
th, td { border: 1px solid #c8c8c8; padding: .25rem .5rem; text-align: right; }
th { background: #eef3f8; }
td { white-space: nowrap; }
.wide { overflow-x: auto; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
figcaption { font-size: .85rem; color: #555; }
.status { padding: .5rem .8rem; border-radius: 4px; font-weight: bold; }
.ok { background: #e6f4ea; color: #1e5e2f; }
.bad { background: #fde8e8; color: #8a1c1c; }
.note { font-size: .88rem; color: #444; }
.verdict { background: #f4f7fb; border-left: 4px solid #1f77b4; padding: .5rem .8rem; }
.decision td { white-space: normal; }
@media (max-width: 40rem) {
  body { margin: 1rem auto; padding: 0 .5rem; }
  table { font-size: .8rem; }
  th, td { padding: .2rem .3rem; }
  td { white-space: normal; }
}
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; font-size: .85rem; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  h2 { break-after: avoid; }
  figure, table, .status { break-inside: avoid; }
  .wide { overflow: visible; }
  td { white-space: normal; }
  figure img { max-width: 16cm; border: none; }
  a { color: inherit; text-decoration: none; }
}
"""


class Document:
    """The report built twice at once: HTML and Markdown."""

    def __init__(self):
        self.html, self.md = [], []

    def heading(self, text, level=2):
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.append("#" * level + " " + markdown_text(text) + "\n")

    def para(self, text, cls=None):
        attr = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{attr}>{html.escape(text)}</p>")
        text = markdown_text(text)
        self.md.append(("**" + text + "**" if cls and "status" in cls else text) + "\n")

    def items(self, lines):
        self.html.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in lines) + "</ul>")
        self.md.append("\n".join(f"- {markdown_text(t)}" for t in lines) + "\n")

    def table(self, frame, *, index=True, digits=4):
        fmt = lambda v: f"{v:.{digits}g}"  # noqa: E731
        frame = frame.reset_index() if index else frame
        self.html.append('<div class="wide">' + frame.to_html(index=False, escape=True, border=0, float_format=fmt,
                                                               na_rep="") + "</div>")
        self.md.append(_markdown_table(frame, fmt) + "\n")

    def human_table(self, frame):
        frame = frame.drop(columns=[c for c in _DROP if c in frame.columns])
        self.html.append('<div class="wide">' + to_html(frame).replace("<th>beyond</th>", "<th>decades beyond "
                                                                        "the fitted runs</th>", 1) + "</div>")
        self.md.append(to_markdown(frame) + "\n")

    def text_table(self, frame, cls=None):
        """A table of strings as it is (no number formatting), e.g. the decision table."""
        attr = f' class="wide {cls}"' if cls else ' class="wide"'
        self.html.append(f"<div{attr}>" + frame.to_html(index=False, escape=True, border=0) + "</div>")
        self.md.append(_markdown_table(frame, str) + "\n")

    def figure(self, fig, caption):
        uri = fig.to_data_uri("png")
        self.html.append(f'<figure><img src="{uri}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.md.append(f"![{markdown_text(caption)}]({uri})\n\n*{markdown_text(caption)}*\n")

    def pre(self, text):
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append("```\n" + text + "\n```\n")


def _markdown_table(table, fmt):

    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if not math.isfinite(v) else fmt(v)
        return markdown_text(v).replace("|", r"\|")

    lines = ["| " + " | ".join(cell(c) for c in table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _format_of(path, format):
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        return format
    if path is None:
        return "html"
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX:
        raise ValueError(f"report path {str(path)!r}: cannot tell the format from the suffix {suffix!r}; "
                         "use .html or .md, or pass format='html' or 'markdown'")
    return _SUFFIX[suffix]


def check_output(path, format=None) -> str:
    """The report format for `path` (and `format`), after checking its folder exists; raises before any work.

    Examples
    --------
    >>> check_output("report.md"), check_output("out.txt", format="html")
    ('markdown', 'html')
    >>> check_output("report.pdf")
    Traceback (most recent call last):
    ...
    ValueError: report path 'report.pdf': cannot tell the format from the suffix '.pdf'; use .html or .md, or pass format='html' or 'markdown'
    """
    fmt = _format_of(path, format)
    if path is not None:
        _check_folder(path)
    return fmt


def _check_folder(path):
    folder = Path(path).parent if str(Path(path).parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write the report to {str(path)!r}: folder {str(folder)!r} does not exist")
    return folder


def write_document(path, text):
    """Write `text` to `path` atomically (:func:`bayescale.base.files.atomic_write`), with the user's umask."""
    _check_folder(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), "report")
