"""Hand-written language models of the sixth held-out zoo (:mod:`tools.calibration.zoo6`): WaveNet (gated dilated
causal convolutions with residual and skip connections), two normalization-free causal transformers (ReZero's
scalar α = 0 and T-Fixup's weight scaling) and a stacked LSTM with projections. Each takes ``input_ids`` and
returns next-token logits [B, T, vocab]; every builder draws from torch's global RNG, so ``torch.manual_seed``
reproduces it.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

VOCAB = 1000


# --------------------------------------------------------------------------------------------------- WaveNet
class WaveNetLayer(nn.Module):
    """WaveNet residual layer (van den Oord et al. 2016, §2.3-2.4, Fig. 4): z = tanh(W_f ∗ x) ⊙ σ(W_g ∗ x) with a
    dilated causal conv (kernel 2, left padding = dilation); returns (x + 1×1 conv(z), skip 1×1 conv(z))."""

    def __init__(self, r: int, s: int, dilation: int):
        super().__init__()
        self.pad = dilation
        self.filter = nn.Conv1d(r, r, 2, dilation=dilation)
        self.gate = nn.Conv1d(r, r, 2, dilation=dilation)
        self.res, self.skip = nn.Conv1d(r, r, 1), nn.Conv1d(r, s, 1)

    def forward(self, x):
        h = F.pad(x, (self.pad, 0))
        z = torch.tanh(self.filter(h)) * torch.sigmoid(self.gate(h))
        return x + self.res(z), self.skip(z)


class WaveNetLM(nn.Module):
    """Tokens (one-hot, i.e. an embedding) → causal conv (kernel 2) → layers with dilations 1, 2, 4, 8 twice → sum
    of the skips → ReLU → 1×1 → ReLU → 1×1 → logits (the paper's output stack, a softmax over the vocabulary)."""

    def __init__(self, r: int = 32, s: int = 64, dilations=(1, 2, 4, 8) * 2, vocab: int = VOCAB):
        super().__init__()
        self.embed = nn.Embedding(vocab, r)
        self.causal = nn.Conv1d(r, r, 2)
        self.layers = nn.ModuleList(WaveNetLayer(r, s, d) for d in dilations)
        self.out1, self.out2 = nn.Conv1d(s, s, 1), nn.Conv1d(s, vocab, 1)

    def forward(self, input_ids):
        x = self.causal(F.pad(self.embed(input_ids).transpose(1, 2), (1, 0)))
        skips = 0
        for layer in self.layers:
            x, s = layer(x)
            skips = skips + s
        return self.out2(F.relu(self.out1(F.relu(skips)))).transpose(1, 2)


def wavenet(weight_std: float | None = None, embed_std: float = 1.0) -> nn.Module:
    """WaveNet LM with PyTorch's default conv init (the paper states none) and embedding N(0, ``embed_std``²) (one-hot
    inputs through the first conv are the embedding's rows); ``weight_std``: every conv weight N(0, weight_std²)."""
    model = WaveNetLM()
    with torch.no_grad():
        model.embed.weight.normal_(0.0, embed_std)
        if weight_std is not None:
            for m in model.modules():
                if isinstance(m, nn.Conv1d):
                    m.weight.normal_(0.0, weight_std)
    return model


# ---------------------------------------------------------------------------------- normalization-free decoders
class _CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        return self.o(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d))


class _NoNormLayer(nn.Module):
    """x + α·Attn(x), then x + α·FFN(x) (ReLU, 4×), no LayerNorm; α a learned scalar (ReZero) or the constant 1."""

    def __init__(self, d: int, heads: int, alpha: float | None):
        super().__init__()
        self.attn = _CausalSelfAttention(d, heads)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.alpha = nn.Parameter(torch.tensor(float(alpha))) if alpha is not None else 1.0

    def forward(self, x):
        x = x + self.alpha * self.attn(x)
        return x + self.alpha * self.fc2(F.relu(self.fc1(x)))


