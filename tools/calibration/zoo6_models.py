"""Hand-written image models of the sixth held-out zoo (:mod:`tools.calibration.zoo6`): ConvMixer, ShuffleNetV2,
ResNeXt, NF-ResNet, gMLP, ResMLP, a self-normalizing SELU MLP and a weight-normalized CNN, each with its paper's (or
its reference code's) init and a knob for the broken variant. Every builder draws from torch's global RNG, so
``torch.manual_seed`` reproduces it. The sequence models are in :mod:`tools.calibration.zoo6_seq_models`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


def _scale_weights(model: nn.Module, scale: float, types=(nn.Conv2d, nn.Linear)) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, types):
                m.weight.mul_(scale)


def _bn(c: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if bn else nn.Identity()


# ------------------------------------------------------------------------------------------------- ConvMixer
class ConvMixerLayer(nn.Module):
    """ConvMixer layer (Trockman & Kolter 2022, Fig. 2): x + BN(GELU(depthwise conv(x))), then BN(GELU(1×1 conv))."""

    def __init__(self, d: int, kernel: int, bn: bool):
        super().__init__()
        self.depthwise = nn.Conv2d(d, d, kernel, groups=d, padding="same")
        self.pointwise = nn.Conv2d(d, d, 1)
        self.bn1, self.bn2 = _bn(d, bn), _bn(d, bn)

    def forward(self, x):
        x = x + self.bn1(F.gelu(self.depthwise(x)))
        return self.bn2(F.gelu(self.pointwise(x)))


def convmixer(bn: bool = True, weight_scale: float = 1.0, d: int = 64, depth: int = 6, kernel: int = 5,
              patch: int = 2) -> nn.Module:
    """ConvMixer-64/6 for CIFAR (patch 2, kernel 5): patch embedding conv + GELU + BN, ``depth`` layers, global
    average pool, linear head; PyTorch's default init (the reference code sets none). ``bn=False``: every BN an
    identity; ``weight_scale`` multiplies every conv weight."""
    model = nn.Sequential(nn.Conv2d(3, d, patch, patch), nn.GELU(), _bn(d, bn),
                          *[ConvMixerLayer(d, kernel, bn) for _ in range(depth)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, 10))
    _scale_weights(model, weight_scale, (nn.Conv2d,))
    return model


# ---------------------------------------------------------------------------------------------- ShuffleNetV2
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True, bn: bool = True):
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), _bn(c_out, bn)]
    return nn.Sequential(*layers, *([nn.ReLU()] if relu else []))


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (Ma et al. 2018, Fig. 3c/d; torchvision ``InvertedResidual``): stride 1 splits the channels,
    passes one half through and the other through 1×1 → depthwise 3×3 → 1×1 (BN each, ReLU after the 1×1s); stride 2
    runs both halves' branches on the whole input; then concatenation and a channel shuffle (2 groups)."""

    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        self.stride, half = stride, c_out // 2
        self.shortcut = nn.Sequential(_conv_bn(c_in, c_in, 3, stride, c_in, False, bn), _conv_bn(c_in, half, 1, bn=bn)
                                      ) if stride > 1 else nn.Identity()
        c_branch = c_in if stride > 1 else half
        self.branch = nn.Sequential(_conv_bn(c_branch, half, 1, bn=bn), _conv_bn(half, half, 3, stride, half, False, bn),
                                    _conv_bn(half, half, 1, bn=bn))

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.branch(b)], 1)
        else:
            out = torch.cat([self.shortcut(x), self.branch(x)], 1)
        return channel_shuffle(out, 2)


def shufflenet_v2(bn: bool = True, weight_scale: float = 1.0, widths=(24, 48, 96), repeats=(2, 3, 2)) -> nn.Module:
    """A CIFAR ShuffleNetV2 (0.5× widths, stages 2/3/2 units with a stride-2 unit first, stem conv 3×3 → 24 without
    the max-pool), 1×1 conv → 256, global average pool, linear head; torchvision's init (PyTorch defaults).
    ``bn=False``: every BN an identity; ``weight_scale`` multiplies every conv weight."""
    layers, c = [_conv_bn(3, widths[0], 3, bn=bn)], widths[0]
    for width, n in zip((*widths[1:], 2 * widths[-1]), repeats):
        layers += [ShuffleUnit(c, width, 2, bn), *[ShuffleUnit(width, width, 1, bn) for _ in range(n - 1)]]
        c = width
    model = nn.Sequential(*layers, _conv_bn(c, 256, 1, bn=bn), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(256, 10))
    _scale_weights(model, weight_scale, (nn.Conv2d,))
    return model


