"""The papers' claims, checked by simulation with tolerances from the standard error (seeds fixed).

* Sussillo & Abbott 2014: with the exact random-walk gain, log||δ|| over 200 layers of width 100 does not drift
  (linear, ReLU; tanh started at its fixed point), while LeCun (linear) and He (ReLU) drift measurably.
* Gurbuzbalaban & Hu 2021: at the s = 1 fractional-moment scale E||x_L||/||x_0|| = 1 (depth 50, width 64, ReLU) and
  log||x_L||/||x_0|| has the mean and variance of THEORY.md §5 and is close to that Gaussian (KS).

Every test prints its measured numbers (mean ± standard error) on a line starting ``[paper-claims]``; see them with
``pytest tests/init/test_paper_claims.py -s`` (or ``-rP``).
"""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from deepstart.init import fractional_moment_, he_normal_, lecun_normal_, random_walk_
from deepstart.theory import fixed_point, fractional_log_norm_law, random_walk_gain

WIDTH, DEPTH, NETS = 100, 200, 64
_PHI = {"relu": (torch.relu, lambda h: (h > 0).to(h.dtype)),
        "linear": (lambda h: h, torch.ones_like),
        "tanh": (torch.tanh, lambda h: 1 - torch.tanh(h) ** 2)}


def _layer(init, l: int, seed: int) -> torch.Tensor:
    """Weights of layer l for all NETS nets at once: a [NETS·N, N] tensor has fan_in N, so every initializer
    used here draws exactly what it would draw for one [N, N] layer."""
    w = torch.empty(NETS * WIDTH, WIDTH)
    init(w, generator=torch.Generator().manual_seed(seed * 100_003 + l))
    return w.view(NETS, WIDTH, WIDTH)


def backprop_log_drift(init, activation: str, *, seed: int = 0, input_var: float = 1.0) -> torch.Tensor:
    """Per net: log||g_1|| − log||g_L|| for the pre-activation gradients g_l = φ'(h_l) ⊙ W_{l+1}ᵀ g_{l+1},
    DEPTH backward steps (Sussillo & Abbott 2014, eq. 5: each step is g² z with z = ||D Wᵀ u||²)."""
    phi, dphi = _PHI[activation]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(NETS, WIDTH, 1, generator=gen) * math.sqrt(input_var)
    derivs = []
    for l in range(DEPTH + 1):
        if activation == "linear":  # D = I: the forward pass does not matter
            derivs.append(torch.ones(NETS, WIDTH, 1))
            continue
        h = _layer(init, l, seed) @ x
        derivs.append(dphi(h))
        x = phi(h)
    u = derivs[DEPTH] * torch.randn(NETS, WIDTH, 1, generator=gen)
    start = u.norm(dim=(1, 2)).log()
    for l in range(DEPTH, 0, -1):
        u = derivs[l - 1] * (_layer(init, l, seed).transpose(1, 2) @ u)
    return u.norm(dim=(1, 2)).log() - start


def _z(drift: torch.Tensor) -> float:
    """Mean drift in units of its standard error."""
    return float(drift.mean() / (drift.std() / math.sqrt(drift.numel())))


def _report(label: str, values: torch.Tensor, expected: float = 0.0) -> str:
    """``label: mean ± SE (z SE from expected)``, printed so the numbers can be read off a test run."""
    mean, se = float(values.mean()), float(values.std()) / math.sqrt(values.numel())
    line = f"[paper-claims] {label}: {mean:+.4f} ± {se:.4f} (SE; {(mean - expected) / se:+.2f} SE from {expected:+.4f})"
    print(line)
    return line


