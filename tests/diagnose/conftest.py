"""Shared models of the diagnose tests."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn


class ScaledBlock(nn.Module):
    """x + η·branch(x), branch = Linear(He) → ReLU → Linear(variance 1/n): a length-preserving branch, so a stack of
    these has E[M_L] = M_0 ∏(1 + η_l²) (THEORY.md §4)."""

    def __init__(self, width, eta, generator):
        super().__init__()
        self.eta = eta
        self.branch = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        with torch.no_grad():
            self.branch[0].weight.normal_(0, math.sqrt(2 / width), generator=generator)
            self.branch[2].weight.normal_(0, math.sqrt(1 / width), generator=generator)
            self.branch[0].bias.zero_()
            self.branch[2].bias.zero_()

    def forward(self, x):
        return x + self.eta * self.branch(x)


@pytest.fixture
def scaled_resnet():
    """``scaled_resnet(width, etas, generator)``: a stack of :class:`ScaledBlock` with branch weights ``etas``."""
    return lambda width, etas, generator: nn.Sequential(*[ScaledBlock(width, eta, generator) for eta in etas])
