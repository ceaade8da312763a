"""``deepstart.diagnose.measure.infer_family`` on PyTorch's own default inits (the law a resampled init redraws)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from deepstart.diagnose.measure import infer_family

SEEDS = range(40)


@pytest.mark.parametrize("fan_in, fan_out", [(64, 64), (128, 64)])
def test_default_linear_weight_is_uniform(fan_in, fan_out):
    wrong = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        if infer_family(nn.Linear(fan_in, fan_out).weight) != "uniform":
            wrong.append(seed)
    assert not wrong, f"kaiming_uniform_ weights called non-uniform for seeds {wrong}"


@pytest.mark.parametrize("fan_in, fan_out", [(64, 64), (128, 64)])
def test_gaussian_weight_is_normal(fan_in, fan_out):
    """Guard for any fix of the uniform test: Gaussian weights of the same size stay 'normal' (max |z| ≈ 3.5 ≫ √3)."""
    for seed in SEEDS:
        w = torch.randn(fan_out, fan_in, generator=torch.Generator().manual_seed(seed)) / fan_in ** 0.5
        assert infer_family(w) == "normal", seed
