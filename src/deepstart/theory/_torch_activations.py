"""The remaining elementwise activations of ``torch.nn``, by torch's names and exact definitions (issue 11).

Definitions follow the ``torch.nn`` documentation; every entry gives φ, φ', φ'' in closed form, the points where
φ or a derivative is not smooth (``kinks``, quadrature splits there), ``bound`` = sup|φ| and
``growth`` = lim_{q→∞} E φ(√q z)²/q, which decides divergence of the q-map (σ_w²·growth > 1 ⇒ q* = ∞):

=====================  ==========================================================  ======  =======
name                   φ(x)                                                        bound   growth
=====================  ==========================================================  ======  =======
gelu_tanh              x/2 (1 + tanh(√(2/π)(x + 0.044715 x³)))  (GPT-2's GELU)        ∞       1/2
mish                   x tanh(softplus(x))                                         ∞       1/2
hardswish              x relu6(x + 3)/6                                            ∞       1/2
hardsigmoid            relu6(x + 3)/6                                              1       0
relu6                  min(max(0, x), 6) = hard_tanh(min_val=0, max_val=6)         6       0
celu(alpha)            max(0, x) + min(0, α(exp(x/α) − 1))                         ∞       1/2
softsign               x/(1 + |x|)                                                 1       0
logsigmoid             −softplus(−x)                                               ∞       1/2
tanhshrink             x − tanh x                                                  ∞       1
softshrink(lambd)      x − λ (x > λ), x + λ (x < −λ), 0 otherwise                  ∞       1
hardshrink(lambd)      x (|x| > λ), 0 otherwise                                    ∞       1
threshold(threshold,   x (x > threshold), value otherwise                          ∞       1/2
  value)
prelu(init)            leaky_relu with slope ``init`` (torch's initial weight)     ∞       (1+a²)/2
rrelu(lower, upper)    eval mode: leaky_relu with slope a = (lower + upper)/2      ∞       (1+a²)/2
rrelu_train(lower,     train mode: slope a ~ U(lower, upper) drawn per unit        ∞       (1+E a²)/2
  upper)
=====================  ==========================================================  ======  =======

``hard_tanh(min_val, max_val)`` (defaults −1, 1) lives in :mod:`.activations` with its closed forms.

* Discontinuous φ (hardshrink, threshold with value ≠ threshold) list their jumps; ``dphi`` is the pointwise
  derivative (what autograd back-propagates), and dV/dq adds the jump term (heat equation, integrated by parts):
  dV/dq = E[φφ'(h)h]/q + Σ_t (φ(t⁺)² − φ(t⁻)²) t p_q(t)/(2q). The c-map of such φ is not differentiable at c = 1
  (a jump separates arbitrarily close inputs); χ₁ and χ_c here are the back-propagated (pointwise φ') ones.
* rrelu in train mode: each unit has a random slope a ~ U(l, u); the q-map is the average of the leaky maps,
  q' = σ_w² q (1 + E a²)/2 + σ_b², E a² = (l² + lu + u²)/3, and so is every one-point quantity (χ₁ = σ_w²(1+E a²)/2).
  φ is represented by the leaky map with the rms slope √(E a²) (exact for all one-point moments); the cross
  moments average the leaky kernels over a shared per-unit slope: E φφ = E[a] q₁₂ + E(1−a)² K_relu. torch draws a
  fresh slope per element and per forward pass, so two *different* inputs see independent slopes; their cross
  moment then has (1 − E a)² in place of E(1−a)² (smaller by Var a · K_relu), which this model does not capture.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.special import expit

from deepstart.theory.activations import Activation, _arccos_kernel, _both_positive, _clip, _piecewise_linear

_K = math.sqrt(2.0 / math.pi)  # GELU tanh approximation (Hendrycks & Gimpel 2016, §2)
_C = 0.044715


def _zeros(x):
    return np.zeros_like(np.asarray(x, dtype=float))


def _gelu_tanh(p) -> Activation:
    def parts(x):
        u = _K * (x + _C * x ** 3)
        du, d2u = _K * (1.0 + 3.0 * _C * x * x), 6.0 * _K * _C * x
        return np.tanh(u), du, d2u

    def d1(x):
        t, du, _ = parts(x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du

    def d2(x):
        t, du, d2u = parts(x)
        s = 1.0 - t * t
        return s * du + 0.5 * x * s * (d2u - 2.0 * t * du * du)
    return Activation("gelu_tanh", lambda x: 0.5 * x * (1.0 + parts(x)[0]), d1, d2, params=p, growth=0.5,
                      split_points=(-2.0, 0.0, 2.0))


def _mish(p) -> Activation:
    def parts(x):
        return np.tanh(np.logaddexp(0.0, x)), expit(x)

    def d1(x):
        t, s = parts(x)
        return t + x * (1.0 - t * t) * s

    def d2(x):
        t, s = parts(x)
        return (1.0 - t * t) * s * (2.0 + x * (1.0 - s) - 2.0 * x * t * s)
    return Activation("mish", lambda x: x * parts(x)[0], d1, d2, params=p, growth=0.5,
                      split_points=(-4.0, 0.0, 4.0))


def _inside(x, lo, hi):
    return (x > lo) & (x < hi)


def _hardswish(p) -> Activation:
    return Activation(
        "hardswish", lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        lambda x: np.where(x >= 3.0, 1.0, np.where(x > -3.0, (2.0 * x + 3.0) / 6.0, 0.0)),
        lambda x: np.where(_inside(x, -3.0, 3.0), 1.0 / 3.0, 0.0), kinks=(-3.0, 3.0), params=p, growth=0.5)


def _hardsigmoid(p) -> Activation:
    return Activation(
        "hardsigmoid", lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        lambda x: np.where(_inside(x, -3.0, 3.0), 1.0 / 6.0, 0.0), _zeros, kinks=(-3.0, 3.0), params=p, bound=1.0)


def _celu(p) -> Activation:
    a = float(p["alpha"])

    def e(x):
        return np.exp(np.minimum(x, 0.0) / a)
    return Activation(
        "celu", lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0) / a)),
        lambda x: np.where(x > 0, 1.0, e(x)), lambda x: np.where(x > 0, 0.0, e(x) / a),
        kinks=(0.0,), split_points=(-3.0 * a,), params=p, growth=0.5)


def _softsign(p) -> Activation:
    return Activation(
        "softsign", lambda x: x / (1.0 + np.abs(x)), lambda x: 1.0 / (1.0 + np.abs(x)) ** 2,
        lambda x: -2.0 * np.sign(x) / (1.0 + np.abs(x)) ** 3, kinks=(0.0,), split_points=(-10.0, -1.0, 1.0, 10.0),
        params=p, bound=1.0)  # slow 1/|x| approach to ±1: splits at ±1, ±10 keep large-q quadrature resolved


def _logsigmoid(p) -> Activation:
    return Activation(
        "logsigmoid", lambda x: -np.logaddexp(0.0, -x), lambda x: expit(-x),
        lambda x: -expit(x) * expit(-x), params=p, growth=0.5, split_points=(-4.0, 0.0, 4.0))


def _tanhshrink(p) -> Activation:
    def d2(x):
        t = np.tanh(x)
        return 2.0 * t * (1.0 - t * t)
    return Activation("tanhshrink", lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2, d2, params=p, growth=1.0,
                      split_points=(-2.0, 0.0, 2.0))


def _softshrink(p) -> Activation:
    lam = float(p["lambd"])
    return Activation(
        "softshrink", lambda x: np.where(x > lam, x - lam, np.where(x < -lam, x + lam, 0.0)),
        lambda x: (np.abs(x) > lam).astype(float), _zeros, kinks=(-lam, lam), params=p, growth=1.0)


def _hardshrink(p) -> Activation:
    lam = float(p["lambd"])
    return Activation(
        "hardshrink", lambda x: np.where(np.abs(x) > lam, x, 0.0), lambda x: (np.abs(x) > lam).astype(float),
        _zeros, kinks=(-lam, lam), jumps=((-lam, -lam, 0.0), (lam, 0.0, lam)), params=p, growth=1.0)


def _threshold(p) -> Activation:
    t, v = float(p["threshold"]), float(p["value"])
    return Activation(
        "threshold", lambda x: np.where(x > t, x, v), lambda x: (np.asarray(x) > t).astype(float), _zeros,
        kinks=(t,), jumps=((t, v, t),), params=p, growth=0.5)


def _rrelu_train(p) -> Activation:
    lo, hi = float(p["lower"]), float(p["upper"])
    m, m2 = (lo + hi) / 2.0, (lo * lo + lo * hi + hi * hi) / 3.0  # E a, E a² for a ~ U(lo, hi)
    base = _piecewise_linear("rrelu_train", math.sqrt(m2), p)

    def cross(q1, q2, q12):  # E_a[a q₁₂ + (1 − a)² K(q₁, q₂, q₁₂)]: the leaky kernel is quadratic in a
        return m * np.asarray(q12, float) + (1.0 - 2.0 * m + m2) * _arccos_kernel(q1, q2, q12)

    def dcross(q1, q2, q12):
        return m + (1.0 - 2.0 * m + m2) * _both_positive(q1, q2, q12)
    return dataclasses.replace(base, cross_moment=cross, dphi_cross_moment=dcross)


def _ordered(name, lo_key, hi_key, strict):
    def check(p):
        lo, hi = p[lo_key], p[hi_key]
        if lo > hi or (strict and lo == hi):
            raise ValueError(f"activation {name!r}: {lo_key}={lo!r} must be {'<' if strict else '<='} "
                             f"{hi_key}={hi!r}")
    return check


# name -> (factory, defaults, validator or None); appended to the registry after the original names
TORCH_REGISTRY = {
    "gelu_tanh": (_gelu_tanh, {}, None),
    "mish": (_mish, {}, None),
    "hardswish": (_hardswish, {}, None),
    "hardsigmoid": (_hardsigmoid, {}, None),
    "relu6": (lambda p: _clip("relu6", 0.0, 6.0, p), {}, None),
    "celu": (_celu, {"alpha": 1.0}, None),
    "softsign": (_softsign, {}, None),
    "logsigmoid": (_logsigmoid, {}, None),
    "tanhshrink": (_tanhshrink, {}, None),
    "softshrink": (_softshrink, {"lambd": 0.5}, None),
    "hardshrink": (_hardshrink, {"lambd": 0.5}, None),
    "threshold": (_threshold, {"threshold": 0.0, "value": 0.0}, None),
    "prelu": (lambda p: _piecewise_linear("prelu", p["init"], p), {"init": 0.25}, None),
    "rrelu": (lambda p: _piecewise_linear("rrelu", (p["lower"] + p["upper"]) / 2.0, p),
              {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0}, _ordered("rrelu", "lower", "upper", False)),
    "rrelu_train": (_rrelu_train, {"lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
                    _ordered("rrelu_train", "lower", "upper", False)),
}
# parameters that may be zero or negative (every other parameter must be > 0; lambd ≥ 0)
SIGNED_PARAMS = frozenset({"negative_slope", "init", "lower", "upper", "min_val", "max_val", "threshold", "value"})
NONNEGATIVE_PARAMS = frozenset({"lambd"})
