"""Figures show themselves in IPython without pyplot, and mark fits that did not converge."""

import pytest

from bayescale.base.figure import Figure, figure_and_axes, mark_unconverged, new_figure

PNG = b"\x89PNG\r\n\x1a\n"


def simple_figure():
    fig = new_figure((3, 2))
    fig.add_subplot().plot([1, 2, 3], [3, 1, 2])
    return fig


def test_ipython_display_formatter_gives_png_without_pyplot():
    formatter = pytest.importorskip("IPython.core.formatters")
    fmt = formatter.DisplayFormatter()
    data, _meta = fmt.format(simple_figure())
    assert data["image/png"][:8] == PNG
    # A plain matplotlib Figure made without pyplot gets no image: the problem this class solves.
    from matplotlib.figure import Figure as MplFigure

    plain = MplFigure()
    plain.add_subplot().plot([1, 2])
    assert "image/png" not in fmt.format(plain)[0]


def test_png_when_the_inline_backend_also_formats_figures():
    """With matplotlib-inline's Figure formatter registered (pyplot imported in a kernel), still exactly one PNG."""
    formatters = pytest.importorskip("IPython.core.formatters")
    pytest.importorskip("matplotlib_inline")
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure as MplFigure

    fmt = formatters.DisplayFormatter()
    fmt.formatters["image/png"].for_type(MplFigure, lambda fig: print_figure(fig, "png"))
    data, _meta = fmt.format(simple_figure())
    assert data["image/png"][:8] == PNG


def test_data_uri_and_svg():
    fig = simple_figure()
    assert fig.to_data_uri().startswith("data:image/png;base64,")
    assert fig.to_bytes("svg").lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="fmt must be 'png' or 'svg'"):
        fig.to_data_uri("jpeg")


def test_given_axes_are_used():
    fig = simple_figure()
    same, ax = figure_and_axes(fig.axes[0])
    assert same is fig and ax is fig.axes[0]
    new, ax2 = figure_and_axes(None)
    assert isinstance(new, Figure) and ax2.figure is new


class _Fit:
    def __init__(self, converged):
        self.converged = converged


def test_not_converged_mark():
    fig = simple_figure()
    ax = fig.axes[0]
    ax.set_title("frontier")
    assert not mark_unconverged(ax, _Fit(True))
    assert ax.get_title() == "frontier"
    assert mark_unconverged(ax, _Fit(False))
    assert "NOT converged" in ax.get_title() and ax.get_title().startswith("frontier")
    assert any(t.get_text() == "NOT CONVERGED" for t in ax.texts)
    assert not mark_unconverged(ax, object())  # point fits have no convergence to report
