"""Measure lengths and gradients at every site for ``n_inits`` initializations in one batched pass.

For each initialization i, input b and site j we record (Hanin & Rolnick 2018, §1):

* ``M[i, b, j] = ‖x_j‖²/n_j``, the normalized squared length of the measured tensor (n_j its elements per sample);
* ``G[i, b, j] = ‖∂ℓ/∂x_j‖²``, the squared length of the backpropagated signal at the same tensor, with ℓ the
  user's loss or ``⟨u, f(x)⟩`` for a fixed Gaussian output cotangent u (Schoenholz et al. 2017, §3);
* ``dead[i, j]``: the fraction of units (features / channels) that are exactly 0 for every input.

The gradient at a site is read by adding a zero tensor ε_j to its output in a forward hook and differentiating
with respect to ε_j. Re-initializations are stacked as one parameter set with a leading init axis and run through
``torch.func.vmap(functional_call)`` — all inits in one forward and backward — falling back to a loop with plain
autograd when the model does not vmap (e.g. BatchNorm updating running statistics in train mode).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from deepstart.diagnose.architecture import first_tensor

__all__ = ["Raw", "stack_inits", "run_inits", "infer_family", "describe_reinit"]

_ORTHO_RTOL = 1e-3


@dataclass
class Raw:
    sq: np.ndarray     # [n_inits, B, S]
    grad: np.ndarray   # [n_inits, B, S]
    dead: np.ndarray   # [n_inits, S]
    path: str          # "vmap" or "loop"


def infer_family(p: torch.Tensor) -> str:
    """How a parameter looks initialized: constant, orthogonal, delta_orthogonal, uniform or normal."""
    w = p.detach().double()
    if w.numel() <= 1 or float(w.std()) == 0.0 or not bool(torch.isfinite(w).all()):
        return "constant"
    if w.ndim >= 3 and all(k % 2 == 1 for k in w.shape[2:]):
        centre = tuple(k // 2 for k in w.shape[2:])
        mask = torch.ones_like(w, dtype=torch.bool)
        mask[(slice(None), slice(None), *centre)] = False
        if float(w[mask].abs().max()) == 0.0 and _is_orthogonal(w[(slice(None), slice(None), *centre)]):
            return "delta_orthogonal"
    if w.ndim >= 2 and _is_orthogonal(w.reshape(w.shape[0], -1)):
        return "orthogonal"
    if w.numel() >= 64 and float((w - w.mean()).abs().max()) <= 3 ** 0.5 * float(w.std()) * 1.01:
        return "uniform"
    return "normal"


def _is_orthogonal(w2: torch.Tensor) -> bool:
    g = w2 @ w2.T if w2.shape[0] <= w2.shape[1] else w2.T @ w2
    s2 = float(torch.diagonal(g).mean())
    if s2 <= 0 or g.shape[0] < 2:
        return False
    eye = torch.eye(g.shape[0], dtype=g.dtype)
    return float(torch.linalg.norm(g - s2 * eye)) <= _ORTHO_RTOL * s2 * g.shape[0] ** 0.5


def _resample(p: torch.Tensor, family: str, n: int, generator) -> torch.Tensor:
    """n new draws of a tensor from the family it was drawn from, keeping mean and std (orthogonal: scale)."""
    w = p.detach().to("cpu", torch.float64)
    shape = (n, *w.shape)
    if family == "constant":
        out = w.expand(shape).clone()
    elif family in ("orthogonal", "delta_orthogonal"):
        from deepstart.init.orthogonal import haar_orthogonal

        core = w if family == "orthogonal" else w[(slice(None), slice(None), *(k // 2 for k in w.shape[2:]))]
        rows, cols = core.shape[0], int(core[0].numel())
        scale = (float((core.reshape(rows, -1) ** 2).sum()) / min(rows, cols)) ** 0.5
        mats = torch.stack([haar_orthogonal(rows, cols, generator=generator) for _ in range(n)]) * scale
        if family == "orthogonal":
            out = mats.reshape(shape)
        else:
            out = torch.zeros(shape, dtype=torch.float64)
            out[(slice(None), slice(None), slice(None), *(k // 2 for k in w.shape[2:]))] = mats
    elif family == "uniform":
        a = 3 ** 0.5 * float(w.std())
        out = float(w.mean()) + a * (2 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1)
    else:
        out = float(w.mean()) + float(w.std()) * torch.randn(shape, generator=generator, dtype=torch.float64)
    return out.to(p.device, p.dtype)


def describe_reinit(reinit) -> str:
    if reinit is None or reinit == "resample":
        return "resample (each tensor redrawn from its own law: normal/uniform with its mean and std, " \
               "Haar orthogonal or delta-orthogonal with its scale; the given parameters are init 0)"
    if reinit == "reset":
        return "reset (the modules' own reset_parameters, seeded)"
    return f"scheme {getattr(reinit, 'id', reinit)} (deepstart.init.apply_, seeded)"


def stack_inits(model, n_inits: int, reinit, generator) -> dict:
    """Parameter and buffer sets of ``n_inits`` initializations, stacked on a leading axis (name -> tensor)."""
    state = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    if reinit is None or reinit == "resample":
        stacked = {}
        for k, v in state.items():
            draws = _resample(v, infer_family(v), n_inits - 1, generator)
            stacked[k] = torch.cat([v[None], draws]).contiguous()
    else:
        copies = []
        for _ in range(n_inits):
            clone = copy.deepcopy(model)
            _init_copy(clone, reinit, generator)
            copies.append({k: v.detach() for k, v in clone.named_parameters()})
        stacked = {k: torch.stack([c[k] for c in copies]) for k in state}
    for k, v in buffers.items():
        stacked[k] = v[None].expand(n_inits, *v.shape).clone()
    return stacked


def _init_copy(clone, reinit, generator) -> None:
    if reinit == "reset":
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for m in clone.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
    elif callable(reinit) and not isinstance(reinit, str) and not hasattr(reinit, "init_module_"):
        reinit(clone, generator)
    else:
        from deepstart.init import apply_  # the init engineer's contract

        apply_(clone, reinit, generator=generator)


def _replace_first(out, t, new):
    if out is t:
        return new
    if isinstance(out, (tuple, list)):
        items = list(out)
        for i, item in enumerate(items):
            if item is t:
                items[i] = new
                return type(out)(items) if isinstance(out, list) else tuple(items)
    if isinstance(out, dict):
        for k, item in out.items():
            if item is t:
                return {**out, k: new}
    return None


def _per_sample_sq(t: torch.Tensor, batch: int, mean: bool = True) -> torch.Tensor:
    """‖t_b‖²/numel per sample (``mean``) or ‖t_b‖² (for gradients)."""
    if t.ndim >= 1 and t.shape[0] == batch:
        sq = t.double().pow(2).reshape(batch, -1)
        return sq.mean(1) if mean else sq.sum(1)
    return (t.double().pow(2).mean() if mean else t.double().pow(2).sum() / batch).expand(batch)


def _dead(t: torch.Tensor) -> torch.Tensor:
    if t.ndim >= 2:
        dims = (0, *range(2, t.ndim))
        return (t.abs().amax(dim=dims) == 0).double().mean()
    return (t == 0).double().mean()


def run_inits(model, sites, args, kwargs, stacked, loss, cotangent, batch) -> Raw:
    """Measure all sites for every stacked initialization (see the module docstring)."""
    lookup = {(s.measure_name, s.measure_call_no): j for j, s in enumerate(sites)}
    state = {"counts": {}, "seen": {}, "eps": None}
    modules = dict(model.named_modules())
    n_sites = len(sites)

    def hook_for(name):
        def hook(module, inputs, out):
            k = state["counts"].get(name, 0)
            state["counts"][name] = k + 1
            j = lookup.get((name, k))
            t = first_tensor(out) if j is not None else None
            if t is None:
                return None
            state["seen"][j] = t
            return _replace_first(out, t, t + state["eps"][j])
        return hook

    def loss_of(out):
        if loss is not None:
            return loss(out)
        return sum((u * o).sum() for u, o in zip(cotangent, _float_tensors(out)))

    def forward(pb, eps):
        state.update(counts={}, seen={}, eps=eps)
        out = torch.func.functional_call(model, pb, args, kwargs)
        value = loss_of(out)
        seen = [state["seen"].get(j) for j in range(n_sites)]
        sq = torch.stack([_per_sample_sq(t, batch) for t in seen]) if n_sites else torch.zeros(0, batch)
        dead = torch.stack([_dead(t) for t in seen]) if n_sites else torch.zeros(0)
        return value, (sq.detach(), dead.detach())

    p0 = next(iter(model.parameters()), None)
    device = p0.device if p0 is not None else None
    eps0 = [torch.zeros(s.shape, dtype=_dtype(model), device=device) for s in sites]
    names = sorted({s.measure_name for s in sites})
    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        try:
            sq, g, dead = _vmapped(forward, stacked, eps0, batch)
            path = "vmap"
        except Exception:  # noqa: BLE001 - any transform failure falls back to the plain loop below
            sq, g, dead = _looped(forward, stacked, eps0, batch)
            path = "loop"
    finally:
        for h in handles:
            h.remove()
    return Raw(sq.transpose(1, 2).cpu().numpy(), g.transpose(1, 2).cpu().numpy(), dead.cpu().numpy(), path)


def _grad_norms(grads, batch):
    if not grads:
        return torch.zeros(0, batch, dtype=torch.float64)
    return torch.stack([_per_sample_sq(g, batch, mean=False) for g in grads])


def _vmapped(forward, stacked, eps0, batch):
    def per_init(pb):
        grads, (sq, dead) = torch.func.grad(forward, argnums=1, has_aux=True)(pb, eps0)
        return sq, _grad_norms(grads, batch), dead

    return torch.func.vmap(per_init, randomness="different")(stacked)


def _looped(forward, stacked, eps0, batch):
    n = next(iter(stacked.values())).shape[0] if stacked else 1
    out = []
    for i in range(n):
        pb = {k: v[i] for k, v in stacked.items()}
        eps = [e.clone().requires_grad_(True) for e in eps0]
        with torch.enable_grad():
            value, (sq, dead) = forward(pb, eps)
            grads = torch.autograd.grad(value, eps, allow_unused=True) if eps else []
        grads = [torch.zeros_like(e) if g is None else g for g, e in zip(grads, eps0)]
        out.append((sq, _grad_norms(grads, batch), dead))
    return tuple(torch.stack(parts) for parts in zip(*out))


def _float_tensors(out):
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _float_tensors(item)]
    return []


def _dtype(model):
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.get_default_dtype()
