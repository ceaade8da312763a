"""Small models (CPU seconds) that reproduce the failures of issue 18, one per part kind of ``check``'s reader.

Each builder uses torch's global RNG (``check(..., factory=build)`` draws inits 1..n−1 under new seeds); the input
builders take the generator of ``check``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, SEQ, WIDTH = 64, 12, 32


def tokens(g):
    return torch.randint(0, VOCAB, (4, SEQ), generator=g)


def images(g):
    return torch.randn(4, 3, 32, 32, generator=g)


def _normal_(module, std=0.02):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


class _Attention(nn.Module):
    """Causal multi-head self-attention with eager softmax (GPT-J/NeoX style, no bias on the projections)."""

    def __init__(self, d, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class ParallelBlock(nn.Module):
    """GPT-NeoX/GPT-J parallel block: x + attn(ln1(x)) + mlp(ln2(x)), the two branches summed first."""

    def __init__(self, d):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = _Attention(d)
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(self.ln2(x)))) + self.attn(self.ln1(x)) + x


class ParallelLM(nn.Module):
    """Token embedding → ``depth`` parallel blocks → final LayerNorm → head; weights N(0, std²) as in GPT-J."""

    def __init__(self, depth=6, d=WIDTH, std=0.02):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList(ParallelBlock(d) for _ in range(depth))
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, VOCAB)
        _normal_(self, std)

    def forward(self, ids):
        x = self.wte(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln_f(x))


class ChannelsLayerNorm(nn.Module):
    """LayerNorm over the channels of [B, C, H, W] (ConvNeXt's ``LayerNorm(data_format="channels_first")``)."""

    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.ln = nn.LayerNorm(c, eps=eps)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """dwconv7×7 → LN → Linear(4C) → GELU → Linear(C) → γ (layer scale) → + x (Liu et al. 2022)."""

    def __init__(self, c, layer_scale=1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), layer_scale))

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.gamma * self.pw2(F.gelu(self.pw1(y)))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """Patch stem (4×4 stride 4) + LN, two stages of blocks with an LN + 2×2 stride-2 downsampling between."""

    def __init__(self, dims=(16, 32), depths=(3, 3), layer_scale=1e-6):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), ChannelsLayerNorm(dims[0]))
        self.stages = nn.ModuleList()
        for i, (c, n) in enumerate(zip(dims, depths)):
            down = [] if i == 0 else [ChannelsLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], c, 2, stride=2)]
            self.stages.append(nn.Sequential(*down, *[ConvNeXtBlock(c, layer_scale) for _ in range(n)]))
        self.norm, self.head = nn.LayerNorm(dims[-1]), nn.Linear(dims[-1], 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(self.norm(x.mean((-2, -1))))


class FixupBlock(nn.Module):
    """Fixup basic block (Zhang et al. 2019): scalar biases before each conv/activation and a scalar multiplier;
    the first conv N(0, 2/fan_in · L^{-1/(2m−2)}), the last conv zero."""

    def __init__(self, c, n_blocks):
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        nn.init.normal_(self.conv1.weight, 0, math.sqrt(2 / (c * 9)) * n_blocks ** -0.5)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x):
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return F.relu(out + x)


class FixupResNet(nn.Module):
    def __init__(self, c=16, n_blocks=6):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        self.bias1 = nn.Parameter(torch.zeros(1))
        self.blocks = nn.Sequential(*[FixupBlock(c, n_blocks) for _ in range(n_blocks)])
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.fc = nn.Linear(c, 10)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.blocks(F.relu(self.conv(x) + self.bias1))
        return self.fc(x.mean((-2, -1)) + self.bias2)


class RelativeAttention(nn.Module):
    """Windowed attention with a learned relative-position bias indexed by an integer buffer (Swin, BEiT)."""

    def __init__(self, d, window=4, heads=2):
        super().__init__()
        self.heads, self.window = heads, window
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1])

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.table[self.relative_position_index].permute(2, 0, 1)
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads) + bias).softmax(-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, d))