# --------------------------------------------------------------------------------------------------- ResNeXt
class ResNeXtBottleneck(nn.Module):
    """ResNeXt block (Xie et al. 2017, Fig. 3c): 1×1 → grouped 3×3 (``cardinality`` groups) → 1×1, BN after each,
    ReLU(x + branch), a 1×1 conv + BN projection where the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, cardinality: int, width: int, bn: bool):
        super().__init__()
        inner = cardinality * width
        self.conv1, self.bn1 = nn.Conv2d(c_in, inner, 1, bias=False), _bn(inner, bn)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = _bn(inner, bn)
        self.conv3, self.bn3 = nn.Conv2d(inner, c_out, 1, bias=False), _bn(c_out, bn)
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out, bn))
                         if stride > 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        return F.relu(self.shortcut(x) + self.bn3(self.conv3(h)))


def resnext(bn: bool = True, weight_scale: float = 1.0, cardinality: int = 8, width: int = 4,
            channels=(64, 128, 256), blocks: int = 2) -> nn.Module:
    """A CIFAR ResNeXt (3 stages of ``blocks`` bottlenecks, 8×4d, stem conv 3×3 → 32 + BN + ReLU), global average
    pool, linear head; torchvision's ResNet init (kaiming_normal_ fan_out for convs, BN 1/0). ``bn=False``: every
    BN an identity; ``weight_scale`` multiplies every conv weight after that init."""
    layers, c = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), _bn(32, bn), nn.ReLU()], 32
    for i, c_out in enumerate(channels):
        for j in range(blocks):
            layers.append(ResNeXtBottleneck(c, c_out, 2 if i and not j else 1, cardinality, width * 2 ** i, bn))
            c = c_out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                m.weight.mul_(weight_scale)
    return model


# ------------------------------------------------------------------------------------------------- NF-ResNet
_RELU_GAMMA = math.sqrt(2 / (1 - 1 / math.pi))  # Brock et al. 2021a, §4.1: Var(γ·relu(z)) = 1 for z ~ N(0, 1)


class WSConv2d(nn.Conv2d):
    """Scaled weight standardization (Brock et al. 2021a, eq. 5): Ŵ = gain · (W − mean) / (std · √fan_in) per output
    channel, ``gain`` learned (init 1)."""

    def __init__(self, *args, standardize: bool = True, **kw):
        super().__init__(*args, **kw)
        self.standardize = standardize
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))

    def forward(self, x):
        w = self.weight
        if self.standardize:
            fan_in = w[0].numel()
            mean, var = w.mean(dim=(1, 2, 3), keepdim=True), w.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
            w = self.gain * (w - mean) / torch.sqrt(var * fan_in + 1e-4)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class NFBlock(nn.Module):
    """Normalizer-free pre-activation block (Brock et al. 2021a, §4): h + α · f(h / β), f = conv(γ·relu(conv(γ·relu
    ·))), β = √Var(h) predicted analytically; a transition block (stride 2 or new width) takes its shortcut, a 1×1
    WS conv, from γ·relu(h / β) too."""

    def __init__(self, c_in: int, c_out: int, stride: int, alpha: float, beta: float, standardize: bool):
        super().__init__()
        self.alpha, self.beta = alpha, beta
        ws = dict(standardize=standardize)
        self.conv1 = WSConv2d(c_in, c_out, 3, stride, 1, **ws)
        self.conv2 = WSConv2d(c_out, c_out, 3, 1, 1, **ws)
        self.shortcut = WSConv2d(c_in, c_out, 1, stride, **ws) if stride > 1 or c_in != c_out else None

    def forward(self, x):
        out = _RELU_GAMMA * F.relu(x / self.beta)
        skip = x if self.shortcut is None else self.shortcut(out)
        return skip + self.alpha * self.conv2(_RELU_GAMMA * F.relu(self.conv1(out)))


def nf_resnet(alpha: float = 0.2, scaled: bool = True, standardize: bool = True, channels=(16, 32, 64),
              blocks: int = 4) -> nn.Module:
    """A CIFAR NF-ResNet (3 stages of ``blocks`` NFBlocks, α = 0.2, stem WS conv 3×3 → 16), global average pool,
    linear head; convs kaiming_normal_ fan_in before standardization, biases 0 (the reference ``nf_resnet`` code).
    The expected variance starts at 1 after the stem, grows by α² per block and resets to 1 + α² after a
    transition. ``scaled=False``: β = 1 everywhere (the paper's downscaling left out); ``standardize=False``: plain
    convs with the He init."""
    layers, c, var = [WSConv2d(3, channels[0], 3, 1, 1, standardize=standardize)], channels[0], 1.0
    for i, c_out in enumerate(channels):
        for j in range(blocks):
            transition = c != c_out or (i and not j)
            layers.append(NFBlock(c, c_out, 2 if i and not j else 1, alpha, math.sqrt(var) if scaled else 1.0,
                                  standardize))
            var = 1.0 + alpha ** 2 if transition else var + alpha ** 2
            c = c_out
    model = nn.Sequential(*layers, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, WSConv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return model


# ------------------------------------------------------------------------------------------- gMLP and ResMLP
def _patches(x: torch.Tensor, stem: nn.Module) -> torch.Tensor:
    return stem(x).flatten(2).transpose(1, 2)


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
                nn.init.xavier_uniform_(lin.weight) if weight_std is None else nn.init.normal_(lin.weight, 0, weight_std)
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
        return self.norm(self.blocks(_patches(x, self.stem)))


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
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu") if he else nn.init.trunc_normal_(m.weight,
                                                                                                          std=0.02)
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


__all__ = ["convmixer", "shufflenet_v2", "resnext", "nf_resnet", "gmlp", "resmlp", "selu_mlp", "weightnorm_cnn"]
