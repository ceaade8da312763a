"""Hand-written models of the held-out zoo (:mod:`tools.calibration.zoo`): normalization-free residual nets (Fixup,
SkipInit), EfficientNet-style inverted residuals with squeeze-excitation, DenseNet concatenation, a U-Net, and
recurrent language models. Every builder draws from torch's global RNG, so ``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _he_(conv: nn.Module, scale: float = 1.0, mode: str = "fan_in") -> None:
    nn.init.kaiming_normal_(conv.weight, mode=mode, nonlinearity="relu")
    with torch.no_grad():
        conv.weight.mul_(scale)
        if conv.bias is not None:
            conv.bias.zero_()


# ------------------------------------------------------------------------------------------ normalization-free
class FixupBlock(nn.Module):
    """Fixup BasicBlock (Zhang, Dauphin & Ma 2019, Fig. 1): scalar biases before each conv and activation, a scalar
    multiplier after the second conv, identity shortcut, no normalization."""

    def __init__(self, c: int):
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return F.relu(out + x)


class SkipInitBlock(nn.Module):
    """SkipInit block (De & Smith 2020, §4): ``x + α·branch(x)``, branch conv-ReLU-conv, a learned scalar α."""

    def __init__(self, c: int, alpha: float):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.alpha = nn.Parameter(torch.full((1,), float(alpha)))

    def forward(self, x):
        return x + self.alpha * self.conv2(F.relu(self.conv1(x)))


class _StemResNet(nn.Module):
    """conv3×3 stem (ReLU) → ``blocks`` → global average pool → linear head, 32×32 images."""

    def __init__(self, blocks: list, c: int, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, 1, 1)
        _he_(self.stem)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def fixup_resnet(n_blocks: int = 16, c: int = 16, fixup: bool = True) -> nn.Module:
    """Fixup init (Zhang et al. 2019, §3 rules 1-3): conv1 He × L^(-1/(2m-2)) = L^(-1/2) (m = 2 layers per branch),
    conv2 zero, scalar multipliers 1, biases 0 (the classifier keeps PyTorch's default so gradients at init are
    non-zero). ``fixup=False``: both convs He, nothing rescaled — each block doubles the stream's variance."""
    blocks = [FixupBlock(c) for _ in range(n_blocks)]
    for b in blocks:
        _he_(b.conv1, n_blocks ** -0.5 if fixup else 1.0)
        if fixup:
            nn.init.zeros_(b.conv2.weight)
        else:
            _he_(b.conv2)
    return _StemResNet(blocks, c)


def skipinit_resnet(n_blocks: int = 16, c: int = 16, alpha: float = 0.0) -> nn.Module:
    """SkipInit (De & Smith 2020): He-initialized branches, α = ``alpha`` (0 in the paper)."""
    blocks = [SkipInitBlock(c, alpha) for _ in range(n_blocks)]
    for b in blocks:
        _he_(b.conv1), _he_(b.conv2)
    return _StemResNet(blocks, c)


# ------------------------------------------------------------------------------------------ inverted residuals
class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): x · sigmoid(W2 SiLU(W1 mean_hw(x)))."""

    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, max(1, c // r), 1), nn.Conv2d(max(1, c // r), c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.silu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


def _norm(c: int, bn: bool) -> nn.Module:
    return nn.BatchNorm2d(c) if bn else nn.Identity()


class MBConv(nn.Module):
    """EfficientNet MBConv (Tan & Le 2019; MobileNetV2, Sandler et al. 2018): 1×1 expand-norm-SiLU, depthwise 3×3
    -norm-SiLU, SE, 1×1 project-norm, identity shortcut when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int = 4, bn: bool = True):
        super().__init__()
        h = c_in * expand
        self.expand = nn.Sequential(nn.Conv2d(c_in, h, 1, bias=not bn), _norm(h, bn), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=not bn), _norm(h, bn), nn.SiLU())
        self.se = SqueezeExcite(h)
        self.project = nn.Sequential(nn.Conv2d(h, c_out, 1, bias=not bn), _norm(c_out, bn))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        out = self.project(self.se(self.dw(self.expand(x))))
        return out + x if self.residual else out


def mbconv_net(bn: bool = True, weight_std: float | None = None, c: int = 24, n_blocks: int = 6) -> nn.Module:
    """Stem conv-norm-SiLU → MBConv(16→c, stride 2) → ``n_blocks - 1`` residual MBConv(c) → pool → linear.
    Convs: torchvision EfficientNet init (kaiming_normal_ fan_out, BN 1/0), or N(0, ``weight_std``²) when given."""
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=not bn), _norm(16, bn), nn.SiLU(), MBConv(16, c, 2, bn=bn)]
    layers += [MBConv(c, c, 1, bn=bn) for _ in range(n_blocks - 1)]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if weight_std is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            else:
                nn.init.normal_(m.weight, 0.0, weight_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


# ------------------------------------------------------------------------------------------------ concatenation
class DenseLayer(nn.Module):
    """DenseNet layer (Huang et al. 2017): norm-ReLU-conv3×3 to ``growth`` channels, concatenated to its input."""

    def __init__(self, c_in: int, growth: int, bn: bool):
        super().__init__()
        self.norm = _norm(c_in, bn)
        self.conv = nn.Conv2d(c_in, growth, 3, 1, 1, bias=not bn)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.norm(x)))], 1)


