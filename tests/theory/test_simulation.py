"""Theory against real random networks at finite width (torch, batched over many nets).

Tolerances are 5 standard errors computed from the samples (one estimate per network). Mean-field predictions
also carry an O(1/N) finite-width bias; at N = 1000 it is below a fifth of the standard error used here.
"""
import math

import numpy as np
import pytest

from deepstart.theory import c_map, length_moments, q_map

torch = pytest.importorskip("torch")

N, NETS, DEPTH = 1000, 16, 4


def _tanh_net_preacts(x, sw, sb, depth, generator):
    """Pre-activations h^l [nets, inputs, N] of `nets` independent tanh nets for inputs x [inputs, N]."""
    nets = NETS
    h_all, inp = [], x.expand(nets, *x.shape)
    for _ in range(depth):
        w = torch.randn(nets, N, N, generator=generator) * (sw / math.sqrt(N))  # float32: rounding ≪ the SE
        b = torch.randn(nets, 1, N, generator=generator) * sb
        h = torch.baddbmm(b, inp, w.transpose(1, 2))
        h_all.append(h.double())
        inp = torch.tanh(h)
    return h_all


@pytest.mark.parametrize("sw, sb", [(1.0, math.sqrt(0.05)), (0.8, 0.5), (1.5, 0.1), (2.5, 0.3)])
def test_tanh_q_and_c_trajectories_layer_by_layer(sw, sb, generator):
    """Ordered (χ₁ < 1: first two) and chaotic (last two) tanh nets, THEORY.md §1.

    Two inputs of squared length N (‖x‖²/N = 1, so q¹ = σ_w² + σ_b²) with correlation c⁰ = 0.6. Per layer and
    per net: q^l = mean_i (h_i^l)² of the first input, c^l = q₁₂/√(q₁₁q₂₂); compared with the iterates
    q^{l+1} = q_map(q^l), c^{l+1} = c_map(c^l, q^l).
    """
    g = torch.randn(2, N, generator=generator, dtype=torch.float64)
    a = g[0] / g[0].norm()
    b = g[1] - (g[1] @ a) * a
    b = b / b.norm()
    c0 = 0.6
    x = torch.stack([a, c0 * a + math.sqrt(1 - c0 ** 2) * b]) * math.sqrt(N)
    hs = _tanh_net_preacts(x.float(), sw, sb, DEPTH, generator)
    q, c = sw ** 2 + sb ** 2, (sw ** 2 * c0 + sb ** 2) / (sw ** 2 + sb ** 2)
    for h in hs:
        q11, q22, q12 = (h[:, 0] ** 2).mean(1), (h[:, 1] ** 2).mean(1), (h[:, 0] * h[:, 1]).mean(1)
        q_net, c_net = q11.numpy(), (q12 / torch.sqrt(q11 * q22)).numpy()
        se_q, se_c = q_net.std(ddof=1) / math.sqrt(NETS), c_net.std(ddof=1) / math.sqrt(NETS)
        assert abs(q_net.mean() - q) < 5 * se_q + 1e-12, (q_net.mean(), q, se_q)
        assert abs(c_net.mean() - c) < 5 * se_c + 1e-9, (c_net.mean(), c, se_c)
        c, q = c_map("tanh", c, q, sw, sb), q_map("tanh", q, sw, sb)


def _relu_log_lengths(widths, nets, generator):
    """log(M_d/M_0) of `nets` Gaussian He-initialized ReLU nets (zero biases), input width widths[0]."""
    n0 = widths[0]
    x = torch.randn(nets, n0, 1, generator=generator, dtype=torch.float64)
    m0 = (x ** 2).mean(dim=(1, 2))
    for n_in, n in zip([n0] + widths[:-1], widths):
        w = torch.randn(nets, n, n_in, generator=generator, dtype=torch.float64) * math.sqrt(2.0 / n_in)
        x = torch.relu(torch.bmm(w, x))
    md = (x ** 2).mean(dim=(1, 2))
    alive = md > 0  # theory conditions on no dead layer (probability ~d·2^{-n})
    return torch.log(md[alive] / m0[alive]).numpy()


@pytest.mark.parametrize("widths", [[20] * 10, [10, 40, 10, 40, 10]])
def test_relu_log_length_moments(widths, generator):
    # THEORY.md §4: E log M_d and Var log M_d (exact digamma forms) vs simulation; log-moments, not E[M²]
    logs = _relu_log_lengths(widths, 10000, generator)
    lm = length_moments(widths)
    n = logs.size
    mean, var = logs.mean(), logs.var(ddof=1)
    se_mean = math.sqrt(var / n)
    se_var = math.sqrt((np.mean((logs - mean) ** 4) - var ** 2) / n)
    assert abs(mean - lm.log_mean[-1]) < 5 * se_mean, (mean, lm.log_mean[-1], se_mean)
    assert abs(var - lm.log_var[-1]) < 5 * se_var, (var, lm.log_var[-1], se_var)
    # and the naive lognormal match to E M, E M² (≈ log ∏(1+5/n)) is resolvably wrong at these widths
    assert abs(var - math.log(lm.second_ratio[-1])) > 5 * se_var
