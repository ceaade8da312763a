"""Exact input-output Jacobians: a fast path for sequential stacks, and batched jvp/vjp for anything else.

For ``nn.Sequential`` of Linear/Conv layers, pointwise activations and reshapes, the Jacobian at ``x`` is
``J = D_L W_L ⋯ D_1 W_1`` (Pennington, Schoenholz & Ganguli 2017, eq. 2), with ``D_l = diag φ'(h^l)``. The fast
path pushes the identity through the stack as a batch of tangents: a Linear layer is one matmul, a conv layer one
batched convolution without bias (so padding modes, strides and groups are the module's own), an activation one
row scaling. Everything else uses ``torch.func.jacfwd`` or ``jacrev``, whichever needs fewer passes.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

__all__ = ["exact_jacobian", "flat_function", "forward_ad_quietly", "is_fast_sequential", "sequential_jacobian",
           "sequential_tangent_map"]

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
    ops = []
    a = x
    with torch.no_grad():
        for module in _layers(model):
            if isinstance(module, _LINEAR_TYPES):
                a = module(a)
                ops.append(lambda t, m=module: _linear_part(m, t))
            elif isinstance(module, _RESHAPE_TYPES):
                a = module(a)
                ops.append(module)
            else:
                a, d = _pointwise_derivative(module, a)
                ops.append(lambda t, d=d: t * d)

    def push(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for op in ops:
                t = op(t)
        return t.reshape(t.shape[0], -1)

    return push


def sequential_jacobian(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Jacobian ``[n_out, n_in]`` of a fast sequential stack at a single input ``x`` (batch dimension 1),
    accumulated left to right as dense products (forward mode with the identity as the tangent batch)."""
    n_in = x[0].numel()
    eye = torch.eye(n_in, dtype=x.dtype, device=x.device).reshape(n_in, *x.shape[1:])
    return sequential_tangent_map(model, x)(eye).T


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
    """Dense Jacobian ``[n_out, n_in]`` of ``model`` at ``x`` and the path used: ``"sequential"`` (fast path),
    ``"jacfwd"`` (n_in ≤ n_out: one jvp per input direction) or ``"jacrev"`` (one vjp per output)."""
    if is_fast_sequential(model):
        return sequential_jacobian(model, x), "sequential"
    f, v = flat_function(model, x)
    with torch.no_grad(), forward_ad_quietly():
        n_out = f(v).numel()
        if v.numel() <= n_out:
            return torch.func.jacfwd(f)(v), "jacfwd"
        return torch.func.jacrev(f)(v), "jacrev"
