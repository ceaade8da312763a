"""Report views: the signal-propagation figure, the self-contained HTML page, the terminal table."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check
from part_models import relu_mlp

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


def test_plot_has_the_four_mean_field_panels_and_the_theory_density(report):
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
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page.split("<h3>Main path</h3>", 1)[1])
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


# ----- the panels of the law that judged the model, site indices, "dead", legends -----


def _encoder(norm_first: bool, depth: int = 3):
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=norm_first)
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


@pytest.fixture(scope="module")
def encoders():
    """Pre-LN and post-LN 3-layer encoders measured on their given weights (one init: deterministic)."""
    out = {}
    for norm_first in (True, False):
        g = torch.Generator().manual_seed(3)
        torch.manual_seed(3)
        model = _encoder(norm_first)
        out["pre-ln" if norm_first else "post-ln"] = (model, check(model, torch.randn(4, 8, 32, generator=g),
                                                                   n_inits=1, generator=g, jacobian=False))
    return out


@pytest.fixture
def no_figure(monkeypatch):
    """Pages without the big figure (its drawing is tested on its own): the text is what these tests read."""
    import deepstart.diagnose.plots as plots

    monkeypatch.setattr(plots, "_figure_png", lambda report: "")


def _titles(fig):
    return [a.get_title() for a in fig.axes if a.axison]


def test_a_transformer_shows_its_part_laws_and_not_the_plain_panels(encoders, monkeypatch):
    import matplotlib.pyplot as plt

    from deepstart.diagnose.laws.addition import gains
    from deepstart.diagnose.panels import part_series

    for family, (_, report) in encoders.items():
        assert report.family == family
        series = {s.key: s for s in part_series(report)}
        assert {"branch_gain", "stream_length", "token_cos", "norm_input"} <= set(series)
        # the plotted branch gains are the statistic the addition law judged, part by part
        law = gains(report)
        assert set(series["branch_gain"].names) == set(law)
        for name, g in zip(series["branch_gain"].names, series["branch_gain"].value):
            assert g == pytest.approx(math.exp(law[name][0]))
        stream = series["stream_length"]
        if family == "pre-ln":  # one additive stretch of 6 normalized blocks: the envelope its law judges against
            from deepstart.diagnose.laws.segment import additive_band

            growth = [math.exp(additive_band(k) - additive_band(1)) for k in range(1, len(stream.names) + 1)]
            assert list(stream.bound / stream.bound[0]) == pytest.approx(growth)
            assert all(stream.value < stream.bound)
        else:  # post-LN: a norm after every block, no stretch to bound
            assert stream.bound is None
        fig, axes = report.plot()
        try:
            titles = _titles(fig)
            assert len(axes) == len(titles) == 2 + len(series)  # lengths, gradients, one per part series
            assert not any("Jacobian" in t or "FM2" in t for t in titles)
            assert not any(t.get_text() == "Jacobian not measured" for a in axes for t in a.texts)
        finally:
            plt.close(fig)
        monkeypatch.setattr("deepstart.diagnose.plots._figure_png", lambda r: "")  # drawn above
        page = report.to_html()
        monkeypatch.undo()
        assert "branch gain per residual addition" in page and "Jacobian spectrum" not in page


def test_branch_output_x10_shows_a_hundredfold_branch_gain(encoders):
    """Same weights, only the FFN output projection (weight and bias) of the last layer ×10: its branch output, and
    so the plotted branch gain of that addition, ×100 exactly; the other additions unchanged."""
    import copy

    import numpy as np

    from deepstart.diagnose.panels import part_series

    model, report = encoders["pre-ln"]
    louder = copy.deepcopy(model)
    with torch.no_grad():
        louder.layers[-1].linear2.weight.mul_(10.0)
        louder.layers[-1].linear2.bias.mul_(10.0)
    g = torch.Generator().manual_seed(3)  # the fixture's inputs and generator state
    after = check(louder, torch.randn(4, 8, 32, generator=g), n_inits=1, generator=g, jacobian=False)

    def gains(r):
        s = next(s for s in part_series(r) if s.key == "branch_gain")
        return dict(zip(s.names, s.value)), s.names[int(np.argmax(s.x))]

    (before_g, last), (after_g, _) = gains(report), gains(after)  # last: the last layer's FFN addition
    assert after_g[last] / before_g[last] == pytest.approx(100.0, rel=1e-3)
    for name in before_g:
        if name != last:
            assert after_g[name] == pytest.approx(before_g[name], rel=1e-4)


def test_entropy_panel_appears_with_entropy_and_shows_its_finding(encoders):
    from dataclasses import replace

    import matplotlib.pyplot as plt
    import numpy as np

    from deepstart.diagnose.html import plot_finding
    from deepstart.diagnose.panels import part_series

    _, report = encoders["post-ln"]
    assert "attn_entropy" not in {s.key for s in part_series(report)}  # fused attention: not measured, not shown
    blocks = [j for j, s in enumerate(report.sites) if s["kind"] == "block" and s.get("attention")]
    h = np.full((1, len(report.sites)), np.nan)
    h[0, blocks] = 0.5
    h[0, blocks[1]] = 0.02  # one layer's attention rows near one-hot
    low = replace(report, attn_entropy=h)
    series = next(s for s in part_series(low) if s.key == "attn_entropy")
    assert list(series.value) == [0.5, 0.02] + [0.5] * (len(blocks) - 2)
    finding = next(f for f in low.findings if f.category == "attention")
    assert finding.layer == report.sites[blocks[1]]["name"]
    fig, ax = plot_finding(low, finding)
    try:
        assert "attention entropy" in ax.get_title()
        marks = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_label().startswith("finding at")]
        assert marks == [series.x[1]]
    finally:
        plt.close(fig)


def test_findings_table_and_plots_use_one_site_index(no_figure):
    """A 26-layer Glorot ReLU MLP in one nn.Sequential: its last layer's module is named "50"; the FM1 finding names
    the site by its main-path index 26 (the table's #), and its figure marks x = 26."""
    import matplotlib.pyplot as plt

    from deepstart.diagnose.html import plot_finding, site_table
    from deepstart.diagnose.panels import SITE_AXIS, site_ref

    g = torch.Generator().manual_seed(5)
    report = check(relu_mlp(26, 16, 1.0, g), torch.randn(8, 16, generator=g), n_inits=3, generator=g,
                   jacobian=False)
    fm1 = next(f for f in report.findings if f.category == "fm1")
    rows = {r["site"]: r["index"] for r in site_table(report)}
    assert fm1.layer == "50" and rows["50"] == 26 and site_ref(report, "50") == "site 26 (50)"
    assert "at site 26 (50):" in report.render() and "site 26 (50)</code>" in report.to_html()
    fig, ax = plot_finding(report, fm1)
    try:
        marks = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_label() == "finding at 50"]
        assert marks == [26] and ax.get_xlabel() == SITE_AXIS
    finally:
        plt.close(fig)


