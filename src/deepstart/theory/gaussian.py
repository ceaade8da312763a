"""Gaussian expectations ``E f(h)``, ``h ~ N(mean, var)``, by quadrature with an explicit order.

* Smooth integrands: Gauss–Hermite (probabilists' weight e^{−z²/2}) with ``order`` nodes — exact for polynomials
  of degree ≤ 2·order − 1 (as in neural-tangents' ``stax.elementwise`` numerical activations).
* Integrands with kinks (relu, hard_tanh, elu, ...): the real line is split at the kinks (in z units,
  ``(kink − mean)/√var``) and at z = ±4, truncated at ``|z| ≤ 12`` (Gaussian tail mass below 4e-33), and each piece gets
  ``order`` Gauss–Legendre nodes against the Gaussian density, so every piece is smooth and converges
  spectrally. Gauss–Hermite on a kinked integrand would only converge algebraically.

All functions broadcast over ``mean``/``var``/``q``: the node axis is appended last.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["DEFAULT_ORDER", "gaussian_expectation", "gaussian_nodes"]

DEFAULT_ORDER = 64
_Z_MAX = 12.0  # truncation of the kink-split rule: 2·Φ(−12) < 4e-33
# extra split: Legendre on [0, 12] resolves e^{−z²/2} poorly (1e-7 at 16 nodes), on [0, 4] ∪ [4, 12] to 1e-14
_Z_MID = 4.0


@lru_cache(maxsize=32)
def _hermite(order: int) -> tuple[np.ndarray, np.ndarray]:
    z, w = np.polynomial.hermite_e.hermegauss(order)
    return z, w / np.sqrt(2.0 * np.pi)


@lru_cache(maxsize=32)
def _legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(order)


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 2000:
        raise ValueError(f"order={order!r} must be an integer in [1, 2000] (number of quadrature nodes)")
    return int(order)


def gaussian_nodes(mean, var, *, order: int = DEFAULT_ORDER, kinks=()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``x`` and weights ``w`` (summing to 1 along the last axis) with ``Σ w f(x) ≈ E f(h)``, h ~ N(mean, var).

    Shapes: ``broadcast(mean, var).shape + (m,)`` with m = order without kinks, ``(len(kinks)+3)·order`` with.
    """
    order = _check_order(order)
    mean, var = np.broadcast_arrays(np.asarray(mean, dtype=float), np.asarray(var, dtype=float))
    if np.any(var < 0) or np.any(np.isnan(var)):
        raise ValueError(f"variance must be >= 0, got {var[(var < 0) | np.isnan(var)].ravel()[:3]}")
    sd = np.sqrt(var)[..., None]
    if not kinks:
        z, w = _hermite(order)
        return mean[..., None] + sd * z, np.broadcast_to(w, sd.shape[:-1] + (order,))
    k = np.sort(np.asarray(kinks, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        zk = (k - mean[..., None]) / sd
    zk = np.where(sd > 0, zk, np.where(k > mean[..., None], np.inf, -np.inf))
    fixed = np.broadcast_to(np.array([-_Z_MAX, -_Z_MID, _Z_MID, _Z_MAX]), zk.shape[:-1] + (4,))
    edges = np.sort(np.concatenate([fixed, np.clip(zk, -_Z_MAX, _Z_MAX)], axis=-1), axis=-1)
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    t, wt = _legendre(order)
    z = 0.5 * (hi - lo) * t + 0.5 * (hi + lo)
    w = 0.5 * (hi - lo) * wt * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    z = z.reshape(z.shape[:-2] + (z.shape[-2] * z.shape[-1],))
    w = w.reshape(z.shape)
    w = w / w.sum(axis=-1, keepdims=True)  # removes the (≤4e-33) truncated tail mass
    return mean[..., None] + sd * z, w


def gaussian_expectation(f, q, *, order: int = DEFAULT_ORDER, kinks=(), mean=0.0) -> np.ndarray:
    """``E_{z~N(0,1)} f(mean + √q z)`` for every entry of ``q`` (broadcast with ``mean``).

    Args:
        f: vectorized NumPy function.
        q: variance(s) ≥ 0.
        order: quadrature nodes (per smooth piece when ``kinks`` are given).
        kinks: points where f is not smooth, e.g. ``(0.0,)`` for ReLU, ``(-1.0, 1.0)`` for hard-tanh.

    Example:
        >>> round(float(gaussian_expectation(lambda x: x ** 2, 2.0)), 12)
        2.0
    """
    x, w = gaussian_nodes(mean, q, order=order, kinks=kinks)
    return np.sum(np.asarray(f(x), dtype=float) * w, axis=-1)
