"""Hand-written models of the second held-out zoo (:mod:`tools.calibration.zoo2`): an Inception-v1 network
(parallel branches concatenated), an MLP-Mixer (token mixing across a transpose), a bidirectional stacked GRU
reading image rows, and a DeepNet post-LN language model (a scaled identity α·x before each LayerNorm). Every
builder draws from torch's global RNG, so ``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


# ------------------------------------------------------------------------------------------------- Inception
class BasicConv(nn.Module):
    """torchvision's ``BasicConv2d``: conv (no bias) → BatchNorm (eps 1e-3) → ReLU; ``bn=False``: no norm."""

    def __init__(self, c_in: int, c_out: int, k: int, bn: bool):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3) if bn else nn.Identity()

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Inception module (Szegedy et al. 2015, Fig. 2b): 1×1 | 1×1→3×3 | 1×1→5×5 | max-pool 3×3→1×1, concatenated
    along channels."""

    def __init__(self, c_in: int, c1: int, c3: tuple, c5: tuple, cp: int, bn: bool):
        super().__init__()
        self.b1 = BasicConv(c_in, c1, 1, bn)
        self.b2 = nn.Sequential(BasicConv(c_in, c3[0], 1, bn), BasicConv(c3[0], c3[1], 3, bn))
        self.b3 = nn.Sequential(BasicConv(c_in, c5[0], 1, bn), BasicConv(c5[0], c5[1], 5, bn))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), BasicConv(c_in, cp, 1, bn))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def inception_net(bn: bool = True, n_modules: int = 4) -> nn.Module:
    """stem BasicConv 3→32 → ``n_modules`` Inception modules (64 channels out each; max-pool 2 after the second)
    → pool → linear. torchvision GoogLeNet init: convs and the classifier truncated normal std 0.01 (±2), BN 1/0."""
    mods, c = [BasicConv(3, 32, 3, bn)], 32
    for i in range(n_modules):
        mods.append(Inception(c, 16, (16, 24), (4, 8), 16, bn))
        c = 64
        if i == 1:
            mods.append(nn.MaxPool2d(2))
    model = nn.Sequential(*mods, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


# ----------------------------------------------------------------------------------------------- MLP-Mixer
class MixerBlock(nn.Module):
    """Mixer layer (Tolstikhin et al. 2021, eq. 1): x + tokenMLP(LN(x)ᵀ)ᵀ, then + channelMLP(LN(x)), GELU MLPs."""

    def __init__(self, tokens: int, d: int, d_tok: int, d_ch: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.tok1, self.tok2 = nn.Linear(tokens, d_tok), nn.Linear(d_tok, tokens)
        self.ch1, self.ch2 = nn.Linear(d, d_ch), nn.Linear(d_ch, d)

    def forward(self, x):
        y = self.norm1(x).transpose(1, 2)
        x = x + self.tok2(F.gelu(self.tok1(y))).transpose(1, 2)
        return x + self.ch2(F.gelu(self.ch1(self.norm2(x))))


class Mixer(nn.Module):
    def __init__(self, depth: int = 8, d: int = 64, patch: int = 4, d_tok: int = 32, d_ch: int = 256):
        super().__init__()
        tokens = (32 // patch) ** 2
        self.stem = nn.Conv2d(3, d, patch, patch)
        self.blocks = nn.Sequential(*[MixerBlock(tokens, d, d_tok, d_ch) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(1))


def mixer(weight_std: float | None = None, stem_scale: float = 1.0) -> nn.Module:
    """The reference init (big_vision / timm ``_init_weights``): MLP weights xavier_uniform_, biases N(0, 1e-6²),
    patch embedding LeCun normal (σ² = 1/fan_in), LayerNorm 1/0; the classifier keeps PyTorch's default (the
    reference zero head would give no gradient at init). ``weight_std``: every MLP weight N(0, weight_std²) instead;
    ``stem_scale`` multiplies the patch embedding."""
    model = Mixer()
    with torch.no_grad():
        for block in model.blocks:
            for lin in (block.tok1, block.tok2, block.ch1, block.ch2):
                if weight_std is None:
                    nn.init.xavier_uniform_(lin.weight)
                else:
                    nn.init.normal_(lin.weight, 0.0, weight_std)
                nn.init.normal_(lin.bias, 0.0, 1e-6)
        fan_in = model.stem.weight[0].numel()
        nn.init.trunc_normal_(model.stem.weight, std=math.sqrt(1.0 / fan_in) / 0.87962566103423978)
        model.stem.weight.mul_(stem_scale)
        nn.init.zeros_(model.stem.bias)
    return model


# ------------------------------------------------------------------------------------- bidirectional recurrent
class RowGRU(nn.Module):
    """A CIFAR image read row by row (32 steps of 3·32 values) by a stacked bidirectional ``nn.GRU``; the mean
    over time of the last layer's two directions → linear head."""

    def __init__(self, layers: int = 3, hidden: int = 64):
        super().__init__()
        self.rnn = nn.GRU(96, hidden, layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 10)

    def forward(self, x):
        rows = x.permute(0, 2, 1, 3).flatten(2)  # [B, 32 rows, 3·32]
        return self.head(self.rnn(rows)[0].mean(1))


