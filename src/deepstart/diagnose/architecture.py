"""What ``check`` reports per measuring site, and the words it uses about a model's expected inputs.

A :class:`Site` is where one length is measured (Hanin & Rolnick 2018, §1: M_j = ‖x_j‖²/n_j). Sites are read from
the recorded computation by :mod:`deepstart.diagnose.structure`; ``kind`` is ``"layer"`` (a weight op: Linear,
Conv, HF ``Conv1D``, Embedding, attention projections; measured after the elementwise ops that follow it, i.e. at
the post-activation x_j), ``"norm"`` (a normalization, measured after its elementwise ops) or ``"block"`` (a
residual addition y = x + branch(x), measured at the stream).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from deepstart.diagnose.capture import ModelForwardError, first_tensor

__all__ = ["ModelForwardError", "Site", "first_tensor", "expected_input", "shapes_of"]


def shapes_of(args) -> list:
    """Shapes of the tensors in ``args`` (nested lists/dicts kept), for error messages."""
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(tuple(a.shape))
        elif isinstance(a, (tuple, list)):
            out.append(shapes_of(a))
        elif isinstance(a, dict):
            out.append({k: shapes_of([v])[0] if shapes_of([v]) else type(v).__name__ for k, v in a.items()})
    return out


def expected_input(model: nn.Module) -> str:
    """What the first layer with parameters expects, in words (for error messages)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            return f"first layer {name!r} (Linear) expects inputs of shape [N, {m.in_features}]"
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            dims = ", ".join(["H", "W", "D"][: m.weight.ndim - 2])
            return f"first layer {name!r} ({type(m).__name__}) expects inputs of shape [N, {m.in_channels}, {dims}]"
        if isinstance(m, nn.Embedding):
            return f"first layer {name!r} (Embedding) expects integer inputs in [0, {m.num_embeddings})"
    return "no Linear/Conv/Embedding layer found to say which input shape the model expects"


@dataclass
class Site:
    """Where one length is measured. ``kind`` is ``"layer"``, ``"norm"``, ``"block"`` (a residual addition) or
    ``"pool"`` (a pooling op whose output a layer reads: the link into it is pooling's own factor, not read)."""

    name: str
    kind: str
    module_type: str
    module_name: str
    call_no: int
    measure_name: str         # what is measured, in words ("relu after fc3", "stream after the add", …)
    measure_call_no: int      # op index of the measured tensor in the recorded forward
    activation: str | None    # theory spec of the elementwise ops after the layer; "blackbox:<label>" if unknown
    width: int                # features of the measured tensor: hidden size for [B, T, C], channels for [B, C, H, W]
    numel: int                # elements per sample of the measured tensor
    shape: tuple              # measured tensor shape (with the batch dimension)
    fan_in: float | None = None
    sigma_w: float | None = None    # √(fan_in · E W²) of the weights' law: weight std against fan-in
    sigma_b: float | None = None    # rms of the bias
    weight_std: float | None = None
    eta: float | None = None        # residual multiplier (blocks; None when not read)
    parent: str | None = None       # enclosing residual block
    main: bool = True
    source: str | None = None       # "input", the name of the site whose measured tensor feeds this one, or None
    theory_layer: bool = False      # Linear/Conv-like weight op: mean-field theory applies
    sigma_w_measured: float | None = None  # √(fan_in · mean W²) of the given weights (sigma_w: of the law)
    weight_family: str | None = None       # normal / uniform / orthogonal / … (deepstart.diagnose.law)
    weight_law: str | None = None          # the standard law it matched ("he", "glorot", …) or "measured"
    weight_param: str | None = None        # the parameter name of the weight (layers)
    weight_params: list = field(default_factory=list)  # every ≥ 2-D parameter the op used (fused attention: all)
    norm: str | None = None                # layer_norm / batch_norm / … (norm sites); placement for blocks
    pre_index: int | None = None           # op index of the pre-activation h (layers with an activation)
    branch_site: str | None = None         # blocks: the site measuring the branch output (None: not a site)
    attention: bool = False                # blocks: the branch contains attention
    skip_scale: float | None = None        # blocks: α of a scaled skip y = α·x + b (DeepNorm); None: unscaled
    eps: float | None = None               # norms: the ε added to the variance
    parallel: int = 1                      # blocks: branches summed before the addition (GPT-J/NeoX: 2)
    layer_scale: bool = False              # blocks: the branch ends in a multiplier (η, γ, Fixup scale) read as η
    opaque: str | None = None              # why the law of this site cannot be stated (custom autograd, …)
    no_grad: bool = False                  # computed where autograd is off (a custom Function's forward): no gradient
    recurrent: dict | None = None          # recurrent layers: cell, layers, steps, hidden, bidirectional
    zero_init: bool = False                # layers: all weights exactly 0 (Fixup/SkipInit's last branch layer)
    padding: float | None = None           # convolutions: ρ, the mean fraction of kernel taps inside the map
    notes: list = field(default_factory=list)
