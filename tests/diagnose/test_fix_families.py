"""``fix_`` by family: GPT-2's rule for transformers, no init change for BatchNorm nets, and a fix that does not
verify is undone bitwise (or kept with ``keep_unverified=True``)."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from deepstart.diagnose import Recommendation, check, fix_
from deepstart.diagnose import fix as fix_module
from deepstart.diagnose.report import Report
from model_state import same, state

SEED = 4321


def _gen(offset: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(SEED + offset)


def _errors(report) -> set:
    return {f.category for f in report.findings if f.severity == "error"}




# ------------------------------------------------------------------------------------------- (a) GPT-2 ×50
def test_fix_gpt2_std_x50_applies_transformer_init_and_verifies():
    pytest.importorskip("transformers")
    from tools.calibration.cases import _hf

    n_layer, n_embd = 4, 64
    torch.manual_seed(SEED)
    model = _hf("gpt2", n_layer=n_layer, n_embd=n_embd, n_head=4, initializer_range=1.0)  # 0.02 × 50
    ids = {"input_ids": torch.randint(0, 1000, (4, 16), generator=_gen())}
    result = fix_(model, ids, n_inits=4, generator=_gen(1), jacobian=False)
    assert result.before.family == "pre-ln" and _errors(result.before)
    rec = result.recommendation
    assert rec is not None and rec.kind == "transformer_init", str(result)
    assert result.applied and result.verified and not result.restored
    assert result.model is model
    assert not _errors(result.after), [str(f) for f in result.after.findings]
    assert result.after.healthy
    # the weights now follow GPT-2's rule: N(0, 0.02²), branch output projections × 1/√(2L); biases zero.
    # Sample std of n normals has relative SE 1/√(2n); 5 SE bands.
    params = dict(model.named_parameters())
    scale = 1 / math.sqrt(2 * n_layer)
    assert rec.params["residual_scale"] == pytest.approx(scale)
    outputs = set(rec.params["outputs"])
    assert outputs == {f"transformer.h.{i}.{p}.c_proj.weight" for i in range(n_layer) for p in ("attn", "mlp")}
    for name in rec.params["weights"]:
        w = params[name].detach().double()
        std = 0.02 * (scale if name in outputs else 1.0)
        assert abs(w.std().item() / std - 1) < 5 / math.sqrt(2 * w.numel()), name
        assert abs(w.mean().item()) < 5 * std / math.sqrt(w.numel()), name
    for i in range(n_layer):
        assert torch.count_nonzero(params[f"transformer.h.{i}.attn.c_attn.bias"]) == 0


# ----------------------------------------------------------------------------------------- (b) BatchNorm nets
def _conv_bn_relu(depth: int = 3, channels: int = 16) -> nn.Module:
    layers, c = [], 3
    for _ in range(depth):
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
        c = channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 8 * 8, 10))


def _no_init(recs) -> bool:
    return not any(r.kind == "init" or (r.scheme or "").startswith("he") for r in recs)


def test_fix_conv_bn_relu_default_init_recommends_no_init():
    torch.manual_seed(SEED)
    model = _conv_bn_relu()
    saved = state(model)
    x = torch.randn(8, 3, 8, 8, generator=_gen())
    result = fix_(model, x, n_inits=4, generator=_gen(1), jacobian=False)
    assert result.before.family == "plain-bn"
    assert _no_init(result.before.recommend())
    assert result.recommendation is None or result.recommendation.kind != "init", str(result)
    assert not result.applied and same(model, saved)


def test_conv_bn_relu_with_gradient_error_still_gets_no_init_recommendation():
    """Force a BatchNorm gradient error by lowering the stored thresholds (verdicts are a pure function of the
    report): the only remedy offered is architectural, and ``fix_`` changes nothing."""
    torch.manual_seed(SEED)
    model = _conv_bn_relu()
    saved = state(model)
    x = torch.randn(8, 3, 8, 8, generator=_gen())
    report = check(model, x, n_inits=4, generator=_gen(1), jacobian=False)
    strict = dataclasses.replace(report, thresholds={**report.thresholds, "gradient_nats": 1e-3,
                                                      "normalized_gradient_nats": 1e-3, "significance": 0.0})
    assert "gradients" in _errors(strict)
    recs = strict.recommend()
    assert recs and _no_init(recs)
    assert {r.kind for r in recs} == {"architecture"}
    result = fix_(model, x, n_inits=4, generator=_gen(2), report=strict, jacobian=False)
    assert result.recommendation is None and not result.applied and same(model, saved)


# ----------------------------------------------------------------------------------- (c) unverified fixes
def _glorot_relu_mlp(depth: int = 20, width: int = 64) -> nn.Module:
    """Glorot with ReLU halves M per layer: an FM1/gradients error that "glorot" again cannot fix. A BatchNorm-free
    net with one buffer, so that restoring buffers is tested too."""
    layers = []
    for i in range(depth):
        lin = nn.Linear(width, width)
        nn.init.xavier_normal_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()] if i < depth - 1 else [lin]
    model = nn.Sequential(*layers)
    model.register_buffer("tag", torch.arange(5, dtype=torch.float32))
    return model


@pytest.fixture
def forced_glorot(monkeypatch):
    """Every report recommends re-initializing with "glorot" (which cannot fix a Glorot ReLU net), and applying a
    recommendation also scribbles on the model's buffer, so that a restore must cover buffers."""
    rec = Recommendation("init", ("fm1", "gradients"), "forced by the test: cannot fix a ReLU net", scheme="glorot")
    monkeypatch.setattr(Report, "recommend", lambda self: [rec])
    real = fix_module.apply_recommendation_

    def apply(model, r, report, *, generator=None):
        done = real(model, r, report, generator=generator)
        with torch.no_grad():
            model.tag.add_(1.0)
        return done

    monkeypatch.setattr(fix_module, "apply_recommendation_", apply)
    return rec


