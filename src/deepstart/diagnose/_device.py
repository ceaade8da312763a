"""Where the diagnostics run (``device=`` of ``check``, ``fix_`` and the Jacobian tools): one validated
``torch.device`` (:func:`deepstart._device.resolve_device`), the model and inputs on it, generators on it, RNG forks
that restore its state, TF32 off.

The user's model is never moved: when its parameters live elsewhere, the diagnostics run on a copy made directly on
the device (the copy's parameters are created there, so a model is never held twice on the host).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn

from deepstart._device import resolve_device

__all__ = ["resolve_device", "model_on", "to_device", "generator_on", "fork_rng", "full_precision"]


def _on(t: torch.Tensor, dev: torch.device) -> bool:
    return t.device.type == dev.type and (dev.index is None or t.device.index in (None, dev.index))


def model_on(model: nn.Module, dev: torch.device | None) -> nn.Module:
    """``model`` itself when all its parameters and buffers are on ``dev`` (or ``dev`` is None), else a copy whose
    parameters and buffers are made on ``dev`` (tied tensors stay tied; the given model is left where it is)."""
    tensors = [*model.parameters(), *model.buffers()]
    if dev is None or all(_on(t, dev) for t in tensors):
        return model
    memo = {}
    with torch.no_grad():
        for p in model.parameters():
            if id(p) not in memo:
                memo[id(p)] = nn.Parameter(p.detach().to(dev), requires_grad=p.requires_grad)
        for b in model.buffers():
            if id(b) not in memo:
                memo[id(b)] = b.detach().to(dev)
    return copy.deepcopy(model, memo)


def to_device(obj, dev: torch.device | None):
    """Tensors in a tensor / tuple / list / dict moved to ``dev`` (other values as they are)."""
    if dev is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(dev)
    if isinstance(obj, dict):
        return {k: to_device(v, dev) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, dev) for v in obj)
    return obj


def generator_on(generator: torch.Generator | None, dev: torch.device | None) -> torch.Generator | None:
    """``generator`` when it already draws on ``dev``'s kind of device, else a generator on ``dev`` seeded by one
    draw from it: draws then happen where they are used (no host-to-device copies inside loops)."""
    if dev is None or dev.type == "cpu" or (generator is not None and generator.device.type == dev.type):
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=dev).manual_seed(seed)


def fork_rng(dev: torch.device | None):
    """``torch.random.fork_rng`` over the CPU and ``dev``: global RNG states seeded inside are restored after."""
    if dev is None or dev.type == "cpu":
        return torch.random.fork_rng(devices=[])
    if dev.type == "cuda":
        return torch.random.fork_rng(devices=[dev.index if dev.index is not None else torch.cuda.current_device()],
                                     device_type="cuda")
    return torch.random.fork_rng(device_type=dev.type)


@contextmanager
def full_precision(dev: torch.device | None):
    """TF32 off for CUDA matmuls and convolutions inside (restored after): measured lengths and gradients are
    compared with float64 theory, and TF32's 10-bit mantissa would add ≈ 1e-3 relative error to each layer."""
    if dev is None or dev.type != "cuda":
        yield
        return
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    new_api = hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision")
    if new_api:
        saved = (matmul.fp32_precision, conv.fp32_precision)
        matmul.fp32_precision, conv.fp32_precision = "ieee", "ieee"
    else:
        saved = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, False
    try:
        yield
    finally:
        if new_api:
            matmul.fp32_precision, conv.fp32_precision = saved
        else:
            matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
