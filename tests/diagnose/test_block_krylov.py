"""Block Lanczos (deepstart.diagnose.lanczos) on operators with known spectra: top-k accuracy, SLQ moments, sizing."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deepstart.diagnose.lanczos import block_lanczos, rademacher, slq_moments

N = 400


def _operator(seed: int, dtype=torch.float64):
    """``A = U diag(λ) Uᵀ`` with Haar-random ``U`` (QR of a seeded Gaussian) and a known spectrum: 30 geometrically
    spaced top eigenvalues 10·0.85^i above a uniform bulk on [0, 1]. Returns (A in ``dtype``, λ descending, f64)."""
    g = torch.Generator().manual_seed(seed)
    top = 10.0 * 0.85 ** torch.arange(30, dtype=torch.float64)
    bulk = torch.rand(N - 30, generator=g, dtype=torch.float64)
    lam = torch.sort(torch.cat([top, bulk]), descending=True).values
    u, _ = torch.linalg.qr(torch.randn(N, N, generator=g, dtype=torch.float64))
    return ((u * lam) @ u.T).to(dtype), lam


def _matvec(a):
    """Block product in ``a``'s dtype, handed back in the block's dtype (as jacobian.py does for float32 models)."""
    return lambda v: (a @ v.to(a.dtype)).to(v.dtype)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tol", [1e-3, 1e-4, 1e-6])
def test_top_k_within_tol_of_known_spectrum(seed, tol):
    a, lam = _operator(seed)
    z = rademacher(N, 12, generator=torch.Generator().manual_seed(100 + seed))
    res = block_lanczos(_matvec(a), z, k=8, tol=tol)
    assert res.converged and res.top_values.shape == (8,)
    rel = ((res.top_values - lam[:8]).abs() / lam[:8]).max().item()
    assert rel <= tol, (seed, tol, rel, res.krylov_dim)
    assert (res.top_errors <= tol).all()
    # refined values lie between the plain Ritz values and the true eigenvalues (float64 rounding allowed)
    plain = res.ritz_values.flip(0)[:8]
    assert (res.top_values >= plain - 1e-12 * lam[0]).all()
    assert (res.top_values <= lam[:8] + 1e-12 * lam[0]).all()


@pytest.mark.parametrize("operator_dtype,block_dtype", [(torch.float32, torch.float64),
                                                        (torch.float32, torch.float32),
                                                        (torch.float64, torch.float64)])
def test_tol_respected_in_float32_and_float64(operator_dtype, block_dtype):
    a, lam = _operator(3, operator_dtype)
    z = rademacher(N, 12, generator=torch.Generator().manual_seed(7), dtype=block_dtype)
    res = block_lanczos(_matvec(a), z, k=8, tol=1e-4)
    assert res.top_values.dtype == torch.float64 and res.ritz_values.dtype == torch.float64
    # float32 storage of A moves its eigenvalues by ~1e-7 relative: far below the 1e-4 asked for
    assert ((res.top_values - lam[:8]).abs() / lam[:8]).max().item() <= 1e-4


def test_krylov_size_grows_as_tol_shrinks():
    a, _ = _operator(4)
    dims = []
    for tol in (1e-2, 1e-4, 1e-7, 1e-10):
        z = rademacher(N, 12, generator=torch.Generator().manual_seed(8))
        dims.append(block_lanczos(_matvec(a), z, k=8, tol=tol).krylov_dim)
    assert dims == sorted(dims) and dims[-1] > dims[0], dims
    assert dims[-1] < N  # converged well before the space fills


def test_slq_moments_within_probe_standard_errors():
    """Hutchinson/SLQ with b Rademacher probes: Var(zᵀMz) = 2 Σ_{i≠j} M_ij² (Hutchinson 1990; Avron & Toledo
    2011, Lemma 1), so the mean over b probes of zᵀA^p z / n has standard error √(2 Σ_{i≠j} (A^p)_ij² / b) / n."""
    a, lam = _operator(5)
    b = 32
    z = rademacher(N, b, generator=torch.Generator().manual_seed(9))
    res = block_lanczos(_matvec(a), z, k=4, tol=1e-6)
    means, errs = slq_moments(res, N, powers=(1, 2))
    for p, (est, reported) in enumerate(zip(means.tolist(), errs.tolist()), start=1):
        ap = torch.linalg.matrix_power(a, p)
        off = ap - torch.diag(torch.diag(ap))
        se = float(torch.sqrt(2 * (off ** 2).sum() / b) / N)
        true = float((lam ** p).sum() / N)
        assert abs(est - true) <= 5 * se, (p, est, true, se)
        assert 0.5 * se <= reported <= 2.0 * se, (p, reported, se)  # the spread across probes estimates it


def test_quadrature_reproduces_probe_moments_exactly():
    """Block Gauss quadrature with s blocks is exact for degree ≤ 2s − 1 (Golub & Meurant, ch. 7)."""
    a, _ = _operator(6)
    z = rademacher(N, 6, generator=torch.Generator().manual_seed(10))
    res = block_lanczos(_matvec(a), z, k=3, tol=1e-8)
    s = res.krylov_dim // 6
    assert s >= 2
    for p in range(1, 2 * s):
        direct = (z * (torch.linalg.matrix_power(a, p) @ z)).sum(0)
        np.testing.assert_allclose(res.probe_moments((p,))[0].numpy(), direct.numpy(), rtol=1e-9)
    torch.testing.assert_close(res.first_block, a @ z)


def test_fills_the_space_and_is_exact():
    a, lam = _operator(7)
    z = rademacher(N, 64, generator=torch.Generator().manual_seed(11))
    res = block_lanczos(_matvec(a), z, k=N, tol=0.0)
    assert res.exact and res.krylov_dim == N
    np.testing.assert_allclose(res.ritz_values.flip(0).numpy(), lam.numpy(), rtol=1e-9, atol=1e-12)


def test_max_dim_caps_and_reports_not_converged():
    a, _ = _operator(8)
    z = rademacher(N, 8, generator=torch.Generator().manual_seed(12))
    res = block_lanczos(_matvec(a), z, k=8, tol=1e-12, max_dim=24)
    assert res.krylov_dim == 24 and not res.converged and not res.exact


def test_deterministic_given_generator_and_independent_of_global_rng():
    a, _ = _operator(9)
    runs = []
    for disturb in (False, True):
        if disturb:
            torch.manual_seed(1234)
            torch.rand(7)
        z = rademacher(N, 8, generator=torch.Generator().manual_seed(13))
        runs.append(block_lanczos(_matvec(a), z, k=4).top_values)
    assert torch.equal(runs[0], runs[1])


def test_rademacher_entries_dtype_and_device():
    z = rademacher(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    assert z.shape == (50, 4) and z.dtype == torch.float32 and z.device.type == "cpu"
    assert set(z.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("kwargs,match", [({"k": 0}, "k=0"), ({"k": 3, "tol": -1.0}, "tol")])
def test_bad_arguments_say_what_to_do(kwargs, match):
    z = rademacher(10, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        block_lanczos(lambda v: v, z, **kwargs)
