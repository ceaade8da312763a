"""A normalized branch's gain is an error only where its increment v_l is also large against M_0, the stream
entering its segment's first addition (rule made after the fifth held-out zoo was scored, docs/laws.md): the limit 4
against the normalized input speaks of a stream on the scale of its norm's output, M_L/M_0 = 1 + Σ v_l/M_0 (Xiong et
al. 2020, §3). Before, stock BiT (weight-standardized convs and projection shortcuts restart each stage's stream far
above the GroupNorm's output) read FAILING "branches 5.25, 11.0, 22.2" although its branches added 0.2–0.7× the
stream. Here: the same pre-LN blocks (branch gain ≈ 10) behind a projection of gain 60 (no error) or 0.05 (error)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check
from deepstart.diagnose.laws.addition import branch_gain, stream_gain
from deepstart.diagnose.parts import Addition, read_parts

WIDTH, GAIN = 128, 10.0  # the branch's σ_w² against its LayerNorm output (M = 1): v_l ≈ 10, above the limit 4


class Block(nn.Module):
    """Pre-LN block y = x + W·LN(x), W ~ N(0, GAIN/WIDTH): branch gain ≈ GAIN against the normalized input."""

    def __init__(self):
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, WIDTH, bias=False)
        nn.init.normal_(self.fc.weight, std=math.sqrt(GAIN / WIDTH))

    def forward(self, x):
        return x + self.fc(self.norm(x))


class Stage(nn.Module):
    """A projection shortcut of gain ``stream`` (M(x) ≈ stream·M(input)) restarting the stream, then two blocks."""

    def __init__(self, stream: float):
        super().__init__()
        self.proj = nn.Linear(WIDTH, WIDTH, bias=False)
        nn.init.normal_(self.proj.weight, std=math.sqrt(stream / WIDTH))
        self.blocks = nn.Sequential(Block(), Block())

    def forward(self, x):
        return self.blocks(self.proj(x))


def _build(stream: float):
    return lambda: nn.Sequential(Stage(stream), nn.LayerNorm(WIDTH), Stage(stream))


def _check(stream: float):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    build = _build(stream)
    x = torch.randn(64, WIDTH, generator=g)
    return check(build(), (x,), factory=build, n_inits=4, generator=g, jacobian=False)


@pytest.mark.parametrize("stream, multiplies", [(60.0, False), (0.05, True)])
def test_branch_gain_is_an_error_only_where_the_increment_is_large_against_the_stream(stream, multiplies):
    report = _check(stream)
    adds = [p for p in read_parts(report) if isinstance(p, Addition) and p.normalizer]
    assert len(adds) == 4, [p.site for p in read_parts(report)]
    for add in adds:  # the branch gain against the LayerNorm is the same in both: above the limit
        assert math.log(4.0) < branch_gain(report, add)[0] < math.log(20.0)
    first = stream_gain(report, adds[0])[0]  # v_1 / M_0 ≈ GAIN / stream
    assert abs(first - math.log(GAIN / stream)) < 0.5, first
    hits = [f for f in report.findings if f.category == "branches" and f.severity == "error"]
    assert bool(hits) == multiplies, [f.message for f in report.findings]


class PreActStage(nn.Module):
    """Pre-activation stage (ResNetV2): x' = LN(x); y = P(x') + W·LN(x') with a projection P of gain ``stream``, then
    one pre-LN block: the stream restarts at M ≈ stream at each stage."""

    def __init__(self, stream: float):
        super().__init__()
        self.norm = nn.LayerNorm(WIDTH)
        self.proj, self.first = Stage(stream).proj, Block()
        self.second = Block()

    def forward(self, x):
        x = self.norm(x)
        return self.second(self.proj(x) + self.first.fc(self.first.norm(x)))


def test_a_projection_shortcut_gain_is_not_stream_growth():
    """Two 2-block stages whose projections multiply M by 60: the stream grows from M_0 ≈ 60 to ≈ 80 (e^0.3) in
    each, within the additive bound 2·log 3 + 1.5 = 3.7 nats; counted from the LayerNorm before the projection
    (M = 1) it would be e^4.4, an FM1 error (the rule made after the fifth held-out zoo was scored)."""
    build = lambda: nn.Sequential(PreActStage(60.0), PreActStage(60.0))  # noqa: E731
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    report = check(build(), (torch.randn(64, WIDTH, generator=g),), factory=build, n_inits=4, generator=g,
                   jacobian=False)
    assert not [f for f in report.findings if f.severity == "error"], [str(f) for f in report.findings]
    assert report.verdict == "healthy"
