"""Fan-in and fan-out of PyTorch weight tensors: the ONLY place deepstart computes fans.

Layouts (PyTorch's own), with ``k`` the kernel size(s) and ``g`` the number of groups:

* ``"linear"``: ``nn.Linear.weight`` is ``[out, in]`` → fan_in = in, fan_out = out;
* ``"conv"``: ``nn.ConvNd.weight`` is ``[out, in/g, *k]`` → fan_in = (in/g)·∏k, fan_out = (out/g)·∏k;
* ``"conv_transpose"``: ``nn.ConvTransposeNd.weight`` is ``[in, out/g, *k]`` → fan_in = (in/g)·∏k,
  fan_out = (out/g)·∏k (stride 1; a stride s divides the average count by s^d, which we ignore, as
  ``torch.nn.init`` does);
* ``"auto"``: 2-D tensors as linear, ≥ 3-D as conv (what ``torch.nn.init`` does).

Fan-in is the number of inputs summed into one output unit, the ``n`` of every formula in THEORY.md. With
``groups=1`` and the conv layout the result equals ``torch.nn.init._calculate_fan_in_and_fan_out``; it differs
for grouped convs' fan_out and for transposed convs, where PyTorch reads the axes as ``[out, in]``.
"""
from __future__ import annotations

import math

__all__ = ["LAYOUTS", "compute_fans", "layout_of"]

LAYOUTS = ("auto", "linear", "conv", "conv_transpose")


def _shape_of(tensor_or_shape) -> tuple[int, ...]:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"expected a tensor or a shape (sequence of ints), got {tensor_or_shape!r}") from None


def compute_fans(tensor_or_shape, layout: str = "auto", *, groups: int = 1) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight tensor (or shape) in one of PyTorch's layouts.

    Args:
        tensor_or_shape: a tensor or its shape.
        layout: one of :data:`LAYOUTS` (see the module docstring).
        groups: the module's ``groups`` (convolutions only); divides the axis that holds all groups' channels.

    Raises:
        ValueError: fewer than 2 dimensions (fans undefined: biases and 1-D scales have none; use
            ``torch.nn.init.zeros_``/``normal_`` with an explicit std), an unknown ``layout``, or ``groups`` that
            does not divide the channel axis.

    Example:
        >>> compute_fans((64, 3, 3, 3))
        (27, 576)
        >>> compute_fans((16, 8, 3, 3), layout="conv_transpose")
        (144, 72)
    """
    shape = _shape_of(tensor_or_shape)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid choices: {', '.join(LAYOUTS)}")
    if len(shape) < 2:
        raise ValueError(f"fans are undefined for a tensor of shape {shape} (fewer than 2 dimensions); "
                         "initialize biases and 1-D parameters with torch.nn.init.zeros_/normal_ and an explicit std, "
                         "or reshape the weight to [out, in, ...] first")
    if layout == "linear" and len(shape) != 2:
        raise ValueError(f"layout 'linear' needs a 2-D [out, in] tensor, got shape {shape}; use layout='conv'")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or shape[0] % groups:
        raise ValueError(f"groups={groups!r} must be a positive int dividing the first axis ({shape[0]}) of {shape}")
    receptive = math.prod(shape[2:])
    if layout == "conv_transpose":
        return shape[0] // groups * receptive, shape[1] * receptive
    return shape[1] * receptive, shape[0] // groups * receptive


def layout_of(module) -> str:
    """The weight layout of a module: ``"conv_transpose"`` for ``nn.ConvTransposeNd``, ``"conv"`` for other
    convolutions, ``"auto"`` otherwise."""
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "conv_transpose"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    return "auto"
