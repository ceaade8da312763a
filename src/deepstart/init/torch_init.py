"""``torch.nn.init``'s names on deepstart's one core: Kaiming, Xavier, ``trunc_normal_``, ``calculate_gain``.

Same signatures, defaults and laws as ``torch.nn.init`` (so ``from deepstart.init import kaiming_normal_`` is a
drop-in), and for Kaiming/Xavier the same tensors for the same ``generator`` seed: each is one call of
:func:`deepstart.init.variance_scaling_` with ``gain=`` (which rounds the std as torch does). What deepstart adds:

* keyword-only ``layout=``/``groups=`` (:mod:`deepstart.init.fans`): Hugging Face ``Conv1D`` (``[in, out]``,
  ``layout="linear_transposed"``), embeddings (fan_in = 1), transposed and grouped convs get their true fans, where
  ``torch.nn.init`` reads every tensor as ``[out, in, *k]`` (and asks you to pass ``w.T`` for ``x @ w`` layers);
* errors that name the bad value and list the valid ones (an unknown ``nonlinearity`` lists torch's names);
* a ``UserWarning`` with "zero-element" on empty tensors for all of them (torch warns only for Kaiming).

Kaiming: He et al. 2015, "Delving deep into rectifiers", eq. 10 (forward, fan_in) and eq. 14 (backward, fan_out),
with the PReLU / leaky ReLU slope a of eq. 15: var = 2/((1 + a²)·fan). Xavier: Glorot & Bengio 2010, eq. 12 / 16:
var = gain²·2/(fan_in + fan_out).
"""
from __future__ import annotations

import math

import torch

from deepstart.init.tensor import check_choice, is_empty, variance_scaling_

__all__ = ["NONLINEARITIES", "gain_var", "calculate_gain", "kaiming_normal_", "kaiming_uniform_", "xavier_normal_",
           "xavier_uniform_", "trunc_normal_"]

# torch.nn.init.calculate_gain's names (torch 2.x), in its order
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                  "sigmoid", "tanh", "relu", "leaky_relu", "selu")
KAIMING_MODES = ("fan_in", "fan_out")


