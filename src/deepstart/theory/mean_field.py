"""Mean-field signal propagation at initialization (Poole et al. 2016; Schoenholz et al. 2017).

Conventions (THEORY.md §1): h^l = W^l x^{l−1} + b^l, x^l = φ(h^l), W_ij ~ (0, σ_w²/fan_in), b_i ~ N(0, σ_b²);
σ_w and σ_b are standard deviations. Every function broadcasts over arrays of its numeric arguments.

* q-map (Poole et al. eq. 3): q' = σ_w² V(q) + σ_b², V(q) = ∫Dz φ(√q z)².
* χ₁ (Poole et al. eq. 7; Schoenholz et al. eq. 5): σ_w² ∫Dz φ'(√q* z)².
* c-map (Poole et al. eq. 5): c' = (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q', u₁ = √q z₁, u₂ = √q(c z₁ + √(1−c²) z₂).
* depth scales (Schoenholz et al. eqs. 8–12): ξ_q = −1/log(dq'/dq at q*), ξ_c = −1/log χ_c,
  χ_c = σ_w² ∫Dz₁Dz₂ φ'(u₁)φ'(u₂) at (q*, c*); c* = 1 and χ_c = χ₁ in the ordered phase.

dq'/dq = σ_w² (χ₁/σ_w² + ∫φ''φ) is computed as σ_w² E[φ(h)φ'(h)h]/q (Stein's lemma), which needs no φ''
and so holds across kinks; where φ itself jumps (hardshrink, threshold) the term
σ_w² Σ_t (φ(t⁺)² − φ(t⁻)²) t p_q(t)/(2q) is added (p_q the N(0, q) density).
"""
from __future__ import annotations

import numpy as np

from deepstart.theory.activations import Activation, get_activation
from deepstart.theory.gaussian import DEFAULT_ORDER, gaussian_nodes
from deepstart.theory._correlation import two_point
from deepstart.theory._results import scalar_or_array
from deepstart.theory._fixed_point import FixedPoint, classify, slope_at_zero, solve_fixed_point, to_result

__all__ = ["q_map", "fixed_point", "fixed_point_status", "FixedPoint", "chi_1", "q_map_slope", "c_map", "c_star",
           "depth_scales", "DepthScales", "gradient_growth", "critical_point", "CriticalPoint",
           "stable_critical_point", "UnstableFixedPointWarning", "phase_diagram", "PhaseDiagram"]

def _act(activation) -> Activation:
    return get_activation(activation)