class ReZeroLayer(_NoNormLayer):
    """ReZero layer (Bachlechner et al. 2020, eq. 5): x_{i+1} = x_i + α_i F(x_i), one α_i per layer for both
    sublayers, no normalization."""


class TFixupLayer(_NoNormLayer):
    """T-Fixup decoder layer (Huang et al. 2020, §3.4): no LayerNorm, x + Attn(x), then x + FFN(x)."""


class NoNormLM(nn.Module):
    """Token embedding + sinusoidal positions → layers → linear decoder."""

    def __init__(self, layer: type, depth: int, d: int, heads: int, alpha: float | None, vocab: int = VOCAB):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.Sequential(*[layer(d, heads, alpha) for _ in range(depth)])
        self.decoder = nn.Linear(d, vocab)
        pos = torch.arange(64)[:, None] / 10_000 ** (torch.arange(0, d, 2) / d)
        self.register_buffer("positions", torch.stack([pos.sin(), pos.cos()], -1).flatten(1), persistent=False)

    def forward(self, input_ids):
        x = self.embed(input_ids) + self.positions[: input_ids.shape[1]]
        return self.decoder(self.layers(x))


def rezero_lm(alpha: float = 0.0, he_ffn: bool = False, depth: int = 6, d: int = 64, heads: int = 4) -> nn.Module:
    """ReZero causal LM (6 layers, d 64): α = 0 at init and PyTorch's defaults elsewhere, as the reference code's
    ``RZTXEncoderLayer`` (``nn.MultiheadAttention``: q/k/v xavier_uniform_ over the stacked [3d, d] in-projection,
    in/out biases 0; FFN ``nn.Linear``; embedding N(0, 1)). ``alpha``: α's init; ``he_ffn``: the FFN linears
    kaiming_normal_ (ReLU gain), biases 0."""
    model = NoNormLM(ReZeroLayer, depth, d, heads, alpha)
    with torch.no_grad():
        for layer in model.layers:
            for lin in (layer.attn.q, layer.attn.k, layer.attn.v):
                nn.init.uniform_(lin.weight, -math.sqrt(6 / (4 * d)), math.sqrt(6 / (4 * d)))
                nn.init.zeros_(lin.bias)
            nn.init.zeros_(layer.attn.o.bias)
            if he_ffn:
                for lin in (layer.fc1, layer.fc2):
                    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
                    nn.init.zeros_(lin.bias)
    return model


def tfixup_lm(scaled: bool = True, depth: int = 12, d: int = 64, heads: int = 4) -> nn.Module:
    """T-Fixup causal LM (Huang et al. 2020, §3.4, decoder rule with M = ``depth``): every linear xavier_uniform_
    (biases 0), the embedding N(0, d^-1/2 std), then v, o, both FFN weights and the embedding × (9M)^-1/4.
    ``scaled=False``: the (9M)^-1/4 scaling left out (Xavier, no norm)."""
    model = NoNormLM(TFixupLayer, depth, d, heads, None)
    factor = (9 * depth) ** -0.25 if scaled else 1.0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(model.embed.weight, 0.0, d ** -0.5)
        model.embed.weight.mul_(factor)
        for layer in model.layers:
            for lin in (layer.attn.v, layer.attn.o, layer.fc1, layer.fc2):
                lin.weight.mul_(factor)
    return model


# ------------------------------------------------------------------------------------------ LSTM with projection
class ProjectedLSTMLM(nn.Module):
    """Embedding → ``nn.LSTM(proj_size=…)`` (Sak et al. 2014, LSTMP: h_t = W_hr (o_t ⊙ tanh c_t), the projected
    state fed back and to the next layer), ``layers`` stacked in one module → linear decoder."""

    def __init__(self, layers: int = 3, hidden: int = 128, proj: int = 64, vocab: int = VOCAB):
        super().__init__()
        self.embed = nn.Embedding(vocab, proj)
        self.rnn = nn.LSTM(proj, hidden, layers, batch_first=True, proj_size=proj)
        self.head = nn.Linear(proj, vocab)

    def forward(self, input_ids):
        return self.head(self.rnn(self.embed(input_ids))[0])


