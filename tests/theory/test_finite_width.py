"""Hanin–Rolnick finite-width laws: reference values, closed recursions, failure-mode thresholds."""
import math

import numpy as np
import pytest
from scipy.special import polygamma, psi

from deepstart.theory import FailureModes, LengthMoments, failure_modes, length_moments
from deepstart.theory.finite_width import parse_widths, relu_log_xi_moments


def test_reference_values_theory_sheet():
    # THEORY.md §4: widths 20 × 10 layers: E[M²]/M_0² = 9.3132; per layer at n = 20:
    # E log ξ = −0.137187, Var log ξ = 0.311758
    lm = length_moments("20x10")
    assert lm.second_ratio[-1] == pytest.approx(9.3132, abs=5e-5)
    assert lm.second_ratio[-1] == pytest.approx(1.25 ** 10, rel=1e-13)  # ∏(1 + 5/n_j)
    assert np.allclose(lm.mean_ratio, 1.0, atol=1e-14)  # FM1-free at He init
    assert lm.log_mean[0] == pytest.approx(-0.137187, abs=5e-7)
    assert lm.log_var[0] == pytest.approx(0.311758, abs=5e-7)
    assert lm.log_var[-1] == pytest.approx(10 * 0.311758, abs=5e-6) and lm.beta == 0.5 and lm.log_exact


def test_fm1_with_biases_and_any_variances():
    # Hanin–Rolnick Thm 5 / THEORY.md §4: E[M_j] = ½(n_{j−1}σ_j² E[M_{j−1}] + v_j)
    widths, n0 = [10, 40, 10], 7
    s2, v = [0.3, 0.02, 0.25], [0.1, 0.0, 0.5]
    lm = length_moments(widths, weight_var=s2, bias_var=v, in_features=n0)
    m, fans = 1.0, [n0, 10, 40]
    for j in range(3):
        m = 0.5 * (fans[j] * s2[j] * m + v[j])
        assert lm.mean_ratio[j] == pytest.approx(m, rel=1e-14)
    assert not lm.log_exact  # biases: log moments are the lognormal match


def test_mean_ratio_c_over_2_to_the_d():
    lm = length_moments([16] * 12, weight_var=2.2 / 16)
    assert lm.mean_ratio[-1] == pytest.approx(1.1 ** 12, rel=1e-13)


def test_gaussian_second_moment_product_and_linear():
    w = [10, 40, 10, 40, 10]
    assert length_moments(w).second_ratio[-1] == pytest.approx(np.prod([1 + 5 / n for n in w]), rel=1e-13)
    # linear net, Gaussian weights 1/fan_in: ξ = χ²_n/n, E ξ² = 1 + 2/n; log moments ψ(n/2) + log(2/n), ψ'(n/2)
    lin = length_moments(w, activation="linear")
    assert lin.second_ratio[-1] == pytest.approx(np.prod([1 + 2 / n for n in w]), rel=1e-13)
    assert lin.log_mean[-1] == pytest.approx(sum(psi(n / 2) + math.log(2 / n) for n in w), rel=1e-13)
    assert lin.log_var[-1] == pytest.approx(sum(polygamma(1, n / 2) for n in w), rel=1e-13)


def test_fourth_moment_correction_single_layer_closed_form():
    # one relu layer, no bias, flat input (Σx⁴ = S²/n0): E[M₁²]/M_0² = (c/n0)²·n0²·[n c₄(3 + (μ₄−3)/n0) + n(n−1)/4]/n²
    n0, n, mu4 = 5, 3, 1.8  # μ₄ = 9/5 for uniform weights
    s2 = 2.0 / n0
    lm = length_moments([n], weight_var=s2, in_features=n0, fourth_moment=mu4)
    S = n0  # S₂ with M_0 = 1
    B = s2 ** 2 * (3 * S * S + (mu4 - 3) * S * S / n0)
    expected = (n * 0.5 * B + n * (n - 1) * 0.25 * (s2 * S) ** 2) / n ** 2
    assert lm.second_ratio[0] == pytest.approx(expected, rel=1e-14)
    assert lm.second_ratio[0] < length_moments([n], weight_var=s2, in_features=n0).second_ratio[0]