def test_unverified_fix_is_restored_bitwise(forced_glorot):
    torch.manual_seed(SEED)
    model = _glorot_relu_mlp()
    saved = state(model)
    result = fix_(model, input_shape=(64,), n_inits=4, generator=_gen(), jacobian=False)
    assert {"fm1", "gradients"} & _errors(result.before)
    assert result.recommendation is forced_glorot
    assert {"fm1", "gradients"} & _errors(result.after), "glorot again must not fix a Glorot ReLU net"
    assert not result.verified and not result.applied and result.restored
    assert same(model, saved), "parameters and buffers must be restored bitwise"
    assert "restored" in str(result)


def test_unverified_fix_is_kept_with_keep_unverified(forced_glorot):
    torch.manual_seed(SEED)
    model = _glorot_relu_mlp()
    saved = state(model)
    result = fix_(model, input_shape=(64,), n_inits=4, generator=_gen(), jacobian=False, keep_unverified=True)
    assert result.recommendation is forced_glorot
    assert result.applied and not result.verified and not result.restored
    assert torch.equal(model.tag, saved["tag"] + 1.0)
    changed = [k for k, v in model.named_parameters() if k.endswith("weight") and not torch.equal(v.detach(), saved[k])]
    assert len(changed) == 20, "every weight was re-drawn by the kept change"


def test_critical_recommendations_use_a_fixed_point_the_network_can_sit_at():
    """gelu/silu: q* = 1/64 is an unstable fixed point of the q-map (dq'/dq > 1); the recommendation moves to the
    stable critical point, where dq'/dq < 1 (checked with the theory's own status); tanh keeps q* = 1/64."""
    import warnings

    from deepstart.diagnose.recommend import critical_scheme
    from deepstart.theory import critical_point

    assert critical_scheme("tanh")[0] == "critical(activation=tanh, q_star=1/64, weights=orthogonal)"
    for act in ("gelu", "silu"):
        scheme, note = critical_scheme(act)
        q = float(scheme.split("q_star=")[1].split(",")[0])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a stable point raises no UnstableFixedPointWarning
            cp = critical_point(act, q_star=q)
        assert cp.stable and cp.slope < 1 and "not a stable fixed point" in note
    assert critical_scheme("sigmoid")[0] is None  # its stable points need q* ≫ 100