def _nonneg(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}={value!r} must be >= 0 (σ's are standard deviations, q is a variance)")
    return arr


def second_moment(act: Activation, q, order: int = DEFAULT_ORDER) -> np.ndarray:
    """V(q) = E φ(√q z)², closed form when the activation has one."""
    if act.second_moment is not None:
        return np.asarray(act.second_moment(q), dtype=float)
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    return np.sum(act.phi(x) ** 2 * w, axis=-1)


def dphi_second_moment(act: Activation, q, order: int = DEFAULT_ORDER) -> np.ndarray:
    """E φ'(√q z)²."""
    if act.dphi_second_moment is not None:
        return np.asarray(act.dphi_second_moment(q), dtype=float)
    q = np.asarray(q, dtype=float)
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    out = np.sum(act.dphi(x) ** 2 * w, axis=-1)
    if np.any(q == 0):  # the q → 0 limit: both sides of a kink at 0 (relu6, hardswish, ...)
        out = np.where(q == 0, float(np.mean(act.dphi(np.array([1e-150, -1e-150])) ** 2)), out)
    return out


def _v_and_slope(act: Activation, q, order: int):
    """(V(q), dV/dq) with dV/dq = E[φφ'(h) h]/q; at q = 0 the limit φ'(0)² + φ(0)φ''(0)."""
    q = np.asarray(q, dtype=float)
    if act.slopes is not None:
        return act.growth * q, np.full(q.shape, act.growth)
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    f, df = act.phi(x), act.dphi(x)
    v = np.sum(f * f * w, axis=-1)
    safe = np.where(q > 0, q, 1.0)
    slope = np.sum(f * df * x * w, axis=-1) / safe
    for t, left, right in act.jumps:  # φ jumps at t: + (φ(t⁺)² − φ(t⁻)²) t p_q(t)/(2q) (heat equation by parts)
        slope = slope + (right * right - left * left) * t * np.exp(-0.5 * t * t / safe) / np.sqrt(2 * np.pi * safe) \
            / (2.0 * safe) * (q > 0)
    return v, np.where(q > 0, slope, slope_at_zero(act))


def q_map(activation, q, sigma_w, sigma_b, *, order: int = DEFAULT_ORDER):
    """Next-layer pre-activation variance q' = σ_w² ∫Dz φ(√q z)² + σ_b² (Poole et al. 2016, eq. 3)."""
    act = _act(activation)
    q, sw, sb = np.broadcast_arrays(_nonneg("q", q), _nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    return scalar_or_array(sw ** 2 * second_moment(act, q, order) + sb ** 2)


def q_map_slope(activation, q, sigma_w, *, order: int = DEFAULT_ORDER):
    """dq'/dq = σ_w² ∫Dz [φ'(√q z)² + φ(√q z)φ''(√q z)] (Schoenholz et al. 2017, eq. 8)."""
    act = _act(activation)
    q, sw = np.broadcast_arrays(_nonneg("q", q), _nonneg("sigma_w", sigma_w))
    return scalar_or_array(sw ** 2 * _v_and_slope(act, q, order)[1])


def fixed_point(activation, sigma_w, sigma_b, *, order: int = DEFAULT_ORDER, q0: float = 1.0,
                tol: float = 1e-13, max_iter: int = 200):
    """q*: the limit of the q-map iterated from q⁰ = ``q0`` (a float, or an array broadcast over σ_w, σ_b).

    The number carries its meaning: ``0.0`` the map collapses to q = 0, ``inf`` it diverges, ``nan`` every q is
    fixed (piecewise-linear φ at χ₁ = 1 with σ_b = 0). :func:`fixed_point_status` returns the same q* with its
    status and dq'/dq; see it for the method.
    """
    return fixed_point_status(activation, sigma_w, sigma_b, order=order, q0=q0, tol=tol, max_iter=max_iter).q_star


def fixed_point_status(activation, sigma_w, sigma_b, *, order: int = DEFAULT_ORDER, q0: float = 1.0,
                       tol: float = 1e-13, max_iter: int = 200) -> FixedPoint:
    """q* with its status: where the q-map q' = σ_w² V(q) + σ_b² goes from q⁰ (Poole et al. 2016, eq. 3).

    Status (:data:`STATUSES`): ``stable`` (dq'/dq < 1), ``marginal`` (= 1), ``unstable`` (> 1, only when q⁰ is
    itself a repelling fixed point), ``collapse`` (q* = 0), ``diverge`` (q* = ∞; ``slope`` is then the limit
    σ_w²·growth of dq'/dq).

    * piecewise-linear φ (relu, leaky_relu, linear): q* = σ_b²/(1 − σ_w²(1+a²)/2) when that is positive;
      σ_b = 0: collapse below criticality, diverge above, marginal (q* = nan, every q fixed) at it.
    * every other φ: F(q) = q' − q bracketed on a log grid over [0, ∞) and refined by safeguarded Newton, from
      q⁰ towards the first sign change in the direction of F(q⁰) (:mod:`._fixed_point`); it never iterates the
      map and never returns q⁰ unless q⁰ is a root.

    Example:
        >>> fp = fixed_point_status("elu", 1.0, 0.0)   # LeCun ELU: V(q) < q for every q > 0
        >>> fp.q_star, fp.status, round(fp.slope, 12)
        (0.0, 'collapse', 1.0)
    """
    act = _act(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    sw2, sb2 = sw.ravel() ** 2, sb.ravel() ** 2
    if act.slopes is not None:
        q, slope = _fixed_point_linear(act.growth, sw2, sb2)
        status = classify(q, slope)
    else:
        q, slope, status = solve_fixed_point(act, sw2, sb2, lambda x: _v_and_slope(act, x, order), q0=float(q0),
                                             tol=tol, max_iter=max_iter)
    return to_result(act.name, q, slope, status, sw.shape)


def _fixed_point_linear(c: float, sw2, sb2):
    denom = 1.0 - sw2 * c
    denom = np.where(np.abs(denom) <= 1e-12, 0.0, denom)  # σ_w = √2 rounds to σ_w² = 2(1 + 2e-16): critical
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(denom > 0, sb2 / np.where(denom > 0, denom, 1.0), np.inf)
    q = np.where((sb2 == 0) & (denom == 0), np.nan, np.where((sb2 == 0) & (denom > 0), 0.0, q))
    return q, np.where(denom == 0, 1.0, sw2 * c)


def trivial_zero(act: Activation, sw2, sb2) -> np.ndarray:
    """Where q* = 0 for bounded φ: φ(0) = 0, σ_b = 0 and slope σ_w²·lim_{q→0} dV/dq ≤ 1 at q = 0."""
    phi0 = float(act.phi(np.zeros(1))[0])
    return (np.isfinite(act.bound) & (np.asarray(sb2) == 0) & (phi0 == 0)
            & (np.asarray(sw2) * slope_at_zero(act) <= 1))


def _q_star(act, sigma_w, sigma_b, q_star, order):
    if q_star is None:
        return np.asarray(fixed_point(act, sigma_w, sigma_b, order=order), dtype=float)
    q = np.asarray(q_star, dtype=float)
    if np.any(np.isnan(q)) or np.any(q < 0):
        raise ValueError(f"q_star={q_star!r} must be >= 0 (a variance; inf for a diverging q-map)")
    return q


def chi_1(activation, sigma_w, sigma_b, q_star=None, *, order: int = DEFAULT_ORDER):
    """χ₁ = σ_w² ∫Dz φ'(√q* z)² (Poole et al. 2016 eq. 7). < 1 ordered, > 1 chaotic, = 1 critical.

    ``q_star`` defaults to :func:`fixed_point`; for piecewise-linear φ χ₁ = σ_w²(1+a²)/2 for every q. At the
    limits: q* = 0 (collapse) gives σ_w² φ'(0)² (averaged over the sides of a kink at 0), q* = ∞ (diverge) gives
    σ_w²·growth = lim_{q→∞} σ_w² E φ'(√q z)² for φ linear at ±∞ (slopes a₊, a₋: growth = (a₊² + a₋²)/2).
    """
    act = _act(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    if act.slopes is not None:
        return scalar_or_array(sw ** 2 * act.growth)
    q = _q_star(act, sw, sb, q_star, order)
    q, sw = np.broadcast_arrays(q, sw)
    inf = np.isinf(q)
    d = dphi_second_moment(act, np.where(inf, 0.0, q), order)
    return scalar_or_array(sw ** 2 * np.where(inf, act.growth, d))


def gradient_growth(activation, sigma_w, sigma_b, depth, *, order: int = DEFAULT_ORDER):
    """χ₁^L: the mean-field factor by which E‖∂ℓ/∂x‖² grows from layer L back to layer 0 (Schoenholz et al. §3).

    Values ≪ 1 mean vanishing, ≫ 1 exploding gradients over ``depth`` layers.
    """
    depth = np.asarray(depth)
    if not np.issubdtype(depth.dtype, np.integer) or np.any(depth < 0):
        raise ValueError(f"depth={depth!r} must be a non-negative integer (number of layers)")
    with np.errstate(over="ignore"):
        return scalar_or_array(np.asarray(chi_1(activation, sigma_w, sigma_b, order=order)) ** depth)


def c_map(activation, c, q, sigma_w, sigma_b, *, order: int = 24):
    """Next-layer correlation c' = (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q' (Poole et al. 2016, eq. 5).

    Both inputs have pre-activation variance ``q`` (use q = q* for the map at the fixed point); q' = q_map(q),
    evaluated with the same quadrature rule as the numerator so that c_map(1) = 1 to rounding.
    Two-dimensional integrals use closed forms (piecewise linear, erf) or nested kink-aware quadrature
    with ``order`` nodes per dimension.
    """
    act = _act(activation)
    c = np.asarray(c, dtype=float)
    if np.any(np.abs(c) > 1) or np.any(np.isnan(c)):
        raise ValueError(f"c={c!r} must lie in [-1, 1] (a correlation)")
    c, q, sw, sb = np.broadcast_arrays(c, _nonneg("q", q), _nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    num = sw ** 2 * two_point(act, q, q, c * q, order=order) + sb ** 2
    # q' with the same rule (two_point at c = 1), so that c = 1 stays fixed to rounding
    den = sw ** 2 * two_point(act, q, q, q, order=order) + sb ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return scalar_or_array(np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0))


def c_star(activation, sigma_w, sigma_b, *, order: int = 24, n_bisect: int = 60):
    """Stable fixed point c* of the c-map at q* (Schoenholz et al. 2017 §3): 1 in the ordered phase (χ₁ ≤ 1),
    else the root of c_map(c) = c in [0, 1) found by bisection (c_map(0) ≥ 0 and c_map < c just below 1).

    nan where the q-map has no fixed point to sit at: q* = ∞ (``diverge``) or every q fixed (``marginal``
    piecewise-linear φ); see :func:`fixed_point_status`. q* = 0 (``collapse``) counts as ordered: c* = 1."""
    act = _act(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    q = np.asarray(fixed_point(act, sw, sb), dtype=float)
    chi = np.asarray(chi_1(act, sw, sb, q_star=q if act.slopes is None else None), dtype=float)
    out = np.ones(sw.shape)
    chaotic = (chi > 1) & np.isfinite(q) & (q > 0)
    if np.any(chaotic):
        swc, sbc, qc = sw[chaotic], sb[chaotic], q[chaotic]
        lo, hi = np.zeros(qc.shape), np.ones(qc.shape)
        for _ in range(n_bisect):  # if quadrature cannot resolve g < 0 just below 1, this ends at c* ≈ 1
            mid = 0.5 * (lo + hi)
            g = c_map(act, mid, qc, swc, sbc, order=order) - mid
            lo, hi = np.where(g >= 0, mid, lo), np.where(g >= 0, hi, mid)
        out[chaotic] = 0.5 * (lo + hi)
    out[~np.isfinite(q)] = np.nan
    return scalar_or_array(out)


from deepstart.theory._depth import DepthScales, depth_scales  # noqa: E402  (uses the functions above)
from deepstart.theory.critical import (  # noqa: E402
    CriticalPoint, UnstableFixedPointWarning, critical_point, stable_critical_point)
from deepstart.theory.phase import PhaseDiagram, phase_diagram  # noqa: E402
