"""Hand-written conv nets of the sixth held-out zoo (:mod:`tools.calibration.zoo6`): ConvMixer, ShuffleNetV2,
ResNeXt, NF-ResNet, MobileNetV1, Res2Net and GhostNet, each with its paper's (or its reference code's) init and a knob
for the broken variant. Every builder draws from torch's global RNG, so ``torch.manual_seed`` reproduces it. The
MLP-like and weight-normalized models are in :mod:`tools.calibration.zoo6_mlp_models`, the language models in
:mod:`tools.calibration.zoo6_seq_models`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from tools.calibration.zoo_models import he_convs_


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
    return he_convs_(model, weight_scale, "fan_out")


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


# -------------------------------------------------------------------------------------------------- MobileNetV1
class DepthwiseSeparable(nn.Module):
    """MobileNet's depthwise separable convolution (Howard et al. 2017, Fig. 3): depthwise 3×3 → BN → ReLU, then
    pointwise 1×1 → BN → ReLU; no residual."""

    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        self.depthwise, self.bn1 = nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), _bn(c_in, bn)
        self.pointwise, self.bn2 = nn.Conv2d(c_in, c_out, 1, bias=False), _bn(c_out, bn)

    def forward(self, x):
        return F.relu(self.bn2(self.pointwise(F.relu(self.bn1(self.depthwise(x))))))


def mobilenet_v1(bn: bool = True, weight_scale: float = 1.0) -> nn.Module:
    """A CIFAR MobileNetV1 at width 0.5 (Howard et al. 2017, Table 1 with stride 1 in the stem and the first stage):
    conv 3×3 → 16, BN, ReLU, then 9 depthwise separable layers (16 → 32 → 64 s2 → 64 → 128 s2 → 128 → 256 s2 → 256 →
    256 → 256), global average pool, linear head; PyTorch's default init. ``bn=False``: every BN an identity;
    ``weight_scale`` multiplies every conv weight."""
    plan = [(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
            (256, 256, 1), (256, 256, 1)]
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), _bn(16, bn), nn.ReLU(),
                          *[DepthwiseSeparable(a, b, s, bn) for a, b, s in plan],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(256, 10))
    _scale_weights(model, weight_scale, (nn.Conv2d,))
    return model


# ----------------------------------------------------------------------------------------------------- Res2Net
class Res2NetBottleneck(nn.Module):
    """Res2Net block (Gao et al. 2021, Fig. 2b, in the reference code's order): 1×1 conv, its output split into
    ``scale`` groups x₁ … x_s; y₁ = K₁(x₁), y_i = K_i(x_i + y_{i−1}) for i < s with 3×3 convs (BN, ReLU), y_s = x_s;
    the y's concatenated → 1×1 conv; ReLU(x + branch),
    BN after every conv, a 1×1 projection shortcut where the shape changes (stride 2: the first group's path is
    average-pooled and every K_i is strided, the reference code's "stage" block)."""

    def __init__(self, c_in: int, c_out: int, stride: int, width: int, scale: int, bn: bool):
        super().__init__()
        self.stride, self.scale = stride, scale
        self.conv1, self.bn1 = nn.Conv2d(c_in, width * scale, 1, bias=False), _bn(width * scale, bn)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(scale - 1))
        self.bns = nn.ModuleList(_bn(width, bn) for _ in range(scale - 1))
        self.conv3, self.bn3 = nn.Conv2d(width * scale, c_out, 1, bias=False), _bn(c_out, bn)
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out, bn))
                         if stride > 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        xs = F.relu(self.bn1(self.conv1(x))).chunk(self.scale, dim=1)
        ys, y = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = F.relu(bn(conv(xs[i] if y is None or self.stride > 1 else xs[i] + y)))
            ys.append(y)
        last = xs[-1] if self.stride == 1 else F.avg_pool2d(xs[-1], 3, self.stride, 1)
        out = self.bn3(self.conv3(torch.cat([*ys, last], 1)))
        return F.relu(self.shortcut(x) + out)


