"""Block Lanczos with full reorthogonalization and stochastic Lanczos quadrature (SLQ).

Works on any symmetric positive semi-definite operator given as a block matrix-vector product
``matvec(V) -> A V`` for ``V`` of shape ``[n, b]``. In :mod:`deepstart.diagnose.jacobian` the operator is the
Gram matrix ``JᵀJ`` (or ``JJᵀ``) of a network's input-output Jacobian, applied matrix-free through
``torch.func.jvp`` / ``torch.func.vjp``.

One run does two jobs:

- **Top eigenvalues.** Rayleigh–Ritz on the block Krylov space ``span{Z, AZ, …, A^{m-1}Z}`` (Golub & Van Loan,
  *Matrix Computations*, 4th ed., §10.3.6, block Lanczos). With full reorthogonalization every ``A Q_j`` lies in
  ``span(Q_0, …, Q_{j+1})``, so the residual of a Ritz pair (θ_i, Q u_i) is ``‖B_j u_i^{(last block)}‖`` without
  another matvec.
- **Spectral density.** The starting block ``Z`` holds Rademacher probes, ``E[zzᵀ] = I``. Each probe gives the
  quadrature ``zᵀ f(A) z ≈ Σ_j f(θ_j) ((R₁ᵀ U_{1:b})_{ij})²`` (block Gauss quadrature, exact for polynomials of
  degree ≤ 2m − 1; Golub & Meurant, *Matrices, Moments and Quadrature*, ch. 7; Ubaru, Chen & Saad 2017, eq. 3–5).
  Averaging over probes estimates ``tr f(A) / n``; the spread across probes gives standard errors.

Bookkeeping is float64 on the operator's device; ``matvec`` receives float64 blocks and may compute in any dtype.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["LanczosResult", "block_lanczos", "rademacher"]


@dataclass(frozen=True)
class LanczosResult:
    """Output of :func:`block_lanczos` (float64 tensors on the operator's device).

    ``ritz_values`` ascending, shape [M]; ``residuals`` their residual norms ‖A y − θ y‖; ``probe_weights``
    [b, M]: quadrature weights of each starting column (they sum to ‖z_i‖²); ``first_block`` = ``A Z`` for the
    starting block; ``krylov_dim`` = M; ``exact`` True when the Krylov space is the whole space (all eigenvalues found).
    """

    ritz_values: torch.Tensor
    residuals: torch.Tensor
    probe_weights: torch.Tensor
    first_block: torch.Tensor
    krylov_dim: int
    exact: bool
    converged: bool


def rademacher(n: int, b: int, *, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """``[n, b]`` float64 matrix of independent ±1 entries drawn with ``generator`` (on CPU, then moved)."""
    bits = torch.randint(0, 2, (n, b), generator=generator, dtype=torch.int64)
    return (2.0 * bits - 1.0).to(dtype=torch.float64, device=device)


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove the components of ``w`` along the orthonormal columns of ``basis`` (classical Gram–Schmidt, twice)."""
    for _ in range(2):
        w = w - basis @ (basis.T @ w)
    return w


def _top_converged(theta, res, k, tol) -> bool:
    """Top-``k`` Ritz values accurate to ``tol`` relative: error ≤ min(‖r‖, ‖r‖²/gap) (Parlett, *The Symmetric
    Eigenvalue Problem*, Thm 11.7.1 / Kato–Temple), measured against |θ|."""
    m = theta.numel()
    if m < k + 1:
        return False
    order = torch.argsort(theta, descending=True)
    for rank in range(k):
        i = order[rank]
        others = torch.cat([theta[:i], theta[i + 1:]])
        gap = torch.min(torch.abs(others - theta[i])).clamp_min(torch.finfo(theta.dtype).tiny)
        err = torch.minimum(res[i], res[i] ** 2 / gap)
        if err > tol * torch.abs(theta[i]).clamp_min(torch.finfo(theta.dtype).tiny):
            return False
    return True


def block_lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, *, k: int,
                  tol: float = 1e-5, max_dim: int | None = None) -> LanczosResult:
    """Block Lanczos with full reorthogonalization on a symmetric PSD operator.

    Args:
        matvec: ``V [n, b] -> A V [n, b]``; receives and must return float64 (cast inside if needed).
        start: starting block ``Z`` [n, b] (Rademacher probes for SLQ), float64.
        k: number of top eigenvalues whose convergence stops the iteration.
        tol: relative accuracy of the top-``k`` eigenvalues (Ritz error bound, see :func:`_top_converged`).
        max_dim: largest Krylov dimension (default ``n``); reaching ``n`` makes the result exact.

    Returns:
        :class:`LanczosResult`. ``converged`` is False when ``max_dim`` stopped the run first.
    """
    n, b = start.shape
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the operator dimension {n}")
    max_dim = n if max_dim is None else max(b, min(int(max_dim), n))
    q, r1 = torch.linalg.qr(start)
    basis, images, first_block = q, [], None
    while True:
        aq = matvec(q)
        if first_block is None:
            first_block = aq @ r1  # A Z = A Q_0 R_1
        images.append(aq)
        w = _orthogonalize(aq, basis)  # A Q_last − Q Qᵀ A Q_last: earlier blocks leave no residual
        t = basis.T @ torch.cat(images, dim=1)
        theta, u = torch.linalg.eigh(0.5 * (t + t.T))
        res = torch.linalg.norm(w @ u[-q.shape[1]:, :], dim=0)
        m = basis.shape[1]
        exact = m >= n  # the Krylov space is the whole space: every eigenvalue found
        invariant = bool(torch.linalg.norm(w) <= 1e-13 * torch.linalg.norm(aq).clamp_min(1e-300))
        converged = exact or invariant or _top_converged(theta, res, k, tol)
        room = min(b, max_dim - m)
        if converged or room <= 0 or (room < b and m + room < n):
            break
        q = _next_block(w, basis, room)
        basis = torch.cat([basis, q], dim=1)
    weights = (r1.T @ u[:b, :]) ** 2
    return LanczosResult(ritz_values=theta, residuals=res, probe_weights=weights, first_block=first_block,
                         krylov_dim=basis.shape[1], exact=exact, converged=converged)


def _next_block(w: torch.Tensor, basis: torch.Tensor, room: int) -> torch.Tensor:
    """Orthonormal next block from the residual ``w``; a last partial block (``room`` < b) spans the rest of
    the space, taken from the leading left singular vectors of ``w``."""
    if room < w.shape[1]:
        q = torch.linalg.svd(w, full_matrices=False).U[:, :room]
    else:
        q, _ = torch.linalg.qr(w)
    q = _orthogonalize(q, basis)  # Householder Q of a rank-deficient w has directions outside range(w)
    q, _ = torch.linalg.qr(q)
    return q
