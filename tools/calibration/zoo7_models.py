"""Hand-written models of the seventh held-out zoo (:mod:`tools.calibration.zoo7`): PyramidNet (additive channel
widening, zero-padded shortcuts), a stacked IndRNN language model (independently recurrent ReLU units) and a
Performer language model (FAVOR+ causal linear attention), each with its paper's (or reference code's) init and a
knob for the broken variant; and :func:`without_batch_norm` for the Hugging Face conv nets. Every builder draws
from torch's global RNG, so ``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from tools.calibration.zoo_models import LayerStackLM, he_convs_

VOCAB = 1000


def without_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` with every ``nn.BatchNorm2d`` replaced by an identity (the convs keep their init)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    return model


def reference_init(model: nn.Module) -> nn.Module:
    """``model`` (an EfficientNet from ``transformers``) re-initialized as its reference code does
    (torchvision's ``efficientnet.py``, after the TF original): convs ``kaiming_normal_``
    (fan_out), BN weight 1 and bias 0, linears U(±1/√fan_out), conv biases 0. The ``transformers`` init instead draws
    every conv *and BN weight* from N(0, 0.02²) (weights meant to be loaded, not trained from scratch)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.uniform_(m.weight, -1 / math.sqrt(m.out_features), 1 / math.sqrt(m.out_features))
            if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


# ------------------------------------------------------------------------------------------------- PyramidNet
class PyramidBlock(nn.Module):
    """PyramidNet basic block (Han et al. 2017, Fig. 6d): BN → 3×3 conv → BN → ReLU → 3×3 conv → BN, added to a
    shortcut that average-pools when the block downsamples and zero-pads the new channels (Fig. 5b)."""

    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
        self.stride, self.pad = stride, c_out - c_in
        self.branch = nn.Sequential(norm(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), norm(c_out),
                                    nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), norm(c_out))

    def forward(self, x):
        short = F.avg_pool2d(x, 2) if self.stride > 1 else x
        return self.branch(x) + F.pad(short, (0, 0, 0, 0, 0, self.pad))


def pyramidnet(bn: bool = True, weight_scale: float = 1.0, blocks: int = 2, alpha: int = 48,
               base: int = 16) -> nn.Module:
    """PyramidNet for CIFAR with 3 stages of ``blocks`` basic blocks, the width growing by ``alpha / (3·blocks)`` per
    block (additive widening, Eq. 2) from ``base``; He normal init (fan_out, the reference code), BN weight 1, bias
    0. ``bn=False``: every BN an identity; ``weight_scale`` multiplies every conv weight."""
    n = 3 * blocks
    layers, c = [nn.Conv2d(3, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base) if bn else nn.Identity()], base
    for i in range(n):
        c_out = base + round(alpha * (i + 1) / n)
        layers.append(PyramidBlock(c, c_out, 2 if i in (blocks, 2 * blocks) else 1, bn))
        c = c_out
    layers += [nn.BatchNorm2d(c) if bn else nn.Identity(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(c, 10)]
    model = nn.Sequential(*layers)
    return he_convs_(model, weight_scale, "fan_out")


# ---------------------------------------------------------------------------------------------------- IndRNN
class IndRNNLayer(nn.Module):
    """IndRNN layer (Li et al. 2018, Eq. 2) with batch normalization of the input drive (their deep models, §4):
    h_t = ReLU(BN(W x_t) + u ⊙ h_{t-1}), each unit its own scalar recurrent weight u; [B, T, d_in] → [B, T, d]."""

    def __init__(self, d_in: int, d: int, u_max: float):
        super().__init__()
        self.input, self.bn = nn.Linear(d_in, d, bias=False), nn.BatchNorm1d(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(0.0, u_max))
        nn.init.kaiming_normal_(self.input.weight, nonlinearity="relu")

    def forward(self, x):
        drive = self.bn(self.input(x).transpose(1, 2)).transpose(1, 2)
        h, out = x.new_zeros(x.shape[0], self.u.shape[0]), []
        for t in range(x.shape[1]):
            h = F.relu(drive[:, t] + self.u * h)
            out.append(h)
        return torch.stack(out, 1)


def indrnn_lm(u_max: float = 1.0, d: int = 128, layers: int = 3) -> nn.Module:
    """Stacked IndRNN LM: embedding N(0, 1), ``layers`` IndRNN layers of ``d`` ReLU units with He-normal input
    weights, BN of the drive (weight 1, bias 0) and recurrent weights u ~ U(0, ``u_max``) (the paper's constraint is |u| ≤ 2^(1/T) for a length-T
    memory; U(0, 1) is its reference code's init), a linear head."""
    return LayerStackLM(d, lambda: IndRNNLayer(d, d, u_max), layers, VOCAB)


# ------------------------------------------------------------------------------------------------- Performer
class PerformerLayer(nn.Module):
    """Pre-LN Performer layer (Choromanski et al. 2021): causal FAVOR+ attention with positive orthogonal random
    features φ(x) = exp(ωᵀx − ‖x‖²/2)/√m (Lemma 1), q, k scaled by d_head^-¼, prefix sums for causality (§2.4,
    Fig. 1); then a GELU FFN. ω is a fixed buffer drawn at build."""

    def __init__(self, d: int, heads: int, features: int):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        blocks = [torch.linalg.qr(torch.randn(self.dh, self.dh))[0] for _ in range(math.ceil(features / self.dh))]
        norms = torch.randn(features, self.dh).norm(dim=1, keepdim=True)
        self.register_buffer("omega", torch.cat(blocks)[:features] * norms)  # orthogonal rows, chi-distributed norms

    def _phi(self, x):
        x = x * self.dh ** -0.25
        return torch.exp(x @ self.omega.T - x.pow(2).sum(-1, keepdim=True) / 2) / math.sqrt(self.omega.shape[0])

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        q, k = self._phi(q), self._phi(k)
        kv = torch.cumsum(k.unsqueeze(-1) * v.unsqueeze(-2), dim=2)  # [b, h, t, m, dh]
        num = torch.einsum("bhtm,bhtmd->bhtd", q, kv)
        den = torch.einsum("bhtm,bhtm->bht", q, torch.cumsum(k, dim=2)).unsqueeze(-1)
        return self.proj((num / den).transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class PerformerLM(nn.Module):
    def __init__(self, d: int, layers: int, heads: int, features: int):
        super().__init__()
        self.embed, self.pos = nn.Embedding(VOCAB, d), nn.Embedding(64, d)
        self.layers = nn.ModuleList(PerformerLayer(d, heads, features) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, VOCAB)

    def forward(self, input_ids):
        x = self.embed(input_ids) + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln(x))


def performer_lm(weight_std: float | None = None, d: int = 64, layers: int = 4, heads: int = 4,
                 features: int = 32) -> nn.Module:
    """Performer causal LM: learned positions, ``layers`` pre-LN FAVOR+ layers, PyTorch's default init throughout
    (linears U(±1/√fan_in), embeddings N(0, 1)); ``weight_std``: every linear weight in the layers
    N(0, weight_std²)."""
    model = PerformerLM(d, layers, heads, features)
    with torch.no_grad():
        if weight_std is not None:
            for m in model.layers.modules():
                if isinstance(m, nn.Linear):
                    m.weight.normal_(0.0, weight_std)
    return model


__all__ = ["without_batch_norm", "reference_init", "pyramidnet", "PyramidBlock", "indrnn_lm", "IndRNNLayer", "performer_lm",
           "PerformerLayer"]
