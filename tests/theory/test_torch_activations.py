"""torch.nn's elementwise activations in the theory registry (issue 11, item 3): φ against torch's own function,
φ' against autograd, the q-map and dq'/dq against a scipy.integrate.quad oracle split at the kinks, growth against
E φ(√q z)²/q at q = 1e6, and fixed-point statuses.

Tolerances: φ, φ' are closed forms vs torch in float64 (1e-12); the quad oracle runs at epsrel 1e-12 on smooth
pieces, so 1e-9 measures the library's quadrature (~1e-12).
"""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate

from deepstart.theory import fixed_point_status, get_activation, q_map, q_map_slope

# theory spec -> torch function (float64 tensors), torch's exact definitions and parameter names
TORCH = {
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "mish": F.mish,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "relu6": F.relu6,
    "celu(alpha=0.7)": lambda x: F.celu(x, alpha=0.7),
    "softsign": F.softsign,
    "logsigmoid": F.logsigmoid,
    "tanhshrink": F.tanhshrink,
    "softshrink(lambd=0.7)": lambda x: F.softshrink(x, lambd=0.7),
    "hardshrink(lambd=0.7)": lambda x: F.hardshrink(x, lambd=0.7),
    "threshold(threshold=-0.4, value=0.9)": lambda x: F.threshold(x, -0.4, 0.9),
    "hard_tanh(min_val=-0.5, max_val=2.0)": lambda x: F.hardtanh(x, -0.5, 2.0),
    "prelu(init=0.3)": lambda x: F.prelu(x, torch.tensor([0.3], dtype=x.dtype)),
    "rrelu(lower=0.1, upper=0.4)": lambda x: F.rrelu(x, 0.1, 0.4, training=False),
}
# torch's backward of hardsigmoid and celu uses float32 constants (1/6; the input scale 1/α), so autograd's φ'
# is exact only to ~3e-8 relative (hardsigmoid: 0.1666666716 = float32(1/6)); φ itself matches to 1e-12
DPHI_RTOL = {"hardsigmoid": 1e-7, "celu(alpha=0.7)": 1e-6}
X = np.linspace(-8.0, 8.0, 1601) + 1e-3  # steps of 0.01 shifted off every kink (0, ±0.7, ±3, 6, −0.4, ...)
_PDF = 1.0 / math.sqrt(2.0 * math.pi)


