"""Fractional-moment-preserving initialization (Gurbuzbalaban & Hu 2021, "Fractional moment-preserving
initialization schemes for training deep neural networks"), NumPy/SciPy only. THEORY.md §5.

Weights N(0, σ_s²) with σ_s chosen so that E||x^k||^s = E||x^{k−1}||^s, s ∈ (0, 2]. For Gaussian weights and no bias
||x^k||² = σ² ||x^{k−1}||² R with R = Σ_{i≤n} φ(ξ_i)², ξ_i ~ N(0,1) (φ positively homogeneous), so
σ_s² = (E R^{s/2})^{−2/s}:

* ReLU: R = χ²_K, K ~ Bin(n, ½) → σ_s² = [2^{s/2} Σ_m C(n,m) 2^{−n} Γ((m+s)/2)/Γ(m/2)]^{−2/s} (paper's code);
* linear: R = χ²_n → σ_s² = [2^{s/2} Γ((n+s)/2)/Γ(n/2)]^{−2/s};
* leaky ReLU (slope a): R = χ²_K + a²χ²_{n−K}; E R^{s/2} from the Laplace transform
  E e^{−tR} = (((1+2t)^{−½} + (1+2a²t)^{−½})/2)^n (paper, proof of Thm. 3), see :mod:`._laplace`;
* randomized leaky ReLU (PyTorch's ``nn.RReLU`` in training mode: an independent slope a ~ U(lower, upper) per unit):
  the same with (1+2a²t)^{−½} averaged over a (20-node Gauss–Legendre in a) [derived: "average over the slope law"].

Approximations (``exact=False``): the second-order delta method E R^r ≈ μ^r(1 + r(r−1)V/(2μ²)), μ = E R, V = Var R,
gives σ_s² ≈ (1/μ)(1 + (2−s)V/(4μ²)), which is exactly the paper's ReLU 2/n + 5(2−s)/(2n²) and linear
1/n + (2−s)/(2n²); for (randomized) leaky ReLU we use the same expression [derived].
Limits: s = 2 gives He (ReLU) / LeCun (linear); s → 0 gives the unbiased random walk (Sussillo & Abbott).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from deepstart.theory._laplace import binomial_weights, g_minus_one, laplace_fractional_moment, laplace_log_moments

__all__ = ["FRACTIONAL_ACTIVATIONS", "fractional_moment_var", "fractional_log_norm_law"]

FRACTIONAL_ACTIVATIONS = ("relu", "leaky_relu", "rrelu", "linear")
RRELU_RANGE = (1.0 / 8.0, 1.0 / 3.0)  # torch.nn.RReLU's default (lower, upper)
_SLOPE_NODES = 20  # Gauss–Legendre nodes over the slope; 20 vs 40 agree to 1e-14 for the default range


def _check(s, activation, width, negative_slope, slope_range):
    name = str(activation).lower().replace("-", "_")
    name = {"identity": "linear", "leakyrelu": "leaky_relu", "randomized_leaky_relu": "rrelu"}.get(name, name)
    if name not in FRACTIONAL_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r} for the fractional-moment scale; valid choices: "
                         f"{', '.join(FRACTIONAL_ACTIVATIONS)}")
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 < s <= 2.0:
        raise ValueError(f"s={s!r} must lie in (0, 2] (s = 2 is He/LeCun, s → 0 the random walk); "
                         "the paper's experiments use s = 0.8 (ReLU) and s = 1 (leaky, linear)")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width={width!r} must be a positive int (the fan-in n)")
    if not (isinstance(negative_slope, (int, float)) and math.isfinite(negative_slope)):
        raise ValueError(f"negative_slope={negative_slope!r} must be a finite float")
    lo, hi = (float(v) for v in slope_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"slope_range={slope_range!r} must be (lower, upper) with lower <= upper")
    return name, int(width), float(s)


def _slope_law(name: str, negative_slope: float, slope_range) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the negative-side slope a (a point mass except for rrelu)."""
    if name == "relu":
        return np.zeros(1), np.ones(1)
    if name == "linear":
        return np.ones(1), np.ones(1)
    if name == "leaky_relu" or slope_range[0] == slope_range[1]:
        slope = negative_slope if name == "leaky_relu" else slope_range[0]
        return np.array([float(slope)]), np.ones(1)
    x, w = np.polynomial.legendre.leggauss(_SLOPE_NODES)
    lo, hi = slope_range
    return (lo + hi) / 2 + (hi - lo) / 2 * x, w / 2


