"""deepstart.fix_ on the failing toy models: the recommended change is applied and verified by re-measuring."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import FixResult, check, fix_, zoo_model


def _errors(report):
    return {f.category for f in report.findings if f.severity == "error"}


def test_fix_glorot_relu_mlp_with_he(generator):
    built = zoo_model("mlp", depth=30, width=64, activation="relu", init="glorot")
    result = fix_(built.model, input_shape=built.input_shape, n_inits=6, generator=generator, jacobian=False)
    assert "fm1" in _errors(result.before)
    assert result.applied and result.recommendation.scheme == "he"
    assert result.verified and result.after.healthy and not _errors(result.after)
    st = result.after.stats
    assert abs(st["fm1_drift"]) < 3 * st["fm1_se"]  # He: E ξ_j = 1 exactly; the drift is noise at 3 SE
    assert {s["weight_law"] for s in result.after.sites if s["kind"] == "layer"} == {"he"}
    again = FixResult.from_dict(result.to_dict())
    assert again.verified and again.after.healthy


def test_fix_resnet_eta_1_sets_eta_one_over_l(generator, scaled_resnet):
    # 16 blocks: 2^16 = e^11.1 is beyond the residual-stream bound e^7.17 (8 blocks, e^5.5 ≤ e^5.89, are within it
    # since the rule made after the fourth held-out zoo, docs/laws.md)
    model = scaled_resnet(32, [1.0] * 16, generator)
    result = fix_(model, input_shape=(32,), n_inits=6, generator=generator, jacobian=False)
    assert "fm1" in _errors(result.before)
    assert result.recommendation.kind == "residual_eta"
    assert [b.eta for b in model] == pytest.approx([1 / l for l in range(1, 17)])
    assert result.verified and result.after.healthy
    assert [s["eta"] for s in result.after.main_sites] == pytest.approx([1 / l for l in range(1, 17)], rel=1e-4)


def test_fix_fm2_by_widening_the_zoo_model(generator):
    built = zoo_model("mlp", depth=60, width=10, activation="relu", init="he")
    before = check(built.model, input_shape=built.input_shape, n_inits=8, batch_size=4, generator=generator,
                   jacobian=False)
    assert "fm2" in _errors(before)
    result = fix_(built.model, input_shape=built.input_shape, n_inits=8, batch_size=4, generator=generator,
                  report=before, rebuild=built.rebuild, jacobian=False)
    assert result.recommendation.kind == "widths" and result.recommendation.params["width"] > 60
    assert result.model is not built.model and result.after.healthy and result.verified
    assert result.after.stats["fm2_var"] < before.stats["fm2_var"] / 4


def test_fix_tanh_gaussian_isometry_with_orthogonal_critical(generator):
    from deepstart.theory import critical_point

    depth, width, q_star = 12, 64, 1 / 64
    cp = critical_point("tanh", q_star=q_star)
    sw, sb = float(cp.sigma_w), float(cp.sigma_b)
    layers = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        with torch.no_grad():
            lin.weight.normal_(0, sw / math.sqrt(width), generator=generator)
            lin.bias.normal_(0, sb, generator=generator)
        layers += [lin, nn.Tanh()]
    model = nn.Sequential(*layers)
    x = math.sqrt(q_star) * torch.randn(4, width, generator=generator)
    result = fix_(model, x, n_inits=4, generator=generator)
    assert "isometry" in {f.category for f in result.before.findings}
    assert "orthogonal" in result.recommendation.scheme and "tanh" in result.recommendation.scheme
    assert "isometry" not in {f.category for f in result.after.findings}
    assert result.after.jacobian_relvar < 0.3 * result.before.jacobian_relvar
    assert result.verified
