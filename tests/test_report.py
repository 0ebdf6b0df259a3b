"""fit.report / `bayescale report`: one self-contained document, checked for content and rendered in a browser."""

import base64
import re
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from bayescale.front import cli
from bayescale.analysis.document import check_output
from bayescale.front.report import report

SECTIONS = ("The decision", "What was fitted", "Diagnostics", "Parameters: posterior and point estimate",
            "What more compute buys", "Which run to train next",
            "Allocation and risk at the budgets", "Figures", "Assumptions and caveats")


@pytest.fixture(scope="module")
def html_report(chinchilla_fit, tmp_path_factory):
    """The report written by the command line from a saved fit (one report for all HTML tests)."""
    folder = tmp_path_factory.mktemp("report")
    saved = folder / "fit.nc"
    chinchilla_fit.save(saved)
    out = folder / "report.html"
    assert cli.main(["report", str(saved), "-o", str(out), "--budget", "1e24", "--budget", "1e25",
                     "--target", "2.0"]) == 0
    return out


@pytest.fixture(scope="module")
def markdown_unconverged(chinchilla_fit, tmp_path_factory):
    """A Markdown report of the same fit, as if it had failed its diagnostics."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(chinchilla_fit), "converged", property(lambda self: False))
        path = tmp_path_factory.mktemp("report_md") / "report.md"
        text = chinchilla_fit.report(path)
    assert path.read_text(encoding="utf-8") == text
    return text


def test_html_is_self_contained_with_every_section(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text
    # Figures are embedded PNGs, and nothing is fetched from anywhere.
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 6
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script" not in text and "<link" not in text
    assert "@media print" in text
    # Posterior beside the point estimate, the tables at the budgets asked, the caveats.
    assert "point estimate" in text and "Approach 3" in text
    assert "1e24 FLOP" in text and "1e25 FLOP" in text and "P(loss &lt;= 2)" in text
    assert "Extrapolation distance" in text and "Form uncertainty" in text
    assert "Sampler converged" in text and "NOT CONVERGED" not in text
    assert (html_report.stat().st_mode & 0o777) != 0o600  # written with the user's umask, not mkstemp's 0600


def test_markdown_report_and_unconverged_warning(markdown_unconverged):
    text = markdown_unconverged
    for title in SECTIONS:
        assert f"## {title}\n" in text
    assert text.count("](data:image/png;base64,") == 6
    assert "**NOT CONVERGED" in text and "unreliable until it does" in text
    assert "| compute |" in text  # the allocation table in proposal units
    assert "<h2>" not in text


#: The report's order: the decision first, then the evidence.
ORDER = ("The decision", "Budget for the target", "What was fitted", "Diagnostics",
         "Parameters: posterior and point estimate", "Allocation and risk at the budgets", "What more compute buys",
         "Which run to train next", "Figures", "Assumptions and caveats")


def _headings(text, html=True):
    return re.findall(r"<h2>(.*?)</h2>", text) if html else re.findall(r"^## (.*)$", text, flags=re.M)


def _decision_tables(text):
    section = text.split("<h2>The decision</h2>", 1)[1].split("<h2>", 1)[0]
    return section, re.findall(r'<div class="wide decision">(.*?)</div>', section, flags=re.S)


def test_report_opens_with_the_decision_and_the_budget_for_the_target(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert _headings(text) == list(ORDER)
    section, tables = _decision_tables(text)
    verdict = re.search(r'<p class="verdict">(.*?)</p>', section, flags=re.S).group(1)
    assert verdict.startswith("The sampler converged") and "decades beyond the fitted runs" in verdict
    assert "leave-one-source-out on 10 public sources" in verdict and "87%" in verdict
    plan, outcome = tables
    for header in ("params N_opt", "tokens D_opt", "tokens/param"):
        assert f"<th>{header}</th>" in plan
    assert "<th>P(loss &lt;= 2)</th>" in outcome and "<th>loss, 90% band</th>" in outcome
    # Tables fit the page: a few columns each, human units (70B, 1.4T, 1e24 FLOP), no 9.985e+10.
    for table in tables:
        assert table.count("<th>") <= 5
        assert not re.search(r"\de\+\d", table)
    assert re.search(r"<td>\d+(\.\d+)?B \[", plan) and "<td>1e24 FLOP</td>" in plan
    budget = text.split("<h2>Budget for the target</h2>", 1)[1].split("<h2>", 1)[0]
    assert "compute for P = 90%" in budget and "compute, median case" in budget and " FLOP</td>" in budget
    # The caveat says what the calibration says: coverage by distance, not "fewer runs the further out".
    assert "fewer runs the further out" not in text and "beyond 2 decades 0.79" in text


def test_without_a_target_there_is_no_target_column_or_section(markdown_unconverged):
    text = markdown_unconverged
    assert _headings(text, html=False) == [h for h in ORDER if h != "Budget for the target"]
    decision = text.split("## The decision\n", 1)[1].split("\n## ", 1)[0]
    assert "did NOT converge" in decision and "| params N_opt |" in decision and "P(loss" not in decision


def test_bad_output_is_refused_before_any_work(tmp_path):
    # fit=None: the path is checked first, so nothing about the fit is touched.
    with pytest.raises(ValueError, match="suffix '.pdf'"):
        report(None, tmp_path / "report.pdf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report(None, tmp_path / "missing" / "report.html")
    with pytest.raises(ValueError, match="format must be one of"):
        check_output(None, "latex")
    assert cli.main(["report", str(tmp_path / "no_fit.nc"), "-o", str(tmp_path / "missing" / "r.html")]) == 1


def _browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_headless_chromium(html_report, tmp_path):
    from PIL import Image

    browser = _browser()
    if browser is None:
        pytest.skip("no chromium/chrome on PATH (./dev installs Debian's chromium when apt-get can)")
    shot = tmp_path / "shot.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1000,7000", f"--screenshot={shot}", html_report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    ink = (image.sum(axis=2) < 600).mean()
    assert ink > 0.03  # not blank: text, tables and figures were drawn
    # The figures rendered: the allocation figure's orange D_opt line (matplotlib C1, #ff7f0e) is on the page.
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    orange = (r > 220) & (g > 100) & (g < 150) & (b < 60)
    assert orange.sum() > 200


@pytest.mark.parametrize("width, height", [(794, 1123), (390, 844)], ids=["A4", "phone"])
def test_the_first_screen_holds_the_verdict(html_report, tmp_path, width, height):
    """At A4 and phone widths the first screen shows the verdict box (its blue left border, #1f77b4)."""
    from PIL import Image

    browser = _browser()
    if browser is None:
        pytest.skip("no chromium/chrome on PATH (./dev installs Debian's chromium when apt-get can)")
    shot = tmp_path / "first.png"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--window-size={width},{height}", f"--screenshot={shot}", html_report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists(), proc.stderr[-2000:]
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    blue = (abs(r - 31) < 20) & (abs(g - 119) < 20) & (abs(b - 180) < 20)
    assert blue.sum(axis=0).max() > 100  # a vertical bar: the verdict's border, not the title's rule


def test_markup_in_the_data_is_never_markup_in_a_markdown_report(chinchilla_fit, tmp_path):
    """A label or title taken from data cannot open an HTML tag in the Markdown a renderer displays."""
    from bayescale.analysis.rendering import markdown_text, to_markdown

    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    table = pd.DataFrame({"label": [evil], "p_target": [0.5]})
    text = to_markdown(table)
    assert "<script" not in text and "<img" not in text and "&lt;script>" in text
    assert markdown_text("P(loss <= 1.9)") == "P(loss <= 1.9)"
    path = tmp_path / "r.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chinchilla_fit.report(path, title=evil, next_run=False)
    body = path.read_text()
    assert "<script" not in body and "<img src=x" not in body and "&lt;img src=x" in body
