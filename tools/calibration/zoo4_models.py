"""Hand-written models of the fourth held-out zoo (:mod:`tools.calibration.zoo4`): a SqueezeNet (fire modules:
a 1×1 squeeze conv, then parallel 1×1 and 3×3 expand convs concatenated; no normalization, no residual) and a gated
convolutional language model (Dauphin et al. 2017: causal conv1d gated by a GLU, residual every block). Every
builder draws from torch's global RNG, so ``torch.manual_seed`` reproduces it.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


# ------------------------------------------------------------------------------------------------ SqueezeNet
class Fire(nn.Module):
    """Fire module (Iandola et al. 2016, §3.2): ReLU(squeeze 1×1) → [ReLU(expand 1×1), ReLU(expand 3×3)],
    concatenated."""

    def __init__(self, c_in: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1(s)), F.relu(self.expand3(s))], 1)


def squeezenet(weight_scale: float = 1.0) -> nn.Module:
    """A CIFAR SqueezeNet 1.1: conv 3→32 + ReLU, six Fire modules (max-pool 2 after the second and fourth),
    dropout-free classifier conv 1×1 → 10 + ReLU → global average pool. torchvision's init (``squeezenet.py``):
    kaiming_uniform_ for every conv, the final conv N(0, 0.01²), biases 0; ``weight_scale`` multiplies every
    conv weight but the final one."""
    fires = [Fire(32, 8, 32), Fire(64, 8, 32), nn.MaxPool2d(2), Fire(64, 16, 64), Fire(128, 16, 64),
             nn.MaxPool2d(2), Fire(128, 24, 96), Fire(192, 24, 96)]
    final = nn.Conv2d(192, 10, 1)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), *fires, final, nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                if m is final:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                    m.weight.mul_(weight_scale)
                nn.init.zeros_(m.bias)
    return model


# ---------------------------------------------------------------------------------------------- gated conv LM
class GatedConvBlock(nn.Module):
    """Gated linear unit block (Dauphin et al. 2017, eq. 1): h = (X∗W + b) ⊗ σ(X∗V + c) with a causal conv1d
    (left padding k − 1), added to the block's input (their residual every block)."""

    def __init__(self, d: int, kernel: int):
        super().__init__()
        self.pad = kernel - 1
        self.conv = nn.Conv1d(d, 2 * d, kernel)

    def forward(self, x):
        return x + F.glu(self.conv(F.pad(x, (self.pad, 0))), dim=1)


class GatedConvLM(nn.Module):
    """Token embedding → ``depth`` GatedConvBlocks → linear decoder."""

    def __init__(self, depth: int = 8, d: int = 64, kernel: int = 4, vocab: int = 1000):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.Sequential(*[GatedConvBlock(d, kernel) for _ in range(depth)])
        self.decoder = nn.Linear(d, vocab)

    def forward(self, input_ids):
        h = self.blocks(self.embed(input_ids).transpose(1, 2))
        return self.decoder(h.transpose(1, 2))


def gated_conv_lm(conv_std: float | None = None) -> nn.Module:
    """The gated conv LM with the paper's init (Dauphin et al. 2017, §5: He init, N(0, 2/fan_in), for the convs;
    embedding N(0, 1), PyTorch's default decoder); ``conv_std`` replaces the conv weights' std."""
    model = GatedConvLM()
    with torch.no_grad():
        for block in model.blocks:
            std = (2 / (block.conv.in_channels * block.conv.kernel_size[0])) ** 0.5 if conv_std is None else conv_std
            nn.init.normal_(block.conv.weight, 0.0, std)
            nn.init.zeros_(block.conv.bias)
    return model


__all__ = ["squeezenet", "gated_conv_lm"]
