"""The critical line χ₁ = 1 (Schoenholz et al. 2017 §3; Pennington et al. 2017 §2.3), parameterised by q*.

On it (THEORY.md §1): σ_w² = 1/∫Dz φ'(√q* z)², σ_b² = q* − σ_w² ∫Dz φ(√q* z)².
Piecewise-linear φ (relu: σ_w² = 2; leaky_relu: 2/(1+a²); linear: 1) is critical only with σ_b = 0, and
there every q is a fixed point, so ``q_star`` is free (default 1).

χ₁ = 1 says nothing about whether q* attracts the q-map: there dq'/dq = 1 + E[φφ''(h)]/E[φ'(h)²] (Schoenholz
et al. 2017, eq. 8), > 1 for gelu and silu at small q* (gelu q* ≲ 3.5, silu q* ≲ 13). A network started
at such a point drifts away from q* and from χ₁ = 1; :func:`critical_point` reports ``slope`` and ``stable`` and
warns (:class:`UnstableFixedPointWarning`) naming :func:`stable_critical_point`'s alternative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from deepstart.theory._fixed_point import SLOPE_TOL, UnstableFixedPointWarning, warn_unstable
from deepstart.theory._results import ResultMixin, fmt, scalar_or_array
from deepstart.theory.activations import get_activation
from deepstart.theory.gaussian import DEFAULT_ORDER

__all__ = ["CriticalPoint", "critical_point", "stable_critical_point", "UnstableFixedPointWarning"]


@dataclass(frozen=True)
class CriticalPoint(ResultMixin):
    """(σ_w, σ_b) on χ₁ = 1 with its fixed point q*; fields are floats (or arrays for array ``q_star``).

    ``slope`` is dq'/dq at q*; ``stable`` is ``slope ≤ 1`` (to 1e-9): False means q* repels the q-map, so a
    network started at q* drifts away from it (and from χ₁ = 1) with depth.
    """

    sigma_w: float
    sigma_b: float
    q_star: float
    chi_1: float = 1.0
    activation: str = ""
    slope: float = 1.0
    stable: bool = True

    _ARRAY_FIELDS = ("sigma_w", "sigma_b", "q_star", "chi_1", "slope")
    _OTHER_ARRAY_FIELDS = ("stable",)

    @property
    def sigma_w_var(self):
        """σ_w² (the weight variance is σ_w²/fan_in)."""
        return np.square(self.sigma_w)

    @property
    def sigma_b_var(self):
        return np.square(self.sigma_b)

    def __str__(self) -> str:
        if np.ndim(self.sigma_w):
            return repr(self)
        return (f"critical point for {self.activation or 'φ'}: sigma_w = {fmt(self.sigma_w)} "
                f"(σ_w² = {fmt(self.sigma_w ** 2)}), sigma_b = {fmt(self.sigma_b)} (σ_b² = {fmt(self.sigma_b ** 2)}), "
                f"q* = {fmt(self.q_star)}, χ₁ = {fmt(self.chi_1)}, dq'/dq = {fmt(self.slope)} "
                f"({'stable' if self.stable else 'UNSTABLE'})")


def _on_line(act, q, order):
    """(σ_w², σ_b²) on the critical line at q* = q (vectorized)."""
    from deepstart.theory.mean_field import dphi_second_moment, second_moment

    sw2 = 1.0 / dphi_second_moment(act, q, order)
    return sw2, q - sw2 * second_moment(act, q, order)


def critical_point(activation, *, q_star=None, sigma_b=None, order: int = DEFAULT_ORDER) -> CriticalPoint:
    """(σ_w, σ_b) with χ₁ = 1, fixed either by ``q_star`` (vectorized) or by ``sigma_b`` (then q* is solved for).

    With neither: σ_b = 0 (for tanh this is σ_w = 1, q* = 0, the edge reached only as 1/l).
    The result carries dq'/dq at q* (``slope``) and ``stable``; an unstable q* (gelu, silu at small q*) also
    raises :class:`UnstableFixedPointWarning` naming the stable alternative of :func:`stable_critical_point`.

    Raises:
        ValueError: no critical point for these arguments, e.g. relu with σ_b > 0 (the q-map then diverges at
            χ₁ = 1), or a q* whose σ_b² would be negative (sigmoid at small q*); the message says what to pass.
        TypeError: both ``q_star`` and ``sigma_b`` given.

    Example:
        >>> cp = critical_point("tanh", q_star=1/64)
        >>> round(cp.sigma_w ** 2, 6), round(cp.sigma_b ** 2, 9)
        (1.030558, 4.651e-06)
    """
    act = get_activation(activation)
    if q_star is not None and sigma_b is not None:
        raise TypeError("pass q_star or sigma_b, not both: one of them fixes the point on the critical line")
    if act.slopes is not None:
        return _critical_piecewise_linear(act, q_star, sigma_b)
    if q_star is not None:
        q = np.asarray(q_star, dtype=float)
        if np.any(~(q > 0)) or np.any(~np.isfinite(q)):
            raise ValueError(f"q_star={q_star!r} must be a positive finite variance (e.g. 1/64)")
        sw2, sb2 = _on_line(act, q, order)
        if np.any(sb2 < -1e-12 * q):
            bad = q[sb2 < -1e-12 * q].ravel()[:3] if q.ndim else q
            raise ValueError(f"no critical point for {act.name} at q_star={bad}: it would need σ_b² < 0; "
                             "choose a larger q_star or pass sigma_b instead")
        sb2 = np.maximum(sb2, 0.0)
        return _finish(act, np.sqrt(sw2), np.sqrt(sb2), q, order)
    sb = 0.0 if sigma_b is None else float(sigma_b)
    if not (sb >= 0 and math.isfinite(sb)):
        raise ValueError(f"sigma_b={sigma_b!r} must be a finite standard deviation >= 0")
    q = _solve_q_for_bias(act, sb * sb, order)
    if q == 0.0:
        zero = np.zeros(1)
        sw = 1.0 / abs(float(act.dphi(zero)[0]))
        return _finish(act, np.asarray(sw), np.asarray(0.0), np.asarray(0.0), order)
    sw2, _ = _on_line(act, np.asarray(q), order)
    return _finish(act, np.sqrt(sw2), np.asarray(sb), np.asarray(q), order)


def _slope_on_line(act, q, sw2, order):
    """dq'/dq = σ_w² dV/dq at q (the q → 0 limit at q = 0)."""
    from deepstart.theory.mean_field import _v_and_slope

    return sw2 * _v_and_slope(act, q, order)[1]


