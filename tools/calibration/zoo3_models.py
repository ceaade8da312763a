"""Hand-written models of the third held-out zoo (:mod:`tools.calibration.zoo3`): a temporal convolutional network
(dilated causal 1-D convolutions with weight normalization), a pre-activation ResNet (BN-ReLU-conv, the stream
itself never normalized), a highway network (a learned sigmoid gate mixing the transform and the carried input)
and a SIREN (sine activations with their frequency ω₀). Every builder draws from torch's global RNG, so
``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from tools.calibration.zoo_models import he_convs_


# --------------------------------------------------------------------------------------------------------- TCN
class TemporalBlock(nn.Module):
    """TCN residual block (Bai, Kolter & Koltun 2018, Fig. 1b): two weight-normed dilated causal conv1d (left
    padding, so step t sees only steps ≤ t), ReLU after each; out = ReLU(x + branch)."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = weight_norm(nn.Conv1d(channels, channels, kernel, dilation=dilation))
        self.conv2 = weight_norm(nn.Conv1d(channels, channels, kernel, dilation=dilation))

    def forward(self, x):
        h = F.relu(self.conv1(F.pad(x, (self.pad, 0))))
        h = F.relu(self.conv2(F.pad(h, (self.pad, 0))))
        return F.relu(x + h)


class TCNLM(nn.Module):
    """Token embedding → ``levels`` TemporalBlocks with dilations 1, 2, 4, … → linear decoder (word-level TCN)."""

    def __init__(self, levels: int = 6, d: int = 64, kernel: int = 3, vocab: int = 1000):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.Sequential(*[TemporalBlock(d, kernel, 2 ** i) for i in range(levels)])
        self.decoder = nn.Linear(d, vocab)

    def forward(self, input_ids):
        h = self.blocks(self.embed(input_ids).transpose(1, 2))
        return self.decoder(h.transpose(1, 2))


def tcn_lm(conv_std: float = 0.01) -> nn.Module:
    """The reference TCN init (Bai et al. 2018, code ``init_weights``): conv weights N(0, 0.01²) *before* weight
    normalization (so g = ‖v‖ and the effective weight is v at init), embedding and decoder N(0, 0.01²), decoder
    bias 0; ``conv_std`` replaces the conv weights' std."""
    model = TCNLM()
    with torch.no_grad():
        for block in model.blocks:
            for conv in (block.conv1, block.conv2):
                w = conv.parametrizations.weight
                w.original1.normal_(0.0, conv_std)  # v
                w.original0.copy_(w.original1.norm(dim=(1, 2), keepdim=True))  # g = ‖v‖ per output channel
        nn.init.normal_(model.embed.weight, 0.0, 0.01)
        nn.init.normal_(model.decoder.weight, 0.0, 0.01)
        nn.init.zeros_(model.decoder.bias)
    return model


# --------------------------------------------------------------------------------------------- pre-act ResNet
class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016b, Fig. 4e): BN-ReLU-conv3×3-BN-ReLU-conv3×3 added to the
    unnormalized stream; where the shape changes, a 1×1 conv of the first BN-ReLU output is the shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, bn: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
        self.bn1, self.bn2 = norm(c_in), norm(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        h = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(h)
        return skip + self.conv2(F.relu(self.bn2(self.conv1(h))))


def preact_resnet(bn: bool = True, weight_scale: float = 1.0, blocks_per_stage: int = 4) -> nn.Module:
    """CIFAR pre-activation ResNet: conv 3→16, three stages (16, 32, 64 channels, stride 2 between) of
    ``blocks_per_stage`` PreActBlocks, final BN-ReLU → pool → linear. He init (kaiming_normal_, fan_in, ReLU gain;
    He et al. 2015) for every conv, × ``weight_scale``; BN 1/0; ``bn=False``: every BN is an identity."""
    layers, c = [nn.Conv2d(3, 16, 3, 1, 1, bias=False)], 16
    for stage, width in enumerate((16, 32, 64)):
        for i in range(blocks_per_stage):
            layers.append(PreActBlock(c, width, 2 if stage and not i else 1, bn))
            c = width
    layers += [nn.BatchNorm2d(c) if bn else nn.Identity(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(c, 10)]
    model = nn.Sequential(*layers)
    return he_convs_(model, weight_scale)


# --------------------------------------------------------------------------------------------------- highway
class Highway(nn.Module):
    """Highway layer (Srivastava, Greff & Schmidhuber 2015, eq. 3): y = H(x)·T(x) + x·(1 − T(x)), H = ReLU
    affine, T = sigmoid affine (the transform gate)."""

    def __init__(self, d: int):
        super().__init__()
        self.h, self.t = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        gate = torch.sigmoid(self.t(x))
        return F.relu(self.h(x)) * gate + x * (1 - gate)


def highway_net(depth: int = 20, d: int = 64, gate_bias: float = -2.0) -> nn.Module:
    """CIFAR pixels flattened → linear 3072 → ``d`` + ReLU → ``depth`` Highway layers → linear 10; PyTorch's
    default init everywhere except the transform gate's bias, ``gate_bias`` (the paper: −1 to −3, so that layers
    start by carrying their input)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, d), nn.ReLU(),
                          *[Highway(d) for _ in range(depth)], nn.Linear(d, 10))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Highway):
                nn.init.constant_(m.t.bias, gate_bias)
    return model


# ----------------------------------------------------------------------------------------------------- SIREN
class Sine(nn.Module):
    """sin(ω₀·x) (Sitzmann et al. 2020)."""

    def __init__(self, w0: float):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(self.w0 * x)


def siren(depth: int = 8, d: int = 128, w0: float = 30.0, hidden_bound: float | None = None) -> nn.Module:
    """CIFAR pixels flattened → ``depth`` sine layers of width ``d`` → linear 10, with the SIREN init (Sitzmann et
    al. 2020, §3.2): first layer U(±1/fan_in), later layers U(±√(6/fan_in)/ω₀), so that ω₀·Wx has variance
    2·E[x²] and every sine's input stays arcsine-distributed; biases and the head keep PyTorch's default.
    ``hidden_bound`` (× √(6/fan_in)) replaces the hidden layers' bound."""
    widths = [3 * 32 * 32] + [d] * depth
    layers = [nn.Flatten()]
    for n_in, n_out in zip(widths, widths[1:]):
        layers += [nn.Linear(n_in, n_out), Sine(w0)]
    model = nn.Sequential(*layers, nn.Linear(d, 10))
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    with torch.no_grad():
        nn.init.uniform_(linears[0].weight, -1 / widths[0], 1 / widths[0])
        for lin in linears[1:]:
            bound = (6 / lin.in_features) ** 0.5 * (1 / w0 if hidden_bound is None else hidden_bound)
            nn.init.uniform_(lin.weight, -bound, bound)
    return model


__all__ = ["tcn_lm", "preact_resnet", "highway_net", "siren"]
