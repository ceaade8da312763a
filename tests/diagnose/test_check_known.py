"""deepstart.check on toy models with known answers: verdicts and numbers (Hanin & Rolnick 2018; Pennington et al.
2017). Tolerances are multiples of the standard errors the report computes from its own samples."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepstart.diagnose import check
from deepstart.theory.finite_width import relu_log_xi_moments


def gaussian_mlp(depth, width, weight_var, generator, activation=nn.ReLU, bias_var=0.0, in_features=None):
    """Linear/activation stack with N(0, weight_var(fan_in)) weights and N(0, bias_var) biases."""
    layers, n_in = [], in_features or width
    for _ in range(depth):
        lin = nn.Linear(n_in, width)
        with torch.no_grad():
            lin.weight.normal_(0.0, math.sqrt(weight_var(n_in)), generator=generator)
            lin.bias.normal_(0.0, math.sqrt(bias_var), generator=generator) if bias_var else lin.bias.zero_()
        layers += [lin, activation()]
        n_in = width
    return nn.Sequential(*layers)


def categories(report, severity="error"):
    return {f.category for f in report.findings if f.severity == severity}


def test_glorot_relu_mlp_fm1_vanishing_halves_per_layer(generator):
    # Glorot at constant width: variance 2/(n+n) = 1/n, so E[M_j] = M_{j-1}/2 (THEORY.md §4, FM1).
    model = gaussian_mlp(30, 64, lambda n: 1.0 / n, generator)
    report = check(model, n_inits=8, generator=generator)
    assert {"fm1", "gradients"} <= categories(report)
    st = report.stats
    depth = st["depth"]
    assert depth == 30
    rate_se = st["fm1_se"] / depth
    assert abs(st["fm1_rate"] - math.log(0.5)) < 5 * rate_se + 1e-3
    assert abs(report.predicted_stats["fm1_drift"] - depth * math.log(0.5)) < 1e-6  # mean field: exactly 1/2
    fm1 = next(f for f in report.findings if f.category == "fm1")
    assert fm1.measured < -fm1.threshold and "vanishing" in fm1.message and fm1.remedy
    assert report.recommend()[0].scheme == "he"
    # gradients shrink by χ₁ = σ_w²/2 = 1/2 per layer backwards as well (29 ratios between 30 sites)
    assert abs(st["grad_log_ratio"] - 29 * math.log(0.5)) < 5 * st["grad_se"] + 0.5


def test_he_relu_width_10_depth_100_fm2(generator):
    # Var log M_d = Σ_j Var log ξ_j, exact digamma form for Gaussian He ReLU layers (THEORY.md §4); 5β = 50 is its
    # wide-net approximation (at n = 10 the exact per-layer term is 0.867, not 5/n = 0.5).
    model = gaussian_mlp(100, 10, lambda n: 2.0 / n, generator)
    report = check(model, n_inits=16, batch_size=4, generator=generator, jacobian=False)
    assert "fm2" in categories(report)
    assert "fm1" not in categories(report)
    st = report.stats
    exact = 100 * relu_log_xi_moments(10)[1]
    assert abs(st["fm2_var"] - exact) < 5 * st["fm2_se"]
    assert abs(report.predicted_stats["fm2_var"] - exact) < 1e-9
    assert st["fm2_var"] > 5 * report.beta * 0.8 and report.beta == pytest.approx(10.0)


def test_he_relu_width_equal_depth_is_healthy(generator):
    model = gaussian_mlp(40, 40, lambda n: 2.0 / n, generator)
    report = check(model, n_inits=8, generator=generator)
    assert report.healthy, [str(f) for f in report.findings]
    st = report.stats
    exact = 40 * relu_log_xi_moments(40)[1]  # ≈ 5β = 5
    assert abs(st["fm2_var"] - exact) < 5 * st["fm2_se"]
    assert abs(st["fm1_drift"]) < max(1.0, 3 * st["fm1_se"])
    assert abs(report.predicted_stats["fm1_drift"]) < 1e-9


def test_resnet_eta_1_explodes_like_2_to_the_L(generator, scaled_resnet):
    # 16 blocks: 2^16 = e^11.1, beyond the residual-stream bound e^7.17 (docs/laws.md, rule made after the fourth
    # held-out zoo; 10 blocks, e^6.93 against e^6.30, was an error before it and is within 3 SE of the bound now)
    depth = 16
    report = check(scaled_resnet(64, [1.0] * depth, generator), n_inits=8, generator=generator)
    blocks = [s for s in report.main_sites]
    assert len(blocks) == depth and all(s["kind"] == "block" and s["eta"] == pytest.approx(1.0) for s in blocks)
    assert "fm1" in categories(report)
    st = report.stats
    # E[M_L]/M_0 = ∏(1 + η²) = 2^L (THEORY.md §4); SE from the per-layer ratios
    se_total = st["fm1_se"] * math.sqrt(depth / (depth - depth // 2))
    assert abs(st["log_mean_ratio"] - depth * math.log(2)) < 5 * se_total + 0.05
    assert np.allclose(np.diff(np.log(np.r_[report.m0.mean(), report.theory["m_pred"]])), math.log(2), atol=0.02)
    assert report.recommend()[0].kind == "residual_eta"


def test_resnet_eta_one_over_l_is_healthy(generator, scaled_resnet):
    depth = 10
    report = check(scaled_resnet(64, [1.0 / l for l in range(1, depth + 1)], generator), n_inits=8,
                   generator=generator)
    assert report.healthy, [str(f) for f in report.findings]
    expected = sum(math.log(1 + 1 / l**2) for l in range(1, depth + 1))
    pred = np.log(report.theory["m_pred"][-1] / report.m0.mean())
    assert abs(pred - expected) < 0.02


def _tanh_inputs(q_star, width, generator):
    return math.sqrt(q_star) * torch.randn(4, width, generator=generator)


def test_tanh_gaussian_critical_poor_isometry_orthogonal_critical_isometry(generator):
    from deepstart.init import apply_
    from deepstart.theory import critical_point

    depth, width, q_star = 16, 128, 1 / 64
    cp = critical_point("tanh", q_star=q_star)
    sw, sb = float(np.asarray(cp.sigma_w)), float(np.asarray(cp.sigma_b))
    model = gaussian_mlp(depth, width, lambda n: sw**2 / n, generator, activation=nn.Tanh, bias_var=sb**2)
    x = _tanh_inputs(q_star, width, generator)
    report = check(model, x, n_inits=4, generator=generator)
    assert "isometry" in categories(report, "warning")
    rel, pred = report.jacobian_relvar, report.predicted_stats["isometry_relvar"]
    # Gaussian weights at χ₁ = 1: Var(λ)/m₁² = L·μ₂/μ₁² ≈ L (THEORY.md §2); finite N = 128 allows ~30 %
    assert pred == pytest.approx(depth, rel=0.05)
    assert 0.6 * pred < rel < 1.4 * pred
    apply_(model, f"critical(activation=tanh, q_star={q_star}, weights=orthogonal)", generator=generator)
    fixed = check(model, x, n_inits=4, generator=generator)
    assert "isometry" not in categories(fixed, "warning")
    assert fixed.jacobian_relvar < 0.2 and fixed.healthy
    # orthogonal tanh at small q*: Var ≈ 8Lq*² (THEORY.md §2) = 0.03; measured includes finite-width spread
    assert fixed.predicted_stats["isometry_relvar"] == pytest.approx(8 * depth * q_star**2, rel=0.3)