def res2net(bn: bool = True, weight_scale: float = 1.0, channels=(64, 128, 256), blocks: int = 2, width: int = 8,
            scale: int = 4) -> nn.Module:
    """A CIFAR Res2Net (3 stages of ``blocks`` bottlenecks, scale 4, base width 8 doubling per stage, stem conv 3×3
    → 32 + BN + ReLU), global average pool, linear head; the reference init (kaiming_normal_ fan_out, BN 1/0).
    ``bn=False``: every BN an identity; ``weight_scale`` multiplies every conv weight after that init."""
    layers, c = [nn.Conv2d(3, 32, 3, 1, 1, bias=False), _bn(32, bn), nn.ReLU()], 32
    for i, c_out in enumerate(channels):
        for j in range(blocks):
            layers.append(Res2NetBottleneck(c, c_out, 2 if i and not j else 1, width * 2 ** i, scale, bn))
            c = c_out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    return he_convs_(model, weight_scale, "fan_out")


# ---------------------------------------------------------------------------------------------------- GhostNet
class GhostModule(nn.Module):
    """Ghost module (Han et al. 2020, Fig. 2b): a primary 1×1 conv makes half the output channels, a cheap depthwise
    3×3 conv makes the other half from them ("ghost" features); both BN, ReLU if ``relu``, concatenated."""

    def __init__(self, c_in: int, c_out: int, relu: bool, bn: bool):
        super().__init__()
        half = c_out // 2
        self.primary = nn.Sequential(nn.Conv2d(c_in, half, 1, bias=False), _bn(half, bn),
                                     *([nn.ReLU()] if relu else []))
        self.cheap = nn.Sequential(nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False), _bn(half, bn),
                                   *([nn.ReLU()] if relu else []))

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)


class GhostBottleneck(nn.Module):
    """Ghost bottleneck (Han et al. 2020, Fig. 3): ghost module (expand, ReLU) → [depthwise 3×3 stride 2 + BN] →
    ghost module (project, no ReLU), added to the input (or to a depthwise + 1×1 projection of it)."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        self.expand, self.project = GhostModule(c_in, c_mid, True, bn), GhostModule(c_mid, c_out, False, bn)
        self.down = (nn.Sequential(nn.Conv2d(c_mid, c_mid, 3, stride, 1, groups=c_mid, bias=False), _bn(c_mid, bn))
                     if stride > 1 else nn.Identity())
        self.shortcut = (nn.Sequential(nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), _bn(c_in, bn),
                                       nn.Conv2d(c_in, c_out, 1, bias=False), _bn(c_out, bn))
                         if stride > 1 or c_in != c_out else nn.Identity())

    def forward(self, x):
        return self.shortcut(x) + self.project(self.down(self.expand(x)))


def ghostnet(bn: bool = True, weight_scale: float = 1.0) -> nn.Module:
    """A CIFAR GhostNet (stem conv 3×3 → 16 + BN + ReLU, 8 ghost bottlenecks (expansion 16/48/72/72/120/240/200/200,
    outputs 16/24/24/40/40/80/80/80, stride 2 at the 2nd, 4th and 6th), 1×1 conv → 320 + BN + ReLU, global average
    pool, linear head; the reference code's init (PyTorch defaults). ``bn=False``: every BN an identity;
    ``weight_scale`` multiplies every conv weight."""
    plan = [(16, 16, 16, 1), (16, 48, 24, 2), (24, 72, 24, 1), (24, 72, 40, 2), (40, 120, 40, 1), (40, 240, 80, 2),
            (80, 200, 80, 1), (80, 200, 80, 1)]
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), _bn(16, bn), nn.ReLU(),
                          *[GhostBottleneck(a, m, b, s, bn) for a, m, b, s in plan],
                          nn.Conv2d(80, 320, 1, bias=False), _bn(320, bn), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(320, 10))
    _scale_weights(model, weight_scale, (nn.Conv2d,))
    return model


__all__ = ["convmixer", "shufflenet_v2", "resnext", "nf_resnet", "mobilenet_v1", "res2net", "ghostnet"]
