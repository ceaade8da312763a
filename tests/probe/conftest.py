"""Factories of the probe's known-outcome models (seeded through torch's global RNG, as ``probe`` calls them)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn


def _plain_mlp(depth: int, width: int, gain: float, activation=nn.ReLU, d_in: int = 32, d_out: int = 10):
    """``[Linear, activation] × depth, Linear``, weights N(0, gain/fan_in), zero biases (gain 1 with ReLU: Glorot
    for square layers; 2: He; with tanh, σ_w² = gain)."""
    def build():
        layers, n = [], d_in
        for i in range(depth + 1):
            out = width if i < depth else d_out
            lin = nn.Linear(n, out)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(gain / n))
            nn.init.zeros_(lin.bias)
            layers += [lin, activation()] if i < depth else [lin]
            n = out
        return nn.Sequential(*layers)
    return build


def _tiny_gpt2(initializer_range: float = 0.02):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=128, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                                     initializer_range=initializer_range, bos_token_id=0, eos_token_id=0,
                                     attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


@pytest.fixture
def plain_mlp():
    """``plain_mlp(depth, width, gain, activation=nn.ReLU, d_in=32, d_out=10)``: a factory of plain MLPs."""
    return _plain_mlp


@pytest.fixture
def tiny_gpt2():
    """``tiny_gpt2(initializer_range)``: a 2-layer, 64-wide GPT-2 with vocabulary 128 (built under seed 0)."""
    return _tiny_gpt2
