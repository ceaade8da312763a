"""Depth scales ξ_q, ξ_c (Schoenholz et al. 2017, eqs. 8–12) — how many layers signals survive."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepstart.theory._correlation import two_point
from deepstart.theory._results import ResultMixin, scalar_or_array
from deepstart.theory.activations import get_activation
from deepstart.theory.gaussian import DEFAULT_ORDER

__all__ = ["DepthScales", "depth_scales", "xi_from_rate"]


@dataclass(frozen=True)
class DepthScales(ResultMixin):
    """ξ_q (length), ξ_c (correlation) with the point they were computed at; floats or arrays.

    ``status`` is the fixed point's (:func:`~deepstart.theory.fixed_point_status`): with ``diverge`` (q* = ∞)
    ξ_q, ξ_c, c*, χ_c are nan (no fixed point to decay to) and χ₁ is its q → ∞ limit σ_w²·growth.
    Schoenholz et al. find networks train when depth ≲ 6 ξ_c (the factor is empirical, THEORY.md §1 [open]).
    """

    xi_q: float
    xi_c: float
    q_star: float = float("nan")
    c_star: float = float("nan")
    chi_1: float = float("nan")
    chi_c: float = float("nan")
    status: str = ""

    _ARRAY_FIELDS = ("xi_q", "xi_c", "q_star", "c_star", "chi_1", "chi_c")
    _OTHER_ARRAY_FIELDS = ("status",)

    def trainable_depth(self, factor: float = 6.0):
        """factor·ξ_c: the depth up to which Schoenholz et al. observed training (factor 6 from their Fig. 5)."""
        return factor * np.asarray(self.xi_c)


def xi_from_rate(rate) -> np.ndarray:
    """ξ = −1/log(rate) for a per-layer contraction rate in [0, 1); ∞ at rate ≥ 1 (no exponential decay)."""
    rate = np.asarray(rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(rate <= 0, 0.0, -1.0 / np.log(np.where(rate > 0, rate, 0.5)))
    return np.where(rate >= 1, np.inf, np.where(np.isnan(rate), np.nan, xi))


def depth_scales(activation, sigma_w, sigma_b, *, order: int = 24) -> DepthScales:
    """ξ_q = −1/log(dq'/dq at q*) and ξ_c = −1/log χ_c (Schoenholz et al. eqs. 8, 11–12), vectorized.

    χ_c = σ_w² ∫Dz₁Dz₂ φ'(u₁)φ'(u₂) at (q*, c*); in the ordered phase c* = 1 and χ_c = χ₁, so ξ_c = −1/log χ₁.
    At χ₁ = 1 ξ_c = ∞ (criticality). Example (THEORY.md §1, tanh σ_w² = 1, σ_b² = 0.05): ξ_c = 3.627.
    """
    from deepstart.theory.mean_field import c_star, chi_1, fixed_point_status

    act = get_activation(activation)
    sw, sb = np.broadcast_arrays(np.asarray(sigma_w, dtype=float), np.asarray(sigma_b, dtype=float))
    fp = fixed_point_status(act, sw, sb, order=max(order, DEFAULT_ORDER))
    q, slope = np.asarray(fp.q_star, dtype=float), np.asarray(fp.slope, dtype=float)
    finite = np.where(np.isfinite(q), q, 0.0)
    chi = np.asarray(chi_1(act, sw, sb, q_star=None if act.slopes else q, order=max(order, DEFAULT_ORDER)))
    c = np.asarray(c_star(act, sw, sb, order=order), dtype=float)
    c_safe = np.where(np.isfinite(c), c, 1.0)
    chi_c = np.where(c_safe >= 1.0, chi, sw ** 2 * two_point(act, finite, finite, c_safe * finite, order=order,
                                                             derivative=True))
    bad = ~np.isfinite(q)
    marginal = np.isnan(q) & (np.abs(chi - 1.0) <= 1e-12)  # piecewise linear, σ_b = 0, χ₁ = 1: q-map = identity
    xi_q = np.where(marginal, np.inf, np.where(bad, np.nan, xi_from_rate(slope)))
    xi_c = np.where(marginal, np.inf, np.where(bad, np.nan, xi_from_rate(chi_c)))
    return DepthScales(*(scalar_or_array(v) for v in (xi_q, xi_c, q, c, chi, np.where(bad, np.nan, chi_c))),
                       status=fp.status)
