"""Exact input-output Jacobians: a fast path for sequential stacks, and batched jvp/vjp for anything else.

For ``nn.Sequential`` of Linear/Conv layers, pointwise activations and reshapes, the Jacobian at ``x`` is
``J = D_L W_L ⋯ D_1 W_1`` (Pennington, Schoenholz & Ganguli 2017, eq. 2), with ``D_l = diag φ'(h^l)``. The fast
path stores ``D_l`` in one forward pass and then multiplies out the product in whichever direction is cheaper:
forward (the ``n_in × n_in`` identity pushed through the stack as a batch of tangents: a Linear layer is one
matmul, a conv layer one batched convolution without bias, so padding modes, strides and groups are the module's
own, an activation one row scaling) when ``n_in ≤ n_out``, else reverse (the ``n_out × n_out`` identity pulled back
as a batch of cotangents: ``u ↦ u W`` for Linear, the adjoint convolution for conv). Everything else uses
``torch.func.jacfwd`` or ``jacrev``, whichever needs fewer passes.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

__all__ = ["exact_jacobian", "flat_function", "forward_ad_quietly", "is_fast_sequential", "sequential_jacobian",
           "sequential_tangent_map", "sequential_cotangent_map", "flat_chain_maps"]

_LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_RESHAPE_TYPES = (nn.Flatten, nn.Unflatten, nn.Identity)
_POINTWISE_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
                    nn.SiLU, nn.Mish, nn.Tanh, nn.Hardtanh, nn.Sigmoid, nn.Hardsigmoid, nn.Hardswish, nn.Softplus,
                    nn.Softsign, nn.Tanhshrink, nn.LogSigmoid)


def _is_pointwise(module: nn.Module) -> bool:
    if isinstance(module, nn.RReLU):  # random slope in training mode
        return not module.training
    if isinstance(module, nn.PReLU):  # one slope per channel is still pointwise, but only if shared
        return module.weight.numel() == 1
    return isinstance(module, _POINTWISE_TYPES)


def is_fast_sequential(model: nn.Module) -> bool:
    """True when ``model`` is an ``nn.Sequential`` (nested allowed) of Linear/Conv, pointwise activations and
    Flatten/Unflatten/Identity only."""
    if not isinstance(model, nn.Sequential):
        return False
    for module in model:
        if isinstance(module, nn.Sequential):
            if not is_fast_sequential(module):
                return False
        elif not (isinstance(module, _LINEAR_TYPES + _RESHAPE_TYPES) or _is_pointwise(module)):
            return False
    return True


def _layers(model: nn.Sequential):
    for module in model:
        if isinstance(module, nn.Sequential):
            yield from _layers(module)
        else:
            yield module


def _pointwise_derivative(module: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ(h), φ'(h)) for a pointwise activation module, by autograd on the single input."""
    with torch.enable_grad():
        h = h.detach().requires_grad_(True)
        y = module(h)
        (d,) = torch.autograd.grad(y.sum(), h)
    return y.detach(), d