def _number(name: str, value, advice: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number ({advice})")
    return float(value)


def gain_var(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """The square of :func:`calculate_gain`, in closed form: the ``scale`` of variance scaling (var = scale/fan).

    1 for linear layers, convolutions and sigmoid; 25/9 for tanh (gain 5/3); 2 for relu (He et al. 2015, eq. 10);
    2/(1 + a²) for leaky_relu with slope a = ``param`` (default 0.01, as torch; He et al. 2015, eq. 15); 9/16 for selu
    (gain 3/4, torch's empirical value; use ``linear`` for self-normalizing nets, Klambauer et al. 2017).
    """
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid choices: {', '.join(NONLINEARITIES)} "
                         "(torch.nn.functional names; for activations without a gain use lecun / critical schemes)")
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else _number("negative_slope", param, "the leaky ReLU slope, e.g. 0.2")
        return 2.0 / (1 + a**2)
    return {"tanh": 25 / 9, "relu": 2.0, "selu": 9 / 16}.get(nonlinearity, 1.0)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain``: √:func:`gain_var` (equal to torch's values to the last bit).

    Example:
        >>> calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain("leaky_relu", 0.2)
        True
    """
    return math.sqrt(gain_var(nonlinearity, param))


def _kaiming_mode(mode) -> str:
    mode = mode.lower() if isinstance(mode, str) else mode  # torch lower-cases it too
    if mode == "fan_avg":
        raise ValueError("unknown mode 'fan_avg' for Kaiming; valid choices: fan_in, fan_out (for fan_avg use "
                         "xavier_normal_/xavier_uniform_ or variance_scaling_(tensor, scale, 'fan_avg'))")
    check_choice("mode", mode, KAIMING_MODES)
    return mode


def _kaiming_(tensor, a, mode, nonlinearity, distribution, generator, layout, groups, name):
    if is_empty(tensor, name):
        return tensor
    gain = calculate_gain(nonlinearity, a)
    return variance_scaling_(tensor, 1.0, _kaiming_mode(mode), distribution, gain=gain, generator=generator,
                             layout=layout, groups=groups)


def kaiming_normal_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None, *, layout: str = "auto",
                    groups: int = 1) -> torch.Tensor:
    """He et al. 2015: N(0, std²) with std = gain/√fan_mode, gain = :func:`calculate_gain` (nonlinearity, a).

    ``a`` is the negative slope of the leaky ReLU/PReLU that follows the layer (used only with
    ``nonlinearity="leaky_relu"``, the default; a = 0 is ReLU: var 2/fan_in). ``mode="fan_in"`` keeps forward
    lengths, ``"fan_out"`` backward ones. Weight layout: ``nn.Linear`` is ``[out, in]``, ``nn.Conv2d``
    ``[out, in/groups, k, k]``; for Hugging Face ``Conv1D`` (``[in, out]``) pass ``layout="linear_transposed"``
    instead of torch's ``w.T`` (see :func:`deepstart.init.layout_of`).

    Example:
        >>> w = kaiming_normal_(torch.empty(256, 128), mode="fan_out", nonlinearity="relu",
        ...                     generator=torch.Generator().manual_seed(0))
        >>> torch.equal(w, torch.nn.init.kaiming_normal_(torch.empty(256, 128), mode="fan_out", nonlinearity="relu",
        ...                                              generator=torch.Generator().manual_seed(0)))
        True
    """
    return _kaiming_(tensor, a, mode, nonlinearity, "normal", generator, layout, groups, "kaiming_normal_")


def kaiming_uniform_(tensor: torch.Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: torch.Generator | None = None, *, layout: str = "auto",
                     groups: int = 1) -> torch.Tensor:
    """He et al. 2015: U(−bound, bound) with bound = gain·√(3/fan_mode) (same variance as :func:`kaiming_normal_`).

    ``nn.Linear``'s own default is ``kaiming_uniform_(w, a=√5)``: bound 1/√fan_in.
    """
    return _kaiming_(tensor, a, mode, nonlinearity, "uniform", generator, layout, groups, "kaiming_uniform_")


def xavier_normal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *,
                   layout: str = "auto", groups: int = 1) -> torch.Tensor:
    """Glorot & Bengio 2010, eq. 12: N(0, std²) with std = gain·√(2/(fan_in + fan_out)).

    Example:
        >>> w = xavier_normal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0))
        >>> torch.equal(w, torch.nn.init.xavier_normal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0)))
        True
    """
    if is_empty(tensor, "xavier_normal_"):
        return tensor
    return variance_scaling_(tensor, 1.0, "fan_avg", "normal", gain=gain, generator=generator, layout=layout,
                             groups=groups)


def xavier_uniform_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *,
                    layout: str = "auto", groups: int = 1) -> torch.Tensor:
    """Glorot & Bengio 2010, eq. 16: U(−a, a) with a = gain·√(6/(fan_in + fan_out))."""
    if is_empty(tensor, "xavier_uniform_"):
        return tensor
    return variance_scaling_(tensor, 1.0, "fan_avg", "uniform", gain=gain, generator=generator, layout=layout,
                             groups=groups)


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """N(mean, std²) conditioned on [a, b] (absolute bounds, as ``torch.nn.init.trunc_normal_``; its sampler, so the
    same seed gives torch's tensor). The result's std is below ``std``: 0.8796·std for the default ±2 (and
    ``std=1``); for a truncated normal *with* a given std use ``variance_scaling_(…, "truncated_normal")``.

    Raises:
        ValueError: ``std`` not > 0, a bound or the mean not finite, or ``a >= b``.
    """
    if is_empty(tensor, "trunc_normal_"):
        return tensor
    mean = _number("mean", mean, "the centre of the normal before truncation")
    std = _number("std", std, "the std of the normal before truncation, > 0")
    a = _number("a", a, "the lower bound, in the tensor's units (not in stds)")
    b = _number("b", b, "the upper bound, in the tensor's units (not in stds)")
    if std <= 0:
        raise ValueError(f"std={std!r} must be > 0 (for zeros use torch.nn.init.zeros_)")
    if a >= b:
        raise ValueError(f"a={a!r} must be below b={b!r} (absolute bounds, e.g. a=-2*std, b=2*std)")
    return torch.nn.init.trunc_normal_(tensor, mean, std, a, b, generator=generator)
