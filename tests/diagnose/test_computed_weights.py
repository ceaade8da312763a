"""A linear or conv layer whose class computes its weight in forward from its own ``weight`` (BiT's
weight-standardized conv, ŵ = (w − μ)/σ per output channel, Qiao et al. 2019) is a weight layer running with the
computed weight: its σ_w is read from ŵ (std 1, so σ_w = √fan_in). Before (held-out-5, ``bit-2+2+2``), the
standardization's ``batch_norm`` on the weight was read as a norm site of M = 1 and the convs were no sites: 3 of 25
main-path links read."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepstart.diagnose import check

WIDTH, DEPTH = 16, 6


class WSConv(nn.Conv2d):
    def forward(self, x):
        w = self.weight.reshape(self.out_channels, -1)
        w = (w - w.mean(1, keepdim=True)) / (w.var(1, keepdim=True, unbiased=False) + 1e-6).sqrt()
        return F.conv2d(x, w.reshape_as(self.weight), self.bias, self.stride, self.padding)


def _build():
    layers, c = [], 3
    for _ in range(DEPTH):
        layers += [WSConv(c, WIDTH, 3, padding=1, bias=False), nn.ReLU()]
        c = WIDTH
    return nn.Sequential(*layers)


def test_weight_standardized_convs_are_weight_layers_with_the_computed_weight():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    report = check(_build(), (torch.randn(4, 3, 8, 8, generator=g),), factory=_build, n_inits=2, generator=g,
                   jacobian=False)
    layers = [s for s in report.sites if s["kind"] == "layer"]
    assert [s["name"] for s in layers] == [str(2 * i) for i in range(DEPTH)], [s["name"] for s in report.sites]
    for s, fan_in in zip(layers, [27] + [9 * WIDTH] * (DEPTH - 1)):
        assert s["sigma_w"] == pytest.approx(math.sqrt(fan_in), rel=1e-3), s