@pytest.mark.parametrize("spec", TORCH)
def test_phi_and_dphi_match_torch(spec):
    act = get_activation(spec)
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    y = TORCH[spec](x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    np.testing.assert_allclose(act.phi(X), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(act.dphi(X), dy.numpy(), rtol=DPHI_RTOL.get(spec, 1e-12), atol=1e-12)
    h = 1e-5  # φ'' against a central difference of the exact φ' (error ~h²φ'''' + ε/h ≈ 1e-10)
    np.testing.assert_allclose(act.d2phi(X), (act.dphi(X + h) - act.dphi(X - h)) / (2 * h), atol=1e-7)


def _gauss(f, q, act):
    """E f(√q z) by quad on the pieces between kinks (z units)."""
    s = math.sqrt(q)
    edges = [-np.inf, *sorted({k / s for k in act.kinks if abs(k / s) < 40}), np.inf]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a, b in zip(edges[:-1], edges[1:]):
            total += integrate.quad(lambda z: float(f(np.array(s * z))) * _PDF * math.exp(-0.5 * z * z), a, b,
                                    epsabs=0.0, epsrel=1e-12, limit=200)[0]
    return total


@pytest.mark.parametrize("spec", [*TORCH, "rrelu_train(lower=0.1, upper=0.4)"])
def test_q_map_and_slope_against_quad(spec):
    act = get_activation(spec)
    sw2, sb2 = 1.7, 0.2
    for q in (0.05, 1.0, 7.0):
        V = lambda r: _gauss(lambda x: act.phi(x) ** 2, r, act)  # noqa: E731
        assert q_map(act, q, math.sqrt(sw2), math.sqrt(sb2)) == pytest.approx(sw2 * V(q) + sb2, rel=1e-9)
        fd = sw2 * (V(q * (1 + 1e-5)) - V(q * (1 - 1e-5))) / (2e-5 * q)  # jumps included (hardshrink, threshold)
        assert q_map_slope(act, q, math.sqrt(sw2)) == pytest.approx(fd, rel=1e-6)


@pytest.mark.parametrize("spec", [*TORCH, "rrelu_train(lower=0.1, upper=0.4)"])
def test_growth_is_the_large_q_limit(spec):
    act = get_activation(spec)
    q = 1e6
    ratio = _gauss(lambda x: act.phi(x) ** 2, q, act) / q
    assert ratio == pytest.approx(act.growth, abs=0.03 * max(act.growth, 0.01))  # corrections O(1/√q)
    if math.isfinite(act.bound):
        assert np.max(np.abs(act.phi(np.linspace(-1e3, 1e3, 20001)))) <= act.bound


def test_rrelu_train_is_the_average_of_leaky_maps():
    lo, hi = 0.1, 0.4
    act = get_activation("rrelu_train", lower=lo, upper=hi)
    avg = integrate.quad(lambda a: (1 + a * a) / 2, lo, hi)[0] / (hi - lo)  # E_a of the leaky growth
    assert act.growth == pytest.approx(avg, rel=1e-14)
    q, c = 2.0, 0.3  # cross moment: E_a of the leaky kernel (same slope for both inputs of a unit)
    mean = integrate.quad(lambda a: get_activation("leaky_relu", negative_slope=a).cross_moment(q, q, c * q),
                          lo, hi)[0] / (hi - lo)
    assert act.cross_moment(q, q, c * q) == pytest.approx(mean, rel=1e-12)
    assert act.cross_moment(q, q, q) == pytest.approx(act.second_moment(q), rel=1e-14)  # c = 1 stays fixed
    # Monte Carlo of torch's train mode: E rrelu(h)² = q·growth within 5 standard errors
    g = torch.Generator().manual_seed(0)
    h = math.sqrt(q) * torch.randn(400_000, generator=g, dtype=torch.float64)
    torch.manual_seed(0)  # rrelu's noise has no generator argument
    y2 = F.rrelu(h, lo, hi, training=True) ** 2
    se = float(y2.std()) / math.sqrt(y2.numel())
    assert abs(float(y2.mean()) - q * act.growth) < 5 * se


def test_rrelu_eval_and_prelu_are_leaky_relu():
    for spec, a in (("rrelu(lower=0.1, upper=0.4)", 0.25), ("prelu(init=0.3)", 0.3), ("rrelu", (1 / 8 + 1 / 3) / 2)):
        act, leaky = get_activation(spec), get_activation("leaky_relu", negative_slope=a)
        assert act.slopes == leaky.slopes and act.growth == pytest.approx(leaky.growth, rel=1e-15)


def test_hard_tanh_defaults_unchanged_and_relu6_is_hard_tanh_0_6():
    q = np.array([0.0, 1e-3, 0.5, 1.0, 4.0, 100.0])
    t = 1 / np.sqrt(q[1:])
    p = np.array([math.erf(v / math.sqrt(2)) for v in t])
    old = q[1:] * (p - 2 * t * np.exp(-0.5 * t * t) * _PDF) + np.array([math.erfc(v / math.sqrt(2)) for v in t])
    ht = get_activation("hard_tanh")
    np.testing.assert_allclose(ht.second_moment(q[1:]), old, rtol=1e-13)  # the pre-parameter closed form
    assert ht.second_moment(0.0) == 0.0 and ht.dphi_second_moment(0.0) == 1.0
    r6, h06 = get_activation("relu6"), get_activation("hard_tanh(min_val=0, max_val=6)")
    np.testing.assert_allclose(r6.second_moment(q), h06.second_moment(q), rtol=1e-15)
    assert r6.dphi_second_moment(0.0) == 0.5  # both sides of the kink at 0 averaged


@pytest.mark.parametrize("spec, params", [
    ("hard_tanh", {"min_val": 1.0, "max_val": 1.0}), ("rrelu", {"lower": 0.4, "upper": 0.1}),
    ("softshrink", {"lambd": -0.1}), ("celu", {"alpha": 0.0}), ("threshold", {"value": math.inf}),
    ("relu6", {"alpha": 1.0})])
def test_bad_parameters_name_the_value(spec, params):
    with pytest.raises((ValueError, TypeError), match="|".join(params)):
        get_activation(spec, **params)


def test_fixed_point_statuses():
    # bounded φ never diverge, even far past criticality
    for spec in ("relu6", "hard_tanh(min_val=-0.5, max_val=2.0)", "hardsigmoid", "softsign"):
        fp = fixed_point_status(spec, [1.0, 3.0, 30.0], 0.1)
        assert np.all(np.isfinite(fp.q_star)) and set(fp.status) <= {"stable"}, spec
    # growth 1 (tanhshrink, softshrink, hardshrink): with σ_w > 1 large q diverges, while V(q) ≪ q at small q
    # keeps a stable small q* for starts below the unstable one; σ_w < 1 stays finite from anywhere
    for spec in ("tanhshrink", "softshrink", "hardshrink"):
        assert fixed_point_status(spec, 1.1, 0.1, q0=1e3).status == "diverge"
        small = fixed_point_status(spec, 1.1, 0.1, q0=1e-2)
        assert small.status == "stable" and small.q_star < 1
        for q0 in (1e-2, 1e3):
            assert fixed_point_status(spec, 0.9, 0.1, q0=q0).status == "stable"
    # growth ½: σ_w = 1.5 diverges from a large start (σ_w² growth = 1.125 > 1); σ_w = 1 with bias converges
    for spec in ("gelu_tanh", "mish", "hardswish", "celu", "logsigmoid", "threshold(threshold=-0.4, value=0.9)"):
        assert fixed_point_status(spec, 1.5, 0.1, q0=1e3).status == "diverge", spec
        assert fixed_point_status(spec, 1.0, 0.5).status in ("stable", "unstable"), spec
    # relu6 at He init without bias: q = 0 repels (slope 2·½ = 1 at q → 0 is marginal) — never a wrong number
    fp = fixed_point_status("relu6", math.sqrt(2), 0.0)
    assert fp.status in ("collapse", "stable", "marginal") and math.isfinite(fp.q_star)
