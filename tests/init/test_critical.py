"""critical_ and the Critical scheme (Schoenholz et al. 2017; Pennington et al. 2017; THEORY.md §1, §2)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from deepstart.init import Critical, apply_, critical_, he_normal_, parse_scheme
from deepstart.init.papers import critical_parameters
from deepstart.theory import gaussian_expectation


def test_relu_critical_gaussian_is_he():
    a = critical_(torch.empty(48, 20), "relu", weights="gaussian", generator=torch.Generator().manual_seed(3))
    b = he_normal_(torch.empty(48, 20), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=1e-7, atol=0)


def test_critical_orthogonal_singular_values_are_sigma_w():
    # THEORY.md §1 reference: tanh critical line at q* = 1/64 has σ_w² = 1.030558 (Gauss–Hermite 201 nodes).
    w = critical_(torch.empty(64, 64, dtype=torch.float64), "tanh", q_star=1 / 64,
                  generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(w)
    assert float(s.max() - s.min()) < 1e-12
    assert abs(float(s[0]) ** 2 - 1.030558) < 1e-6


def test_critical_conv_uses_delta_orthogonal_and_gaussian_fallback_message():
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False).double()
    critical_(conv.weight, "tanh", q_star=1 / 4, generator=torch.Generator().manual_seed(1), layout="conv")
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sigma_w, _ = critical_parameters("tanh", 1 / 4)
    # centre tap O·gain with gain = σ_w·√(c_out/c_in): ||conv x||² = σ_w²·(c_out/c_in)·||x||²
    with torch.no_grad():
        ratio = float(conv(x).norm() ** 2 / x.norm() ** 2)
    assert abs(ratio - sigma_w**2 * 2) < 1e-10
    with pytest.raises(ValueError, match="weights='gaussian'"):
        critical_(torch.empty(4, 8, 3, 3), "tanh", q_star=1 / 4)


def test_scheme_text_and_bias_std():
    scheme = parse_scheme("critical(activation=tanh, q_star=1/64)")
    assert scheme == Critical("tanh", q_star=0.015625)
    assert scheme.id == "critical(activation=tanh, q_star=0.015625)"
    net = nn.Sequential(nn.Linear(300, 300), nn.Tanh(), nn.Linear(300, 300))
    parse_scheme("critical(activation=tanh, q_star=1.0)")
    rec = apply_(net, "critical(activation=tanh, q_star=1)", generator=torch.Generator().manual_seed(0))
    # THEORY.md §1: q* = 1 → σ_b² = 0.1509646; the bias std is recorded and used.
    assert abs(rec["0.bias"].std ** 2 - 0.1509646) < 1e-6
    b = net[0].bias.detach().double()
    se = math.sqrt(2 / b.numel()) * 0.1509646  # std error of the sample variance of a Gaussian
    assert abs(float((b**2).mean()) - 0.1509646) < 5 * se


def test_bad_input():
    with pytest.raises(ValueError, match="weights"):
        critical_(torch.empty(3, 3), "tanh", q_star=0.1, weights="uniform")
    with pytest.raises(ValueError, match="relu"):
        critical_(torch.empty(3, 3), "no-such-activation", q_star=0.1)
    with pytest.raises(ValueError):
        Critical("tanh", q_star=-1.0)


def _simulate_tanh(width=200, depth=200, nets=6, batch=4, q_star=1 / 64):
    """Forward and backward through `nets` tanh nets initialized with critical_ (orthogonal) + N(0, σ_b²) biases;
    q^l per net and layer, and ||g_1||/||g_L|| for the pre-activation gradients.

    Each layer is a real [width, width] weight filled by critical_ with its own seeded generator; the weights of
    one net are kept for its backward pass (depth·width² doubles = 64 MB)."""
    sigma_w, sigma_b = critical_parameters("tanh", q_star)
    gen = torch.Generator().manual_seed(7)
    qs, ratios = torch.empty(nets, depth, dtype=torch.float64), []
    for k in range(nets):
        weights = torch.empty(depth, width, width, dtype=torch.float64)
        x = torch.randn(width, batch, generator=gen, dtype=torch.float64)
        x = x / x.norm(dim=0) * math.sqrt(width * (q_star - sigma_b**2) / sigma_w**2)  # q^1 = q*
        derivs = []
        for l in range(depth):
            g = torch.Generator().manual_seed(1_000_003 + 1000 * k + l)
            critical_(weights[l], "tanh", q_star=q_star, generator=g)
            h = weights[l] @ x + torch.empty(width, 1, dtype=torch.float64).normal_(0.0, sigma_b, generator=g)
            qs[k, l] = (h**2).mean()
            derivs.append(1 - torch.tanh(h) ** 2)
            x = torch.tanh(h)
        u = derivs[-1] * torch.randn(width, batch, generator=gen, dtype=torch.float64)
        start = u.norm(dim=0)
        for l in range(depth - 1, 0, -1):
            u = derivs[l - 1] * (weights[l].T @ u)
        ratios.append(u.norm(dim=0) / start)
    return qs, torch.stack(ratios), sigma_w


def test_tanh_critical_net_keeps_q_and_gradient_norm():
    width, depth, q_star = 200, 200, 1 / 64
    qs, ratios, sigma_w = _simulate_tanh(width, depth, q_star=q_star)
    # q^l: per-layer mean over nets, SE across nets. Finite width shifts q upward at leading order: with orthogonal
    # W, h is uniform on a sphere, E h⁴ = 3q²N/(N+2), so E tanh² exceeds the Gaussian value by ≈ 4q²/(N+2) per
    # layer; the q-map relaxes at rate 1 − slope ≈ 2q*, so the stationary shift is ≈ 2σ_w² q*/(N+2) (≈ 1%).
    mean_q, se_q = qs.mean(0), qs.std(0) / math.sqrt(qs.shape[0])
    shift = 2 * sigma_w**2 * q_star / (width + 2)
    assert torch.all((mean_q - q_star).abs() <= shift + 5 * se_q), float(((mean_q - q_star) / q_star).abs().max())
    assert float(((mean_q - q_star) / q_star).abs().max()) < 0.03  # "within a few %"
    # gradients: per step z = σ_w² Σ a_i v_i², a = tanh'(h)², v uniform on the sphere: E z = χ₁ = 1 and
    # Var z = 3σ_w⁴ Var(a)/(N+2); over depth−1 steps ln ratio ≈ N(−(L−1)Var z/4, (L−1)Var z/4).
    ea = float(gaussian_expectation(lambda h: np.cosh(h) ** -4, q_star, order=64))
    ea2 = float(gaussian_expectation(lambda h: np.cosh(h) ** -8, q_star, order=64))
    var_z = 3 * sigma_w**4 * (ea2 - ea**2) / (width + 2)
    mean_ln, sd_ln = -(depth - 1) * var_z / 4, math.sqrt((depth - 1) * var_z / 4)
    ln_r = ratios.log()
    assert torch.all((ln_r - mean_ln).abs() < 5 * sd_ln), (ln_r.min(), ln_r.max(), mean_ln, sd_ln)
    per_net = ln_r.mean(1)
    assert abs(float(per_net.mean()) - mean_ln) < 5 * float(per_net.std()) / math.sqrt(per_net.numel())
