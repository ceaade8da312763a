"""A residual stream with unnormalized branches at a finite depth (rule made after the fourth held-out zoo was scored,
docs/laws.md): E M_L = M_0 ∏(1 + η_l² g_l) grows exponentially in depth when Σ η_l² is unbounded (Hanin & Rolnick
2018, Thm 2 and §4), and is judged by its total growth over its L links against the bound of every residual stream,
2·log(L + 1) + 1.5 nats — not by the plain law's 1 nat, which measures a plain net's distance from its critical init.

The stacks are :class:`conftest.ScaledBlock` with η = 1: a length-preserving He branch, so each block doubles the
mean squared length, E M_L = 2^L M_0 (THEORY.md §4): L log 2 nats over L links. 2^L stays within the bound up to
L = 8 (5.55 ≤ 5.89 nats) and leaves it at L = 9 (6.24 > 6.11). On the code before the rule, the 6-block stack was
FAILING (FM1 e^4.2 against 1 nat)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import check
from deepstart.diagnose.laws.segment import additive_band, crossing_depth

WIDTH, N_INITS = 64, 6


def _check(model, generator):
    return check(model, input_shape=(WIDTH,), n_inits=N_INITS, generator=generator, jacobian=False)


def _fm1(report, severity):
    return [f for f in report.findings if f.category == "fm1" and f.severity == severity]


@pytest.mark.parametrize("rate", [math.log(2), 0.56, 0.1, 2.0, -0.3])
def test_crossing_depth_is_the_first_depth_beyond_the_bound(rate):
    at = crossing_depth(rate)
    assert abs(rate) * at > additive_band(at)
    assert all(abs(rate) * n <= additive_band(n) for n in range(1, at))


def test_crossing_depth_of_a_doubling_stream_and_of_none():
    assert crossing_depth(math.log(2)) == 9  # 9 log 2 = 6.24 > 2 log 10 + 1.5 = 6.11; 8 log 2 = 5.55 ≤ 5.89
    assert crossing_depth(0.0) is None and crossing_depth(math.nan) is None


def test_shallow_unnormalized_stream_within_the_bound_is_not_an_error(generator, scaled_resnet):
    """6 blocks with η = 1: E M_6/M_0 = 2^6 = e^4.16, inside the bound e^5.39 over 6 links (the plain law's drift
    would be 4.16 nats against 1). Not an error; an info finding says the growth is exponential and where it leaves
    the bound (9 links)."""
    report = _check(scaled_resnet(WIDTH, [1.0] * 6, generator), generator)
    assert [p["growth"] for p in report.parts if p["part"] == "segment"] == ["multiplicative"]
    assert not [f for f in report.findings if f.severity == "error"], report.findings
    assert report.verdict == "healthy"
    (info,) = _fm1(report, "info")
    growth = report.stats["log_mean_ratio"]
    assert abs(info.measured - 6 * math.log(2)) < 5 * report.stats["fm1_se"] + 0.05
    assert info.measured == pytest.approx(growth) and info.threshold == pytest.approx(additive_band(6))
    assert "exponentially" in info.message and f"about {crossing_depth(growth / 6)} links" in info.message


def test_the_same_blocks_deep_enough_leave_the_bound(generator, scaled_resnet):
    """16 blocks with η = 1: e^11.1 over 16 links, beyond the bound e^7.17: FM1 error, and the finding says up to
    how many links these blocks stay within the bound (8)."""
    report = _check(scaled_resnet(WIDTH, [1.0] * 16, generator), generator)
    (error,) = _fm1(report, "error")
    assert error.measured > additive_band(16) + 2 and error.threshold == pytest.approx(additive_band(16))
    assert "exponentially" in error.message and "within the bound up to 8 links" in error.message
    assert report.verdict == "FAILING"


def test_a_plain_segment_drifting_two_nats_is_still_an_error(generator):
    """8 ReLU layers with variance 2e^{1/4}/fan_in: E ξ_j = e^{1/4}, a drift of 2 nats over 8 links. A plain segment
    at its critical init has no drift, so 2 nats is an init off criticality (``fm1_nats`` = 1), far inside the
    residual bound (5.89) that a residual stream of the same length would be allowed."""
    layers = []
    for _ in range(8):
        lin = nn.Linear(WIDTH, WIDTH)
        with torch.no_grad():
            lin.weight.normal_(0.0, math.sqrt(2 * math.exp(0.25) / WIDTH), generator=generator)
            lin.bias.zero_()
        layers += [lin, nn.ReLU()]
    report = _check(nn.Sequential(*layers), generator)
    assert [p["growth"] for p in report.parts if p["part"] == "segment"] == ["plain"]
    (error,) = _fm1(report, "error")
    assert 1.0 < error.measured < additive_band(8) and error.threshold == 1.0
    assert report.verdict == "FAILING"
