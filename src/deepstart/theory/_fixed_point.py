"""Fixed points of the q-map with a status (Poole et al. 2016, eq. 3; Schoenholz et al. 2017, §2).

q' = σ_w² V(q) + σ_b², V(q) = ∫Dz φ(√q z)². With F(q) = q' − q on [0, ∞), the limit of q^l iterated from q⁰
is found by brackets, never by iterating the map (which crawls where dq'/dq → 1, e.g. ELU at σ_w = 1):

1. F is tabulated once on a log grid of q (16 points per decade, 1e-10 … 1e8, plus q⁰; V does not depend on
   σ_w, σ_b, so one quadrature per grid point serves every (σ_w, σ_b)).
2. From q⁰, the iterates of a monotone map move towards the first sign change of F in the direction of F(q⁰):
   upwards to the first q with F ≤ 0, downwards to the last q with F ≥ 0. That cell is refined by safeguarded
   Newton (:func:`._roots.newton_in_bracket`).
3. No sign change below q⁰: q* = 0 when q = 0 is a fixed point whose slope σ_w²·lim_{q→0} dV/dq is ≤ 1
   (status ``collapse``); no sign change above: the tail decides, F(q)/q → σ_w²·growth − 1 as q → ∞
   (``diverge`` when ≥ 0 and F stays positive; else the bracket is extended by factors of 10).

Statuses: ``stable`` (dq'/dq < 1), ``unstable`` (> 1; only when q⁰ is itself a repelling fixed point),
``marginal`` (dq'/dq = 1 to 1e-9: a touching root, or every q fixed as for ReLU at χ₁ = 1 with σ_b = 0, where
q* = nan), ``collapse`` (q* = 0) and ``diverge`` (q* = ∞, ``slope`` is the limit σ_w²·growth of dq'/dq).
Resolution: two roots closer than a factor 1.155 in q (just at a fold where they merge) may be missed.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from deepstart.theory._results import ResultMixin, fmt, scalar_or_array
from deepstart.theory._roots import newton_in_bracket

__all__ = ["FixedPoint", "UnstableFixedPointWarning", "STATUSES", "solve_fixed_point", "classify",
           "slope_at_zero", "warn_unstable"]

STABLE, UNSTABLE, MARGINAL, COLLAPSE, DIVERGE = "stable", "unstable", "marginal", "collapse", "diverge"
STATUSES = (STABLE, UNSTABLE, MARGINAL, COLLAPSE, DIVERGE)
SLOPE_TOL = 1e-9  # |dq'/dq − 1| below this is marginal
_PER_DECADE = 16
_Q_LO, _Q_HI = 1e-10, 1e8
_REASONS = {
    STABLE: "converged: q* attracts the iterated q-map (dq'/dq < 1)",
    UNSTABLE: "q* is a fixed point that repels the q-map (dq'/dq > 1): a network started there drifts away",
    MARGINAL: "dq'/dq = 1 at q*: neutral (q* = nan when every q is a fixed point, e.g. ReLU at χ₁ = 1, σ_b = 0)",
    COLLAPSE: "the q-map collapses to q* = 0: pre-activations shrink to zero with depth",
    DIVERGE: "the q-map diverges, q* = ∞: pre-activation variance grows without bound with depth",
}


class UnstableFixedPointWarning(UserWarning):
    """A requested or computed q* is a repelling fixed point of the q-map (dq'/dq > 1)."""


@dataclass(frozen=True)
class FixedPoint(ResultMixin):
    """q* with its status (one of :data:`STATUSES`) and dq'/dq there; floats and str, or arrays of them.

    ``float(fp)`` is q* (scalars), so a FixedPoint drops into code that expects :func:`fixed_point`'s float.
    """

    q_star: float
    status: str
    slope: float
    activation: str = ""

    _ARRAY_FIELDS = ("q_star", "slope")
    _OTHER_ARRAY_FIELDS = ("status",)

    @property
    def stable(self):
        """True where q* is finite (or 0) and attracts or is neutral: status stable, marginal or collapse."""
        s = np.asarray(self.status)
        out = (s == STABLE) | (s == MARGINAL) | (s == COLLAPSE)
        return bool(out) if out.ndim == 0 else out

    @property
    def reason(self):
        """One sentence per status explaining q* (a str, or an array of str)."""
        s = np.asarray(self.status)
        out = np.vectorize(_REASONS.get, otypes=[object])(s)
        return str(out) if s.ndim == 0 else out.astype(str)

    def __float__(self) -> float:
        return float(self.q_star)

    def __str__(self) -> str:
        if np.ndim(self.q_star):
            return repr(self)
        return (f"fixed point of the q-map for {self.activation or 'φ'}: q* = {fmt(self.q_star)} "
                f"({self.status}, dq'/dq = {fmt(self.slope)}): {self.reason}")


def slope_at_zero(act) -> float:
    """lim_{q→0} dV/dq = E[φ'² + φφ''] at h → 0, averaged over both sides of a kink at 0 (relu6, celu, ...)."""
    x = np.array([1e-150, -1e-150])
    return float(np.mean(act.dphi(x) ** 2 + act.phi(x) * act.d2phi(x)))


def classify(q, slope) -> np.ndarray:
    """Status array from q* and dq'/dq at it (q* = 0 collapse, ∞ diverge, nan marginal)."""
    q, slope = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(slope, dtype=float))
    status = np.where(slope < 1 - SLOPE_TOL, STABLE, np.where(slope > 1 + SLOPE_TOL, UNSTABLE, MARGINAL))
    status = np.where(q == 0, COLLAPSE, status)
    status = np.where(np.isinf(q), DIVERGE, status)
    return np.where(np.isnan(q), MARGINAL, status).astype("<U8")