def _finish(act, sw, sb, q, order, *, warn: bool = True) -> CriticalPoint:
    from deepstart.theory.mean_field import second_moment

    slope = _slope_on_line(act, q, sw ** 2, order)
    stable = slope <= 1 + SLOPE_TOL
    edge = (np.asarray(q) == 0) & (np.abs(slope - 1) <= SLOPE_TOL)
    if np.any(edge):  # q* = 0 with dq'/dq = 1: repelling when q' > q just above 0 (gelu, silu at σ_w = 2)
        eps = 1e-6
        stable = stable & ~(edge & (sw ** 2 * second_moment(act, eps, order) + sb ** 2 - eps > 0))
    if warn and not np.all(stable):
        try:
            alt = stable_critical_point(act, order=order)
        except ValueError:
            alt = None
        warn_unstable(act.name, q, slope, alt, bad=~np.asarray(stable), stacklevel=4)
    return CriticalPoint(scalar_or_array(sw), scalar_or_array(sb), scalar_or_array(q),
                         scalar_or_array(np.ones(np.shape(q))), act.name, scalar_or_array(slope),
                         bool(stable) if np.ndim(stable) == 0 else np.asarray(stable))


def stable_critical_point(activation, *, q_range=(1e-4, 1e4), order: int = DEFAULT_ORDER) -> CriticalPoint:
    """The most strongly attracting point of the critical line: q* in ``q_range`` minimising dq'/dq (so the
    shortest ξ_q = −1/log(dq'/dq)) among points with σ_b² ≥ 0 and dq'/dq < 1.

    Piecewise-linear φ: the critical point itself (dq'/dq = 1, every q fixed). For gelu this is q* ≈ 13.8
    (dq'/dq ≈ 0.981), for silu q* ≈ 57 (0.986).

    Raises:
        ValueError: no stable point with σ_b² ≥ 0 in ``q_range``.
    """
    from scipy.optimize import minimize_scalar

    act = get_activation(activation)
    if act.slopes is not None:
        return critical_point(act)
    lo, hi = (float(v) for v in q_range)
    if not (0 < lo < hi < math.inf):
        raise ValueError(f"q_range={q_range!r} must be (lo, hi) with 0 < lo < hi < inf")
    q = np.logspace(math.log10(lo), math.log10(hi), 161)
    sw2, sb2 = _on_line(act, q, order)
    slope = np.where(sb2 >= -1e-12 * q, _slope_on_line(act, q, sw2, order), np.inf)
    if not np.any(slope < 1 - SLOPE_TOL):
        raise ValueError(f"{act.name} has no stable critical point (dq'/dq < 1 with σ_b² ≥ 0) for q* in "
                         f"[{lo:g}, {hi:g}]")
    i = int(np.argmin(slope))
    a, b = math.log(q[max(i - 1, 0)]), math.log(q[min(i + 1, q.size - 1)])

    def obj(log_q):
        qq = np.asarray(math.exp(log_q))
        w2, b2 = _on_line(act, qq, order)
        return float(_slope_on_line(act, qq, w2, order)) if b2 >= -1e-12 * qq else math.inf

    best = minimize_scalar(obj, bounds=(a, b), method="bounded", options={"xatol": 1e-6}) if b > a else None
    qs = math.exp(best.x) if best is not None and best.fun <= slope[i] else float(q[i])
    w2, b2 = _on_line(act, np.asarray(qs), order)
    return _finish(act, np.sqrt(w2), np.sqrt(max(float(b2), 0.0)), np.asarray(qs), order, warn=False)