def test_dead_is_explained_and_warned_only_above_the_law(no_figure):
    """He ReLU MLP: units off for every input are at most ½ in expectation (symmetric pre-activations; off for all
    inputs ⇒ off for the first), so no warning and no mark; a bias of −3 (pre-activation sd ≈ 1) turns almost every
    unit off: a warning, and the table marks the cell."""
    import numpy as np

    from deepstart.diagnose.html import COLUMNS, site_table

    width, n_inits = 32, 4
    g = torch.Generator().manual_seed(11)
    healthy = check(relu_mlp(8, width, math.sqrt(2), g), torch.randn(16, width, generator=g), n_inits=n_inits,
                    generator=g, jacobian=False)
    dead = np.array([r["dead"] for r in site_table(healthy)])
    assert np.nanmax(dead) <= 0.5 + 4 * math.sqrt(0.25 / (width * n_inits))  # ½ + 4 SE of a mean of Bernoullis
    assert not [f for f in healthy.findings if f.category == "dead"]
    assert "%!" not in healthy.render() and "%!</td>" not in healthy.to_html()
    biased = check(relu_mlp(8, width, math.sqrt(2), g, bias=-3.0), torch.randn(16, width, generator=g),
                   n_inits=n_inits, generator=g, jacobian=False)
    warn = [f for f in biased.findings if f.category == "dead"]
    assert warn and warn[0].severity == "warning" and warn[0].measured > biased.thresholds["dead_fraction"]
    assert "%!" in biased.render() and "%!</td>" in biased.to_html()
    legend = dict(COLUMNS)["dead"]
    assert "50%" in legend and "90%" in legend.replace(f"{healthy.thresholds['dead_fraction']:.0%}", "90%")


def test_legends_sit_outside_the_axes(encoders, report):
    import matplotlib.pyplot as plt

    for r in (report, encoders["pre-ln"][1]):
        fig, axes = r.plot()
        try:
            fig.canvas.draw()
            for a in axes:
                leg = a.get_legend()
                assert leg is not None, a.get_title()
                box, inner = leg.get_window_extent(), a.get_window_extent()
                assert box.y1 <= inner.y0 + 1, a.get_title()  # below the axes, never over the data
        finally:
            plt.close(fig)


def test_page_does_not_scroll_sideways_and_says_when_no_change_is_needed(encoders, no_figure):
    from dataclasses import replace

    from deepstart.diagnose.html import report_html

    _, report = encoders["pre-ln"]
    page = report.to_html()
    assert "<div class='scroll'><table>" in page and "overflow-x:auto" in page and "minmax(0,1fr)" in page
    assert "<style>" in report._repr_html_()  # a notebook gets the same layout
    assert "none needed" in page
    warned = replace(report, thresholds={**report.thresholds, "rank_cos": -1.0})  # every token stream "collapsed"
    assert [f.severity for f in warned.findings] == ["warning"] and not warned.recommend()
    assert "none needed" not in report_html(warned, None, finding_figures=0)


class _RNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(8, 16, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


def test_recurrent_gain_panel_plots_what_the_recurrent_law_judges(no_figure):
    import matplotlib.pyplot as plt

    from deepstart.diagnose.html import plot_finding
    from deepstart.diagnose.laws.recurrent import time_gain
    from deepstart.diagnose.panels import part_series
    from deepstart.diagnose.verdicts import Finding

    g = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    report = check(_RNN(), torch.randn(4, 12, 8, generator=g), factory=_RNN, n_inits=3, generator=g, jacobian=False)
    (site, data), = report.recurrent.items()
    series = next(s for s in part_series(report) if s.key == "recurrent")
    assert list(series.x) == list(range(1, 13)) and series.value[-1] == pytest.approx(1.0)
    assert math.log(series.value[0]) == pytest.approx(time_gain(data)[0])  # the first step's ratio is judged
    assert [(side, sev) for _, side, sev in series.limits] == [("above", "error"), ("below", "warning")]
    assert f"recurrent gain over time: {site}" in report.to_html()
    fig, ax = plot_finding(report, Finding("gradients", "warning", site, -3.0, -2.3, None, "vanish in time", "r"))
    try:
        assert "recurrent gain" in ax.get_title()
        assert not any(t.get_text().startswith("finding at") for t in ax.get_legend().get_texts())  # all steps
    finally:
        plt.close(fig)