@pytest.mark.parametrize("activation, baseline", [("linear", lecun_normal_), ("relu", he_normal_)])
def test_random_walk_gain_is_unbiased_and_baselines_drift(activation, baseline):
    exact = backprop_log_drift(lambda w, generator: random_walk_(w, activation, generator=generator), activation)
    line = _report(f"{activation} random-walk gain, log||g_1||/||g_L|| over {DEPTH} layers, width {WIDTH}", exact)
    assert abs(_z(exact)) < 5, line
    base = backprop_log_drift(baseline, activation)
    # Expected baseline drift: ½·DEPTH·ln(g_base²/g_rw²) = −1.00 (LeCun, linear), −2.54 (He, ReLU) at N = 100.
    g_base = 1.0 if activation == "linear" else math.sqrt(2.0)
    expected = DEPTH * math.log(g_base / random_walk_gain(activation, WIDTH))  # E[ln g²]·DEPTH/2
    line = _report(f"{activation} {baseline.__name__}, same drift", base, expected)
    assert _z(base) < -5, f"baseline should vanish measurably: {line}"
    se = float(base.std()) / math.sqrt(NETS)
    assert abs(float(base.mean()) - expected) < 5 * se, line


def test_random_walk_tanh_gain_is_unbiased_at_the_fixed_point():
    # Started at the mean-field fixed point q*(g), the stationary regime the tanh gain is solved for.
    g = random_walk_gain("tanh", WIDTH)
    q = float(fixed_point("tanh", g, 0.0))
    drift = backprop_log_drift(lambda w, generator: random_walk_(w, "tanh", generator=generator), "tanh",
                               input_var=q / g**2)
    line = _report(f"tanh random-walk gain g = {g:.4f}, log||g_1||/||g_L|| over {DEPTH} layers", drift)
    assert abs(_z(drift)) < 5, line


def _fractional_log_ratios(s: float, activation: str, depth: int, width: int, nets: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randn(nets, width, 1, generator=gen, dtype=torch.float64)
    x = x0
    w = torch.empty(width, width, dtype=torch.float64)
    weights = torch.empty(nets, width, width, dtype=torch.float64)
    for _ in range(depth):
        for k in range(nets):  # one real [width, width] layer per net
            weights[k] = fractional_moment_(w, s, activation, generator=gen)
        x = torch.relu(weights @ x)
    return (x.norm(dim=(1, 2)) / x0.norm(dim=(1, 2))).log()


def test_fractional_moment_preserves_first_moment_and_log_norm_law():
    depth, width, nets = 50, 64, 600
    log_r = _fractional_log_ratios(1.0, "relu", depth, width, nets)
    ratio = log_r.exp()
    se = float(ratio.std()) / math.sqrt(nets)
    line = _report(f"relu s=1 fractional moment, ||x_L||/||x_0|| at depth {depth}, width {width}", ratio, 1.0)
    assert abs(float(ratio.mean()) - 1.0) < 5 * se, line
    mean, var = fractional_log_norm_law(1.0, "relu", width, depth)
    se_mean = math.sqrt(var / nets)
    line = _report("relu s=1, log||x_L||/||x_0|| mean", log_r, mean)
    assert abs(float(log_r.mean()) - mean) < 5 * se_mean, line
    centred = log_r - log_r.mean()
    se_var = math.sqrt(float((centred**4).mean() - var**2) / nets)
    line = (f"[paper-claims] relu s=1, log||x_L||/||x_0|| variance: {float(log_r.var()):.4f} ± {se_var:.4f} (SE) "
            f"vs theory {var:.4f} ({(float(log_r.var()) - var) / se_var:+.2f} SE)")
    print(line)
    assert abs(float(log_r.var()) - var) < 5 * se_var, line
    # the Gaussian limit itself: log||x_L||/||x_0|| ~ N(mean, var) (THEORY.md §5), KS with the theory's parameters
    p_value = stats.kstest(log_r.numpy(), "norm", args=(mean, math.sqrt(var))).pvalue
    print(f"[paper-claims] relu s=1, KS against N({mean:.4f}, {var:.4f}): p = {p_value:.3g}")
    assert p_value > 1e-4
    # He (s = 2) keeps E||x||² instead, so E||x_L|| falls below ||x_0||: E log ratio = −1.53 at these sizes.
    he_mean, _ = fractional_log_norm_law(2.0, "relu", width, depth)
    assert he_mean < mean - 10 * se_mean
