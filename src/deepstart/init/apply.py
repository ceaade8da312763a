"""``apply_(model, scheme)``: initialize a model's layers with one scheme and return what was done."""
from __future__ import annotations

import dataclasses
import math
import re

import torch
from torch import nn

from deepstart.init.fans import compute_fans, has_matrix_weight, is_transposed_linear, layout_of
from deepstart.init.record import InitRecord
from deepstart.init.schemes import init_bias_, parse_scheme

__all__ = ["apply_", "DEFAULT_MODULES", "BIAS_POLICIES"]

# matched by default, together with Hugging Face's Conv1D (recognised by deepstart.init.fans.is_transposed_linear)
DEFAULT_MODULES = (nn.Linear, nn.modules.conv._ConvNd, nn.Embedding)
BIAS_POLICIES = ("zeros", "keep")


def _is_default(module: nn.Module) -> bool:
    return isinstance(module, DEFAULT_MODULES) or is_transposed_linear(module)


def _matcher(include):
    """Turn ``include`` into a predicate ``(name, module) -> bool``."""
    if include is None:
        return lambda name, module: _is_default(module)
    if isinstance(include, str):
        pattern = re.compile(include)
        return lambda name, module: bool(pattern.search(name))
    if isinstance(include, type) or (isinstance(include, tuple) and all(isinstance(t, type) for t in include)):
        return lambda name, module: isinstance(module, include)
    if callable(include):
        return lambda name, module: bool(include(name, module))
    raise TypeError(f"include={include!r} must be None (Linear, conv, Embedding and Hugging Face Conv1D layers), "
                    "a regex on module names, "
                    "a module type or tuple of types, or a callable (name, module) -> bool")


def _check_bias(bias):
    if isinstance(bias, str):
        if bias not in BIAS_POLICIES:
            raise ValueError(f"unknown bias policy {bias!r}; valid: {', '.join(BIAS_POLICIES)} or a float std >= 0")
        return bias
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not (math.isfinite(bias) and bias >= 0):
        raise ValueError(f"bias={bias!r}: valid choices are {', '.join(BIAS_POLICIES)} or a finite float std >= 0")
    return float(bias)


def _targets(model: nn.Module, match) -> tuple[list, list]:
    """Split the matched modules, in ``named_modules()`` order, into those whose weight is met for the first time
    (initialized by the scheme) and those whose weight is tied to an earlier one (only their own bias is left)."""
    first, modules, tied = set(), [], []
    for name, module in model.named_modules():
        if has_matrix_weight(module) and match(name, module):
            key = id(module.weight)
            (tied if key in first else modules).append((name, module))
            first.add(key)
    return modules, tied


def _tied_biases(tied, modules, scheme, bias, generator) -> list:
    """Apply the bias policy to the not-yet-initialized biases of modules whose weight is tied (BERT's decoder)."""
    done = {id(getattr(m, "bias", None)) for _, m in modules}
    entries = []
    for name, module in tied:
        b = getattr(module, "bias", None)
        if isinstance(b, torch.Tensor) and id(b) not in done:
            done.add(id(b))
            fan_in = compute_fans(module.weight, layout_of(module), groups=int(getattr(module, "groups", 1)))[0]
            entry = init_bias_(module, scheme.bias_std(), bias, generator=generator, prefix=f"{name}." if name else "",
                               scheme=scheme.id, fan_in=fan_in)
            entries += [entry] if entry else []
    return entries


def _in_model_order(entries, model: nn.Module) -> tuple:
    """Entries sorted by their module's place in ``named_modules()`` (stable), each noting its tied aliases."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules(remove_duplicate=False))}
    params = dict(model.named_parameters(remove_duplicate=False))
    names = {}
    for name, p in params.items():
        names.setdefault(id(p), []).append(name)
    out = []
    for e in sorted(entries, key=lambda e: order.get(e.name.rpartition(".")[0], len(order))):
        aliases = [n for n in names.get(id(params.get(e.name)), ()) if n != e.name]
        if aliases:
            e = dataclasses.replace(e, note="; ".join(filter(None, (e.note, "tied: " + ", ".join(aliases)))))
        out.append(e)
    return tuple(out)


def apply_(model: nn.Module, scheme, *, include=None, bias="zeros",
           generator: torch.Generator | None = None) -> InitRecord:
    """Initialize ``model`` in place with ``scheme``; return an :class:`~deepstart.init.InitRecord`.

    Walks ``model.named_modules()`` once and touches only modules that own a ≥ 2-D ``weight`` parameter and match
    ``include``; every other parameter (norm layers, ...) is left alone. Fans come from
    :func:`~deepstart.init.layout_of` and :func:`~deepstart.init.compute_fans`, so each layer is read in its own
    layout: ``nn.Linear`` ``[out, in]``, convs, Hugging Face ``Conv1D`` (GPT-2) ``[in, out]``, embeddings.

    Embeddings (``nn.Embedding``, which Hugging Face models use): fan_in = 1, fan_out = dim, reading row i as the
    output for the one-hot input e_i (:mod:`deepstart.init.fans`). So ``lecun`` draws N(0, 1), PyTorch's own
    embedding default; ``he`` N(0, 2); ``glorot`` N(0, 2/(1 + dim)); ``variance-scaling(scale=1.0, mode=fan_out)``
    N(0, 1/dim), Flax's default; ``critical`` N(0, σ_w²) (the input layer of mean field: q¹ = σ_w² + σ_b²), and its
    orthogonal form the same per-entry variance; ``orthogonal`` a Haar table × gain; ``random-walk`` the gain at
    N = 1 (none exists for tanh: leave embeddings out with ``include=``). Row ``padding_idx`` is zeroed afterwards,
    whatever the scheme. Not fan rules, hence not reproduced: GPT-2 (Hugging Face) and nanoGPT draw embeddings with
    a fixed std 0.02; T-Fixup (Huang et al. 2020) draws std dim^-1/2 and rescales by (9N)^-1/4 for N decoder layers.

    ``he`` (alias ``kaiming``) with its slope ``a`` unset gives each layer that a ``nn.LeakyReLU``/``nn.PReLU`` follows
    the variance 2/((1 + a²)·fan) of that module's slope (He et al. 2015, eq. 15), recorded per entry as
    ``he(a=…)``; the following activation is found by module order (:mod:`deepstart.init.activations`).

    Tied weights (one ``nn.Parameter`` in several modules, e.g. GPT-2's ``lm_head.weight is
    transformer.wte.weight``) are initialized once, in the layout of the first matched module that owns them
    (GPT-2: the embedding), recorded once under that name with the other names in ``note`` (``"tied: lm_head.weight"``),
    and stay the same object. A later owner's own bias (BERT's decoder) still gets the ``bias`` policy.

    Args:
        model: any ``nn.Module``.
        scheme: a :class:`~deepstart.init.Scheme` or its text, e.g. ``"he"``,
            ``"fractional-moment(s=0.8, activation=relu)"``, ``"critical(activation=tanh, q_star=1/64)"``.
        include: None (``nn.Linear``, all convolutions, ``nn.Embedding`` and Hugging Face ``Conv1D``), a regex
            searched in module names, a module type (or tuple), or a callable ``(name, module) -> bool``.
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
    modules, tied = _targets(model, _matcher(include))
    with torch.no_grad():
        entries = scheme.apply_to_(modules, bias=bias, generator=generator, model=model)
        entries += _tied_biases(tied, modules, scheme, bias, generator)
    return InitRecord(scheme.id, _in_model_order(entries, model))
