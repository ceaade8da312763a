"""Moments of a positive random variable R from its Laplace transform F(t) = E e^{−tR} (NumPy/SciPy only).

Used where R = Σ_i (weight_i · χ²_1) has no closed-form law (leaky ReLU, randomized leaky ReLU, tanh backprop):

* fractional moments, 0 < r < 1:  E R^r = r/Γ(1−r) ∫₀^∞ (1 − F(t)) t^{−r−1} dt (Gurbuzbalaban & Hu 2021, proof of
  Thm. 3; THEORY.md §5), split at t = 1 as ∫₀¹(1−F)t^{−r−1} + 1/r − ∫₁^∞ F t^{−r−1};
* log moments, from the Mellin identity ∫₀^∞ t^{r−1}F(t) dt = Γ(r) E R^{−r} expanded at r = 0 [derived]:
  with A_k = (1/k!)[∫₀¹ ln^k t (F−1)/t dt + ∫₁^∞ ln^k t F/t dt], E ln R = −γ − A₀ and
  E ln² R = 2(A₁ − γ E ln R − γ²/2 − π²/12).

F is passed as ``log_f(t)`` (log F, accurate for small t) and R is rescaled by ``scale`` (≈ E R) so the integrals
live on t = O(1). Quadrature: ``scipy.integrate.quad`` with epsabs = epsrel = 1e-12; checked against the closed
forms for χ²_n (linear) in ``tests/theory/test_fractional.py`` to ~1e-10.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special

__all__ = ["laplace_fractional_moment", "laplace_log_moments", "chi2_mixture_log_f"]

_EULER = float(np.euler_gamma)
_QUAD = dict(epsabs=1e-13, epsrel=1e-12, limit=400)


def chi2_mixture_log_f(n: int, mean_g):
    """``log F`` for R = Σ_{i≤n} c_i ξ_i², ξ_i ~ N(0,1), c_i i.i.d.: n·log1p(E[(1+2tc)^{−1/2} − 1]).

    ``mean_g(t)`` must return E[(1 + 2tc)^{−1/2} − 1] (use :func:`_g` for accuracy at small t).
    """
    return lambda t: n * math.log1p(mean_g(t))


def g_minus_one(x):
    """(1 + 2x)^{−1/2} − 1 without cancellation at small x."""
    root = np.sqrt(1.0 + 2.0 * np.asarray(x, dtype=float))
    return -2.0 * x / (root * (1.0 + root))


def _quad(f, a, b) -> float:
    value, _ = integrate.quad(f, a, b, **_QUAD)
    return value


def laplace_fractional_moment(log_f, r: float, scale: float = 1.0) -> float:
    """E R^r for 0 < r < 1 given ``log_f(t) = log E e^{−tR}``; ``scale`` ≈ E R for conditioning."""
    if not 0.0 < r < 1.0:
        raise ValueError(f"r={r!r} must lie in (0, 1) for the Laplace formula; r = 1 is E R itself")

    def lf(u):  # R' = R / scale
        return log_f(u / scale)

    low = _quad(lambda t: -math.expm1(lf(t)) * t ** (-r - 1.0), 0.0, 1.0)
    high = _quad(lambda t: math.exp(lf(t)) * t ** (-r - 1.0), 1.0, np.inf)
    return scale**r * r / math.gamma(1.0 - r) * (low + 1.0 / r - high)


def laplace_log_moments(log_f, scale: float = 1.0) -> tuple[float, float]:
    """(E ln R, Var ln R) given ``log_f(t) = log E e^{−tR}`` (R > 0 almost surely); ``scale`` ≈ E R."""

    def lf(u):
        return log_f(u / scale)

    a0 = _quad(lambda t: math.expm1(lf(t)) / t, 0.0, 1.0) + _quad(lambda t: math.exp(lf(t)) / t, 1.0, np.inf)
    a1 = (_quad(lambda t: math.log(t) * math.expm1(lf(t)) / t, 0.0, 1.0)
          + _quad(lambda t: math.log(t) * math.exp(lf(t)) / t, 1.0, np.inf))
    m1 = -_EULER - a0
    m2 = 2.0 * (a1 - _EULER * m1 - _EULER**2 / 2.0 - math.pi**2 / 12.0)
    return m1 + math.log(scale), max(m2 - m1 * m1, 0.0)


def binomial_weights(n: int, p: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """k = 1..n and P(K = k | K ≥ 1) for K ~ Bin(n, p) (log-space, stable for large n)."""
    k = np.arange(1, n + 1)
    logp = (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))
    w = np.exp(logp - logp.max())
    return k, w / w.sum()
