"""``nn.LSTM(proj_size=p)``: each layer's output is h_t = W_hr(o_t ⊙ tanh c_t), of width p, not hidden_size. The
recurrent taps (:mod:`deepstart.diagnose.recurrent`) draw their cotangent at the output's width; before that,
``check`` crashed on every projected LSTM (held-out-6 ``lstmp-lm-3x128p64``, first scoring at 6c6666d)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import part_models as pm
from deepstart.diagnose import check
from deepstart.diagnose.laws.recurrent import layer_gradient

D, HIDDEN, LAYERS = 32, 128, 3


class ProjectedLSTMLM(nn.Module):
    """Embedding → ``LAYERS``-layer LSTM with cells of ``HIDDEN`` projected to ``D`` → head. PyTorch draws every
    weight from U(±1/√HIDDEN), but layers ≥ 1 read D-wide inputs; ``fan_in_ih`` rescales their W_ih to U(±1/√D)."""

    def __init__(self, fan_in_ih: bool = False):
        super().__init__()
        self.embed = nn.Embedding(pm.VOCAB, D)
        self.lstm = nn.LSTM(D, HIDDEN, num_layers=LAYERS, proj_size=D, batch_first=True)
        self.head = nn.Linear(D, pm.VOCAB)
        if fan_in_ih:
            with torch.no_grad():
                for k in range(1, LAYERS):
                    getattr(self.lstm, f"weight_ih_l{k}").mul_(math.sqrt(HIDDEN / D))

    def forward(self, ids):
        return self.head(self.lstm(self.embed(ids))[0])


def _check(fan_in_ih: bool):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    build = lambda: ProjectedLSTMLM(fan_in_ih)  # noqa: E731
    return check(build(), pm.tokens(g), factory=build, n_inits=4, generator=g, jacobian=False)


def test_projected_lstm_is_read_per_layer_and_its_fan_in_law_holds():
    """Default init: at small weights the gates are near their linear regime, so each link's gradient gain is
    χ_k ∝ Var(W_ih)·fan_in; rescaling W_ih of layers 1, 2 by √(HIDDEN/D) multiplies the product over the two links
    by (HIDDEN/D)² exactly: Δ log = 2·log 4 = 2.77 nats, within 3 standard errors of the difference."""
    default, rescaled = _check(False), _check(True)
    data = default.recurrent["lstm"]
    assert data["layer_sq"].shape == (4, LAYERS) and data["time_grad"].shape == (4, pm.SEQ)
    assert any(f.category == "gradients" and f.severity == "error" and f.layer == "lstm" for f in default.findings)
    (g0, se0, links), (g1, se1, _) = layer_gradient(data), layer_gradient(rescaled.recurrent["lstm"])
    assert links == LAYERS - 1
    assert g1 - g0 == pytest.approx((LAYERS - 1) * math.log(HIDDEN / D), abs=3 * math.hypot(se0, se1))
