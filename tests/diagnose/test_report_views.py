"""Report views: the signal-propagation figure, the self-contained HTML page, the terminal table."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def report():
    g = torch.Generator().manual_seed(20181128)
    layers = []
    for _ in range(6):
        lin = nn.Linear(32, 32)
        with torch.no_grad():
            lin.weight.normal_(0, math.sqrt(2 / 32), generator=g)
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
    return check(nn.Sequential(*layers), input_shape=(32,), n_inits=4, generator=g)


def test_plot_has_the_four_panels_and_the_theory_density(report):
    import matplotlib.pyplot as plt

    fig, axes = report.plot()
    try:
        assert len(axes) == 4
        titles = [a.get_title() for a in axes]
        assert "FM1" in titles[0] and "gradient" in titles[1] and "FM2" in titles[2] and "Jacobian" in titles[3]
        labels = [[t.get_text() for t in a.get_legend().get_texts()] for a in axes]
        assert any("theory" in t for t in labels[0]) and any("5β" in t for t in labels[2])
        from deepstart.theory import jacobian_spectrum  # noqa: F401 - the density is drawn when the theory exists

        assert any("theory density" in t for t in labels[3])
        assert report.theory["jacobian"]["spectrum"] == {"activation": "relu", "depth": 6, "weights": "gaussian",
                                                        "sigma_w": pytest.approx(math.sqrt(2)), "sigma_b": 0.0}
    finally:
        plt.close(fig)
    fig, ax = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="4 axes"):
        report.plot(ax=ax)
    plt.close(fig)


def test_html_is_self_contained_and_text_has_the_table(report, tmp_path):
    page = report.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == page
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page.replace(
        "http-equiv", "")
    assert "<table>" in report._repr_html_() and "<html>" not in report._repr_html_()
    text = report.render()
    assert "deepstart check" in text and "M_j" in text and "findings" in text
    assert "\033[" in report.render(color=True) and "\033[" not in text


def test_html_names_every_column_once_and_explains_it(report):
    import re

    from deepstart.diagnose.html import COLUMNS

    page = report.to_html()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    assert heads == [h for h, _ in COLUMNS] and len(set(heads)) == len(heads)
    assert "M_j theory" in heads and "Var log M theory" in heads and "theory" not in heads
    legend = page.split("<dl class='legend'>", 1)[1].split("</dl>", 1)[0]
    for name in ("M_j", "σ_w", "grad²", "dead", "site", "act", "Var log M"):
        assert f"<dt>{name}</dt>" in legend
    assert "bb:&lt;label&gt;" in legend  # the black-box prefix of unknown activations is explained
    header = next(line for line in report.render().splitlines() if "σ_w" in line and "site" in line)
    assert header.split().count("theory") == 2 and "M_j theory" in header and "Var theory" in header


def test_html_notes_heading_only_with_notes(report):
    from dataclasses import replace

    assert "Notes" not in replace(report, notes=()).to_html()
    page = replace(report, notes=("a site did not fit the theory",)).to_html()
    assert "<h3>Notes</h3><ul><li>a site did not fit the theory</li></ul>" in page


def test_html_links_and_finding_figures(report, tmp_path):
    from dataclasses import replace

    from deepstart.diagnose.html import report_html

    assert "<a href" not in report.to_html()
    page = report_html(report, tmp_path / "check.html", link=("fixed model", "check.fixed.html"))
    assert "<a href='check.fixed.html'>fixed model</a>" in page
    page = report_html(report, None, link=[("original", "check.html"), ("JSON", "a'b.json")])
    assert "<a href='check.html'>original</a>" in page and "href='a&#x27;b.json'" in page
    with pytest.raises(TypeError, match="text, href"):
        report_html(report, None, link=("only text",))
    # a failing verdict (threshold 0) gets its own small figure: the panel that shows it
    strict = replace(report, thresholds={**report.thresholds, "isometry_relvar": 0.0})
    assert [f.category for f in strict.findings] == ["isometry"]
    assert strict.to_html().count("<img class='finding'") == 1
    assert report_html(strict, None, finding_figures=0).count("<img class='finding'") == 0


def test_plot_finding_marks_the_site(report):
    import matplotlib.pyplot as plt

    from deepstart.diagnose.html import plot_finding
    from deepstart.diagnose.verdicts import Finding

    site = report.main_sites[2]["name"]
    for category, marked in (("fm1", True), ("gradients", True), ("fm2", True), ("dead", True), ("isometry", False)):
        fig, ax = plot_finding(report, Finding(category, "error", site, 1.0, 0.5, None, "m", "r"))
        try:
            assert category in ax.get_title()
            assert any(t.get_text() == f"finding at {site}" for t in ax.get_legend().get_texts()) == marked
        finally:
            plt.close(fig)
    assert plot_finding(report, Finding("structure", "info", "model", 0.0, 0.0, None, "m", "r")) == (None, None)
