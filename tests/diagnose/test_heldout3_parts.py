"""Two rules made after the third held-out zoo was scored (docs/laws.md): a gated addition y = g⊙f(x) + (1 − g)⊙x is
an addition whose branch is scaled by its gate (Hanin & Rolnick 2018, Thm 2: additive growth when Σ E[g_l²] is
bounded), and a norm that opens a branch of weightless ops (PoolFormer's pool(x) − x) is no point of the stream at
which gradients are compared. Before them a stock highway net was FAILING 'fm1 −1.79, gradients −2.36' and a stock
PoolFormer 'gradients 76.4' (db2c257)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepstart.diagnose import check


def _check(build, shape):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return check(build(), torch.randn(*shape, generator=g), factory=build, n_inits=3, generator=g, jacobian=False)


def _errors(report):
    return [f for f in report.findings if f.severity == "error"]


class _Highway(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.h, self.t = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        gate = torch.sigmoid(self.t(x))
        return F.relu(self.h(x)) * gate + x * (1 - gate)


def highway(gate_bias, depth=20, d=32):
    model = nn.Sequential(nn.Linear(48, d), nn.ReLU(), *[_Highway(d) for _ in range(depth)], nn.Linear(d, 10))
    for m in model.modules():
        if isinstance(m, _Highway):
            nn.init.constant_(m.t.bias, gate_bias)
    return model


def test_a_highway_stack_at_a_carry_bias_is_healthy():
    """Gate bias −2: E[g²] ≈ 0.015 per layer, Σ ≈ 0.3 over 20 layers, a bounded total branch weight; the carry
    (1 − g) shrinks the stream a little per layer, within the additive law (module docstring)."""
    report = _check(lambda: highway(-2.0), (16, 48))
    adds = [p for p in report.parts if p["part"] == "segment"]
    assert adds and all(p["growth"] == "additive" for p in adds), adds
    assert not _errors(report) and report.verdict == "healthy", report.findings


def test_a_highway_stack_whose_gates_transform_is_caught():
    """Gate bias +4: g ≈ 0.98, every layer a plain ReLU net at PyTorch's default init (M × 1/6 per layer)."""
    report = _check(lambda: highway(4.0), (16, 48))
    assert any(p["part"] == "segment" and p["growth"] == "multiplicative" for p in report.parts)
    errors = _errors(report)
    assert any(f.category in ("fm1", "gradients") and f.measured < -10 for f in errors), report.findings


class _PoolBlock(nn.Module):
    """PoolFormer's layer (Yu et al. 2022): x + γ₁·(pool(n₁(x)) − n₁(x)), then x + γ₂·mlp(n₂(x)), GroupNorm(1)."""

    def __init__(self, c, scale):
        super().__init__()
        self.n1, self.n2 = nn.GroupNorm(1, c), nn.GroupNorm(1, c)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.fc1, self.fc2 = nn.Conv2d(c, 4 * c, 1), nn.Conv2d(4 * c, c, 1)
        self.g1, self.g2 = nn.Parameter(scale * torch.ones(c)), nn.Parameter(scale * torch.ones(c))

    def forward(self, x):
        n = self.n1(x)
        x = x + self.g1[:, None, None] * (self.pool(n) - n)
        return x + self.g2[:, None, None] * self.fc2(F.gelu(self.fc1(self.n2(x))))


def poolformer(scale=1e-5, std=0.02, n=4, c=16):
    """``n`` blocks on an embedded input of ``c`` channels (PoolFormer's init: truncated normal of std 0.02)."""
    model = nn.Sequential(*[_PoolBlock(c, scale) for _ in range(n)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=std)
            nn.init.zeros_(m.bias)
    return model


def test_a_weightless_pool_mixer_stack_with_groupnorm_is_healthy():
    report = _check(poolformer, (8, 16, 8, 8))
    assert not _errors(report) and report.verdict == "healthy", report.findings


def test_a_pool_mixer_stack_with_std_1_and_unit_layer_scale_is_caught():
    report = _check(lambda: poolformer(scale=1.0, std=1.0), (8, 16, 8, 8))
    assert _errors(report), report.findings
