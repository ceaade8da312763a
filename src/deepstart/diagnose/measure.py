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
    if w.size >= 64 and float(np.abs(w - w.mean()).max()) <= 3 ** 0.5 * float(w.std()) * 1.01:
        return "uniform"
    return "normal"


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


def _resample(p: torch.Tensor, family: str, n: int, generator, law=None, noise=None) -> torch.Tensor:
    """The tensor and n new draws of it, stacked (``[n + 1, *shape]``): draws from the family it was drawn from,
    keeping mean and std (orthogonal: scale); with a :class:`~deepstart.diagnose.law.Law`, normal/uniform draws
    use its mean and variance. ``noise``: pre-drawn N(0, 1) (normal) or U(0, 1) (uniform), ``[n, *p.shape]``."""
    shape = (n, *p.shape)
    if family in ("normal", "uniform"):
        mean, std = _mean_std(p, law)
        if noise is None:
            noise = (torch.randn if family == "normal" else torch.rand)(shape, generator=generator, dtype=p.dtype)
        a = 3 ** 0.5 * std
        draws = noise * std + mean if family == "normal" else noise * (2 * a) + (mean - a)
        return torch.cat([p.detach()[None], draws.to(p.device)])
    if family == "constant":
        return p.detach()[None].expand(n + 1, *p.shape).clone()
    from deepstart.init.orthogonal import haar_orthogonal  # orthogonal / delta_orthogonal

    w = p.detach().to("cpu", torch.float64)
    centre = (slice(None), slice(None), *(k // 2 for k in w.shape[2:]))
    core = w if family == "orthogonal" else w[centre]
    rows, cols = core.shape[0], int(core[0].numel())
    scale = (float((core.reshape(rows, -1) ** 2).sum()) / min(rows, cols)) ** 0.5
    mats = torch.stack([haar_orthogonal(rows, cols, generator=generator) for _ in range(n)]) * scale
    if family == "orthogonal":
        out = mats.reshape(shape)
    else:
        out = torch.zeros(shape, dtype=torch.float64)
        out[(slice(None), *centre)] = mats
    return torch.cat([p.detach()[None], out.to(p.device, p.dtype)])


def describe_reinit(reinit) -> str:
    if reinit is None or reinit == "resample":
        return "resample (each tensor redrawn from its own law: normal/uniform with the standard variance it " \
               "matches (deepstart.diagnose.law) or else its measured mean and std, Haar orthogonal or " \
               "delta-orthogonal with its scale; the given parameters are init 0)"
    if reinit == "reset":
        return "reset (the modules' own reset_parameters, seeded)"
    return f"scheme {getattr(reinit, 'id', reinit)} (deepstart.init.apply_, seeded)"


def stack_inits(model, n_inits: int, reinit, generator, laws=None, families=None) -> dict:
    """Parameter and buffer sets of ``n_inits`` initializations, stacked on a leading axis (name -> tensor).
    ``laws`` (name -> Law, resample only): the law each weight is redrawn from; ``families`` (name -> family):
    as :func:`infer_family` of the given parameters (computed when not given)."""
    laws = laws or {}
    state = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    if reinit is None or reinit == "resample":
        families = families if families is not None else {k: infer_family(v) for k, v in state.items()}
        stacked = _stack_resampled(state, families, laws, n_inits - 1, generator)
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


def _stack_resampled(state, families, laws, n, generator) -> dict:
    """``[n + 1, *shape]`` per tensor: the given one and n redraws. All normal (uniform) tensors of one dtype are
    drawn as one flat buffer, scaled by a per-entry std and shifted by a per-entry mean in one op each: a handful
    of tensor ops for the whole model instead of several per tensor."""
    stacked, groups = {}, {}
    for k, v in state.items():
        if families[k] in ("normal", "uniform") and v.is_floating_point():
            groups.setdefault((families[k], v.dtype, v.device), []).append(k)
        else:
            stacked[k] = _resample(v, families[k], n, generator, laws.get(k))
    for (family, dtype, device), keys in groups.items():
        sizes = [state[k].numel() for k in keys]
        buf = torch.empty((n + 1, sum(sizes)), dtype=dtype, device=device)
        draw = torch.randn if family == "normal" else torch.rand
        draw((n, sum(sizes)), generator=generator, dtype=dtype, device=device, out=buf[1:])
        affine = []  # (scale, shift) per tensor; runs of equal values are applied in one op
        for k in keys:
            mean, std = _mean_std(state[k], laws.get(k))
            a = 3 ** 0.5 * std
            affine.append((std, mean) if family == "normal" else (2 * a, mean - a))
        start = 0
        for i, size in enumerate(sizes):  # keys are in model order: equal laws are usually runs (one op each)
            if i + 1 == len(sizes) or affine[i + 1] != affine[i]:
                end = sum(sizes[:i + 1])
                scale, shift = affine[i]
                view = buf[1:, start:end]
                view.mul_(scale)
                if shift != 0.0:
                    view.add_(shift)
                start = end
        torch.cat([state[k].reshape(-1) for k in keys], out=buf[0])
        offset = 0
        for k, size in zip(keys, sizes):
            stacked[k] = buf[:, offset:offset + size].view(n + 1, *state[k].shape)
            offset += size
    return stacked


def _mean_std(p, law):
    if law is not None and law.var > 0:
        return law.mean, law.var ** 0.5
    w = as_numpy(p)
    return float(w.mean()), float(w.std(ddof=1)) if w.size > 1 else 0.0


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


def _grouped(tensors, fn):
    """``fn`` applied once per group of equal-shape tensors (stacked on a new leading axis), results returned in
    the original order: a few ops per distinct shape instead of several per site (hundreds in a deep net)."""
    groups = {}
    for j, t in enumerate(tensors):
        groups.setdefault((tuple(t.shape), t.dtype), []).append(j)
    order, parts = [], []
    for js in groups.values():
        order += js
        parts.append(fn(torch.stack([tensors[j] for j in js])))
    out = torch.cat(parts)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return out.index_select(0, inverse.to(out.device))


def _sq_stats(tensors, batch: int, mean: bool = True) -> torch.Tensor:
    """``[S, B]``: ‖t_b‖²/numel per sample (``mean``) or ‖t_b‖² (gradients), for each tensor t (float64)."""
    def fn(st):
        st = st.double()
        g = st.shape[0]
        if st.ndim >= 2 and st.shape[1] == batch:
            sq = st.pow(2).reshape(g, batch, -1)
            return sq.mean(2) if mean else sq.sum(2)
        sq = st.pow(2).reshape(g, -1)
        return (sq.mean(1) if mean else sq.sum(1) / batch)[:, None].expand(g, batch)
    return _grouped(tensors, fn) if tensors else torch.zeros(0, batch, dtype=torch.float64)


def _dead_stats(tensors) -> torch.Tensor:
    """``[S]``: fraction of units (axis 1: features / channels) that are exactly 0 for every input."""
    def fn(st):
        g = st.shape[0]
        if st.ndim >= 3:
            alive = st.ne(0).any(dim=1)  # over the batch -> [G, C, ...]
            if alive.ndim > 2:
                alive = alive.reshape(g, alive.shape[1], -1).any(dim=2)
            return 1.0 - alive.double().mean(1)
        return st.eq(0).double().reshape(g, -1).mean(1)
    return _grouped(tensors, fn) if tensors else torch.zeros(0, dtype=torch.float64)


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
        sq, dead = _sq_stats(seen, batch), _dead_stats(seen)
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
    return _sq_stats(list(grads), batch, mean=False)


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