def row_gru(ih_scale: float = 1.0, hh_scale: float = 1.0) -> nn.Module:
    """PyTorch's default GRU init (U(±1/√H)), then every input weight × ``ih_scale`` and recurrent weight ×
    ``hh_scale``."""
    model = RowGRU()
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            if name.startswith("weight_ih"):
                p.mul_(ih_scale)
            elif name.startswith("weight_hh"):
                p.mul_(hh_scale)
    return model


# --------------------------------------------------------------------------------------------------- DeepNet
class DeepNormLayer(nn.Module):
    """Post-LN decoder layer with DeepNorm (Wang et al. 2022, eq. 4): x ← LN(α·x + G(x)) for causal self-attention
    and a GELU MLP."""

    def __init__(self, d: int, heads: int, d_ff: int, alpha: float):
        super().__init__()
        self.heads, self.alpha = heads, alpha
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def _attn(self, x):
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        return self.o(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = self.ln1(self.alpha * x + self._attn(x))
        return self.ln2(self.alpha * x + self.fc2(F.gelu(self.fc1(x))))


class DeepNetLM(nn.Module):
    def __init__(self, depth: int, alpha: float, d: int = 64, heads: int = 4, d_ff: int = 256, vocab: int = 1000,
                 max_len: int = 64):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(DeepNormLayer(d, heads, d_ff, alpha) for _ in range(depth))
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids):
        x = self.embed(input_ids) + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def deepnet_lm(depth: int = 12, embed_std: float | None = None) -> nn.Module:
    """DeepNet init for a decoder-only model of ``depth`` layers (Wang et al. 2022, Fig. 2): α = (2N)^(1/4),
    β = (8N)^(-1/4); xavier_normal_ with gain β for v, out and the MLP, gain 1 for q and k; biases 0; token and
    position embeddings N(0, 1/d), or N(0, ``embed_std``²)."""
    a, b = (2 * depth) ** 0.25, (8 * depth) ** -0.25
    model = DeepNetLM(depth, a)
    std = model.embed.embedding_dim ** -0.5 if embed_std is None else embed_std
    with torch.no_grad():
        nn.init.normal_(model.embed.weight, 0.0, std)
        nn.init.normal_(model.pos.weight, 0.0, std)
        for layer in model.layers:
            for lin, gain in ((layer.q, 1.0), (layer.k, 1.0), (layer.v, b), (layer.o, b), (layer.fc1, b),
                              (layer.fc2, b)):
                nn.init.xavier_normal_(lin.weight, gain=gain)
                nn.init.zeros_(lin.bias)
    return model


__all__ = ["inception_net", "mixer", "row_gru", "deepnet_lm"]
