"""Block Lanczos with full reorthogonalization and stochastic Lanczos quadrature (SLQ).

Works on any symmetric positive semi-definite operator given as a block product ``matvec(V) -> A V`` for ``V`` of
shape ``[n, b]``, so every operator application is a matrix–matrix product (GEMM) against a block of ``b`` vectors,
not ``b`` separate matrix–vector products. In :mod:`deepstart.diagnose.jacobian` the operator is the Gram matrix
``JᵀJ`` (or ``JJᵀ``) of a network's input-output Jacobian, applied matrix-free through ``torch.func.jvp`` /
``torch.func.vjp``.

One run does two jobs:

- **Top eigenvalues.** Rayleigh–Ritz on the block Krylov space ``V = span{Z, AZ, …, A^{s-1}Z}`` (Golub & Van Loan,
  *Matrix Computations*, 4th ed., §10.3.6, block Lanczos). With full reorthogonalization every ``A Q_j`` lies in
  ``span(Q_0, …, Q_{j+1})``, so the residual of a Ritz pair (θ_i, V u_i) is ``‖W u_i^{(last block)}‖`` without
  another product. The top-``k`` values are then refined for free from the products already made: the Ritz values
  of ``A`` on ``A^{1/2}V`` solve the pencil ``(AV)ᵀ(AV) y = θ VᵀAV y`` — for ``A = JᵀJ`` the singular values of ``J``
  seen from the left space ``J V`` (block Golub–Kahan, half a step ahead; Golub & Van Loan §10.4). They lie between
  the plain Ritz values and the true eigenvalues (Courant–Fischer with ``xᵀA²x · xᵀx ≥ (xᵀAx)²``), so every error
  bound of the plain values holds for them.
- **Spectral density.** The starting block ``Z`` holds Rademacher probes, ``E[zzᵀ] = I``. Each probe gives the
  quadrature ``zᵀ f(A) z ≈ Σ_j f(θ_j) ((R₁ᵀ U_{1:b})_{ij})²`` (block Gauss quadrature, exact for polynomials of
  degree ≤ 2s − 1 with ``s`` blocks; Golub & Meurant, *Matrices, Moments and Quadrature*, ch. 7; Ubaru, Chen & Saad
  2017, eq. 3–5). Averaging over probes estimates ``tr f(A) / n``; the spread across probes gives standard errors.

**Stopping.** The Krylov size follows from the requested relative accuracy ``tol`` of the top ``k`` eigenvalues: the
run stops at the first block where, for all top ``k``, either the residual bound ``min(‖r_i‖, ‖r_i‖²/δ)`` (Parlett,
*The Symmetric Eigenvalue Problem*, Thm 11.7.1 / Kato–Temple, ``δ = θ_k − θ_{k+1}`` the gap of the top-``k``
cluster) or the change of the refined values extrapolated geometrically, ``c_s · r/(1 − r)`` with
``r = c_s / c_{s−1}``, is below ``tol · θ_i``. One host synchronization per block decides whether to go on.

Bookkeeping runs on the starting block's device and in its dtype (float64 recommended); the small projected problems
are solved in float64. ``matvec`` receives blocks in that dtype and may compute in any dtype.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["LanczosResult", "block_lanczos", "rademacher", "slq_moments"]


@dataclass(frozen=True)
class LanczosResult:
    """Output of :func:`block_lanczos` (tensors on the operator's device).

    ``ritz_values`` ascending, shape [M] (float64); ``residuals`` their residual norms ‖A y − θ y‖;
    ``probe_weights`` [b, M]: quadrature weights of each starting column (they sum to ‖z_i‖²); ``first_block`` =
    ``A Z`` for the starting block; ``krylov_dim`` = M; ``exact`` True when the Krylov space is the whole space (all
    eigenvalues found); ``converged`` False when ``max_dim`` or ``time_limit`` stopped the run first (``out_of_time``
    says it was the time); ``top_values`` the refined estimates of the ``k`` largest eigenvalues, descending (use
    these for the top ``k``; ``ritz_values`` are the quadrature nodes); ``top_errors`` their estimated relative
    errors.
    """

    ritz_values: torch.Tensor
    residuals: torch.Tensor
    probe_weights: torch.Tensor
    first_block: torch.Tensor
    krylov_dim: int
    exact: bool
    converged: bool
    top_values: torch.Tensor | None = None
    top_errors: torch.Tensor | None = None
    out_of_time: bool = False

    def probe_moments(self, powers=(1, 2)) -> torch.Tensor:
        """``[len(powers), b]``: each probe's ``z_iᵀ A^p z_i`` by block Gauss quadrature ``Σ_j w_ij θ_j^p`` (exact
        for ``p ≤ 2s − 1`` with ``s`` Krylov blocks)."""
        return torch.stack([self.probe_weights @ self.ritz_values ** p for p in powers])


def slq_moments(result: LanczosResult, n: int, powers=(1, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    """SLQ estimates of ``tr(A^p) / n`` and their standard errors (spread across the ``b`` probes / √b)."""
    per = result.probe_moments(powers) / n
    b = per.shape[1]
    err = per.std(dim=1, unbiased=True) / b ** 0.5 if b > 1 else torch.zeros_like(per[:, 0])
    return per.mean(dim=1), err


def rademacher(n: int, b: int, *, generator: torch.Generator | None, device=None,
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[n, b]`` matrix of independent ±1 entries drawn with ``generator`` (on the generator's device, then moved
    to ``device``), in ``dtype``."""
    where = generator.device if generator is not None else device
    bits = torch.randint(0, 2, (n, b), generator=generator, dtype=torch.int8, device=where)
    return (2 * bits.to(dtype) - 1).to(device=device)


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Remove the components of ``w`` along the orthonormal columns of ``basis`` (classical Gram–Schmidt, twice)."""
    for _ in range(2):
        w = w - basis @ (basis.T @ w)
    return w


def _refined_top(t: torch.Tensor, theta: torch.Tensor, u: torch.Tensor, g: torch.Tensor, k: int) -> torch.Tensor:
    """Top-``k`` eigenvalues (descending) of the pencil ``G y = θ T y`` with ``T = VᵀAV = U Θ Uᵀ`` and
    ``G = (AV)ᵀ(AV)``, restricted to Ritz directions with θ_j > 1e-12 θ_max (the rest carry no top-k weight and make
    ``T`` singular): eigenvalues of ``Θ^{-1/2} Uᵀ G U Θ^{-1/2}``."""
    keep = theta > 1e-12 * theta[-1].clamp_min(torch.finfo(theta.dtype).tiny)
    # u's columns with theta below the threshold are dropped by scaling them to zero (no data-dependent shapes)
    scale = torch.where(keep, theta.clamp_min(torch.finfo(theta.dtype).tiny).rsqrt(), torch.zeros_like(theta))
    y = u * scale
    h = y.T @ g @ y
    values = torch.linalg.eigvalsh(0.5 * (h + h.T))
    return torch.maximum(values.flip(0)[:k], theta.flip(0)[:k])  # never below the plain Ritz values


def _bound_errors(theta, res, k: int) -> torch.Tensor:
    """Relative error bounds ``min(‖r_i‖, ‖r_i‖²/δ) / θ_i`` of the top ``k`` Ritz values (descending), with
    ``δ = θ_k − θ_{k+1}`` the gap between the top-``k`` cluster and the rest."""
    tiny = torch.finfo(theta.dtype).tiny
    top, r = theta.flip(0)[:k], res.flip(0)[:k]
    gap = (top[-1] - theta.flip(0)[k]).clamp_min(tiny) if theta.numel() > k else torch.full_like(top[-1], tiny)
    return torch.minimum(r, r ** 2 / gap) / top.abs().clamp_min(tiny)


def block_lanczos(matvec: Callable[[torch.Tensor], torch.Tensor], start: torch.Tensor, *, k: int,
                  tol: float = 1e-4, max_dim: int | None = None, time_limit: float | None = None) -> LanczosResult:
    """Block Lanczos with full reorthogonalization on a symmetric PSD operator, sized by the requested accuracy.

    Args:
        matvec: ``V [n, b] -> A V [n, b]`` in ``start``'s dtype and device (cast inside if the operator computes in
            another dtype).
        start: starting block ``Z`` [n, b] (Rademacher probes for SLQ, see :func:`rademacher`); float64 advised.
        k: number of top eigenvalues whose accuracy stops the iteration.
        tol: relative accuracy of the top-``k`` eigenvalues (error bound or extrapolated change, see the module
            docstring); smaller ``tol`` means a larger Krylov space. ``tol=0`` runs to ``max_dim``.
        max_dim: largest Krylov dimension (default ``n``); reaching ``n`` makes the result exact.
        time_limit: seconds; no block is started that would end past it, judged by the last block's time (default
            none). Like ``max_dim`` it stops the run with what the blocks so far give.

    Returns:
        :class:`LanczosResult`. ``converged`` is False when ``max_dim`` or ``time_limit`` stopped the run first.

    Example:
        >>> a = torch.diag(torch.arange(1.0, 201.0, dtype=torch.float64))
        >>> z = rademacher(200, 8, generator=torch.Generator().manual_seed(0))
        >>> r = block_lanczos(lambda v: a @ v, z, k=3)
        >>> [round(float(v)) for v in r.top_values]
        [200, 199, 198]
    """
    n, b = start.shape
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the operator dimension {n}")
    if not tol >= 0:
        raise ValueError(f"tol={tol!r} must be a relative accuracy ≥ 0 (e.g. 1e-4)")
    max_dim = n if max_dim is None else max(b, min(int(max_dim), n))
    invariant_tol = 100 * torch.finfo(start.dtype).eps
    q, r1 = torch.linalg.qr(start)
    basis, images, first_block = q, [], None
    prev_top, prev_change = None, None
    start_time = time.perf_counter()
    while True:
        block_start = time.perf_counter()
        aq = matvec(q)
        if first_block is None:
            first_block = aq @ r1  # A Z = A Q_0 R_1
        images.append(aq)
        w = _orthogonalize(aq, basis)  # A Q_last − Q Qᵀ A Q_last: earlier blocks leave no residual
        av = torch.cat(images, dim=1)
        t = (basis.T @ av).double()
        t = 0.5 * (t + t.T)
        theta, u = torch.linalg.eigh(t)
        res = torch.linalg.norm(w.double() @ u[-q.shape[1]:, :], dim=0)
        m = basis.shape[1]
        kk = min(k, m)
        top = _refined_top(t, theta, u, (av.T @ av).double(), kk)
        errors = _bound_errors(theta, res, kk)
        if prev_top is not None and prev_top.numel() == kk:
            change = ((top - prev_top).abs() / top.abs().clamp_min(torch.finfo(top.dtype).tiny)).max()
            if prev_change is not None:
                ratio = change / prev_change.clamp_min(torch.finfo(top.dtype).tiny)
                extrapolated = torch.where(ratio < 1, change * ratio / (1 - ratio).clamp_min(1e-300),
                                           torch.full_like(change, float("inf")))
                errors = torch.minimum(errors, extrapolated.expand_as(errors))
            prev_change = change
        prev_top = top
        exact = m >= n  # the Krylov space is the whole space: every eigenvalue found
        invariant = torch.linalg.norm(w) <= invariant_tol * torch.linalg.norm(aq).clamp_min(1e-300)
        accurate = (errors < tol).all() if kk == k else torch.zeros((), dtype=torch.bool, device=w.device)
        converged = exact or bool(invariant | accurate)  # the one host synchronization per block
        room = min(b, max_dim - m)
        now = time.perf_counter()
        late = time_limit is not None and now + (now - block_start) > start_time + time_limit
        if converged or late or room <= 0 or (room < b and m + room < n):
            break
        q = _next_block(w, basis, room)
        basis = torch.cat([basis, q], dim=1)
    weights = (r1.double().T @ u[:b, :]) ** 2
    return LanczosResult(ritz_values=theta, residuals=res, probe_weights=weights, first_block=first_block,
                         krylov_dim=basis.shape[1], exact=exact, converged=converged,
                         top_values=theta.flip(0)[:kk] if exact else top,  # exact: the Ritz values are the spectrum
                         top_errors=torch.zeros_like(errors) if exact else errors,
                         out_of_time=bool(late and not converged))


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
