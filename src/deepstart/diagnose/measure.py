"""How each parameter was drawn (its family) and how to draw it again: the resample re-init of ``check``.

* :func:`infer_family`: constant, orthogonal, delta-orthogonal, uniform or normal, read from the tensor;
* :func:`_resample`: new draws from the same family with the same mean and scale (or a :class:`Law`'s);
* :func:`_init_copy`: a copy re-initialized by ``reset_parameters``, a scheme or a callable.

The measuring itself is in :mod:`deepstart.diagnose.stream`.
"""
from __future__ import annotations

import math

import numpy as np
import torch


__all__ = ["as_numpy", "infer_family", "describe_reinit"]

_ORTHO_RTOL = 1e-3


def as_numpy(p) -> np.ndarray:
    """A float64 NumPy copy of a tensor (parameter statistics run in NumPy: hundreds of small torch ops cost
    a thread-pool synchronization each, which dominates on a loaded machine)."""
    if isinstance(p, np.ndarray):
        return p.astype(np.float64, copy=False)
    t = p.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16) or not t.is_floating_point():
        t = t.double()
    return t.numpy().astype(np.float64, copy=False)


def infer_family(p) -> str:
    """How a parameter looks initialized: constant, orthogonal, delta_orthogonal, uniform or normal."""
    w = as_numpy(p)
    if w.size <= 1 or not np.all(np.isfinite(w)) or float(w.std()) == 0.0:
        return "constant"
    if w.ndim >= 3 and all(k % 2 == 1 for k in w.shape[2:]):
        centre = (slice(None), slice(None), *(k // 2 for k in w.shape[2:]))
        mask = np.ones(w.shape, dtype=bool)
        mask[centre] = False
        if mask.any() and float(np.abs(w[mask]).max()) == 0.0 and _is_orthogonal(w[centre]):
            return "delta_orthogonal"
    if w.ndim >= 2 and _is_orthogonal(w.reshape(w.shape[0], -1)):
        return "orthogonal"
    if w.size >= 64 and float(np.abs(w - w.mean()).max()) <= 3 ** 0.5 * float(w.std()) * _uniform_cut(w.size):
        return "uniform"
    return "normal"


def _uniform_cut(n: int) -> float:
    """Largest max|w − mean|/(√3·std) still read as uniform. A uniform sample reaches ≈ 1 ± a few 1/√n (the std
    estimate's noise); a Gaussian one has max|z| ≈ √(2 ln n), above 1.2·√3 = 2.08 with probability
    1 − 0.9625ⁿ (1 − 5e-5 at n = 256) and above 1.1·√3 = 1.91 with probability 1 − 0.944ⁿ (0.97 at n = 64)."""
    return 1.2 if n >= 256 else 1.1


def _is_orthogonal(w2: np.ndarray) -> bool:
    if min(w2.shape) < 2:
        return False
    short = w2 if w2.shape[0] <= w2.shape[1] else w2.T  # orthonormal rows of the short side: equal norms first
    norms = np.einsum("ij,ij->i", short, short)
    if float(np.ptp(norms)) > 2 * _ORTHO_RTOL * float(norms.mean()):
        return False
    g = w2 @ w2.T if w2.shape[0] <= w2.shape[1] else w2.T @ w2
    s2 = float(np.diagonal(g).mean())
    if s2 <= 0:
        return False
    g[np.diag_indices_from(g)] -= s2
    return float(np.linalg.norm(g)) <= _ORTHO_RTOL * s2 * g.shape[0] ** 0.5


def _resample(p: torch.Tensor, family: str, generator, law=None, *, spec=None) -> torch.Tensor:
    """One new draw of ``p`` from the family it was drawn from, keeping mean and std (orthogonal and
    delta-orthogonal: the scale; constant: ``p`` itself); with a :class:`~deepstart.diagnose.law.Law`, normal and
    uniform draws use its mean and variance. The draw is made on ``p``'s device with ``generator`` (which must draw
    there); ``spec``: :func:`_draw_spec` of ``p``, computed once when ``p`` is redrawn many times."""
    spec = _draw_spec(p, family, law) if spec is None else spec
    if family in ("normal", "uniform"):
        mean, std = spec
        out = torch.empty(p.shape, dtype=p.dtype, device=p.device)
        if family == "uniform":
            a = 3 ** 0.5 * std
            return out.uniform_(mean - a, mean + a, generator=generator)
        return out.normal_(mean, std, generator=generator)
    if family == "constant":
        return p.detach()
    from deepstart.init.orthogonal import haar_orthogonal  # orthogonal / delta_orthogonal

    centre = (slice(None), slice(None), *(k // 2 for k in p.shape[2:]))
    rows = p.shape[0]
    cols = math.prod(p.shape[1:]) if family == "orthogonal" else p.shape[1]
    mat = haar_orthogonal(rows, cols, generator=generator, device=p.device) * spec
    if family == "orthogonal":
        return mat.reshape(p.shape).to(p.dtype)
    out = torch.zeros(p.shape, dtype=torch.float64, device=p.device)
    out[centre] = mat
    return out.to(p.dtype)


def _draw_spec(p: torch.Tensor, family: str, law=None):
    """What :func:`_resample` needs of ``p``: ``(mean, std)`` (normal, uniform), the scale ``‖W‖_F/√min(rows, cols)``
    of the (centre) matrix (orthogonal, delta-orthogonal), else None."""
    if family in ("normal", "uniform"):
        return _mean_std(p, law)
    if family not in ("orthogonal", "delta_orthogonal"):
        return None
    w = p.detach()
    core = w if family == "orthogonal" else w[(slice(None), slice(None), *(k // 2 for k in w.shape[2:]))]
    rows, cols = core.shape[0], int(core[0].numel())
    return (float(core.double().pow(2).sum()) / min(rows, cols)) ** 0.5


def describe_reinit(reinit) -> str:
    if reinit is None or reinit == "resample":
        return "resample (each tensor redrawn from its own law: normal/uniform with the standard variance it " \
               "matches (deepstart.diagnose.law) or else its measured mean and std, Haar orthogonal or " \
               "delta-orthogonal with its scale; the given parameters are init 0)"
    if reinit == "reset":
        return "reset (the modules' own reset_parameters, seeded)"
    return f"scheme {getattr(reinit, 'id', reinit)} (deepstart.init.apply_, seeded)"


def _mean_std(p, law):
    if law is not None and law.var > 0:
        return law.mean, law.var ** 0.5
    w = as_numpy(p)
    return float(w.mean()), float(w.std(ddof=1)) if w.size > 1 else 0.0


def _init_copy(clone, reinit, generator) -> None:
    if reinit == "reset":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[]):  # a device's RNG: forked by the caller
            torch.manual_seed(seed)
            for m in clone.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
    elif callable(reinit) and not isinstance(reinit, str) and not hasattr(reinit, "init_module_"):
        reinit(clone, generator)
    else:
        from deepstart.init import apply_  # the init engineer's contract

        apply_(clone, reinit, generator=generator)
