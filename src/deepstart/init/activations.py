"""Which activation follows each layer, and the negative slope He's law needs from it.

He et al. 2015, eq. 15: a layer feeding a PReLU / leaky ReLU of slope a keeps forward lengths with weight variance
2/((1 + a²)·fan_in). :func:`rectifier_slopes` finds a for every layer of a model; the ``he`` scheme uses it when
its ``a`` is left unset (``None``).

How the following activation is found: by module order. ``model.named_modules()`` lists modules in the order they
were registered, which for ``nn.Sequential`` (and most hand-written ``__init__`` s) is the order of ``forward``.
Walking the leaves in that order, the activation of a layer (a module with a ≥ 2-D ``weight``) is the first
activation module (any class of ``torch.nn.modules.activation`` except ``nn.MultiheadAttention``) met before the
next such layer; norm, dropout, pooling, reshaping and other leaves in between are passed over (Conv → BatchNorm →
LeakyReLU gives the conv the slope). Not seen, so slope 0 (ReLU, He's default): activations called in
``forward`` through ``torch.nn.functional``, a module reused at several places (it counts where it is registered),
and the activation after a residual sum registered before the branch's last layer. Pass ``he(a=…)`` for those.
"""
from __future__ import annotations

import math

import numpy as np
from torch import nn

from deepstart.init.fans import has_matrix_weight

__all__ = ["is_activation", "rectifier_slope", "following_activations", "rectifier_slopes"]


def is_activation(module: nn.Module) -> bool:
    """True for the activation modules of ``torch.nn`` (ReLU, LeakyReLU, PReLU, Tanh, GELU, ...)."""
    return type(module).__module__ == nn.modules.activation.__name__ and not isinstance(module, nn.MultiheadAttention)


def rectifier_slope(module: nn.Module) -> float | None:
    """The negative slope a of a rectifier module: ``nn.ReLU`` 0, ``nn.LeakyReLU`` its ``negative_slope``,
    ``nn.PReLU`` its current slope (its ``init`` value in a fresh net; the root mean square √mean(aᵢ²) over
    ``num_parameters`` > 1 channels, which is what 1 + a² averages to; to float32 precision); None for anything else."""
    if isinstance(module, nn.LeakyReLU):
        return float(module.negative_slope)
    if isinstance(module, nn.PReLU):  # the shortest text of its float32 value: init=0.3 gives 0.3, not 0.30000001
        return float(str(np.float32(math.sqrt(float(module.weight.detach().double().pow(2).mean())))))
    if isinstance(module, nn.ReLU):
        return 0.0
    return None


def following_activations(model: nn.Module) -> dict[int, nn.Module]:
    """``id(layer) -> activation module`` for every layer of ``model`` that an activation follows (module docstring)."""
    found, pending = {}, []
    for _, module in model.named_modules():
        if has_matrix_weight(module):
            pending = [module]
        elif is_activation(module):
            found.update((id(m), module) for m in pending)
            pending = []
    return found


def rectifier_slopes(model: nn.Module) -> dict[int, float]:
    """``id(layer) -> a`` for every layer of ``model`` followed by a leaky ReLU or PReLU (see the module docstring)."""
    slopes = {key: rectifier_slope(act) for key, act in following_activations(model).items()}
    return {key: a for key, a in slopes.items() if a}
