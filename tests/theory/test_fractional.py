"""Gurbuzbalaban & Hu 2021 fractional-moment scale (THEORY.md §5): reference values, closed forms, limits, laws."""
import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import digamma, gammaln, polygamma

from deepstart.theory import fractional_log_norm_law, fractional_moment_var, random_walk_gain


def test_reference_values_theory_sheet():
    # THEORY.md §5 reference values, n = 64, s = 1 (paper's code), quoted to 6 significant figures:
    # ReLU exact 0.0318723 (approx 0.0318604), linear exact 0.0157475
    assert fractional_moment_var(1.0, "relu", 64) == pytest.approx(0.0318723, abs=5e-8)
    assert fractional_moment_var(1.0, "relu", 64, exact=False) == pytest.approx(0.0318604, abs=5e-8)
    assert fractional_moment_var(1.0, "linear", 64) == pytest.approx(0.0157475, abs=5e-8)


@pytest.mark.parametrize("s", [0.3, 0.8, 1.0, 1.7])
@pytest.mark.parametrize("n", [1, 5, 64])
def test_exact_closed_forms(s, n):
    # THEORY.md §5 [paper's code]: ReLU [2^{s/2} Σ_m C(n,m) 2^{−n} Γ((m+s)/2)/Γ(m/2)]^{−2/s}; linear without the sum
    m = np.arange(1, n + 1)
    terms = stats.binom.pmf(m, n, 0.5) * np.exp(gammaln((m + s) / 2) - gammaln(m / 2))
    relu = (2 ** (s / 2) * terms.sum()) ** (-2 / s)
    linear = (2 ** (s / 2) * math.exp(gammaln((n + s) / 2) - gammaln(n / 2))) ** (-2 / s)
    assert fractional_moment_var(s, "relu", n) == pytest.approx(relu, rel=1e-12)
    assert fractional_moment_var(s, "linear", n) == pytest.approx(linear, rel=1e-12)


@pytest.mark.parametrize("s", [0.5, 1.0, 1.9])
def test_paper_approximations(s):
    # THEORY.md §5 [paper's code]: ReLU 2/n + 5(2−s)/(2n²); linear 1/n + (2−s)/(2n²)
    n = 40
    assert fractional_moment_var(s, "relu", n, exact=False) == pytest.approx(2 / n + 5 * (2 - s) / (2 * n * n))
    assert fractional_moment_var(s, "linear", n, exact=False) == pytest.approx(1 / n + (2 - s) / (2 * n * n))
    # the approximation is second order: its error is O(1/n³), O(1/n²) relative (2.4e-3 = 3.9/n² at s = 0.5)
    assert fractional_moment_var(s, "relu", n) == pytest.approx(fractional_moment_var(s, "relu", n, exact=False),
                                                                rel=5 / n ** 2)


def test_limits_he_lecun_and_random_walk():
    # THEORY.md §5: s → 2 gives He / LeCun; s → 0 gives the unbiased random walk (§3): σ² = g_rw²/n
    n = 64
    assert fractional_moment_var(2.0, "relu", n) == pytest.approx(2 / n, rel=1e-14)
    assert fractional_moment_var(2.0, "linear", n) == pytest.approx(1 / n, rel=1e-14)
    assert fractional_moment_var(2.0, "leaky_relu", n, negative_slope=0.2) == pytest.approx(2 / n / 1.04, rel=1e-14)
    for act in ("relu", "linear"):
        assert fractional_moment_var(1e-6, act, n) == pytest.approx(random_walk_gain(act, n) ** 2 / n, rel=1e-5)


@pytest.mark.parametrize("s", [0.8, 1.0, 1.5])
def test_leaky_laplace_route_against_closed_forms(s):
    # leaky ReLU goes through the Laplace-transform formula (THEORY.md §5); slope 0 is ReLU, slope 1 is linear,
    # both known in closed form: agreement to 1e-9 checks the quadrature (epsrel 1e-12 in _laplace)
    n = 30
    assert fractional_moment_var(s, "leaky_relu", n, negative_slope=0.0) == pytest.approx(
        fractional_moment_var(s, "relu", n), rel=1e-9)
    assert fractional_moment_var(s, "leaky_relu", n, negative_slope=1.0) == pytest.approx(
        fractional_moment_var(s, "linear", n), rel=1e-9)
    # a degenerate randomized slope law is the fixed slope
    assert fractional_moment_var(s, "rrelu", n, slope_range=(0.2, 0.2)) == pytest.approx(
        fractional_moment_var(s, "leaky_relu", n, negative_slope=0.2), rel=1e-12)


def test_leaky_relu_against_monte_carlo(rng):
    # E R^{s/2} at the exact scale is 1/σ_s^s: R = χ²_K + a²χ²_{n−K} sampled directly, 5 standard errors
    n, a, s, samples = 16, 0.3, 1.0, 400_000
    xi = rng.standard_normal((samples, n))
    r = np.sum(np.where(xi > 0, xi, a * xi) ** 2, axis=1)
    x = (fractional_moment_var(s, "leaky_relu", n, negative_slope=a) * r) ** (s / 2)
    assert abs(x.mean() - 1) < 5 * x.std() / math.sqrt(samples)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_log_norm_law(activation):
    # [derived] log||x^L||/||x^0|| = ½Σ log(σ²R_k): mean L·½(log σ² + E log R), variance L·¼ Var log R
    n, depth, s = 32, 20, 0.8
    mean, var = fractional_log_norm_law(s, activation, n, depth)
    sigma2 = fractional_moment_var(s, activation, n)
    if activation == "linear":  # R = χ²_n: E log R = ψ(n/2) + log 2, Var log R = ψ'(n/2)
        assert mean == pytest.approx(depth * 0.5 * (math.log(sigma2) + digamma(n / 2) + math.log(2)), rel=1e-13)
        assert var == pytest.approx(depth * 0.25 * polygamma(1, n / 2), rel=1e-13)
    assert fractional_log_norm_law(s, activation, n, 2 * depth) == pytest.approx((2 * mean, 2 * var), rel=1e-14)
    # E||x||^s preserved ⇒ by Jensen E log||x|| < 0 at s > 0, and log-normal approx: mean + (s/2)·var ≈ 0
    assert mean < 0 and abs(mean + s / 2 * var) < 0.05 * abs(mean)


@pytest.mark.parametrize("kw, match", [({"s": 0.0}, r"\(0, 2\]"), ({"s": 2.5}, r"\(0, 2\]"),
                                       ({"activation": "tanh"}, "valid choices: relu, leaky_relu, rrelu, linear"),
                                       ({"width": 0}, "positive int"), ({"exact": "yes"}, "exact='yes'")])
def test_bad_input(kw, match):
    args = {"s": 1.0, "activation": "relu", "width": 10, **kw}
    with pytest.raises(ValueError, match=match):
        fractional_moment_var(args.pop("s"), args.pop("activation"), args.pop("width"), **args)
    with pytest.raises(ValueError, match="depth"):
        fractional_log_norm_law(1.0, "relu", 10, 0)
