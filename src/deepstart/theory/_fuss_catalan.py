"""Deep linear Gaussian nets: the Fuss–Catalan law of JJᵀ (Pennington, Schoenholz & Ganguli 2017; THEORY.md §2)."""
from __future__ import annotations

import numpy as np
from scipy.special import comb

def fuss_catalan_lambda_max(depth: int) -> float:
    """λ_max = (L+1)^{L+1}/L^L for linear Gaussian nets (THEORY.md §2)."""
    L = _check_depth(depth)
    return float(np.exp((L + 1) * np.log(L + 1) - L * np.log(L)))


def fuss_catalan_moment(depth: int, k: int) -> float:
    """m_k = C((L+1)k, k)/(Lk+1) (Fuss–Catalan numbers, THEORY.md §2)."""
    L = _check_depth(depth)
    return float(comb((L + 1) * k, k, exact=True)) / (L * k + 1)


def fuss_catalan_density(lam, depth: int, n_iter: int = 60) -> np.ndarray:
    """Density of JJᵀ for a depth-L linear Gaussian net (σ_w=1), vectorized over λ.

    Parameterisation (THEORY.md §2): λ(φ) = sin^{L+1}((L+1)φ)/(sin φ sin^L(Lφ)) decreasing on
    φ ∈ (0, π/(L+1)); ρ = sin²φ sin^{L−1}(Lφ)/(π sin^L((L+1)φ)). φ found by bisection in log λ.
    """
    L = _check_depth(depth)
    lam = np.asarray(lam, dtype=float)
    out = np.zeros_like(lam)
    inside = (lam > 0) & (lam < fuss_catalan_lambda_max(L))
    target = np.log(lam[inside])
    lo = np.zeros_like(target)
    hi = np.full_like(target, np.pi / (L + 1))
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        big = _log_lam_fc(mid, L) > target
        lo = np.where(big, mid, lo)
        hi = np.where(big, hi, mid)
    phi = 0.5 * (lo + hi)
    log_rho = (2 * np.log(np.sin(phi)) + (L - 1) * np.log(np.sin(L * phi))
               - L * np.log(np.sin((L + 1) * phi)) - np.log(np.pi))
    out[inside] = np.exp(log_rho)
    return out


def _log_lam_fc(phi, L):
    return ((L + 1) * np.log(np.sin((L + 1) * phi)) - np.log(np.sin(phi))
            - L * np.log(np.sin(L * phi)))


def _check_depth(depth) -> int:
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth={depth!r} invalid; pass an integer >= 1")
    return int(depth)
