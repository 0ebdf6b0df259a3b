"""The three pictures render, are labelled and show what they claim."""

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayescale.analysis.plots import plot_allocation, plot_frontier, plot_isoflop


def rendered(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    return data


def labels(ax):
    legend = ax.get_legend()
    return (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(),
            [t.get_text() for t in legend.get_texts()] if legend else [])


def test_frontier(chinchilla_fit):
    fig = chinchilla_fit.plot_frontier([1e24, 1e25])
    assert isinstance(fig, Figure)
    rendered(fig)
    main, rel = fig.axes
    x, y, title, legend = labels(main)
    assert "loss" in y and "chinchilla" in title and "FLOP" in rel.get_xlabel()
    assert {"observed runs", "50% band (curve)", "90% band (curve)", "90% band (new run)", "budgets asked",
            "beyond the fitted runs"} <= set(legend)
    assert main.get_xscale() == "log" and main.get_yscale() == "log"
    # Plain-number loss ticks, few enough not to overlap; compute ticks as 1e24.
    ticks = [t.get_text() for t in main.get_yticklabels()]
    assert 2 <= len(ticks) <= 7 and all(float(t) > 0 for t in ticks)
    assert "1e24" in [t.get_text() for t in rel.get_xticklabels()]
    # A readout at each budget asked: median and new-run band, inside the new-run band lines.
    notes = [t.get_text() for t in main.texts]
    assert len([n for n in notes if n.startswith(("1e24 FLOP:", "1e25 FLOP:"))]) == 2
    new_lo = [l for l in main.get_lines() if l.get_label() == "90% band (new run)"][0]
    note = [n for n in notes if n.startswith("1e24 FLOP:")][0]
    med, lo, hi = (float(v) for v in note.replace("[", " ").replace("]", " ").replace(",", " ").split()[2:5])
    assert lo < med < hi
    j = np.argmin(np.abs(np.log(new_lo.get_xdata() / 1e24)))
    assert np.isclose(new_lo.get_ydata()[j], lo, rtol=2e-3)
    # The frontier extends past the largest budget asked, and the runs are all drawn.
    assert max(np.max(line.get_xdata()) for line in main.get_lines()) > 1e25
    assert len(main.collections[0].get_offsets()) == chinchilla_fit.runs.n_runs
    # Bands widen with extrapolation: the relative 90% band is wider at 1e25 than inside the runs.
    band = rel.collections[0].get_paths()[0].vertices
    width = lambda c: np.ptp(band[np.isclose(np.log(band[:, 0]), np.log(c), atol=0.2), 1])
    assert width(1e25) > 3 * width(1e20)


def test_allocation(chinchilla_fit):
    fig = chinchilla_fit.plot_allocation([1e24], max_unique_tokens=3e12)
    rendered(fig)
    (ax,) = fig.axes
    x, y, title, legend = labels(ax)
    assert "compute" in x and "N" in y and "D" in y and title
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert {"1B", "1T"} <= set(ticks) and not any("e+" in t for t in ticks)  # proposal units
    assert {"parameters N_opt (posterior median)", "tokens D_opt (posterior median)", "unique-token cap",
            "parameters N_opt: 90% band"} <= set(legend)
    d_line = [l for l in ax.get_lines() if l.get_label().startswith("tokens D_opt")][0]
    assert d_line.get_ydata().max() <= 3e12 * (1 + 1e-9)  # the cap binds at large compute


def test_isoflop(chinchilla_fit):
    fig = plot_isoflop(chinchilla_fit, [1e20, 1e21], prob=0.9)
    rendered(fig)
    (ax,) = fig.axes
    x, y, title, legend = labels(ax)
    assert "parameters" in x and y == "loss" and "IsoFLOP" in title
    assert {"1e20 FLOP", "1e21 FLOP", "median optimum"} <= set(legend)
    # Each curve's minimum is at the marked optimum (within the N grid's spacing).
    curve = [l for l in ax.get_lines() if l.get_label() == "1e21 FLOP"][0]
    marker = [l for l in ax.get_lines() if l.get_marker() == "o" and len(l.get_xdata()) == 1][1]
    n_min = curve.get_xdata()[np.argmin(curve.get_ydata())]
    assert abs(np.log(n_min / marker.get_xdata()[0])) < np.log(30) * 2 / 59


def test_default_isoflop_levels_follow_the_runs(chinchilla_fit):
    fig = plot_isoflop(chinchilla_fit)
    ax = fig.axes[0]
    assert len([t for t in labels(ax)[3] if t.endswith("FLOP")]) == 4
    assert len(ax.collections) > 4 * 2  # bands plus the runs near each level


def test_plots_draw_into_given_axes_and_check_prob(chinchilla_fit):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_frontier(chinchilla_fit, ax=ax) is fig and labels(ax)[0]
    assert plot_allocation(chinchilla_fit, ax=fig.add_subplot(212)) is fig
    with pytest.raises(ValueError, match="prob"):
        plot_isoflop(chinchilla_fit, prob=(0.5, 1.5))


def test_every_fit_plot_takes_prob_group_and_ax(chinchilla_fit):
    fig = Figure()
    for i, name in enumerate(("plot_frontier", "plot_allocation", "plot_isoflop")):
        ax = fig.add_subplot(3, 1, i + 1)
        out = getattr(chinchilla_fit, name)([1e22], prob=0.8, group=None, ax=ax)
        assert out is fig
        assert any("80%" in t for t in labels(ax)[3])


def test_figures_show_in_ipython_and_mark_unconverged_fits(chinchilla_fit, monkeypatch):
    formatters = pytest.importorskip("IPython.core.formatters")
    fmt = formatters.DisplayFormatter()
    fig = chinchilla_fit.plot_allocation()
    assert fmt.format(fig)[0]["image/png"][:4] == b"\x89PNG"
    assert "NOT converged" not in fig.axes[0].get_title()
    monkeypatch.setattr(type(chinchilla_fit), "converged", property(lambda self: False))
    for fig in (chinchilla_fit.plot_frontier(), chinchilla_fit.plot_allocation(), chinchilla_fit.plot_isoflop()):
        assert "NOT converged" in fig.axes[0].get_title()
        assert any(t.get_text() == "NOT CONVERGED" for t in fig.axes[0].texts)
