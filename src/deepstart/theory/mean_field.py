"""Mean-field signal propagation at initialization (Poole et al. 2016; Schoenholz et al. 2017).

Conventions (THEORY.md §1): h^l = W^l x^{l−1} + b^l, x^l = φ(h^l), W_ij ~ (0, σ_w²/fan_in), b_i ~ N(0, σ_b²);
σ_w and σ_b are standard deviations. Every function broadcasts over arrays of its numeric arguments.

* q-map (Poole et al. eq. 3): q' = σ_w² V(q) + σ_b², V(q) = ∫Dz φ(√q z)².
* χ₁ (Poole et al. eq. 7; Schoenholz et al. eq. 5): σ_w² ∫Dz φ'(√q* z)².
* c-map (Poole et al. eq. 5): c' = (σ_w² ∫Dz₁Dz₂ φ(u₁)φ(u₂) + σ_b²)/q', u₁ = √q z₁, u₂ = √q(c z₁ + √(1−c²) z₂).
* depth scales (Schoenholz et al. eqs. 8–12): ξ_q = −1/log(dq'/dq at q*), ξ_c = −1/log χ_c,
  χ_c = σ_w² ∫Dz₁Dz₂ φ'(u₁)φ'(u₂) at (q*, c*); c* = 1 and χ_c = χ₁ in the ordered phase.

dq'/dq = σ_w² (χ₁/σ_w² + ∫φ''φ) is computed as σ_w² E[φ(h)φ'(h)h]/q (Stein's lemma), which needs no φ''
and so holds across kinks.
"""
from __future__ import annotations

import numpy as np

from deepstart.theory.activations import Activation, get_activation
from deepstart.theory.gaussian import DEFAULT_ORDER, gaussian_nodes
from deepstart.theory._correlation import two_point
from deepstart.theory._results import scalar_or_array
from deepstart.theory._roots import newton_in_bracket

__all__ = ["q_map", "fixed_point", "chi_1", "q_map_slope", "c_map", "c_star", "depth_scales", "DepthScales",
           "gradient_growth", "critical_point", "CriticalPoint", "phase_diagram", "PhaseDiagram"]

_Q_MAX = 1e15  # fixed points beyond this are reported as inf (the q-map diverges)


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
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    return np.sum(act.dphi(x) ** 2 * w, axis=-1)


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
    at0 = float(act.dphi(np.zeros(1))[0] ** 2 + act.phi(np.zeros(1))[0] * act.d2phi(np.zeros(1))[0])
    return v, np.where(q > 0, slope, at0)


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
    """q*: the stable fixed point of the q-map, the limit of q^l iterated from q⁰ = ``q0``.

    * piecewise-linear φ (relu, leaky_relu, linear): q* = σ_b²/(1 − σ_w²(1+a²)/2), ``inf`` when that is ≤ 0 and
      σ_b > 0; with σ_b = 0, q* = 0 below criticality, ``inf`` above and ``nan`` exactly at it (every q is fixed).
    * bounded φ with φ(0) = 0, σ_b = 0 (tanh, erf, hard-tanh): q* = 0 when the slope at 0, σ_w²φ'(0)², is ≤ 1
      (the iterates reach it only like 1/l at the edge), else the positive root (q = 0 is then unstable).
    * bounded φ: the root of F(q) = σ_w²V(q) + σ_b² − q in [0, σ_w² sup φ² + σ_b²] (unique when V is concave in q,
      as for tanh, erf, hard-tanh); unbounded φ: the root the iterated map approaches from q0 (bracketed by
      iterating the map, so no pair of roots is skipped), ``inf`` when the iterates pass 1e15.
    Roots by safeguarded Newton within a bracket, vectorized; ``inf`` where the map diverges. ``q0`` matters only
    for unbounded φ (bounded φ with concave V have a single stable root).
    """
    act = _act(activation)
    sw, sb = np.broadcast_arrays(_nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b))
    sw2, sb2 = sw.ravel() ** 2, sb.ravel() ** 2
    if act.slopes is not None:
        out = _fixed_point_linear(act.growth, sw2, sb2)
    else:
        out = _fixed_point_general(act, sw2, sb2, order, float(q0), tol, max_iter)
    return scalar_or_array(out.reshape(sw.shape))


def _fixed_point_linear(c: float, sw2, sb2):
    denom = 1.0 - sw2 * c
    denom = np.where(np.abs(denom) <= 1e-12, 0.0, denom)  # σ_w = √2 rounds to σ_w² = 2(1 + 2e-16): critical
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(denom > 0, sb2 / np.where(denom > 0, denom, 1.0), np.inf)
    return np.where((sb2 == 0) & (denom == 0), np.nan, np.where((sb2 == 0) & (denom > 0), 0.0, q))


