"""One vectorized root finder for the theory: Newton's method kept inside a sign-change bracket.

Used for the q-map fixed point q* (:mod:`.mean_field`, :mod:`.phase`) and for the roots of σ_w²φ'(√q z)² = λ
(:mod:`._pushforward`). Each element has its own bracket [lo, hi] on which f changes sign; a Newton step that
leaves the (shrinking) bracket is replaced by bisection, so the iteration converges like Newton near a simple root
and never worse than bisection (it also crawls safely into roots where f' → 0, e.g. next to an extremum).
"""
from __future__ import annotations

import numpy as np


def newton_in_bracket(F, lo, hi, x0, *, positive_at_lo=True, tol: float = 1e-13, atol: float = 0.0,
                      max_iter: int = 60, geometric: bool = False) -> np.ndarray:
    """Roots of ``F`` inside ``[lo, hi]``, elementwise.

    Args:
        F: ``F(x, index) -> (f, f')`` for the still-active elements ``index`` (an integer array) at points ``x``.
        lo, hi: the brackets (arrays); ``f`` has the sign given by ``positive_at_lo`` (bool or bool array) at ``lo``
            and the opposite sign at ``hi``.
        x0: starting points inside the brackets.
        tol, atol: stop when the Newton correction or the bracket is below ``tol·|x| + atol``, or f = 0 exactly.
        geometric: bisect at √(lo·hi) (positive brackets spanning decades, such as q) instead of (lo + hi)/2.
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    x = np.array(x0, dtype=float)
    side = np.broadcast_to(np.asarray(positive_at_lo, dtype=bool), x.shape)
    active = np.arange(x.size)
    for _ in range(max_iter):
        xa = x[active]
        f, fp = F(xa, active)
        at_lo_side = (f > 0) == side[active]
        lo[active] = np.where(at_lo_side, xa, lo[active])
        hi[active] = np.where(at_lo_side, hi[active], xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = xa - f / fp
        a, b = np.minimum(lo[active], hi[active]), np.maximum(lo[active], hi[active])
        inside = np.isfinite(step) & (step > a) & (step < b)
        scale = tol * np.abs(xa) + atol
        # converged: f = 0 exactly, or the Newton correction is negligible (bisecting there would throw the
        # converged point away, since the step then equals x and is not strictly inside the bracket)
        converged = (f == 0) | (np.abs(step - xa) <= scale)
        middle = np.sqrt(a * b) if geometric else 0.5 * (a + b)
        new = np.where(converged, xa, np.where(inside, step, middle))
        done = converged | (np.abs(new - xa) <= scale) | (b - a <= scale)
        x[active] = new
        active = active[~done]
        if active.size == 0:
            break
    return x
