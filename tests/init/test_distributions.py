"""The laws the initializers draw from, against the std recomputed here from the shape (not from deepstart.init.fans).

* variance scaling: KS (fixed seed, p > 1e-4) of w/std against N(0, 1), the [−2, 2]-truncated normal (variance
  corrected), U(−√3, √3); Rademacher entries are exactly ±std with a fair sign; fan_in / fan_out / fan_avg on
  linear, conv, grouped and transposed conv shapes.
* orthogonal: WᵀW = g²I (tall) or WWᵀ = g²I (wide), also for conv kernels flattened to [c_out, c_in·k…]; the law is
  Haar (first-column moments).
* delta-orthogonal: ||conv(x)|| = gain·||x|| for odd kernels with "same" padding, stride 1.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from deepstart.init import (
    delta_orthogonal_, glorot_normal_, glorot_uniform_, he_normal_, he_uniform_, lecun_normal_, lecun_uniform_,
    orthogonal_, variance_scaling_)

P_MIN = 1e-4  # KS p-value threshold (STYLE.md)
# std of N(0, 1) truncated to [−2, 2]: recomputed by scipy, not copied from deepstart.init.tensor
TRUNC_STD = float(stats.truncnorm(-2, 2).std())


def _expected_std(shape, layout, groups, scale, mode):
    """Fans by hand: Linear [out, in]; ConvNd [out, in/g, *k]; ConvTransposeNd [in, out/g, *k] (stride 1)."""
    k = math.prod(shape[2:])
    if layout == "conv_transpose":
        fan_in, fan_out = shape[0] // groups * k, shape[1] * k
    else:
        fan_in, fan_out = shape[1] * k, shape[0] // groups * k
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    return math.sqrt(scale / fan)


# (shape, layout, groups): a linear, a conv, a grouped conv and a transposed-conv weight, 20-40k entries each
SHAPES = [((160, 200), "linear", 1), ((64, 32, 3, 3), "conv", 1), ((96, 16, 5, 5), "conv", 4),
          ((48, 24, 3, 3), "conv_transpose", 2)]
KS_LAWS = {"normal": stats.norm(),
           "truncated_normal": stats.truncnorm(-2, 2),  # the law of w/σ with σ = std/TRUNC_STD
           "uniform": stats.uniform(-math.sqrt(3), 2 * math.sqrt(3))}


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("shape, layout, groups", SHAPES)
@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
def test_variance_scaling_law_ks(distribution, shape, layout, groups, mode):
    scale = 1.7
    w = variance_scaling_(torch.empty(shape, dtype=torch.float64), scale, mode, distribution, layout=layout,
                          groups=groups, generator=torch.Generator().manual_seed(11))
    std = _expected_std(shape, layout, groups, scale, mode)
    z = w.flatten().numpy() / std
    if distribution == "truncated_normal":
        z = z * TRUNC_STD  # back to the unit normal cut at ±2
        assert np.abs(z).max() <= 2 + 1e-12
    p = stats.kstest(z, KS_LAWS[distribution].cdf).pvalue
    assert p > P_MIN, f"{distribution} {shape} {mode}: KS p = {p:.2e}"
    # and the second moment, 5 standard errors (SE of the mean of z² from the sample)
    z2 = (w.flatten().numpy() / std) ** 2
    assert abs(z2.mean() - 1) < 5 * z2.std() / math.sqrt(z2.size)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("shape, layout, groups", SHAPES)
def test_rademacher_is_plus_minus_std_with_fair_signs(shape, layout, groups, mode):
    w = variance_scaling_(torch.empty(shape, dtype=torch.float64), 0.6, mode, "rademacher", layout=layout,
                          groups=groups, generator=torch.Generator().manual_seed(12))
    std = _expected_std(shape, layout, groups, 0.6, mode)
    assert torch.allclose(w.abs(), torch.full_like(w, std), rtol=1e-15, atol=0)
    frac = float((w > 0).double().mean())
    assert abs(frac - 0.5) < 5 * math.sqrt(0.25 / w.numel())  # binomial SE of the fraction of + signs


@pytest.mark.parametrize("fn, scale, mode, law", [
    (he_normal_, 2.0, "fan_in", "normal"), (he_uniform_, 2.0, "fan_in", "uniform"),
    (lecun_normal_, 1.0, "fan_in", "normal"), (lecun_uniform_, 1.0, "fan_in", "uniform"),
    (glorot_normal_, 1.0, "fan_avg", "normal"), (glorot_uniform_, 1.0, "fan_avg", "uniform")])
@pytest.mark.parametrize("shape, layout, groups", SHAPES[:2])
def test_named_schemes_laws(fn, scale, mode, law, shape, layout, groups):
    # He et al. 2015 eq. 10 (2/fan_in); LeCun et al. 1998 (1/fan_in); Glorot & Bengio 2010 eq. 12/16 (2/(in+out))
    w = fn(torch.empty(shape, dtype=torch.float64), layout=layout, groups=groups,
           generator=torch.Generator().manual_seed(13))
    z = w.flatten().numpy() / _expected_std(shape, layout, groups, scale, mode)
    assert stats.kstest(z, KS_LAWS[law].cdf).pvalue > P_MIN


def test_named_schemes_equal_torch_fans_for_plain_convs():
    # torch.nn.init computes the same fans as ours for ungrouped convs: same std (not same draws)
    shape = (64, 32, 3, 3)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert (fan_in, fan_out) == (32 * 9, 64 * 9)
    assert _expected_std(shape, "conv", 1, 2.0, "fan_in") == pytest.approx(math.sqrt(2 / fan_in), rel=1e-15)


# ---------------------------------------------------------------------------------------------- orthogonal
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (64, 64), (16, 4, 3, 3), (64, 4, 3, 3), (8, 3, 2, 2, 2)])
def test_orthogonal_gram_is_gain_squared_identity(shape, dtype, tol):
    gain = 1.7
    w = orthogonal_(torch.empty(shape, dtype=dtype), gain, generator=torch.Generator().manual_seed(5))
    m = w.reshape(shape[0], -1).double()
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T  # tall: orthonormal columns; wide: orthonormal rows
    eye = torch.eye(min(rows, cols), dtype=torch.float64)
    assert float((gram / gain**2 - eye).abs().max()) < tol


def test_orthogonal_is_haar_distributed():
    # Under Haar measure on O(n), Q₁₁ has mean 0 and E Q₁₁² = 1/n, and √n·Q₁₁ → N(0,1). Without Mezzadri's sign
    # correction, LAPACK's QR makes R's diagonal one-signed and Q₁₁ is biased.
    n, draws = 4, 4000
    gen = torch.Generator().manual_seed(6)
    q11 = np.array([float(orthogonal_(torch.empty(n, n, dtype=torch.float64), generator=gen)[0, 0])
                    for _ in range(draws)])
    assert abs(q11.mean()) < 5 * q11.std() / math.sqrt(draws)
    sq = q11 ** 2
    assert abs(sq.mean() - 1 / n) < 5 * sq.std() / math.sqrt(draws)
    # exact law: Q₁₁ of Haar O(n) is the first coordinate of a uniform point on S^{n−1},
    # so (Q₁₁ + 1)/2 ~ Beta((n−1)/2, (n−1)/2)
    a = (n - 1) / 2
    assert stats.kstest((q11 + 1) / 2, stats.beta(a, a).cdf).pvalue > P_MIN


# ---------------------------------------------------------------------------------------------- delta-orthogonal
CONVS = [
    lambda: nn.Conv1d(4, 6, 3, padding=1, bias=False),
    lambda: nn.Conv1d(3, 3, 5, padding=2, bias=False),
    lambda: nn.Conv2d(4, 8, 3, padding=1, bias=False),
    lambda: nn.Conv2d(5, 5, 5, padding=2, bias=False),
    lambda: nn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False),
    lambda: nn.Conv3d(2, 4, 3, padding=1, bias=False),
    lambda: nn.ConvTranspose2d(4, 6, 3, padding=1, bias=False),
    lambda: nn.ConvTranspose2d(4, 8, 5, padding=2, groups=2, bias=False),
]


@pytest.mark.parametrize("make", CONVS, ids=lambda f: repr(f()))
def test_delta_orthogonal_preserves_conv_output_norm(make):
    from deepstart.init import layout_of

    conv = make().double()
    gain = 1.3
    delta_orthogonal_(conv.weight, gain, layout=layout_of(conv), groups=conv.groups,
                      generator=torch.Generator().manual_seed(8))
    spatial = (7,) * (conv.weight.dim() - 2)
    x = torch.randn(3, conv.in_channels, *spatial, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        y = conv(x)
    assert y.shape[2:] == x.shape[2:]  # "same" padding
    # per example and position: y = gain·O x with OᵀO = I, so the norm is kept exactly (to rounding)
    ratio = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.allclose(ratio, torch.full_like(ratio, gain), rtol=1e-12, atol=0)
    # every tap but the centre is zero
    w = conv.weight.detach()
    centre = tuple(k // 2 for k in w.shape[2:])
    off = w.clone()
    off[(slice(None), slice(None)) + centre] = 0
    assert torch.count_nonzero(off) == 0
