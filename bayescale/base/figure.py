"""Figures that show themselves wherever they are returned, without pyplot.

Every figure of the package is a :class:`Figure`: a plain
:class:`matplotlib.figure.Figure` made without pyplot (no global state, no
figure manager, never shown twice) that also has ``_repr_png_``, so IPython,
Jupyter and ``display()`` render it as an image whether or not the inline
backend is active (matplotlib itself only gives figures made by pyplot an
image in a notebook). Save it with ``fig.savefig(path)``; embed it with
:meth:`Figure.to_data_uri`.
"""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure as _MplFigure

__all__ = ["Figure", "new_figure", "figure_and_axes", "mark_unconverged"]

#: Resolution of the PNG a notebook or a report shows.
DISPLAY_DPI = 100


class Figure(_MplFigure):
    """A matplotlib Figure that renders as PNG in IPython/Jupyter without pyplot.

    Examples
    --------
    >>> from bayescale.base.figure import new_figure
    >>> fig = new_figure(size=(3, 2))
    >>> _ = fig.add_subplot().plot([1, 2], [3, 4])
    >>> fig._repr_png_()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> fig.to_data_uri()[:22]
    'data:image/png;base64,'
    """

    def to_bytes(self, fmt="png", dpi=DISPLAY_DPI) -> bytes:
        """The figure as PNG (or ``fmt="svg"``) bytes, cropped to its content."""
        buf = io.BytesIO()
        self.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def _repr_png_(self):
        return self.to_bytes("png")

    def to_data_uri(self, fmt="png", dpi=DISPLAY_DPI) -> str:
        """A ``data:`` URI of the figure, for embedding in a self-contained HTML page."""
        mime = {"png": "image/png", "svg": "image/svg+xml"}.get(fmt)
        if mime is None:
            raise ValueError(f"fmt must be 'png' or 'svg', got {fmt!r}")
        return f"data:{mime};base64," + base64.b64encode(self.to_bytes(fmt, dpi)).decode("ascii")


def new_figure(size=(7.0, 4.5), **kwargs) -> Figure:
    """A new :class:`Figure` with constrained layout.

    Examples
    --------
    >>> new_figure(size=(4, 3)).get_size_inches().tolist()
    [4.0, 3.0]
    """
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=size, **kwargs)


def figure_and_axes(ax, size=(7.0, 4.5)):
    """``(figure, axes)``: the given axes and its figure, or a new :class:`Figure` with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(size)
    return fig, fig.add_subplot()


def mark_unconverged(ax, fit) -> bool:
    """Write "NOT CONVERGED" across `ax`, and say so in its title, when `fit` failed its convergence checks.

    Returns whether the mark was drawn. Objects without a ``converged``
    attribute (point fits) are never marked.
    """
    if fit is None or getattr(fit, "converged", True):
        return False
    ax.text(0.5, 0.5, "NOT CONVERGED", transform=ax.transAxes, ha="center", va="center", rotation=20,
            fontsize=30, color="C3", alpha=0.25, fontweight="bold", zorder=10, gid="bayescale-not-converged")
    title = ax.get_title()
    ax.set_title((title + "\n" if title else "") + "fit NOT converged: see fit.diagnostics()",
                 fontsize=ax.title.get_fontsize())
    return True
