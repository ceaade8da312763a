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
