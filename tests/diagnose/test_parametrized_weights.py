"""Layers whose weight a parametrization computes in forward (``torch.nn.utils.parametrizations.weight_norm``,
``spectral_norm``): each is a weight layer with its computed weight. Before that, ``check`` read the
parametrization's own ops as black-box sites and the layers not at all, and called held-out-6's weight-normed CNN
with g = 1 healthy (``weightnorm-cnn-12x16-g1``, first scoring at 6c6666d: hooks measured -8.0 nats, a miss)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from deepstart.diagnose import check

DEPTH, WIDTH, BATCH = 10, 64, 32


def _mlp(wrap, g: float | None = None) -> nn.Sequential:
    """``DEPTH`` ReLU layers of ``WIDTH``, each weight ``wrap``'d; with weight norm, every row has norm ``g``
    (w = g·v/‖v‖: σ_w² = fan_in·Var(w) = g²) and the biases are 0."""
    torch.manual_seed(0)
    layers = [wrap(nn.Linear(WIDTH, WIDTH)) for _ in range(DEPTH)]
    with torch.no_grad():
        for m in layers:
            m.bias.zero_()
            if g is not None:
                m.parametrizations.weight.original0.fill_(g)
    return nn.Sequential(*[x for m in layers for x in (m, nn.ReLU())], nn.Linear(WIDTH, 10))


def _check(model):
    x = torch.randn(BATCH, WIDTH, generator=torch.Generator().manual_seed(1))
    return check(model, x, n_inits=4, generator=torch.Generator().manual_seed(0), jacobian=False)


@pytest.mark.parametrize("g, verdict", [(1.0, "FAILING"), (math.sqrt(2.0), "healthy")])
def test_weight_norm_layers_are_read_with_their_computed_scale(g, verdict):
    """Rows of norm g give σ_w = g exactly; a ReLU layer keeps the length at σ_w² = 2 (He) and halves it at σ_w² = 1:
    FM1 of exp(DEPTH·log(g²/2)) = exp(-6.9) over the stack at g = 1 (an error), none at g = √2."""
    report = _check(_mlp(weight_norm, g))
    layers = [s for s in report.sites if s["kind"] == "layer"][:DEPTH]
    assert len(layers) == DEPTH
    assert all(s["sigma_w"] == pytest.approx(g, rel=1e-4) for s in layers)
    assert report.verdict == verdict
    fm1 = [f for f in report.findings if f.category == "fm1" and f.severity == "error"]
    assert bool(fm1) == (verdict == "FAILING")


def test_spectral_norm_layers_are_read_with_their_computed_scale():
    """Spectral norm divides a Gaussian W (n × n) by its largest singular value ≈ 2√n·std (Marchenko–Pastur edge):
    σ_w² ≈ 1/4, so a ReLU stack loses a factor ≈ 8 per layer — an error."""
    report = _check(_mlp(spectral_norm))
    layers = [s for s in report.sites if s["kind"] == "layer"][:DEPTH]
    assert len(layers) == DEPTH
    assert all(0.4 < s["sigma_w"] < 0.6 for s in layers)
    assert report.verdict == "FAILING"
