"""Hand-written MLP-like and weight-normalized image models of the sixth held-out zoo (:mod:`tools.calibration.zoo6`):
gMLP, ResMLP, a self-normalizing SELU MLP and a weight-normalized CNN, each with its paper's (or its reference
code's) init and a knob for the broken variant. Every builder draws from torch's global RNG, so ``torch.manual_seed``
reproduces it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


# ------------------------------------------------------------------------------------------- gMLP and ResMLP
class SpatialGatingUnit(nn.Module):
    """gMLP's spatial gating unit (Liu et al. 2021, eq. 2-3): split the channels into (u, v), v ← W·LN(v) + b across
    tokens (W near 0, b = 1 at init, so the unit starts as the identity on u), output u ⊙ v."""

    def __init__(self, d_ffn: int, tokens: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_ffn // 2)
        self.proj = nn.Linear(tokens, tokens)

    def forward(self, x):
        u, v = x.chunk(2, dim=-1)
        return u * self.proj(self.norm(v).transpose(1, 2)).transpose(1, 2)


class GMLPBlock(nn.Module):
    """gMLP block (Liu et al. 2021, Fig. 1): x + W₂ · SGU(GELU(W₁ · LN(x)))."""

    def __init__(self, d: int, d_ffn: int, tokens: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1, self.sgu, self.fc2 = nn.Linear(d, d_ffn), SpatialGatingUnit(d_ffn, tokens), nn.Linear(d_ffn // 2, d)

    def forward(self, x):
        return x + self.fc2(self.sgu(F.gelu(self.fc1(self.norm(x)))))


def gmlp(weight_std: float | None = None, spatial_default: bool = False, d: int = 64, d_ffn: int = 256,
         depth: int = 6, patch: int = 4) -> nn.Module:
    """gMLP for CIFAR (patch 4: 64 tokens, d 64, d_ffn 256, 6 blocks, a final LayerNorm; output the tokens). Init as
    timm's gMLP (the MLP-Mixer ``_init_weights``): channel linears xavier_uniform_ with biases N(0, 1e-6²), the
    spatial projection N(0, 1e-6²) with bias 1 (the paper's "near-zero W, b = 1"), patch embedding LeCun normal.
    ``weight_std``: every channel linear N(0, weight_std²) instead; ``spatial_default``: the spatial projection keeps
    PyTorch's default Linear init (W ~ U(±1/√n), b ~ U(±1/√n))."""
    tokens = (32 // patch) ** 2
    stem = nn.Conv2d(3, d, patch, patch)
    blocks = [GMLPBlock(d, d_ffn, tokens) for _ in range(depth)]
    model = _TokenNet(stem, blocks, nn.LayerNorm(d))
    with torch.no_grad():
        for b in blocks:
            for lin in (b.fc1, b.fc2):
                if weight_std is None:
                    nn.init.xavier_uniform_(lin.weight)
                else:
                    nn.init.normal_(lin.weight, 0.0, weight_std)
                nn.init.normal_(lin.bias, 0.0, 1e-6)
            if not spatial_default:
                nn.init.normal_(b.sgu.proj.weight, 0.0, 1e-6)
                nn.init.ones_(b.sgu.proj.bias)
        nn.init.trunc_normal_(stem.weight, std=math.sqrt(1.0 / stem.weight[0].numel()) / 0.87962566103423978)
        nn.init.zeros_(stem.bias)
    return model


class _TokenNet(nn.Module):
    """Patch embedding → blocks → final norm; returns the tokens [B, N, d]."""

    def __init__(self, stem: nn.Module, blocks: list, norm: nn.Module):
        super().__init__()
        self.stem, self.blocks, self.norm = stem, nn.Sequential(*blocks), norm

    def forward(self, x):
        return self.norm(self.blocks(self.stem(x).flatten(2).transpose(1, 2)))


class Affine(nn.Module):
    """ResMLP's Aff (Touvron et al. 2022, eq. 1): α ⊙ x + β, α = 1, β = 0 at init, no statistics."""

    def __init__(self, d: int):
        super().__init__()
        self.alpha, self.beta = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return self.alpha * x + self.beta


class ResMLPBlock(nn.Module):
    """ResMLP layer (Touvron et al. 2022, eq. 2-3): x + ls₁ ⊙ (A · Aff(x)ᵀ)ᵀ across patches, then
    x + ls₂ ⊙ MLP(Aff(x)) across channels (GELU, 4×), layer scales ls initialized to ``init_values``."""

    def __init__(self, d: int, tokens: int, init_values: float):
        super().__init__()
        self.aff1, self.cross_patch, self.aff2 = Affine(d), nn.Linear(tokens, tokens), Affine(d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.ls1 = nn.Parameter(torch.full((d,), float(init_values)))
        self.ls2 = nn.Parameter(torch.full((d,), float(init_values)))

    def forward(self, x):
        x = x + self.ls1 * self.cross_patch(self.aff1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ls2 * self.fc2(F.gelu(self.fc1(self.aff2(x))))


def resmlp(init_values: float = 0.1, he: bool = False, d: int = 64, depth: int = 8, patch: int = 4) -> nn.Module:
    """ResMLP for CIFAR (patch 4: 64 tokens, d 64, 8 layers, a final Affine; output the tokens). The reference code's
    init (``resmlp_models.py``): linears trunc_normal_(std 0.02), biases 0, layer scale 0.1 (their depth-12 value),
    patch embedding PyTorch's default. ``init_values``: the layer scale; ``he``: every linear kaiming_normal_ (ReLU
    gain) instead of std 0.02."""
    tokens = (32 // patch) ** 2
    blocks = [ResMLPBlock(d, tokens, init_values) for _ in range(depth)]
    model = _TokenNet(nn.Conv2d(3, d, patch, patch), blocks, Affine(d))
    with torch.no_grad():
        for m in model.blocks.modules():
            if isinstance(m, nn.Linear):
                if he:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
    return model


# ---------------------------------------------------------------------------------------------------- SELU MLP
def selu_mlp(depth: int = 16, width: int = 256, std_scale: float = 1.0, default_init: bool = False) -> nn.Module:
    """Self-normalizing network (Klambauer et al. 2017, §3): flattened CIFAR image → ``depth`` hidden SELU layers
    of ``width`` → 10 logits, LeCun normal weights N(0, 1/fan_in), biases 0 (AlphaDropout left out: rate 0).
    ``std_scale`` multiplies the std; ``default_init``: PyTorch's default Linear init instead (U(±1/√fan_in))."""
    dims = [3 * 32 * 32, *[width] * depth]
    layers = [nn.Flatten()]
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.SELU()]
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    if not default_init:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, std_scale / math.sqrt(m.in_features))
                    nn.init.zeros_(m.bias)
    return model


# ------------------------------------------------------------------------------------------ weight-normed CNN
def weightnorm_cnn(depth: int = 12, c: int = 16, data_init: bool = True) -> nn.Module:
    """A plain ReLU CNN with weight normalization (Salimans & Kingma 2016): conv 3×3 3 → ``c``, ``depth`` − 1 convs
    ``c`` → ``c``, global average pool, linear head, every layer ``weight_norm``'d (w = g · v/‖v‖). The paper's init
    (§3): v ~ N(0, 0.05²), then layer by layer on a fixed batch (16 N(0, 1) images, seed 0) g = 1/σ and b = −μ/σ of
    the layer's pre-activations per channel, so each starts at zero mean and unit variance. ``data_init=False``:
    g = 1, b = 0 (unit-norm weights, no data-dependent init)."""
    convs = [nn.Conv2d(3 if i == 0 else c, c, 3, padding=1) for i in range(depth)]
    layers = [m for conv in convs for m in (weight_norm(conv), nn.ReLU())]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), weight_norm(nn.Linear(c, 10)))
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.parametrizations.weight
                w.original1.normal_(0.0, 0.05)
                w.original0.fill_(1.0)
                m.bias.zero_()
                if data_init:
                    t = m(x)
                    dims = (0, 2, 3) if t.dim() == 4 else (0,)
                    mu, sd = t.mean(dims), t.std(dims)
                    w.original0.copy_((1 / sd).view_as(w.original0))
                    m.bias.copy_(-mu / sd)
            x = m(x)
    return model


__all__ = ["gmlp", "resmlp", "selu_mlp", "weightnorm_cnn"]