def test_fourth_moment_against_monte_carlo(rng):
    # uniform weights (μ₄ = 1.8), widths 6,6,6, flat input: E[M_3²] by simulation, tolerance 5 standard errors
    widths, n0, nets = [6, 6, 6], 6, 200_000
    x = np.ones((nets, n0))
    for n_in, n in zip([n0] + widths[:-1], widths):
        a = math.sqrt(3 * 2.0 / n_in)  # U(−a, a) has variance a²/3 = 2/n_in
        w = rng.uniform(-a, a, size=(nets, n, n_in))
        x = np.maximum(np.einsum("bij,bj->bi", w, x), 0.0)
    m2 = (np.sum(x * x, axis=1) / widths[-1]) ** 2
    theory = length_moments(widths, fourth_moment=1.8, in_features=n0).second_ratio[-1]
    assert abs(m2.mean() - theory) < 5 * m2.std() / math.sqrt(nets)
    gaussian = length_moments(widths, in_features=n0).second_ratio[-1]
    assert abs(m2.mean() - gaussian) > 5 * m2.std() / math.sqrt(nets)  # the correction is resolved


def test_residual_law():
    # THEORY.md §4: E[M_L] = M_0 ∏(1 + η_l²); η_l = 1 gives 2^L
    assert length_moments([32] * 6, residual_eta=1.0).mean_ratio[-1] == pytest.approx(64.0)
    eta = [1 / (l + 1) for l in range(50)]
    lm = length_moments([32] * 50, residual_eta=eta)
    assert lm.mean_ratio[-1] == pytest.approx(np.prod([1 + e * e for e in eta]), rel=1e-13)
    assert lm.mean_ratio[-1] < math.sinh(math.pi) / math.pi  # ∏(1 + 1/l²) = sinh(π)/π: bounded (Σ η² < ∞)


def test_relu_log_xi_digamma_against_direct_sum():
    mean, var = relu_log_xi_moments(7)
    from scipy.stats import binom
    k = np.arange(1, 8)
    p = binom.pmf(k, 7, 0.5) / (1 - 0.5 ** 7)
    assert mean == pytest.approx(np.sum(p * (psi(k / 2) + math.log(2))), rel=1e-14)
    assert var == pytest.approx(np.sum(p * polygamma(1, k / 2)) + np.sum(p * psi(k / 2) ** 2)
                                - np.sum(p * psi(k / 2)) ** 2, rel=1e-12)


def test_failure_modes_thresholds():
    he = failure_modes("20x10")
    assert isinstance(he, FailureModes) and not he.fm1 and he.fm2
    assert he.fm2_log_sd == pytest.approx(math.sqrt(10 * 0.311758), rel=1e-5)
    # suggested width: smallest constant n with depth·Var log ξ(n) ≤ 1
    n = he.suggested_width
    assert 10 * relu_log_xi_moments(n)[1] <= 1 < 10 * relu_log_xi_moments(n - 1)[1]
    assert not failure_modes([n] * 10).fm2
    # FM1: c = 2.2 at depth 12 gives log E[M] = 12 log 1.1 = 1.14 > 1; depth 10 gives 0.95 < 1
    assert failure_modes([500] * 12, weight_var=2.2 / 500).fm1
    assert not failure_modes([500] * 10, weight_var=2.2 / 500).fm1
    fm = failure_modes([500] * 12, weight_var=2.2 / 500)
    assert fm.fm1_efold_depth == pytest.approx(1 / math.log(1.1)) and "FM1 YES" in fm.summary()
    assert FailureModes(**fm.to_dict()) == fm


def test_parse_widths_and_errors():
    assert parse_widths("64x3") == [64, 64, 64]
    assert parse_widths("10,40,10") == [10, 40, 10]
    assert parse_widths("64x2,128x1") == [64, 64, 128]
    for bad in ("64y3", "", "0x3", [3.5]):
        with pytest.raises(ValueError, match="widths"):
            parse_widths(bad)
    with pytest.raises(ValueError, match="piecewise-linear"):
        length_moments("8x2", activation="tanh")
    with pytest.raises(ValueError, match="one entry per layer"):
        length_moments("8x3", weight_var=[0.1, 0.2])
    with pytest.raises(ValueError, match="fourth_moment"):
        length_moments("8x3", fourth_moment=0.5)


def test_roundtrip_and_plot():
    import matplotlib
    matplotlib.use("Agg")
    lm = length_moments("10,40,10")
    again = LengthMoments.from_dict(lm.to_dict())
    assert np.array_equal(again.log_var, lm.log_var)
    fig, ax = lm.plot()
    assert len(ax.lines) == 2
    matplotlib.pyplot.close(fig)