def lstmp_lm(weight_std: float | None = None, proj_scale: float = 1.0) -> nn.Module:
    """Stacked LSTMP LM (3 layers, 128 cells projected to 64) at PyTorch's default init (every weight U(±1/√H));
    ``weight_std``: every recurrent weight N(0, weight_std²); ``proj_scale`` multiplies the projections W_hr."""
    model = ProjectedLSTMLM()
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            if weight_std is not None and name.startswith("weight"):
                p.normal_(0.0, weight_std)
            if name.startswith("weight_hr"):
                p.mul_(proj_scale)
    return model


# ---------------------------------------------------------------------------------------------------- NormFormer
class NormFormerLayer(nn.Module):
    """NormFormer layer (Shleifer et al. 2021, Fig. 1): pre-LN attention whose heads are each scaled by a learned
    γ_h (init 1) and whose output is LayerNorm'd again before the addition; pre-LN FFN with a LayerNorm after the
    activation (GELU, 4×)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln_attn, self.ln_post_attn, self.ln_ffn, self.ln_mid = (nn.LayerNorm(n) for n in (d, d, d, 4 * d))
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.head_scale = nn.Parameter(torch.ones(heads))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln_attn(x)
        q, k, v = (p(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) * self.head_scale.view(1, -1, 1, 1)
        x = x + self.ln_post_attn(self.o(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.fc2(self.ln_mid(F.gelu(self.fc1(self.ln_ffn(x)))))


class NormFormerLM(nn.Module):
    """Token embedding × √d + sinusoidal positions → layers → final LayerNorm → linear decoder (fairseq's
    ``transformer_lm`` with ``--scale-attn --scale-fc --scale-heads``)."""

    def __init__(self, depth: int = 6, d: int = 64, heads: int = 4, vocab: int = VOCAB):
        super().__init__()
        self.embed, self.scale = nn.Embedding(vocab, d), math.sqrt(d)
        self.layers = nn.Sequential(*[NormFormerLayer(d, heads) for _ in range(depth)])
        self.norm, self.decoder = nn.LayerNorm(d), nn.Linear(d, vocab)
        pos = torch.arange(64)[:, None] / 10_000 ** (torch.arange(0, d, 2) / d)
        self.register_buffer("positions", torch.stack([pos.sin(), pos.cos()], -1).flatten(1), persistent=False)

    def forward(self, input_ids):
        x = self.scale * self.embed(input_ids) + self.positions[: input_ids.shape[1]]
        return self.decoder(self.norm(self.layers(x)))


def normformer_lm(weight_std: float | None = None) -> nn.Module:
    """NormFormer LM (6 layers, d 64) with fairseq's init: q/k/v xavier_uniform_ with gain 1/√2, the other linears
    xavier_uniform_, biases 0, embedding N(0, 1/d) (× √d in the forward). ``weight_std``: every linear weight in
    the layers N(0, weight_std²) instead."""
    model = NormFormerLM()
    with torch.no_grad():
        for layer in model.layers:
            for lin in (layer.q, layer.k, layer.v, layer.o, layer.fc1, layer.fc2):
                if weight_std is None:
                    nn.init.xavier_uniform_(lin.weight, 2 ** -0.5 if lin in (layer.q, layer.k, layer.v) else 1.0)
                else:
                    lin.weight.normal_(0.0, weight_std)
                nn.init.zeros_(lin.bias)
        nn.init.normal_(model.embed.weight, 0.0, model.embed.embedding_dim ** -0.5)
    return model


__all__ = ["wavenet", "rezero_lm", "tfixup_lm", "lstmp_lm", "normformer_lm"]