def _grid(q0: float) -> tuple[np.ndarray, int]:
    lo, hi = min(_Q_LO, q0), max(_Q_HI, q0)
    n = int(np.ceil(np.log10(hi / lo) * _PER_DECADE)) + 1
    g = np.unique(np.concatenate([np.logspace(np.log10(lo), np.log10(hi), n), [q0]]))
    return g, int(np.searchsorted(g, q0))


def solve_fixed_point(act, sw2, sb2, v_and_slope, *, q0: float = 1.0, tol: float = 1e-13, max_iter: int = 200):
    """(q*, dq'/dq, status) for flat arrays σ_w², σ_b² and a smooth or kinked φ (not piecewise linear).

    ``v_and_slope(q) -> (V(q), dV/dq)`` for a 1-d array q. See the module docstring for the method.
    """
    if not (np.isfinite(q0) and q0 > 0):
        raise ValueError(f"q0={q0!r} must be a positive finite variance (the starting q of the iterated map)")
    g, k = _grid(float(q0))
    vg, dvg = v_and_slope(g)
    F = sw2[:, None] * vg[None, :] + sb2[:, None] - g[None, :]
    n = sw2.size
    F0 = sw2 * float(act.phi(np.zeros(1))[0]) ** 2 + sb2
    s0 = sw2 * slope_at_zero(act)
    s_inf = sw2 * act.growth
    q = np.full(n, np.nan)
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    fk = F[:, k]
    q[fk == 0] = g[k]

    up = np.flatnonzero(fk > 0)
    if up.size:
        below = F[up, k + 1:] <= 0
        has = below.any(axis=1)
        j = k + 1 + np.argmax(below, axis=1)
        lo[up[has]], hi[up[has]] = g[j[has] - 1], g[j[has]]
        rest = up[~has]
        grows = (s_inf[rest] > 1 + 1e-12) | ((np.abs(s_inf[rest] - 1) <= 1e-12) & (F[rest, -1] > 0))
        q[rest[grows]] = np.inf
        _extend(rest[~grows], g[-1], sw2, sb2, v_and_slope, q, lo, hi)

    down = np.flatnonzero(fk < 0)
    if down.size:
        above = F[down, :k] >= 0
        has = above.any(axis=1)
        j = k - 1 - np.argmax(above[:, ::-1], axis=1)
        lo[down[has]], hi[down[has]] = g[j[has]], g[j[has] + 1]
        rest = down[~has]
        pos0 = F0[rest] > 0
        lo[rest[pos0]], hi[rest[pos0]] = 0.0, g[0]
        zero = rest[~pos0]
        tiny = 1e-200
        ft = sw2[zero] * v_and_slope(np.array([tiny]))[0][0] + sb2[zero] - tiny
        leaves = (s0[zero] > 1) & (ft > 0)  # q = 0 repels: the root lies in (0, g[0])
        lo[zero[leaves]], hi[zero[leaves]] = tiny, g[0]
        q[zero[~leaves]] = 0.0

    todo = np.flatnonzero(np.isfinite(lo))
    if todo.size:
        def f(x, a):
            v, dv = v_and_slope(x)
            i = todo[a]
            return sw2[i] * v + sb2[i] - x, sw2[i] * dv - 1.0
        x0 = np.where(lo[todo] > 0, np.sqrt(lo[todo] * hi[todo]), 0.5 * hi[todo])
        q[todo] = newton_in_bracket(f, lo[todo], hi[todo], x0, tol=tol, max_iter=max_iter)
    slope = np.full(n, np.nan)
    fin = np.isfinite(q) & (q > 0)
    if fin.any():
        slope[fin] = sw2[fin] * v_and_slope(q[fin])[1]
    slope = np.where(q == 0, s0, np.where(np.isinf(q), s_inf, slope))
    return q, slope, classify(q, slope)


