"""One orthogonal layer: the eigenvalue law of JJᵀ = σ_w² D² (Pennington, Schoenholz & Ganguli 2017, eq. 2, L = 1).

With W orthogonal, WWᵀ = I, so the eigenvalues of JJᵀ = σ_w² D W Wᵀ D are exactly λ_i = σ_w² φ'(h_i)², h_i ~ N(0, q*):
the law is the push-forward of the Gaussian through g(z) = σ_w² φ'(√q* z)². For smooth φ it has a density,
ρ(λ) = Σ_{z: g(z) = λ} N(z)/|g'(z)|, which the quadrature law of d = φ'² used for L ≥ 2 can only show as atoms.
The roots are bracketed on a fine z grid and refined from a secant step by bracketed Newton (:mod:`._roots`);
g'(z) = 2σ_w²√q* φ'φ''.
"""
from __future__ import annotations

import numpy as np

from deepstart.theory._roots import newton_in_bracket

Z_MAX = 12.0  # N(0, 1) mass beyond |z| = 12 is 3.6e-33: below any tolerance
N_GRID = 24001  # z spacing 1e-3 brackets every root of g(z) = λ


def _grid(act, q: float, sigma_w: float):
    z = np.linspace(-Z_MAX, Z_MAX, N_GRID)
    g = sigma_w ** 2 * np.asarray(act.dphi(np.sqrt(q) * z), float) ** 2
    return z, g


def _g_and_slope(act, q: float, sigma_w: float, z):
    """g(z) = σ_w² φ'(√q z)² and g'(z) = 2σ_w²√q φ'φ''."""
    h = np.sqrt(q) * z
    d1, d2 = np.asarray(act.dphi(h), float), np.asarray(act.d2phi(h), float)
    return sigma_w ** 2 * d1 ** 2, 2 * sigma_w ** 2 * np.sqrt(q) * d1 * d2


def log_edge(act, q: float, sigma_w: float) -> float:
    """log of the largest eigenvalue σ_w² max φ'(h)² (grid maximum refined on a 10× finer grid around it)."""
    z, g = _grid(act, q, sigma_w)
    k = int(np.argmax(g))
    fine = np.linspace(z[max(k - 1, 0)], z[min(k + 1, z.size - 1)], 201)
    top = sigma_w ** 2 * np.asarray(act.dphi(np.sqrt(q) * fine), float) ** 2
    return float(np.log(max(g[k], top.max())))


def density(act, q: float, sigma_w: float, lam, *, chunk: int = 256) -> np.ndarray:
    """ρ(λ) = Σ_roots N(z)/|g'(z)| of the continuous part, vectorized over ``lam`` (processed ``chunk`` at a time)."""
    z, g = _grid(act, q, sigma_w)
    lam = np.asarray(lam, float)
    flat = lam.reshape(-1)
    out = np.zeros(flat.shape)
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        above = g[None, :] > part[:, None]
        i, k = np.nonzero(above[:, :-1] != above[:, 1:])  # λ_i crosses g between z_k and z_{k+1}
        g0, g1 = g[k], g[k + 1]
        zr = z[k] + (part[i] - g0) / (g1 - g0) * (z[k + 1] - z[k])
        target = part[i]

        def F(x, a, target=target):
            value, slope = _g_and_slope(act, q, sigma_w, x)
            return value - target[a], slope

        zr = newton_in_bracket(F, z[k], z[k + 1], zr, positive_at_lo=g0 > target, tol=0.0, atol=1e-13, max_iter=40)
        slope = np.abs(_g_and_slope(act, q, sigma_w, zr)[1])
        pdf = np.exp(-0.5 * zr ** 2) / np.sqrt(2 * np.pi)
        with np.errstate(divide="ignore"):
            contrib = np.where(slope > 0, pdf / np.where(slope > 0, slope, 1.0), 0.0)
        np.add.at(out, start + i, contrib)
    return out.reshape(lam.shape)


def cdf_table(act, q: float, sigma_w: float):
    """(t = log λ grid, P(0 < eigenvalue ≤ e^t)) from the z grid's trapezoid weights (mass error ≲ 1e-6)."""
    z, g = _grid(act, q, sigma_w)
    w = np.exp(-0.5 * z ** 2) / np.sqrt(2 * np.pi) * (z[1] - z[0])
    w[[0, -1]] *= 0.5
    pos = g > 0
    order = np.argsort(g[pos])
    lam, cum = g[pos][order], np.cumsum(w[pos][order])
    t = np.log(lam)
    keep = np.concatenate([np.diff(t) > 1e-13, [True]])  # ties: keep the last (largest cumulative mass)
    return t[keep], cum[keep]