def densenet(bn: bool = True, layers: int = 8, growth: int = 12, weight_scale: float = 1.0) -> nn.Module:
    """stem conv3×3 (2·growth) → ``layers`` dense layers → norm-ReLU → pool → linear; convs He (torchvision's
    DenseNet init: kaiming_normal_) × ``weight_scale``."""
    c = 2 * growth
    mods = [nn.Conv2d(3, c, 3, 1, 1, bias=not bn)]
    for _ in range(layers):
        mods.append(DenseLayer(c, growth, bn))
        c += growth
    model = nn.Sequential(*mods, _norm(c, bn), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            _he_(m, weight_scale)
    return model


# ------------------------------------------------------------------------------------------------------ U-Net
def _double_conv(c_in: int, c_out: int, bn: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), _norm(c_out, bn), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), _norm(c_out, bn), nn.ReLU())


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) with two downsamplings: double convs, max-pool, transposed-conv upsampling,
    skip concatenation; a 1×1 conv to 10 maps, averaged over the image (a classifier for the training task)."""

    def __init__(self, c: int = 16, bn: bool = True):
        super().__init__()
        self.down1, self.down2 = _double_conv(3, c, bn), _double_conv(c, 2 * c, bn)
        self.mid = _double_conv(2 * c, 4 * c, bn)
        self.up2, self.dec2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, 2), _double_conv(4 * c, 2 * c, bn)
        self.up1, self.dec1 = nn.ConvTranspose2d(2 * c, c, 2, 2), _double_conv(2 * c, c, bn)
        self.out = nn.Conv2d(c, 10, 1)

    def forward(self, x):
        s1 = self.down1(x)
        s2 = self.down2(F.max_pool2d(s1, 2))
        m = self.mid(F.max_pool2d(s2, 2))
        d2 = self.dec2(torch.cat([self.up2(m), s2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), s1], 1))
        return self.out(d1).mean((2, 3))


def unet(bn: bool = True, weight_scale: float = 1.0) -> nn.Module:
    """PyTorch's default init (kaiming_uniform_ a=√5: σ_w² = 1/3 per fan-in) with or without BatchNorm, conv
    weights × ``weight_scale``."""
    model = UNet(bn=bn)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.mul_(weight_scale)
    return model


# ------------------------------------------------------------------------------------------------- recurrent
class RecurrentLM(nn.Module):
    """Embedding (N(0, 1)) → ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``layers`` stacked in one module) → linear head."""

    def __init__(self, kind: str, layers: int, hidden: int = 128, vocab: int = 1000, emb: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind](emb, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, input_ids):
        return self.head(self.rnn(self.embed(input_ids))[0])


def recurrent_lm(kind: str, layers: int = 2, scale: float = 1.0, orthogonal: bool = False) -> nn.Module:
    """PyTorch's default recurrent init (U(±1/√H)), or ``orthogonal``: weight_hh orthogonal, weight_ih
    xavier_normal_ (Saxe et al. 2014; Le et al. 2015), biases 0; then every recurrent weight × ``scale``."""
    model = RecurrentLM(kind, layers)
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            if orthogonal and name.startswith("weight_hh"):
                for chunk in p.chunk(p.shape[0] // p.shape[1]):
                    nn.init.orthogonal_(chunk)
            elif orthogonal and name.startswith("weight_ih"):
                for chunk in p.chunk(p.shape[0] // p.shape[1]):
                    nn.init.xavier_normal_(chunk)
            elif orthogonal:
                p.zero_()
            if name.startswith("weight"):
                p.mul_(scale)
    return model


__all__ = ["fixup_resnet", "skipinit_resnet", "mbconv_net", "densenet", "unet", "recurrent_lm"]


class LayerStackLM(nn.Module):
    """A token LM of the later zoos: an embedding (N(0, 1)), ``n`` layers ``make_layer()`` mapping [B, T, d] to
    [B, T, d], a linear head to ``vocab``; built in that order, so the global RNG draws them as a hand-written
    ``__init__`` would."""

    def __init__(self, d: int, make_layer, n: int, vocab: int = 1000):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(make_layer() for _ in range(n))
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def he_convs_(model: nn.Module, scale: float = 1.0, mode: str = "fan_in") -> nn.Module:
    """``model`` with every ``nn.Conv2d`` weight drawn He-normal (ReLU gain, ``mode`` fan_in or fan_out), then ×
    ``scale``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
                m.weight.mul_(scale)
    return model
