"""TrialResult summaries: steps/epochs to a target accuracy, serialization, plotting."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from deepstart.experiments.metrics import TrialResult, first_reaching

HISTORY = (
    {"step": 0, "epoch": 0.0, "train_loss": None, "train_acc": None, "test_loss": 2.3, "test_acc": 0.1, "time": 0.0},
    {"step": 50, "epoch": 0.5, "train_loss": 2.0, "train_acc": 0.15, "test_loss": 2.1, "test_acc": 0.19, "time": 1.0},
    {"step": 100, "epoch": 1.0, "train_loss": 1.5, "train_acc": 0.3, "test_loss": 1.4, "test_acc": 0.2, "time": 2.0},
    {"step": 150, "epoch": 1.5, "train_loss": 1.0, "train_acc": 0.6, "test_loss": 0.9, "test_acc": 0.55, "time": 3.0},
)


def _result(**kw):
    return TrialResult("abc", {"init": "he", "depth": 3}, HISTORY, **kw)


def test_steps_and_epochs_to_threshold():
    r = _result()
    assert r.steps_to(0.2) == 100  # 0.2 is reached exactly at step 100 (≥, not >)
    assert r.epochs_to(0.2) == 1.0
    assert r.steps_to(0.5) == 150 and r.epochs_to(0.5) == 1.5
    assert r.steps_to(0.9) is None
    assert r.steps_to(0.25, metric="train_acc") == 100
    assert first_reaching(HISTORY, 0.1) == 0


def test_summary_values():
    s = _result(steps_run=150).summary()
    assert s["final_test_acc"] == 0.55 and s["best_test_acc"] == 0.55
    assert s["epochs_to_20"] == 1.0 and s["steps_to_50"] == 150 and s["epochs_to_90"] is None
    assert s["steps_run"] == 150 and s["diverged"] is False


def test_roundtrip_and_plot():
    r = _result(diverged=True, diverged_at_step=160, steps_run=159)
    again = TrialResult.from_dict(r.to_dict())
    assert again == r
    fig, ax = r.plot(x="step")
    assert len(ax.lines) == 2  # the curve and the divergence marker
    assert list(ax.lines[0].get_xdata()) == [0, 50, 100, 150]


def test_unknown_metric():
    with pytest.raises(ValueError, match="valid: train_loss"):
        _result().steps_to(0.2, metric="accuracy")


def test_heatmap_table_means_and_missing():
    import math

    from deepstart.experiments.sweep_plots import heatmap_table, plot_curves, plot_heatmap

    def res(depth, init, acc):
        h = ({"step": 0, "epoch": 0.0, "train_loss": None, "train_acc": None, "test_loss": 2.0, "test_acc": acc,
              "time": 0.0},)
        return TrialResult(f"{depth}{init}{acc}", {"depth": depth, "init": init}, h)

    results = [res(2, "he", 0.5), res(2, "he", 0.7), res(4, "he", 0.2), res(2, "orthogonal", 0.9)]
    depths, inits, m = heatmap_table(results, "best_test_acc")
    assert depths == [2, 4] and inits == ["he", "orthogonal"]
    assert m[0] == pytest.approx([0.6, 0.9]) and m[1][0] == pytest.approx(0.2) and math.isnan(m[1][1])
    _, _, never = heatmap_table(results, "epochs_to_90")  # only the orthogonal run reached 90%
    assert never[0][1] == 0.0 and math.isnan(never[0][0])
    fig, ax = plot_heatmap(results)
    assert len(ax.images) == 1
    fig, ax = plot_curves(results)
    assert len(ax.lines) == 4
