"""Plain nets with a pool after every layer (LeNet, AlexNet-style; docs/laws.md, "Plain nets with a pool after every
layer"): a pooling op whose output a layer reads is a site, the link into it (pooling's own factor) is not read and
the layer after it is read from the pooled map; the conv law carries its zero-padding factor ρ, the mean fraction of
kernel taps inside the map: E M(h) = σ_w² · fan_in · ρ · M(x) + σ_b² (a 3×3 conv with padding 1 sees 4 of 9 taps on
a 2×2 map). Before: a LeNet-5 was NOT ASSESSED (2 of 5 links read), and a He conv stack on 2×2 maps read as FM1
vanishing (e^{6 log 4/9} = e^-4.9 over 6 links)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepstart.diagnose import check
from deepstart.diagnose.capture import padding_factor
from deepstart.diagnose.verdicts import path_stats


def _rho_axis(n: int, k: int, p: int, s: int = 1, d: int = 1) -> float:
    """Taps inside a map of size n, averaged over the output positions of one axis, over k (counted one by one)."""
    n_out = (n + 2 * p - d * (k - 1) - 1) // s + 1
    return sum(0 <= o * s - p + t * d < n for o in range(n_out) for t in range(k)) / (k * n_out)


@pytest.mark.parametrize("n, k, pad, stride, dil", [(2, 3, 1, 1, 1), (8, 3, 1, 1, 1), (7, 5, 2, 2, 1),
                                                     (9, 3, 2, 1, 2), (6, 3, 0, 1, 1)])
def test_padding_factor_counts_the_taps_inside_the_map(n, k, pad, stride, dil):
    x, w = torch.randn(2, 4, n, n + 1), torch.randn(6, 2, k, k)
    rho = padding_factor(F.conv2d, (x, w, None, stride, pad, dil, 2), {})
    assert rho == pytest.approx(_rho_axis(n, k, pad, stride, dil) * _rho_axis(n + 1, k, pad, stride, dil))


def test_padding_factor_of_a_3x3_conv_on_a_2x2_map_is_four_ninths():
    assert padding_factor(F.conv2d, (torch.randn(1, 3, 2, 2), torch.randn(5, 3, 3, 3)), {"padding": 1}) == \
        pytest.approx(4 / 9)
    assert padding_factor(F.conv1d, (torch.randn(3, 2), torch.randn(5, 3, 3)), {"padding": "same"}) == \
        pytest.approx(4 / 6)  # unbatched input; 'same' padding on a map of 2


def test_the_conv_law_with_padding_matches_monte_carlo(generator):
    """Variance 1/fan_in, no activation: E M(h)/M(x) = ρ = 4/9 on 2×2 maps (within 4 SE over 40 draws)."""
    ratios = []
    for _ in range(40):
        x = torch.randn(8, 32, 2, 2, generator=generator)
        w = torch.randn(32, 32, 3, 3, generator=generator) / math.sqrt(32 * 9)
        ratios.append(float(F.conv2d(x, w, padding=1).pow(2).mean() / x.pow(2).mean()))
    r = np.array(ratios)
    assert abs(r.mean() - 4 / 9) < 4 * r.std(ddof=1) / math.sqrt(r.size)


def test_path_stats_divide_the_weight_term_by_rho_and_not_the_bias():
    """A link whose length halves with ρ = ½ and no bias reads as no change; with the bias carrying the whole
    length (σ_w = 0) the same ρ changes nothing."""
    sq = np.ones((3, 2, 2))
    sq[..., 1] = 0.5
    grad = np.ones((3, 2, 2))
    grad[..., 0] = 0.5  # the gradient passes back the same factor ρ
    weights = np.array([[1.0, 0.5], [2.0, 2.0], [0.0, 0.0]])  # ρ, σ_w², σ_b² per site
    st = path_stats(sq, grad, np.array([]), [0, 1], padding=weights)
    assert st["log_mean_ratio"] == pytest.approx(0.0) and st["grad_log_ratio"] == pytest.approx(0.0)
    bias_only = np.array([[1.0, 0.5], [0.0, 0.0], [1.0, 1.0]])
    st = path_stats(np.ones((3, 2, 2)), np.ones((3, 2, 2)), np.array([]), [0, 1], padding=bias_only)
    assert st["log_mean_ratio"] == pytest.approx(0.0)


def _he(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def _check(model, shape, generator):
    return check(model, input_shape=shape, n_inits=4, generator=generator, jacobian=False)


def test_he_convs_on_2x2_maps_are_not_vanishing(generator):
    """Six He 3×3 convs with padding 1 on a 2×2 map: each loses 4/9 of the length to the padding, which the conv
    law predicts; the drift read against it is noise (on the code before the factor: FM1 e^-4.9, FAILING)."""
    layers = [nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()]
    for _ in range(5):
        layers += [nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()]
    report = _check(_he(nn.Sequential(*layers)), (3, 2, 2), generator)
    assert [s["padding"] for s in report.main_sites] == pytest.approx([4 / 9] * 6)
    assert report.verdict == "healthy", report.findings
    assert abs(report.stats["fm1_drift"]) < max(1.0, 3 * report.stats["fm1_se"])


def lenet5() -> nn.Sequential:
    """LeNet-5's layout (LeCun et al. 1998) with ReLU and max-pooling, PyTorch's default init."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def test_lenet5_is_read_through_its_pools(generator):
    """Both pools are sites; the links into them are not read, the layers after them are read from the pooled map:
    4 of the 7 links (the head's is left out). He init (variance 2/fan_in): healthy."""
    report = _check(_he(lenet5()), (1, 28, 28), generator)
    kinds = [s["kind"] for s in report.main_sites]
    assert kinds == ["layer", "pool", "layer", "pool", "layer", "layer", "layer"]
    assert list(report.links) == [True, False, True, False, True, True, False]
    assert report.verdict == "healthy", report.findings


def test_default_lenet5_is_judged_like_a_default_mlp_of_its_depth(generator):
    """PyTorch's default init (σ_w² · fan_in = 1/3: ×1/6 per ReLU layer) loses e^-5 of the squared gradient over
    the 4 layer links across the two pools: FAILING by the run law, as a default 5-layer MLP is by the segment law
    (docs/laws.md); assessed, not NOT ASSESSED."""
    torch.manual_seed(0)
    report = _check(lenet5(), (1, 28, 28), generator)
    assert report.assessed
    (error,) = [f for f in report.findings if f.severity == "error"]
    assert error.category == "gradients" and "4 layer links" in error.message and error.measured < -math.log(10)
