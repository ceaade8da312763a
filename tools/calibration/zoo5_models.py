"""Models of the fifth held-out zoo (:mod:`tools.calibration.zoo5`) that need more than a config: PatchTST (Nie et
al. 2023) reading the ``audio`` task's waveforms as a one-channel time series, and BiT (Kolesnikov et al. 2020)
with its GroupNorms removed. Every builder draws from torch's global RNG, so ``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

from torch import nn

from tools.calibration.zoo import hf


class SeriesModel(nn.Module):
    """A ``PatchTSTModel`` on waveforms ``input_values`` [batch, time]: fed as ``past_values`` [batch, time, 1] (one
    channel), returning its patch tokens [batch, patches, d_model] (the channel axis squeezed), so that the
    ``audio`` task pools them like any sequence model's tokens."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values):
        return self.model(past_values=input_values.unsqueeze(-1)).last_hidden_state.squeeze(1)


def patchtst(**kw) -> nn.Module:
    """PatchTST on 1600-sample series: patches of 16 (stride 16, 100 patches), instance standardization
    (``scaling="std"``, RevIN-like), sin-cos positions, 3 pre-norm encoder layers with BatchNorm (the paper's
    choice), d_model 64, stock init (``init_std`` 0.02); ``kw`` overrides the config."""
    config = dict(num_input_channels=1, context_length=1600, patch_length=16, patch_stride=16, num_hidden_layers=3,
                  d_model=64, num_attention_heads=4, ffn_dim=128, do_mask_input=False) | kw
    return SeriesModel(hf("PatchTSTModel", "PatchTSTConfig", **config)).train()


class _ActivationOnly(nn.Module):
    """What is left of a ``BitGroupNormActivation`` without its GroupNorm: the activation."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.activation = norm.activation

    def forward(self, x):
        return self.activation(x)


def without_group_norm(model: nn.Module) -> nn.Module:
    """``model`` (a BiT) with every ``BitGroupNormActivation`` replaced by its activation alone: the weight-
    standardized convs (unit variance per output filter, so each multiplies the signal's mean square by about its
    fan-in) are then normalized by nothing."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "BitGroupNormActivation":
                setattr(parent, name, _ActivationOnly(child))
    return model


__all__ = ["patchtst", "without_group_norm", "SeriesModel"]


def scaled(model: nn.Module, factor: float, types: tuple = (nn.Linear,), under: str = "") -> nn.Module:
    """``model`` with the weight of every module of ``types`` under the module prefix ``under`` × ``factor``."""
    import torch

    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, types) and name.startswith(under):
                m.weight.mul_(factor)
    return model
