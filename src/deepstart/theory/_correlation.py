"""Two-point Gaussian integrals E g(u₁)g(u₂) for g = φ or φ' (Poole et al. 2016, eq. 5; Schoenholz et al. eq. 11).

(u₁, u₂) is centred Gaussian with variances q₁, q₂ and covariance q₁₂. Closed forms where the activation
provides them; otherwise nested quadrature: u₁ on kink-split nodes, and for each node u₂ | u₁ ~
N((q₁₂/q₁)u₁, q₂ − q₁₂²/q₁) on its own kink-split nodes, so both one-dimensional integrals are of smooth pieces.
"""
from __future__ import annotations

import numpy as np

from deepstart.theory.activations import Activation
from deepstart.theory.gaussian import gaussian_nodes


def two_point(act: Activation, q1, q2, q12, *, order: int = 24, derivative: bool = False) -> np.ndarray:
    """E g(u₁)g(u₂), g = φ (``derivative=False``) or φ' (``derivative=True``), broadcasting over q₁, q₂, q₁₂."""
    q1, q2, q12 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (q1, q2, q12)))
    hook = act.dphi_cross_moment if derivative else act.cross_moment
    if hook is not None:
        return np.asarray(hook(q1, q2, q12), dtype=float)
    g = act.dphi if derivative else act.phi
    x1, w1 = gaussian_nodes(0.0, q1, order=order, kinks=act.breakpoints)          # [..., m]
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(q1 > 0, q12 / np.where(q1 > 0, q1, 1.0), 0.0)
    cond_var = np.maximum(q2 - beta * q12, 0.0)
    # u₂ | u₁ nodes: [..., m, k]
    x2, w2 = gaussian_nodes(beta[..., None] * x1, cond_var[..., None], order=order, kinks=act.breakpoints)
    inner = np.sum(g(x2) * w2, axis=-1)
    return np.sum(g(x1) * inner * w1, axis=-1)