def _linear_part(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """The layer's map without its bias, applied to a batch of tangents."""
    if isinstance(module, nn.Linear):
        return nn.functional.linear(t, module.weight)
    return module._conv_forward(t, module.weight, None)


def sequential_tangent_map(model: nn.Sequential, x: torch.Tensor):
    """Forward-mode linearization of a fast sequential stack at ``x`` (batch dimension 1).

    One pass stores ``D_l = φ'(h^l)``; the returned function maps a batch of tangents ``[b, *x.shape[1:]]`` to
    ``J t`` as ``[b, n_out]`` with one batched layer call per layer and no autograd (the forward primal is not
    recomputed, unlike ``torch.func.jvp``).
    """
    # Tangents of flat (1-D per example) activations are kept as columns [n, b], so a Linear layer is the plain
    # product W t with W as stored ([out, in]): no transposed operand, no copy of W. Conv and reshape layers work
    # batch first [b, *shape]; the layout switches where they meet (one copy of the tangent batch).
    ops = []
    a = x
    with torch.no_grad():
        for module in _layers(model):
            flat = a.dim() == 2
            if isinstance(module, nn.Linear) and flat:
                ops.append(("cols", lambda t, w=module.weight: w @ t))
            elif isinstance(module, _LINEAR_TYPES):
                ops.append(("rows", lambda t, m=module: _linear_part(m, t)))
            elif isinstance(module, _RESHAPE_TYPES):
                ops.append(("rows", module))
            else:
                h = a
                a, d = _pointwise_derivative(module, h)
                ops.append(("any", (d, d.reshape(-1, 1) if flat else None)))
                continue
            a = module(a)

    def push(t: torch.Tensor) -> torch.Tensor:
        b = t.shape[0]
        cols = False
        with torch.no_grad():
            for kind, op in ops:
                if kind == "any":
                    t = t * (op[1] if cols else op[0])
                elif kind == "cols":
                    if not cols:
                        t, cols = t.reshape(b, -1).T.contiguous(), True
                    t = op(t)
                else:
                    if cols:
                        t, cols = t.T.contiguous(), False
                    t = op(t)
        return t.T if cols else t.reshape(b, -1)

    return push


def _adjoint(module: nn.Module, in_shape: tuple):
    """``u ↦ u A`` for the bias-free linear map ``A`` of a Linear/Conv layer whose input is ``[1, *in_shape]``."""
    if isinstance(module, nn.Linear):
        return lambda u: u @ module.weight
    cache: dict = {}

    def pull(u: torch.Tensor) -> torch.Tensor:  # the adjoint convolution (handles padding modes, stride, groups)
        b = u.shape[0]
        if b not in cache:
            zeros = torch.zeros(b, *in_shape, dtype=u.dtype, device=u.device)
            cache[b] = torch.func.vjp(lambda t: _linear_part(module, t), zeros)[1]
        return cache[b](u)[0]

    return pull


def sequential_cotangent_map(model: nn.Sequential, x: torch.Tensor):
    """Reverse-mode linearization of a fast sequential stack at ``x`` (batch dimension 1).

    One pass stores ``D_l = φ'(h^l)``; the returned function maps a batch of cotangents ``[b, n_out]`` to
    ``uᵀ J`` as ``[b, *x.shape[1:]]``: ``u ↦ u D_l`` then ``u ↦ u W_l`` (the adjoint convolution for conv layers),
    from the last layer to the first, without recomputing the forward pass.
    """
    ops = []
    a = x
    with torch.no_grad():
        for module in _layers(model):
            shape = tuple(a.shape[1:])
            if isinstance(module, _LINEAR_TYPES):
                ops.append(_adjoint(module, shape))
                a = module(a)
            elif isinstance(module, _RESHAPE_TYPES):
                ops.append(lambda u, shape=shape: u.reshape(u.shape[0], *shape))
                a = module(a)
            else:
                a, d = _pointwise_derivative(module, a)
                ops.append(lambda u, d=d: u * d)
        out_shape = tuple(a.shape[1:])

    def pull(u: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            u = u.reshape(u.shape[0], *out_shape)
            for op in reversed(ops):
                u = op(u)
        return u

    return pull


COMPACT_FRACTION = 0.75  # a layer boundary whose derivative is zero on ≥ 1/4 of its units is compacted


def _flat_chain(model: nn.Sequential, x: torch.Tensor):
    """``(d0, [(W_l, d_l)])`` when every layer of ``model`` maps flat activations ``[1, n]`` to flat activations
    and is a Linear layer, a pointwise activation or a flat no-op (Identity, Flatten): ``J = D_m W_m ⋯ D_1 W_1 D_0``
    with ``d_l`` the product of the derivatives of the activations after Linear layer ``l`` (``None`` when there is
    none). ``None`` for any other stack."""
    if x.dim() != 2:
        return None
    d0, stages = None, []
    a = x
    with torch.no_grad():
        for module in _layers(model):
            if isinstance(module, nn.Linear):
                stages.append([module.weight, None])
                a = module(a)
            elif isinstance(module, (nn.Identity, nn.Flatten)):
                a = module(a)
            elif _is_pointwise(module):
                a, d = _pointwise_derivative(module, a)
                d = d.reshape(-1, 1)
                if stages:
                    stages[-1][1] = d if stages[-1][1] is None else stages[-1][1] * d
                else:
                    d0 = d if d0 is None else d0 * d
            else:
                return None
            if a.dim() != 2:
                return None
    return d0, stages


def _support(d: torch.Tensor | None, compact: float) -> torch.Tensor | None:
    """Indices where ``d ≠ 0`` if they are at most ``compact`` of its entries, else ``None`` (keep all)."""
    if d is None or compact <= 0:
        return None
    idx = torch.nonzero(d[:, 0]).reshape(-1)
    return idx if idx.numel() <= compact * d.shape[0] else None


def flat_chain_maps(model: nn.Sequential, x: torch.Tensor, compact: float = COMPACT_FRACTION):
    """Matrix-free ``J``, ``Jᵀ`` and both Gram operators of a flat chain (see :func:`_flat_chain`) at ``x``, as
    plain GEMMs on blocks of columns, or ``None`` when ``model`` is not a flat chain.

    Returns a dict of functions on column blocks: ``"jv"``: ``[n_in, b] -> [n_out, b]``, ``"jtu"``:
    ``[n_out, b] -> [n_in, b]``, ``"jtj"``: ``V ↦ JᵀJ V`` and ``"jjt"``: ``U ↦ JJᵀ U``; and ``"shapes"``, the
    shapes of the matrices multiplied per layer (the work of one pass). ``J = D_m W_m ⋯ D_1 W_1 D_0``
    (Pennington, Schoenholz & Ganguli 2017, eq. 2) is applied as ``t ↦ d_l ⊙ (W_l t)`` and ``Jᵀ`` as
    ``u ↦ W_lᵀ (d_l ⊙ u)``: one ``[n, n] × [n, b]`` product per layer with ``W`` as stored (Wᵀ a view), no
    autograd. Where an activation's derivative vanishes on many units (ReLU: about half), those units carry
    nothing in either direction, so a boundary whose support is at most ``compact`` of its units is dropped to its
    support once, here, and the layers touching it use the submatrix ``W_l[S_l, S_{l−1}]`` (for ReLU about a
    quarter of ``W``); the Gram operators stay in these compact coordinates from end to end. The products are
    those of the full chain with the exact zeros left out. Memory: the submatrices are copies (at most
    ``compact`` of each weight they come from); ``compact=0`` keeps every boundary whole and copies nothing.
    """
    chain = _flat_chain(model, x)
    if chain is None:
        return None
    d0, stages = chain
    idx0 = _support(d0, compact)
    n_in, n_out = x.shape[1], (stages[-1][0].shape[0] if stages else x.shape[1])
    ops, prev = [], idx0
    with torch.no_grad():
        for w, d in stages:
            idx = _support(d, compact)
            if idx is not None and prev is not None:  # one gather (cheaper than rows, then columns)
                w = w[idx[:, None], prev]
            elif idx is not None:
                w = w.index_select(0, idx)
            elif prev is not None:
                w = w.index_select(1, prev)
            if idx is not None:
                d = d.index_select(0, idx)
            ops.append((w, d))
            prev = idx
    idx_out = prev if stages else idx0
    d0c = None if d0 is None else (d0 if idx0 is None else d0.index_select(0, idx0))

    def gather(t, idx):
        return t if idx is None else t.index_select(0, idx)

    def scatter(t, idx, n):
        if idx is None:
            return t
        return t.new_zeros(n, t.shape[1]).index_copy_(0, idx, t)

    def scale0(t):
        return t if d0c is None else t * d0c

    def fwd(t):  # interface 0 (compact, D_0 applied) -> output interface (compact)
        for w, d in ops:
            t = w @ t
            if d is not None:
                t = t * d
        return t

    def bwd(t):  # output interface (compact) -> interface 0 (compact, D_0 not yet applied)
        for w, d in reversed(ops):
            if d is not None:
                t = t * d
            t = w.T @ t
        return t

    def jv(v):
        with torch.no_grad():
            return scatter(fwd(scale0(gather(v, idx0))), idx_out, n_out)

    def jtu(u):
        with torch.no_grad():
            return scatter(scale0(bwd(gather(u, idx_out))), idx0, n_in)

    def jtj(v):
        with torch.no_grad():
            return scatter(scale0(bwd(fwd(scale0(gather(v, idx0))))), idx0, n_in)

    def jjt(u):
        with torch.no_grad():
            return scatter(fwd(scale0(scale0(bwd(gather(u, idx_out))))), idx_out, n_out)

    return {"jv": jv, "jtu": jtu, "jtj": jtj, "jjt": jjt, "shapes": [tuple(w.shape) for w, _ in ops]}


def sequential_jacobian(model: nn.Sequential, x: torch.Tensor, mode: str = "auto") -> torch.Tensor:
    """Jacobian ``[n_out, n_in]`` of a fast sequential stack at a single input ``x`` (batch dimension 1), as dense
    products: ``mode="forward"`` pushes the ``n_in`` identity tangents, ``"reverse"`` pulls back the ``n_out``
    identity cotangents, ``"auto"`` picks the smaller batch (the cost of each is proportional to its batch)."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"mode={mode!r} is not one of ('auto', 'forward', 'reverse')")
    n_in = x[0].numel()
    if mode == "auto":
        with torch.no_grad():
            n_out = model(x).numel()
        mode = "forward" if n_in <= n_out else "reverse"
    if mode == "forward":
        eye = torch.eye(n_in, dtype=x.dtype, device=x.device).reshape(n_in, *x.shape[1:])
        return sequential_tangent_map(model, x)(eye).T
    pull = sequential_cotangent_map(model, x)
    with torch.no_grad():
        n_out = model(x).numel()
    eye = torch.eye(n_out, dtype=x.dtype, device=x.device)
    return pull(eye).reshape(n_out, n_in)


@contextlib.contextmanager
def forward_ad_quietly():
    """Silence the DeprecationWarning torch 2.x emits (once, from its own ``torch.jit.script`` use in
    ``torch/_decomp/decompositions_for_jvp.py``) the first time forward-mode AD runs; nothing else is hidden."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is", category=DeprecationWarning)
        yield


def flat_function(model: nn.Module, x: torch.Tensor):
    """``f(v) = model(v.reshape(x.shape)).reshape(-1)`` and the flat input ``x.reshape(-1)``."""
    shape = x.shape

    def f(v: torch.Tensor) -> torch.Tensor:
        return model(v.reshape(shape)).reshape(-1)

    return f, x.reshape(-1)


def exact_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Dense Jacobian ``[n_out, n_in]`` of ``model`` at ``x`` and the path used: ``"sequential"`` (fast path,
    forward: n_in ≤ n_out) or ``"sequential-reverse"`` (fast path, reverse), else ``"jacfwd"`` (n_in ≤ n_out: one
    jvp per input direction) or ``"jacrev"`` (one vjp per output)."""
    f, v = flat_function(model, x)
    if is_fast_sequential(model):
        with torch.no_grad():
            n_out = f(v).numel()
        if v.numel() <= n_out:
            return sequential_jacobian(model, x, "forward"), "sequential"
        return sequential_jacobian(model, x, "reverse"), "sequential-reverse"
    with torch.no_grad(), forward_ad_quietly():
        n_out = f(v).numel()
        if v.numel() <= n_out:
            return torch.func.jacfwd(f)(v), "jacfwd"
        return torch.func.jacrev(f)(v), "jacrev"
