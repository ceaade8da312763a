"""Random-walk initialization (Sussillo & Abbott 2014, "Random walk initialization for training very deep
feedforward networks"), NumPy/SciPy only. THEORY.md §3.

Weights have std g/√N. Backpropagation multiplies the squared error norm per layer by g²·z, z = ||D Wᵀ u||² for a
unit vector u and W with N(0, 1/N) entries (paper eq. 5–7), so ln|δ_0|² − ln|δ_D|² = D ln g² + Σ ln z_d is a random
walk; it is unbiased iff g = exp(−⟨ln z⟩/2) (paper eq. 8).

* linear: z = χ²_N/N exactly → g² = N/(2e^{ψ(N/2)}), Var ln z = ψ'(N/2) [derived]; paper: g = exp(1/(2N)).
* ReLU: K ~ Bin(N, ½) active units, z = χ²_K/N → ⟨ln z⟩ = ln(2/N) + E_K ψ(K/2) (conditioned on K ≥ 1, an event of
  probability 1 − 2^{−N}), Var ln z = E_K ψ'(K/2) + Var_K ψ(K/2) [derived]; paper: g = √2·exp(1.2/(max(N,6) − 2.4)).
* tanh: no formula in the paper. We take h_i ~ N(0, q*(g)) i.i.d., q*(g) the mean-field fixed point of
  q = g² E tanh(√q z)² (σ_b = 0), so z = (1/N) Σ_i tanh'(h_i)² ξ_i² with ξ_i ~ N(0,1) independent of h (the backward
  W_{d+1} is independent of the forward h_d). ⟨ln z⟩ and Var ln z come from the Laplace transform
  E e^{−tz} = (E_h (1 + 2t tanh'(h)²/N)^{−1/2})^N (64-node Gauss–Hermite in h) through the Mellin identity of
  :mod:`deepstart.theory._laplace`, and g solves 2 ln g + ⟨ln z⟩(g) = 0 by Brent's method (the smallest root,
  in [1, 2] for N ≥ 10; for N ≤ 8 there is none, saturation shrinks the walk faster than g² grows it, and a
  ValueError says so). Deterministic
  (no sampling) and cached; the finite-N fluctuations of q^l around q* are neglected (second order in 1/N).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from deepstart.theory._laplace import binomial_weights, g_minus_one, laplace_log_moments

__all__ = ["RANDOM_WALK_ACTIVATIONS", "random_walk_gain", "random_walk_gain_at_depth", "random_walk_log_stats"]

RANDOM_WALK_ACTIVATIONS = ("linear", "relu", "tanh")
_TANH_ORDER = 64  # Gauss–Hermite nodes in h; the integrand is entire, order 32 vs 64 agree to 1e-13


def _check(activation, width) -> tuple[str, int]:
    name = str(activation).lower().replace("-", "_")
    name = {"identity": "linear"}.get(name, name)
    if name not in RANDOM_WALK_ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r} for the random-walk gain; valid choices: "
                         f"{', '.join(RANDOM_WALK_ACTIVATIONS)}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width={width!r} must be a positive int (the fan-in N)")
    return name, int(width)


def _relu_log_z(width: int) -> tuple[float, float]:
    k, w = binomial_weights(width)
    psi = special.digamma(k / 2.0)
    mean_psi = float(w @ psi)
    var = float(w @ special.polygamma(1, k / 2.0) + w @ (psi - mean_psi) ** 2)
    return math.log(2.0 / width) + mean_psi, var


@lru_cache(maxsize=256)
def _tanh_log_z(width: int, gain: float) -> tuple[float, float]:
    from deepstart.theory.mean_field import fixed_point

    q = float(fixed_point("tanh", gain, 0.0)) if gain > 1.0 else 0.0
    return _tanh_log_z_q(width, q)


def _tanh_log_z_q(width: int, q: float) -> tuple[float, float]:
    """(⟨ln z⟩, Var ln z) for tanh with pre-activations h_i ~ N(0, q) i.i.d. and weights N(0, 1/N)."""
    z, w = np.polynomial.hermite_e.hermegauss(_TANH_ORDER)
    a = 1.0 / np.cosh(math.sqrt(q) * z) ** 4 / width  # tanh'(h)² / N at the nodes
    weights = w / w.sum()

    def log_f(t):
        return width * math.log1p(float(weights @ g_minus_one(t * a)))

    return laplace_log_moments(log_f)


def _log_z(name: str, width: int, gain: float) -> tuple[float, float]:
    """(⟨ln z⟩, Var ln z) for weights N(0, 1/N) (the gain enters tanh only through q*)."""
    if name == "linear":
        return math.log(2.0 / width) + float(special.digamma(width / 2.0)), float(special.polygamma(1, width / 2.0))
    if name == "relu":
        return _relu_log_z(width)
    return _tanh_log_z(width, float(gain))


_TANH_SCAN = (2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0)  # upper bracket ends tried in turn (small N)
# Below this width the mean log step ln g² + ⟨ln z⟩(g) is negative for every g: its maximum over g is −0.009 at
# N = 8 (g ≈ 2.7) and lower for smaller N (computed on a grid of g in [1, 10]; tests/theory/test_random_walk.py).
_TANH_MIN_WIDTH = 9


@lru_cache(maxsize=256)
def _exact_gain(name: str, width: int) -> float:
    if name != "tanh":
        return math.exp(-_log_z(name, width, 1.0)[0] / 2.0)

    def bias(g):  # mean log step ln g² + ⟨ln z⟩; at g = 1 it is ψ(N/2) + ln(2/N) < 0 (q* = 0, z = χ²_N/N)
        return 2.0 * math.log(g) + _tanh_log_z(width, g)[0]

    lo = 1.0
    for hi in _TANH_SCAN if width >= _TANH_MIN_WIDTH else ():  # the smallest root: for N ≥ 10 it lies in [1, 2]; N = 9 just above 2
        if bias(hi) >= 0:
            return float(optimize.brentq(bias, lo, hi, xtol=1e-13))
        lo = hi
    raise ValueError(f"random-walk gain for tanh at width {width}: no gain makes ln|δ| unbiased (the mean log step "
                     f"stays below 0 for every g; it has a root only for width >= {_TANH_MIN_WIDTH}), so tanh layers with "
                     f"fan_in {width} cannot be random-walk initialized; use fan_in >= {_TANH_MIN_WIDTH}, or relu/linear")


def random_walk_gain(activation: str, width: int, *, exact: bool = True) -> float:
    """Sussillo–Abbott gain g (weights std g/√N) that makes ln|δ| an unbiased random walk.

    ``exact=True``: the digamma forms (linear, ReLU) or the quadrature solve (tanh) described in the module
    docstring; ``exact=False``: the paper's formulas (eq. 9 linear, eq. 11 ReLU). tanh has no paper formula.

    Example:
        >>> round(random_walk_gain("relu", 100), 6), round(random_walk_gain("relu", 100, exact=False), 6)
        (1.432304, 1.431709)
    """
    name, width = _check(activation, width)
    if not isinstance(exact, (bool, np.bool_)):
        raise ValueError(f"exact={exact!r} must be True (digamma/quadrature forms) or False (the paper's formulas)")
    if exact:
        return _exact_gain(name, width)
    if name == "linear":
        return math.exp(1.0 / (2.0 * width))
    if name == "relu":
        return math.sqrt(2.0) * math.exp(1.2 / (max(width, 6) - 2.4))
    raise ValueError("the paper gives no formula for tanh (it is found by simulation there); use exact=True, "
                     "which solves ⟨ln z⟩ = −ln g² by quadrature; exact=False is available for: linear, relu")


def random_walk_log_stats(activation: str, width: int, gain: float) -> tuple[float, float]:
    """(mean, variance) of the per-layer step ln(|δ_d|²/|δ_{d+1}|²) = ln g² + ln z for weights of std g/√N.

    Over D layers ln(|δ_0|²/|δ_D|²) has mean D·mean and variance D·variance; at the exact gain the mean is 0.

    Example:
        >>> mean, var = random_walk_log_stats("linear", 100, random_walk_gain("linear", 100))
        >>> abs(mean) < 1e-12, round(var, 6)
        (True, 0.020201)
    """
    name, width = _check(activation, width)
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not (gain > 0 and math.isfinite(gain)):
        raise ValueError(f"gain={gain!r} must be a positive finite float")
    mean, var = _log_z(name, width, float(gain))
    return 2.0 * math.log(gain) + mean, var


_CHEB_DEG = 40  # Chebyshev degree for ⟨ln z⟩(q) on [0, q_max]: within 2e-8 of direct quadrature (N = 100, q_max = 4)


@lru_cache(maxsize=64)
def _tanh_mean_log_z_interp(width: int, q_max: float):
    """⟨ln z⟩ as a function of the forward variance q (analytic in q), Chebyshev-interpolated on [0, q_max]."""
    return np.polynomial.Chebyshev.interpolate(lambda qs: [_tanh_log_z_q(width, float(q))[0] for q in qs],
                                               _CHEB_DEG, domain=[0.0, q_max])


def _tanh_q_path(gain: float, depth: int, input_var: float) -> np.ndarray:
    """Mean-field pre-activation variances q_1..q_D: q_1 = g²·input_var, q_{l+1} = g² E tanh²(√q_l ζ), ζ ~ N(0,1)."""
    z, w = np.polynomial.hermite_e.hermegauss(_TANH_ORDER)
    w = w / w.sum()
    q = np.empty(depth)
    q[0] = gain**2 * input_var
    for layer in range(1, depth):
        q[layer] = gain**2 * float(w @ np.tanh(math.sqrt(q[layer - 1]) * z) ** 2)
    return q


def random_walk_gain_at_depth(activation: str, width: int, depth: int, *, input_var: float = 1.0) -> float:
    """The gain that makes ln(|δ_0|²/|δ_D|²) unbiased over ``depth`` layers for inputs of per-unit variance
    ``input_var`` (the *finite-depth* gain; Sussillo & Abbott 2014 find the tanh gain this way, by simulating random
    nets fed unit-variance inputs, their Fig. 2).

    linear and ReLU: the walk's steps do not depend on the forward signal's scale, so this is
    :func:`random_walk_gain`. tanh [derived]: layer l's pre-activations have the mean-field variance q_l
    (q_1 = g²·input_var, q_{l+1} = g² E tanh²(√q_l ζ)), and g solves Σ_{l=1}^{D} [ln g² + ⟨ln z⟩(q_l)] = 0 with
    ⟨ln z⟩(q) as in the module docstring (Chebyshev-interpolated in q). As D → ∞ it tends to the stationary gain
    :func:`random_walk_gain` (q_l → q*(g)); at finite D the first layers, where q_l > q* and tanh saturates more,
    need a larger g. Finite-N fluctuations of q_l are neglected, as in the stationary gain.

    Example:
        >>> round(random_walk_gain_at_depth("tanh", 100, 200), 3) > round(random_walk_gain("tanh", 100), 3)
        True
    """
    name, width = _check(activation, width)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth={depth!r} must be a positive int (the number of layers back-propagated through)")
    if isinstance(input_var, bool) or not isinstance(input_var, (int, float)) or not (
            input_var > 0 and math.isfinite(input_var)):
        raise ValueError(f"input_var={input_var!r} must be a positive finite float (per-unit input variance)")
    if name != "tanh":
        return random_walk_gain(name, width)
    random_walk_gain("tanh", width)  # raises the no-root error for width < 9
    return _tanh_gain_at_depth(width, int(depth), float(input_var))


@lru_cache(maxsize=64)
def _tanh_gain_at_depth(width: int, depth: int, input_var: float) -> float:
    lo = 1.0
    for hi in _TANH_SCAN:
        mean_log_z = _tanh_mean_log_z_interp(width, hi**2 * max(input_var, 1.0))

        def bias(g):  # Σ_l [ln g² + ⟨ln z⟩(q_l)] / D
            return 2.0 * math.log(g) + float(np.mean(mean_log_z(_tanh_q_path(g, depth, input_var))))

        if bias(hi) >= 0:
            return float(optimize.brentq(bias, lo, hi, xtol=1e-12))
        lo = hi
    raise ValueError(f"random-walk gain for tanh at width {width}, depth {depth}: no gain up to {_TANH_SCAN[-1]} "
                     "makes the walk unbiased")
