"""Monte Carlo Jacobian spectra (sample_jacobian_spectrum) and delta-orthogonal conv nets vs the FC net."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deepstart.diagnose import jacobian_singular_values, sample_jacobian_spectrum


def _five_se(per_net):
    return 5 * per_net.std(ddof=1) / np.sqrt(per_net.size)


def test_linear_orthogonal_is_exactly_isometric_up_to_scale(generator):
    """J = σ_w^L Q_L⋯Q_1, so every eigenvalue of JJᵀ equals σ_w^{2L} (closed form)."""
    ev = sample_jacobian_spectrum("linear", 5, 40, weights="orthogonal", sigma_w=1.1, n_samples=3,
                                  generator=generator)
    assert ev.shape == (3, 40)
    np.testing.assert_allclose(ev, 1.1 ** 10, rtol=1e-10)


@pytest.mark.parametrize("activation,weights", [("relu", "orthogonal"), ("relu", "gaussian"),
                                                ("linear", "gaussian")])
def test_mean_eigenvalue_is_one_at_criticality(generator, activation, weights):
    """E[tr JJᵀ/N] = (σ_w² E φ'²)^L = 1 exactly at finite width for σ_b = 0: the sign of each row of W is
    independent of (w·u)², so E‖D W u‖² = (σ_w²/2)‖u‖² (ReLU) layer by layer (THEORY.md §2, m₁ = χ₁^L)."""
    sigma_w = 2 ** 0.5 if activation == "relu" else 1.0
    ev = sample_jacobian_spectrum(activation, 6, 64, weights=weights, sigma_w=sigma_w, sigma_b=0.0,
                                  n_samples=48, generator=generator)
    m1 = ev.mean(axis=1)
    assert abs(m1.mean() - 1.0) < _five_se(m1)


@pytest.mark.parametrize("weights,reference", [("orthogonal", 3.7184), ("gaussian", 11.7184)])
def test_hard_tanh_variance_matches_free_probability(generator, weights, reference):
    """THEORY.md §2 reference: hard-tanh on the critical line at q* = 1, L = 8 (σ_w² = 1.4647948,
    σ_b² = 0.244080): Var of the eigenvalue law = 3.7184 (orthogonal), 11.7184 (Gaussian). Tolerance: 5 standard
    errors across nets plus 10% for finite width N = 160 (THEORY.md: a few % orthogonal, ~20% Gaussian at N=400)."""
    ev = sample_jacobian_spectrum("hard_tanh", 8, 160, weights=weights, q_star=1.0, sigma_w=1.4647948 ** 0.5,
                                  sigma_b=0.244080 ** 0.5, n_samples=24, generator=generator)
    per_net = ev.var(axis=1)
    assert abs(per_net.mean() - reference) < _five_se(per_net) + 0.1 * reference


def test_critical_point_from_theory(generator):
    """Without sigma_w the net sits on the critical line of deepstart.theory.critical_point; tanh at q* = 1/64
    with orthogonal weights is nearly isometric (THEORY.md §2: variance ≈ 8 L q*² ≈ 0.016 at L = 8)."""
    pytest.importorskip("deepstart.theory.mean_field", reason="theory.critical_point not written yet")
    ev = sample_jacobian_spectrum("tanh", 8, 100, weights="orthogonal", q_star=1 / 64, n_samples=8,
                                  generator=generator)
    explicit = sample_jacobian_spectrum("tanh", 8, 100, weights="orthogonal", q_star=1 / 64,
                                        sigma_w=1.030558 ** 0.5, sigma_b=4.651e-6 ** 0.5, n_samples=8,
                                        generator=torch.Generator().manual_seed(20181128))
    np.testing.assert_allclose(ev, explicit, rtol=1e-4)
    assert abs(ev.mean() - 1) < 0.05 and ev.var(axis=1).mean() < 0.05


def test_same_generator_same_spectrum():
    a = sample_jacobian_spectrum("tanh", 3, 20, sigma_w=1.2, sigma_b=0.1, q_star=0.5, n_samples=2,
                                 generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    b = sample_jacobian_spectrum("tanh", 3, 20, sigma_w=1.2, sigma_b=0.1, q_star=0.5, n_samples=2,
                                 generator=torch.Generator().manual_seed(1))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    ({"weights": "uniform"}, "not one of"), ({"depth": 0}, "depth"), ({"n_samples": 1.5}, "n_samples"),
    ({"q_star": 0.001, "sigma_b": 0.5}, "must exceed"),
])
def test_bad_arguments(kwargs, match):
    args = {"weights": "orthogonal", "sigma_w": 1.0, "q_star": 1.0, "depth": 2, "n_samples": 2} | kwargs
    depth = args.pop("depth")
    with pytest.raises(ValueError, match=match):
        sample_jacobian_spectrum("tanh", depth, 8, **args)


def test_callable_activation_needs_operating_point():
    with pytest.raises(ValueError, match="sigma_w"):
        sample_jacobian_spectrum(torch.tanh, 2, 8, n_samples=2)
    ev = sample_jacobian_spectrum(torch.tanh, 2, 8, sigma_w=1.0, q_star=0.3, n_samples=2,
                                  generator=torch.Generator().manual_seed(0))
    assert ev.shape == (2, 8) and np.all(ev > 0)


# ---- delta-orthogonal convolutions (Xiao et al. 2018; THEORY.md §6) ----

def _delta_orthogonal_(weight, gain, generator):
    """Delta-orthogonal kernel: deepstart.init.delta_orthogonal_ when present, else the definition in
    THEORY.md §6 (centre tap = gain × orthogonal c_out × c_in, other taps zero)."""
    try:
        from deepstart.init import delta_orthogonal_
    except ImportError:
        delta_orthogonal_ = None
    if delta_orthogonal_ is not None:
        return delta_orthogonal_(weight, gain=gain, generator=generator)
    with torch.no_grad():
        weight.zero_()
        q, r = torch.linalg.qr(torch.randn(weight.shape[0], weight.shape[1], generator=generator,
                                           dtype=weight.dtype))
        centre = tuple(s // 2 for s in weight.shape[2:])
        weight[(slice(None), slice(None)) + centre] = gain * q * torch.sign(torch.diagonal(r))
    return weight


@pytest.mark.parametrize("conv,spatial", [(nn.Conv1d, (6,)), (nn.Conv2d, (3, 4))])
def test_delta_orthogonal_conv_has_fully_connected_spectrum(generator, conv, spatial):
    """With circular padding and a delta kernel each position only sees itself, so J is block diagonal with one
    fully connected Jacobian per position (same σ_w, σ_b, same weights): the spectra coincide exactly."""
    c, depth, sigma_w, sigma_b = 6, 4, 1.3, 0.2
    convs = [conv(c, c, 3, padding=1, padding_mode="circular").double() for _ in range(depth)]
    layers, fc_layers = [], []
    for layer in convs:
        _delta_orthogonal_(layer.weight, sigma_w, generator)
        with torch.no_grad():
            layer.bias.copy_(sigma_b * torch.randn(c, generator=generator, dtype=torch.float64))
        fc = nn.Linear(c, c).double()
        with torch.no_grad():
            fc.weight.copy_(layer.weight[(slice(None), slice(None)) + (1,) * len(spatial)])
            fc.bias.copy_(layer.bias)
        layers += [layer, nn.Tanh()]
        fc_layers += [fc, nn.Tanh()]
    net, fc_net = nn.Sequential(*layers), nn.Sequential(*fc_layers)
    x = torch.randn(1, c, *spatial, generator=generator, dtype=torch.float64)
    conv_sv = jacobian_singular_values(net, x).values
    per_position = [jacobian_singular_values(fc_net, x[(0, slice(None)) + idx].unsqueeze(0)).values
                    for idx in np.ndindex(*spatial)]
    np.testing.assert_allclose(conv_sv, np.sort(np.concatenate(per_position))[::-1], rtol=1e-10, atol=1e-13)
    # and the centre taps are orthogonal, so the FC net is the orthogonal net of sample_jacobian_spectrum
    w = fc_layers[0].weight.detach()
    np.testing.assert_allclose((w @ w.T).numpy(), sigma_w ** 2 * np.eye(c), atol=1e-12)