def _unit_moments(a, wa) -> tuple[float, float]:
    """E φ(ξ)², E φ(ξ)⁴ for one unit: ½(1 + E a²), (3/2)(1 + E a⁴)."""
    return 0.5 * (1.0 + float(wa @ a**2)), 1.5 * (1.0 + float(wa @ a**4))


def _log_f(width, a, wa):
    a2 = a**2

    def log_f(t):
        return width * math.log1p(0.5 * (float(g_minus_one(t)) + float(wa @ g_minus_one(t * a2))))

    return log_f


@lru_cache(maxsize=512)
def _moment(name, width, r, a_key, wa_key) -> float:
    """E R^r, 0 < r ≤ 1."""
    a, wa = np.array(a_key), np.array(wa_key)
    m2, _ = _unit_moments(a, wa)
    if r == 1.0:
        return width * m2
    if name == "relu":
        k, w = binomial_weights(width)
        log_terms = special.gammaln(k / 2.0 + r) - special.gammaln(k / 2.0)
        return 2.0**r * (1.0 - 0.5**width) * float(w @ np.exp(log_terms))
    if name == "linear":
        return 2.0**r * math.exp(special.gammaln(width / 2.0 + r) - special.gammaln(width / 2.0))
    return laplace_fractional_moment(_log_f(width, a, wa), r, scale=width * m2)


def fractional_moment_var(s: float, activation: str, width: int, *, negative_slope: float = 0.01,
                          exact: bool = True, slope_range=RRELU_RANGE) -> float:
    """Weight variance σ_s² (std σ_s, not divided by anything) that preserves E||x||^s layer to layer.

    Args:
        s: the moment, in (0, 2].
        activation: one of :data:`FRACTIONAL_ACTIVATIONS`.
        width: the fan-in n.
        negative_slope: leaky ReLU's slope a.
        exact: the exact law (module docstring) or the paper's second-order approximation.
        slope_range: (lower, upper) of the uniform slope law of ``rrelu``.

    Example:
        >>> round(fractional_moment_var(1.0, "relu", 64), 7), round(fractional_moment_var(1.0, "linear", 64), 7)
        (0.0318723, 0.0157475)
    """
    name, width, s = _check(s, activation, width, negative_slope, slope_range)
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact={exact!r} must be True (the exact law) or False (the paper's approximation)")
    a, wa = _slope_law(name, negative_slope, slope_range)
    if not exact:
        m2, m4 = _unit_moments(a, wa)
        mu, var = width * m2, width * (m4 - m2 * m2)
        return (1.0 + (2.0 - s) * var / (4.0 * mu * mu)) / mu
    moment = _moment(name, width, s / 2.0, tuple(a.tolist()), tuple(wa.tolist()))
    return moment ** (-2.0 / s)


def _log_r_moments(name, width, a, wa) -> tuple[float, float]:
    """(E ln R, Var ln R); ReLU conditioned on K ≥ 1 (probability 1 − 2^{−n})."""
    if name == "linear":
        return math.log(2.0) + float(special.digamma(width / 2.0)), float(special.polygamma(1, width / 2.0))
    if name == "relu":
        k, w = binomial_weights(width)
        psi = special.digamma(k / 2.0)
        mean = float(w @ psi)
        return math.log(2.0) + mean, float(w @ special.polygamma(1, k / 2.0) + w @ (psi - mean) ** 2)
    return laplace_log_moments(_log_f(width, a, wa), scale=width * _unit_moments(a, wa)[0])


def fractional_log_norm_law(s: float, activation: str, width: int, depth: int, *, negative_slope: float = 0.01,
                            exact: bool = True, slope_range=RRELU_RANGE) -> tuple[float, float]:
    """(mean, variance) of log(||x^L||/||x^0||) at the fractional-moment scale, constant width, no bias.

    log||x^L||/||x^0|| = ½ Σ_k log(σ_s² R_k) with R_k i.i.d., so mean = L·½E log(σ_s²R) and variance
    = L·¼ Var log R exactly; the law tends to the Gaussian N(mean, variance) as L grows (THEORY.md §5).
    """
    name, width, s = _check(s, activation, width, negative_slope, slope_range)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth={depth!r} must be a positive int")
    a, wa = _slope_law(name, negative_slope, slope_range)
    sigma2 = fractional_moment_var(s, name, width, negative_slope=negative_slope, exact=exact,
                                   slope_range=slope_range)
    mean_log_r, var_log_r = _log_r_moments(name, width, a, wa)
    return depth * 0.5 * (math.log(sigma2) + mean_log_r), depth * 0.25 * var_log_r