def _fixed_point_general(act, sw2, sb2, order, q0, tol, max_iter):
    out = np.full(sw2.shape, np.nan)
    trivial = trivial_zero(act, sw2, sb2)
    out[trivial] = 0.0

    def F(q, idx):
        v, dv = _v_and_slope(act, q, order)
        return sw2[idx] * v + sb2[idx] - q, sw2[idx] * dv - 1.0

    idx = np.flatnonzero(~trivial)
    if idx.size == 0:
        return out
    if np.isfinite(act.bound):
        lo, hi = np.zeros(idx.size), sw2[idx] * act.bound ** 2 + sb2[idx]
    else:
        lo, hi, diverged = _bracket_unbounded(F, idx, q0)
        out[idx[diverged]] = np.inf
        keep = ~diverged
        idx, lo, hi = idx[keep], lo[keep], hi[keep]
    out[idx] = newton_in_bracket(lambda q, a: F(q, idx[a]), lo, hi, hi, tol=tol, max_iter=max_iter)
    return out


def trivial_zero(act: Activation, sw2, sb2) -> np.ndarray:
    """Where q* = 0: bounded φ with φ(0) = 0, σ_b = 0 and slope σ_w²(φ'(0)² + φ(0)φ''(0)) ≤ 1 at q = 0."""
    zero = np.zeros(1)
    phi0, slope0 = float(act.phi(zero)[0]), float(act.dphi(zero)[0] ** 2 + act.phi(zero)[0] * act.d2phi(zero)[0])
    return np.isfinite(act.bound) & (np.asarray(sb2) == 0) & (phi0 == 0) & (np.asarray(sw2) * slope0 <= 1)


def _bracket_unbounded(F, idx, q0, max_iter=20000):
    """Bracket the root that the iterated map approaches from q0: F(lo) ≥ 0 ≥ F(hi).

    Steps with the map itself, q ← q' (for increasing V it never passes a fixed point, so no root is skipped),
    and stops as soon as a Newton step from the new point lands across the root (sign change of F).
    Returns (lo, hi, diverged); q beyond 1e15 is divergence, below 1e-30 the bracket is [0, q].
    """
    q = np.full(idx.size, q0)
    lo, hi = q.copy(), q.copy()
    diverged = np.zeros(idx.size, dtype=bool)
    f, fp = F(q, idx)
    up = f > 0
    active = np.flatnonzero(f != 0)
    for _ in range(max_iter):
        if active.size == 0:
            break
        a, u = active, up[active]
        q[a] = q[a] + f[a]  # the map: q' = F(q) + q
        f[a], fp[a] = F(q[a], idx[a])
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = q[a] - f[a] / fp[a]
        ok = np.isfinite(cand) & (cand > 0) & np.where(u, cand > q[a], cand < q[a])
        fc = np.where(ok, F(np.where(ok, cand, q[a]), idx[a])[0], np.nan)
        crossed = ok & np.where(u, fc <= 0, fc >= 0)
        same = f[a] == 0
        lo[a] = np.where(u | same, q[a], np.where(crossed, cand, lo[a]))
        hi[a] = np.where(same | ~u, q[a], np.where(crossed, cand, hi[a]))
        over = u & (q[a] > _Q_MAX)
        under = ~u & (q[a] < 1e-30)
        diverged[a[over]] = True
        lo[a[under]] = 0.0
        active = a[~(crossed | same | over | under)]
    return lo, np.where(diverged, lo, hi), diverged


def _q_star(act, sigma_w, sigma_b, q_star, order):
    if q_star is None:
        return np.asarray(fixed_point(act, sigma_w, sigma_b, order=order), dtype=float)
    return _nonneg("q_star", q_star)


def chi_1(activation, sigma_w, sigma_b, q_star=None, *, order: int = DEFAULT_ORDER):
    """χ₁ = σ_w² ∫Dz φ'(√q* z)² (Poole et al. 2016 eq. 7). < 1 ordered, > 1 chaotic, = 1 critical.

    ``q_star`` defaults to :func:`fixed_point`; for piecewise-linear φ χ₁ = σ_w²(1+a²)/2 for every q.
    """
    act = _act(activation)
    sw, sb = _nonneg("sigma_w", sigma_w), _nonneg("sigma_b", sigma_b)
    q = np.zeros(1) if act.slopes is not None else _q_star(act, sw, sb, q_star, order)
    q, sw = np.broadcast_arrays(q, np.broadcast_to(sw, np.broadcast(sw, sb).shape))
    return scalar_or_array(sw ** 2 * dphi_second_moment(act, q, order))


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
    else the root of c_map(c) = c in [0, 1) found by bisection (c_map(0) ≥ 0 and c_map < c just below 1)."""
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
    out[np.isnan(q)] = np.nan
    return scalar_or_array(out)


from deepstart.theory._depth import DepthScales, depth_scales  # noqa: E402  (uses the functions above)
from deepstart.theory.critical import CriticalPoint, critical_point  # noqa: E402
from deepstart.theory.phase import PhaseDiagram, phase_diagram  # noqa: E402
