"""Where the free-probability law of the Jacobian spectrum (Pennington et al. 2017) applies: piecewise-linear φ
(exact), or smooth φ at a q* that attracts the q-map; a repelling q* (gelu, silu at q* = 1/64) is outside it."""
from __future__ import annotations

import numpy as np

__all__ = ["spectrum_domain"]


def spectrum_domain(act, q: float, sw: float, order: int) -> str:
    """``"in domain"``, or why (φ, q*) is outside the free-probability prediction's domain (jacobian_spectrum)."""
    from deepstart.theory.gaussian import gaussian_nodes
    from deepstart.theory.mean_field import q_map_slope

    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    f = np.asarray(act.phi(x), float)
    mean, rms = float(f @ w), float(np.sqrt((f * f) @ w))
    slope = float(q_map_slope(act, q, sw, order=order)) if q > 0 else np.nan
    if act.slopes is not None or not slope > 1 + 1e-9:  # piecewise-linear φ (relu: exact), or an attracting q*
        return "in domain"
    why = [f"q* = {q:.4g} repels the q-map (dq'/dq = {slope:.4g}): the network drifts away from it"]
    if abs(mean) > 1e-6 * max(rms, 1e-300):  # a suspected second cause, reported beside the established one
        why.append(f"E φ(h) = {mean:.3g} ≠ 0 (mean²/E φ² = {mean * mean / rms ** 2:.3g}): a common mode across units")
    return ("outside the theory's domain (odd-like φ with E φ(h) = 0 at a stable q*): " + "; ".join(why)
            + "; a real forward pass can depart from this law (issue 11: gelu, L = 16, Var λ 298 vs 16.9)")
