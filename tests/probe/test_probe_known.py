"""The probe's verdicts on models whose outcome is known (issue 20), seeds fixed; each run is CI-sized.

Known outcomes (Schoenholz et al. 2017; Hanin & Rolnick 2018): a ReLU net at depth 50 with Glorot weights (σ_w² = 1,
the ordered side of the ReLU critical point σ_w² = 2) loses its input signal as 2^(-L/2); He (σ_w² = 2) keeps it.
A tanh net with σ_w² = 0.25 is deep in the ordered phase (χ₁ = σ_w² < 1: signals shrink by 2^(-L)), σ_w² = 1 is
the critical point at σ_b = 0. Measured before these tests were written (4 inits, Adam 1e-3, 100 steps, clusters task):
Glorot stuck 4/4 vs He starts 4/4; tanh σ_w² = 0.25 stuck 4/4 vs 1 starts 4/4.
"""
from __future__ import annotations

import pytest

from deepstart.probe import probe

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.slow


def _run(factory, n_inits=4, steps=100):
    return probe(factory, lr=1e-3, steps=steps, n_inits=n_inits, generator=torch.Generator().manual_seed(1))


def test_glorot_relu_depth_50_is_stuck_he_starts(plain_mlp):
    glorot = _run(plain_mlp(50, 32, 1.0))
    he = _run(plain_mlp(50, 32, 2.0))
    assert glorot.verdict == "stuck", glorot.summary()
    assert he.verdict == "starts", he.summary()
    assert glorot.counts()["stuck"] >= 3 and he.counts()["starts"] >= 3
    # relative to the He reference trained on the same batches: the Glorot init takes longer by more than 2 SE
    assert glorot.ratio - 2 * glorot.ratio_se > 1.0, (glorot.ratio, glorot.ratio_se)
    assert glorot.path == "fastmlp"


def test_tanh_ordered_is_stuck_critical_starts(plain_mlp):
    ordered = _run(plain_mlp(50, 32, 0.25, nn.Tanh))
    critical = _run(plain_mlp(50, 32, 1.0, nn.Tanh))
    assert ordered.verdict == "stuck", ordered.summary()
    assert critical.verdict == "starts", critical.summary()
    assert ordered.reference.startswith("critical(activation=tanh")


def test_gpt2_large_initializer_range_is_not_starting_stock_starts(tiny_gpt2):
    broken = _run(tiny_gpt2(0.5), n_inits=3, steps=60)
    stock = _run(tiny_gpt2(0.02), n_inits=3, steps=60)
    assert broken.verdict in ("stuck", "diverges"), broken.summary()
    assert stock.verdict == "starts", stock.summary()
    assert broken.path == "vmap" and stock.path == "vmap"
    assert "defaults" in broken.reference  # the reference is the stock init, not the model's own 0.5
    assert all(v in ("starts", "slow") for v in broken.ref_verdicts)  # the stock reference learns