def _extend(idx, q_top, sw2, sb2, v_and_slope, q, lo, hi):
    """F > 0 up to the grid's end but F/q → σ_w² growth − 1 < 0: widen by factors of 10 until F ≤ 0."""
    cur = np.full(idx.size, q_top)
    active = np.arange(idx.size)
    while active.size:
        nxt = cur[active] * 10.0
        v = v_and_slope(nxt)[0]
        i = idx[active]
        f = sw2[i] * v + sb2[i] - nxt
        done = f <= 0
        lo[i[done]], hi[i[done]] = cur[active][done], nxt[done]
        cur[active] = nxt
        lost = ~done & (nxt > 1e290)
        q[i[lost]] = np.inf
        active = active[~done & ~lost]


def warn_unstable(act_name: str, q, slope, alternative=None, *, bad=None, stacklevel: int = 3) -> None:
    """Issue :class:`UnstableFixedPointWarning` for the ``bad`` entries (default dq'/dq > 1), naming a stable
    alternative (a :class:`~deepstart.theory.CriticalPoint`) when there is one."""
    q, slope = np.atleast_1d(q), np.atleast_1d(slope)
    bad = slope > 1 + SLOPE_TOL if bad is None else np.atleast_1d(bad)
    if not bad.any():
        return
    pts = ", ".join(f"q*={fmt(a)} (dq'/dq={fmt(b)})" for a, b in zip(q[bad][:3], slope[bad][:3]))
    alt = ("; no stable point exists on its critical line for q* in [1e-4, 1e4]" if alternative is None else
           f"; a stable alternative: critical_point({act_name!r}, q_star={alternative.q_star:.6g}) "
           f"(sigma_w={alternative.sigma_w:.6g}, sigma_b={alternative.sigma_b:.6g}, dq'/dq={alternative.slope:.6g})")
    warnings.warn(f"{act_name}: the critical point at {pts} is an unstable fixed point of the q-map; a network "
                  f"started there drifts away from q* and from χ₁ = 1 with depth{alt}",
                  UnstableFixedPointWarning, stacklevel=stacklevel)


def to_result(act_name, q, slope, status, shape) -> FixedPoint:
    return FixedPoint(scalar_or_array(q.reshape(shape)), _str_or_array(status.reshape(shape)),
                      scalar_or_array(slope.reshape(shape)), act_name)


def _str_or_array(s: np.ndarray):
    return str(s) if s.ndim == 0 else s
