"""``apply_(model, scheme)``: initialize a model's layers with one scheme and return what was done."""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from deepstart.init.record import InitRecord
from deepstart.init.schemes import parse_scheme

__all__ = ["apply_", "DEFAULT_MODULES", "BIAS_POLICIES"]

DEFAULT_MODULES = (nn.Linear, nn.modules.conv._ConvNd)
BIAS_POLICIES = ("zeros", "keep")


def _has_matrix_weight(module: nn.Module) -> bool:
    w = module._parameters.get("weight")
    return isinstance(w, torch.Tensor) and w.dim() >= 2


def _matcher(include):
    """Turn ``include`` into a predicate ``(name, module) -> bool``."""
    if include is None:
        return lambda name, module: isinstance(module, DEFAULT_MODULES)
    if isinstance(include, str):
        pattern = re.compile(include)
        return lambda name, module: bool(pattern.search(name))
    if isinstance(include, type) or (isinstance(include, tuple) and all(isinstance(t, type) for t in include)):
        return lambda name, module: isinstance(module, include)
    if callable(include):
        return lambda name, module: bool(include(name, module))
    raise TypeError(f"include={include!r} must be None (Linear and conv layers), a regex on module names, "
                    "a module type or tuple of types, or a callable (name, module) -> bool")


def _check_bias(bias):
    if isinstance(bias, str):
        if bias not in BIAS_POLICIES:
            raise ValueError(f"unknown bias policy {bias!r}; valid: {', '.join(BIAS_POLICIES)} or a float std >= 0")
        return bias
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not (math.isfinite(bias) and bias >= 0):
        raise ValueError(f"bias={bias!r}: valid choices are {', '.join(BIAS_POLICIES)} or a finite float std >= 0")
    return float(bias)


def apply_(model: nn.Module, scheme, *, include=None, bias="zeros",
           generator: torch.Generator | None = None) -> InitRecord:
    """Initialize ``model`` in place with ``scheme``; return an :class:`~deepstart.init.InitRecord`.

    Walks ``model.named_modules()`` once and touches only modules that own a ≥ 2-D ``weight`` parameter and match
    ``include``; every other parameter (norm layers, embeddings unless included, ...) is left alone.

    Args:
        model: any ``nn.Module``.
        scheme: a :class:`~deepstart.init.Scheme` or its text, e.g. ``"he"``,
            ``"fractional-moment(s=0.8, activation=relu)"``, ``"critical(activation=tanh, q_star=1/64)"``.
        include: None (``nn.Linear`` and all convolutions), a regex searched in module names, a module type (or
            tuple), or a callable ``(name, module) -> bool``.
        bias: ``"zeros"`` (zero, unless the scheme prescribes a bias law: ``critical`` draws N(0, σ_b²),
            ``pytorch-default`` keeps the module's own), ``"keep"`` (untouched), or a float σ_b (N(0, σ_b²) for all).
        generator: the only source of randomness; the same seed gives the same model whatever the global RNG.

    Example:
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        >>> rec = apply_(net, "he", generator=torch.Generator().manual_seed(0))
        >>> rec.names
        ('0.weight', '0.bias', '2.weight', '2.bias')
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"apply_ expects an nn.Module, got {type(model).__name__}")
    scheme = parse_scheme(scheme)
    bias = _check_bias(bias)
    match = _matcher(include)
    seen, modules = set(), []
    for name, module in model.named_modules():
        if _has_matrix_weight(module) and match(name, module) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            modules.append((name, module))
    with torch.no_grad():
        entries = scheme.apply_to_(modules, bias=bias, generator=generator, model=model)
    return InitRecord(scheme.id, tuple(entries))
