"""Fan-in and fan-out of PyTorch weight tensors: the ONLY place deepstart computes fans.

Layouts (PyTorch's own and Hugging Face's ``Conv1D``), with ``k`` the kernel size(s) and ``g`` the number of groups:

* ``"linear"``: ``nn.Linear.weight`` is ``[out, in]`` → fan_in = in, fan_out = out;
* ``"conv"``: ``nn.ConvNd.weight`` is ``[out, in/g, *k]`` → fan_in = (in/g)·∏k, fan_out = (out/g)·∏k;
* ``"conv_transpose"``: ``nn.ConvTransposeNd.weight`` is ``[in, out/g, *k]`` → fan_in = (in/g)·∏k,
  fan_out = (out/g)·∏k (stride 1; a stride s divides the average count by s^d, which we ignore, as
  ``torch.nn.init`` does);
* ``"linear_transposed"``: Hugging Face ``transformers.pytorch_utils.Conv1D`` (GPT-2's linear layer) stores
  ``weight`` as ``[in, out]`` (``y = x @ W + b``, ``nf`` = out) → fan_in = in = shape[0], fan_out = out = shape[1];
* ``"embedding"``: ``nn.Embedding.weight`` is ``[num_embeddings, dim]``; row i is the layer's output for the one-hot
  input e_i, so each output unit sums exactly one non-zero input → fan_in = 1 and each input feeds ``dim`` outputs →
  fan_out = dim. Hence LeCun gives N(0, 1), ``nn.Embedding``'s own default and the effective std of fairseq's
  Transformer (std dim^-1/2 times √dim in the forward pass, Vaswani et al. 2017, §3.4); He gives variance 2;
  ``variance-scaling(mode=fan_out)`` gives 1/dim, Flax's ``default_embed_init``. ``torch.nn.init`` instead reads
  the table as ``[out, in]`` (fan_in = dim), which treats the embedding width as the number of summed inputs;
* ``"auto"``: 2-D tensors as linear, ≥ 3-D as conv (what ``torch.nn.init`` does).

Fan-in is the number of inputs summed into one output unit, the ``n`` of every formula in THEORY.md. With
``groups=1`` and the conv layout the result equals ``torch.nn.init._calculate_fan_in_and_fan_out``; it differs
for grouped convs' fan_out, and for transposed convs, ``Conv1D`` and embeddings, where PyTorch reads the axes as
``[out, in]``.
"""
from __future__ import annotations

import math

__all__ = ["LAYOUTS", "compute_fans", "layout_of", "is_transposed_linear", "has_matrix_weight"]

LAYOUTS = ("auto", "linear", "conv", "conv_transpose", "linear_transposed", "embedding")
_MATRIX_LAYOUTS = {"linear": "[out, in]", "linear_transposed": "[in, out]", "embedding": "[num_embeddings, dim]"}


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
        >>> compute_fans((64, 192), layout="linear_transposed")  # GPT-2's c_attn: 64 in, 192 out
        (64, 192)
        >>> compute_fans((50257, 768), layout="embedding")
        (1, 768)
    """
    shape = _shape_of(tensor_or_shape)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid choices: {', '.join(LAYOUTS)}")
    if len(shape) < 2:
        raise ValueError(f"fans are undefined for a tensor of shape {shape} (fewer than 2 dimensions); "
                         "initialize biases and 1-D parameters with torch.nn.init.zeros_/normal_ and an explicit std, "
                         "or reshape the weight to [out, in, ...] first")
    if layout in _MATRIX_LAYOUTS and len(shape) != 2:
        raise ValueError(f"layout {layout!r} needs a 2-D {_MATRIX_LAYOUTS[layout]} tensor, got shape {shape}; "
                         "use layout='conv' for kernels")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or shape[0] % groups:
        raise ValueError(f"groups={groups!r} must be a positive int dividing the first axis ({shape[0]}) of {shape}")
    receptive = math.prod(shape[2:])
    if layout == "embedding":
        return 1, shape[1]
    if layout in ("conv_transpose", "linear_transposed"):
        return shape[0] // groups * receptive, shape[1] * receptive
    return shape[1] * receptive, shape[0] // groups * receptive


def is_transposed_linear(module) -> bool:
    """True for Hugging Face's ``Conv1D`` (GPT-2, GPT, ...), recognised without importing ``transformers``: a class
    named ``Conv1D`` with an int ``nf`` (out features) and a 2-D ``weight`` of shape ``[in, nf]``, and not an
    ``nn.Linear`` (which is ``[out, in]`` whatever its name)."""
    from torch import nn

    if isinstance(module, nn.Linear):
        return False
    weight = getattr(module, "weight", None)
    nf = getattr(module, "nf", None)
    return (type(module).__name__ == "Conv1D" and isinstance(nf, int) and not isinstance(nf, bool)
            and getattr(weight, "ndim", 0) == 2 and weight.shape[1] == nf)


def has_matrix_weight(module) -> bool:
    """True for a module that owns a ≥ 2-D ``weight`` parameter (a layer with fans; norms' 1-D scales are not)."""
    w = module._parameters.get("weight")
    return w is not None and getattr(w, "ndim", 0) >= 2


def layout_of(module) -> str:
    """The weight layout of a module: ``"conv_transpose"`` for ``nn.ConvTransposeNd``, ``"conv"`` for other
    convolutions, ``"embedding"`` for ``nn.Embedding``, ``"linear_transposed"`` for Hugging Face ``Conv1D``
    (:func:`is_transposed_linear`), ``"auto"`` otherwise."""
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "conv_transpose"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if is_transposed_linear(module):
        return "linear_transposed"
    return "auto"