def _critical_piecewise_linear(act, q_star, sigma_b) -> CriticalPoint:
    if sigma_b is not None and float(sigma_b) != 0.0:
        raise ValueError(f"{act.name} has no critical point with sigma_b={sigma_b!r} > 0: at χ₁ = 1 the q-map "
                         "q' = q + σ_b² diverges; use sigma_b=0 (the He/critical point)")
    q = 1.0 if q_star is None else q_star
    if np.any(~(np.asarray(q, dtype=float) > 0)):
        raise ValueError(f"q_star={q_star!r} must be a positive variance")
    sw = math.sqrt(1.0 / act.growth)  # E φ'² = (1 + a²)/2 = growth
    shape = np.shape(q)
    ones = scalar_or_array(np.ones(shape))
    return CriticalPoint(scalar_or_array(np.full(shape, sw)), scalar_or_array(np.zeros(shape)),
                         scalar_or_array(q), ones, act.name, ones, True if not shape else np.ones(shape, bool))


def _solve_q_for_bias(act, sb2: float, order: int) -> float:
    """q* on the critical line with σ_b²(q*) = sb2: root of q − V(q)/E φ'² − sb2, bracketed by factors of 4."""
    zero = np.zeros(1)
    phi0, dphi0 = float(act.phi(zero)[0]), float(act.dphi(zero)[0])
    if sb2 == 0.0 and phi0 == 0.0 and dphi0 != 0.0:
        return 0.0  # φ(0) = 0: σ_b² → 0 as q* → 0 with σ_w → 1/|φ'(0)| (tanh: σ_w = 1)

    def g(q):
        return float(_on_line(act, np.asarray(q), order)[1]) - sb2

    lo, hi = 1e-8, 1.0
    while g(hi) < 0 and hi < 1e8:
        lo, hi = hi, hi * 4
    if g(hi) < 0 or g(lo) > 0:
        raise ValueError(f"no critical point for {act.name} with sigma_b={math.sqrt(sb2)!r} for q* in "
                         f"[1e-8, 1e8]; pass q_star instead (σ_b² along the critical line ranges over "
                         f"[{g(1e-8) + sb2:.3g}, {g(hi) + sb2:.3g}] there)")
    return float(brentq(g, lo, hi, xtol=1e-15, rtol=1e-13))