class RelativeEncoder(nn.Module):
    """Pre-LN encoder over a 4×4 window of tokens with relative-position attention."""

    def __init__(self, d=WIDTH, depth=3):
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.ln1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(depth))
        self.attn = nn.ModuleList(RelativeAttention(d) for _ in range(depth))
        self.ln2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(depth))
        self.mlp = nn.ModuleList(nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
                                 for _ in range(depth))
        _normal_(self)

    def forward(self, x):
        x = self.embed(x)
        for ln1, attn, ln2, mlp in zip(self.ln1, self.attn, self.ln2, self.mlp):
            x = x + attn(ln1(x))
            x = x + mlp(ln2(x))
        return x


def windows(g):
    return torch.randn(4, 16, 8, generator=g)


class StackedRNN(nn.Module):
    """``nn.RNN`` (tanh) with ``layers`` stacked layers, weights ×``scale`` of PyTorch's default; linear head."""

    def __init__(self, layers=6, hidden=64, scale=0.5, cell="RNN"):
        super().__init__()
        kind = getattr(nn, cell)
        self.rnn = kind(16, hidden, num_layers=layers, batch_first=True)
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight"):
                    p.mul_(scale)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def sequences(g):
    return torch.randn(4, 20, 16, generator=g)


class LSTMLM(nn.Module):
    """Embedding → 2-layer LSTM (PyTorch default init) → Linear head: the word-language-model example."""

    def __init__(self, d=WIDTH, layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.lstm = nn.LSTM(d, d, num_layers=layers, batch_first=True)
        self.head = nn.Linear(d, VOCAB)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)

    def forward(self, ids):
        return self.head(self.lstm(self.embed(ids))[0])


class _StraightThrough(torch.autograd.Function):
    """sign(x) forward, identity backward: the op is hidden from ``check``'s reader."""

    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class CustomFunctionMLP(nn.Module):
    """He ReLU MLP with a custom autograd Function (straight-through sign) in the middle of the main path."""

    def __init__(self, depth=8, width=64):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        for m in self.layers:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward(self, x):
        half = len(self.layers) // 2
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x))
            if i == half:
                x = _StraightThrough.apply(x)
        return x


def vectors(g):
    return torch.randn(8, 64, generator=g)


class NumpyStepMLP(CustomFunctionMLP):
    """The same MLP with a step computed in NumPy in the middle: the recorder sees a tensor from nowhere."""

    def forward(self, x):
        half = len(self.layers) // 2
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x))
            if i == half:
                x = torch.from_numpy(x.detach().cpu().numpy() * 1.0).to(x.dtype)
        return x


class EpsStarvedLN(nn.Module):
    """Linear (weights × ``scale``) → LayerNorm (ε = 1e-5) → He ReLU layers: with scale 1e-4 the norm's input sits
    far below ε and it no longer normalizes."""

    def __init__(self, scale=1.0, width=64):
        super().__init__()
        self.proj, self.norm = nn.Linear(width, width), nn.LayerNorm(width)
        self.layers = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(width, width), nn.ReLU())])
        with torch.no_grad():
            nn.init.normal_(self.proj.weight, 0, scale / math.sqrt(width))
            nn.init.zeros_(self.proj.bias)
            for m in self.layers:
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.layers(self.norm(self.proj(x)))


def relu_mlp(depth, width, std, generator, bias=0.0) -> nn.Sequential:
    """``depth`` × (Linear(width, width), ReLU) with weights N(0, std²/width) drawn from ``generator`` and every bias
    ``bias`` (std √2: He; a negative bias kills units)."""
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        with torch.no_grad():
            lin.weight.normal_(0, std / math.sqrt(width), generator=generator)
            lin.bias.fill_(bias)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers)


class _Reversible(torch.autograd.Function):
    """Residual blocks run in forward with autograd off, recomputed in backward (Reformer's ``_ReversibleFunction``,
    Gomez et al. 2017): no gradient reaches a tensor made inside."""

    @staticmethod
    def forward(ctx, x, blocks):
        ctx.blocks = blocks
        ctx.save_for_backward(x)
        for block in blocks:
            x = x + block(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            y = x
            for block in ctx.blocks:
                y = y + block(y)
            (g,) = torch.autograd.grad(y, x, grad)
        return g, None


class ReversibleEncoder(nn.Module):
    """Embedding, pre-LN residual blocks inside a custom autograd Function, LayerNorm, head (a small Reformer)."""

    def __init__(self, depth=4, width=64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(),
                                                  nn.Linear(width, width)) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB)

    def forward(self, ids):
        return self.head(self.norm(_Reversible.apply(self.embed(ids), self.blocks)))
